//! Pillow's `Image.resize` (`libImaging/Resample.c`): a separable convolution whose filter
//! support widens with the downscale factor (antialiasing), 8-bit fixed-point coefficients
//! (22 fraction bits) and a rounded `u8` intermediate between the horizontal and the vertical
//! pass. torchvision's `Resize` on PIL images — hence timm's eval transform — is this;
//! OpenCV's kernels (the rest of this crate) do not antialias, so they differ when shrinking.
//! No maintained crate reproduces Pillow's integer arithmetic (`image`'s and
//! `fast_image_resize`'s convolutions round differently), hence the port.

use crate::{ImageBuf, Result};

/// Pillow's resampling filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PilFilter {
    /// `Image.BILINEAR` (triangle, support 1).
    Bilinear,
    /// `Image.BICUBIC` (Keys cubic with a = -0.5, support 2).
    Bicubic,
}

impl PilFilter {
    fn support(self) -> f64 {
        match self {
            Self::Bilinear => 1.0,
            Self::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Self::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Self::Bicubic => {
                let a = -0.5;
                if x < 1.0 {
                    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * a
                } else {
                    0.0
                }
            }
        }
    }
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output index: first source index and fixed-point weights (`precompute_coeffs` +
/// `normalize_coeffs_8bpc`).
fn coefficients(in_size: usize, out_size: usize, filter: PilFilter) -> Vec<(usize, Vec<i32>)> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            // C's `(int)` truncates toward zero; negatives clamp to 0 anyway.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let w: Vec<f64> = (xmin..xmax)
                .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            let fixed = w
                .iter()
                .map(|&v| {
                    let v = if total != 0.0 { v / total } else { v };
                    let scaled = v * (1u32 << PRECISION_BITS) as f64;
                    (if v < 0.0 { scaled - 0.5 } else { scaled + 0.5 }) as i32
                })
                .collect();
            (xmin, fixed)
        })
        .collect()
}

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes `src` to `out_w × out_h` exactly as Pillow's `Image.resize(.., filter)` does on
/// 8-bit images (`L`, `RGB`, `RGBA`): horizontal pass, then vertical, each rounded to `u8`.
pub fn resize_pil(
    src: &ImageBuf<u8>,
    out_w: usize,
    out_h: usize,
    filter: PilFilter,
) -> Result<ImageBuf<u8>> {
    let (w, h, c) = (src.width(), src.height(), src.channels());
    let data = src.data();
    let half = 1i32 << (PRECISION_BITS - 1);
    let horizontal = if out_w != w {
        let coeffs = coefficients(w, out_w, filter);
        let mut out = vec![0u8; out_w * h * c];
        for y in 0..h {
            let row = &data[y * w * c..(y + 1) * w * c];
            for (xx, (xmin, k)) in coeffs.iter().enumerate() {
                for ch in 0..c {
                    let acc = k
                        .iter()
                        .enumerate()
                        .fold(half, |s, (i, &kv)| s + row[(xmin + i) * c + ch] as i32 * kv);
                    out[(y * out_w + xx) * c + ch] = clip8(acc);
                }
            }
        }
        out
    } else {
        data.to_vec()
    };
    let out = if out_h != h {
        let coeffs = coefficients(h, out_h, filter);
        let mut out = vec![0u8; out_w * out_h * c];
        let stride = out_w * c;
        for (yy, (ymin, k)) in coeffs.iter().enumerate() {
            for x in 0..stride {
                let acc = k.iter().enumerate().fold(half, |s, (i, &kv)| {
                    s + horizontal[(ymin + i) * stride + x] as i32 * kv
                });
                out[yy * stride + x] = clip8(acc);
            }
        }
        out
    } else {
        horizontal
    };
    ImageBuf::new(out_w, out_h, c, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_a_downscale_sum_to_one_in_fixed_point() {
        for filter in [PilFilter::Bilinear, PilFilter::Bicubic] {
            for (xmin, k) in coefficients(100, 37, filter) {
                let total: i32 = k.iter().sum();
                assert!(
                    (total - (1 << PRECISION_BITS)).abs() <= k.len() as i32,
                    "{xmin} {total}"
                );
            }
        }
    }

    #[test]
    fn a_constant_image_stays_constant() {
        let src = ImageBuf::new(9, 7, 3, vec![200u8; 9 * 7 * 3]).unwrap();
        let out = resize_pil(&src, 4, 11, PilFilter::Bicubic).unwrap();
        assert!(out.data().iter().all(|&v| v == 200));
    }
}
