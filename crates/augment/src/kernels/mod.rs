//! Pixel kernels the augmenters share: OpenCV-exact warps and their row loops, separable and
//! box filters, median, the fixed-point bilinear resize, colour-space conversions, libjpeg's
//! lossy round trip.

pub(crate) mod bilinear;
pub(crate) mod box_filter;
pub(crate) mod colorspace;
pub(crate) mod filter;
pub(crate) mod hsv_round_trip;
pub(crate) mod jpeg;
pub(crate) mod jpeg_dct;
pub(crate) mod lab_in_place;
pub(crate) mod lanes;
pub(crate) mod lut;
pub(crate) mod median;
pub(crate) mod pil;
pub(crate) mod rgb_blocks;
pub(crate) mod warp;
pub(crate) mod warp_rows;
pub(crate) mod warp_u8_avx2;
pub(crate) mod warp_u8_avx512;

/// Inputs shared by the colour-conversion tests.
#[cfg(test)]
pub(crate) mod test_pixels {
    /// A lattice through the RGB cube (every 5th level, ends included, and 1, 128, 254) plus
    /// one pixel, so that the vector block tails run too; interleaved RGB.
    pub(crate) fn rgb_lattice() -> Vec<u8> {
        let levels: Vec<u8> = (0..=255u8).step_by(5).chain([1, 128, 254]).collect();
        let mut rgb = Vec::new();
        for &r in &levels {
            for &g in &levels {
                for &b in &levels {
                    rgb.extend([r, g, b]);
                }
            }
        }
        rgb.extend([9, 8, 7]);
        rgb
    }

    /// RGB pixels as RGBA with a varying alpha.
    pub(crate) fn with_alpha(rgb: &[u8]) -> Vec<u8> {
        rgb.chunks_exact(3)
            .enumerate()
            .flat_map(|(i, p)| [p[0], p[1], p[2], i as u8])
            .collect()
    }
}
