//! 16 interleaved RGB or RGBA `u8` pixels at a time as one AVX-512 vector of `u32` lanes
//! (`r | g << 8 | b << 16`), for the colour-space kernels: VBMI byte permutes split 48 bytes of
//! RGB into lanes and join them again, RGBA is a plain load with its alpha kept aside. The
//! `avx2` module does the same with 8 pixels per AVX2 vector (byte shuffles within 128-bit
//! halves).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

/// Byte `j` of the lanes from the 48 packed bytes of 16 RGB pixels (byte 3 of a lane from byte
/// 0, unused).
const SPREAD: [u8; 64] = {
    let mut idx = [0u8; 64];
    let mut j = 0;
    while j < 64 {
        idx[j] = if j % 4 == 3 {
            0
        } else {
            (j / 4 * 3 + j % 4) as u8
        };
        j += 1;
    }
    idx
};

/// The inverse: the low three bytes of each lane back to 48 packed bytes.
pub(crate) const PACK: [u8; 64] = {
    let mut idx = [0u8; 64];
    let mut j = 0;
    while j < 48 {
        idx[j] = (j / 3 * 4 + j % 3) as u8;
        j += 1;
    }
    idx
};

/// The 16 pixels of `C` (3 or 4) channels at `at` as lanes `r | g << 8 | b << 16 | ?`.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI; `16·C` bytes at `at` are readable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(crate) unsafe fn load_pixels<const C: usize>(at: *const u8) -> __m512i {
    if C == 4 {
        // SAFETY: 64 bytes are readable (the caller's contract).
        unsafe { _mm512_loadu_si512(at.cast()) }
    } else {
        // SAFETY: 48 bytes are readable; the masked load touches only those.
        let packed = unsafe { _mm512_maskz_loadu_epi8((1u64 << 48) - 1, at.cast()) };
        // SAFETY: the table is 64 bytes.
        let spread = unsafe { _mm512_loadu_si512(SPREAD.as_ptr().cast()) };
        _mm512_permutexvar_epi8(spread, packed)
    }
}

/// Writes the low three bytes of each lane as the first three channels of the 16 pixels of `C`
/// (3 or 4) channels at `at` (a fourth channel is kept).
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI; `16·C` bytes at `at` are writable.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(crate) unsafe fn store_pixels<const C: usize>(at: *mut u8, lanes: __m512i) {
    if C == 4 {
        // SAFETY: 64 bytes are readable and writable; the masked store skips every alpha byte.
        unsafe { _mm512_mask_storeu_epi8(at.cast(), 0x7777_7777_7777_7777, lanes) };
    } else {
        // SAFETY: the table is 64 bytes; 48 bytes are writable and the store touches only those.
        let pack = unsafe { _mm512_loadu_si512(PACK.as_ptr().cast()) };
        unsafe {
            _mm512_mask_storeu_epi8(
                at.cast(),
                (1u64 << 48) - 1,
                _mm512_permutexvar_epi8(pack, lanes),
            )
        };
    }
}

