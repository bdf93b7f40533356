//! Colour ops: imgaug's `Grayscale`, `AddToHueAndSaturation`, `MultiplyBrightness` and
//! `ChannelShuffle`. Colour conversions are OpenCV's 8-bit ones (bit-exact ports in
//! `colorspace.rs`); the alpha channel of an RGBA image is kept, and a gray image has no colour
//! to change (Grayscale and ChannelShuffle leave it as it is, hue/saturation refuse it).

use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::intensity::{chance, map_values, multiply_table, table};
use crate::kernels::hsv_round_trip::hsv_round_trip;
use crate::kernels::lab_in_place::{lab_to_rgb_in_place, rgb_to_lab_in_place};
use crate::param::check_probability;
use crate::{AugRng, AugmentError, Image, ImageBuf, Op, Param, Pixel, Result, Sample};

fn identity_table() -> [u8; 256] {
    table(|i| i as u8)
}

fn one() -> f64 {
    1.0
}
fn zero() -> f64 {
    0.0
}

fn needs_rgb_u8<'a>(op: &'static str, image: &'a mut Image) -> Result<&'a mut ImageBuf<u8>> {
    if image.channels() < 3 {
        return Err(AugmentError::Unsupported {
            op,
            what: "1-channel images (there is no colour to change)".into(),
        });
    }
    let what = format!(
        "{} images (u8 only, as OpenCV's 8-bit HSV/Lab)",
        image.pixel_type()
    );
    match image {
        Image::U8(b) => Ok(b),
        _ => Err(AugmentError::Unsupported { op, what }),
    }
}

/// Removes colour (imgaug's `Grayscale`, Albumentations' `ToGray(method="weighted_average")`):
/// each pixel becomes `v + alpha · (Y − v)` (imgaug's blend, float, rounded), with OpenCV's
/// `Y = (9798 R + 19235 G + 3735 B + 2^14) >> 15` on `u8` (0.299/0.587/0.114 on u16 and f32),
/// The image keeps its 3 (or 4) channels; a gray image is
/// returned unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grayscale {
    /// Opacity of the gray image over the original, in `[0, 1]`.
    #[serde(default = "Grayscale::default_alpha")]
    pub alpha: Param,
}

impl Grayscale {
    fn default_alpha() -> Param {
        Param::Fixed(1.0)
    }
}

fn gray_generic<P: Pixel>(b: &mut ImageBuf<P>, alpha: f32) {
    let c = b.channels();
    for px in b.data_mut().chunks_exact_mut(c) {
        let y = 0.299 * px[0].to_f32() + 0.587 * px[1].to_f32() + 0.114 * px[2].to_f32();
        for v in &mut px[..3] {
            let x = v.to_f32();
            *v = P::from_f32((x + alpha * (y - x)).clamp(0.0, P::MAX));
        }
    }
}

/// OpenCV's fixed-point luma of a `u8` RGB pixel.
#[inline]
fn luma_u8(r: u8, g: u8, b: u8) -> u8 {
    ((9798 * r as u32 + 19235 * g as u32 + 3735 * b as u32 + (1 << 14)) >> 15) as u8
}

crate::simd::kernel! {
    /// Full grayscale of 3-byte pixels, 16 at a time split into R, G and B lanes (so SSSE3
    /// shuffles and vector multiplies do it; 2.5× the per-pixel loop, measured).
    fn gray_rgb8(data: &mut [u8]) ["ssse3"] {
        let mut blocks = data.chunks_exact_mut(48);
        for block in &mut blocks {
            let (mut r, mut g, mut b) = ([0u32; 16], [0u32; 16], [0u32; 16]);
            for i in 0..16 {
                r[i] = block[3 * i] as u32;
                g[i] = block[3 * i + 1] as u32;
                b[i] = block[3 * i + 2] as u32;
            }
            let mut y = [0u8; 16];
            for i in 0..16 {
                y[i] = ((9798 * r[i] + 19235 * g[i] + 3735 * b[i] + (1 << 14)) >> 15) as u8;
            }
            for i in 0..16 {
                block[3 * i] = y[i];
                block[3 * i + 1] = y[i];
                block[3 * i + 2] = y[i];
            }
        }
        for px in blocks.into_remainder().chunks_exact_mut(3) {
            px.fill(luma_u8(px[0], px[1], px[2]));
        }
    }
}

