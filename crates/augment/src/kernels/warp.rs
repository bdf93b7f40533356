//! The sampler shared by the geometric ops: inverse mapping (every output pixel looks up its
//! source position) for affine (2×3) and perspective (3×3) matrices, separable coordinate
//! tables and dense displacement fields, with nearest / bilinear / bicubic interpolation and
//! constant / edge / reflect-101 borders.
//!
//! Source positions are quantised to 1/32 pixel exactly as OpenCV's `warpAffine`,
//! `warpPerspective` and `remap` do, and `u8` bilinear uses OpenCV's 15-bit fixed-point weight
//! table, so `u8` results match OpenCV (and Albumentations/imgaug, which call it) bit for bit
//! (ported from `tests/fixtures/augment/cv2_models.py`; no maintained crate reproduces cv2's
//! fixed-point warp). Other types and bicubic use float weights on the same positions.
//!
//! Coordinates: matrices here work on pixel indices (pixel centres at integers, OpenCV's
//! convention); boxes and keypoints are continuous (pixel `i` covers `[i, i + 1)`), so a target
//! point `p` maps as `M(p - 0.5) + 0.5`.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::warp_rows::{row_generic, row_u8_bilinear_any};
use crate::{BBox, Image, ImageBuf, Keypoint, Pixel, Sample};

/// How a warp or resize reads between pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolation {
    /// The nearest source pixel (OpenCV `INTER_NEAREST`).
    Nearest,
    /// 2×2 linear (OpenCV `INTER_LINEAR`).
    #[default]
    Bilinear,
    /// 4×4 cubic, a = -0.75 (OpenCV `INTER_CUBIC`).
    Bicubic,
}

/// What a warp reads outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    /// The constant `cval` (OpenCV `BORDER_CONSTANT`).
    #[default]
    Constant,
    /// The nearest edge pixel, `aaa|abc|ccc` (OpenCV `BORDER_REPLICATE`, numpy `edge`).
    Edge,
    /// Mirrored without repeating the edge, `cb|abc|ba` (OpenCV `BORDER_REFLECT_101`, numpy
    /// `reflect`).
    Reflect,
}

/// Sub-pixel steps per pixel of a quantised source position (OpenCV `INTER_TAB_SIZE`).
pub(super) const TAB: i32 = 32;
/// Bits of [`TAB`].
pub(super) const TAB_BITS: i32 = 5;
/// Limit of quantised positions, far outside any image, so tap offsets never overflow.
const COORD_LIMIT: f64 = (1i64 << 28) as f64;

/// Index `i` mapped into `[0, n)` by `fill`; `None` where a constant border is read.
#[inline]
pub(crate) fn border_index(i: i64, n: usize, fill: Fill) -> Option<usize> {
    let n_i = n as i64;
    if (0..n_i).contains(&i) {
        return Some(i as usize);
    }
    match fill {
        Fill::Constant => None,
        Fill::Edge => Some(i.clamp(0, n_i - 1) as usize),
        Fill::Reflect => {
            if n == 1 {
                return Some(0);
            }
            let period = 2 * n_i - 2;
            let j = i.rem_euclid(period);
            Some(if j >= n_i { period - j } else { j } as usize)
        }
    }
}

/// A fill value given on the 0–255 scale, in pixel type `P` (×257 for `u16`, /255 for `f32`).
pub(crate) fn cval_for<P: Pixel>(cval255: f64) -> P {
    P::from_f32((cval255 / 255.0 * P::MAX as f64) as f32)
}

/// `P::from_f32` without its `floor` (a libm call on baseline x86-64): for the integer types
/// `(v + 0.5)` truncated by a saturating cast rounds identically, NaN and negatives included.
#[inline(always)]
pub(crate) fn round_px<P: Pixel>(v: f32) -> P {
    if P::MAX > 1.0 {
        P::from_f32_trunc(v + 0.5)
    } else {
        P::from_f32(v)
    }
}

