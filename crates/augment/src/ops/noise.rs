//! Per-pixel noise: imgaug's `AdditiveGaussianNoise`, `AdditiveLaplaceNoise` and
//! `SaltAndPepper`. Amounts are in 0–255 units whatever the pixel type (×257 for `u16`, /255
//! for `f32`); results saturate (`f32` to `[0, 1]`). The per-pixel values come from a seed drawn
//! with the other parameters, so a record replays exactly.

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::kernels::filter::FilterPixel;
use crate::param::check_probability;
use crate::{AugRng, ImageBuf, Op, Param, Result, Sample, with_image};

/// imgaug's `per_channel` (and similar switches): `true`/`false`, or the probability that it is
/// on for an image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Chance {
    /// Always on or always off.
    Always(bool),
    /// On for this fraction of the images.
    Probability(f64),
}

impl Default for Chance {
    fn default() -> Self {
        Chance::Always(false)
    }
}

impl Chance {
    /// A probability must lie in `[0, 1]`; errors name `op` and `field`.
    pub fn check(&self, op: &'static str, field: &'static str) -> Result<()> {
        match self {
            Chance::Always(_) => Ok(()),
            Chance::Probability(p) => check_probability(op, field, *p),
        }
    }
    /// Draws whether it is on for one image.
    pub fn sample(&self, rng: &mut AugRng) -> bool {
        match *self {
            Chance::Always(on) => on,
            Chance::Probability(p) if p > 0.0 => p >= 1.0 || rng.random_bool(p),
            Chance::Probability(_) => false,
        }
    }
}

/// The sampled parameters of additive noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseParams {
    /// Location (mean) in 0–255 units.
    pub loc: f64,
    /// Scale (standard deviation for Gaussian noise) in 0–255 units.
    pub scale: f64,
    /// One value per channel instead of one per pixel.
    pub per_channel: bool,
    /// Seed of the per-pixel values.
    pub seed: u64,
}

/// The sampled parameters of an element-wise replacement (salt and pepper, dropout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElementwiseParams {
    /// Probability that a pixel (or a channel value) is replaced.
    pub p: f64,
    /// Decide per channel value instead of per pixel.
    pub per_channel: bool,
    /// Seed of the per-pixel decisions.
    pub seed: u64,
}

/// A uniform `f32` in the open interval `(0, 1)`.
#[inline]
pub(crate) fn open01(rng: &mut AugRng) -> f32 {
    ((rng.next_u32() >> 9) as f32 + 0.5) * (1.0 / 8_388_608.0)
}

/// The `u32` threshold under which a uniform `u32` has probability `p`.
#[inline]
pub(crate) fn threshold(p: f64) -> u64 {
    (p.clamp(0.0, 1.0) * 4_294_967_296.0) as u64
}

/// Noise values drawn per batch: the random stream runs alone in one loop (the generator is
/// the cost) and the additions in another that the compiler vectorises.
const NOISE_BATCH: usize = 1024;

/// A pixel type whose batch of noise additions has a vectorised copy (`u8`, the common case).
pub(crate) trait NoisePixel: FilterPixel {
    /// `values[i] = store(values[i] + loc + scale · noise[i])`.
    fn add_scaled(values: &mut [Self], noise: &[f32], loc: f32, scale: f32) {
        add_scaled(values, noise, loc, scale);
    }
}

impl NoisePixel for u16 {}
impl NoisePixel for f32 {}
impl NoisePixel for u8 {
    fn add_scaled(values: &mut [u8], noise: &[f32], loc: f32, scale: f32) {
        add_scaled_u8(values, noise, loc, scale);
    }
}

#[inline(always)]
fn add_scaled<P: FilterPixel>(values: &mut [P], noise: &[f32], loc: f32, scale: f32) {
    let noise = &noise[..values.len()];
    for (v, n) in values.iter_mut().zip(noise) {
        *v = P::store(v.to_f32() + loc + scale * n);
    }
}

