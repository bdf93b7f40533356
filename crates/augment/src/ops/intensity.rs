//! Per-value intensity ops (imgaug's `Add`, `Multiply`, `Invert`, `Solarize`, `Posterize`) and
//! the helpers the colour and contrast families share. On `u8` every op here is one pass through
//! 256-entry tables (a plain vectorised pass where the table is `255 − v` or a bit mask);
//! `u16` and `f32` compute the same formula in the type's units (values in
//! 0–255 options are scaled by `MAX / 255`), `u16` rounded to nearest, `f32` clamped to
//! `[0, 1]`. Only the colour channels change: the alpha channel of an RGBA image is kept.

use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::param::check_probability;
use crate::{AugRng, AugmentError, Image, ImageBuf, Op, Param, Pixel, Result, Sample};

/// The channels a colour op changes: all of a gray or RGB image, the first three of RGBA.
pub(crate) fn color_channels(channels: usize) -> usize {
    if channels == 4 { 3 } else { channels }
}

/// `true` with probability `p` (never panics, unlike `random_bool`, on an unchecked `p`).
pub(crate) fn chance(rng: &mut AugRng, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// One value per colour channel: drawn per channel with probability `per_channel`, else one
/// value repeated (imgaug's `per_channel`).
pub(crate) fn sample_channels(
    rng: &mut AugRng,
    param: &Param,
    per_channel: f64,
    sample: &Sample,
) -> Vec<f64> {
    let n = color_channels(sample.image.channels());
    let per = chance(rng, per_channel);
    param.sample_n(rng, n, per)
}

/// An integer parameter: a range draws every integer in it with equal probability (imgaug's
/// `DiscreteUniform`), other forms are rounded.
pub(crate) fn sample_int(param: &Param, rng: &mut AugRng) -> i64 {
    if let Param::Range([a, b]) = param {
        let (lo, hi) = (a.ceil() as i64, b.floor() as i64);
        if lo <= hi {
            return rng.random_range(lo..=hi);
        }
    }
    param.sample(rng).round() as i64
}

/// Recorded per-channel values fitted to an image's colour channels (one value broadcasts); a
/// record made for another channel count is an error.
pub(crate) fn fit_channels<T: Copy>(
    op: &'static str,
    values: &[T],
    image: &Image,
) -> Result<Vec<T>> {
    let n = color_channels(image.channels());
    match values.len() {
        1 => Ok(vec![values[0]; n]),
        len if len == n => Ok(values.to_vec()),
        len => Err(AugmentError::Replay(format!(
            "{op}: {len} per-channel values for an image with {n} colour channels"
        ))),
    }
}

/// An option that must be positive: `validate` in `[0, hi]`, then 0 itself refused.
pub(crate) fn validate_positive(
    param: &Param,
    op: &'static str,
    field: &'static str,
    hi: f64,
) -> Result<()> {
    param.validate(op, field, 0.0, hi)?;
    let zero = match param {
        Param::Fixed(v) => *v == 0.0,
        Param::Range([a, _]) => *a == 0.0,
        Param::Choice { choice } => choice.contains(&0.0),
        Param::Dist(_) => false,
    };
    if zero {
        return Err(AugmentError::Invalid {
            op,
            field,
            value: serde_json::to_string(param).unwrap_or_default(),
            expected: format!("values > 0 (and ≤ {hi})"),
        });
    }
    Ok(())
}

/// Passes the colour channels of a `u8` image through `luts` (one table for all, or one per
/// colour channel).
pub(crate) fn apply_luts(buf: &mut ImageBuf<u8>, luts: &[[u8; 256]]) {
    let c = buf.channels();
    let n = color_channels(c);
    let identity = table(|i| i as u8);
    let last = luts.len() - 1;
    // One table per channel of a pixel (alpha through the identity), or one for all.
    let tables: Vec<&[u8; 256]> = if luts.len() == 1 && n == c {
        vec![&luts[0]]
    } else {
        (0..c)
            .map(|k| if k < n { &luts[k.min(last)] } else { &identity })
            .collect()
    };
    crate::kernels::lut::apply_tables(buf.data_mut(), &tables);
}

/// Maps the colour channels of an image value by value: `u8` through one table per distinct
/// channel value (`lut(value)`), `u16`/`f32` through `f(pixel, value, MAX)` in the type's units,
/// clamped to `[0, MAX]` (u16 rounded to nearest).
pub(crate) fn map_values(
    image: &mut Image,
    values: &[f64],
    lut: impl Fn(f64) -> [u8; 256],
    f: impl Fn(f32, f64, f32) -> f32,
) {
    match image {
        Image::U8(b) => {
            let luts: Vec<[u8; 256]> = if values.windows(2).all(|w| w[0] == w[1]) {
                vec![lut(values[0])]
            } else {
                values.iter().map(|&v| lut(v)).collect()
            };
            apply_luts(b, &luts);
        }
        Image::U16(b) => map_generic(b, values, &f),
        Image::F32(b) => map_generic(b, values, &f),
    }
}

fn map_generic<P: Pixel>(buf: &mut ImageBuf<P>, values: &[f64], f: &impl Fn(f32, f64, f32) -> f32) {
    let c = buf.channels();
    let n = color_channels(c);
    for px in buf.data_mut().chunks_exact_mut(c) {
        for (v, &p) in px[..n].iter_mut().zip(values) {
            *v = P::from_f32(f(v.to_f32(), p, P::MAX).clamp(0.0, P::MAX));
        }
    }
}

/// A 256-entry table from a function of the input value.
pub(crate) fn table(f: impl Fn(usize) -> u8) -> [u8; 256] {
    std::array::from_fn(f)
}

fn zero() -> f64 {
    0.0
}
fn one() -> f64 {
    1.0
}

/// Adds a value (0–255 units) to every pixel (imgaug's `Add`); `u8` saturates, the value
/// rounded to an integer first as imgaug does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Add {
    /// The value added, in 0–255 units (scaled for u16 and f32).
    #[serde(default = "Add::default_value")]
    pub value: Param,
    /// Probability of drawing one value per channel instead of one per image.
    #[serde(default = "zero")]
    pub per_channel: f64,
}

