//! Non-affine warps: imgaug's `PerspectiveTransform` and Albumentations' `GridDistortion`,
//! on the shared sampler.

use rand_distr::Distribution;
use serde::{Deserialize, Serialize};

use super::affine::check_cval;
use crate::kernels::warp::{
    Fill, Interpolation, Mapping, invert3, map_targets, warp_sample_pixels,
};
use crate::{AugRng, AugmentError, Op, Param, Result, Sample};

fn zero() -> Param {
    Param::Fixed(0.0)
}
fn yes() -> bool {
    true
}

/// The homography taking `src[i]` to `dst[i]` (`cv2.getPerspectiveTransform`), row-major 3×3;
/// `None` for degenerate points.
pub(crate) fn perspective_from_points(
    src: &[[f64; 2]; 4],
    dst: &[[f64; 2]; 4],
) -> Option<[f64; 9]> {
    // 8 equations in (a, b, c, d, e, f, g, h), solved by Gaussian elimination.
    let mut a = [[0.0f64; 9]; 8];
    for i in 0..4 {
        let ([x, y], [u, v]) = (src[i], dst[i]);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let p: Vec<f64> = (0..8).map(|i| a[i][8] / a[i][i]).collect();
    Some([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], 1.0])
}

fn project(m: &[f64; 9], x: f64, y: f64) -> (f64, f64) {
    let w = m[6] * x + m[7] * y + m[8];
    let w = if w != 0.0 { 1.0 / w } else { 0.0 };
    (
        (m[0] * x + m[1] * y + m[2]) * w,
        (m[3] * x + m[4] * y + m[5]) * w,
    )
}

/// imgaug's `PerspectiveTransform`: each corner moves inwards by `|N(0, scale)| mod 1` of the
/// width/height (scale drawn per image), and the quadrilateral they span is warped to a
/// rectangle (at the input size with `keep_size`, else at the quadrilateral's size).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerspectiveTransform {
    /// Standard deviation of the corner jitter, as a fraction of the size.
    #[serde(default = "default_perspective_scale")]
    pub scale: Param,
    /// Output at the input size (one warp, not warp-then-resize).
    #[serde(default = "yes")]
    pub keep_size: bool,
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

fn default_perspective_scale() -> Param {
    Param::Range([0.0, 0.06])
}

/// What a [`PerspectiveTransform`] drew: the source corners as fractions of the size, in the
/// order top-left, top-right, bottom-right, bottom-left (before imgaug's reordering).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PerspectiveParams {
    /// Corner positions, `[x / w, y / h]`.
    pub points: [[f64; 2]; 4],
    /// Fill on the 0–255 scale.
    pub cval: f64,
}

impl PerspectiveTransform {
    /// The forward homography in continuous coordinates and the output size.
    fn matrix(&self, p: &PerspectiveParams, w: usize, h: usize) -> ([f64; 9], usize, usize) {
        let pts = p.points.map(|[x, y]| [x * w as f64, y * h as f64]);
        // imgaug's _order_points: tl/br by min/max of x + y, tr/bl by min/max of y - x.
        let by = |f: fn(&[f64; 2]) -> f64, max: bool| {
            let cmp = |a: &&[f64; 2], b: &&[f64; 2]| f(a).total_cmp(&f(b));
            *if max {
                pts.iter().rev().max_by(cmp)
            } else {
                pts.iter().min_by(cmp)
            }
            .unwrap_or(&pts[0])
        };
        let mut q = [
            by(|p| p[0] + p[1], false),
            by(|p| p[1] - p[0], false),
            by(|p| p[0] + p[1], true),
            by(|p| p[1] - p[0], true),
        ];
        let dist =
            |a: [f64; 2], b: [f64; 2]| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
        let (mut max_w, mut max_h);
        loop {
            let (top, bottom) = (dist(q[1], q[0]), dist(q[2], q[3]));
            max_w = top.max(bottom) as usize;
            let min_w = top.min(bottom) as usize;
            if min_w >= 2 {
                break;
            }
            let step = (2 - min_w) as f64 / 2.0;
            q[0][0] -= step;
            q[1][0] += step;
            q[3][0] -= step;
            q[2][0] += step;
        }
        loop {
            let (right, left) = (dist(q[1], q[2]), dist(q[0], q[3]));
            max_h = right.max(left) as usize;
            let min_h = right.min(left) as usize;
            if min_h >= 2 {
                break;
            }
            let step = (2 - min_h) as f64 / 2.0;
            q[0][1] -= step;
            q[1][1] -= step;
            q[3][1] += step;
            q[2][1] += step;
        }
        let (ow, oh) = if self.keep_size {
            (w, h)
        } else {
            (max_w, max_h)
        };
        let dst = [
            [0.0, 0.0],
            [ow as f64, 0.0],
            [ow as f64, oh as f64],
            [0.0, oh as f64],
        ];
        let m = perspective_from_points(&q, &dst)
            .unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        (m, ow, oh)
    }
}