crate::simd::kernel! {
    fn add_scaled_u8(values: &mut [u8], noise: &[f32], loc: f32, scale: f32) ["avx2"] {
        add_scaled(values, noise, loc, scale)
    }
}

/// Adds `loc + scale · draw()` (0–255 units) per value or per pixel, in place.
fn add_noise<P: NoisePixel>(
    img: &mut ImageBuf<P>,
    p: &NoiseParams,
    mut draw: impl FnMut(&mut AugRng) -> f32,
) {
    let unit = P::MAX / 255.0;
    let (loc, scale) = (p.loc as f32 * unit, p.scale as f32 * unit);
    let mut rng = AugRng::seed_from_u64(p.seed);
    let c = img.channels();
    let data = img.data_mut();
    let mut noise = [0f32; NOISE_BATCH];
    if scale == 0.0 {
        data.iter_mut()
            .for_each(|v| *v = P::store(v.to_f32() + loc));
    } else if p.per_channel || c == 1 {
        for values in data.chunks_mut(NOISE_BATCH) {
            let noise = &mut noise[..values.len()];
            noise.iter_mut().for_each(|n| *n = draw(&mut rng));
            P::add_scaled(values, noise, loc, scale);
        }
    } else {
        for pixels in data.chunks_mut(NOISE_BATCH * c) {
            let noise = &mut noise[..pixels.len() / c];
            noise
                .iter_mut()
                .for_each(|n| *n = loc + scale * draw(&mut rng));
            for (px, n) in pixels.chunks_exact_mut(c).zip(noise.iter()) {
                px.iter_mut().for_each(|v| *v = P::store(v.to_f32() + n));
            }
        }
    }
}

fn check_noise(op: &'static str, loc: &Param, scale: &Param, per_channel: &Chance) -> Result<()> {
    loc.validate(op, "loc", -255.0, 255.0)?;
    scale.validate(op, "scale", 0.0, f64::INFINITY)?;
    per_channel.check(op, "per_channel")
}

fn sample_noise(loc: &Param, scale: &Param, per_channel: &Chance, rng: &mut AugRng) -> NoiseParams {
    let per_channel = per_channel.sample(rng);
    NoiseParams {
        loc: loc.sample(rng),
        scale: scale.sample(rng).max(0.0),
        per_channel,
        seed: rng.next_u64(),
    }
}

/// Adds Gaussian noise `N(loc, scale)` per pixel, or per channel value with `per_channel`
/// (imgaug's `AdditiveGaussianNoise`; `loc` and `scale` drawn per image, in 0–255 units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdditiveGaussianNoise {
    /// Mean of the noise, 0–255 units.
    pub loc: Param,
    /// Standard deviation of the noise (≥ 0), 0–255 units.
    pub scale: Param,
    /// Independent noise per channel (colour noise): a bool or the probability per image.
    pub per_channel: Chance,
}

impl Default for AdditiveGaussianNoise {
    fn default() -> Self {
        Self {
            loc: Param::Fixed(0.0),
            scale: Param::Range([0.0, 15.0]),
            per_channel: Chance::default(),
        }
    }
}

impl Op for AdditiveGaussianNoise {
    const NAME: &'static str = "additive_gaussian_noise";
    type Params = NoiseParams;
    fn check(&self) -> Result<()> {
        check_noise(Self::NAME, &self.loc, &self.scale, &self.per_channel)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> NoiseParams {
        sample_noise(&self.loc, &self.scale, &self.per_channel, rng)
    }
    fn apply(&self, p: &NoiseParams, mut s: Sample) -> Result<Sample> {
        let draw = |rng: &mut AugRng| rng.sample::<f32, _>(StandardNormal);
        with_image!(&mut s.image, b => add_noise(b, p, draw));
        Ok(s)
    }
}

/// Adds Laplace noise `Laplace(loc, scale)` per pixel, or per channel value with `per_channel`
/// (imgaug's `AdditiveLaplaceNoise`; heavier tails than Gaussian noise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdditiveLaplaceNoise {
    /// Location of the noise, 0–255 units.
    pub loc: Param,
    /// Scale `b` of the noise (≥ 0; standard deviation `√2·b`), 0–255 units.
    pub scale: Param,
    /// Independent noise per channel: a bool or the probability per image.
    pub per_channel: Chance,
}

