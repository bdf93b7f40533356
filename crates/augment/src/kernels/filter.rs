//! Shared filtering kernels (OpenCV's conventions, generic over the pixel type): separable and
//! 2-D correlation with `BORDER_REFLECT_101`, a running-sum box filter, and integer-parameter
//! helpers for the blur and filter ops. Results are rounded half to even and saturated like
//! OpenCV's `saturate_cast`; `f32` results are clamped to `[0, 1]`.
//!
//! Hand-written: no maintained crate offers OpenCV-exact borders and rounding on HWC buffers of
//! u8/u16/f32 with 1, 3 or 4 channels.

use rand::RngExt;

use super::box_filter::{box_float, box_int, half_up_mean};
use super::median::{median_histogram, median_select};
use crate::{AugRng, AugmentError, ImageBuf, Param, Pixel, Result};

/// A pixel type the filters can write back to.
pub trait FilterPixel: Pixel {
    /// An `f32` result rounded half to even and saturated to the type's range (`f32`: clamped
    /// to `[0, 1]`).
    fn store(v: f32) -> Self;
    /// As [`FilterPixel::store`], from `f64`.
    fn store64(v: f64) -> Self;
    /// The smaller of two values (median networks).
    fn lo(self, other: Self) -> Self;
    /// The larger of two values (median networks).
    fn hi(self, other: Self) -> Self;
    /// Median filter with an odd aperture `k ≥ 7`, border replicated.
    fn median_large(img: &ImageBuf<Self>, k: usize) -> ImageBuf<Self> {
        median_select(img, k)
    }
    /// `cv2.blur` for this type (see [`box_filter`](crate::box_filter)); `kw, kh ≥ 1`, not both 1.
    fn box_blur(img: &ImageBuf<Self>, kw: usize, kh: usize) -> ImageBuf<Self> {
        box_float(img, kw, kh)
    }
}

/// Adding 2^23 to an `f32` in `[0, 2^23)` rounds it to the nearest integer, ties to even, and
/// leaves that integer in the low mantissa bits: a branch-free, vectorisable rounding and
/// conversion (as 2^52 for `f64`).
pub(crate) const F32_ROUND: f32 = 8_388_608.0;
const F64_ROUND: f64 = 4_503_599_627_370_496.0;

impl FilterPixel for u8 {
    #[inline]
    fn store(v: f32) -> Self {
        (v.clamp(0.0, 255.0) + F32_ROUND).to_bits() as u8
    }
    #[inline]
    fn store64(v: f64) -> Self {
        (v.clamp(0.0, 255.0) + F64_ROUND).to_bits() as u8
    }
    #[inline]
    fn lo(self, other: Self) -> Self {
        self.min(other)
    }
    #[inline]
    fn hi(self, other: Self) -> Self {
        self.max(other)
    }
    fn median_large(img: &ImageBuf<u8>, k: usize) -> ImageBuf<u8> {
        median_histogram(img, k)
    }
    /// OpenCV sums windows of up to 256 `u8` pixels in 16 bits and divides in fixed point: a
    /// power-of-two area `d` gives `(S + d/2 + 1) >> log2(d)`, any other area rounds `S / d`
    /// half up; larger areas use `rint(f32(S) · f32(1/d))` (all measured against OpenCV 4.11).
    fn box_blur(img: &ImageBuf<u8>, kw: usize, kh: usize) -> ImageBuf<u8> {
        let d = (kw * kh) as u32;
        if kw * kh > 1 << 23 {
            box_float(img, kw, kh) // sums beyond i32
        } else if d > 256 {
            let scale = (1.0 / d as f64) as f32;
            box_int(img, kw, kh, |s| u8::store(s as i32 as f32 * scale))
        } else if d.is_power_of_two() {
            let (add, shift) = (d / 2 + 1, d.trailing_zeros());
            box_int(img, kw, kh, |s| ((s + add) >> shift).min(255) as u8)
        } else {
            let inv = (1.0 / d as f64) as f32;
            box_int(img, kw, kh, |s| half_up_mean(s, d, inv))
        }
    }
}