/// Grayscale on `u8` with `C` channels (a constant, so the pixel loop unrolls).
fn gray_u8<const C: usize>(b: &mut ImageBuf<u8>, alpha: f32) {
    if C == 3 && alpha >= 1.0 - 1e-3 {
        return gray_rgb8(b.data_mut());
    }
    let pixels = b.data_mut().chunks_exact_mut(C);
    if alpha >= 1.0 - 1e-3 {
        for px in pixels {
            let y = luma_u8(px[0], px[1], px[2]);
            px[..3].fill(y);
        }
    } else {
        for px in pixels {
            let y = luma_u8(px[0], px[1], px[2]) as f32;
            for v in &mut px[..3] {
                let x = *v as f32;
                *v = (x + alpha * (y - x)).round_ties_even() as u8;
            }
        }
    }
}

impl Op for Grayscale {
    const NAME: &'static str = "grayscale";
    /// The alpha drawn.
    type Params = f64;
    fn check(&self) -> Result<()> {
        self.alpha.validate(Self::NAME, "alpha", 0.0, 1.0)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> f64 {
        self.alpha.sample(rng).clamp(0.0, 1.0)
    }
    fn apply(&self, alpha: &f64, mut s: Sample) -> Result<Sample> {
        // imgaug's blend: alpha within 0.001 of 0 or 1 is exact.
        if s.image.channels() < 3 || *alpha <= 1e-3 {
            return Ok(s);
        }
        let a = *alpha as f32;
        match &mut s.image {
            Image::U8(b) => match b.channels() {
                3 => gray_u8::<3>(b, a),
                _ => gray_u8::<4>(b, a),
            },
            Image::U16(b) => gray_generic(b, a),
            Image::F32(b) => gray_generic(b, a),
        }
        Ok(s)
    }
}

/// Adds to hue and saturation in OpenCV's 8-bit HSV (imgaug's `AddToHueAndSaturation`; u8
/// RGB(A) only). Hue values are in imgaug's units: −255..255 spans the full circle (OpenCV's
/// hue is 0..180, so a value `v` shifts it by `int(v / 255 · 180)`, wrapping); saturation is
/// added and clipped to 0..255. Give `value` (one draw for both, or two with probability
/// `per_channel`) or `value_hue` / `value_saturation`; with none of them both default to
/// `[-40, 40]` as in imgaug.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddToHueAndSaturation {
    /// One value for hue and saturation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Param>,
    /// The hue shift, −255..255 (imgaug units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_hue: Option<Param>,
    /// The saturation shift, −255..255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_saturation: Option<Param>,
    /// With `value`: probability of drawing hue and saturation separately.
    #[serde(default = "zero")]
    pub per_channel: f64,
}

/// What [`AddToHueAndSaturation`] draws (imgaug units, integers).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HueSaturation {
    /// Added to hue, −255..255 for the full circle.
    pub hue: i32,
    /// Added to saturation.
    pub saturation: i32,
}

impl Op for AddToHueAndSaturation {
    const NAME: &'static str = "add_to_hue_and_saturation";
    type Params = HueSaturation;
    fn check(&self) -> Result<()> {
        check_probability(Self::NAME, "per_channel", self.per_channel)?;
        for (field, p) in [
            ("value", &self.value),
            ("value_hue", &self.value_hue),
            ("value_saturation", &self.value_saturation),
        ] {
            if let Some(p) = p {
                p.validate(Self::NAME, field, -255.0, 255.0)?;
            }
        }
        if self.value.is_some() && (self.value_hue.is_some() || self.value_saturation.is_some()) {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "value",
                value: serde_json::to_string(&self.value).unwrap_or_default(),
                expected: "either `value` or `value_hue`/`value_saturation`, not both".into(),
            });
        }
        Ok(())
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> HueSaturation {
        // imgaug truncates the draws to integers (astype(int32)).
        let int = |p: &Param, rng: &mut AugRng| p.sample(rng).clamp(-255.0, 255.0) as i32;
        if let Some(v) = &self.value {
            let separate = chance(rng, self.per_channel);
            let hue = int(v, rng);
            let saturation = if separate { int(v, rng) } else { hue };
            return HueSaturation { hue, saturation };
        }
        let default = Param::Range([-40.0, 40.0]);
        let none = self.value_hue.is_none() && self.value_saturation.is_none();
        let draw = |p: &Option<Param>, rng: &mut AugRng| match p {
            Some(p) => int(p, rng),
            None if none => int(&default, rng),
            None => 0,
        };
        let hue = draw(&self.value_hue, rng);
        let saturation = draw(&self.value_saturation, rng);
        HueSaturation { hue, saturation }
    }
    fn apply(&self, p: &HueSaturation, mut s: Sample) -> Result<Sample> {
        let b = needs_rgb_u8(Self::NAME, &mut s.image)?;
        // imgaug: int(float32(hue) / 255 * 180), then (h + shift) mod 180 by table.
        let shift = ((p.hue.clamp(-255, 255) as f32 / 255.0) * 180.0) as i32;
        let hue: [u8; 256] = std::array::from_fn(|h| (h as i32 + shift).rem_euclid(180) as u8);
        let sat = p.saturation.clamp(-255, 255);
        let sat: [u8; 256] = std::array::from_fn(|v| (v as i32 + sat).clamp(0, 255) as u8);
        let c = b.channels();
        hsv_round_trip(b.data_mut(), c, &hue, &sat, &identity_table());
        Ok(s)
    }
}