impl Default for AdditiveLaplaceNoise {
    fn default() -> Self {
        Self {
            loc: Param::Fixed(0.0),
            scale: Param::Range([0.0, 15.0]),
            per_channel: Chance::default(),
        }
    }
}

impl Op for AdditiveLaplaceNoise {
    const NAME: &'static str = "additive_laplace_noise";
    type Params = NoiseParams;
    fn check(&self) -> Result<()> {
        check_noise(Self::NAME, &self.loc, &self.scale, &self.per_channel)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> NoiseParams {
        sample_noise(&self.loc, &self.scale, &self.per_channel, rng)
    }
    fn apply(&self, p: &NoiseParams, mut s: Sample) -> Result<Sample> {
        // Inverse CDF of Laplace(0, 1) on u ∈ (-1/2, 1/2).
        let draw = |rng: &mut AugRng| {
            let u = open01(rng) - 0.5;
            -u.signum() * (1.0 - 2.0 * u.abs()).ln()
        };
        with_image!(&mut s.image, b => add_noise(b, p, draw));
        Ok(s)
    }
}

/// Replaces a fraction `p` of the pixels (or channel values with `per_channel`) by
/// salt-and-pepper values: imgaug's `SaltAndPepper`, whose replacements are
/// `Beta(0.5, 0.5)·max`, mostly near black or white.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SaltAndPepper {
    /// Fraction replaced, in `[0, 1]`, drawn per image.
    pub p: Param,
    /// Decide per channel value: a bool or the probability per image.
    pub per_channel: Chance,
}

impl Default for SaltAndPepper {
    fn default() -> Self {
        Self {
            p: Param::Range([0.0, 0.03]),
            per_channel: Chance::default(),
        }
    }
}

/// Replaces values where a uniform `u32` falls under `p`: `replace(rng)` gives the new value
/// (0–1 of full scale), once per pixel unless `per_channel`.
pub(crate) fn replace_elementwise<P: FilterPixel>(
    img: &mut ImageBuf<P>,
    p: &ElementwiseParams,
    replace: impl Fn(&mut AugRng) -> f32,
) {
    if p.p <= 0.0 {
        return;
    }
    let thr = threshold(p.p);
    let mut rng = AugRng::seed_from_u64(p.seed);
    let c = img.channels();
    let data = img.data_mut();
    if p.per_channel || c == 1 {
        for v in data.iter_mut() {
            if u64::from(rng.next_u32()) < thr {
                *v = P::store(replace(&mut rng) * P::MAX);
            }
        }
    } else {
        for px in data.chunks_exact_mut(c) {
            if u64::from(rng.next_u32()) < thr {
                let r = P::store(replace(&mut rng) * P::MAX);
                px.fill(r);
            }
        }
    }
}

pub(crate) fn sample_elementwise(
    p: &Param,
    per_channel: &Chance,
    rng: &mut AugRng,
) -> ElementwiseParams {
    let per_channel = per_channel.sample(rng);
    ElementwiseParams {
        p: p.sample(rng).clamp(0.0, 1.0),
        per_channel,
        seed: rng.next_u64(),
    }
}

