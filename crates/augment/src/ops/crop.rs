//! Cropping and padding by side amounts: imgaug's `CropAndPad`, `Crop` and `Pad`, and the
//! crop/pad core the window crops share. Padding reads the (already cropped) image with
//! `cv2.copyMakeBorder` / `np.pad` semantics; masks and heatmaps are padded with 0.

use serde::{Deserialize, Serialize};

use super::affine::{check_cval, sample_int};
use super::resize::{ResizeInterpolation, resize_sample};
use crate::kernels::warp::{Fill, border_index, cval_for};
use crate::{AugRng, AugmentError, Image, ImageBuf, Op, Param, Pixel, Result, Sample};

/// Amounts per side: one [`Param`] drawn independently for each side (imgaug's
/// `sample_independently=True`), `[top, right, bottom, left]`, or
/// `{ "top": …, "right": …, "bottom": …, "left": … }` (missing sides 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Sides {
    /// Every side from this parameter, drawn per side.
    All(Param),
    /// `[top, right, bottom, left]`.
    Each([Param; 4]),
    /// Named sides.
    Named(NamedSides),
}

/// The named form of [`Sides`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSides {
    /// Top.
    #[serde(default = "zero")]
    pub top: Param,
    /// Right.
    #[serde(default = "zero")]
    pub right: Param,
    /// Bottom.
    #[serde(default = "zero")]
    pub bottom: Param,
    /// Left.
    #[serde(default = "zero")]
    pub left: Param,
}

fn zero() -> Param {
    Param::Fixed(0.0)
}

impl Sides {
    fn params(&self) -> [&Param; 4] {
        match self {
            Sides::All(p) => [p; 4],
            Sides::Each([t, r, b, l]) => [t, r, b, l],
            Sides::Named(n) => [&n.top, &n.right, &n.bottom, &n.left],
        }
    }
    fn validate(&self, op: &'static str, field: &'static str, lo: f64, hi: f64) -> Result<()> {
        self.params()
            .iter()
            .try_for_each(|p| p.validate(op, field, lo, hi))
    }
}

/// Signed amounts `[top, right, bottom, left]` in pixels (positive pads, negative crops) and
/// the pad fill, as drawn by [`CropAndPad`], [`Crop`] and [`Pad`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CropPadParams {
    /// Top, right, bottom, left; > 0 pads, < 0 crops.
    pub sides: [i64; 4],
    /// Pad fill on the 0–255 scale.
    pub cval: f64,
}

/// Draws signed side amounts in pixels from `px` or `percent` (× height for top/bottom, ×
/// width for left/right, rounded half to even as numpy), times `sign`.
fn draw_sides(
    px: &Option<Sides>,
    percent: &Option<Sides>,
    sign: i64,
    rng: &mut AugRng,
    s: &Sample,
) -> [i64; 4] {
    let (w, h) = (s.image.width() as f64, s.image.height() as f64);
    match (px, percent) {
        (Some(p), _) => p.params().map(|p| sign * sample_int(p, rng)),
        (None, Some(p)) => {
            let mut out = [0; 4];
            for (i, p) in p.params().into_iter().enumerate() {
                let size = if i % 2 == 0 { h } else { w };
                out[i] = sign * (p.sample(rng) * size).round_ties_even() as i64;
            }
            out
        }
        (None, None) => [0; 4],
    }
}

/// imgaug's `_crop_prevent_zero_size`: gives back crop amounts until at least one row and
/// column remain.
fn prevent_zero_size(h: usize, w: usize, crop: [i64; 4]) -> [i64; 4] {
    let [mut top, mut right, mut bottom, mut left] = crop;
    let (h, w) = (h as i64, w as i64);
    let regain = |size: i64, a: &mut i64, b: &mut i64| {
        let remaining = size - (*a + *b);
        if remaining < 1 {
            let regain = remaining.abs() + 1;
            let (mut ra, mut rb) = (regain / 2, regain / 2);
            if ra + rb < regain {
                ra += 1;
            }
            if ra > *a {
                rb += ra - *a;
                ra = *a;
            } else if rb > *b {
                ra += rb - *b;
                rb = *b;
            }
            *a -= ra;
            *b -= rb;
        }
    };
    regain(h, &mut top, &mut bottom);
    regain(w, &mut right, &mut left);
    [top.max(0), right.max(0), bottom.max(0), left.max(0)]
}

