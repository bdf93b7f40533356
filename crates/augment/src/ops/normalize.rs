//! `Normalize`: Albumentations' per-channel `(x / max − mean) / std`, to an `f32` image (HWC).
//! Usually last in a pipeline; [`to_tensor`](crate::to_tensor) does the same while stacking.

use serde::{Deserialize, Serialize};

use crate::{AugRng, AugmentError, Image, ImageBuf, Op, Pixel, Result, Sample, with_image};

/// Normalises each channel: `(x / max_pixel_value − mean[c]) / std[c]`, as `A.Normalize`
/// (ImageNet statistics by default). The result is an `f32` image whose values are no longer
/// in `[0, 1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    /// Per-channel mean (one value for all channels, or one per channel).
    #[serde(default = "imagenet_mean")]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    #[serde(default = "imagenet_std")]
    pub std: Vec<f32>,
}

fn imagenet_mean() -> Vec<f32> {
    crate::IMAGENET_MEAN.to_vec()
}
fn imagenet_std() -> Vec<f32> {
    crate::IMAGENET_STD.to_vec()
}

impl Default for Normalize {
    fn default() -> Self {
        Self {
            mean: imagenet_mean(),
            std: imagenet_std(),
        }
    }
}

fn normalize<P: Pixel>(b: &ImageBuf<P>, mean: &[f32], std: &[f32]) -> Result<ImageBuf<f32>> {
    let c = b.channels();
    let pick = |v: &[f32], field: &'static str| -> Result<Vec<f32>> {
        match v.len() {
            1 => Ok(vec![v[0]; c]),
            n if n >= c => Ok(v[..c].to_vec()),
            n => Err(AugmentError::Invalid {
                op: "normalize",
                field,
                value: format!("{n} values"),
                expected: format!("1 or at least {c} (the image's channels)"),
            }),
        }
    };
    let mean = pick(mean, "mean")?;
    // Multiply by reciprocals: one multiply-add per value.
    let scale: Vec<f32> = pick(std, "std")?
        .iter()
        .map(|s| 1.0 / (s * P::MAX))
        .collect();
    let offset: Vec<f32> = mean
        .iter()
        .zip(pick(std, "std")?)
        .map(|(m, s)| m / s)
        .collect();
    let out = match c {
        1 => scale_offset::<P, 1>(b.data(), &scale, &offset),
        3 => scale_offset::<P, 3>(b.data(), &scale, &offset),
        _ => scale_offset::<P, 4>(b.data(), &scale, &offset),
    };
    Ok(ImageBuf::with_data(b.width(), b.height(), c, out))
}

/// `v · scale[c] − offset[c]` over `C`-channel pixels, 16 pixels at a time with the
/// per-channel constants laid out to match, so the loop is one vector multiply-subtract per
/// lane group.
fn scale_offset<P: Pixel, const C: usize>(data: &[P], scale: &[f32], offset: &[f32]) -> Vec<f32> {
    let scale: [f32; C] = std::array::from_fn(|k| scale[k]);
    let offset: [f32; C] = std::array::from_fn(|k| offset[k]);
    let mut out = vec![0f32; data.len()];
    match P::as_u8(data) {
        Some(bytes) if C == 3 => normalize_rgb8(
            bytes,
            &mut out,
            scale[..3].try_into().expect("3"),
            offset[..3].try_into().expect("3"),
        ),
        _ => {
            for (o, px) in out.chunks_exact_mut(C).zip(data.chunks_exact(C)) {
                for k in 0..C {
                    o[k] = px[k].to_f32() * scale[k] - offset[k];
                }
            }
        }
    }
    out
}

crate::simd::kernel! {
    /// [`scale_offset`] on 3-byte pixels.
    fn normalize_rgb8(data: &[u8], out: &mut [f32], scale: [f32; 3], offset: [f32; 3]) ["avx2"] {
        let scale48: [f32; 48] = std::array::from_fn(|j| scale[j % 3]);
        let offset48: [f32; 48] = std::array::from_fn(|j| offset[j % 3]);
        let mut blocks = out.chunks_exact_mut(48).zip(data.chunks_exact(48));
        for (o, px) in &mut blocks {
            for j in 0..48 {
                o[j] = px[j] as f32 * scale48[j] - offset48[j];
            }
        }
        let done = data.len() / 48 * 48;
        for (j, (o, &v)) in out[done..].iter_mut().zip(&data[done..]).enumerate() {
            *o = v as f32 * scale[j % 3] - offset[j % 3];
        }
    }
}

impl Op for Normalize {
    const NAME: &'static str = "normalize";
    type Params = ();
    fn check(&self) -> Result<()> {
        if self.mean.is_empty()
            || self.std.is_empty()
            || self.std.iter().any(|s| s.is_nan() || *s <= 0.0)
        {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "std",
                value: format!("mean {:?}, std {:?}", self.mean, self.std),
                expected: "non-empty mean and std, std > 0".into(),
            });
        }
        Ok(())
    }
    fn sample(&self, _: &mut AugRng, _: &Sample) {}
    fn apply(&self, _: &(), mut s: Sample) -> Result<Sample> {
        s.image = Image::F32(with_image!(&s.image, b => normalize(b, &self.mean, &self.std)?));
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_u8_path_matches_the_formula_at_every_length() {
        for n in [1, 15, 16, 17, 40] {
            let data: Vec<u8> = (0..n * 3).map(|i| (i * 53 % 256) as u8).collect();
            let img = Image::U8(ImageBuf::new(n, 1, 3, data.clone()).unwrap());
            let out = Normalize::default().apply(&(), Sample::new(img)).unwrap();
            let Image::F32(b) = out.image else { panic!() };
            for (j, (&v, &got)) in data.iter().zip(b.data()).enumerate() {
                let (m, s) = (crate::IMAGENET_MEAN[j % 3], crate::IMAGENET_STD[j % 3]);
                let want = (v as f32 / 255.0 - m) / s;
                assert!(
                    (got - want).abs() < 1e-5,
                    "{n} pixels, value {j}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn normalize_matches_albumentations_formula() {
        let img = Image::U8(ImageBuf::new(1, 1, 3, vec![255, 0, 128]).unwrap());
        let out = Normalize::default().apply(&(), Sample::new(img)).unwrap();
        let Image::F32(b) = out.image else { panic!() };
        let expected = [
            (1.0 - 0.485) / 0.229,
            (0.0 - 0.456) / 0.224,
            (128.0 / 255.0 - 0.406) / 0.225,
        ];
        for (g, e) in b.data().iter().zip(expected) {
            assert!((g - e).abs() < 1e-5, "{g} vs {e}");
        }
    }
}
