//! From augmented images to Burn: a batch as a normalised `Tensor<4>` in NCHW on any device.

use burn::tensor::{Device, Tensor, TensorData};

use crate::{AugmentError, Image, Result, with_image};

/// ImageNet's per-channel mean (RGB), as torchvision and timm use.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Stacks same-size images into `[N, C, H, W]`: values scaled to `[0, 1]` (by 255, 65535 or
/// 1), then `(x − mean[c]) / std[c]`. `mean` and `std` have one value per channel (or one for
/// all). Images of different sizes or channel counts are an error naming the first mismatch.
pub fn to_tensor(
    images: &[Image],
    mean: &[f32],
    std: &[f32],
    device: &Device,
) -> Result<Tensor<4>> {
    let first = images
        .first()
        .ok_or_else(|| AugmentError::Image("an empty batch".into()))?;
    let (w, h, c) = (first.width(), first.height(), first.channels());
    for (i, img) in images.iter().enumerate() {
        if (img.width(), img.height(), img.channels()) != (w, h, c) {
            return Err(AugmentError::Image(format!(
                "image {i} is {}×{}×{}, image 0 {w}×{h}×{c}: resize or crop to one size first",
                img.width(),
                img.height(),
                img.channels()
            )));
        }
    }
    let per_channel = |v: &[f32], name: &'static str| -> Result<Vec<f32>> {
        match v.len() {
            1 => Ok(vec![v[0]; c]),
            n if n == c => Ok(v.to_vec()),
            n => Err(AugmentError::Invalid {
                op: "to_tensor",
                field: name,
                value: format!("{n} values"),
                expected: format!("1 or {c} (the images' channels)"),
            }),
        }
    };
    let mean = per_channel(mean, "mean")?;
    let std = per_channel(std, "std")?;
    if std.iter().any(|s| s.is_nan() || *s <= 0.0) {
        return Err(AugmentError::Invalid {
            op: "to_tensor",
            field: "std",
            value: format!("{std:?}"),
            expected: "values > 0".into(),
        });
    }
    let plane = w * h;
    let mut out = vec![0f32; images.len() * c * plane];
    for (n, img) in images.iter().enumerate() {
        let dst = &mut out[n * c * plane..(n + 1) * c * plane];
        with_image!(img, b => {
            let scale = 1.0 / pixel_max(b);
            // HWC → CHW with the affine normalisation folded into one multiply-add.
            for (p, px) in b.data().chunks_exact(c).enumerate() {
                for ch in 0..c {
                    let v = crate::Pixel::to_f32(px[ch]) * scale;
                    dst[ch * plane + p] = (v - mean[ch]) / std[ch];
                }
            }
        });
    }
    Ok(Tensor::from_data(
        TensorData::new(out, [images.len(), c, h, w]),
        device,
    ))
}

fn pixel_max<P: crate::Pixel>(_: &crate::ImageBuf<P>) -> f32 {
    P::MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ImageBuf;

    #[test]
    fn a_batch_becomes_normalised_nchw() {
        let img = Image::U8(ImageBuf::new(2, 1, 3, vec![255, 0, 51, 0, 255, 102]).unwrap());
        let t = to_tensor(&[img.clone(), img], &[0.5], &[0.5], &Device::default()).unwrap();
        assert_eq!(t.dims(), [2, 3, 1, 2]);
        let v = t
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        // Channel 0 of image 0: pixels 255 and 0 → 1 and −1.
        assert_eq!(&v[..2], &[1.0, -1.0]);
        assert!((v[4] - (0.2 - 0.5) / 0.5).abs() < 1e-6);
    }

    #[test]
    fn mixed_sizes_are_refused_with_the_index() {
        let a = Image::U8(ImageBuf::filled(2, 2, 3, 0).unwrap());
        let b = Image::U8(ImageBuf::filled(3, 2, 3, 0).unwrap());
        let err =
            to_tensor(&[a, b], &IMAGENET_MEAN, &IMAGENET_STD, &Device::default()).unwrap_err();
        assert!(err.to_string().contains("image 1 is 3×2×3"), "{err}");
    }
}
