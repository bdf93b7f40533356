//! A baseline JPEG round trip with libjpeg-turbo's defaults, bit for bit, without the bitstream:
//! what `PIL.Image.save(f, quality=q)` then `PIL.Image.open(f)` (imgaug's `JpegCompression`)
//! or `cv2.imencode`/`cv2.imdecode` do to a gray or RGB image.
//!
//! Encoder: RGB → YCbCr with `jccolor.c`'s 16-bit fixed point; 4:2:0 chroma by `jcsample.c`'s
//! `h2v2_downsample` (bias 1, 2, 1, 2, …), edges padded as `jcprepct.c` does (the input
//! replicated to an even height and whole MCU columns, the downsampled rows then replicated to
//! whole blocks); the Annex K tables scaled by `jpeg_set_quality(q, force_baseline = TRUE)`;
//! per 8×8 block the islow DCT and libjpeg-turbo's reciprocal quantizer (`jpeg_dct`).
//! Decoder: dequantization and the islow IDCT, `jdsample.c`'s `h2v2_fancy_upsample` (triangle
//! filter, edge rows replicated; plain replication when the chroma is at most 2 wide) and
//! `jdcolor.c`'s YCbCr → RGB.
//!
//! Huffman coding is lossless, so leaving it out changes no pixel; it is most of the time a
//! real encoder and decoder spend. `tests/fixtures/augment/jpeg_model.py` is the same algorithm
//! in numpy, checked there against Pillow and OpenCV at every quality and odd sizes.

use super::jpeg_dct::{Quantizer, round_trip_block};

/// JPEG Annex K luminance table (natural order).
const LUMA: [u16; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
    92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];

/// JPEG Annex K chrominance table (natural order).
const CHROMA: [u16; 64] = {
    let head = [
        17, 18, 24, 47, 18, 21, 26, 66, 24, 26, 56, 99, 47, 66, 99, 99,
    ];
    let mut t = [99u16; 64];
    let mut i = 0;
    while i < 16 {
        t[(i / 4) * 8 + i % 4] = head[i];
        i += 1;
    }
    t
};

/// `jpeg_quality_scaling` and `jpeg_add_quant_table(…, force_baseline = TRUE)`.
pub(crate) fn quant_table(basic: &[u16; 64], quality: u8) -> [u16; 64] {
    let q = quality.clamp(1, 100) as u32;
    let scale = if q < 50 { 5000 / q } else { 200 - 2 * q };
    basic.map(|b| ((b as u32 * scale + 50) / 100).clamp(1, 255) as u16)
}

/// libjpeg's `FIX(x)` at `SCALEBITS` = 16.
const fn fix(x: f64) -> i32 {
    (x * 65536.0 + 0.5) as i32
}

const HALF: i32 = 1 << 15;
const OFFSET: i32 = 128 << 16;

/// `rgb_ycc_convert` of one pixel.
#[inline(always)]
fn ycc(r: i32, g: i32, b: i32) -> (u8, u8, u8) {
    let y = (fix(0.299) * r + fix(0.587) * g + fix(0.114) * b + HALF) >> 16;
    let cb = (-fix(0.16874) * r - fix(0.33126) * g + fix(0.5) * b + OFFSET + HALF - 1) >> 16;
    let cr = (fix(0.5) * r - fix(0.41869) * g - fix(0.08131) * b + OFFSET + HALF - 1) >> 16;
    (y as u8, cb as u8, cr as u8)
}

/// `ycc_rgb_convert` of one pixel (its tables as arithmetic), range-limited.
#[inline(always)]
fn rgb(y: i32, cb: i32, cr: i32) -> [u8; 3] {
    let (cb, cr) = (cb - 128, cr - 128);
    let r = y + ((fix(1.402) * cr + HALF) >> 16);
    let g = y + ((-fix(0.34414) * cb + HALF - fix(0.71414) * cr) >> 16);
    let b = y + ((fix(1.772) * cb + HALF) >> 16);
    [
        r.clamp(0, 255) as u8,
        g.clamp(0, 255) as u8,
        b.clamp(0, 255) as u8,
    ]
}