impl FilterPixel for u16 {
    #[inline]
    fn store(v: f32) -> Self {
        (v.clamp(0.0, 65535.0) + F32_ROUND).to_bits() as u16
    }
    #[inline]
    fn store64(v: f64) -> Self {
        (v.clamp(0.0, 65535.0) + F64_ROUND).to_bits() as u16
    }
    #[inline]
    fn lo(self, other: Self) -> Self {
        self.min(other)
    }
    #[inline]
    fn hi(self, other: Self) -> Self {
        self.max(other)
    }
    /// OpenCV: 32-bit sums, `rint(f32(S) · f32(1/d))`.
    fn box_blur(img: &ImageBuf<u16>, kw: usize, kh: usize) -> ImageBuf<u16> {
        let d = kw * kh;
        if d >= 1 << 15 {
            return box_float(img, kw, kh);
        }
        let scale = (1.0 / d as f64) as f32;
        box_int(img, kw, kh, |s| u16::store(s as i32 as f32 * scale))
    }
}

impl FilterPixel for f32 {
    #[inline]
    fn store(v: f32) -> Self {
        v.clamp(0.0, 1.0)
    }
    #[inline]
    fn store64(v: f64) -> Self {
        v.clamp(0.0, 1.0) as f32
    }
    #[inline]
    fn lo(self, other: Self) -> Self {
        if other < self { other } else { self }
    }
    #[inline]
    fn hi(self, other: Self) -> Self {
        if other > self { other } else { self }
    }
}

/// OpenCV's `BORDER_REFLECT_101` (`gfedcb|abcdefgh|gfedcba`) for any offset.
#[inline]
pub(crate) fn reflect101(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * n as isize - 2;
    let j = i.rem_euclid(period);
    if j >= n as isize {
        (period - j) as usize
    } else {
        j as usize
    }
}

/// `BORDER_REPLICATE` (`aaaa|abcd|dddd`).
#[inline]
pub(crate) fn replicate(i: isize, n: usize) -> usize {
    i.clamp(0, n as isize - 1) as usize
}

/// Row `row` (`w` pixels of `c` channels) with `left`/`right` pixels of reflect-101 border,
/// converted by `f`, written to `out` (`(w + left + right) · c` values). Inlined so that the
/// conversion is compiled with the caller's vector features (a separate copy ran scalar:
/// 13 % of motion blur at 512²).
#[inline(always)]
pub(crate) fn pad_row<P: Pixel, T>(
    row: &[P],
    c: usize,
    left: usize,
    right: usize,
    out: &mut [T],
    f: impl Fn(P) -> T,
) {
    let w = row.len() / c;
    let (head, rest) = out.split_at_mut(left * c);
    let (body, tail) = rest.split_at_mut(w * c);
    body.iter_mut().zip(row).for_each(|(o, &v)| *o = f(v));
    let borders = (head.chunks_exact_mut(c).zip(-(left as isize)..0)).chain(
        tail.chunks_exact_mut(c)
            .zip(w as isize..(w + right) as isize),
    );
    for (o, x) in borders {
        let s = reflect101(x, w) * c;
        o.iter_mut()
            .zip(&row[s..s + c])
            .for_each(|(o, &v)| *o = f(v));
    }
}

/// Appends `acc` stored as pixels to `data`, in a loop compiled with the caller's vector
/// features (`Vec::extend` over a `map` stayed a scalar out-of-line copy).
#[inline(always)]
fn push_stored<P: FilterPixel>(data: &mut Vec<P>, acc: &[f32]) {
    data.reserve(acc.len());
    let start = data.len();
    let spare = &mut data.spare_capacity_mut()[..acc.len()];
    spare
        .iter_mut()
        .zip(acc)
        .for_each(|(d, &v)| _ = d.write(P::store(v)));
    // SAFETY: the `acc.len()` values after `start` were written on the line above.
    unsafe { data.set_len(start + acc.len()) };
}

/// Output values computed together: 64 accumulators (4 AVX-512 or 8 AVX2 registers) hide the
/// latency of the additions (measured 1.3–1.7× over 32 on AVX-512 for motion blur and emboss).
const LANES: usize = 64;