/// Crops the window `(x, y, cw, ch)` of `img` (inside the image) and pads it by
/// `[top, right, bottom, left]`, reading the cropped image with `fill`.
pub(crate) fn crop_pad_buf<P: Pixel>(
    img: &ImageBuf<P>,
    window: [usize; 4],
    pad: [usize; 4],
    fill: Fill,
    cval: P,
) -> ImageBuf<P> {
    let [x, y, cw, ch] = window;
    let [pt, pr, pb, pl] = pad;
    let c = img.channels();
    let (ow, oh) = (cw + pl + pr, ch + pt + pb);
    // Source offsets of the padded columns, left then right; the middle is one slice.
    let col = |ox: usize| border_index(ox as i64 - pl as i64, cw, fill).map(|i| (i + x) * c);
    let left: Vec<Option<usize>> = (0..pl).map(col).collect();
    let right: Vec<Option<usize>> = (pl + cw..ow).map(col).collect();
    let mut out = Vec::with_capacity(ow * oh * c);
    let blank = vec![cval; ow * c];
    for oy in 0..oh {
        let Some(sy) = border_index(oy as i64 - pt as i64, ch, fill) else {
            out.extend_from_slice(&blank);
            continue;
        };
        let row = img.row(sy + y);
        let pad_cols = |cols: &[Option<usize>], out: &mut Vec<P>| {
            if cols.iter().all(Option::is_none) {
                // Constant padding: one run of `cval`.
                out.extend_from_slice(&blank[..cols.len() * c]);
                return;
            }
            for col in cols {
                match col {
                    Some(i) => out.extend_from_slice(&row[*i..*i + c]),
                    None => out.extend_from_slice(&blank[..c]),
                }
            }
        };
        pad_cols(&left, &mut out);
        out.extend_from_slice(&row[x * c..(x + cw) * c]);
        pad_cols(&right, &mut out);
    }
    ImageBuf::with_data(ow, oh, c, out)
}

/// [`crop_pad_buf`] on an owned image: a pure crop moves the kept rows to the front of the
/// image's own buffer (no allocation, one `memmove` per row).
fn crop_pad_owned<P: Pixel>(
    img: ImageBuf<P>,
    window: [usize; 4],
    pad: [usize; 4],
    fill: Fill,
    cval: P,
) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    if pad != [0; 4] {
        if fill == Fill::Constant && window == [0, 0, w, h] {
            return pad_constant_owned(img, pad, cval);
        }
        return crop_pad_buf(&img, window, pad, fill, cval);
    }
    let [x, y, cw, ch] = window;
    let mut data = img.into_data();
    for row in 0..ch {
        let src = ((y + row) * w + x) * c;
        // The source never lies before the destination: copying front to back is safe.
        data.copy_within(src..src + cw * c, row * cw * c);
    }
    data.truncate(cw * ch * c);
    ImageBuf::with_data(cw, ch, c, data)
}

/// Pads a whole image with a constant in its own buffer: the buffer grows to the padded size,
/// the rows move to their new places from the last one backwards (each lands at or after its
/// old place), and only the margins are filled. Writing a fresh buffer instead paid for faulting
/// in new pages per image (measured 0.54× Albumentations on the mixed set, PROFILE.md).
fn pad_constant_owned<P: Pixel>(img: ImageBuf<P>, pad: [usize; 4], cval: P) -> ImageBuf<P> {
    let [pt, pr, pb, pl] = pad;
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let (ow, oh) = (w + pl + pr, h + pt + pb);
    let (row, orow) = (w * c, ow * c);
    let mut data = img.into_data();
    data.resize(orow * oh, cval);
    for y in (0..h).rev() {
        let dst = (y + pt) * orow + pl * c;
        data.copy_within(y * row..(y + 1) * row, dst);
    }
    data[..pt * orow].fill(cval);
    for y in pt..pt + h {
        let line = &mut data[y * orow..(y + 1) * orow];
        line[..pl * c].fill(cval);
        line[(pl + w) * c..].fill(cval);
    }
    data[(pt + h) * orow..].fill(cval);
    ImageBuf::with_data(ow, oh, c, data)
}

