//! Pixel kernels the augmenters share: OpenCV-exact warps and their row loops, separable and
//! box filters, median, the fixed-point bilinear resize, colour-space conversions.

pub(crate) mod bilinear;
pub(crate) mod box_filter;
pub(crate) mod colorspace;
pub(crate) mod filter;
pub(crate) mod hsv_round_trip;
pub(crate) mod lab_in_place;
pub(crate) mod lut;
pub(crate) mod median;
pub(crate) mod pil;
pub(crate) mod rgb_blocks;
pub(crate) mod warp;
pub(crate) mod warp_rows;
pub(crate) mod warp_u8_avx512;
