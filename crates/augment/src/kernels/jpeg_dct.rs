//! One 8×8 block of a baseline JPEG round trip: libjpeg-turbo's islow forward DCT
//! (`jfdctint.c`), its reciprocal quantizer (`jcdctmgr.c`, the 16-bit one of its SIMD builds),
//! dequantization and its islow inverse DCT (`jidctint.c`), bit for bit.
//!
//! The butterflies are written once ([`fdct_pass`], [`idct_pass`]) over a lane type: `i64`
//! ([`Long`], libjpeg's `JLONG`: the reference, eight calls per pass) and, with AVX2, eight `i32` lanes
//! (one call per pass, the block transposed between passes). Integer arithmetic throughout, so
//! both give the same bytes; 32 bits cannot overflow (libjpeg-turbo's SIMD passes are 32-bit
//! too) and the tests compare the two on extreme blocks.
//!
//! Hand-written because no maintained crate exposes libjpeg's lossy steps without its entropy
//! coder (the only part of a round trip that cannot change a pixel).

use std::ops::{Add, Mul, Sub};

/// `FIX(x)` at libjpeg's `CONST_BITS` = 13.
const C0298: i32 = 2446;
const C0390: i32 = 3196;
const C0541: i32 = 4433;
const C0765: i32 = 6270;
const C0899: i32 = 7373;
const C1175: i32 = 9633;
const C1501: i32 = 12299;
const C1847: i32 = 15137;
const C1961: i32 = 16069;
const C2053: i32 = 16819;
const C2562: i32 = 20995;
const C3072: i32 = 25172;

/// The arithmetic a pass needs.
pub(super) trait Lanes:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<i32, Output = Self>
{
    /// `x << N`.
    fn shl<const N: i32>(self) -> Self;
    /// libjpeg's `DESCALE(x, N)`: `(x + 2^(N-1)) >> N`, arithmetic.
    fn descale<const N: i32>(self) -> Self;
}

/// libjpeg's `JLONG`, the reference's lane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Long(i64);

impl Add for Long {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Long(self.0 + o.0)
    }
}
impl Sub for Long {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Long(self.0 - o.0)
    }
}
impl Mul<i32> for Long {
    type Output = Self;
    fn mul(self, k: i32) -> Self {
        Long(self.0 * k as i64)
    }
}
impl Lanes for Long {
    fn shl<const N: i32>(self) -> Self {
        Long(self.0 << N)
    }
    fn descale<const N: i32>(self) -> Self {
        Long((self.0 + (1 << (N - 1))) >> N)
    }
}

/// The quantizer of one table, per coefficient in natural (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Quantizer {
    /// The table's values (the dequantization multipliers).
    pub(crate) q: [i32; 64],
    /// `compute_reciprocal(8q)`: reciprocal, correction, shift.
    recip: [i32; 64],
    corr: [i32; 64],
    shift: [i32; 64],
}

impl Quantizer {
    /// The reciprocals libjpeg-turbo derives for the islow DCT, whose output is 8× the DCT:
    /// `compute_reciprocal(q << 3)` with a 16-bit `DCTELEM`.
    pub(crate) fn new(q: [u16; 64]) -> Self {
        let mut out = Quantizer {
            q: [0; 64],
            recip: [0; 64],
            corr: [0; 64],
            shift: [0; 64],
        };
        for (i, &qi) in q.iter().enumerate() {
            let d = (qi.max(1) as u32) << 3;
            let b = 31 - d.leading_zeros();
            let mut r = 16 + b;
            let (mut fq, fr) = ((1u64 << r) / d as u64, (1u64 << r) % d as u64);
            let mut c = d / 2;
            if fr == 0 {
                fq >>= 1;
                r -= 1;
            } else if fr <= (d / 2) as u64 {
                c += 1;
            } else {
                fq += 1;
            }
            out.q[i] = qi.max(1) as i32;
            out.recip[i] = fq as i32;
            out.corr[i] = c as i32;
            out.shift[i] = r as i32;
        }
        out
    }

