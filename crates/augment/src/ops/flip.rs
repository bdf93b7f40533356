//! Horizontal and vertical flips (imgaug's `Fliplr`/`Flipud`, Albumentations'
//! `HorizontalFlip`/`VerticalFlip`).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::param::check_probability;
use crate::{AugRng, BBox, Image, ImageBuf, Keypoint, Op, Pixel, Result, Sample, map_image};

/// Mirrors an image left–right.
pub fn flip_h<P: Pixel>(img: &ImageBuf<P>) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let mut out = vec![P::default(); w * h * c];
    // Fixed-size pixel copies so the compiler can unroll them.
    fn mirror<P: Copy, const C: usize>(src: &[P], dst: &mut [P]) {
        for (d, s) in dst.chunks_exact_mut(C).zip(src.chunks_exact(C).rev()) {
            d.copy_from_slice(s);
        }
    }
    for (src, dst) in img
        .data()
        .chunks_exact(w * c)
        .zip(out.chunks_exact_mut(w * c))
    {
        match c {
            1 => mirror::<P, 1>(src, dst),
            3 => mirror::<P, 3>(src, dst),
            _ => mirror::<P, 4>(src, dst),
        }
    }
    ImageBuf::with_data(w, h, c, out)
}

/// Mirrors an image top–bottom.
pub fn flip_v<P: Pixel>(img: &ImageBuf<P>) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let mut out = Vec::with_capacity(w * h * c);
    for y in (0..h).rev() {
        out.extend_from_slice(img.row(y));
    }
    ImageBuf::with_data(w, h, c, out)
}

fn flip_image(img: &Image, horizontal: bool) -> Image {
    if horizontal {
        map_image!(img, b => flip_h(b))
    } else {
        map_image!(img, b => flip_v(b))
    }
}

fn flip_sample(mut s: Sample, horizontal: bool) -> Sample {
    let (w, h) = (s.image.width() as f32, s.image.height() as f32);
    s.image = flip_image(&s.image, horizontal);
    s.masks = s.masks.iter().map(|m| flip_image(m, horizontal)).collect();
    s.heatmaps = s
        .heatmaps
        .iter()
        .map(|m| if horizontal { flip_h(m) } else { flip_v(m) })
        .collect();
    for b in &mut s.boxes {
        *b = if horizontal {
            BBox {
                x1: w - b.x2,
                x2: w - b.x1,
                ..*b
            }
        } else {
            BBox {
                y1: h - b.y2,
                y2: h - b.y1,
                ..*b
            }
        };
    }
    for k in &mut s.keypoints {
        *k = if horizontal {
            Keypoint { x: w - k.x, ..*k }
        } else {
            Keypoint { y: h - k.y, ..*k }
        };
    }
    s
}

/// Flips left–right with probability `p` (imgaug's `Fliplr(p)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fliplr {
    /// Probability of flipping.
    #[serde(default = "one")]
    pub p: f64,
}

/// Flips top–bottom with probability `p` (imgaug's `Flipud(p)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flipud {
    /// Probability of flipping.
    #[serde(default = "one")]
    pub p: f64,
}

fn one() -> f64 {
    1.0
}

impl Op for Fliplr {
    const NAME: &'static str = "fliplr";
    type Params = bool;
    fn check(&self) -> Result<()> {
        check_probability(Self::NAME, "p", self.p)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> bool {
        rng.random_bool(self.p)
    }
    fn apply(&self, flip: &bool, s: Sample) -> Result<Sample> {
        Ok(if *flip { flip_sample(s, true) } else { s })
    }
}

impl Op for Flipud {
    const NAME: &'static str = "flipud";
    type Params = bool;
    fn check(&self) -> Result<()> {
        check_probability(Self::NAME, "p", self.p)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> bool {
        rng.random_bool(self.p)
    }
    fn apply(&self, flip: &bool, s: Sample) -> Result<Sample> {
        Ok(if *flip { flip_sample(s, false) } else { s })
    }
}
