//! Blurs: imgaug's `GaussianBlur`, `AverageBlur`, `MedianBlur` and `MotionBlur`, computed as
//! OpenCV computes them for Albumentations and imgaug (`BORDER_REFLECT_101`, except the
//! median's replicated border).

use serde::{Deserialize, Serialize};

use crate::kernels::box_filter::box_filter;
use crate::kernels::filter::{filter2d, gaussian_kernel, sample_int, sep_filter2d, validate_int};
use crate::kernels::median::median_filter;
use crate::{AugRng, AugmentError, Op, Param, Result, Sample, map_image};

/// Below this σ a Gaussian blur is the identity (imgaug's `eps`).
const SIGMA_EPS: f64 = 1e-3;

/// Gaussian blur with σ drawn per image (imgaug's `GaussianBlur(sigma)`), with
/// Albumentations' kernel: size `int(3.5σ)·2 + 1`, separable, `BORDER_REFLECT_101`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaussianBlur {
    /// Standard deviation in pixels, in `[0, 100]` (≤ 0.001 leaves the image as it is).
    pub sigma: Param,
}

impl Default for GaussianBlur {
    fn default() -> Self {
        Self {
            sigma: Param::Range([0.0, 3.0]),
        }
    }
}

impl Op for GaussianBlur {
    const NAME: &'static str = "gaussian_blur";
    /// σ.
    type Params = f64;
    fn check(&self) -> Result<()> {
        self.sigma.validate(Self::NAME, "sigma", 0.0, 100.0)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> f64 {
        self.sigma.sample(rng).max(0.0)
    }
    fn apply(&self, sigma: &f64, mut s: Sample) -> Result<Sample> {
        if *sigma > SIGMA_EPS {
            let k = gaussian_kernel(*sigma);
            s.image = map_image!(&s.image, b => sep_filter2d(b, &k, &k));
        }
        Ok(s)
    }
}

/// Mean over a `k × k` window, `k` drawn per image (imgaug's `AverageBlur(k)` =
/// `cv2.blur`, `BORDER_REFLECT_101`; an even `k` has its anchor at `k/2`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AverageBlur {
    /// Window size in pixels (whole, in `[1, 1001]`; 1 leaves the image as it is).
    pub k: Param,
}

impl Default for AverageBlur {
    fn default() -> Self {
        Self {
            k: Param::Range([1.0, 7.0]),
        }
    }
}

impl Op for AverageBlur {
    const NAME: &'static str = "average_blur";
    /// The window size.
    type Params = usize;
    fn check(&self) -> Result<()> {
        validate_int(&self.k, Self::NAME, "k", 1.0, 1001.0)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> usize {
        sample_int(&self.k, rng).clamp(1, 1001) as usize
    }
    fn apply(&self, k: &usize, mut s: Sample) -> Result<Sample> {
        if *k > 1 {
            s.image = map_image!(&s.image, b => box_filter(b, *k, *k));
        }
        Ok(s)
    }
}

/// Median over a `k × k` window, `k` odd and drawn per image (imgaug's `MedianBlur(k)` =
/// `cv2.medianBlur`, border replicated; an even draw from a range becomes `k + 1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MedianBlur {
    /// Window size in pixels (odd values and range ends, in `[1, 255]`).
    pub k: Param,
}

impl Default for MedianBlur {
    fn default() -> Self {
        Self {
            k: Param::Range([1.0, 7.0]),
        }
    }
}

/// Every fixed value, listed value and range end of `p` is odd.
fn check_odd(p: &Param, op: &'static str, field: &'static str) -> Result<()> {
    let values: Vec<f64> = match p {
        Param::Fixed(v) => vec![*v],
        Param::Range(r) => r.to_vec(),
        Param::Choice { choice } => choice.clone(),
        Param::Dist(_) => Vec::new(),
    };
    match values.iter().find(|v| (**v as i64) % 2 == 0) {
        Some(v) => Err(AugmentError::Invalid {
            op,
            field,
            value: v.to_string(),
            expected: "odd window sizes (add or subtract 1)".into(),
        }),
        None => Ok(()),
    }
}

impl Op for MedianBlur {
    const NAME: &'static str = "median_blur";
    /// The (odd) window size.
    type Params = usize;
    fn check(&self) -> Result<()> {
        validate_int(&self.k, Self::NAME, "k", 1.0, 255.0)?;
        check_odd(&self.k, Self::NAME, "k")
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> usize {
        sample_int(&self.k, rng).clamp(1, 255) as usize | 1
    }
    fn apply(&self, k: &usize, mut s: Sample) -> Result<Sample> {
        if k.is_multiple_of(2) {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "k",
                value: k.to_string(),
                expected: "an odd window size".into(),
            });
        }
        if *k > 1 {
            s.image = map_image!(&s.image, b => median_filter(b, *k));
        }
        Ok(s)
    }
}