/// The channel [`MultiplyBrightness`] scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrightnessSpace {
    /// R, G and B themselves (albucore's and imgaug `Multiply`'s truncated float32 table).
    Rgb,
    /// V of OpenCV's 8-bit HSV (u8 only).
    Hsv,
    /// L of OpenCV's 8-bit Lab (u8 only).
    Lab,
}

/// Multiplies brightness (imgaug's `MultiplyBrightness`): each image picks one of
/// `to_colorspace` and scales its brightness channel by `mul`, truncated as albucore does.
/// imgaug picks among six colour spaces; the default here is `["rgb"]`, a plain
/// `clip(v · mul)` of R, G and B, which is what Albumentations' `MultiplicativeNoise` does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiplyBrightness {
    /// The factor.
    #[serde(default = "MultiplyBrightness::default_mul")]
    pub mul: Param,
    /// The colour spaces to choose from, one per image.
    #[serde(default = "MultiplyBrightness::default_space")]
    pub to_colorspace: Vec<BrightnessSpace>,
}

impl MultiplyBrightness {
    fn default_mul() -> Param {
        Param::Range([0.7, 1.3])
    }
    fn default_space() -> Vec<BrightnessSpace> {
        vec![BrightnessSpace::Rgb]
    }
}

/// What [`MultiplyBrightness`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BrightnessParams {
    /// The factor.
    pub mul: f64,
    /// The colour space.
    pub space: BrightnessSpace,
}

impl Op for MultiplyBrightness {
    const NAME: &'static str = "multiply_brightness";
    type Params = BrightnessParams;
    fn check(&self) -> Result<()> {
        self.mul.validate(Self::NAME, "mul", 0.0, 100.0)?;
        if self.to_colorspace.is_empty() {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "to_colorspace",
                value: "[]".into(),
                expected: "at least one of \"rgb\", \"hsv\", \"lab\"".into(),
            });
        }
        Ok(())
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> BrightnessParams {
        let mul = self.mul.sample(rng).max(0.0);
        let space = match self.to_colorspace.len() {
            0 => BrightnessSpace::Rgb,
            n => self.to_colorspace[rng.random_range(0..n)],
        };
        BrightnessParams { mul, space }
    }
    fn apply(&self, p: &BrightnessParams, mut s: Sample) -> Result<Sample> {
        let lut = multiply_table(p.mul);
        match p.space {
            BrightnessSpace::Rgb => {
                let n = super::intensity::color_channels(s.image.channels());
                map_values(&mut s.image, &vec![p.mul; n], multiply_table, |x, m, _| {
                    x * m as f32
                });
            }
            BrightnessSpace::Hsv => {
                let b = needs_rgb_u8(Self::NAME, &mut s.image)?;
                let (identity, c) = (identity_table(), b.channels());
                hsv_round_trip(b.data_mut(), c, &identity, &identity, &lut);
            }
            BrightnessSpace::Lab => {
                let b = needs_rgb_u8(Self::NAME, &mut s.image)?;
                let (identity, c) = (identity_table(), b.channels());
                rgb_to_lab_in_place(b.data_mut(), c);
                let tables: Vec<&[u8; 256]> = [&lut, &identity, &identity, &identity][..c].to_vec();
                crate::kernels::lut::apply_tables(b.data_mut(), &tables);
                lab_to_rgb_in_place(b.data_mut(), c);
            }
        }
        Ok(s)
    }
}

/// Permutes channels with probability `p` (imgaug's `ChannelShuffle`, Albumentations'
/// `ChannelShuffle`): `out[…, i] = in[…, order[i]]`. By default the colour channels are
/// shuffled (alpha stays); `channels` names the ones to shuffle among.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelShuffle {
    /// Probability of shuffling.
    #[serde(default = "one")]
    pub p: f64,
    /// The channels shuffled among (default: the colour channels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<usize>>,
}

