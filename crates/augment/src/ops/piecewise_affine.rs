//! imgaug's `PiecewiseAffine`: a regular grid of control points, each moved by Gaussian
//! jitter, and one affine map per triangle of the grid between them.
//!
//! As imgaug 0.4: `nb_rows × nb_cols` points at `linspace(0, h, nb_rows) × linspace(0, w,
//! nb_cols)` (pixel-index coordinates), jitter `N(0, scale)` per point and axis, relative to
//! the image's height and width unless `absolute_scale`, the moved points clipped into the
//! image, and output pixel `p` read from the moved position of `p` (skimage's `warp` with the
//! transform estimated from the grid to the moved grid). Sampling is the shared warp core
//! (OpenCV's `remap` arithmetic, any border mode), masks nearest, heatmaps bilinear.
//!
//! **Where it differs from imgaug**: skimage triangulates the grid with qhull's Delaunay, which
//! splits each square cell along a diagonal of its own choosing (the four corners are
//! cocircular); here every cell is split from its top-right to its bottom-left corner. Grid
//! points map identically; inside a cell the two splits give different (equally valid) maps.
//! imgaug moves keypoints through distance maps; here each keypoint goes through the inverse
//! affine of the moved triangle that holds it, exactly.

use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::affine::check_cval;
use crate::kernels::filter::{sample_int, validate_int};
use crate::kernels::warp::{Fill, Interpolation, Mapping, map_targets, warp_sample_pixels};
use crate::{AugRng, AugmentError, Op, Param, Result, Sample};

/// Moves a grid of control points by Gaussian jitter and warps the image piecewise affinely
/// between them (imgaug's `PiecewiseAffine`; the module docs say how it differs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiecewiseAffine {
    /// Standard deviation of the jitter, a fraction of the image's height (y) and width (x),
    /// or pixels with `absolute_scale`.
    #[serde(default = "PiecewiseAffine::default_scale")]
    pub scale: Param,
    /// Rows of control points (whole, ≥ 2).
    #[serde(default = "PiecewiseAffine::default_grid")]
    pub nb_rows: Param,
    /// Columns of control points (whole, ≥ 2).
    #[serde(default = "PiecewiseAffine::default_grid")]
    pub nb_cols: Param,
    /// How the image is sampled (masks are always nearest).
    #[serde(default)]
    pub interpolation: Interpolation,
    /// What is read outside the image.
    #[serde(default, alias = "fill")]
    pub mode: Fill,
    /// The constant border, 0–255 units.
    #[serde(default = "PiecewiseAffine::default_cval")]
    pub cval: Param,
    /// `scale` in pixels instead of fractions of the image size.
    #[serde(default)]
    pub absolute_scale: bool,
}

impl Default for PiecewiseAffine {
    fn default() -> Self {
        Self {
            scale: Self::default_scale(),
            nb_rows: Self::default_grid(),
            nb_cols: Self::default_grid(),
            interpolation: Interpolation::Bilinear,
            mode: Fill::Constant,
            cval: Self::default_cval(),
            absolute_scale: false,
        }
    }
}

impl PiecewiseAffine {
    fn default_scale() -> Param {
        Param::Range([0.0, 0.04])
    }
    fn default_grid() -> Param {
        Param::Range([2.0, 4.0])
    }
    fn default_cval() -> Param {
        Param::Fixed(0.0)
    }
}

/// What a [`PiecewiseAffine`] drew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiecewiseParams {
    /// Rows of control points.
    pub rows: usize,
    /// Columns of control points.
    pub cols: usize,
    /// Per point, row-major: the `(x, y)` jitter in `scale` units (fractions of the image
    /// size, or pixels with `absolute_scale`).
    pub jitter: Vec<[f64; 2]>,
    /// The constant border.
    pub cval: f64,
}