impl Add {
    fn default_value() -> Param {
        Param::Range([-20.0, 20.0])
    }
}

impl Op for Add {
    const NAME: &'static str = "add";
    /// The value per colour channel.
    type Params = Vec<f64>;
    fn check(&self) -> Result<()> {
        self.value.validate(Self::NAME, "value", -255.0, 255.0)?;
        check_probability(Self::NAME, "per_channel", self.per_channel)
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> Vec<f64> {
        sample_channels(rng, &self.value, self.per_channel, s)
    }
    fn apply(&self, values: &Vec<f64>, mut s: Sample) -> Result<Sample> {
        let values = fit_channels(Self::NAME, values, &s.image)?;
        map_values(
            &mut s.image,
            &values,
            |v| {
                let add = v.round_ties_even().clamp(-255.0, 255.0) as i32;
                table(|i| (i as i32 + add).clamp(0, 255) as u8)
            },
            |x, v, max| x + (v * max as f64 / 255.0) as f32,
        );
        Ok(s)
    }
}

/// Multiplies every pixel (imgaug's `Multiply`); `u8` through a float32 table, clipped and
/// truncated as imgaug and albucore do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Multiply {
    /// The factor.
    #[serde(default = "Multiply::default_mul")]
    pub mul: Param,
    /// Probability of drawing one factor per channel instead of one per image.
    #[serde(default = "zero")]
    pub per_channel: f64,
}

impl Multiply {
    fn default_mul() -> Param {
        Param::Range([0.8, 1.2])
    }
}

/// The `u8` table of a multiplication: `uint8(clip(float32(v) * float32(mul), 0, 255))`.
pub(crate) fn multiply_table(mul: f64) -> [u8; 256] {
    let m = mul as f32;
    table(|i| (i as f32 * m).clamp(0.0, 255.0) as u8)
}