/// OpenCV's `initInterTab2D` for `INTER_LINEAR`: 32×32 sets of four 15-bit weights summing to
/// 32768 (a rounding surplus is taken off the largest weight, a deficit added to the smallest).
pub(super) fn bilinear_tab_i32() -> &'static [[i32; 4]] {
    static T: OnceLock<Vec<[i32; 4]>> = OnceLock::new();
    T.get_or_init(|| {
        bilinear_tab_f32()
            .iter()
            .map(|w| {
                let mut iw = w.map(|v| (v as f64 * 32768.0).round_ties_even() as i32);
                let diff = iw.iter().sum::<i32>() - 32768;
                // np.argmin / np.argmax: the first extreme index.
                let pick = |better: fn(i32, i32) -> bool| {
                    (1..4).fold(0, |b, k| if better(iw[k], iw[b]) { k } else { b })
                };
                if diff < 0 {
                    let k = pick(|a, b| a < b);
                    iw[k] -= diff;
                } else if diff > 0 {
                    let k = pick(|a, b| a > b);
                    iw[k] -= diff;
                }
                iw
            })
            .collect()
    })
}

/// The float bilinear weights of each 1/32 sub-position, `[fy * 32 + fx]`.
pub(super) fn bilinear_tab_f32() -> &'static [[f32; 4]] {
    static T: OnceLock<Vec<[f32; 4]>> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Vec::with_capacity(1024);
        for fy in 0..TAB {
            for fx in 0..TAB {
                let (ty, tx) = (fy as f32 / 32.0, fx as f32 / 32.0);
                t.push([
                    (1.0 - ty) * (1.0 - tx),
                    (1.0 - ty) * tx,
                    ty * (1.0 - tx),
                    ty * tx,
                ]);
            }
        }
        t
    })
}

/// OpenCV's cubic weights (a = -0.75) for a fraction `x` in `[0, 1)`.
pub(crate) fn cubic_weights(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

pub(super) fn cubic_tab() -> &'static [[f32; 4]] {
    static T: OnceLock<Vec<[f32; 4]>> = OnceLock::new();
    T.get_or_init(|| (0..TAB).map(|f| cubic_weights(f as f32 / 32.0)).collect())
}

/// Where each output pixel reads from (pixel-index coordinates).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Mapping<'a> {
    /// The inverse (destination → source) of an affine matrix, row-major 2×3.
    Affine([f64; 6]),
    /// The inverse (destination → source) of a homography, row-major 3×3.
    Perspective([f64; 9]),
    /// Source x per output column and source y per output row.
    Separable {
        /// One per output column.
        xs: &'a [f32],
        /// One per output row.
        ys: &'a [f32],
    },
    /// Source `(x - dx, y - dy)` for output pixel `(x, y)`; fields at the output size.
    Field {
        /// Horizontal displacement, row-major.
        dx: &'a [f32],
        /// Vertical displacement, row-major.
        dy: &'a [f32],
    },
}

/// Rounds `v` to an int like OpenCV's `saturate_cast<int>` (ties to even), kept in range.
#[inline]
#[allow(clippy::manual_clamp)] // `clamp` keeps NaN, which is what kept the row loops scalar
fn quantise(v: f64) -> i32 {
    // Adding and subtracting 1.5 · 2^52 rounds ties to even in the default rounding mode,
    // without `roundeven` (a libm call on baseline x86-64); exact for |v| ≤ COORD_LIMIT.
    const MAGIC: f64 = 6_755_399_441_055_744.0;
    // Written branch-free for the vectoriser (`clamp` and a saturating `as` were scalar
    // compares per value): NaN becomes 0 first, as the cast did.
    let v = if v.is_nan() {
        0.0
    } else {
        v.max(-COORD_LIMIT).min(COORD_LIMIT)
    };
    let r = (v + MAGIC) - MAGIC;
    // SAFETY: `r` is a whole number within ±2^28, which i32 holds.
    unsafe { r.to_int_unchecked::<i32>() }
}

