//! `PadIfNeeded`: Albumentations' padding up to a minimum size, centred (imgaug's
//! `PadToFixedSize` pads at a random position instead).

use serde::{Deserialize, Serialize};

use super::crop::crop_pad_sample;
use crate::kernels::warp::Fill;
use crate::{AugRng, AugmentError, Op, Result, Sample};

/// Pads the image (and its targets) to at least `min_width × min_height`, centred as
/// `A.PadIfNeeded(position="center")`: `top = (min_h − h) / 2` rounded down, the rest at the
/// bottom (same horizontally). Images already large enough are untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadIfNeeded {
    /// Minimum width.
    pub min_width: usize,
    /// Minimum height.
    pub min_height: usize,
    /// How the new pixels are filled.
    #[serde(default = "constant")]
    pub mode: Fill,
    /// Fill value for `constant`, in 0–255 units.
    #[serde(default)]
    pub cval: f64,
}

fn constant() -> Fill {
    Fill::Constant
}

impl Op for PadIfNeeded {
    const NAME: &'static str = "pad_if_needed";
    type Params = ();
    fn check(&self) -> Result<()> {
        if self.min_width == 0 || self.min_height == 0 {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "min_width",
                value: format!("{}×{}", self.min_width, self.min_height),
                expected: "a size of at least 1×1".into(),
            });
        }
        Ok(())
    }
    fn sample(&self, _: &mut AugRng, _: &Sample) {}
    fn apply(&self, _: &(), s: Sample) -> Result<Sample> {
        let (w, h) = (s.image.width(), s.image.height());
        let (pw, ph) = (
            self.min_width.saturating_sub(w),
            self.min_height.saturating_sub(h),
        );
        if pw == 0 && ph == 0 {
            return Ok(s);
        }
        let (top, left) = (ph / 2, pw / 2);
        Ok(crop_pad_sample(
            s,
            [0, 0, w, h],
            [top, pw - left, ph - top, left],
            self.mode,
            self.cval,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BBox, Image, ImageBuf, Keypoint};

    #[test]
    fn pads_centred_and_moves_the_targets() {
        let s = Sample::new(Image::U8(ImageBuf::filled(4, 2, 3, 9).unwrap()))
            .with_boxes([BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 1.0,
                y2: 1.0,
                label: 0,
            }])
            .with_keypoints([Keypoint { x: 0.5, y: 0.5 }]);
        let op = PadIfNeeded {
            min_width: 7,
            min_height: 5,
            mode: Fill::Constant,
            cval: 0.0,
        };
        let out = op.apply(&(), s).unwrap();
        assert_eq!((out.image.width(), out.image.height()), (7, 5));
        assert_eq!(out.keypoints[0], Keypoint { x: 1.5, y: 1.5 });
        assert_eq!(out.boxes[0].x1, 1.0);
        let Image::U8(b) = &out.image else { panic!() };
        assert_eq!(b.pixel(0, 0), [0, 0, 0]);
        assert_eq!(b.pixel(1, 1), [9, 9, 9]);
    }
}