/// One row of `C`-channel pixels (`C` ≥ 3) to Y, Cb and Cr, 16 pixels at a time split into
/// lanes so that vector multiplies do it (`C` a constant: the split is then a fixed shuffle).
#[inline(always)]
fn ycc_row<const C: usize>(px: &[u8], y: &mut [u8], cb: &mut [u8], cr: &mut [u8]) {
    let n = y.len();
    let (px, cb, cr) = (&px[..n * C], &mut cb[..n], &mut cr[..n]);
    let mut x = 0;
    while x + 16 <= n {
        let block = &px[x * C..(x + 16) * C];
        let (mut r, mut g, mut b) = ([0i32; 16], [0i32; 16], [0i32; 16]);
        for i in 0..16 {
            r[i] = block[C * i] as i32;
            g[i] = block[C * i + 1] as i32;
            b[i] = block[C * i + 2] as i32;
        }
        for i in 0..16 {
            (y[x + i], cb[x + i], cr[x + i]) = ycc(r[i], g[i], b[i]);
        }
        x += 16;
    }
    for x in x..n {
        let p = &px[x * C..x * C + 3];
        (y[x], cb[x], cr[x]) = ycc(p[0] as i32, p[1] as i32, p[2] as i32);
    }
}

crate::simd::kernel! {
    /// [`ycc_row`] of RGB.
    fn ycc_row3(px: &[u8], y: &mut [u8], cb: &mut [u8], cr: &mut [u8]) ["avx2"] {
        ycc_row::<3>(px, y, cb, cr)
    }
}

crate::simd::kernel! {
    /// [`ycc_row`] of RGBA.
    fn ycc_row4(px: &[u8], y: &mut [u8], cb: &mut [u8], cr: &mut [u8]) ["avx2"] {
        ycc_row::<4>(px, y, cb, cr)
    }
}

/// [`ycc_row`] for `c` = 3 or 4 channels: AVX-512 where the CPU has it for the whole blocks of
/// 16 pixels, the portable loop for the rest.
fn ycc_row_any(px: &[u8], c: usize, y: &mut [u8], cb: &mut [u8], cr: &mut [u8]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx512_vbmi() {
        // SAFETY: the CPU has the features, checked on the line above.
        done = unsafe { avx512::ycc_blocks(px, c, y, cb, cr) };
    }
    let (px, y, cb, cr) = (
        &px[done * c..],
        &mut y[done..],
        &mut cb[done..],
        &mut cr[done..],
    );
    if c == 3 {
        ycc_row3(px, y, cb, cr);
    } else {
        ycc_row4(px, y, cb, cr);
    }
}

crate::simd::kernel! {
    /// `h2v2_downsample` of two full-resolution rows into one.
    fn downsample_row(top: &[u8], bottom: &[u8], out: &mut [u8]) ["avx2"] {
        let n = out.len();
        let (top, bottom) = (&top[..2 * n], &bottom[..2 * n]);
        for j in 0..n {
            let sum = top[2 * j] as u16 + top[2 * j + 1] as u16 + bottom[2 * j] as u16
                + bottom[2 * j + 1] as u16;
            out[j] = ((sum + 1 + (j as u16 & 1)) >> 2) as u8;
        }
    }
}

crate::simd::kernel! {
    /// One output row of `h2v2_fancy_upsample` for one chroma plane: `near` is the chroma row
    /// the output row lies in, `far` the next nearest (above or below); `sums` is scratch of
    /// `near.len() + 2`. Writes `out.len()` values (at most `2·near.len()`).
    fn fancy_row(near: &[u8], far: &[u8], sums: &mut [i16], out: &mut [u8]) ["avx2"] {
        let n = near.len();
        let (far, sums) = (&far[..n], &mut sums[..n + 2]);
        for j in 0..n {
            sums[j + 1] = 3 * near[j] as i16 + far[j] as i16;
        }
        // The edge columns are their own neighbours.
        sums[0] = sums[1];
        sums[n + 1] = sums[n];
        let pairs = out.len() / 2;
        let (left, mid, right) = (&sums[..pairs], &sums[1..pairs + 1], &sums[2..pairs + 2]);
        for (j, o) in out[..2 * pairs].chunks_exact_mut(2).enumerate() {
            let s = 3 * mid[j];
            o[0] = ((s + left[j] + 8) >> 4) as u8;
            o[1] = ((s + right[j] + 7) >> 4) as u8;
        }
        if out.len() % 2 == 1 {
            out[2 * pairs] = ((3 * sums[pairs + 1] + sums[pairs] + 8) >> 4) as u8;
        }
    }
}

