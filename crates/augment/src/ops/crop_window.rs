//! Window crops with Albumentations semantics: `CenterCrop`, `RandomCrop` and
//! `RandomResizedCrop` (torchvision's sampling).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::crop::crop_pad_sample;
use super::resize::{ResizeInterpolation, resize_sample};
use crate::kernels::warp::Fill;
use crate::{AugRng, AugmentError, Op, Result, Sample};

/// Crops every part of a sample to `[x, y, w, h]` (inside the image).
fn crop_window(s: Sample, window: [usize; 4]) -> Sample {
    crop_pad_sample(s, window, [0; 4], Fill::Constant, 0.0)
}

fn check_size(op: &'static str, width: usize, height: usize) -> Result<()> {
    for (field, v) in [("width", width), ("height", height)] {
        if v == 0 {
            return Err(AugmentError::Invalid {
                op,
                field,
                value: "0".into(),
                expected: "a size ≥ 1".into(),
            });
        }
    }
    Ok(())
}

/// An error when a `width × height` window does not fit the sample's image.
fn check_fits(op: &'static str, width: usize, height: usize, s: &Sample) -> Result<()> {
    let (w, h) = (s.image.width(), s.image.height());
    for (field, v, size) in [("width", width, w), ("height", height, h)] {
        if v > size {
            return Err(AugmentError::Invalid {
                op,
                field,
                value: v.to_string(),
                expected: format!("at most the image's {field} ({w}×{h} image)"),
            });
        }
    }
    Ok(())
}

/// Crops the centre `width × height` window (Albumentations' `CenterCrop`: offsets
/// `(W - w) // 2`, `(H - h) // 2`). A window larger than the image is an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterCrop {
    /// Window width in pixels.
    pub width: usize,
    /// Window height in pixels.
    pub height: usize,
}

impl Op for CenterCrop {
    const NAME: &'static str = "center_crop";
    type Params = ();
    fn check(&self) -> Result<()> {
        check_size(Self::NAME, self.width, self.height)
    }
    fn sample(&self, _: &mut AugRng, _: &Sample) {}
    fn apply(&self, _: &(), s: Sample) -> Result<Sample> {
        check_fits(Self::NAME, self.width, self.height, &s)?;
        let (w, h) = (s.image.width(), s.image.height());
        let (x, y) = ((w - self.width) / 2, (h - self.height) / 2);
        Ok(crop_window(s, [x, y, self.width, self.height]))
    }
}

/// Crops a `width × height` window at a uniformly drawn position (Albumentations'
/// `RandomCrop`). A window larger than the image is an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomCrop {
    /// Window width in pixels.
    pub width: usize,
    /// Window height in pixels.
    pub height: usize,
}

/// Where a [`RandomCrop`] lands, as fractions in `[0, 1)` (Albumentations' `h_start`,
/// `w_start`: the offset is `int((H - h + 1) * h_start)`), so it replays on any size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomCropParams {
    /// Vertical position.
    pub h_start: f64,
    /// Horizontal position.
    pub w_start: f64,
}

impl Op for RandomCrop {
    const NAME: &'static str = "random_crop";
    type Params = RandomCropParams;
    fn check(&self) -> Result<()> {
        check_size(Self::NAME, self.width, self.height)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> RandomCropParams {
        RandomCropParams {
            h_start: rng.random::<f64>(),
            w_start: rng.random::<f64>(),
        }
    }
    fn apply(&self, p: &RandomCropParams, s: Sample) -> Result<Sample> {
        check_fits(Self::NAME, self.width, self.height, &s)?;
        let (w, h) = (s.image.width(), s.image.height());
        let y = (((h - self.height + 1) as f64 * p.h_start) as usize).min(h - self.height);
        let x = (((w - self.width + 1) as f64 * p.w_start) as usize).min(w - self.width);
        Ok(crop_window(s, [x, y, self.width, self.height]))
    }
}

/// Crops a random window of random area and aspect ratio and resizes it to
/// `width × height` (torchvision's / Albumentations' `RandomResizedCrop`): up to 10 tries of
/// an area fraction uniform in `scale` and a log-uniform ratio in `ratio`; if none fits, the
/// centre crop with the ratio clamped to `ratio`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomResizedCrop {
    /// Output width in pixels.
    pub width: usize,
    /// Output height in pixels.
    pub height: usize,
    /// Range of the window's area as a fraction of the image's.
    #[serde(default = "default_scale")]
    pub scale: [f64; 2],
    /// Range of the window's width / height.
    #[serde(default = "default_ratio")]
    pub ratio: [f64; 2],
    /// Interpolation of the image (masks nearest, heatmaps bilinear).
    #[serde(default)]
    pub interpolation: ResizeInterpolation,
}

fn default_scale() -> [f64; 2] {
    [0.08, 1.0]
}
fn default_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

/// The window a [`RandomResizedCrop`] chose, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowParams {
    /// Left.
    pub x: usize,
    /// Top.
    pub y: usize,
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