/// Motion blur (imgaug's `MotionBlur`): a vertical line kernel of size `k` whose weights run
/// linearly from one end to the other by `direction`, rotated by `angle` degrees (clockwise on
/// screen), normalised, and correlated with every channel (`cv2.filter2D`,
/// `BORDER_REFLECT_101`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MotionBlur {
    /// Kernel size (whole, in `[3, 255]`; an even draw becomes `k + 1`).
    pub k: Param,
    /// Rotation of the line in degrees.
    pub angle: Param,
    /// Weighting along the line in `[-1, 1]`: 0 uniform, -1/1 all weight at one end.
    pub direction: Param,
}

impl Default for MotionBlur {
    fn default() -> Self {
        Self {
            k: Param::Range([3.0, 7.0]),
            angle: Param::Range([0.0, 360.0]),
            direction: Param::Range([-1.0, 1.0]),
        }
    }
}

/// The sampled motion-blur kernel parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MotionBlurParams {
    /// Kernel size (odd).
    pub k: usize,
    /// Rotation in degrees.
    pub angle: f64,
    /// Weighting along the line.
    pub direction: f64,
}

impl Op for MotionBlur {
    const NAME: &'static str = "motion_blur";
    type Params = MotionBlurParams;
    fn check(&self) -> Result<()> {
        validate_int(&self.k, Self::NAME, "k", 3.0, 255.0)?;
        self.angle
            .validate(Self::NAME, "angle", f64::MIN, f64::MAX)?;
        self.direction.validate(Self::NAME, "direction", -1.0, 1.0)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> MotionBlurParams {
        let k = sample_int(&self.k, rng).clamp(3, 255) as usize;
        MotionBlurParams {
            k: k | 1,
            angle: self.angle.sample(rng),
            direction: self.direction.sample(rng).clamp(-1.0, 1.0),
        }
    }
    fn apply(&self, p: &MotionBlurParams, mut s: Sample) -> Result<Sample> {
        let k = p.k | 1;
        let kernel = motion_kernel(k, p.angle, p.direction);
        s.image = map_image!(&s.image, b => filter2d(b, &kernel, k, k));
        Ok(s)
    }
}

/// imgaug's motion-blur kernel, step by step: column `k/2` of a `k × k` `u8` image holds
/// `trunc(255 · linspace(d, 1 − d, k))` with `d = (direction + 1)/2`; it is rotated about its
/// centre by `angle` with `cv2.warpAffine` (bilinear, constant 0 border; OpenCV's 1/32-pixel
/// fixed point, as `cv2_models.warp_affine_u8`), divided by 255 and normalised to sum 1.
pub fn motion_kernel(k: usize, angle: f64, direction: f64) -> Vec<f32> {
    let d = (direction.clamp(-1.0, 1.0) + 1.0) / 2.0;
    let mut src = vec![0i64; k * k];
    let step = if k > 1 {
        (1.0 - 2.0 * d) / (k - 1) as f64
    } else {
        0.0
    };
    for i in 0..k {
        let t = if i + 1 == k && k > 1 {
            1.0 - d
        } else {
            i as f64 * step + d
        };
        src[i * k + k / 2] = ((t as f32) * 255.0) as u8 as i64;
    }
    // imgaug's Affine: angle drawn as f32, radians in f32; rotation about ((k-1)/2, (k-1)/2).
    let rad = ((angle as f32) * (std::f32::consts::PI / 180.0)) as f64;
    let (cos, sin) = (rad.cos(), rad.sin());
    let c = k as f64 / 2.0 - 0.5;
    let m = [
        [cos, -sin, c - cos * c + sin * c],
        [sin, cos, c - sin * c - cos * c],
    ];
    let inv = invert_affine(m);
    let mut kernel = vec![0f32; k * k];
    for y in 0..k {
        let x0 = ((inv[0][1] * y as f64 + inv[0][2]) * 1024.0).round_ties_even() as i64 + 16;
        let y0 = ((inv[1][1] * y as f64 + inv[1][2]) * 1024.0).round_ties_even() as i64 + 16;
        for x in 0..k {
            let sx = (x0 + (inv[0][0] * x as f64 * 1024.0).round_ties_even() as i64) >> 5;
            let sy = (y0 + (inv[1][0] * x as f64 * 1024.0).round_ties_even() as i64) >> 5;
            let (ix, iy, fx, fy) = (sx >> 5, sy >> 5, sx & 31, sy & 31);
            let tap = |yy: i64, xx: i64| {
                if (0..k as i64).contains(&yy) && (0..k as i64).contains(&xx) {
                    src[yy as usize * k + xx as usize]
                } else {
                    0
                }
            };
            // cv2's bilinear table: products of (1 - f/32, f/32), 15-bit, exact here.
            let acc = tap(iy, ix) * (32 - fy) * (32 - fx) * 32
                + tap(iy, ix + 1) * (32 - fy) * fx * 32
                + tap(iy + 1, ix) * fy * (32 - fx) * 32
                + tap(iy + 1, ix + 1) * fy * fx * 32;
            let v = ((acc + (1 << 14)) >> 15).clamp(0, 255);
            kernel[y * k + x] = v as f32 / 255.0;
        }
    }
    let sum: f32 = kernel.iter().sum();
    if sum > 0.0 {
        kernel.iter_mut().for_each(|v| *v /= sum);
    } else {
        kernel[k * k / 2] = 1.0;
    }
    kernel
}

/// `cv2.invertAffineTransform` of a forward 2×3 matrix.
fn invert_affine(m: [[f64; 3]; 2]) -> [[f64; 3]; 2] {
    let [[a, b, c], [d, e, f]] = m;
    let det = a * e - b * d;
    let det = if det != 0.0 { 1.0 / det } else { 0.0 };
    let (a11, a22, a12, a21) = (e * det, a * det, -b * det, -d * det);
    [
        [a11, a12, -a11 * c - a12 * f],
        [a21, a22, -a21 * c - a22 * f],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BBox, Image, ImageBuf, Keypoint};

    fn sample_with_targets() -> Sample {
        let data = (0..16 * 12 * 3).map(|i| ((i * 7919) % 256) as u8).collect();
        Sample::new(ImageBuf::new(16, 12, 3, data).unwrap())
            .with_mask(ImageBuf::<u8>::filled(16, 12, 1, 3).unwrap())
            .with_boxes([BBox {
                x1: 1.0,
                y1: 2.0,
                x2: 9.0,
                y2: 8.0,
                label: 4,
            }])
            .with_keypoints([Keypoint { x: 3.5, y: 4.5 }])
    }

    #[test]
    fn invalid_blur_options_are_refused_with_their_value() {
        let err = GaussianBlur {
            sigma: Param::Fixed(-1.0),
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("gaussian_blur") && err.contains("-1"), "{err}");
        let err = MedianBlur {
            k: Param::Fixed(4.0),
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("`k` = 4") && err.contains("odd"), "{err}");
        let err = AverageBlur {
            k: Param::Range([5.0, 3.0]),
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("a ≤ b"), "{err}");
        assert!(
            MotionBlur {
                direction: Param::Fixed(1.5),
                ..MotionBlur::default()
            }
            .check()
            .is_err()
        );
        assert!(
            AverageBlur {
                k: Param::Fixed(2.5)
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn blurs_touch_only_the_image() {
        let ops: Vec<Box<dyn crate::Augmenter>> = vec![
            Box::new(GaussianBlur::default()),
            Box::new(AverageBlur::default()),
            Box::new(MedianBlur::default()),
            Box::new(MotionBlur::default()),
        ];
        let mut rng = <AugRng as rand::SeedableRng>::seed_from_u64(5);
        for op in ops {
            let before = sample_with_targets();
            let (after, _) = op.augment(before.clone(), &mut rng).unwrap();
            assert_eq!(after.masks, before.masks, "{}", op.name());
            assert_eq!(after.boxes, before.boxes, "{}", op.name());
            assert_eq!(after.keypoints, before.keypoints, "{}", op.name());
        }
    }

    #[test]
    fn a_zero_sigma_gaussian_blur_is_the_identity() {
        let s = sample_with_targets();
        let out = GaussianBlur::default().apply(&0.0, s.clone()).unwrap();
        assert_eq!(out, s);
    }

    #[test]
    fn median_blur_turns_an_even_draw_into_the_next_odd_size() {
        let op = MedianBlur {
            k: Param::Range([3.0, 5.0]),
        };
        let mut rng = <AugRng as rand::SeedableRng>::seed_from_u64(9);
        let s = sample_with_targets();
        for _ in 0..50 {
            assert!([3, 5].contains(&op.sample(&mut rng, &s)));
        }
    }

    #[test]
    fn motion_kernels_sum_to_one_and_follow_the_direction() {
        let k = motion_kernel(5, 0.0, 1.0);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        // angle 0: the vertical line only; direction 1 puts the weight at the top.
        for (i, v) in k.iter().enumerate() {
            if i % 5 != 2 {
                assert_eq!(*v, 0.0);
            }
        }
        assert_eq!(k[22], 0.0);
        assert!(k[2] > k[7] && k[7] > k[12] && k[12] > k[17]);
        let uniform = motion_kernel(3, 90.0, 0.0);
        // rotated a quarter turn: the middle row, equal weights
        assert!((uniform[3] - 1.0 / 3.0).abs() < 0.01 && (uniform[5] - 1.0 / 3.0).abs() < 0.01);
    }

    #[test]
    fn blurs_larger_than_the_image_keep_a_flat_image_flat() {
        for (w, h) in [(1, 1), (2, 1), (1, 3), (3, 2)] {
            let img = Image::U8(ImageBuf::filled(w, h, 3, 77).unwrap());
            let s = Sample::new(img.clone());
            let p = MotionBlurParams {
                k: 9,
                angle: 20.0,
                direction: 0.0,
            };
            let outs = [
                GaussianBlur::default().apply(&3.0, s.clone()).unwrap(),
                AverageBlur::default().apply(&7, s.clone()).unwrap(),
                MedianBlur::default().apply(&5, s.clone()).unwrap(),
                MedianBlur::default().apply(&9, s.clone()).unwrap(),
                MotionBlur::default().apply(&p, s.clone()).unwrap(),
            ];
            for out in outs {
                assert_eq!(out.image, img, "{w}×{h}");
            }
        }
    }

    #[test]
    fn motion_kernels_equal_imgaugs() {
        // imgaug 0.4.0: _MotionBlurMatrixGenerator(k, angle, direction, order=1) on OpenCV 4.11.
        #[rustfmt::skip]
        let want: [f64; 25] = [
            0.0, 0.0, 0.0, 0.271875, 0.03125,
            0.0, 0.0, 0.14375, 0.209375, 0.0,
            0.0, 0.01875, 0.1984375, 0.03125, 0.0,
            0.0, 0.0390625, 0.05625, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        let got = motion_kernel(5, 30.0, 1.0);
        assert!(
            got.iter()
                .zip(&want)
                .all(|(a, b)| (*a as f64 - b).abs() < 1e-6),
            "{got:?}"
        );
        #[rustfmt::skip]
        let want: [f64; 49] = [
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
            0.071982279, 0.078626797, 0.0, 0.0, 0.0, 0.0, 0.0,
            0.032115169, 0.124031, 0.11517164, 0.023255812, 0.0, 0.0, 0.0,
            0.0, 0.0, 0.066445179, 0.14064229, 0.0564784, 0.0, 0.0,
            0.0, 0.0, 0.0, 0.021040974, 0.087486155, 0.081949055, 0.017718716,
            0.0, 0.0, 0.0, 0.0, 0.0, 0.044296786, 0.03875969,
            0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        ];
        let got = motion_kernel(7, 123.4, -0.3);
        assert!(
            got.iter()
                .zip(&want)
                .all(|(a, b)| (*a as f64 - b).abs() < 1e-6),
            "{got:?}"
        );
    }

    #[test]
    fn blurs_accept_u16_and_f32_with_1_3_and_4_channels() {
        for c in [1, 3, 4] {
            for img in [
                Image::U16(ImageBuf::filled(9, 7, c, 1000).unwrap()),
                Image::F32(ImageBuf::filled(9, 7, c, 0.5).unwrap()),
            ] {
                let s = Sample::new(img.clone());
                // A flat image stays flat (f32: up to the rounding of the kernel's sum).
                let same = |out: Sample| {
                    let (a, b) = (out.image.to_f32(), img.to_f32());
                    assert_eq!(out.image.channels(), c);
                    assert_eq!(out.image.pixel_type(), img.pixel_type());
                    a.data()
                        .iter()
                        .zip(b.data())
                        .all(|(x, y)| (x - y).abs() < 1e-6)
                };
                assert!(same(
                    GaussianBlur::default().apply(&1.0, s.clone()).unwrap()
                ));
                assert!(same(MedianBlur::default().apply(&3, s.clone()).unwrap()));
                assert!(same(AverageBlur::default().apply(&4, s.clone()).unwrap()));
                let p = MotionBlurParams {
                    k: 5,
                    angle: 45.0,
                    direction: 0.3,
                };
                assert!(same(MotionBlur::default().apply(&p, s).unwrap()));
            }
        }
    }
}