/// The affine `[a, b, c, d, e, f]` taking the triangle `from` to `to`: `(a x + b y + c,
/// d x + e y + f)`; `None` for a degenerate `from`.
fn triangle_affine(from: [[f64; 2]; 3], to: [[f64; 2]; 3]) -> Option<[f64; 6]> {
    let [[x0, y0], [x1, y1], [x2, y2]] = from;
    let det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
    if det.abs() < 1e-12 {
        return None;
    }
    // Solve for each output coordinate with Cramer's rule on the edge vectors.
    let solve = |v0: f64, v1: f64, v2: f64| {
        let a = ((v1 - v0) * (y2 - y0) - (v2 - v0) * (y1 - y0)) / det;
        let b = ((x1 - x0) * (v2 - v0) - (x2 - x0) * (v1 - v0)) / det;
        [a, b, v0 - a * x0 - b * y0]
    };
    let [a, b, c] = solve(to[0][0], to[1][0], to[2][0]);
    let [d, e, f] = solve(to[0][1], to[1][1], to[2][1]);
    Some([a, b, c, d, e, f])
}

fn apply_affine(m: &[f64; 6], x: f64, y: f64) -> (f64, f64) {
    (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
}

/// The smallest barycentric coordinate of `p` in triangle `t` (≥ 0 inside).
fn inside_margin(t: &[[f64; 2]; 3], (px, py): (f64, f64)) -> f64 {
    let [[x0, y0], [x1, y1], [x2, y2]] = *t;
    let det = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
    if det.abs() < 1e-12 {
        return f64::NEG_INFINITY;
    }
    let l1 = ((px - x0) * (y2 - y0) - (x2 - x0) * (py - y0)) / det;
    let l2 = ((x1 - x0) * (py - y0) - (px - x0) * (y1 - y0)) / det;
    l1.min(l2).min(1.0 - l1 - l2)
}

/// The grid, its moved copy and the per-triangle maps of one image.
struct Mesh {
    rows: usize,
    cols: usize,
    /// Output pixel → source, per triangle (2 per cell, row-major cells).
    to_source: Vec<[f64; 6]>,
    /// The moved triangles and their maps back to the grid, for targets.
    moved: Vec<[[f64; 2]; 3]>,
    to_output: Vec<[f64; 6]>,
    step: (f64, f64),
}

impl Mesh {
    fn new(p: &PiecewiseParams, w: usize, h: usize, absolute: bool) -> Self {
        let (rows, cols) = (p.rows.max(2), p.cols.max(2));
        let step = (w as f64 / (cols - 1) as f64, h as f64 / (rows - 1) as f64);
        let (sx, sy) = if absolute {
            (1.0, 1.0)
        } else {
            (w as f64, h as f64)
        };
        let grid = |r: usize, c: usize| [c as f64 * step.0, r as f64 * step.1];
        let moved_point = |r: usize, c: usize| {
            let [jx, jy] = p.jitter.get(r * cols + c).copied().unwrap_or([0.0; 2]);
            let [x, y] = grid(r, c);
            [
                (x + jx * sx).clamp(0.0, (w as f64 - 1.0).max(0.0)),
                (y + jy * sy).clamp(0.0, (h as f64 - 1.0).max(0.0)),
            ]
        };
        let mut mesh = Mesh {
            rows,
            cols,
            to_source: Vec::new(),
            moved: Vec::new(),
            to_output: Vec::new(),
            step,
        };
        for r in 0..rows - 1 {
            for c in 0..cols - 1 {
                // Top-right to bottom-left diagonal: (00, 01, 10) and (01, 11, 10).
                for corners in [
                    [(r, c), (r, c + 1), (r + 1, c)],
                    [(r, c + 1), (r + 1, c + 1), (r + 1, c)],
                ] {
                    let from = corners.map(|(r, c)| grid(r, c));
                    let to = corners.map(|(r, c)| moved_point(r, c));
                    let identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
                    mesh.to_source
                        .push(triangle_affine(from, to).unwrap_or(identity));
                    mesh.to_output
                        .push(triangle_affine(to, from).unwrap_or(identity));
                    mesh.moved.push(to);
                }
            }
        }
        mesh
    }

    /// The source position of output pixel `(x, y)`.
    fn source(&self, x: f64, y: f64) -> (f64, f64) {
        let u = x / self.step.0;
        let v = y / self.step.1;
        let c = (u.floor().max(0.0) as usize).min(self.cols - 2);
        let r = (v.floor().max(0.0) as usize).min(self.rows - 2);
        let upper = (u - c as f64) + (v - r as f64) <= 1.0;
        let k = 2 * (r * (self.cols - 1) + c) + usize::from(!upper);
        apply_affine(&self.to_source[k], x, y)
    }

    /// The output position of source point `(x, y)`: through the moved triangle holding it (or
    /// the nearest one, outside the moved mesh).
    fn output(&self, x: f64, y: f64) -> (f64, f64) {
        let best = self
            .moved
            .iter()
            .map(|t| inside_margin(t, (x, y)))
            .enumerate()
            .find(|(_, m)| *m >= -1e-9)
            .or_else(|| {
                self.moved
                    .iter()
                    .map(|t| inside_margin(t, (x, y)))
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
            })
            .map_or(0, |(k, _)| k);
        apply_affine(&self.to_output[best], x, y)
    }
}

impl Op for PiecewiseAffine {
    const NAME: &'static str = "piecewise_affine";
    type Params = PiecewiseParams;
    fn check(&self) -> Result<()> {
        self.scale
            .validate(Self::NAME, "scale", 0.0, f64::INFINITY)?;
        validate_int(&self.nb_rows, Self::NAME, "nb_rows", 2.0, 1000.0)?;
        validate_int(&self.nb_cols, Self::NAME, "nb_cols", 2.0, 1000.0)?;
        check_cval(Self::NAME, "cval", &self.cval)
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> PiecewiseParams {
        let scale = self.scale.sample(rng).max(0.0);
        let rows = sample_int(&self.nb_rows, rng).max(2) as usize;
        let cols = sample_int(&self.nb_cols, rng).max(2) as usize;
        let normal = Normal::new(0.0, scale).unwrap_or(Normal::new(0.0, 0.0).expect("σ = 0"));
        let jitter = (0..rows * cols)
            .map(|_| {
                // imgaug draws (y, x) per point.
                let y = normal.sample(rng);
                let x = normal.sample(rng);
                [x, y]
            })
            .collect();
        PiecewiseParams {
            rows,
            cols,
            jitter,
            cval: self.cval.sample(rng),
        }
    }
    fn apply(&self, p: &PiecewiseParams, s: Sample) -> Result<Sample> {
        if p.jitter.len() != p.rows * p.cols || p.rows < 2 || p.cols < 2 {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "jitter",
                value: format!("{} points for a {}×{} grid", p.jitter.len(), p.rows, p.cols),
                expected: "one (x, y) pair per grid point, at least 2×2".into(),
            });
        }
        if p.jitter.iter().all(|j| *j == [0.0, 0.0]) {
            return Ok(s);
        }
        let (w, h) = (s.image.width(), s.image.height());
        let mesh = Mesh::new(p, w, h, self.absolute_scale);
        let (mut dx, mut dy) = (vec![0f32; w * h], vec![0f32; w * h]);
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = mesh.source(x as f64, y as f64);
                dx[y * w + x] = (x as f64 - sx) as f32;
                dy[y * w + x] = (y as f64 - sy) as f32;
            }
        }
        let mapping = Mapping::Field { dx: &dx, dy: &dy };
        let mut s = warp_sample_pixels(s, mapping, (w, h), self.interpolation, self.mode, p.cval);
        // Targets use continuous coordinates (pixel i spans [i, i + 1)).
        map_targets(&mut s, 8, |x, y| {
            let (ox, oy) = mesh.output(x - 0.5, y - 0.5);
            (ox + 0.5, oy + 0.5)
        });
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Image, ImageBuf, Keypoint};
    use rand::SeedableRng;

    fn card(w: usize, h: usize) -> Image {
        let data = (0..w * h * 3).map(|i| ((i / 3) * 37 % 251) as u8).collect();
        Image::U8(ImageBuf::new(w, h, 3, data).unwrap())
    }

    fn params(rows: usize, cols: usize, jitter: impl Fn(usize) -> [f64; 2]) -> PiecewiseParams {
        PiecewiseParams {
            rows,
            cols,
            jitter: (0..rows * cols).map(jitter).collect(),
            cval: 0.0,
        }
    }

    #[test]
    fn zero_jitter_is_the_identity() {
        let op = PiecewiseAffine::default();
        let s = Sample::new(card(20, 12));
        let out = op.apply(&params(3, 4, |_| [0.0, 0.0]), s.clone()).unwrap();
        assert_eq!(out, s);
    }

    #[test]
    fn grid_points_map_to_their_moved_places_for_pixels_and_keypoints() {
        // Only the centre point of a 3×3 grid moves, by (+2, +1) px: output pixel (20, 15)
        // (the grid point) reads the moved point (22, 16), and a keypoint on the moved point
        // comes back to the grid point.
        let op = PiecewiseAffine {
            absolute_scale: true,
            ..PiecewiseAffine::default()
        };
        let (w, h) = (40, 30);
        let img = card(w, h);
        let s = Sample::new(img.clone()).with_keypoints([Keypoint { x: 22.5, y: 16.5 }]);
        let p = params(3, 3, |i| if i == 4 { [2.0, 1.0] } else { [0.0, 0.0] });
        let out = op.apply(&p, s).unwrap();
        let k = out.keypoints[0];
        assert!(
            (k.x - 20.5).abs() < 1e-4 && (k.y - 15.5).abs() < 1e-4,
            "{k:?}"
        );
        let (Image::U8(a), Image::U8(b)) = (&out.image, &img) else {
            unreachable!()
        };
        assert_eq!(a.pixel(20, 15), b.pixel(22, 16));
        // The fixed corners stay.
        assert_eq!(a.pixel(0, 0), b.pixel(0, 0));
    }

    #[test]
    fn keypoints_follow_their_pixel() {
        // A bright dot: after the warp the brightest pixel is where the keypoint went.
        let (w, h) = (48, 40);
        let mut data = vec![0u8; w * h];
        data[23 * w + 17] = 255;
        let img = Image::U8(ImageBuf::new(w, h, 1, data).unwrap());
        let op = PiecewiseAffine {
            scale: Param::Fixed(0.05),
            nb_rows: Param::Fixed(4.0),
            nb_cols: Param::Fixed(4.0),
            interpolation: Interpolation::Nearest,
            ..PiecewiseAffine::default()
        };
        let mut rng = AugRng::seed_from_u64(3);
        for _ in 0..10 {
            let s = Sample::new(img.clone()).with_keypoints([Keypoint { x: 17.5, y: 23.5 }]);
            let p = op.sample(&mut rng, &s);
            let out = op.apply(&p, s).unwrap();
            let Image::U8(b) = &out.image else {
                unreachable!()
            };
            let k = out.keypoints[0];
            if let Some(i) = b.data().iter().position(|&v| v == 255) {
                let (x, y) = ((i % w) as f32 + 0.5, (i / w) as f32 + 0.5);
                assert!(
                    (x - k.x).abs() <= 1.0 && (y - k.y).abs() <= 1.0,
                    "dot {x},{y} vs {k:?}"
                );
            }
        }
    }

    #[test]
    fn bad_options_name_their_field() {
        for (op, field) in [
            (
                PiecewiseAffine {
                    nb_rows: Param::Fixed(1.0),
                    ..Default::default()
                },
                "nb_rows",
            ),
            (
                PiecewiseAffine {
                    nb_cols: Param::Fixed(2.5),
                    ..Default::default()
                },
                "nb_cols",
            ),
            (
                PiecewiseAffine {
                    scale: Param::Fixed(-0.1),
                    ..Default::default()
                },
                "scale",
            ),
        ] {
            let err = op.check().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
        // A replayed record with the wrong number of points.
        let mut p = params(3, 3, |_| [0.0; 2]);
        p.jitter.pop();
        let err = PiecewiseAffine::default()
            .apply(&p, Sample::new(card(8, 8)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jitter"), "{err}");
    }
}