/// One row of Y, Cb, Cr back to `C`-channel pixels (`C` ≥ 3; a fourth channel is kept).
#[inline(always)]
fn rgb_row<const C: usize>(y: &[u8], cb: &[u8], cr: &[u8], px: &mut [u8]) {
    let n = px.len() / C;
    let (y, cb, cr, px) = (&y[..n], &cb[..n], &cr[..n], &mut px[..n * C]);
    let mut x = 0;
    while x + 16 <= n {
        let mut out = [[0u8; 3]; 16];
        for i in 0..16 {
            out[i] = rgb(y[x + i] as i32, cb[x + i] as i32, cr[x + i] as i32);
        }
        let block = &mut px[x * C..(x + 16) * C];
        for i in 0..16 {
            block[C * i] = out[i][0];
            block[C * i + 1] = out[i][1];
            block[C * i + 2] = out[i][2];
        }
        x += 16;
    }
    for x in x..n {
        px[x * C..x * C + 3].copy_from_slice(&rgb(y[x] as i32, cb[x] as i32, cr[x] as i32));
    }
}

crate::simd::kernel! {
    /// [`rgb_row`] to RGB.
    fn rgb_row3(y: &[u8], cb: &[u8], cr: &[u8], px: &mut [u8]) ["avx2"] {
        rgb_row::<3>(y, cb, cr, px)
    }
}

crate::simd::kernel! {
    /// [`rgb_row`] to RGBA.
    fn rgb_row4(y: &[u8], cb: &[u8], cr: &[u8], px: &mut [u8]) ["avx2"] {
        rgb_row::<4>(y, cb, cr, px)
    }
}

/// [`rgb_row`] for `c` = 3 or 4 channels, AVX-512 for the whole blocks where the CPU has it.
fn rgb_row_any(y: &[u8], cb: &[u8], cr: &[u8], c: usize, px: &mut [u8]) {
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if crate::simd::has_avx512_vbmi() {
        // SAFETY: the CPU has the features, checked on the line above.
        done = unsafe { avx512::rgb_blocks(y, cb, cr, c, px) };
    }
    let (y, cb, cr, px) = (&y[done..], &cb[done..], &cr[done..], &mut px[done * c..]);
    if c == 3 {
        rgb_row3(y, cb, cr, px);
    } else {
        rgb_row4(y, cb, cr, px);
    }
}

