//! Rotations and affine transforms: imgaug's `Rot90`, `Rotate` and `Affine`, with
//! Albumentations' matrix (`T(c) · T(t) · Shear · R · S · T(-c)`, c = ((w-1)/2, (h-1)/2),
//! positive angles counter-clockwise on screen) warped by the shared sampler, which matches
//! `cv2.warpAffine`.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::resize::{ResizeInterpolation, resize_sample};
use crate::kernels::warp::{
    Fill, Interpolation, Mapping, affine_point, invert_affine, map_targets, warp_sample_pixels,
};
use crate::{AugRng, AugmentError, ImageBuf, Op, Param, Pixel, Result, Sample, map_image};

/// A value per axis: one [`Param`] for both (one draw, imgaug's number/tuple), or
/// `{ "x": …, "y": … }` drawn separately (a missing axis takes the option's neutral value).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AxisParam {
    /// Both axes from one draw.
    Both(Param),
    /// Each axis its own parameter.
    Xy(XyParam),
}

/// The per-axis form of an [`AxisParam`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XyParam {
    /// Horizontal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<Param>,
    /// Vertical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<Param>,
}

impl AxisParam {
    fn validate(&self, op: &'static str, field: &'static str, lo: f64, hi: f64) -> Result<()> {
        match self {
            AxisParam::Both(p) => p.validate(op, field, lo, hi),
            AxisParam::Xy(XyParam { x, y }) => {
                for p in [x, y].into_iter().flatten() {
                    p.validate(op, field, lo, hi)?;
                }
                Ok(())
            }
        }
    }

    /// `[x, y]`; `neutral` for an axis not given.
    fn sample(&self, rng: &mut AugRng, neutral: f64) -> [f64; 2] {
        match self {
            AxisParam::Both(p) => {
                let v = p.sample(rng);
                [v, v]
            }
            AxisParam::Xy(XyParam { x, y }) => {
                [x, y].map(|p| p.as_ref().map_or(neutral, |p| p.sample(rng)))
            }
        }
    }
}

/// An integer draw (imgaug's discrete parameters): a range is uniform over its integers,
/// anything else is rounded.
pub(crate) fn sample_int(p: &Param, rng: &mut AugRng) -> i64 {
    match p {
        Param::Range([a, b]) => {
            let (a, b) = (a.round() as i64, b.round() as i64);
            if a >= b { a } else { rng.random_range(a..=b) }
        }
        other => other.sample(rng).round() as i64,
    }
}

/// Checks a fill value on the 0–255 scale.
pub(crate) fn check_cval(op: &'static str, field: &'static str, cval: &Param) -> Result<()> {
    cval.validate(op, field, 0.0, 255.0)
}

fn zero() -> Param {
    Param::Fixed(0.0)
}
fn one() -> Param {
    Param::Fixed(1.0)
}

/// Rotates by multiples of 90° without interpolation (imgaug's `Rot90`): `k = 1` is
/// `np.rot90(img, 1)`, a quarter turn counter-clockwise on screen. `k` is drawn as an integer
/// in 0..=3 (`[1, 3]` = uniform over 1, 2, 3). With `keep_size`, a non-square result is
/// resized back to the input size (bicubic, as imgaug).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rot90 {
    /// Quarter turns counter-clockwise.
    #[serde(default = "one")]
    pub k: Param,
    /// Resize the result back to the input size.
    #[serde(default)]
    pub keep_size: bool,
}

/// `np.rot90(img, k)` of one image.
pub fn rot90_buf<P: Pixel>(img: &ImageBuf<P>, k: u8) -> ImageBuf<P> {
    match img.channels() {
        1 => rot90_c::<P, 1>(img, k),
        3 => rot90_c::<P, 3>(img, k),
        _ => rot90_c::<P, 4>(img, k),
    }
}

