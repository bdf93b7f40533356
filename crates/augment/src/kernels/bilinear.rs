//! `u8` bilinear resizing with OpenCV's fixed-point arithmetic (`cv2.resize`, `INTER_LINEAR`):
//! 11-bit weights at half-pixel centres, a horizontal pass per source row (each row once, two
//! kept), and the vertical blend OpenCV's SIMD path computes,
//! `((b0·(h0 >> 4)) >> 16 + (b1·(h1 >> 4)) >> 16 + 2) >> 2`. Written by hand because
//! `fast_image_resize`'s convolution (3 taps on upscaling, measured 2× slower on RGB 224 → 256)
//! neither matches OpenCV's values nor its speed; this kernel is compiled again for AVX2 and
//! picked at run time.

use crate::ImageBuf;

/// OpenCV's `INTER_RESIZE_COEF_SCALE`.
const ONE: i32 = 1 << 11;

/// Per output index: the first of two neighbouring source indices and their 11-bit weights.
/// At a clamped edge OpenCV reads the last pixel with weight 1; here that is the second pixel
/// of the last pair, so every tap reads two adjacent pixels (needs `n_in ≥ 2`).
fn taps(n_in: usize, n_out: usize) -> Vec<(usize, i32, i32)> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|d| {
            let f = (d as f64 + 0.5) * scale - 0.5;
            let s = f.floor() as i64;
            if s < 0 {
                return (0, ONE, 0);
            }
            if s >= n_in as i64 - 1 {
                return (n_in - 2, 0, ONE);
            }
            let w0 = ((1.0 - (f - s as f64)) * ONE as f64).round() as i32;
            (s as usize, w0, ONE - w0)
        })
        .collect()
}

/// One source row through the horizontal taps: `C`-channel pixels to 22-bit sums.
#[inline(always)]
fn horizontal<const C: usize>(row: &[u8], xs: &[(usize, i32, i32)], out: &mut [i32]) {
    for (o, &(s, a0, a1)) in out.chunks_exact_mut(C).zip(xs) {
        let p = &row[s * C..s * C + 2 * C];
        for k in 0..C {
            o[k] = p[k] as i32 * a0 + p[C + k] as i32 * a1;
        }
    }
}

/// The horizontal taps per output value (not pixel) for the AVX-512 pass: source offset in the
/// row and the two weights of value `j = C·o + k`.
struct ValueTaps {
    offsets: Vec<i32>,
    w0: Vec<i32>,
    w1: Vec<i32>,
}

impl ValueTaps {
    fn new<const C: usize>(xs: &[(usize, i32, i32)]) -> Self {
        let values = || xs.iter().flat_map(|t| (0..C).map(move |k| (*t, k)));
        Self {
            offsets: values().map(|((s, _, _), k)| (s * C + k) as i32).collect(),
            w0: values().map(|((_, a0, _), _)| a0).collect(),
            w1: values().map(|((_, _, a1), _)| a1).collect(),
        }
    }
}