impl Op for ChannelShuffle {
    const NAME: &'static str = "channel_shuffle";
    /// The full channel order, or `None` when not shuffled.
    type Params = Option<Vec<usize>>;
    fn check(&self) -> Result<()> {
        check_probability(Self::NAME, "p", self.p)?;
        if let Some(ch) = &self.channels {
            let mut sorted = ch.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != ch.len() || ch.iter().any(|&c| c > 3) {
                return Err(AugmentError::Invalid {
                    op: Self::NAME,
                    field: "channels",
                    value: format!("{ch:?}"),
                    expected: "distinct channel indices in 0..=3".into(),
                });
            }
        }
        Ok(())
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> Option<Vec<usize>> {
        if !chance(rng, self.p) {
            return None;
        }
        let c = s.image.channels();
        let chosen: Vec<usize> = match &self.channels {
            Some(ch) => ch.iter().copied().filter(|&k| k < c).collect(),
            None => (0..super::intensity::color_channels(c)).collect(),
        };
        let mut shuffled = chosen.clone();
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.random_range(0..=i));
        }
        let mut order: Vec<usize> = (0..c).collect();
        for (&slot, &from) in chosen.iter().zip(&shuffled) {
            order[slot] = from;
        }
        Some(order)
    }
    fn apply(&self, order: &Option<Vec<usize>>, mut s: Sample) -> Result<Sample> {
        let Some(order) = order else { return Ok(s) };
        let c = s.image.channels();
        let mut seen = vec![false; c];
        if order.len() != c
            || order
                .iter()
                .any(|&k| k >= c || std::mem::replace(&mut seen[k], true))
        {
            return Err(AugmentError::Replay(format!(
                "{}: order {order:?} is not a permutation of {c} channels",
                Self::NAME
            )));
        }
        /// One fixed permutation of the first three channels (constants: plain moves).
        fn permute3<P: Pixel, const C: usize, const R: usize, const G: usize, const B: usize>(
            b: &mut ImageBuf<P>,
        ) {
            for px in b.data_mut().chunks_exact_mut(C) {
                let src = [px[0], px[1], px[2]];
                px[0] = src[R];
                px[1] = src[G];
                px[2] = src[B];
            }
        }
        fn permute_rgb<P: Pixel, const C: usize>(b: &mut ImageBuf<P>, order: &[usize]) -> bool {
            match order[..3] {
                [0, 1, 2] => {}
                [0, 2, 1] => permute3::<P, C, 0, 2, 1>(b),
                [1, 0, 2] => permute3::<P, C, 1, 0, 2>(b),
                [1, 2, 0] => permute3::<P, C, 1, 2, 0>(b),
                [2, 0, 1] => permute3::<P, C, 2, 0, 1>(b),
                [2, 1, 0] => permute3::<P, C, 2, 1, 0>(b),
                _ => return false,
            }
            true
        }
        fn permute<P: Pixel, const C: usize>(b: &mut ImageBuf<P>, order: &[usize]) {
            if (C == 3 || order[3] == 3) && permute_rgb::<P, C>(b, order) {
                return;
            }
            let order: [usize; C] = std::array::from_fn(|i| order[i]);
            for px in b.data_mut().chunks_exact_mut(C) {
                let src: [P; C] = std::array::from_fn(|i| px[i]);
                for (v, &k) in px.iter_mut().zip(&order) {
                    *v = src[k];
                }
            }
        }
        fn permute_any<P: Pixel>(b: &mut ImageBuf<P>, order: &[usize]) {
            match b.channels() {
                3 => permute::<P, 3>(b, order),
                4 => permute::<P, 4>(b, order),
                _ => {}
            }
        }
        match &mut s.image {
            Image::U8(b) => permute_any(b, order),
            Image::U16(b) => permute_any(b, order),
            Image::F32(b) => permute_any(b, order),
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_grayscale_matches_the_per_pixel_luma() {
        // Lengths around the 16-pixel blocks; every value still OpenCV's fixed-point luma.
        for n in [1, 15, 16, 17, 33, 50] {
            let data: Vec<u8> = (0..n * 3).map(|i| (i * 53 % 256) as u8).collect();
            let mut out = data.clone();
            gray_rgb8(&mut out);
            for (px, got) in data.chunks_exact(3).zip(out.chunks_exact(3)) {
                assert_eq!(got, [luma_u8(px[0], px[1], px[2]); 3], "{n} pixels");
            }
        }
    }
}