    /// `jcdctmgr.c`'s `quantize` then dequantization: `sign(x)·((|x| + c)·fq >> r)·q`.
    #[inline(always)]
    fn round(&self, i: usize, x: i64) -> i64 {
        let m = ((x.unsigned_abs() + self.corr[i] as u64) * self.recip[i] as u64) >> self.shift[i];
        let m = m as i64 * self.q[i] as i64;
        if x < 0 { -m } else { m }
    }
}

/// `DESCALE(v, A)` in a pass's first use, `DESCALE(v, B)` in its second (a named function,
/// not a closure, so that it inlines into the AVX2 caller).
#[inline(always)]
fn descale_by<V: Lanes, const FIRST: bool, const A: i32, const B: i32>(v: V) -> V {
    if FIRST {
        v.descale::<A>()
    } else {
        v.descale::<B>()
    }
}

/// One islow FDCT pass over samples `x[0..8]` along a row (`FIRST`) or a column.
#[inline(always)]
pub(super) fn fdct_pass<V: Lanes, const FIRST: bool>(x: [V; 8]) -> [V; 8] {
    // CONST_BITS ∓ PASS1_BITS
    let ds = descale_by::<V, FIRST, 11, 15>;
    let (t0, t7) = (x[0] + x[7], x[0] - x[7]);
    let (t1, t6) = (x[1] + x[6], x[1] - x[6]);
    let (t2, t5) = (x[2] + x[5], x[2] - x[5]);
    let (t3, t4) = (x[3] + x[4], x[3] - x[4]);
    let (t10, t13, t11, t12) = (t0 + t3, t0 - t3, t1 + t2, t1 - t2);
    let (dc, d4) = if FIRST {
        ((t10 + t11).shl::<2>(), (t10 - t11).shl::<2>())
    } else {
        ((t10 + t11).descale::<2>(), (t10 - t11).descale::<2>())
    };
    let z1 = (t12 + t13) * C0541;
    let d2 = ds(z1 + t13 * C0765);
    let d6 = ds(z1 + t12 * -C1847);
    let (z1, z2, z3, z4) = (t4 + t7, t5 + t6, t4 + t6, t5 + t7);
    let z5 = (z3 + z4) * C1175;
    let (t4, t5, t6, t7) = (t4 * C0298, t5 * C2053, t6 * C3072, t7 * C1501);
    let (z1, z2) = (z1 * -C0899, z2 * -C2562);
    let (z3, z4) = (z3 * -C1961 + z5, z4 * -C0390 + z5);
    [
        dc,
        ds(t7 + z1 + z4),
        d2,
        ds(t6 + z2 + z3),
        d4,
        ds(t5 + z2 + z4),
        d6,
        ds(t4 + z1 + z3),
    ]
}

/// One islow IDCT pass over coefficients `x[0..8]` along a column (`FIRST`) or a row.
#[inline(always)]
pub(super) fn idct_pass<V: Lanes, const FIRST: bool>(x: [V; 8]) -> [V; 8] {
    // CONST_BITS - PASS1_BITS, then CONST_BITS + PASS1_BITS + 3
    let ds = descale_by::<V, FIRST, 11, 18>;
    let z1 = (x[2] + x[6]) * C0541;
    let (t2, t3) = (z1 + x[6] * -C1847, z1 + x[2] * C0765);
    let (t0, t1) = ((x[0] + x[4]).shl::<13>(), (x[0] - x[4]).shl::<13>());
    let (t10, t13, t11, t12) = (t0 + t3, t0 - t3, t1 + t2, t1 - t2);
    let (t0, t1, t2, t3) = (x[7], x[5], x[3], x[1]);
    let (z1, z2, z3, z4) = (t0 + t3, t1 + t2, t0 + t2, t1 + t3);
    let z5 = (z3 + z4) * C1175;
    let (t0, t1, t2, t3) = (t0 * C0298, t1 * C2053, t2 * C3072, t3 * C1501);
    let (z1, z2) = (z1 * -C0899, z2 * -C2562);
    let (z3, z4) = (z3 * -C1961 + z5, z4 * -C0390 + z5);
    let (t0, t1, t2, t3) = (t0 + z1 + z3, t1 + z2 + z4, t2 + z2 + z3, t3 + z1 + z4);
    [
        ds(t10 + t3),
        ds(t11 + t2),
        ds(t12 + t1),
        ds(t13 + t0),
        ds(t13 - t0),
        ds(t12 - t1),
        ds(t11 - t2),
        ds(t10 - t3),
    ]
}