impl Op for Multiply {
    const NAME: &'static str = "multiply";
    /// The factor per colour channel.
    type Params = Vec<f64>;
    fn check(&self) -> Result<()> {
        self.mul.validate(Self::NAME, "mul", 0.0, 100.0)?;
        check_probability(Self::NAME, "per_channel", self.per_channel)
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> Vec<f64> {
        sample_channels(rng, &self.mul, self.per_channel, s)
    }
    fn apply(&self, values: &Vec<f64>, mut s: Sample) -> Result<Sample> {
        let values = fit_channels(Self::NAME, values, &s.image)?;
        map_values(&mut s.image, &values, multiply_table, |x, m, _| {
            x * m as f32
        });
        Ok(s)
    }
}

/// Inverts pixels, `v → MAX − v`, with probability `p` per image (or per channel with
/// probability `per_channel`), as imgaug's `Invert`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invert {
    /// Probability of inverting (an image, or a channel when drawn per channel).
    #[serde(default = "one")]
    pub p: f64,
    /// Probability of deciding per channel instead of per image.
    #[serde(default = "zero")]
    pub per_channel: f64,
}

fn sample_flags(rng: &mut AugRng, p: f64, per_channel: f64, s: &Sample) -> Vec<bool> {
    let n = color_channels(s.image.channels());
    if chance(rng, per_channel) {
        (0..n).map(|_| chance(rng, p)).collect()
    } else {
        vec![chance(rng, p); n]
    }
}

crate::simd::kernel! {
    /// `255 − v` for every byte, 32 at a time with AVX2.
    fn not_bytes(data: &mut [u8]) ["avx2"] {
        data.iter_mut().for_each(|v| *v = !*v);
    }
}

/// Inverts the flagged colour channels of values at or above `threshold` (in the type's units;
/// 0 inverts everything).
fn invert_image(image: &mut Image, flags: &[bool], threshold: f64) {
    let values: Vec<f64> = flags.iter().map(|&f| if f { 1.0 } else { 0.0 }).collect();
    if values.iter().all(|&v| v == 0.0) {
        return;
    }
    if let Image::U8(b) = image
        && threshold <= 0.0
        && flags.iter().all(|&f| f)
        && b.channels() != 4
    {
        // The whole table is `255 − v`: a plain (vectorised) pass instead.
        not_bytes(b.data_mut());
        return;
    }
    // imgaug inverts `table[int(threshold):]`.
    let start = threshold.clamp(0.0, 256.0) as usize;
    map_values(
        image,
        &values,
        |on| {
            table(|i| {
                if on > 0.5 && i >= start {
                    255 - i as u8
                } else {
                    i as u8
                }
            })
        },
        |x, on, max| {
            if on > 0.5 && x as f64 >= threshold * max as f64 / 255.0 {
                max - x
            } else {
                x
            }
        },
    );
}

impl Op for Invert {
    const NAME: &'static str = "invert";
    /// Whether each colour channel is inverted.
    type Params = Vec<bool>;
    fn check(&self) -> Result<()> {
        check_probability(Self::NAME, "p", self.p)?;
        check_probability(Self::NAME, "per_channel", self.per_channel)
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> Vec<bool> {
        sample_flags(rng, self.p, self.per_channel, s)
    }
    fn apply(&self, flags: &Vec<bool>, mut s: Sample) -> Result<Sample> {
        let flags = fit_channels(Self::NAME, flags, &s.image)?;
        invert_image(&mut s.image, &flags, 0.0);
        Ok(s)
    }
}

/// Inverts the values at or above a threshold (imgaug's `Solarize`, PIL's `solarize`): on `u8`
/// `v ≥ int(threshold)` becomes `255 − v`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Solarize {
    /// Probability of solarizing (an image, or a channel when drawn per channel).
    #[serde(default = "one")]
    pub p: f64,
    /// Probability of deciding per channel instead of per image.
    #[serde(default = "zero")]
    pub per_channel: f64,
    /// The threshold in 0–255 units (imgaug's default `(64, 192)`; scaled for u16 and f32).
    #[serde(default = "Solarize::default_threshold")]
    pub threshold: Param,
}