impl Op for PerspectiveTransform {
    const NAME: &'static str = "perspective_transform";
    type Params = PerspectiveParams;
    fn check(&self) -> Result<()> {
        self.scale.validate(Self::NAME, "scale", 0.0, 1.0)?;
        check_cval(Self::NAME, "cval", &self.cval)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> PerspectiveParams {
        let sigma = self.scale.sample(rng).max(0.0);
        let normal = rand_distr::Normal::new(0.0, sigma).ok();
        let mut j = || normal.map_or(0.0, |n| n.sample(rng)).abs() % 1.0;
        let mut points = [[0.0; 2]; 4];
        for p in &mut points {
            *p = [j(), j()];
        }
        points[1][0] = 1.0 - points[1][0];
        points[2][0] = 1.0 - points[2][0];
        points[2][1] = 1.0 - points[2][1];
        points[3][1] = 1.0 - points[3][1];
        PerspectiveParams {
            points,
            cval: self.cval.sample(rng),
        }
    }
    fn apply(&self, p: &PerspectiveParams, s: Sample) -> Result<Sample> {
        let (w, h) = (s.image.width(), s.image.height());
        let (m, ow, oh) = self.matrix(p, w, h);
        // On pixel indices: T(-0.5) · M · T(0.5), inverted for sampling.
        let t = |dx: f64| [1.0, 0.0, dx, 0.0, 1.0, dx, 0.0, 0.0, 1.0];
        let mul = |a: &[f64; 9], b: &[f64; 9]| {
            let mut r = [0.0; 9];
            for i in 0..3 {
                for j in 0..3 {
                    r[i * 3 + j] = (0..3).map(|k| a[i * 3 + k] * b[k * 3 + j]).sum();
                }
            }
            r
        };
        let m_idx = mul(&mul(&t(-0.5), &m), &t(0.5));
        let mut s = warp_sample_pixels(
            s,
            Mapping::Perspective(invert3(&m_idx)),
            (ow, oh),
            self.interpolation,
            self.mode,
            p.cval,
        );
        map_targets(&mut s, 0, |x, y| project(&m, x, y));
        Ok(s)
    }
}

/// Albumentations' `GridDistortion`: the image is cut into `num_steps` bands per axis whose
/// widths are scaled by `1 + distort_limit` draws (normalised to the image size), giving a
/// separable, monotone source map. Boxes and keypoints move by its exact inverse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridDistortion {
    /// Bands per axis (≥ 1).
    #[serde(default = "default_steps")]
    pub num_steps: usize,
    /// Range of the relative band-size change, in `[-1, 1]`.
    #[serde(default = "default_distort")]
    pub distort_limit: Param,
    /// Keep the distorted grid inside the image (Albumentations' `normalized`).
    #[serde(default = "yes")]
    pub normalized: bool,
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

fn default_steps() -> usize {
    5
}
fn default_distort() -> Param {
    Param::Range([-0.3, 0.3])
}

/// What a [`GridDistortion`] drew: `num_steps + 1` relative band sizes per axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GridParams {
    /// Horizontal band sizes.
    pub steps_x: Vec<f64>,
    /// Vertical band sizes.
    pub steps_y: Vec<f64>,
    /// Fill on the 0–255 scale.
    pub cval: f64,
}

/// Albumentations' `generate_grid` along one axis (after `normalize_grid_distortion_steps`):
/// the source coordinate of each output index.
fn grid_axis(size: usize, num_steps: usize, steps: &[f64], normalized: bool) -> Vec<f32> {
    let step = size / num_steps;
    let mut steps = steps.to_vec();
    if normalized {
        let last = (size.min((num_steps + 1) * step) - num_steps * step) as f64;
        if let Some(l) = steps.last_mut() {
            *l *= last / step as f64;
        }
        let t = size as f64 / (size / num_steps) as f64;
        let sum: f64 = steps.iter().sum();
        if sum > 0.0 {
            steps.iter_mut().for_each(|v| *v *= t / sum);
        }
    }
    let mut out = vec![0f32; size];
    let mut prev = 0.0f64;
    for (i, s) in steps.iter().enumerate() {
        let start = (i * step).min(size);
        let end = (i * step + step).min(size);
        let cur = prev + step as f64 * s;
        let n = end.saturating_sub(start);
        for (j, o) in out[start..end].iter_mut().enumerate() {
            // np.linspace(prev, cur, n): the last value is exactly `cur`.
            *o = if j + 1 == n {
                cur
            } else {
                prev + (cur - prev) * j as f64 / (n - 1).max(1) as f64
            } as f32;
        }
        prev = cur;
    }
    out
}

