//! JPEG artefacts (imgaug's `JpegCompression`): encode with `jpeg-encoder` at a quality drawn
//! from `compression`, decode again with the `image` crate (zune-jpeg). `jpeg-encoder` uses
//! libjpeg's Annex K tables scaled by quality and, set here, libjpeg's 4:2:0 chroma subsampling
//! (what OpenCV and PIL write by default); its rounding and Huffman tables are its own, so
//! results resemble but do not equal theirs. It is 4–5× faster than the `image` crate's encoder
//! (AVX2 DCT and colour conversion), which is why it is used.

use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use serde::{Deserialize, Serialize};

use crate::{AugRng, AugmentError, Image, ImageBuf, Op, Param, Result, Sample};

/// Compresses with JPEG and decodes again (imgaug's `JpegCompression`; u8 only). imgaug maps a
/// `compression` `c` in `[0, 100]` (truncated to an integer) to the quality
/// `clip(round(1 + 99 · (1 − c / 101)), 1, 100)`: 0 → 100, 51 → 50, 100 → 2. Gray images are
/// encoded as gray, RGBA as RGB with alpha kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JpegCompression {
    /// Strength in `[0, 100]`: 0 is (nearly) lossless, 100 the strongest.
    #[serde(default = "JpegCompression::default_compression")]
    pub compression: Param,
}

impl JpegCompression {
    fn default_compression() -> Param {
        Param::Range([0.0, 100.0])
    }

    /// imgaug's quality for a compression.
    pub fn quality(compression: f64) -> u8 {
        let c = compression.clamp(0.0, 100.0).trunc();
        (1.0 + 99.0 * (1.0 - c / 101.0))
            .round_ties_even()
            .clamp(1.0, 100.0) as u8
    }
}

/// What [`JpegCompression`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JpegParams {
    /// The encoder quality, 1..=100.
    pub quality: u8,
}

fn codec_error(e: impl std::fmt::Display) -> AugmentError {
    AugmentError::Image(format!("jpeg_compression: {e}"))
}

/// Encodes and decodes `data` (gray or RGB, 8-bit) at `quality`.
fn round_trip(data: &[u8], w: usize, h: usize, gray: bool, quality: u8) -> Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(data.len() / 4 + 1024);
    let (width, height) = match (u16::try_from(w), u16::try_from(h)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => {
            return Err(codec_error(format!(
                "a {w}×{h} image is larger than JPEG's 65535×65535"
            )));
        }
    };
    let color = if gray {
        ColorType::Luma
    } else {
        ColorType::Rgb
    };
    let mut encoder = Encoder::new(&mut bytes, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder
        .encode(data, width, height, color)
        .map_err(codec_error)?;
    let decoded = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
        .map_err(codec_error)?;
    let out = if gray {
        decoded.into_luma8().into_raw()
    } else {
        decoded.into_rgb8().into_raw()
    };
    if out.len() != data.len() {
        return Err(codec_error(format!(
            "decoded {} values for {}",
            out.len(),
            data.len()
        )));
    }
    Ok(out)
}

impl Op for JpegCompression {
    const NAME: &'static str = "jpeg_compression";
    type Params = JpegParams;
    fn check(&self) -> Result<()> {
        self.compression
            .validate(Self::NAME, "compression", 0.0, 100.0)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> JpegParams {
        JpegParams {
            quality: Self::quality(self.compression.sample(rng)),
        }
    }
    fn apply(&self, p: &JpegParams, mut s: Sample) -> Result<Sample> {
        let Image::U8(b) = &mut s.image else {
            return Err(AugmentError::Unsupported {
                op: Self::NAME,
                what: format!("{} images (JPEG is 8-bit)", s.image.pixel_type()),
            });
        };
        let (w, h, c) = (b.width(), b.height(), b.channels());
        if c == 4 {
            let rgb: Vec<u8> = b
                .data()
                .chunks_exact(4)
                .flat_map(|px| [px[0], px[1], px[2]])
                .collect();
            let out = round_trip(&rgb, w, h, false, p.quality)?;
            for (px, new) in b.data_mut().chunks_exact_mut(4).zip(out.chunks_exact(3)) {
                px[..3].copy_from_slice(new);
            }
        } else {
            let out = round_trip(b.data(), w, h, c == 1, p.quality)?;
            *b = ImageBuf::new(w, h, c, out)?;
        }
        Ok(s)
    }
}