/// [`horizontal`] for the row starting at byte `start` of `data`, 16 values at a time with
/// AVX-512 (the scalar gather was 75 % of resize time); the same sums. When the 16 values'
/// sources lie within 64 bytes (any shrink up to ~3.5×, every enlargement) one load and a VBMI
/// byte permute per tap fetch them; wider blocks use gathers (measured 4× slower here), and
/// blocks whose reads would pass the end of `data` go one value at a time.
///
/// # Safety
/// The CPU must have AVX-512 F, BW and VBMI.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
unsafe fn horizontal_avx512(data: &[u8], start: usize, c: usize, t: &ValueTaps, out: &mut [i32]) {
    use std::arch::x86_64::*;
    let n = out.len();
    let row = &data[start..];
    let byte = _mm512_set1_epi32(0xff);
    let mut j = 0;
    // Source pixels never go backwards, so a block's offsets lie between its first pixel's
    // start and its last pixel's last channel, `offsets[j + 15] + c − 1`, whose second tap's
    // 4-byte read ends 4 bytes after `+ c`.
    let c32 = c as i32;
    while j + 16 <= n && t.offsets[j + 15] as usize + 2 * c + 3 <= row.len() {
        let first = t.offsets[j] - (j % c) as i32;
        // SAFETY: 16 values from j lie in each table and in `out`; the window load is masked
        // to the bytes of `row`, and every gathered 4-byte read ends inside `row` (checked by
        // the loop condition, offsets being increasing).
        unsafe {
            let offs = _mm512_loadu_si512(t.offsets[j..].as_ptr().cast());
            let (v0, v1) = if t.offsets[j + 15] + 2 * c32 - 1 - first < 64 {
                let at = row[first as usize..].as_ptr();
                let left = row.len() - first as usize;
                let mask = if left >= 64 {
                    u64::MAX
                } else {
                    (1u64 << left) - 1
                };
                let window = _mm512_maskz_loadu_epi8(mask, at.cast());
                let rel = _mm512_sub_epi32(offs, _mm512_set1_epi32(first));
                let second = _mm512_add_epi32(rel, _mm512_set1_epi32(c32));
                (
                    _mm512_and_si512(_mm512_permutexvar_epi8(rel, window), byte),
                    _mm512_and_si512(_mm512_permutexvar_epi8(second, window), byte),
                )
            } else {
                (
                    _mm512_and_si512(_mm512_i32gather_epi32::<1>(offs, row.as_ptr().cast()), byte),
                    _mm512_and_si512(
                        _mm512_i32gather_epi32::<1>(offs, row[c..].as_ptr().cast()),
                        byte,
                    ),
                )
            };
            let w0 = _mm512_loadu_si512(t.w0[j..].as_ptr().cast());
            let w1 = _mm512_loadu_si512(t.w1[j..].as_ptr().cast());
            let sum = _mm512_add_epi32(_mm512_mullo_epi32(v0, w0), _mm512_mullo_epi32(v1, w1));
            _mm512_storeu_si512(out[j..].as_mut_ptr().cast(), sum);
        }
        j += 16;
    }
    for (j, v) in out.iter_mut().enumerate().skip(j) {
        let o = t.offsets[j] as usize;
        *v = row[o] as i32 * t.w0[j] + row[o + c] as i32 * t.w1[j];
    }
}

/// The horizontal taps for the AVX2 pass, per group of 4 output values whose sources (both
/// taps) lie within 16 bytes: every enlargement and shrinks up to about 3× for RGB.
struct GroupTaps {
    /// First byte of each group's 16-byte source window; `u32::MAX` where the group spans
    /// more.
    base: Vec<u32>,
    /// Per group: `vpshufb` indices taking each value's two source bytes from the window as a
    /// pair of `i16` (−1 zeroes the high bytes).
    idx: Vec<[i8; 16]>,
    /// Per group: each value's two weights as the matching `i16` pair.
    w: Vec<[i16; 8]>,
    /// Per value, for the groups that span more and the tail.
    values: ValueTaps,
}

impl GroupTaps {
    fn new<const C: usize>(xs: &[(usize, i32, i32)]) -> Self {
        let values = ValueTaps::new::<C>(xs);
        let groups = values.offsets.len() / 4;
        let (mut base, mut idx, mut w) = (Vec::new(), Vec::new(), Vec::new());
        for g in 0..groups {
            let offs = &values.offsets[4 * g..4 * g + 4];
            let lo = *offs.iter().min().expect("4 values");
            let hi = *offs.iter().max().expect("4 values") + C as i32;
            base.push(if hi - lo < 16 { lo as u32 } else { u32::MAX });
            idx.push(std::array::from_fn(|b| {
                let (v, part) = (b / 4, b % 4);
                match part {
                    0 if hi - lo < 16 => (offs[v] - lo) as i8,
                    2 if hi - lo < 16 => (offs[v] + C as i32 - lo) as i8,
                    _ => -1,
                }
            }));
            w.push(std::array::from_fn(|k| {
                let j = 4 * g + k / 2;
                (if k % 2 == 0 {
                    values.w0[j]
                } else {
                    values.w1[j]
                }) as i16
            }));
        }
        Self {
            base,
            idx,
            w,
            values,
        }
    }
}