/// [`rot90_buf`] with whole pixels as `[P; C]`, in 32×32 tiles of the output: a tile reads 32
/// source rows that stay in cache, where an output row at a time strides through the whole
/// source per row (and a per-pixel `extend_from_slice` was a call per 3 bytes).
fn rot90_c<P: Pixel, const C: usize>(img: &ImageBuf<P>, k: u8) -> ImageBuf<P> {
    const TILE: usize = 32;
    let (w, h) = (img.width(), img.height());
    let (src, _) = img.data().as_chunks::<C>();
    let (ow, oh) = if k % 2 == 1 { (h, w) } else { (w, h) };
    // Source pixel of output (x, y) = base + x·dx + y·dy.
    let (wi, hi) = (w as isize, h as isize);
    let (base, dx, dy) = match k % 4 {
        0 => (0, 1, wi),
        1 => (wi - 1, wi, -1),
        2 => (hi * wi - 1, -1, -wi),
        _ => ((hi - 1) * wi, -wi, 1),
    };
    let mut out = vec![[P::default(); C]; ow * oh];
    for ty in (0..oh).step_by(TILE) {
        for tx in (0..ow).step_by(TILE) {
            for y in ty..(ty + TILE).min(oh) {
                let row = &mut out[y * ow..(y + 1) * ow];
                let start = base + y as isize * dy;
                for (x, px) in row
                    .iter_mut()
                    .enumerate()
                    .take((tx + TILE).min(ow))
                    .skip(tx)
                {
                    *px = src[(start + x as isize * dx) as usize];
                }
            }
        }
    }
    ImageBuf::with_data(ow, oh, C, out.into_flattened())
}

impl Op for Rot90 {
    const NAME: &'static str = "rot90";
    type Params = u8;
    fn check(&self) -> Result<()> {
        self.k.validate(Self::NAME, "k", 0.0, 3.0)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> u8 {
        sample_int(&self.k, rng).rem_euclid(4) as u8
    }
    fn apply(&self, k: &u8, mut s: Sample) -> Result<Sample> {
        let k = *k % 4;
        if k == 0 {
            return Ok(s);
        }
        let (w, h) = (s.image.width() as f64, s.image.height() as f64);
        s.image = map_image!(&s.image, b => rot90_buf(b, k));
        for m in &mut s.masks {
            *m = map_image!(&*m, b => rot90_buf(b, k));
        }
        for m in &mut s.heatmaps {
            *m = rot90_buf(m, k);
        }
        map_targets(&mut s, 0, |x, y| match k {
            1 => (y, w - x),
            2 => (w - x, h - y),
            _ => (h - y, x),
        });
        if self.keep_size {
            s = resize_sample(s, w as usize, h as usize, ResizeInterpolation::Bicubic)?;
        }
        Ok(s)
    }
}

/// `cv2.getRotationMatrix2D(((w-1)/2, (h-1)/2), angle, 1)`: the forward matrix of a rotation
/// by `angle` degrees counter-clockwise (on screen) about the image centre.
pub fn rotation_matrix(w: usize, h: usize, angle: f64) -> [f64; 6] {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let a = angle.to_radians();
    let (alpha, beta) = (a.cos(), a.sin());
    [
        alpha,
        beta,
        (1.0 - alpha) * cx - beta * cy,
        -beta,
        alpha,
        beta * cx + (1.0 - alpha) * cy,
    ]
}

fn matmul3(a: &[[f64; 3]; 3], b: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j];
        }
    }
    m
}

/// Albumentations' forward affine matrix `T(c) · T(t) · Shear · R · S · T(-c)` on an image of
/// `w × h`: `scale` per axis, `translate` in pixels, `rotate` and `shear` in degrees (the shear
/// is negated, as Albumentations does).
pub fn affine_matrix(
    w: usize,
    h: usize,
    scale: [f64; 2],
    translate: [f64; 2],
    rotate: f64,
    shear: [f64; 2],
) -> [f64; 6] {
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    let r = rotate.rem_euclid(360.0).to_radians();
    let (shx, shy) = ((-shear[0]).to_radians(), (-shear[1]).to_radians());
    let to_origin = [[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]];
    let s = [[scale[0], 0.0, 0.0], [0.0, scale[1], 0.0], [0.0, 0.0, 1.0]];
    let rot = [
        [r.cos(), r.sin(), 0.0],
        [-r.sin(), r.cos(), 0.0],
        [0.0, 0.0, 1.0],
    ];
    let sh = [
        [1.0, shx.tan(), 0.0],
        [shy.tan(), 1.0, 0.0],
        [0.0, 0.0, 1.0],
    ];
    let t = [
        [1.0, 0.0, translate[0]],
        [0.0, 1.0, translate[1]],
        [0.0, 0.0, 1.0],
    ];
    let back = [[1.0, 0.0, cx], [0.0, 1.0, cy], [0.0, 0.0, 1.0]];
    let m = [t, sh, rot, s, to_origin]
        .iter()
        .fold(back, |acc, b| matmul3(&acc, b));
    [m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2]]
}