impl Solarize {
    fn default_threshold() -> Param {
        Param::Range([64.0, 192.0])
    }
}

/// What [`Solarize`] draws.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SolarizeParams {
    /// Whether each colour channel is solarized.
    pub channels: Vec<bool>,
    /// The threshold, 0–255 units.
    pub threshold: f64,
}

impl Op for Solarize {
    const NAME: &'static str = "solarize";
    type Params = SolarizeParams;
    fn check(&self) -> Result<()> {
        check_probability(Self::NAME, "p", self.p)?;
        check_probability(Self::NAME, "per_channel", self.per_channel)?;
        self.threshold.validate(Self::NAME, "threshold", 0.0, 256.0)
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> SolarizeParams {
        let channels = sample_flags(rng, self.p, self.per_channel, s);
        let threshold = self.threshold.sample(rng).clamp(0.0, 256.0);
        SolarizeParams {
            channels,
            threshold,
        }
    }
    fn apply(&self, p: &SolarizeParams, mut s: Sample) -> Result<Sample> {
        let flags = fit_channels(Self::NAME, &p.channels, &s.image)?;
        invert_image(&mut s.image, &flags, p.threshold);
        Ok(s)
    }
}

/// Keeps the top `nb_bits` bits of every value (imgaug's `Posterize`, Albumentations'
/// `Posterize`): `v & !(2^(8−b) − 1)` on `u8`, the top bits of 16 on `u16`, the same steps as
/// `u8` on `f32`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Posterize {
    /// Bits kept, an integer in `[1, 8]` (a range draws every integer in it equally).
    #[serde(default = "Posterize::default_bits")]
    pub nb_bits: Param,
}

impl Posterize {
    fn default_bits() -> Param {
        Param::Range([1.0, 8.0])
    }
}

impl Op for Posterize {
    const NAME: &'static str = "posterize";
    /// The bits kept.
    type Params = u32;
    fn check(&self) -> Result<()> {
        self.nb_bits.validate(Self::NAME, "nb_bits", 1.0, 8.0)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> u32 {
        sample_int(&self.nb_bits, rng).clamp(1, 8) as u32
    }
    fn apply(&self, bits: &u32, mut s: Sample) -> Result<Sample> {
        if !(1..=8).contains(bits) {
            return Err(AugmentError::Replay(format!(
                "{}: {bits} bits recorded; expected 1 to 8",
                Self::NAME
            )));
        }
        let bits = *bits;
        match &mut s.image {
            Image::U8(b) => {
                let mask = !((1u16 << (8 - bits)) - 1) as u8;
                if b.channels() == 4 {
                    apply_luts(b, &[table(|i| i as u8 & mask)]);
                } else {
                    // The table is a bit mask: a plain (vectorised) pass instead.
                    b.data_mut().iter_mut().for_each(|v| *v &= mask);
                }
            }
            Image::U16(b) => {
                let mask = !((1u32 << (16 - bits)) - 1) as u16;
                let c = b.channels();
                let n = color_channels(c);
                for px in b.data_mut().chunks_exact_mut(c) {
                    px[..n].iter_mut().for_each(|v| *v &= mask);
                }
            }
            Image::F32(b) => {
                let step = (1u32 << (8 - bits)) as f32;
                let c = b.channels();
                let n = color_channels(c);
                for px in b.data_mut().chunks_exact_mut(c) {
                    for v in &mut px[..n] {
                        // The small offset keeps k/255 from landing just below its step.
                        let q = ((v.clamp(0.0, 1.0) * 255.0 + 1e-3) / step).floor() * step;
                        *v = q / 255.0;
                    }
                }
            }
        }
        Ok(s)
    }
}