/// [`horizontal`] 8 values at a time with AVX2 (CPUs without AVX-512); the same sums. Each
/// half of a vector holds one group's 16-byte source window: one `vpshufb` places the two
/// taps of its 4 values side by side as `i16`, one `vpmaddwd` applies both weights. A pair of
/// groups that does not fit (a strong shrink, or a window past the end of `data`) goes one
/// value at a time. (AVX2 gathers, tried first, took 55 % of resize time: 0.49× OpenCV.)
///
/// # Safety
/// The CPU must have AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn horizontal_avx2(data: &[u8], start: usize, c: usize, t: &GroupTaps, out: &mut [i32]) {
    use std::arch::x86_64::*;
    let row = &data[start..];
    let v = &t.values;
    let scalar = |j: usize| {
        let o = v.offsets[j] as usize;
        row[o] as i32 * v.w0[j] + row[o + c] as i32 * v.w1[j]
    };
    // A window must end inside `row`; the `u32::MAX` of a wide group never passes (rows of
    // 4 GiB and more take the scalar pass).
    let limit = if row.len() < u32::MAX as usize {
        row.len().saturating_sub(16)
    } else {
        0
    };
    let pairs = t
        .base
        .chunks_exact(2)
        .zip(t.idx.chunks_exact(2))
        .zip(t.w.chunks_exact(2))
        .zip(out.chunks_exact_mut(8));
    for (p, (((base, idx), w), o)) in pairs.enumerate() {
        let (b0, b1) = (base[0] as usize, base[1] as usize);
        if b0.max(b1) <= limit {
            // SAFETY: both 16-byte windows lie inside `row` (checked above); `idx` and `w` are
            // two groups' 32 contiguous bytes each, `o` the pair's 8 values.
            unsafe {
                let window = _mm256_set_m128i(
                    _mm_loadu_si128(row.as_ptr().add(b1).cast()),
                    _mm_loadu_si128(row.as_ptr().add(b0).cast()),
                );
                let idx = _mm256_loadu_si256(idx.as_ptr().cast());
                let w = _mm256_loadu_si256(w.as_ptr().cast());
                let sum = _mm256_madd_epi16(_mm256_shuffle_epi8(window, idx), w);
                _mm256_storeu_si256(o.as_mut_ptr().cast(), sum);
            }
        } else {
            for (k, x) in o.iter_mut().enumerate() {
                *x = scalar(8 * p + k);
            }
        }
    }
    let done = t.base.len() / 2 * 8;
    for (j, x) in out.iter_mut().enumerate().skip(done) {
        *x = scalar(j);
    }
}

/// Which horizontal pass runs: picked once per image from the CPU's features.
enum Horizontal {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(GroupTaps),
    #[cfg(target_arch = "x86_64")]
    Avx512(ValueTaps),
}

impl Horizontal {
    fn new<const C: usize>(xs: &[(usize, i32, i32)]) -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::simd::has_avx512_vbmi() {
                return Self::Avx512(ValueTaps::new::<C>(xs));
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Self::Avx2(GroupTaps::new::<C>(xs));
            }
        }
        Self::Scalar
    }
}

/// The horizontal pass of source row `y` on the path `pass` picked.
#[inline(always)]
fn horizontal_row<const C: usize>(
    src: &ImageBuf<u8>,
    y: usize,
    xs: &[(usize, i32, i32)],
    pass: &Horizontal,
    out: &mut [i32],
) {
    match pass {
        Horizontal::Scalar => horizontal::<C>(src.row(y), xs, out),
        // SAFETY: the variant is only built when the CPU has the features (`Horizontal::new`).
        #[cfg(target_arch = "x86_64")]
        Horizontal::Avx2(t) => unsafe {
            horizontal_avx2(src.data(), y * src.width() * C, C, t, out)
        },
        // SAFETY: as above.
        #[cfg(target_arch = "x86_64")]
        Horizontal::Avx512(t) => unsafe {
            horizontal_avx512(src.data(), y * src.width() * C, C, t, out)
        },
    }
}