crate::simd::kernel! {
    /// The source positions of a perspective row (`warpPerspective`: the division per pixel in
    /// f64), compiled again for AVX-512 so that eight pixels are divided at once; the same IEEE
    /// operations in the same order, so the same positions.
    fn perspective_row(m: &[f64; 9], yf: f64, nearest: bool, out: &mut [i32]) ["avx512f"] {
        let (x0, y0, w0) = (m[1] * yf + m[2], m[4] * yf + m[5], m[7] * yf + m[8]);
        let unit = if nearest { 1.0 } else { TAB as f64 };
        let scale = if nearest { TAB } else { 1 };
        for (x, o) in out.chunks_exact_mut(2).enumerate() {
            let xf = x as f64;
            let w = w0 + m[6] * xf;
            let w = if w != 0.0 { unit / w } else { 0.0 };
            o[0] = quantise((x0 + m[0] * xf) * w) * scale;
            o[1] = quantise((y0 + m[3] * xf) * w) * scale;
        }
    }
}

/// Writes the source positions of an output row, as `(X, Y)` pairs in 1/32 pixel.
struct Coords<'a> {
    mapping: Mapping<'a>,
    nearest: bool,
    width: usize,
    /// Affine: per-column `rint(M00 * x * 1024)` and `rint(M10 * x * 1024)`; separable: the
    /// columns' quantised source x in `adelta`.
    adelta: Vec<i32>,
    bdelta: Vec<i32>,
}

impl<'a> Coords<'a> {
    fn new(mapping: Mapping<'a>, nearest: bool, width: usize) -> Self {
        let mut s = Self {
            mapping,
            nearest,
            width,
            adelta: Vec::new(),
            bdelta: Vec::new(),
        };
        match mapping {
            Mapping::Affine(m) => {
                s.adelta = (0..width)
                    .map(|x| quantise(m[0] * x as f64 * 1024.0))
                    .collect();
                s.bdelta = (0..width)
                    .map(|x| quantise(m[3] * x as f64 * 1024.0))
                    .collect();
            }
            // Separable: the columns' positions are the same on every row.
            Mapping::Separable { xs, .. } => {
                s.adelta = xs.iter().map(|&x| s.to_fixed(x as f64)).collect();
            }
            _ => {}
        }
        s
    }

    fn row(&self, y: usize, out: &mut [i32]) {
        let yf = y as f64;
        match self.mapping {
            Mapping::Affine(m) => {
                // warpAffine: 1/1024-pixel row start plus per-column deltas, then >> 5 (to
                // 1/32 pixel) or >> 10 (whole pixels, rounded) for nearest.
                let (shift, rd) = if self.nearest { (10, 512) } else { (5, 16) };
                let x0 = quantise((m[1] * yf + m[2]) * 1024.0) + rd;
                let y0 = quantise((m[4] * yf + m[5]) * 1024.0) + rd;
                let scale = if self.nearest { TAB } else { 1 };
                for ((o, a), b) in out.chunks_exact_mut(2).zip(&self.adelta).zip(&self.bdelta) {
                    o[0] = ((x0 + a) >> shift) * scale;
                    o[1] = ((y0 + b) >> shift) * scale;
                }
            }
            Mapping::Perspective(m) => perspective_row(&m, yf, self.nearest, out),
            Mapping::Separable { ys, .. } => {
                let sy = self.to_fixed(ys[y] as f64);
                for (o, &sx) in out.chunks_exact_mut(2).zip(&self.adelta) {
                    o[0] = sx;
                    o[1] = sy;
                }
            }
            Mapping::Field { dx, dy } => {
                let base = y * self.width;
                let (dx, dy) = (&dx[base..base + self.width], &dy[base..base + self.width]);
                for (x, o) in out.chunks_exact_mut(2).enumerate() {
                    o[0] = self.to_fixed(x as f64 - dx[x] as f64);
                    o[1] = self.to_fixed(yf - dy[x] as f64);
                }
            }
        }
    }

    /// A float source coordinate in 1/32 pixel (remap's `convertMaps`), or rounded to a whole
    /// pixel for nearest.
    #[inline]
    fn to_fixed(&self, v: f64) -> i32 {
        if self.nearest {
            quantise(v) * TAB
        } else {
            quantise(v * TAB as f64)
        }
    }
}