/// The colour rows 16 pixels at a time: VBMI splits interleaved pixels into `u32` lanes, the
/// same fixed-point sums run in `i32` lanes.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{HALF, OFFSET, fix};
    use crate::kernels::rgb_blocks::{load_pixels, store_pixels};

    /// `Σ k·v` over (coefficient, lane) pairs, in `i32`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn dot(terms: [(i32, __m512i); 3], bias: i32) -> __m512i {
        let mut acc = _mm512_set1_epi32(bias);
        for (k, v) in terms {
            acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_set1_epi32(k), v));
        }
        acc
    }

    /// The whole blocks of [`super::ycc_row`]; returns the pixels done.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VBMI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn ycc_blocks(
        px: &[u8],
        c: usize,
        y: &mut [u8],
        cb: &mut [u8],
        cr: &mut [u8],
    ) -> usize {
        let n = y.len().min(cb.len()).min(cr.len()).min(px.len() / c) / 16 * 16;
        let byte = _mm512_set1_epi32(0xff);
        for x in (0..n).step_by(16) {
            // SAFETY: pixels x..x+16 are inside `px` (n ≤ px.len() / c).
            let lanes = unsafe {
                let at = px.as_ptr().add(x * c);
                if c == 4 {
                    load_pixels::<4>(at)
                } else {
                    load_pixels::<3>(at)
                }
            };
            let r = _mm512_and_si512(lanes, byte);
            let g = _mm512_and_si512(_mm512_srli_epi32::<8>(lanes), byte);
            let b = _mm512_and_si512(_mm512_srli_epi32::<16>(lanes), byte);
            let yv = dot([(fix(0.299), r), (fix(0.587), g), (fix(0.114), b)], HALF);
            let cbv = dot(
                [(-fix(0.16874), r), (-fix(0.33126), g), (fix(0.5), b)],
                OFFSET + HALF - 1,
            );
            let crv = dot(
                [(fix(0.5), r), (-fix(0.41869), g), (-fix(0.08131), b)],
                OFFSET + HALF - 1,
            );
            for (out, v) in [(&mut *y, yv), (&mut *cb, cbv), (&mut *cr, crv)] {
                let bytes = _mm512_cvtepi32_epi8(_mm512_srli_epi32::<16>(v));
                // SAFETY: 16 bytes at x are inside `out` (n ≤ out.len()).
                unsafe { _mm_storeu_si128(out.as_mut_ptr().add(x).cast(), bytes) };
            }
        }
        n
    }

    /// The whole blocks of [`super::rgb_row`]; returns the pixels done.
    ///
    /// # Safety
    /// The CPU must have AVX-512 F, BW and VBMI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(super) unsafe fn rgb_blocks(
        y: &[u8],
        cb: &[u8],
        cr: &[u8],
        c: usize,
        px: &mut [u8],
    ) -> usize {
        let n = y.len().min(cb.len()).min(cr.len()).min(px.len() / c) / 16 * 16;
        let load = |v: &[u8], x: usize| {
            // SAFETY: 16 bytes at x are inside `v` (n ≤ v.len()).
            _mm512_cvtepu8_epi32(unsafe { _mm_loadu_si128(v.as_ptr().add(x).cast()) })
        };
        let (centre, zero, max) = (
            _mm512_set1_epi32(128),
            _mm512_setzero_si512(),
            _mm512_set1_epi32(255),
        );
        let clamp = |v: __m512i| _mm512_min_epi32(_mm512_max_epi32(v, zero), max);
        let half = _mm512_set1_epi32(HALF);
        for x in (0..n).step_by(16) {
            let yv = load(y, x);
            let cbv = _mm512_sub_epi32(load(cb, x), centre);
            let crv = _mm512_sub_epi32(load(cr, x), centre);
            let scaled = |k: i32, v: __m512i| _mm512_mullo_epi32(_mm512_set1_epi32(k), v);
            let r = _mm512_srai_epi32::<16>(_mm512_add_epi32(scaled(fix(1.402), crv), half));
            let g = _mm512_srai_epi32::<16>(_mm512_add_epi32(
                _mm512_add_epi32(scaled(-fix(0.34414), cbv), half),
                scaled(-fix(0.71414), crv),
            ));
            let b = _mm512_srai_epi32::<16>(_mm512_add_epi32(scaled(fix(1.772), cbv), half));
            let (r, g, b) = (
                clamp(_mm512_add_epi32(yv, r)),
                clamp(_mm512_add_epi32(yv, g)),
                clamp(_mm512_add_epi32(yv, b)),
            );
            let lanes = _mm512_or_si512(
                _mm512_or_si512(r, _mm512_slli_epi32::<8>(g)),
                _mm512_slli_epi32::<16>(b),
            );
            // SAFETY: pixels x..x+16 are inside `px` (n ≤ px.len() / c).
            unsafe {
                let at = px.as_mut_ptr().add(x * c);
                if c == 4 {
                    store_pixels::<4>(at, lanes)
                } else {
                    store_pixels::<3>(at, lanes)
                }
            }
        }
        n
    }
}

/// A plane of whole 8×8 blocks: `width` and `height` are multiples of 8.
struct Plane {
    data: Vec<u8>,
    width: usize,
}

impl Plane {
    fn new(width: usize, height: usize) -> Self {
        Plane {
            data: vec![0; width * height],
            width,
        }
    }

    fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.width..(y + 1) * self.width]
    }

    fn row_mut(&mut self, y: usize) -> &mut [u8] {
        &mut self.data[y * self.width..(y + 1) * self.width]
    }

    /// Replicates row `from - 1` into rows `from..to`.
    fn replicate_rows(&mut self, from: usize, to: usize) {
        let w = self.width;
        let (head, tail) = self.data.split_at_mut(from * w);
        let last = &head[(from - 1) * w..];
        for row in tail[..(to - from) * w].chunks_exact_mut(w) {
            row.copy_from_slice(last);
        }
    }

    /// Replicates column `from - 1` into columns `from..` of rows `0..rows`.
    fn replicate_columns(&mut self, from: usize, rows: usize) {
        for y in 0..rows {
            let row = self.row_mut(y);
            let v = row[from - 1];
            row[from..].fill(v);
        }
    }

    /// The round trip of the blocks covering the top-left `w × h` samples.
    fn round_trip_blocks(&mut self, w: usize, h: usize, q: &Quantizer) {
        let stride = self.width;
        for by in 0..h.div_ceil(8) {
            for bx in 0..w.div_ceil(8) {
                round_trip_block(&mut self.data[by * 8 * stride + bx * 8..], stride, q);
            }
        }
    }
}