#[inline(always)]
fn vertical(h0: &[i32], h1: &[i32], b0: i32, b1: i32, out: &mut [u8]) {
    for ((o, &s0), &s1) in out.iter_mut().zip(h0).zip(h1) {
        *o = ((((b0 * (s0 >> 4)) >> 16) + ((b1 * (s1 >> 4)) >> 16) + 2) >> 2).clamp(0, 255) as u8;
    }
}

#[inline(always)]
fn resize_c<const C: usize>(src: &ImageBuf<u8>, dst: &mut [u8], dw: usize, dh: usize) {
    let (sw, sh) = (src.width(), src.height());
    let xs = taps(sw, dw);
    let ys = taps(sh, dh);
    let pass = Horizontal::new::<C>(&xs);
    // The horizontal sums of two source rows, tagged with the row they hold.
    let mut rows = [
        (usize::MAX, vec![0i32; dw * C]),
        (usize::MAX, vec![0i32; dw * C]),
    ];
    for (out, &(y0, b0, b1)) in dst.chunks_exact_mut(dw * C).zip(&ys) {
        let y1 = y0 + 1;
        if rows[0].0 != y0 {
            if rows[1].0 == y0 {
                rows.swap(0, 1);
            } else {
                horizontal_row::<C>(src, y0, &xs, &pass, &mut rows[0].1);
                rows[0].0 = y0;
            }
        }
        if rows[1].0 != y1 {
            horizontal_row::<C>(src, y1, &xs, &pass, &mut rows[1].1);
            rows[1].0 = y1;
        }
        vertical(&rows[0].1, &rows[1].1, b0, b1, out);
    }
}

crate::simd::kernel! {
    /// Resizes `src` (1, 3 or 4 channels) into `dst` (`dw × dh`, same channels).
    fn resize_dispatch(src: &ImageBuf<u8>, dst: &mut [u8], dw: usize, dh: usize) ["avx2"] {
        match src.channels() {
            1 => resize_c::<1>(src, dst, dw, dh),
            3 => resize_c::<3>(src, dst, dw, dh),
            _ => resize_c::<4>(src, dst, dw, dh),
        }
    }
}

/// `cv2.resize(src, (dw, dh), interpolation=cv2.INTER_LINEAR)` on `u8` (both sizes ≥ 1); a
/// source side of 1 pixel is first repeated to 2 (the same result: every tap reads it).
pub(crate) fn resize_bilinear_u8(src: &ImageBuf<u8>, dw: usize, dh: usize) -> ImageBuf<u8> {
    if src.width() < 2 || src.height() < 2 {
        let (w, h, c) = (src.width().max(2), src.height().max(2), src.channels());
        let data = (0..h)
            .flat_map(|y| {
                let row = src.row(y.min(src.height() - 1));
                (0..w).flat_map(move |x| row[x.min(src.width() - 1) * c..][..c].to_vec())
            })
            .collect();
        return resize_bilinear_u8(&ImageBuf::with_data(w, h, c, data), dw, dh);
    }
    if src.width() == 2 * dw && src.height() == 2 * dh {
        return halve(src);
    }
    let mut dst = vec![0u8; dw * dh * src.channels()];
    resize_dispatch(src, &mut dst, dw, dh);
    ImageBuf::with_data(dw, dh, src.channels(), dst)
}

