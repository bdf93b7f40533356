//! imgaug's `ElasticTransformation` on the shared sampler.

use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use super::affine::check_cval;
use crate::kernels::warp::{
    Fill, Interpolation, Mapping, border_index, map_targets, warp_sample_pixels,
};
use crate::{AugRng, Op, Param, Result, Sample};

fn zero() -> Param {
    Param::Fixed(0.0)
}

/// Blurs a `w × h` plane with a Gaussian of `sigma` (kernel size as imgaug's
/// `_compute_gaussian_blur_ksize`, reflect-101 borders), separably.
fn blur_plane(data: &mut [f32], w: usize, h: usize, sigma: f64) {
    if sigma < 1e-3 {
        return;
    }
    let k = (if sigma < 3.0 {
        3.3
    } else if sigma < 5.0 {
        2.9
    } else {
        2.6
    } * sigma)
        .max(5.0) as usize;
    let k = k | 1;
    let r = (k / 2) as i64;
    let mut kernel: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let sum: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|v| *v /= sum);
    let mut tmp = vec![0f32; w * h];
    let cols: Vec<usize> = (-r..w as i64 + r)
        .map(|x| border_index(x, w, Fill::Reflect).unwrap_or(0))
        .collect();
    let mut padded = vec![0f32; cols.len()];
    for (row, out) in data.chunks_exact(w).zip(tmp.chunks_exact_mut(w)) {
        for (p, &c) in padded.iter_mut().zip(&cols) {
            *p = row[c];
        }
        // Tap by tap over the whole row (vectorises; a per-pixel dot product does not).
        for (i, kv) in kernel.iter().enumerate() {
            for (o, v) in out.iter_mut().zip(&padded[i..i + w]) {
                *o += kv * v;
            }
        }
    }
    let mut acc = vec![0f32; w];
    for y in 0..h {
        acc.fill(0.0);
        for (i, kv) in kernel.iter().enumerate() {
            let sy = border_index(y as i64 + i as i64 - r, h, Fill::Reflect).unwrap_or(0);
            for (a, t) in acc.iter_mut().zip(&tmp[sy * w..(sy + 1) * w]) {
                *a += kv * t;
            }
        }
        data[y * w..(y + 1) * w].copy_from_slice(&acc);
    }
}

/// imgaug's `ElasticTransformation`: two displacement fields of uniform(-1, 1) noise,
/// Gaussian-blurred with `sigma` and scaled by `alpha`; output pixel `p` reads `p - d(p)`.
/// Keypoints (and box outlines) move to the `q` with `q - d(q) = p`, found by fixed-point
/// iteration from `p + d(p)` (imgaug takes one step, `p + d(p)`): an approximation where the
/// field is steep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElasticTransformation {
    /// Displacement strength in pixels.
    #[serde(default = "default_alpha")]
    pub alpha: Param,
    /// Smoothness: the blur's standard deviation in pixels.
    #[serde(default = "default_sigma")]
    pub sigma: Param,
    /// Interpolation of the image.
    #[serde(default)]
    pub interpolation: Interpolation,
    /// Border handling.
    #[serde(default, alias = "fill")]
    pub mode: Fill,
    /// Constant fill on the 0–255 scale.
    #[serde(default = "zero")]
    pub cval: Param,
}

fn default_alpha() -> Param {
    Param::Range([0.0, 40.0])
}
fn default_sigma() -> Param {
    Param::Range([4.0, 8.0])
}

/// What an [`ElasticTransformation`] drew; the noise comes from `seed`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ElasticParams {
    /// Strength.
    pub alpha: f64,
    /// Smoothness.
    pub sigma: f64,
    /// Seed of the noise fields.
    pub seed: u64,
    /// Fill on the 0–255 scale.
    pub cval: f64,
}