/// Warps `img` to `out_w × out_h`.
pub(crate) fn warp_image(
    img: &Image,
    mapping: Mapping,
    out_w: usize,
    out_h: usize,
    interp: Interpolation,
    fill: Fill,
    cval255: f64,
) -> Image {
    match img {
        Image::U8(b) if interp == Interpolation::Bilinear => {
            Image::U8(warp_u8_bilinear(b, mapping, out_w, out_h, fill, cval255))
        }
        Image::U8(b) => Image::U8(warp_buf(b, mapping, out_w, out_h, interp, fill, cval255)),
        Image::U16(b) => Image::U16(warp_buf(b, mapping, out_w, out_h, interp, fill, cval255)),
        Image::F32(b) => Image::F32(warp_buf(b, mapping, out_w, out_h, interp, fill, cval255)),
    }
}

/// Warps the image (with `interp`, `fill`, `cval`), the masks (nearest, constant 0) and the
/// heatmaps (bilinear, constant 0) of `s`; boxes and keypoints are left to the caller.
pub(crate) fn warp_sample_pixels(
    mut s: Sample,
    mapping: Mapping,
    out: (usize, usize),
    interp: Interpolation,
    fill: Fill,
    cval255: f64,
) -> Sample {
    let (w, h) = out;
    s.image = warp_image(&s.image, mapping, w, h, interp, fill, cval255);
    for m in &mut s.masks {
        *m = warp_image(
            m,
            mapping,
            w,
            h,
            Interpolation::Nearest,
            Fill::Constant,
            0.0,
        );
    }
    for m in &mut s.heatmaps {
        *m = warp_buf(
            m,
            mapping,
            w,
            h,
            Interpolation::Bilinear,
            Fill::Constant,
            0.0,
        );
    }
    s
}

/// Runs `row_fn(y, coords, out_row)` over the output rows of a warp.
fn for_rows<P: Pixel>(
    mapping: Mapping,
    nearest: bool,
    out_w: usize,
    out_h: usize,
    channels: usize,
    mut row_fn: impl FnMut(&[i32], &mut [P]),
) -> Vec<P> {
    let coords = Coords::new(mapping, nearest, out_w);
    let mut xy = vec![0i32; 2 * out_w];
    let mut out = vec![P::default(); out_w * out_h * channels];
    for (y, row) in out.chunks_exact_mut(out_w * channels).enumerate() {
        coords.row(y, &mut xy);
        row_fn(&xy, row);
    }
    out
}

/// The float-weighted warp of any pixel type.
pub(crate) fn warp_buf<P: Pixel>(
    src: &ImageBuf<P>,
    mapping: Mapping,
    out_w: usize,
    out_h: usize,
    interp: Interpolation,
    fill: Fill,
    cval255: f64,
) -> ImageBuf<P> {
    let c = src.channels();
    let cval = cval_for::<P>(cval255);
    let nearest = interp == Interpolation::Nearest;
    let data = match c {
        1 => for_rows(mapping, nearest, out_w, out_h, 1, |xy, row| {
            row_generic::<P, 1>(src, xy, row, interp, fill, cval)
        }),
        3 => for_rows(mapping, nearest, out_w, out_h, 3, |xy, row| {
            row_generic::<P, 3>(src, xy, row, interp, fill, cval)
        }),
        _ => for_rows(mapping, nearest, out_w, out_h, 4, |xy, row| {
            row_generic::<P, 4>(src, xy, row, interp, fill, cval)
        }),
    };
    ImageBuf::with_data(out_w, out_h, c, data)
}