/// The output position whose source is `v` on a non-decreasing axis map (linear between
/// samples, slope 1 beyond the ends).
fn invert_axis(map: &[f32], v: f64) -> f64 {
    let n = map.len();
    if v <= map[0] as f64 || n == 1 {
        return v - map[0] as f64;
    }
    if v >= map[n - 1] as f64 {
        return (n - 1) as f64 + v - map[n - 1] as f64;
    }
    let i = map.partition_point(|&m| (m as f64) <= v).clamp(1, n - 1);
    let (a, b) = (map[i - 1] as f64, map[i] as f64);
    (i - 1) as f64 + if b > a { (v - a) / (b - a) } else { 0.0 }
}

impl Op for GridDistortion {
    const NAME: &'static str = "grid_distortion";
    type Params = GridParams;
    fn check(&self) -> Result<()> {
        if self.num_steps == 0 {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "num_steps",
                value: "0".into(),
                expected: "at least 1".into(),
            });
        }
        self.distort_limit
            .validate(Self::NAME, "distort_limit", -1.0, 1.0)?;
        check_cval(Self::NAME, "cval", &self.cval)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> GridParams {
        let n = self.num_steps + 1;
        let steps_x = (0..n)
            .map(|_| 1.0 + self.distort_limit.sample(rng))
            .collect();
        let steps_y = (0..n)
            .map(|_| 1.0 + self.distort_limit.sample(rng))
            .collect();
        GridParams {
            steps_x,
            steps_y,
            cval: self.cval.sample(rng),
        }
    }
    fn apply(&self, p: &GridParams, s: Sample) -> Result<Sample> {
        let (w, h) = (s.image.width(), s.image.height());
        if w < self.num_steps || h < self.num_steps {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "num_steps",
                value: self.num_steps.to_string(),
                expected: format!("at most the image's sides ({w}×{h} image)"),
            });
        }
        let xs = grid_axis(w, self.num_steps, &p.steps_x, self.normalized);
        let ys = grid_axis(h, self.num_steps, &p.steps_y, self.normalized);
        let mapping = Mapping::Separable { xs: &xs, ys: &ys };
        let mut s = warp_sample_pixels(s, mapping, (w, h), self.interpolation, self.mode, p.cval);
        map_targets(&mut s, 0, |x, y| {
            (
                invert_axis(&xs, x - 0.5) + 0.5,
                invert_axis(&ys, y - 0.5) + 0.5,
            )
        });
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perspective_from_points_maps_the_corners() {
        let src = [[1.0, 2.0], [30.0, 0.5], [33.0, 25.0], [-1.0, 20.0]];
        let dst = [[0.0, 0.0], [32.0, 0.0], [32.0, 24.0], [0.0, 24.0]];
        let m = perspective_from_points(&src, &dst).unwrap();
        for (s, d) in src.iter().zip(&dst) {
            let (x, y) = project(&m, s[0], s[1]);
            assert!((x - d[0]).abs() < 1e-9 && (y - d[1]).abs() < 1e-9);
        }
        assert!(perspective_from_points(&[[0.0; 2]; 4], &dst).is_none());
    }

    #[test]
    fn grid_axis_is_albumentations_generate_grid() {
        // Undistorted steps on a size divisible by num_steps: the identity, ending at `size`.
        let xs = grid_axis(10, 5, &[1.0; 6], true);
        let want: Vec<f32> = vec![0.0, 2.0, 2.0, 4.0, 4.0, 6.0, 6.0, 8.0, 8.0, 10.0];
        assert_eq!(xs, want);
        for v in [0.0, 1.0, 3.5, 9.9] {
            let x = invert_axis(&xs, v);
            let i = x.floor() as usize;
            let back = xs[i] as f64 + (xs[(i + 1).min(9)] - xs[i]) as f64 * (x - i as f64);
            assert!((back - v).abs() < 1e-6, "{v} -> {x} -> {back}");
        }
    }

    #[test]
    fn distortion_options_are_checked() {
        let g = GridDistortion {
            num_steps: 0,
            distort_limit: Param::Range([-0.3, 0.3]),
            normalized: true,
            interpolation: Interpolation::Bilinear,
            mode: Fill::Constant,
            cval: Param::Fixed(0.0),
        };
        assert!(
            g.check()
                .unwrap_err()
                .to_string()
                .contains("`num_steps` = 0")
        );
        let g = GridDistortion {
            num_steps: 5,
            distort_limit: Param::Range([-1.5, 0.3]),
            ..g
        };
        assert!(g.check().is_err());
        let p: PerspectiveTransform = serde_json::from_str(r#"{"scale": [0.1, 0.05]}"#).unwrap();
        assert!(p.check().unwrap_err().to_string().contains("a ≤ b"));
    }
}