impl RandomResizedCrop {
    /// torchvision's `RandomResizedCrop.get_params` on a `w × h` image.
    fn window(&self, rng: &mut AugRng, w: usize, h: usize) -> WindowParams {
        let area = (w * h) as f64;
        let (lr0, lr1) = (self.ratio[0].ln(), self.ratio[1].ln());
        let uniform = |rng: &mut AugRng, a: f64, b: f64| {
            if a < b { rng.random_range(a..=b) } else { a }
        };
        for _ in 0..10 {
            let target = uniform(rng, self.scale[0] * area, self.scale[1] * area);
            let ar = uniform(rng, lr0, lr1).exp();
            let cw = (target * ar).sqrt().round_ties_even() as usize;
            let ch = (target / ar).sqrt().round_ties_even() as usize;
            if 0 < cw && cw <= w && 0 < ch && ch <= h {
                let (hs, ws) = (rng.random::<f64>(), rng.random::<f64>());
                let y = (((h - ch + 1) as f64 * hs) as usize).min(h - ch);
                let x = (((w - cw + 1) as f64 * ws) as usize).min(w - cw);
                return WindowParams {
                    x,
                    y,
                    width: cw,
                    height: ch,
                };
            }
        }
        let in_ratio = w as f64 / h as f64;
        let (cw, ch) = if in_ratio < self.ratio[0] {
            (
                w,
                ((w as f64 / self.ratio[0]).round_ties_even() as usize).clamp(1, h),
            )
        } else if in_ratio > self.ratio[1] {
            (
                ((h as f64 * self.ratio[1]).round_ties_even() as usize).clamp(1, w),
                h,
            )
        } else {
            (w, h)
        };
        WindowParams {
            x: (w - cw) / 2,
            y: (h - ch) / 2,
            width: cw,
            height: ch,
        }
    }
}

impl Op for RandomResizedCrop {
    const NAME: &'static str = "random_resized_crop";
    type Params = WindowParams;
    fn check(&self) -> Result<()> {
        check_size(Self::NAME, self.width, self.height)?;
        let bad = |field, v: [f64; 2], expected: &str| {
            Err(AugmentError::Invalid {
                op: Self::NAME,
                field,
                value: format!("{v:?}"),
                expected: expected.into(),
            })
        };
        let [s0, s1] = self.scale;
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            return bad("scale", self.scale, "0 < a ≤ b ≤ 1");
        }
        let [r0, r1] = self.ratio;
        if !(r0 > 0.0 && r0 <= r1 && r1.is_finite()) {
            return bad("ratio", self.ratio, "0 < a ≤ b");
        }
        Ok(())
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> WindowParams {
        self.window(rng, s.image.width(), s.image.height())
    }
    fn apply(&self, p: &WindowParams, s: Sample) -> Result<Sample> {
        let (w, h) = (s.image.width(), s.image.height());
        if p.width == 0 || p.height == 0 || p.x + p.width > w || p.y + p.height > h {
            return Err(AugmentError::Replay(format!(
                "random_resized_crop: window {p:?} does not fit a {w}×{h} image"
            )));
        }
        let s = crop_window(s, [p.x, p.y, p.width, p.height]);
        resize_sample(s, self.width, self.height, self.interpolation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Image, ImageBuf, Keypoint};
    use rand::SeedableRng;

    fn sample(w: usize, h: usize) -> Sample {
        Sample::new(ImageBuf::new(w, h, 1, (0..w * h).map(|v| v as u8).collect()).unwrap())
    }

    #[test]
    fn center_crop_takes_the_floor_offsets_and_refuses_larger_windows() {
        let out = CenterCrop {
            width: 2,
            height: 1,
        }
        .apply(&(), sample(5, 4))
        .unwrap();
        let Image::U8(b) = &out.image else {
            unreachable!()
        };
        assert_eq!(b.data(), [6, 7]); // x0 = 1, y0 = 1
        let err = CenterCrop {
            width: 6,
            height: 1,
        }
        .apply(&(), sample(5, 4))
        .unwrap_err();
        assert!(err.to_string().contains("`width` = 6"), "{err}");
        assert!(
            CenterCrop {
                width: 0,
                height: 1
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn random_crop_positions_cover_both_ends() {
        let op = RandomCrop {
            width: 3,
            height: 3,
        };
        let s = sample(5, 5).with_keypoints([Keypoint { x: 2.5, y: 2.5 }]);
        let ends = [0.0, 0.999].map(|f| {
            op.apply(
                &RandomCropParams {
                    h_start: f,
                    w_start: f,
                },
                s.clone(),
            )
            .unwrap()
        });
        assert_eq!(ends[0].keypoints[0], Keypoint { x: 2.5, y: 2.5 });
        assert_eq!(ends[1].keypoints[0], Keypoint { x: 0.5, y: 0.5 });
        assert!(
            op.apply(
                &RandomCropParams {
                    h_start: 0.0,
                    w_start: 0.0
                },
                sample(2, 5)
            )
            .is_err()
        );
    }

    #[test]
    fn random_resized_crop_windows_fit_and_respect_the_ratio() {
        let op = RandomResizedCrop {
            width: 8,
            height: 8,
            scale: [0.08, 1.0],
            ratio: [0.75, 4.0 / 3.0],
            interpolation: ResizeInterpolation::Bilinear,
        };
        op.check().unwrap();
        let mut rng = AugRng::seed_from_u64(5);
        for _ in 0..200 {
            let p = op.window(&mut rng, 40, 30);
            assert!(p.x + p.width <= 40 && p.y + p.height <= 30, "{p:?}");
        }
        // No window of a 100×4 strip fits the ratio: centre crop with the ratio clamped.
        let p = op.window(&mut rng, 100, 4);
        assert_eq!(
            p,
            WindowParams {
                x: 47,
                y: 0,
                width: 5,
                height: 4
            }
        );
        let out = op.apply(&p, sample(100, 4)).unwrap();
        assert_eq!((out.image.width(), out.image.height()), (8, 8));
        let bad = RandomResizedCrop {
            scale: [0.5, 0.1],
            ..op
        };
        assert!(bad.check().unwrap_err().to_string().contains("`scale`"));
    }
}