/// Warps a sample with a forward affine matrix (output size = input size).
pub(crate) fn affine_sample(
    s: Sample,
    m: &[f64; 6],
    interp: Interpolation,
    fill: Fill,
    cval: f64,
) -> Sample {
    let size = (s.image.width(), s.image.height());
    let inv = invert_affine(m);
    let mut s = warp_sample_pixels(s, Mapping::Affine(inv), size, interp, fill, cval);
    map_targets(&mut s, 0, |x, y| affine_point(m, x, y));
    s
}

/// Rotates about the image centre by an angle in degrees drawn per image, positive =
/// counter-clockwise on screen (imgaug's `Rotate`, Albumentations' `Rotate`); the output keeps
/// the input size. Boxes become the enclosing box of their rotated corners.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    /// Angle in degrees.
    #[serde(default = "default_rotate")]
    pub rotate: Param,
    /// Interpolation of the image (masks are always nearest, heatmaps bilinear).
    #[serde(default)]
    pub interpolation: Interpolation,
    /// Border handling (imgaug's `mode`; `fill` is accepted too).
    #[serde(default, alias = "fill")]
    pub mode: Fill,
    /// Constant fill on the 0–255 scale (scaled to the pixel type).
    #[serde(default = "zero")]
    pub cval: Param,
}

fn default_rotate() -> Param {
    Param::Range([-30.0, 30.0])
}

/// What a [`Rotate`] drew.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RotateParams {
    /// Degrees, counter-clockwise on screen.
    pub angle: f64,
    /// Fill on the 0–255 scale.
    pub cval: f64,
}

impl Op for Rotate {
    const NAME: &'static str = "rotate";
    type Params = RotateParams;
    fn check(&self) -> Result<()> {
        self.rotate
            .validate(Self::NAME, "rotate", -3600.0, 3600.0)?;
        check_cval(Self::NAME, "cval", &self.cval)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> RotateParams {
        RotateParams {
            angle: self.rotate.sample(rng),
            cval: self.cval.sample(rng),
        }
    }
    fn apply(&self, p: &RotateParams, s: Sample) -> Result<Sample> {
        let m = rotation_matrix(s.image.width(), s.image.height(), p.angle);
        Ok(affine_sample(s, &m, self.interpolation, self.mode, p.cval))
    }
}

/// imgaug's `Affine`: scale, translate (pixels or a fraction of the size), rotate and shear
/// (degrees) about the image centre, with Albumentations' matrix; the output keeps the input
/// size. As imgaug, a single `scale`/`translate` draws once for both axes and `{x, y}` draws
/// each; a fixed number as `shear` shears along x only, a range or list draws once for both.
/// `translate_percent` is truncated to whole pixels (`int(p * w)`, Albumentations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affine {
    /// Zoom factor (> 0).
    #[serde(default = "one_axis")]
    pub scale: AxisParam,
    /// Translation in pixels, +x right, +y down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translate_px: Option<AxisParam>,
    /// Translation as a fraction of the width / height.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub translate_percent: Option<AxisParam>,
    /// Rotation in degrees, counter-clockwise on screen.
    #[serde(default = "zero")]
    pub rotate: Param,
    /// Shear in degrees.
    #[serde(default = "zero_axis")]
    pub shear: AxisParam,
    /// Interpolation of the image (masks are always nearest, heatmaps bilinear).
    #[serde(default)]
    pub interpolation: Interpolation,
    /// Border handling (imgaug's `mode`; `fill` is accepted too).
    #[serde(default, alias = "fill")]
    pub mode: Fill,
    /// Constant fill on the 0–255 scale.
    #[serde(default = "zero")]
    pub cval: Param,
}