/// The `u8` bilinear warp in OpenCV's fixed point.
fn warp_u8_bilinear(
    src: &ImageBuf<u8>,
    mapping: Mapping,
    out_w: usize,
    out_h: usize,
    fill: Fill,
    cval255: f64,
) -> ImageBuf<u8> {
    let c = src.channels();
    let cval = cval_for::<u8>(cval255);
    let data = match c {
        1 => for_rows(mapping, false, out_w, out_h, 1, |xy, row| {
            row_u8_bilinear_any::<1>(src, xy, row, fill, cval)
        }),
        3 => for_rows(mapping, false, out_w, out_h, 3, |xy, row| {
            row_u8_bilinear_any::<3>(src, xy, row, fill, cval)
        }),
        _ => for_rows(mapping, false, out_w, out_h, 4, |xy, row| {
            row_u8_bilinear_any::<4>(src, xy, row, fill, cval)
        }),
    };
    ImageBuf::with_data(out_w, out_h, c, data)
}

/// The inverse of a 2×3 affine matrix (OpenCV's `invertAffineTransform`; singular → zeros).
pub(crate) fn invert_affine(m: &[f64; 6]) -> [f64; 6] {
    let [a, b, c, d, e, f] = *m;
    let det = a * e - b * d;
    let det = if det != 0.0 { 1.0 / det } else { 0.0 };
    let (a11, a22, a12, a21) = (e * det, a * det, -b * det, -d * det);
    [a11, a12, -a11 * c - a12 * f, a21, a22, -a21 * c - a22 * f]
}

/// The inverse of a 3×3 matrix (adjugate over determinant; singular → zeros).
pub(crate) fn invert3(m: &[f64; 9]) -> [f64; 9] {
    let [a, b, c, d, e, f, g, h, i] = *m;
    let (ca, cb, cc) = (e * i - f * h, f * g - d * i, d * h - e * g);
    let det = a * ca + b * cb + c * cc;
    let k = if det != 0.0 { 1.0 / det } else { 0.0 };
    [
        ca * k,
        (c * h - b * i) * k,
        (b * f - c * e) * k,
        cb * k,
        (a * i - c * g) * k,
        (c * d - a * f) * k,
        cc * k,
        (b * g - a * h) * k,
        (a * e - b * d) * k,
    ]
}

/// Moves keypoints and boxes with `f`, a forward map in continuous coordinates. A box becomes
/// the enclosing box of its mapped corners, plus `edge_points` points along each side for
/// maps that bend straight lines.
pub(crate) fn map_targets(s: &mut Sample, edge_points: usize, f: impl Fn(f64, f64) -> (f64, f64)) {
    for k in &mut s.keypoints {
        let (x, y) = f(k.x as f64, k.y as f64);
        *k = Keypoint {
            x: x as f32,
            y: y as f32,
        };
    }
    for b in &mut s.boxes {
        let (x1, y1, x2, y2) = (b.x1 as f64, b.y1 as f64, b.x2 as f64, b.y2 as f64);
        let mut lo = (f64::INFINITY, f64::INFINITY);
        let mut hi = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        let n = edge_points + 1;
        for i in 0..n {
            let t = i as f64 / n as f64;
            let (xt, yt) = (x1 + (x2 - x1) * t, y1 + (y2 - y1) * t);
            let (xr, yb) = (x2 - (x2 - x1) * t, y2 - (y2 - y1) * t);
            for (px, py) in [(xt, y1), (x2, yt), (xr, y2), (x1, yb)] {
                let (x, y) = f(px, py);
                lo = (lo.0.min(x), lo.1.min(y));
                hi = (hi.0.max(x), hi.1.max(y));
            }
        }
        *b = BBox {
            x1: lo.0 as f32,
            y1: lo.1 as f32,
            x2: hi.0 as f32,
            y2: hi.1 as f32,
            label: b.label,
        };
    }
}