/// Replaces the first three channels of every whole block of 16 pixels of `data` (`c` = 3 or
/// 4) by `f(lanes)`'s low three bytes per lane; returns the bytes done (the caller does the
/// tail).
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI ([`crate::simd::has_avx512_vbmi`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
pub(crate) unsafe fn map_blocks(
    data: &mut [u8],
    c: usize,
    mut f: impl FnMut(__m512i) -> __m512i,
) -> usize {
    assert!(c == 3 || c == 4, "3 or 4 channels, got {c}");
    let block = 16 * c;
    for chunk in data.chunks_exact_mut(block) {
        let at = chunk.as_mut_ptr();
        // SAFETY: the CPU has the features (the caller's contract), the chunk is 16·c bytes.
        unsafe {
            if c == 4 {
                store_pixels::<4>(at, f(load_pixels::<4>(at)));
            } else {
                store_pixels::<3>(at, f(load_pixels::<3>(at)));
            }
        }
    }
    data.len() / block * block
}

/// 8 pixels per AVX2 vector of `u32` lanes, as the functions above.
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    /// Per half: four 3-byte pixels (at bytes 0 and 4 of the two 16-byte loads) into lanes.
    const SPREAD: [i8; 32] = {
        let mut idx = [-1i8; 32];
        let mut j = 0;
        while j < 16 {
            if j % 4 != 3 {
                idx[j] = (j / 4 * 3 + j % 4) as i8;
                idx[16 + j] = idx[j] + 4;
            }
            j += 1;
        }
        idx
    };

    /// Per half: the low three bytes of the four lanes packed into the first 12 bytes.
    pub(crate) const PACK: [i8; 32] = {
        let mut idx = [-1i8; 32];
        let mut j = 0;
        while j < 12 {
            idx[j] = (j / 3 * 4 + j % 3) as i8;
            idx[16 + j] = idx[j];
            j += 1;
        }
        idx
    };

    /// The 8 pixels of `C` (3 or 4) channels at `at` as lanes `r | g << 8 | b << 16 | ?`.
    ///
    /// # Safety
    /// The CPU must have AVX2; `8·C` bytes at `at` are readable.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn load_pixels<const C: usize>(at: *const u8) -> __m256i {
        if C == 4 {
            // SAFETY: 32 bytes are readable (the caller's contract).
            unsafe { _mm256_loadu_si256(at.cast()) }
        } else {
            // SAFETY: 24 bytes are readable: bytes 0–15 and 8–23; the table is 32 bytes.
            unsafe {
                let two = _mm256_set_m128i(
                    _mm_loadu_si128(at.add(8).cast()),
                    _mm_loadu_si128(at.cast()),
                );
                _mm256_shuffle_epi8(two, _mm256_loadu_si256(SPREAD.as_ptr().cast()))
            }
        }
    }

    /// Writes the low three bytes of each lane as the first three channels of the 8 pixels of
    /// `C` (3 or 4) channels at `at` (a fourth channel is kept).
    ///
    /// # Safety
    /// The CPU must have AVX2; `8·C` bytes at `at` are readable and writable.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn store_pixels<const C: usize>(at: *mut u8, lanes: __m256i) {
        if C == 4 {
            // SAFETY: 32 bytes are readable and writable.
            unsafe {
                let old = _mm256_loadu_si256(at.cast());
                let rgb = _mm256_set1_epi32(0x00ff_ffff);
                _mm256_storeu_si256(at.cast(), _mm256_blendv_epi8(old, lanes, rgb));
            }
        } else {
            // SAFETY: the table is 32 bytes; 24 bytes are writable: 16, then 8.
            unsafe {
                let packed = _mm256_shuffle_epi8(lanes, _mm256_loadu_si256(PACK.as_ptr().cast()));
                let v =
                    _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7));
                _mm_storeu_si128(at.cast(), _mm256_castsi256_si128(v));
                _mm_storel_epi64(at.add(16).cast(), _mm256_extracti128_si256::<1>(v));
            }
        }
    }

    /// As [`super::map_blocks`], 8 pixels per block.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn map_blocks(
        data: &mut [u8],
        c: usize,
        mut f: impl FnMut(__m256i) -> __m256i,
    ) -> usize {
        assert!(c == 3 || c == 4, "3 or 4 channels, got {c}");
        let block = 8 * c;
        for chunk in data.chunks_exact_mut(block) {
            let at = chunk.as_mut_ptr();
            // SAFETY: the CPU has AVX2 (the caller's contract), the chunk is 8·c bytes.
            unsafe {
                if c == 4 {
                    store_pixels::<4>(at, f(load_pixels::<4>(at)));
                } else {
                    store_pixels::<3>(at, f(load_pixels::<3>(at)));
                }
            }
        }
        data.len() / block * block
    }
}