/// Crops every part of a sample to the window `[x, y, w, h]` and pads it by
/// `[top, right, bottom, left]` (image with `fill`/`cval`, masks and heatmaps with 0); boxes
/// and keypoints shift with the window.
pub(crate) fn crop_pad_sample(
    mut s: Sample,
    window: [usize; 4],
    pad: [usize; 4],
    fill: Fill,
    cval255: f64,
) -> Sample {
    let f = |img: Image, fill: Fill, cval255: f64| match img {
        Image::U8(b) => Image::U8(crop_pad_owned(b, window, pad, fill, cval_for(cval255))),
        Image::U16(b) => Image::U16(crop_pad_owned(b, window, pad, fill, cval_for(cval255))),
        Image::F32(b) => Image::F32(crop_pad_owned(b, window, pad, fill, cval_for(cval255))),
    };
    s.image = f(s.image, fill, cval255);
    s.masks = s
        .masks
        .into_iter()
        .map(|m| f(m, Fill::Constant, 0.0))
        .collect();
    s.heatmaps = s
        .heatmaps
        .into_iter()
        .map(|m| crop_pad_owned(m, window, pad, Fill::Constant, 0.0))
        .collect();
    let dx = pad[3] as f32 - window[0] as f32;
    let dy = pad[0] as f32 - window[1] as f32;
    for k in &mut s.keypoints {
        k.x += dx;
        k.y += dy;
    }
    for b in &mut s.boxes {
        b.x1 += dx;
        b.x2 += dx;
        b.y1 += dy;
        b.y2 += dy;
    }
    s
}

/// Applies signed side amounts as imgaug's `CropAndPad` does: crop (never below 1×1), then
/// pad, then optionally resize back to the input size (bicubic).
fn apply_sides(s: Sample, p: &CropPadParams, fill: Fill, keep_size: bool) -> Result<Sample> {
    let (w, h) = (s.image.width(), s.image.height());
    let crop = prevent_zero_size(h, w, p.sides.map(|v| (-v).max(0)));
    let pad = p.sides.map(|v| v.max(0) as usize);
    let [ct, cr, cb, cl] = crop.map(|v| v as usize);
    let window = [cl, ct, w - cl - cr, h - ct - cb];
    if window == [0, 0, w, h] && pad == [0; 4] {
        return Ok(s);
    }
    let s = crop_pad_sample(s, window, pad, fill, p.cval);
    if keep_size {
        resize_sample(s, w, h, ResizeInterpolation::Bicubic)
    } else {
        Ok(s)
    }
}

fn check_px_percent(
    op: &'static str,
    px: &Option<Sides>,
    percent: &Option<Sides>,
    px_range: (f64, f64),
    percent_range: (f64, f64),
) -> Result<()> {
    if px.is_some() && percent.is_some() {
        return Err(AugmentError::Invalid {
            op,
            field: "percent",
            value: "given with `px`".into(),
            expected: "either `px` or `percent`".into(),
        });
    }
    if let Some(p) = px {
        p.validate(op, "px", px_range.0, px_range.1)?;
    }
    if let Some(p) = percent {
        p.validate(op, "percent", percent_range.0, percent_range.1)?;
    }
    Ok(())
}

/// imgaug's `CropAndPad`: per side, a positive amount pads and a negative one crops, in
/// pixels (`px`) or as a fraction of the height (top/bottom) or width (left/right)
/// (`percent`). At least one row and column always remain. Padding uses `pad_mode` and
/// `pad_cval` (masks and heatmaps get 0); with `keep_size` the result is resized back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropAndPad {
    /// Amounts in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub px: Option<Sides>,
    /// Amounts as fractions of the side lengths (> -1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Sides>,
    /// How padded pixels are filled.
    #[serde(default)]
    pub pad_mode: Fill,
    /// Constant pad fill on the 0–255 scale.
    #[serde(default = "zero")]
    pub pad_cval: Param,
    /// Resize the result back to the input size.
    #[serde(default)]
    pub keep_size: bool,
}