/// The round trip of the 8×8 block of `plane` whose top-left sample is `plane[0]` (rows
/// `stride` apart), in place.
pub(crate) fn round_trip_block(plane: &mut [u8], stride: usize, q: &Quantizer) {
    assert!(plane.len() >= 7 * stride + 8, "an 8×8 block in the plane");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked on the line above), the block is in the slice.
        unsafe { avx2::round_trip_block(plane, stride, q) };
        return;
    }
    portable(plane, stride, q);
}

/// The reference: libjpeg's C loops, in `JLONG`.
pub(super) fn portable(plane: &mut [u8], stride: usize, q: &Quantizer) {
    let mut b = [[Long(0); 8]; 8];
    for (y, row) in b.iter_mut().enumerate() {
        for (x, v) in row.iter_mut().enumerate() {
            *v = Long(plane[y * stride + x] as i64 - 128);
        }
    }
    for row in &mut b {
        *row = fdct_pass::<Long, true>(*row);
    }
    // The column passes on the transposed block (rows of `t` are the columns of `b`).
    let mut t = transpose(&b);
    for (x, col) in t.iter_mut().enumerate() {
        let coef = fdct_pass::<Long, false>(*col);
        for (y, (v, c)) in col.iter_mut().zip(coef).enumerate() {
            *v = Long(q.round(y * 8 + x, c.0));
        }
        *col = idct_pass::<Long, true>(*col);
    }
    let b = transpose(&t);
    for (y, row) in b.iter().enumerate() {
        // libjpeg's range_limit: clamp for |v| < 512 (SIMD builds saturate beyond, C wraps;
        // no quantized block reaches it).
        for (x, v) in idct_pass::<Long, false>(*row).into_iter().enumerate() {
            plane[y * stride + x] = (v.0 + 128).clamp(0, 255) as u8;
        }
    }
}

