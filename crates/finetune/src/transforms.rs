//! timm's eval transform (`resolve_data_config` + `transforms_imagenet_eval`, crop mode
//! `center`) built on `kindling-augment`: resize the shorter side to
//! `floor(input_size / crop_pct)` with Pillow's filter, centre-crop `input_size`, scale to
//! [0, 1] and normalise with the weights' mean and std.

use burn::tensor::{Device, Tensor};
use kindling_augment::{Image, ImageBuf, PilFilter, resize_pil, to_tensor};

use crate::{FinetuneError, Interpolation, PretrainedCfg};

/// The eval transform of a pretrained configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalTransform {
    /// Side of the centre crop (the model's input).
    pub input_size: usize,
    /// Shorter side after the resize, `floor(input_size / crop_pct)`.
    pub resize_size: usize,
    /// Resize filter.
    pub interpolation: Interpolation,
    /// Channel means.
    pub mean: [f64; 3],
    /// Channel standard deviations.
    pub std: [f64; 3],
}

impl EvalTransform {
    /// timm's transform for `cfg` (e.g. resnet18: resize 256 bilinear, crop 224).
    pub fn from_cfg(cfg: &PretrainedCfg) -> Self {
        Self::new(
            cfg.input_size[1],
            cfg.crop_pct,
            cfg.interpolation,
            cfg.mean,
            cfg.std,
        )
    }

    /// A transform with explicit settings.
    pub fn new(
        input_size: usize,
        crop_pct: f64,
        interpolation: Interpolation,
        mean: [f64; 3],
        std: [f64; 3],
    ) -> Self {
        Self {
            input_size,
            // Python's math.floor(img_size / crop_pct), in the same f64 arithmetic.
            resize_size: (input_size as f64 / crop_pct).floor() as usize,
            interpolation,
            mean,
            std,
        }
    }

    /// torchvision `Resize(resize_size)` (shorter side; the longer one `int(s · long /
    /// short)`) and `CenterCrop(input_size)` on an 8-bit image.
    pub fn resize_and_crop(&self, image: &ImageBuf<u8>) -> Result<ImageBuf<u8>, FinetuneError> {
        let (w, h) = (image.width(), image.height());
        let s = self.resize_size;
        let (nw, nh) = if w <= h {
            (s, (s as f64 * h as f64 / w as f64) as usize)
        } else {
            ((s as f64 * w as f64 / h as f64) as usize, s)
        };
        let filter = match self.interpolation {
            Interpolation::Bilinear => PilFilter::Bilinear,
            Interpolation::Bicubic => PilFilter::Bicubic,
        };
        let fail = |e: kindling_augment::AugmentError| FinetuneError::Image(e.to_string());
        let resized = resize_pil(image, nw, nh, filter).map_err(fail)?;
        let c = self.input_size;
        if nw < c || nh < c {
            return Err(FinetuneError::Image(format!(
                "a {w}×{h} image resized to {nw}×{nh} is smaller than the {c}×{c} crop"
            )));
        }
        let (top, left) = (crop_offset(nh - c), crop_offset(nw - c));
        let ch = resized.channels();
        let mut out = Vec::with_capacity(c * c * ch);
        for y in top..top + c {
            let start = (y * nw + left) * ch;
            out.extend_from_slice(&resized.data()[start..start + c * ch]);
        }
        ImageBuf::new(c, c, ch, out).map_err(fail)
    }

    /// The whole transform on a batch: `[N, C, input_size, input_size]`, normalised.
    pub fn apply(
        &self,
        images: &[ImageBuf<u8>],
        device: &Device,
    ) -> Result<Tensor<4>, FinetuneError> {
        let cropped: Vec<Image> = images
            .iter()
            .map(|i| self.resize_and_crop(i).map(Image::from))
            .collect::<Result<_, _>>()?;
        let mean = self.mean.map(|v| v as f32);
        let std = self.std.map(|v| v as f32);
        to_tensor(&cropped, &mean, &std, device).map_err(|e| FinetuneError::Image(e.to_string()))
    }
}

/// torchvision's centre-crop offset, `int(round(excess / 2.0))` with Python's
/// round-half-to-even.
fn crop_offset(excess: usize) -> usize {
    (excess as f64 / 2.0).round_ties_even() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_size_is_timms_floor() {
        let cfg = crate::pretrained_cfg("resnet50.tv2_in1k").unwrap();
        assert_eq!(EvalTransform::from_cfg(&cfg).resize_size, 232);
        let cfg = crate::pretrained_cfg("resnet18").unwrap();
        assert_eq!(EvalTransform::from_cfg(&cfg).resize_size, 256);
    }

    #[test]
    fn centre_offsets_round_half_to_even() {
        assert_eq!(crop_offset(1), 0); // round(0.5) = 0
        assert_eq!(crop_offset(3), 2); // round(1.5) = 2
        assert_eq!(crop_offset(5), 2); // round(2.5) = 2
        assert_eq!(crop_offset(6), 3);
    }
}