fn one_axis() -> AxisParam {
    AxisParam::Both(one())
}
fn zero_axis() -> AxisParam {
    AxisParam::Both(zero())
}

impl Default for Affine {
    fn default() -> Self {
        Self {
            scale: one_axis(),
            translate_px: None,
            translate_percent: None,
            rotate: zero(),
            shear: zero_axis(),
            interpolation: Interpolation::Bilinear,
            mode: Fill::Constant,
            cval: zero(),
        }
    }
}

/// What an [`Affine`] drew.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AffineParams {
    /// Scale per axis.
    pub scale: [f64; 2],
    /// Translation in pixels.
    pub translate: [f64; 2],
    /// Rotation in degrees.
    pub rotate: f64,
    /// Shear in degrees per axis.
    pub shear: [f64; 2],
    /// Fill on the 0–255 scale.
    pub cval: f64,
}

impl Op for Affine {
    const NAME: &'static str = "affine";
    type Params = AffineParams;
    fn check(&self) -> Result<()> {
        self.scale.validate(Self::NAME, "scale", 1e-4, 1e4)?;
        if self.translate_px.is_some() && self.translate_percent.is_some() {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "translate_percent",
                value: "given with `translate_px`".into(),
                expected: "either `translate_px` or `translate_percent`".into(),
            });
        }
        if let Some(t) = &self.translate_px {
            t.validate(Self::NAME, "translate_px", -1e6, 1e6)?;
        }
        if let Some(t) = &self.translate_percent {
            t.validate(Self::NAME, "translate_percent", -10.0, 10.0)?;
        }
        self.rotate
            .validate(Self::NAME, "rotate", -3600.0, 3600.0)?;
        self.shear.validate(Self::NAME, "shear", -89.0, 89.0)?;
        check_cval(Self::NAME, "cval", &self.cval)
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> AffineParams {
        let scale = self.scale.sample(rng, 1.0);
        let translate = match (&self.translate_px, &self.translate_percent) {
            (Some(t), _) => t.sample(rng, 0.0),
            (None, Some(t)) => {
                let [px, py] = t.sample(rng, 0.0);
                let (w, h) = (s.image.width() as f64, s.image.height() as f64);
                [(px * w).trunc(), (py * h).trunc()]
            }
            (None, None) => [0.0, 0.0],
        };
        let rotate = self.rotate.sample(rng);
        let shear = match &self.shear {
            AxisParam::Both(Param::Fixed(v)) => [*v, 0.0],
            other => other.sample(rng, 0.0),
        };
        AffineParams {
            scale,
            translate,
            rotate,
            shear,
            cval: self.cval.sample(rng),
        }
    }
    fn apply(&self, p: &AffineParams, s: Sample) -> Result<Sample> {
        let (w, h) = (s.image.width(), s.image.height());
        let m = affine_matrix(w, h, p.scale, p.translate, p.rotate, p.shear);
        Ok(affine_sample(s, &m, self.interpolation, self.mode, p.cval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BBox, Image, Keypoint};
    use rand::SeedableRng;

    #[test]
    fn rot90_k1_is_numpy_rot90_counter_clockwise() {
        // [[0, 1, 2], [3, 4, 5]] -> np.rot90 -> [[2, 5], [1, 4], [0, 3]]
        let img = ImageBuf::new(3, 2, 1, vec![0u8, 1, 2, 3, 4, 5]).unwrap();
        assert_eq!(rot90_buf(&img, 1).data(), [2, 5, 1, 4, 0, 3]);
        assert_eq!(rot90_buf(&img, 2).data(), [5, 4, 3, 2, 1, 0]);
        assert_eq!(rot90_buf(&img, 3).data(), [3, 0, 4, 1, 5, 2]);
        assert_eq!(rot90_buf(&rot90_buf(&img, 1), 3), img);
    }

    #[test]
    fn rot90_moves_keypoints_with_their_pixel() {
        let mut data = vec![0u8; 5 * 3];
        data[5 + 3] = 255; // pixel (3, 1)
        let s = Sample::new(ImageBuf::new(5, 3, 1, data).unwrap())
            .with_keypoints([Keypoint { x: 3.5, y: 1.5 }])
            .with_boxes([BBox {
                x1: 3.0,
                y1: 1.0,
                x2: 4.0,
                y2: 2.0,
                label: 0,
            }]);
        for k in 1..4u8 {
            let out = Rot90 {
                k: Param::Fixed(k as f64),
                keep_size: false,
            }
            .apply(&k, s.clone())
            .unwrap();
            let kp = out.keypoints[0];
            let Image::U8(b) = &out.image else {
                unreachable!()
            };
            assert_eq!(b.pixel(kp.x as usize, kp.y as usize), [255], "k = {k}");
            let bx = out.boxes[0];
            assert_eq!((bx.x1.floor(), bx.y1.floor()), (kp.x.floor(), kp.y.floor()));
            assert_eq!((bx.x2 - bx.x1, bx.y2 - bx.y1), (1.0, 1.0));
        }
    }

    #[test]
    fn rot90_draws_integers_in_its_range_and_refuses_k_outside_0_to_3() {
        let op = Rot90 {
            k: Param::Range([1.0, 3.0]),
            keep_size: false,
        };
        let mut rng = AugRng::seed_from_u64(3);
        let s = Sample::new(ImageBuf::<u8>::filled(2, 2, 1, 0).unwrap());
        let mut seen = [0; 4];
        for _ in 0..300 {
            seen[op.sample(&mut rng, &s) as usize] += 1;
        }
        assert_eq!(seen[0], 0);
        assert!(seen[1..].iter().all(|&n| n > 70), "{seen:?}");
        let bad = Rot90 {
            k: Param::Fixed(4.0),
            keep_size: false,
        };
        assert!(bad.check().unwrap_err().to_string().contains("`k` = 4"));
    }

    #[test]
    fn rotation_matrix_is_get_rotation_matrix_2d() {
        let m = rotation_matrix(64, 48, 30.0);
        let want = [
            0.8660254037844387,
            0.49999999999999994,
            -7.529800219209818,
            -0.49999999999999994,
            0.8660254037844387,
            18.89840301106569,
        ];
        for (a, b) in m.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{m:?}");
        }
    }

    #[test]
    fn affine_matrix_composes_like_albumentations() {
        let m = affine_matrix(64, 48, [1.2, 1.2], [5.0, -3.0], 15.0, [0.0, 0.0]);
        let want = [
            1.159110991546882,
            0.3105828541230249,
            -7.310693305617868,
            -0.3105828541230249,
            1.159110991546882,
            3.0442516035235556,
        ];
        for (a, b) in m.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{m:?}");
        }
    }

    #[test]
    fn affine_options_are_checked() {
        let both = Affine {
            translate_px: Some(AxisParam::Both(Param::Fixed(1.0))),
            translate_percent: Some(AxisParam::Both(Param::Fixed(0.1))),
            ..Affine::default()
        };
        assert!(both.check().is_err());
        let zero_scale = Affine {
            scale: AxisParam::Both(Param::Fixed(0.0)),
            ..Affine::default()
        };
        assert!(
            zero_scale
                .check()
                .unwrap_err()
                .to_string()
                .contains("`scale` = 0")
        );
        let ab = Affine {
            rotate: Param::Range([10.0, -10.0]),
            ..Affine::default()
        };
        assert!(ab.check().unwrap_err().to_string().contains("a ≤ b"));
        let json = r#"{"scale": {"x": [0.9, 1.1]}, "translate_percent": {"x": 0.1, "y": -0.1}, "shear": {"y": 5}}"#;
        let op: Affine = serde_json::from_str(json).unwrap();
        op.check().unwrap();
        let s = Sample::new(ImageBuf::<u8>::filled(64, 48, 3, 0).unwrap());
        let p = op.sample(&mut AugRng::seed_from_u64(1), &s);
        assert_eq!(p.translate, [6.0, -4.0]); // int(6.4), int(-4.8)
        assert_eq!(p.shear, [0.0, 5.0]);
        assert_eq!(p.scale[1], 1.0);
        assert!(serde_json::from_str::<Affine>(r#"{"scale": {"z": 1}}"#).is_err());
    }
}