/// Defines `$name` to run `$body` (an `#[inline(always)]` function with the same signature)
/// compiled for AVX-512 or AVX2 where the CPU has it, else for the baseline: the same
/// operations in the same order (no fused multiply-add), so every CPU computes the same result.
macro_rules! vector_dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident<$($g:ident: $b:path),*>($($arg:ident: $ty:ty),*) -> $ret:ty = $body:ident;) => {
        $(#[$doc])*
        $vis fn $name<$($g: $b),*>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512<$($g: $b),*>($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn avx2<$($g: $b),*>($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports AVX-512 F, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU supports AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// `out[x] = Σ_t w_t · src[o_t + x]` over the taps `(w_t, o_t)` in order, accumulated from 0
/// in `f32` (OpenCV's order of summation; no fused multiply-add, so every CPU agrees).
#[inline(always)]
fn weighted_sum(src: &[f32], taps: &[(f32, usize)], out: &mut [f32]) {
    let n = out.len();
    let mut x = 0;
    while x < n && n >= LANES {
        // The last block overlaps the one before instead of a scalar tail: its values are
        // computed the same way, and a 32-value scalar tail of a 224-px RGB row was a third
        // of the time.
        x = x.min(n - LANES);
        let mut acc = [0f32; LANES];
        for &(wt, o) in taps {
            for (a, s) in acc.iter_mut().zip(&src[o + x..o + x + LANES]) {
                *a += wt * s;
            }
        }
        out[x..x + LANES].copy_from_slice(&acc);
        x += LANES;
    }
    for (x, v) in out.iter_mut().enumerate().skip(x) {
        *v = taps.iter().fold(0.0, |a, &(wt, o)| a + wt * src[o + x]);
    }
}

/// A symmetric kernel: `out[x] = w_0 · src[o_0 + x] + Σ_j w_j · (src[o⁺_j + x] + src[o⁻_j + x])`
/// with `j` going outwards from the centre (OpenCV's order for symmetric kernels).
#[inline(always)]
fn symmetric_sum(
    src: &[f32],
    centre: (f32, usize),
    pairs: &[(f32, usize, usize)],
    out: &mut [f32],
) {
    let n = out.len();
    let (w0, o0) = centre;
    let mut x = 0;
    while x < n && n >= LANES {
        // An overlapping last block, as in `weighted_sum`.
        x = x.min(n - LANES);
        let mut acc = [0f32; LANES];
        for (a, s) in acc.iter_mut().zip(&src[o0 + x..o0 + x + LANES]) {
            *a = w0 * s;
        }
        for &(wt, p, m) in pairs {
            let (sp, sm) = (&src[p + x..p + x + LANES], &src[m + x..m + x + LANES]);
            for ((a, u), v) in acc.iter_mut().zip(sp).zip(sm) {
                *a += wt * (u + v);
            }
        }
        out[x..x + LANES].copy_from_slice(&acc);
        x += LANES;
    }
    for (x, v) in out.iter_mut().enumerate().skip(x) {
        *v = pairs.iter().fold(w0 * src[o0 + x], |a, &(wt, p, m)| {
            a + wt * (src[p + x] + src[m + x])
        });
    }
}

/// Reusable tap lists of [`pass`].
#[derive(Default)]
struct Taps {
    taps: Vec<(f32, usize)>,
    pairs: Vec<(f32, usize, usize)>,
}

/// One pass of a separable filter: `out = Σ_j k_j · src[offset(j) + ·]`, pairing the taps of a
/// symmetric kernel.
#[inline(always)]
fn pass(src: &[f32], k: &[f32], offset: impl Fn(usize) -> usize, t: &mut Taps, out: &mut [f32]) {
    let r = k.len() / 2;
    let symmetric = k.len() % 2 == 1 && (0..r).all(|j| k[j] == k[k.len() - 1 - j]);
    if symmetric {
        t.pairs.clear();
        t.pairs
            .extend((1..=r).map(|j| (k[r + j], offset(r + j), offset(r - j))));
        symmetric_sum(src, (k[r], offset(r)), &t.pairs, out);
    } else {
        t.taps.clear();
        t.taps
            .extend(k.iter().enumerate().map(|(j, &w)| (w, offset(j))));
        weighted_sum(src, &t.taps, out);
    }
}

/// Row-filters source row `reflect101(t - ay)` into ring slot `t % kh`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn filter_into_ring<P: FilterPixel>(
    img: &ImageBuf<P>,
    kx: &[f32],
    (t, ay, kh): (usize, usize, usize),
    padded: &mut [f32],
    taps: &mut Taps,
    ring: &mut [f32],
) {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let (n, ax) = (w * c, kx.len() / 2);
    let y = reflect101(t as isize - ay as isize, h);
    pad_row(img.row(y), c, ax, kx.len() - 1 - ax, padded, |v| v.to_f32());
    let slot = (t % kh) * n;
    pass(padded, kx, |j| j * c, taps, &mut ring[slot..slot + n]);
}

vector_dispatch! {
    /// `cv2.sepFilter2D(img, -1, kx, ky)` with `BORDER_REFLECT_101` (correlation, anchor at the
    /// kernel centres): an `f32` row pass, then an `f32` column pass (symmetric kernels summed
    /// in pairs from the centre out, as OpenCV does), rounded like OpenCV.
    pub fn sep_filter2d<P: FilterPixel>(img: &ImageBuf<P>, kx: &[f32], ky: &[f32]) -> ImageBuf<P>
        = sep_filter2d_body;
}

/// [`sep_filter2d`]: the row-filtered rows of the column window sit in a ring of `ky.len()`
/// rows (window position `t` in slot `t % ky.len()`), so each source row is filtered once.
#[inline(always)]
fn sep_filter2d_body<P: FilterPixel>(img: &ImageBuf<P>, kx: &[f32], ky: &[f32]) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let (n, kh) = (w * c, ky.len());
    let ay = kh / 2;
    let mut ring = vec![0f32; kh * n];
    let mut padded = vec![0f32; (w + kx.len() - 1) * c];
    let mut taps = Taps::default();
    for t in 0..kh - 1 {
        filter_into_ring(img, kx, (t, ay, kh), &mut padded, &mut taps, &mut ring);
    }
    let mut data = Vec::with_capacity(h * n);
    let mut acc = vec![0f32; n];
    for y in 0..h {
        filter_into_ring(
            img,
            kx,
            (y + kh - 1, ay, kh),
            &mut padded,
            &mut taps,
            &mut ring,
        );
        pass(&ring, ky, |i| ((y + i) % kh) * n, &mut taps, &mut acc);
        push_stored(&mut data, &acc);
    }
    ImageBuf::with_data(w, h, c, data)
}

vector_dispatch! {
    /// `cv2.filter2D(img, -1, kernel)` per channel: correlation (the kernel is not flipped) with
    /// the anchor at the kernel centre, `BORDER_REFLECT_101`, `f32` accumulation over the
    /// non-zero taps in row-major order. `kernel` is `kh` rows of `kw` values (a shorter kernel
    /// is padded with zeros).
    pub fn filter2d<P: FilterPixel>(img: &ImageBuf<P>, kernel: &[f32], kw: usize, kh: usize) -> ImageBuf<P>
        = filter2d_body;
}

#[inline(always)]
fn filter2d_body<P: FilterPixel>(
    img: &ImageBuf<P>,
    kernel: &[f32],
    kw: usize,
    kh: usize,
) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let n = w * c;
    let (ax, ay) = (kw / 2, kh / 2);
    let pw = (w + kw - 1) * c;
    // The padded `f32` rows of the window, in a ring of `kh` slots (slot `sy % kh` holds source
    // row `sy`): the rows one output row reads are consecutive after reflection, so they never
    // share a slot, and each row is converted once while it stays in cache. Padding the whole
    // image first (4× its bytes) made this op memory-bound at 512² (PROFILE.md).
    let mut ring = vec![0f32; kh * pw];
    let mut held = vec![usize::MAX; kh];
    let mut data = Vec::with_capacity(h * n);
    let mut acc = vec![0f32; n];
    let mut taps = Vec::with_capacity(kw * kh);
    for y in 0..h {
        taps.clear();
        for i in 0..kh {
            let sy = reflect101(y as isize + i as isize - ay as isize, h);
            let slot = sy % kh;
            if held[slot] != sy {
                let into = &mut ring[slot * pw..(slot + 1) * pw];
                pad_row(img.row(sy), c, ax, kw - 1 - ax, into, |v| v.to_f32());
                held[slot] = sy;
            }
            let taps_row = kernel.iter().skip(i * kw).take(kw).enumerate();
            taps.extend(
                taps_row
                    .filter(|(_, k)| **k != 0.0)
                    .map(|(j, &k)| (k, slot * pw + j * c)),
            );
        }
        weighted_sum(&ring, &taps, &mut acc);
        push_stored(&mut data, &acc);
    }
    ImageBuf::with_data(w, h, c, data)
}

/// The normalised 1-D Gaussian of Albumentations' `GaussianBlur` (PIL's size rule): size
/// `int(3.5σ)·2 + 1`, taps `exp(-x²/2σ²)` summed to 1 in `f64`, then `f32`.
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let r = (sigma * 3.5) as usize;
    let taps: Vec<f64> = (0..2 * r + 1)
        .map(|i| {
            let x = i as f64 - r as f64;
            (-0.5 * (x / sigma) * (x / sigma)).exp()
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    taps.iter().map(|t| (t / sum) as f32).collect()
}

/// Checks an integer-valued parameter: in `[lo, hi]`, and every fixed value, listed value and
/// range end a whole number (distributions are rounded when sampled).
pub(crate) fn validate_int(
    p: &Param,
    op: &'static str,
    field: &'static str,
    lo: f64,
    hi: f64,
) -> Result<()> {
    p.validate(op, field, lo, hi)?;
    let values: Vec<f64> = match p {
        Param::Fixed(v) => vec![*v],
        Param::Range(r) => r.to_vec(),
        Param::Choice { choice } => choice.clone(),
        Param::Dist(_) => Vec::new(),
    };
    if let Some(v) = values.iter().find(|v| v.fract() != 0.0) {
        return Err(AugmentError::Invalid {
            op,
            field,
            value: v.to_string(),
            expected: "whole numbers".into(),
        });
    }
    Ok(())
}

/// Draws a whole number: a range is uniform over the integers in `[a, b]` (imgaug's
/// `DiscreteUniform`), anything else is sampled and rounded.
pub(crate) fn sample_int(p: &Param, rng: &mut AugRng) -> i64 {
    match p {
        Param::Range([a, b]) => {
            let (a, b) = (a.round() as i64, b.round() as i64);
            if a >= b { a } else { rng.random_range(a..=b) }
        }
        other => other.sample(rng).round() as i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect101_mirrors_without_repeating_the_edge() {
        let got: Vec<usize> = (-3..8).map(|i| reflect101(i, 5)).collect();
        assert_eq!(got, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        assert_eq!(reflect101(-7, 1), 0);
    }

    #[test]
    fn rounding_is_half_to_even_and_saturating() {
        assert_eq!(
            [0.5f32, 1.5, 2.5, -3.0, 300.0].map(u8::store),
            [0, 2, 2, 0, 255]
        );
        assert_eq!(u16::store(70000.0), 65535);
        assert_eq!(f32::store(1.5), 1.0);
        assert_eq!(u8::store64(2.5), 2);
    }

    #[test]
    fn filters_keep_a_flat_image_flat_on_every_type() {
        let flat = ImageBuf::<u16>::filled(6, 5, 4, 40000).unwrap();
        let k = gaussian_kernel(1.2);
        assert_eq!(sep_filter2d(&flat, &k, &k), flat);
        assert_eq!(super::super::box_filter::box_filter(&flat, 3, 3), flat);
        assert_eq!(super::super::median::median_filter(&flat, 7), flat);
        let g = ImageBuf::<f32>::filled(6, 5, 1, 0.25).unwrap();
        let out = filter2d(&g, &[0.0, 0.5, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0], 3, 3);
        assert!(out.data().iter().all(|v| (v - 0.25).abs() < 1e-6));
    }

    #[test]
    fn integer_parameters_are_checked_and_drawn_whole() {
        assert!(validate_int(&Param::Fixed(2.5), "op", "k", 1.0, 9.0).is_err());
        assert!(validate_int(&Param::Range([1.0, 7.0]), "op", "k", 1.0, 9.0).is_ok());
        let mut rng = <AugRng as rand::SeedableRng>::seed_from_u64(3);
        let mut seen = [false; 8];
        for _ in 0..200 {
            let v = sample_int(&Param::Range([1.0, 7.0]), &mut rng);
            seen[v as usize] = true;
        }
        assert_eq!(seen, [false, true, true, true, true, true, true, true]);
    }
}