/// Rows to columns.
fn transpose(b: &[[Long; 8]; 8]) -> [[Long; 8]; 8] {
    std::array::from_fn(|x| std::array::from_fn(|y| b[y][x]))
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::ops::{Add, Mul, Sub};

    use super::{Lanes, Quantizer, fdct_pass, idct_pass};

    /// Eight `i32` lanes.
    #[derive(Clone, Copy)]
    pub(super) struct I32x8(__m256i);

    // SAFETY (every intrinsic below): these are only reached from `round_trip_block`, which
    // runs with AVX2 enabled; the methods are inlined into it.
    impl Add for I32x8 {
        type Output = Self;
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            I32x8(unsafe { _mm256_add_epi32(self.0, o.0) })
        }
    }
    impl Sub for I32x8 {
        type Output = Self;
        #[inline(always)]
        fn sub(self, o: Self) -> Self {
            I32x8(unsafe { _mm256_sub_epi32(self.0, o.0) })
        }
    }
    impl Mul<i32> for I32x8 {
        type Output = Self;
        #[inline(always)]
        fn mul(self, k: i32) -> Self {
            I32x8(unsafe { _mm256_mullo_epi32(self.0, _mm256_set1_epi32(k)) })
        }
    }
    impl Lanes for I32x8 {
        #[inline(always)]
        fn shl<const N: i32>(self) -> Self {
            I32x8(unsafe { _mm256_slli_epi32::<N>(self.0) })
        }
        #[inline(always)]
        fn descale<const N: i32>(self) -> Self {
            I32x8(unsafe {
                _mm256_srai_epi32::<N>(_mm256_add_epi32(self.0, _mm256_set1_epi32(1 << (N - 1))))
            })
        }
    }

    /// Rows to columns.
    #[inline(always)]
    fn transpose(v: [I32x8; 8]) -> [I32x8; 8] {
        // SAFETY: see the impls above.
        unsafe {
            let [a, b, c, d, e, f, g, h] = [
                v[0].0, v[1].0, v[2].0, v[3].0, v[4].0, v[5].0, v[6].0, v[7].0,
            ];
            let (ab0, ab1) = (_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
            let (cd0, cd1) = (_mm256_unpacklo_epi32(c, d), _mm256_unpackhi_epi32(c, d));
            let (ef0, ef1) = (_mm256_unpacklo_epi32(e, f), _mm256_unpackhi_epi32(e, f));
            let (gh0, gh1) = (_mm256_unpacklo_epi32(g, h), _mm256_unpackhi_epi32(g, h));
            let r0 = _mm256_unpacklo_epi64(ab0, cd0);
            let r1 = _mm256_unpackhi_epi64(ab0, cd0);
            let r2 = _mm256_unpacklo_epi64(ab1, cd1);
            let r3 = _mm256_unpackhi_epi64(ab1, cd1);
            let s0 = _mm256_unpacklo_epi64(ef0, gh0);
            let s1 = _mm256_unpackhi_epi64(ef0, gh0);
            let s2 = _mm256_unpacklo_epi64(ef1, gh1);
            let s3 = _mm256_unpackhi_epi64(ef1, gh1);
            [
                I32x8(_mm256_permute2x128_si256::<0x20>(r0, s0)),
                I32x8(_mm256_permute2x128_si256::<0x20>(r1, s1)),
                I32x8(_mm256_permute2x128_si256::<0x20>(r2, s2)),
                I32x8(_mm256_permute2x128_si256::<0x20>(r3, s3)),
                I32x8(_mm256_permute2x128_si256::<0x31>(r0, s0)),
                I32x8(_mm256_permute2x128_si256::<0x31>(r1, s1)),
                I32x8(_mm256_permute2x128_si256::<0x31>(r2, s2)),
                I32x8(_mm256_permute2x128_si256::<0x31>(r3, s3)),
            ]
        }
    }

    /// `Quantizer::round` on one row of coefficients.
    #[inline(always)]
    fn round(v: I32x8, q: &Quantizer, row: usize) -> I32x8 {
        let at = row * 8;
        // SAFETY: see the impls above; each table row is 8 `i32`.
        unsafe {
            let corr = _mm256_loadu_si256(q.corr[at..at + 8].as_ptr().cast());
            let recip = _mm256_loadu_si256(q.recip[at..at + 8].as_ptr().cast());
            let shift = _mm256_loadu_si256(q.shift[at..at + 8].as_ptr().cast());
            let mult = _mm256_loadu_si256(q.q[at..at + 8].as_ptr().cast());
            let mag = _mm256_abs_epi32(v.0);
            // (|x| + c)·fq < 2^32: the low 32 bits of the product, shifted as unsigned.
            let prod = _mm256_mullo_epi32(_mm256_add_epi32(mag, corr), recip);
            let m = _mm256_mullo_epi32(_mm256_srlv_epi32(prod, shift), mult);
            I32x8(_mm256_sign_epi32(m, v.0))
        }
    }

    /// [`super::portable`] with the eight rows or columns of a pass in the lanes.
    ///
    /// # Safety
    /// The CPU must have AVX2; `plane` holds the block (`7·stride + 8` bytes).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn round_trip_block(plane: &mut [u8], stride: usize, q: &Quantizer) {
        let base = plane.as_mut_ptr();
        let mut rows = [I32x8(_mm256_setzero_si256()); 8];
        for (y, row) in rows.iter_mut().enumerate() {
            // SAFETY: row y's 8 bytes are inside the slice (asserted by the caller).
            let bytes = unsafe { _mm_loadl_epi64(base.add(y * stride).cast()) };
            *row = I32x8(_mm256_sub_epi32(
                _mm256_cvtepu8_epi32(bytes),
                _mm256_set1_epi32(128),
            ));
        }
        let freq_rows = transpose(fdct_pass::<I32x8, true>(transpose(rows)));
        let coef = fdct_pass::<I32x8, false>(freq_rows);
        let mut coef = coef;
        for (u, row) in coef.iter_mut().enumerate() {
            *row = round(*row, q, u);
        }
        let ws = idct_pass::<I32x8, true>(coef);
        let out = transpose(idct_pass::<I32x8, false>(transpose(ws)));
        let centre = _mm256_set1_epi32(128);
        let (lo, hi) = (_mm256_setzero_si256(), _mm256_set1_epi32(255));
        let mut px = [_mm256_setzero_si256(); 8];
        for (p, v) in px.iter_mut().zip(out) {
            *p = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(v.0, centre), lo), hi);
        }
        // Two rows to 16-bit, four to bytes, then the 4-byte groups back in row order.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        for half in 0..2 {
            let r = &px[half * 4..half * 4 + 4];
            let bytes = _mm256_packus_epi16(
                _mm256_packs_epi32(r[0], r[1]),
                _mm256_packs_epi32(r[2], r[3]),
            );
            let bytes = _mm256_permutevar8x32_epi32(bytes, order);
            let mut out = [0u64; 4];
            // SAFETY: 32 bytes into a 32-byte array.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), bytes) };
            for (i, word) in out.into_iter().enumerate() {
                let y = half * 4 + i;
                // SAFETY: row y's 8 bytes are inside the slice.
                unsafe { base.add(y * stride).cast::<u64>().write_unaligned(word) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantizers() -> Vec<Quantizer> {
        [1u16, 2, 3, 7, 16, 99, 255]
            .into_iter()
            .map(|s| {
                Quantizer::new(std::array::from_fn(|i| {
                    (s as usize * (i % 5 + 1)).min(255) as u16
                }))
            })
            .collect()
    }

    fn blocks() -> Vec<[u8; 64]> {
        let mut out = vec![[0u8; 64], [255u8; 64], [128u8; 64]];
        out.push(std::array::from_fn(|i| {
            if (i / 8 + i % 8) % 2 == 0 { 0 } else { 255 }
        }));
        out.push(std::array::from_fn(|i| if i % 8 < 4 { 0 } else { 255 }));
        out.push(std::array::from_fn(|i| if i / 8 < 4 { 255 } else { 0 }));
        let mut s = 0x1234_5678_9abc_def0u64;
        for _ in 0..200 {
            out.push(std::array::from_fn(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u8
            }));
        }
        out
    }

    /// A dequantized all-zero AC block is its DC everywhere: the shortcut libjpeg takes for
    /// zero columns and rows gives the same values as the full passes.
    #[test]
    fn a_flat_block_stays_flat() {
        for q in quantizers() {
            for level in [0u8, 1, 77, 128, 200, 255] {
                let mut b = [level; 64];
                portable(&mut b, 8, &q);
                assert!(b.iter().all(|&v| v == b[0]), "level {level}: {b:?}");
                assert!(
                    (b[0] as i32 - level as i32).abs() <= q.q[0],
                    "level {level} → {}",
                    b[0]
                );
            }
        }
    }

    #[test]
    fn avx2_equals_the_reference() {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            for q in quantizers() {
                for block in blocks() {
                    // Inside a wider plane, so the stride is exercised.
                    let mut plane = vec![7u8; 8 * 24];
                    for y in 0..8 {
                        plane[y * 24 + 5..y * 24 + 13].copy_from_slice(&block[y * 8..y * 8 + 8]);
                    }
                    let mut want = plane.clone();
                    portable(&mut want[5..], 24, &q);
                    // SAFETY: the CPU has AVX2; the block fits.
                    unsafe { avx2::round_trip_block(&mut plane[5..], 24, &q) };
                    assert_eq!(plane, want);
                }
            }
        }
    }

    /// The quantizer rounds like the division it replaces, `round(|x| / 8q)` half away from
    /// zero, except where libjpeg-turbo's reciprocal is one off (kept: it is what it writes).
    #[test]
    fn reciprocal_quantizer_is_libjpeg_turbos() {
        // compute_reciprocal(8) for q = 1: a power of two, fq = 2^15, r = 18, c = 4.
        let q = Quantizer::new([1; 64]);
        assert_eq!((q.recip[0], q.corr[0], q.shift[0]), (32768, 4, 18));
        // q = 3: divisor 24, b = 4, r = 20, 2^20 = 43690·24 + 16 (> 12) so fq + 1, c = 12.
        let q = Quantizer::new([3; 64]);
        assert_eq!((q.recip[0], q.corr[0], q.shift[0]), (43691, 12, 20));
        for x in [-1000i64, -13, -12, -11, 0, 11, 12, 13, 36, 999] {
            assert_eq!(
                q.round(0, x),
                (x.signum() * ((x.abs() + 12) / 24)) * 3,
                "x = {x}"
            );
        }
    }
}