/// A forward affine matrix on pixel indices applied to a continuous point.
pub(crate) fn affine_point(m: &[f64; 6], x: f64, y: f64) -> (f64, f64) {
    let (x, y) = (x - 0.5, y - 0.5);
    (
        m[0] * x + m[1] * y + m[2] + 0.5,
        m[3] * x + m[4] * y + m[5] + 0.5,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflect_101_and_edge_borders_index_like_opencv() {
        let idx = |fill| {
            (-3..8)
                .map(|i| border_index(i, 5, fill))
                .collect::<Vec<_>>()
        };
        let r: Vec<_> = idx(Fill::Reflect).into_iter().map(Option::unwrap).collect();
        assert_eq!(r, [3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1]);
        let e: Vec<_> = idx(Fill::Edge).into_iter().map(Option::unwrap).collect();
        assert_eq!(e, [0, 0, 0, 0, 1, 2, 3, 4, 4, 4, 4]);
        assert_eq!(border_index(-1, 5, Fill::Constant), None);
        assert_eq!(border_index(7, 1, Fill::Reflect), Some(0));
    }

    #[test]
    fn bilinear_weights_sum_to_one_in_fixed_point() {
        for w in bilinear_tab_i32() {
            assert_eq!(w.iter().sum::<i32>(), 32768);
        }
        assert_eq!(bilinear_tab_i32()[0], [32768, 0, 0, 0]);
        assert_eq!(bilinear_tab_i32()[16 * 32 + 16], [8192; 4]);
    }

    #[test]
    fn identity_warps_return_the_image_for_every_interpolation_and_type() {
        let data: Vec<u8> = (0..6 * 5 * 3).map(|v| (v * 7 % 251) as u8).collect();
        let img = Image::U8(ImageBuf::new(6, 5, 3, data).unwrap());
        let id = Mapping::Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        for interp in [
            Interpolation::Nearest,
            Interpolation::Bilinear,
            Interpolation::Bicubic,
        ] {
            for fill in [Fill::Constant, Fill::Edge, Fill::Reflect] {
                assert_eq!(warp_image(&img, id, 6, 5, interp, fill, 9.0), img);
            }
        }
        let f = Image::F32(img.to_f32());
        let got = warp_image(&f, id, 6, 5, Interpolation::Bicubic, Fill::Constant, 0.0);
        assert_eq!(got, f);
    }

    #[test]
    fn a_shift_outside_reads_the_fill() {
        let img = ImageBuf::new(3, 1, 1, vec![10u8, 20, 30]).unwrap();
        // Destination x reads source x - 1 ... the inverse of "move right by one".
        let m = Mapping::Affine(invert_affine(&[1.0, 0.0, 1.0, 0.0, 1.0, 0.0]));
        let run = |fill| {
            let out = warp_image(
                &Image::U8(img.clone()),
                m,
                3,
                1,
                Interpolation::Nearest,
                fill,
                5.0,
            );
            match out {
                Image::U8(b) => b.into_data(),
                _ => unreachable!(),
            }
        };
        assert_eq!(run(Fill::Constant), [5, 10, 20]);
        assert_eq!(run(Fill::Edge), [10, 10, 20]);
        assert_eq!(run(Fill::Reflect), [20, 10, 20]);
    }

    #[test]
    fn cval_is_on_the_0_255_scale_for_every_type() {
        assert_eq!(cval_for::<u8>(255.0), 255);
        assert_eq!(cval_for::<u16>(255.0), 65535);
        assert!((cval_for::<f32>(51.0) - 0.2).abs() < 1e-6);
    }

    #[test]
    fn matrix_inverses_undo_their_matrix() {
        let m = [1.2, 0.3, -7.0, -0.4, 0.9, 3.0];
        let i = invert_affine(&m);
        let (x, y) = affine_point(
            &i,
            affine_point(&m, 3.0, 4.0).0,
            affine_point(&m, 3.0, 4.0).1,
        );
        assert!((x - 3.0).abs() < 1e-9 && (y - 4.0).abs() < 1e-9);
        let h = [1.1, 0.2, 3.0, -0.1, 0.9, 2.0, 0.001, 0.002, 1.0];
        let hi = invert3(&h);
        let mut p = [0.0; 9];
        for r in 0..3 {
            for c in 0..3 {
                p[r * 3 + c] = (0..3).map(|k| h[r * 3 + k] * hi[k * 3 + c]).sum();
            }
        }
        for (k, v) in p.iter().enumerate() {
            let want = if k % 4 == 0 { 1.0 } else { 0.0 };
            assert!((v - want).abs() < 1e-12, "{p:?}");
        }
    }
}
