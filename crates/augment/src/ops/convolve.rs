//! 3×3 convolution effects blended with the identity kernel: imgaug's `Sharpen` and `Emboss`
//! (`cv2.filter2D` per channel: correlation, `BORDER_REFLECT_101`, rounded like OpenCV).

use serde::{Deserialize, Serialize};

use crate::kernels::filter::filter2d;
use crate::{AugRng, Op, Param, Result, Sample, map_image};

/// `(1 − alpha)·identity + alpha·effect`, in `f32` as imgaug builds it.
fn blend(alpha: f64, effect: [f64; 9]) -> [f32; 9] {
    let mut k = effect.map(|e| (alpha * e) as f32);
    k[4] += (1.0 - alpha) as f32;
    k
}

/// imgaug's sharpening kernel `[[-1,-1,-1],[-1,8+lightness,-1],[-1,-1,-1]]` blended with the
/// identity by `alpha`.
pub fn sharpen_kernel(alpha: f64, lightness: f64) -> [f32; 9] {
    let mut effect = [-1.0; 9];
    effect[4] = 8.0 + lightness;
    blend(alpha, effect)
}

/// imgaug's emboss kernel `[[-1-s,-s,0],[-s,1,s],[0,s,1+s]]` blended with the identity by
/// `alpha`.
pub fn emboss_kernel(alpha: f64, strength: f64) -> [f32; 9] {
    let s = strength;
    blend(alpha, [-1.0 - s, -s, 0.0, -s, 1.0, s, 0.0, s, 1.0 + s])
}

/// The sampled blend and kernel parameter of [`Sharpen`] / [`Emboss`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelBlend {
    /// Weight of the effect kernel against the identity.
    pub alpha: f64,
    /// `lightness` (sharpen) or `strength` (emboss).
    pub amount: f64,
}

fn apply_kernel(kernel: &[f32; 9], mut s: Sample) -> Sample {
    if *kernel != [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0] {
        s.image = map_image!(&s.image, b => filter2d(b, kernel, 3, 3));
    }
    s
}

/// Sharpens (imgaug's `Sharpen(alpha, lightness)`): `alpha` blends the sharpened image with the
/// original, `lightness` brightens it (0 gives an edge map).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sharpen {
    /// Blend factor in `[0, 1]`.
    pub alpha: Param,
    /// Lightness (≥ 0) of the sharpened image.
    pub lightness: Param,
}

impl Default for Sharpen {
    fn default() -> Self {
        Self {
            alpha: Param::Range([0.0, 0.2]),
            lightness: Param::Range([0.8, 1.2]),
        }
    }
}

impl Op for Sharpen {
    const NAME: &'static str = "sharpen";
    type Params = KernelBlend;
    fn check(&self) -> Result<()> {
        self.alpha.validate(Self::NAME, "alpha", 0.0, 1.0)?;
        self.lightness
            .validate(Self::NAME, "lightness", 0.0, f64::INFINITY)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> KernelBlend {
        KernelBlend {
            alpha: self.alpha.sample(rng).clamp(0.0, 1.0),
            amount: self.lightness.sample(rng),
        }
    }
    fn apply(&self, p: &KernelBlend, s: Sample) -> Result<Sample> {
        Ok(apply_kernel(&sharpen_kernel(p.alpha, p.amount), s))
    }
}

/// Embosses (imgaug's `Emboss(alpha, strength)`): highlights and shadows as if pressed into
/// metal, blended with the original by `alpha`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Emboss {
    /// Blend factor in `[0, 1]`.
    pub alpha: Param,
    /// Strength (≥ 0) of the embossing.
    pub strength: Param,
}

impl Default for Emboss {
    fn default() -> Self {
        Self {
            alpha: Param::Range([0.0, 1.0]),
            strength: Param::Range([0.25, 1.0]),
        }
    }
}

impl Op for Emboss {
    const NAME: &'static str = "emboss";
    type Params = KernelBlend;
    fn check(&self) -> Result<()> {
        self.alpha.validate(Self::NAME, "alpha", 0.0, 1.0)?;
        self.strength
            .validate(Self::NAME, "strength", 0.0, f64::INFINITY)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> KernelBlend {
        KernelBlend {
            alpha: self.alpha.sample(rng).clamp(0.0, 1.0),
            amount: self.strength.sample(rng),
        }
    }
    fn apply(&self, p: &KernelBlend, s: Sample) -> Result<Sample> {
        Ok(apply_kernel(&emboss_kernel(p.alpha, p.amount), s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BBox, Image, ImageBuf, Keypoint};

    #[test]
    fn kernels_match_imgaug_at_full_alpha() {
        assert_eq!(
            sharpen_kernel(1.0, 1.0),
            [-1.0, -1.0, -1.0, -1.0, 9.0, -1.0, -1.0, -1.0, -1.0]
        );
        assert_eq!(
            emboss_kernel(1.0, 1.0),
            [-2.0, -1.0, 0.0, -1.0, 1.0, 1.0, 0.0, 1.0, 2.0]
        );
        assert_eq!(sharpen_kernel(0.0, 1.3)[4], 1.0);
    }

    #[test]
    fn emboss_weights_the_row_below_positively() {
        // Correlation: row 2 of the kernel (positive) reads the row below.
        let mut data = vec![0u8; 7 * 7];
        data[3 * 7 + 3] = 100; // pixel (3, 3)
        let img = ImageBuf::new(7, 7, 1, data).unwrap();
        let out = filter2d(&img, &emboss_kernel(1.0, 1.0), 3, 3);
        assert_eq!(out.pixel(3, 2)[0], 100); // kernel[2][1] = 1 reads the pixel below
        assert_eq!(out.pixel(3, 4)[0], 0); // kernel[0][1] = -1 reads the pixel above: saturated
        assert_eq!(out.pixel(4, 4)[0], 0); // kernel[0][0] = -2
        assert_eq!(out.pixel(2, 2)[0], 200); // kernel[2][2] = 2
    }

    #[test]
    fn invalid_kernel_options_are_refused_with_their_value() {
        let err = Sharpen {
            alpha: Param::Fixed(1.2),
            ..Default::default()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("`alpha` = 1.2"), "{err}");
        assert!(
            Emboss {
                strength: Param::Fixed(-0.5),
                ..Default::default()
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn sharpen_and_emboss_touch_only_the_image_on_every_type() {
        for (c, img) in [
            (1, Image::U16(ImageBuf::filled(8, 6, 1, 500).unwrap())),
            (3, Image::F32(ImageBuf::filled(8, 6, 3, 0.4).unwrap())),
            (4, Image::U8(ImageBuf::filled(8, 6, 4, 90).unwrap())),
        ] {
            let s = Sample::new(img)
                .with_mask(ImageBuf::<u8>::filled(8, 6, 1, 1).unwrap())
                .with_boxes([BBox {
                    x1: 0.0,
                    y1: 0.0,
                    x2: 4.0,
                    y2: 4.0,
                    label: 0,
                }])
                .with_keypoints([Keypoint { x: 1.0, y: 1.0 }]);
            let p = KernelBlend {
                alpha: 1.0,
                amount: 1.0,
            };
            for out in [
                Sharpen::default().apply(&p, s.clone()).unwrap(),
                Emboss::default().apply(&p, s.clone()).unwrap(),
            ] {
                assert_eq!(out.image.channels(), c);
                assert_eq!(
                    (&out.masks, &out.boxes, &out.keypoints),
                    (&s.masks, &s.boxes, &s.keypoints)
                );
            }
        }
    }
}