#[inline(always)]
fn halve_row_c<const C: usize>(top: &[u8], bottom: &[u8], out: &mut [u8]) {
    let pairs = top.chunks_exact(2 * C).zip(bottom.chunks_exact(2 * C));
    for (o, (t, b)) in out.chunks_exact_mut(C).zip(pairs) {
        for k in 0..C {
            let sum = t[k] as u16 + t[C + k] as u16 + b[k] as u16 + b[C + k] as u16;
            o[k] = ((sum + 2) >> 2) as u8;
        }
    }
}

crate::simd::kernel! {
    /// One output row of [`halve`]: `(a + b + c + d + 2) >> 2` over each 2×2 block of source
    /// pixels, channel by channel.
    fn halve_row(top: &[u8], bottom: &[u8], c: usize, out: &mut [u8]) ["avx2"] {
        match c {
            1 => halve_row_c::<1>(top, bottom, out),
            3 => halve_row_c::<3>(top, bottom, out),
            _ => halve_row_c::<4>(top, bottom, out),
        }
    }
}

/// Exactly half the size: what the bilinear kernel computes there (taps 0.5/0.5 on both axes
/// give `((a + b) + (c + d) + 2) >> 2`, tested below) as a plain 2×2 average, the shortcut
/// OpenCV's `resize` also takes for an exact 2× `INTER_LINEAR` shrink.
fn halve(src: &ImageBuf<u8>) -> ImageBuf<u8> {
    let (dw, dh, c) = (src.width() / 2, src.height() / 2, src.channels());
    let mut dst = vec![0u8; dw * dh * c];
    for (y, out) in dst.chunks_exact_mut(dw * c).enumerate() {
        halve_row(src.row(2 * y), src.row(2 * y + 1), c, out);
    }
    ImageBuf::with_data(dw, dh, c, dst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both<const C: usize>(sw: usize, sh: usize, dw: usize) {
        let data: Vec<u8> = (0..sw * sh * C).map(|i| (i * 131 % 256) as u8).collect();
        let src = ImageBuf::with_data(sw, sh, C, data);
        let xs = taps(sw, dw);
        for y in 0..sh {
            let mut expected = vec![0; dw * C];
            horizontal::<C>(src.row(y), &xs, &mut expected);
            let start = y * sw * C;
            #[cfg(target_arch = "x86_64")]
            if crate::simd::has_avx512_vbmi() {
                let mut out = vec![0; dw * C];
                let t = ValueTaps::new::<C>(&xs);
                // SAFETY: checked on the line above.
                unsafe { horizontal_avx512(src.data(), start, C, &t, &mut out) };
                assert_eq!(out, expected, "avx512: {sw}→{dw}, {C} channels, row {y}");
            }
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2") {
                let mut out = vec![0; dw * C];
                let t = GroupTaps::new::<C>(&xs);
                // SAFETY: checked on the line above.
                unsafe { horizontal_avx2(src.data(), start, C, &t, &mut out) };
                assert_eq!(out, expected, "avx2: {sw}→{dw}, {C} channels, row {y}");
            }
        }
    }

    #[test]
    fn an_exact_halving_equals_the_bilinear_kernel() {
        for c in [1, 3, 4] {
            for (w, h) in [(512, 8), (6, 4), (34, 18)] {
                let data: Vec<u8> = (0..w * h * c).map(|i| (i * 193 % 256) as u8).collect();
                let src = ImageBuf::with_data(w, h, c, data);
                let mut expected = vec![0u8; w / 2 * (h / 2) * c];
                resize_dispatch(&src, &mut expected, w / 2, h / 2);
                assert_eq!(halve(&src).data(), &expected[..], "{w}×{h}×{c}");
            }
        }
    }

    #[test]
    fn the_vector_passes_equal_the_scalar_one_when_shrinking_and_enlarging() {
        for (sw, dw) in [
            (512, 256),
            (37, 100),
            (300, 224),
            (2, 17),
            (640, 61),
            (512, 100),
            (224, 256),
            (341, 224),
        ] {
            both::<1>(sw, 3, dw);
            both::<3>(sw, 3, dw);
            both::<4>(sw, 3, dw);
        }
    }
}