impl Op for SaltAndPepper {
    const NAME: &'static str = "salt_and_pepper";
    type Params = ElementwiseParams;
    fn check(&self) -> Result<()> {
        self.p.validate(Self::NAME, "p", 0.0, 1.0)?;
        self.per_channel.check(Self::NAME, "per_channel")
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> ElementwiseParams {
        sample_elementwise(&self.p, &self.per_channel, rng)
    }
    fn apply(&self, p: &ElementwiseParams, mut s: Sample) -> Result<Sample> {
        // Beta(1/2, 1/2) is the arcsine law: sin²(πU/2).
        let beta = |rng: &mut AugRng| {
            let t = (open01(rng) * std::f32::consts::FRAC_PI_2).sin();
            t * t
        };
        with_image!(&mut s.image, b => replace_elementwise(b, p, beta));
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BBox, Image, Keypoint};

    fn gray(w: usize, h: usize, c: usize) -> Sample {
        Sample::new(ImageBuf::<u8>::filled(w, h, c, 128).unwrap())
    }

    fn u8_data(s: &Sample) -> &[u8] {
        match &s.image {
            Image::U8(b) => b.data(),
            _ => unreachable!(),
        }
    }

    fn mean_std(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
        let n = v.clone().count() as f64;
        let mean = v.clone().sum::<f64>() / n;
        let var = v.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    fn params(loc: f64, scale: f64, per_channel: bool) -> NoiseParams {
        NoiseParams {
            loc,
            scale,
            per_channel,
            seed: 11,
        }
    }

    #[test]
    fn gaussian_noise_has_the_requested_mean_and_std_on_flat_gray() {
        let out = AdditiveGaussianNoise::default()
            .apply(&params(5.0, 10.0, false), gray(200, 200, 1))
            .unwrap();
        let (mean, std) = mean_std(u8_data(&out).iter().map(|&v| v as f64 - 128.0));
        assert!((mean - 5.0).abs() < 0.2, "mean {mean}");
        assert!((std - 10.0).abs() < 0.3, "std {std}");
    }

    #[test]
    fn laplace_noise_has_std_sqrt2_times_scale() {
        let out = AdditiveLaplaceNoise::default()
            .apply(&params(0.0, 8.0, true), gray(200, 200, 3))
            .unwrap();
        let (mean, std) = mean_std(u8_data(&out).iter().map(|&v| v as f64 - 128.0));
        assert!(mean.abs() < 0.2, "mean {mean}");
        assert!((std - 8.0 * 2f64.sqrt()).abs() < 0.4, "std {std}");
    }

    #[test]
    fn noise_is_scaled_to_u16_and_f32() {
        let s = Sample::new(ImageBuf::<u16>::filled(150, 150, 1, 30000).unwrap());
        let out = AdditiveGaussianNoise::default()
            .apply(&params(0.0, 10.0, false), s)
            .unwrap();
        let Image::U16(b) = &out.image else { panic!() };
        let (_, std) = mean_std(b.data().iter().map(|&v| v as f64));
        assert!((std / 2570.0 - 1.0).abs() < 0.04, "u16 std {std}");
        let s = Sample::new(ImageBuf::<f32>::filled(150, 150, 4, 0.5).unwrap());
        let out = AdditiveGaussianNoise::default()
            .apply(&params(0.0, 10.0, true), s)
            .unwrap();
        let Image::F32(b) = &out.image else { panic!() };
        let (_, std) = mean_std(b.data().iter().map(|&v| v as f64));
        assert!((std * 255.0 / 10.0 - 1.0).abs() < 0.04, "f32 std {std}");
        let s = Sample::new(ImageBuf::<f32>::filled(4, 4, 1, 0.9).unwrap());
        let out = AdditiveGaussianNoise::default()
            .apply(&params(100.0, 0.0, false), s)
            .unwrap();
        let Image::F32(b) = &out.image else { panic!() };
        assert!(b.data().iter().all(|&v| v == 1.0), "saturates at 1");
    }

    #[test]
    fn per_channel_noise_differs_between_channels_and_grey_noise_does_not() {
        let op = AdditiveGaussianNoise::default();
        let grey = op
            .apply(&params(0.0, 20.0, false), gray(32, 32, 3))
            .unwrap();
        assert!(
            u8_data(&grey)
                .chunks(3)
                .all(|p| p[0] == p[1] && p[1] == p[2])
        );
        let colour = op.apply(&params(0.0, 20.0, true), gray(32, 32, 3)).unwrap();
        let differing = u8_data(&colour).chunks(3).filter(|p| p[0] != p[1]).count();
        assert!(differing > 32 * 32 * 3 / 4, "{differing}");
        let four = op.apply(&params(0.0, 20.0, false), gray(8, 8, 4)).unwrap();
        assert!(
            u8_data(&four)
                .chunks(4)
                .all(|p| p.iter().all(|v| *v == p[0]))
        );
    }

    #[test]
    fn salt_and_pepper_replaces_about_p_with_near_black_or_white() {
        let p = ElementwiseParams {
            p: 0.1,
            per_channel: false,
            seed: 3,
        };
        let out = SaltAndPepper::default()
            .apply(&p, gray(200, 100, 3))
            .unwrap();
        let changed: Vec<u8> = u8_data(&out)
            .chunks(3)
            .filter(|px| px[0] != 128)
            .map(|px| {
                assert!(px[0] == px[1] && px[1] == px[2]);
                px[0]
            })
            .collect();
        let frac = changed.len() as f64 / 20000.0;
        assert!((frac - 0.1).abs() < 0.01, "{frac}");
        let extreme = changed.iter().filter(|&&v| !(64..192).contains(&v)).count();
        assert!(extreme as f64 > 0.6 * changed.len() as f64);
    }

    #[test]
    fn invalid_noise_options_are_refused_with_their_value() {
        let err = AdditiveGaussianNoise {
            scale: Param::Fixed(-2.0),
            ..Default::default()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("`scale` = -2"), "{err}");
        let err = SaltAndPepper {
            p: Param::Range([0.5, 0.1]),
            ..Default::default()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("a ≤ b"), "{err}");
        let err = AdditiveLaplaceNoise {
            per_channel: Chance::Probability(1.5),
            ..Default::default()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("per_channel") && err.contains("1.5"), "{err}");
    }

    #[test]
    fn per_channel_parses_as_a_bool_or_a_probability() {
        let op: AdditiveGaussianNoise =
            serde_json::from_str(r#"{"scale": [10, 50], "per_channel": true}"#).unwrap();
        assert_eq!(op.per_channel, Chance::Always(true));
        let op: SaltAndPepper = serde_json::from_str(r#"{"per_channel": 0.5}"#).unwrap();
        assert_eq!(op.per_channel, Chance::Probability(0.5));
        assert!(serde_json::from_str::<SaltAndPepper>(r#"{"amount": 0.5}"#).is_err());
    }

    #[test]
    fn noise_leaves_masks_boxes_and_keypoints_alone_and_replays() {
        let s = gray(16, 16, 3)
            .with_mask(ImageBuf::<u8>::filled(16, 16, 1, 2).unwrap())
            .with_heatmap(ImageBuf::<f32>::filled(16, 16, 1, 0.5).unwrap())
            .with_boxes([BBox {
                x1: 1.0,
                y1: 1.0,
                x2: 5.0,
                y2: 6.0,
                label: 1,
            }])
            .with_keypoints([Keypoint { x: 2.0, y: 3.0 }]);
        let ops: Vec<Box<dyn crate::Augmenter>> = vec![
            Box::new(AdditiveGaussianNoise::default()),
            Box::new(AdditiveLaplaceNoise::default()),
            Box::new(SaltAndPepper::default()),
        ];
        let mut rng = AugRng::seed_from_u64(2);
        for op in ops {
            let (out, record) = op.augment(s.clone(), &mut rng).unwrap();
            assert_eq!(
                (&out.masks, &out.heatmaps, &out.boxes, &out.keypoints),
                (&s.masks, &s.heatmaps, &s.boxes, &s.keypoints)
            );
            assert_eq!(op.replay(s.clone(), &record).unwrap(), out, "{}", op.name());
        }
    }
}
