//! Byte tables applied in place: the kernel behind every `u8` intensity op (gamma, contrast,
//! brightness, multiply, solarize, posterize, …).
//!
//! Byte `i` of the buffer goes through `tables[i % tables.len()]`, so one table maps every
//! channel and three (or four) map interleaved RGB (RGBA) channel by channel. The result is a
//! table lookup whichever path runs, so every path gives the same bytes.
//!
//! - **AVX-512 VBMI** (Ice Lake and later, Zen 4): `vpermi2b` looks 64 bytes up in 128-byte
//!   halves of a table at once, a mask blend picks the half by the index's top bit.
//! - **AVX2** (Haswell and later, Zen 1–3): `vpshufb` looks up 16-byte slices of the table;
//!   a chain of eight per half, on XOR-differenced slices, gives each byte its entry (below).
//! - **Portable**: eight lookups per 64-bit load and store.
//!
//! Hand-written because no maintained crate applies byte tables with VBMI.

/// Maps `data` in place: byte `i` through `tables[i % tables.len()]` (1 to 4 tables).
pub(crate) fn apply_tables(data: &mut [u8], tables: &[&[u8; 256]]) {
    assert!(
        (1..=4).contains(&tables.len()),
        "1 to 4 tables, got {}",
        tables.len()
    );
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx512_vbmi() {
        // SAFETY: the CPU has AVX-512 F, BW and VBMI, checked on the line above.
        unsafe { vbmi::apply_tables(data, tables) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked on the line above.
        unsafe { avx2::apply_tables(data, tables) };
        return;
    }
    portable(data, tables);
}

/// The portable loop.
fn portable(data: &mut [u8], tables: &[&[u8; 256]]) {
    let p = tables.len();
    if p == 1 {
        let t = tables[0];
        let mut words = data.chunks_exact_mut(8);
        for word in &mut words {
            let bytes: [u8; 8] = (&*word).try_into().expect("8 bytes");
            word.copy_from_slice(&bytes.map(|b| t[b as usize]));
        }
        for v in words.into_remainder() {
            *v = t[*v as usize];
        }
        return;
    }
    match *tables {
        [a, b] => portable_period(data, [a, b]),
        [a, b, c] => portable_period(data, [a, b, c]),
        [a, b, c, d] => portable_period(data, [a, b, c, d]),
        _ => {
            for (i, v) in data.iter_mut().enumerate() {
                *v = tables[i % p][*v as usize];
            }
        }
    }
}

/// One pixel of `P` channels per step (a constant period, no `i % p` per byte).
fn portable_period<const P: usize>(data: &mut [u8], tables: [&[u8; 256]; P]) {
    let mut pixels = data.chunks_exact_mut(P);
    for px in &mut pixels {
        for (v, t) in px.iter_mut().zip(tables) {
            *v = t[*v as usize];
        }
    }
    for (v, t) in pixels.into_remainder().iter_mut().zip(tables) {
        *v = t[*v as usize];
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// A 256-byte table as sixteen 16-byte slices for `vpshufb`, XOR-differenced within each
    /// half: `d[k] = t[16k..16k+16] ^ t[16(k−1)..16k]`, except the first slice of each half.
    ///
    /// `vpshufb` gives `slice[i & 15]` for an index byte `i` below 128 and 0 from 128 up. Over
    /// the low half, index `x − 16k` (wrapping) is below 128 exactly for the slices `k ≤ x/16`,
    /// so the XOR of the eight lookups telescopes to `t[x]`; the high half does the same with
    /// `x ^ 0x80`, and the top bit of `x` picks the half.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn slices(t: &[u8; 256]) -> [__m256i; 16] {
        std::array::from_fn(|k| {
            let d: [u8; 16] = std::array::from_fn(|n| {
                let here = t[16 * k + n];
                if k % 8 == 0 {
                    here
                } else {
                    here ^ t[16 * (k - 1) + n]
                }
            });
            // SAFETY: `d` is 16 readable bytes; unaligned loads are allowed.
            unsafe { _mm256_broadcastsi128_si256(_mm_loadu_si128(d.as_ptr().cast())) }
        })
    }

    /// `t[x]` for the 32 bytes of `x` (see [`slices`]).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lookup(d: &[__m256i; 16], x: __m256i) -> __m256i {
        let sixteen = _mm256_set1_epi8(16);
        let half = |first: usize, mut i: __m256i| {
            let mut acc = _mm256_setzero_si256();
            for slice in &d[first..first + 8] {
                acc = _mm256_xor_si256(acc, _mm256_shuffle_epi8(*slice, i));
                i = _mm256_sub_epi8(i, sixteen);
            }
            acc
        };
        let low = half(0, x);
        let high = half(8, _mm256_xor_si256(x, _mm256_set1_epi8(-128)));
        _mm256_blendv_epi8(low, high, x)
    }

    /// [`super::apply_tables`] in blocks of `32 × P` bytes (whole channel periods), the tail
    /// by the portable loop.
    #[target_feature(enable = "avx2")]
    fn apply_period<const P: usize>(data: &mut [u8], tables: [&[u8; 256]; P]) {
        let sliced = tables.map(|t| slices(t));
        // masks[v][t]: 0xff on the bytes of vector v of a block that belong to table t.
        let masks: [[__m256i; P]; P] = std::array::from_fn(|v| {
            std::array::from_fn(|t| {
                let m: [u8; 32] =
                    std::array::from_fn(|j| if (32 * v + j) % P == t { 0xff } else { 0 });
                // SAFETY: `m` is 32 readable bytes.
                unsafe { _mm256_loadu_si256(m.as_ptr().cast()) }
            })
        });
        let mut blocks = data.chunks_exact_mut(32 * P);
        for block in &mut blocks {
            for (v, mask) in masks.iter().enumerate() {
                let at = block[32 * v..].as_mut_ptr();
                // SAFETY: `at` has 32 bytes of the block behind it; unaligned access is allowed.
                let x = unsafe { _mm256_loadu_si256(at.cast()) };
                let mut out = lookup(&sliced[0], x);
                for t in 1..P {
                    out = _mm256_blendv_epi8(out, lookup(&sliced[t], x), mask[t]);
                }
                // SAFETY: as for the load.
                unsafe { _mm256_storeu_si256(at.cast(), out) };
            }
        }
        super::portable(blocks.into_remainder(), &tables);
    }

    /// [`super::apply_tables`] with AVX2.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn apply_tables(data: &mut [u8], tables: &[&[u8; 256]]) {
        match *tables {
            [a] => apply_period(data, [a]),
            [a, b] => apply_period(data, [a, b]),
            [a, b, c] => apply_period(data, [a, b, c]),
            [a, b, c, d] => apply_period(data, [a, b, c, d]),
            _ => super::portable(data, tables),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod vbmi {
    use std::arch::x86_64::*;

    /// A 256-byte table as four 64-byte quarters.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn quarters(t: &[u8; 256]) -> [__m512i; 4] {
        // SAFETY: each load reads 64 of the table's 256 bytes; unaligned loads are allowed.
        std::array::from_fn(|q| unsafe { _mm512_loadu_si512(t[64 * q..].as_ptr().cast()) })
    }

    /// `t[x]` for the 64 bytes of `x`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn lookup(t: &[__m512i; 4], x: __m512i) -> __m512i {
        // Bits 0–6 of each byte index the 128-byte halves; bit 7 picks the half.
        let low = _mm512_permutex2var_epi8(t[0], x, t[1]);
        let high = _mm512_permutex2var_epi8(t[2], x, t[3]);
        _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), low, high)
    }

    /// [`super::apply_tables`] in blocks of `64 × P` bytes (a whole number of channel periods),
    /// the tail by the portable loop. `P` is a constant so that the block loop unrolls and the
    /// tables stay in registers.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn apply_period<const P: usize>(data: &mut [u8], tables: [&[u8; 256]; P]) {
        let quartered = tables.map(|t| quarters(t));
        // masks[v][t]: the bytes of vector v of a block that belong to table t.
        let masks: [[u64; P]; P] = std::array::from_fn(|v| {
            std::array::from_fn(|t| {
                (0..64)
                    .filter(|j| (64 * v + j) % P == t)
                    .fold(0u64, |m, j| m | 1 << j)
            })
        });
        let mut blocks = data.chunks_exact_mut(64 * P);
        for block in &mut blocks {
            for (v, mask) in masks.iter().enumerate() {
                let at = block[64 * v..].as_mut_ptr();
                // SAFETY: `at` has 64 bytes of the block behind it; unaligned access is allowed.
                let x = unsafe { _mm512_loadu_si512(at.cast()) };
                let mut out = lookup(&quartered[0], x);
                for t in 1..P {
                    out = _mm512_mask_blend_epi8(mask[t], out, lookup(&quartered[t], x));
                }
                // SAFETY: as for the load.
                unsafe { _mm512_storeu_si512(at.cast(), out) };
            }
        }
        // The tail starts at a multiple of P, so its bytes keep their channels.
        super::portable(blocks.into_remainder(), &tables);
    }

    /// [`super::apply_tables`] with AVX-512 VBMI.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VBMI ([`crate::simd::has_avx512_vbmi`]).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn apply_tables(data: &mut [u8], tables: &[&[u8; 256]]) {
        match *tables {
            [a] => apply_period(data, [a]),
            [a, b] => apply_period(data, [a, b]),
            [a, b, c] => apply_period(data, [a, b, c]),
            [a, b, c, d] => apply_period(data, [a, b, c, d]),
            _ => super::portable(data, tables),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(data: &[u8], tables: &[&[u8; 256]]) -> Vec<u8> {
        data.iter()
            .enumerate()
            .map(|(i, &v)| tables[i % tables.len()][v as usize])
            .collect()
    }

    #[test]
    fn every_path_equals_a_plain_lookup_for_every_period_and_tail() {
        let tables: Vec<[u8; 256]> = (0..4u32)
            .map(|k| std::array::from_fn(|i| (i as u32 * (2 * k + 3) + 17 * k) as u8))
            .collect();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [
            0, 1, 7, 63, 64, 65, 191, 192, 193, 255, 256, 257, 1000, 4099,
        ] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            for p in 1..=4 {
                let refs: Vec<&[u8; 256]> = tables[..p].iter().collect();
                let expected = reference(&data, &refs);
                let mut out = data.clone();
                apply_tables(&mut out, &refs);
                assert_eq!(out, expected, "dispatched, len {len}, {p} tables");
                let mut out = data.clone();
                portable(&mut out, &refs);
                assert_eq!(out, expected, "portable, len {len}, {p} tables");
                #[cfg(target_arch = "x86_64")]
                if crate::simd::has_avx512_vbmi() {
                    let mut out = data.clone();
                    // SAFETY: checked on the line above.
                    unsafe { vbmi::apply_tables(&mut out, &refs) };
                    assert_eq!(out, expected, "vbmi, len {len}, {p} tables");
                }
                #[cfg(target_arch = "x86_64")]
                if std::arch::is_x86_feature_detected!("avx2") {
                    let mut out = data.clone();
                    // SAFETY: checked on the line above.
                    unsafe { avx2::apply_tables(&mut out, &refs) };
                    assert_eq!(out, expected, "avx2, len {len}, {p} tables");
                }
            }
        }
    }
}