/// The displacement fields of an elastic transform, `w × h` each.
fn elastic_fields(p: &ElasticParams, w: usize, h: usize) -> (Vec<f32>, Vec<f32>) {
    let k = (if p.sigma < 3.0 {
        3.3
    } else if p.sigma < 5.0 {
        2.9
    } else {
        2.6
    } * p.sigma)
        .max(5.0) as usize
        | 1;
    let (pw, ph) = (w + 2 * k, h + 2 * k);
    let mut rng = AugRng::seed_from_u64(p.seed);
    let mut field = || {
        let mut f: Vec<f32> = (0..pw * ph)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        blur_plane(&mut f, pw, ph, p.sigma);
        let a = p.alpha as f32;
        let mut out = Vec::with_capacity(w * h);
        for y in k..k + h {
            out.extend(f[y * pw + k..y * pw + k + w].iter().map(|v| v * a));
        }
        out
    };
    let dx = field();
    let dy = field();
    (dx, dy)
}

/// Bilinear sample of a field at `(x, y)` (pixel indices, clamped to the field).
fn field_at(f: &[f32], w: usize, h: usize, x: f64, y: f64) -> f64 {
    let x = x.clamp(0.0, (w - 1) as f64);
    let y = y.clamp(0.0, (h - 1) as f64);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f64, y - y0 as f64);
    let v = |xx: usize, yy: usize| f[yy * w + xx] as f64;
    (v(x0, y0) * (1.0 - fx) + v(x1, y0) * fx) * (1.0 - fy)
        + (v(x0, y1) * (1.0 - fx) + v(x1, y1) * fx) * fy
}

impl Op for ElasticTransformation {
    const NAME: &'static str = "elastic_transformation";
    type Params = ElasticParams;
    fn check(&self) -> Result<()> {
        self.alpha.validate(Self::NAME, "alpha", 0.0, 1e4)?;
        self.sigma.validate(Self::NAME, "sigma", 0.0, 1e3)?;
        check_cval(Self::NAME, "cval", &self.cval)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> ElasticParams {
        ElasticParams {
            alpha: self.alpha.sample(rng).max(0.0),
            sigma: self.sigma.sample(rng).max(0.0),
            seed: rng.random(),
            cval: self.cval.sample(rng),
        }
    }
    fn apply(&self, p: &ElasticParams, s: Sample) -> Result<Sample> {
        let (w, h) = (s.image.width(), s.image.height());
        let (dx, dy) = elastic_fields(p, w, h);
        let mapping = Mapping::Field { dx: &dx, dy: &dy };
        let mut s = warp_sample_pixels(s, mapping, (w, h), self.interpolation, self.mode, p.cval);
        map_targets(&mut s, 8, |x, y| {
            let (px, py) = (x - 0.5, y - 0.5);
            let (mut qx, mut qy) = (px, py);
            for _ in 0..6 {
                qx = px + field_at(&dx, w, h, qx, qy);
                qy = py + field_at(&dy, w, h, qx, qy);
            }
            (qx + 0.5, qy + 0.5)
        });
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elastic_fields_are_seeded_and_scaled_by_alpha() {
        let p = ElasticParams {
            alpha: 10.0,
            sigma: 3.0,
            seed: 9,
            cval: 0.0,
        };
        let (a, _) = elastic_fields(&p, 20, 10);
        let (b, _) = elastic_fields(&p, 20, 10);
        assert_eq!(a, b);
        let (c, _) = elastic_fields(&ElasticParams { alpha: 20.0, ..p }, 20, 10);
        for (x, y) in a.iter().zip(&c) {
            assert!((2.0 * x - y).abs() < 1e-4);
        }
        assert!(a.iter().all(|v| v.abs() <= 10.0));
    }

    #[test]
    fn elastic_options_are_checked() {
        let e: ElasticTransformation = serde_json::from_str(r#"{"alpha": -1}"#).unwrap();
        assert!(e.check().unwrap_err().to_string().contains("`alpha` = -1"));
    }
}