/// imgaug's `Crop`: [`CropAndPad`] with amounts ≥ 0 that crop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    /// Pixels to crop per side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub px: Option<Sides>,
    /// Fractions to crop per side, in `[0, 1)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Sides>,
    /// Resize the result back to the input size.
    #[serde(default)]
    pub keep_size: bool,
}

/// imgaug's `Pad`: [`CropAndPad`] with amounts ≥ 0 that pad.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pad {
    /// Pixels to pad per side.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub px: Option<Sides>,
    /// Fractions of the side lengths to pad.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<Sides>,
    /// How padded pixels are filled.
    #[serde(default)]
    pub pad_mode: Fill,
    /// Constant pad fill on the 0–255 scale.
    #[serde(default = "zero")]
    pub pad_cval: Param,
    /// Resize the result back to the input size.
    #[serde(default)]
    pub keep_size: bool,
}

const MAX_PX: f64 = 1e6;

impl Op for CropAndPad {
    const NAME: &'static str = "crop_and_pad";
    type Params = CropPadParams;
    fn check(&self) -> Result<()> {
        check_px_percent(
            Self::NAME,
            &self.px,
            &self.percent,
            (-MAX_PX, MAX_PX),
            (-0.9999, 100.0),
        )?;
        check_cval(Self::NAME, "pad_cval", &self.pad_cval)
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> CropPadParams {
        CropPadParams {
            sides: draw_sides(&self.px, &self.percent, 1, rng, s),
            cval: self.pad_cval.sample(rng),
        }
    }
    fn apply(&self, p: &CropPadParams, s: Sample) -> Result<Sample> {
        apply_sides(s, p, self.pad_mode, self.keep_size)
    }
}

impl Op for Crop {
    const NAME: &'static str = "crop";
    type Params = CropPadParams;
    fn check(&self) -> Result<()> {
        check_px_percent(
            Self::NAME,
            &self.px,
            &self.percent,
            (0.0, MAX_PX),
            (0.0, 0.9999),
        )
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> CropPadParams {
        CropPadParams {
            sides: draw_sides(&self.px, &self.percent, -1, rng, s),
            cval: 0.0,
        }
    }
    fn apply(&self, p: &CropPadParams, s: Sample) -> Result<Sample> {
        apply_sides(s, p, Fill::Constant, self.keep_size)
    }
}

impl Op for Pad {
    const NAME: &'static str = "pad";
    type Params = CropPadParams;
    fn check(&self) -> Result<()> {
        check_px_percent(
            Self::NAME,
            &self.px,
            &self.percent,
            (0.0, MAX_PX),
            (0.0, 100.0),
        )?;
        check_cval(Self::NAME, "pad_cval", &self.pad_cval)
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> CropPadParams {
        CropPadParams {
            sides: draw_sides(&self.px, &self.percent, 1, rng, s),
            cval: self.pad_cval.sample(rng),
        }
    }
    fn apply(&self, p: &CropPadParams, s: Sample) -> Result<Sample> {
        apply_sides(s, p, self.pad_mode, self.keep_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BBox, Keypoint};
    use rand::SeedableRng;

    fn gray(w: usize, h: usize) -> ImageBuf<u8> {
        ImageBuf::new(w, h, 1, (0..w * h).map(|v| v as u8).collect()).unwrap()
    }

    #[test]
    fn constant_padding_in_place_equals_padding_into_a_new_buffer() {
        for (w, h, c) in [(5, 3, 1), (4, 4, 3), (7, 2, 4), (1, 1, 3)] {
            let data = (0..w * h * c).map(|i| (i * 7 % 251) as u8).collect();
            let img = ImageBuf::new(w, h, c, data).unwrap();
            for pad in [[1, 2, 3, 4], [0, 0, 2, 0], [3, 0, 0, 1], [0, 5, 0, 0]] {
                let expected = crop_pad_buf(&img, [0, 0, w, h], pad, Fill::Constant, 9);
                let out = pad_constant_owned(img.clone(), pad, 9);
                assert_eq!(out, expected, "{w}×{h}×{c}, pad {pad:?}");
            }
        }
    }

    #[test]
    fn padding_modes_are_copy_make_border() {
        // Row [0, 1, 2] padded 2 left, 3 right.
        let img = gray(3, 1);
        let run = |fill| crop_pad_buf(&img, [0, 0, 3, 1], [0, 3, 0, 2], fill, 9).into_data();
        assert_eq!(run(Fill::Constant), [9, 9, 0, 1, 2, 9, 9, 9]);
        assert_eq!(run(Fill::Edge), [0, 0, 0, 1, 2, 2, 2, 2]);
        assert_eq!(run(Fill::Reflect), [2, 1, 0, 1, 2, 1, 0, 1]);
    }

    #[test]
    fn crops_never_leave_less_than_one_pixel() {
        assert_eq!(prevent_zero_size(10, 10, [6, 0, 6, 0]), [4, 0, 5, 0]);
        assert_eq!(prevent_zero_size(10, 10, [0, 9, 0, 9]), [0, 4, 0, 5]);
        let s = Sample::new(gray(4, 4));
        let p = CropPadParams {
            sides: [-10, -10, -10, -10],
            cval: 0.0,
        };
        let out = apply_sides(s, &p, Fill::Constant, false).unwrap();
        assert_eq!((out.image.width(), out.image.height()), (1, 1));
    }

    #[test]
    fn crop_and_pad_moves_targets_with_the_pixels() {
        let s = Sample::new(gray(8, 6))
            .with_mask(gray(8, 6))
            .with_keypoints([Keypoint { x: 4.5, y: 3.5 }])
            .with_boxes([BBox {
                x1: 2.0,
                y1: 1.0,
                x2: 5.0,
                y2: 4.0,
                label: 7,
            }]);
        // Crop 1 from the top and 2 from the left, pad 3 on the right and 1 at the bottom.
        let p = CropPadParams {
            sides: [-1, 3, 1, -2],
            cval: 0.0,
        };
        let out = apply_sides(s, &p, Fill::Edge, false).unwrap();
        assert_eq!((out.image.width(), out.image.height()), (9, 6));
        let kp = out.keypoints[0];
        assert_eq!((kp.x, kp.y), (2.5, 2.5));
        let Image::U8(img) = &out.image else {
            unreachable!()
        };
        assert_eq!(img.pixel(2, 2), [3 * 8 + 4]);
        let Image::U8(mask) = &out.masks[0] else {
            unreachable!()
        };
        assert_eq!(mask.pixel(2, 2), [3 * 8 + 4]);
        assert_eq!(mask.pixel(8, 2), [0], "masks are padded with 0");
        assert_eq!(
            out.boxes[0],
            BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 3.0,
                y2: 3.0,
                label: 7
            }
        );
    }

    #[test]
    fn percent_amounts_round_per_side_and_one_param_draws_per_side() {
        let op: CropAndPad =
            serde_json::from_str(r#"{"percent": {"top": 0.1, "left": -0.25}}"#).unwrap();
        let s = Sample::new(gray(10, 5));
        let mut rng = AugRng::seed_from_u64(0);
        assert_eq!(op.sample(&mut rng, &s).sides, [0, 0, 0, -2]); // 0.5 -> 0, -2.5 -> -2
        let op: Crop = serde_json::from_str(r#"{"px": [0, 3]}"#).unwrap();
        let draws: Vec<[i64; 4]> = (0..20).map(|_| op.sample(&mut rng, &s).sides).collect();
        assert!(
            draws.iter().any(|d| d[0] != d[1] || d[1] != d[2]),
            "{draws:?}"
        );
        assert!(draws.iter().flatten().all(|v| (-3..=0).contains(v)));
    }

    #[test]
    fn invalid_amounts_are_refused() {
        let neg: Crop = serde_json::from_str(r#"{"px": -1}"#).unwrap();
        assert!(neg.check().unwrap_err().to_string().contains("`px` = -1"));
        let both: Pad = serde_json::from_str(r#"{"px": 1, "percent": 0.1}"#).unwrap();
        assert!(both.check().is_err());
        let ab: Pad = serde_json::from_str(r#"{"px": [4, 1]}"#).unwrap();
        assert!(ab.check().unwrap_err().to_string().contains("a ≤ b"));
        assert!(serde_json::from_str::<Pad>(r#"{"px": {"up": 1}}"#).is_err());
    }
}
