//! JPEG artefacts (imgaug's `JpegCompression`): the pixels a libjpeg-turbo encode at a quality
//! drawn from `compression` and decode give, bit for bit (`kernels::jpeg`: Pillow's and OpenCV's
//! defaults, 4:2:0 chroma, islow DCT, fancy upsampling), computed without writing the
//! bitstream.

use serde::{Deserialize, Serialize};

use crate::kernels::jpeg;
use crate::{AugRng, AugmentError, Image, Op, Param, Result, Sample};

/// Compresses with JPEG and decodes again (imgaug's `JpegCompression`; u8 only). imgaug maps a
/// `compression` `c` in `[0, 100]` (truncated to an integer) to the quality
/// `clip(round(1 + 99 · (1 − c / 101)), 1, 100)`: 0 → 100, 51 → 50, 100 → 2. Gray images are
/// encoded as gray, RGBA as RGB with alpha kept. The result equals
/// `imgaug.augmenters.arithmetic.compress_jpeg` (Pillow) for gray and RGB, and OpenCV's
/// `imdecode(imencode(…))` on the same channel order.
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
        jpeg::round_trip(b.data_mut(), w, h, c, p.quality);
        Ok(s)
    }
}