/// Encodes and decodes `data` (`w × h`, `c` = 1, 3 or 4 interleaved channels; a fourth is left
/// as it is) at `quality` 1..=100 in place.
pub(crate) fn round_trip(data: &mut [u8], w: usize, h: usize, c: usize, quality: u8) {
    assert!(matches!(c, 1 | 3 | 4), "1, 3 or 4 channels, got {c}");
    assert_eq!(data.len(), w * h * c, "a {w}×{h}×{c} image");
    if w == 0 || h == 0 {
        return;
    }
    let luma = Quantizer::new(quant_table(&LUMA, quality));
    if c == 1 {
        // One component: blocks of 8, edges replicated.
        let mut plane = Plane::new(w.next_multiple_of(8), h.next_multiple_of(8));
        for (y, row) in data.chunks_exact(w).enumerate() {
            plane.row_mut(y)[..w].copy_from_slice(row);
        }
        plane.replicate_columns(w, h);
        plane.replicate_rows(h, h.next_multiple_of(8));
        plane.round_trip_blocks(w, h, &luma);
        for (y, row) in data.chunks_exact_mut(w).enumerate() {
            row.copy_from_slice(&plane.row(y)[..w]);
        }
        return;
    }
    let chroma = Quantizer::new(quant_table(&CHROMA, quality));
    // MCUs of 16×16: Y in whole MCUs, the chroma inputs in whole MCU columns and an even number
    // of rows, the downsampled chroma in whole (8×8) blocks of the MCUs.
    let (mw, mh) = (w.next_multiple_of(16), h.next_multiple_of(16));
    let (dw, dh) = (w.div_ceil(2), h.div_ceil(2));
    let mut y_plane = Plane::new(mw, mh);
    let (mut cb_full, mut cr_full) = (Plane::new(mw, 2 * dh), Plane::new(mw, 2 * dh));
    for (y, px) in data.chunks_exact(w * c).enumerate() {
        let (yr, cbr, crr) = (y_plane.row_mut(y), cb_full.row_mut(y), cr_full.row_mut(y));
        let (yr, cbr, crr) = (&mut yr[..w], &mut cbr[..w], &mut crr[..w]);
        ycc_row_any(px, c, yr, cbr, crr);
    }
    y_plane.replicate_columns(w, h);
    y_plane.replicate_rows(h, mh);
    let mut chroma_planes = [Plane::new(mw / 2, mh / 2), Plane::new(mw / 2, mh / 2)];
    for (full, sub) in [&mut cb_full, &mut cr_full]
        .into_iter()
        .zip(&mut chroma_planes)
    {
        full.replicate_columns(w, h);
        if h % 2 == 1 {
            full.replicate_rows(h, h + 1);
        }
        for i in 0..dh {
            downsample_row(full.row(2 * i), full.row(2 * i + 1), sub.row_mut(i));
        }
        sub.replicate_rows(dh, mh / 2);
    }
    y_plane.round_trip_blocks(w, h, &luma);
    for sub in &mut chroma_planes {
        sub.round_trip_blocks(dw, dh, &chroma);
    }
    // Decoder: upsample both chroma planes row by row, then back to RGB in place.
    let mut sums = vec![0i16; dw + 2];
    let (mut cb_row, mut cr_row) = (vec![0u8; w], vec![0u8; w]);
    for (y, px) in data.chunks_exact_mut(w * c).enumerate() {
        let near = y / 2;
        let far = if y % 2 == 0 {
            near.saturating_sub(1)
        } else {
            (near + 1).min(dh - 1)
        };
        for (sub, out) in chroma_planes.iter().zip([&mut cb_row, &mut cr_row]) {
            if dw > 2 {
                fancy_row(&sub.row(near)[..dw], sub.row(far), &mut sums, out);
            } else {
                // h2v2_upsample: each sample twice, each row twice.
                for (x, v) in out.iter_mut().enumerate() {
                    *v = sub.row(near)[x / 2];
                }
            }
        }
        rgb_row_any(y_plane.row(y), &cb_row, &cr_row, c, px);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `jpeg_set_quality`: 50 is the Annex K table itself, 100 all ones, low qualities clamp
    /// at the baseline limit 255.
    #[test]
    fn quality_scaling_is_libjpegs() {
        assert_eq!(quant_table(&LUMA, 50), LUMA);
        assert_eq!(quant_table(&CHROMA, 100), [1; 64]);
        assert_eq!(quant_table(&LUMA, 75)[..4], [8, 6, 5, 8]);
        assert_eq!(quant_table(&LUMA, 1)[0], 255);
        assert_eq!(quant_table(&CHROMA, 10)[0], 85);
        assert_eq!(CHROMA[..8], [17, 18, 24, 47, 99, 99, 99, 99]);
        assert_eq!(CHROMA[24..28], [47, 66, 99, 99]);
    }

    /// libjpeg's `FIX` values, as its headers list them.
    #[test]
    fn fixed_point_constants() {
        assert_eq!(
            [
                fix(0.299),
                fix(0.587),
                fix(0.114),
                fix(0.16874),
                fix(0.33126)
            ],
            [19595, 38470, 7471, 11059, 21709]
        );
        assert_eq!([fix(0.41869), fix(0.08131)], [27439, 5329]);
        assert_eq!(
            [fix(1.402), fix(1.772), fix(0.34414), fix(0.71414)],
            [91881, 116130, 22554, 46802]
        );
    }

    /// The colour rows give the same bytes on every path (AVX-512 blocks, AVX2, portable).
    #[test]
    fn colour_rows_agree_on_every_path() {
        let rgb3 = crate::kernels::test_pixels::rgb_lattice();
        let rgb4 = crate::kernels::test_pixels::with_alpha(&rgb3);
        for (c, px) in [(3, &rgb3), (4, &rgb4)] {
            let n = px.len() / c;
            let mut want = [vec![0u8; n], vec![0u8; n], vec![0u8; n]];
            for (x, p) in px.chunks_exact(c).enumerate() {
                (want[0][x], want[1][x], want[2][x]) = ycc(p[0] as i32, p[1] as i32, p[2] as i32);
            }
            let mut got = [vec![0u8; n], vec![0u8; n], vec![0u8; n]];
            let [y, cb, cr] = &mut got;
            ycc_row_any(px, c, y, cb, cr);
            assert_eq!(got, want, "ycc, {c} channels");
            // Back: the planes shifted against each other so every (y, cb, cr) mix occurs.
            let (cb, cr): (Vec<u8>, Vec<u8>) = (0..n)
                .map(|x| (want[1][(x * 7) % n], want[2][(x * 13) % n]))
                .unzip();
            let mut back = px.clone();
            rgb_row_any(&want[0], &cb, &cr, c, &mut back);
            for (x, (p, q)) in back.chunks_exact(c).zip(px.chunks_exact(c)).enumerate() {
                assert_eq!(
                    p[..3],
                    rgb(want[0][x] as i32, cb[x] as i32, cr[x] as i32),
                    "pixel {x}"
                );
                assert_eq!(p[3..], q[3..], "alpha of pixel {x}");
            }
        }
    }

    /// Gray, level and colour images of every small size come back the same size, an
    /// unchanging level stays (nearly) itself and the alpha channel is untouched.
    #[test]
    fn small_and_flat_images() {
        for (w, h) in [(1, 1), (2, 3), (3, 2), (4, 5), (5, 4), (9, 17), (17, 9)] {
            for c in [1, 3, 4] {
                let mut data: Vec<u8> = (0..w * h * c)
                    .map(|i| if c == 4 && i % 4 == 3 { i as u8 } else { 90 })
                    .collect();
                let before = data.clone();
                round_trip(&mut data, w, h, c, 90);
                for (i, (&a, &b)) in data.iter().zip(&before).enumerate() {
                    if c == 4 && i % 4 == 3 {
                        assert_eq!(a, b, "alpha {w}×{h}");
                    } else {
                        assert!(a.abs_diff(b) <= 1, "{w}×{h}×{c}: {a} for {b}");
                    }
                }
            }
        }
    }
}
