//! Contrast ops: imgaug's `LinearContrast` and `GammaContrast` (one table pass on `u8`),
//! per-channel histogram equalization (`cv2.equalizeHist`) and CLAHE (OpenCV's, on the L
//! channel of its 8-bit Lab for colour images).

use serde::{Deserialize, Serialize};

use super::intensity::{
    color_channels, fit_channels, map_values, sample_channels, table, validate_positive,
};
use crate::kernels::lab_in_place::{lab_to_rgb_in_place, rgb_to_lab_in_place};
use crate::param::check_probability;
use crate::{AugRng, AugmentError, Image, ImageBuf, Op, Param, Pixel, Result, Sample};

fn zero() -> f64 {
    0.0
}

/// `127 + α(v − 127)` (imgaug's `LinearContrast`): on `u8` a float32 table, clipped and
/// truncated as imgaug does; the centre is `MAX / 2` rounded down for u16 and 0.5 for f32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearContrast {
    /// The contrast factor α (1 keeps the image; below 1 flattens, above 1 stretches).
    #[serde(default = "LinearContrast::default_alpha")]
    pub alpha: Param,
    /// Probability of drawing one α per channel instead of one per image.
    #[serde(default = "zero")]
    pub per_channel: f64,
}

impl LinearContrast {
    fn default_alpha() -> Param {
        Param::Range([0.6, 1.4])
    }
}

impl Op for LinearContrast {
    const NAME: &'static str = "linear_contrast";
    /// α per colour channel.
    type Params = Vec<f64>;
    fn check(&self) -> Result<()> {
        self.alpha.validate(Self::NAME, "alpha", -100.0, 100.0)?;
        check_probability(Self::NAME, "per_channel", self.per_channel)
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> Vec<f64> {
        sample_channels(rng, &self.alpha, self.per_channel, s)
    }
    fn apply(&self, values: &Vec<f64>, mut s: Sample) -> Result<Sample> {
        let values = fit_channels(Self::NAME, values, &s.image)?;
        map_values(
            &mut s.image,
            &values,
            |a| {
                let a = a as f32;
                table(|i| (127.0 + a * (i as f32 - 127.0)).clamp(0.0, 255.0) as u8)
            },
            |x, a, max| {
                let centre = if max > 1.0 { (max / 2.0).floor() } else { 0.5 };
                centre + a as f32 * (x - centre)
            },
        );
        Ok(s)
    }
}

/// `MAX · (v / MAX)^γ` (imgaug's `GammaContrast`, Albumentations' `RandomGamma`): on `u8` a
/// float64 table `(i · (1/255))^γ · 255`, truncated, as Albumentations builds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GammaContrast {
    /// The exponent γ, > 0 (above 1 darkens, below 1 brightens).
    #[serde(default = "GammaContrast::default_gamma")]
    pub gamma: Param,
    /// Probability of drawing one γ per channel instead of one per image.
    #[serde(default = "zero")]
    pub per_channel: f64,
}

impl GammaContrast {
    fn default_gamma() -> Param {
        Param::Range([0.7, 1.7])
    }
}

impl Op for GammaContrast {
    const NAME: &'static str = "gamma_contrast";
    /// γ per colour channel.
    type Params = Vec<f64>;
    fn check(&self) -> Result<()> {
        validate_positive(&self.gamma, Self::NAME, "gamma", 100.0)?;
        check_probability(Self::NAME, "per_channel", self.per_channel)
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> Vec<f64> {
        let mut g = sample_channels(rng, &self.gamma, self.per_channel, s);
        // A distribution can reach 0 or below: keep γ positive.
        g.iter_mut().for_each(|v| *v = v.max(1e-6));
        g
    }
    fn apply(&self, values: &Vec<f64>, mut s: Sample) -> Result<Sample> {
        let values = fit_channels(Self::NAME, values, &s.image)?;
        map_values(
            &mut s.image,
            &values,
            |g| table(|i| ((i as f64 * (1.0 / 255.0)).powf(g) * 255.0).clamp(0.0, 255.0) as u8),
            |x, g, max| ((x / max) as f64).powf(g) as f32 * max,
        );
        Ok(s)
    }
}

/// Histogram equalization of every colour channel on its own (`cv2.equalizeHist` per channel,
/// Albumentations' `Equalize(mode="cv", by_channels=True)`, imgaug's
/// `AllChannelsHistogramEqualization`); u8 and u16 (65536 bins).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramEqualization {}

/// cv2.equalizeHist's table for a histogram of `hist.len()` bins over `total` values: 0 up to
/// the lowest present value, then `rint((cdf − hist[vmin]) · (bins − 1) / (total − hist[vmin]))`
/// in float32; `None` for a single-valued channel (left unchanged).
fn equalize_table(hist: &[u32], total: u32) -> Option<Vec<u32>> {
    let vmin = hist.iter().position(|&c| c > 0)?;
    if hist[vmin] == total {
        return None;
    }
    let top = (hist.len() - 1) as f32;
    let scale = top / (total - hist[vmin]) as f32;
    let mut lut = vec![0u32; hist.len()];
    let mut sum = 0u32;
    for v in vmin + 1..hist.len() {
        sum += hist[v];
        lut[v] = ((sum as f32 * scale).round_ties_even()).clamp(0.0, top) as u32;
    }
    Some(lut)
}

/// Per-colour-channel histograms of `buf` (one pass), `bins` each.
fn histograms<P: Pixel>(buf: &ImageBuf<P>, bins: usize, index: impl Fn(P) -> usize) -> Vec<u32> {
    let c = buf.channels();
    let n = color_channels(c);
    let mut hist = vec![0u32; n * bins];
    for px in buf.data().chunks_exact(c) {
        for (k, &v) in px[..n].iter().enumerate() {
            hist[k * bins + index(v)] += 1;
        }
    }
    hist
}

fn equalize_u8(buf: &mut ImageBuf<u8>) {
    let total = (buf.width() * buf.height()) as u32;
    let hist = histograms(buf, 256, |v| v as usize);
    let luts: Vec<[u8; 256]> = hist
        .chunks_exact(256)
        .map(|h| match equalize_table(h, total) {
            Some(lut) => std::array::from_fn(|i| lut[i] as u8),
            None => std::array::from_fn(|i| i as u8),
        })
        .collect();
    super::intensity::apply_luts(buf, &luts);
}

fn equalize_u16(buf: &mut ImageBuf<u16>) {
    let total = (buf.width() * buf.height()) as u32;
    let hist = histograms(buf, 65536, |v| v as usize);
    let luts: Vec<Option<Vec<u32>>> = hist
        .chunks_exact(65536)
        .map(|h| equalize_table(h, total))
        .collect();
    let c = buf.channels();
    for px in buf.data_mut().chunks_exact_mut(c) {
        for (v, lut) in px.iter_mut().zip(&luts) {
            if let Some(lut) = lut {
                *v = lut[*v as usize] as u16;
            }
        }
    }
}

impl Op for HistogramEqualization {
    const NAME: &'static str = "histogram_equalization";
    type Params = ();
    fn sample(&self, _: &mut AugRng, _: &Sample) {}
    fn apply(&self, _: &(), mut s: Sample) -> Result<Sample> {
        match &mut s.image {
            Image::U8(b) => equalize_u8(b),
            Image::U16(b) => equalize_u16(b),
            Image::F32(_) => {
                return Err(AugmentError::Unsupported {
                    op: Self::NAME,
                    what: "f32 images (convert to u8 or u16 first)".into(),
                });
            }
        }
        Ok(s)
    }
}

/// Contrast-limited adaptive histogram equalization, OpenCV's `createCLAHE(clip_limit,
/// tile_grid_size).apply` (Albumentations' `CLAHE`, imgaug's `CLAHE`): RGB(A) images are
/// equalized on the L channel of OpenCV's 8-bit Lab (alpha kept), gray images directly; u8 only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Clahe {
    /// The contrast limit, > 0 (OpenCV clips each tile histogram at
    /// `max(1, int(clip_limit · tile_pixels / 256))`).
    #[serde(default = "Clahe::default_clip")]
    pub clip_limit: Param,
    /// Tiles across and down (OpenCV's `tileGridSize`, `(tiles_x, tiles_y)`).
    #[serde(default = "Clahe::default_grid")]
    pub tile_grid_size: [usize; 2],
}

impl Clahe {
    fn default_clip() -> Param {
        Param::Range([1.0, 4.0])
    }
    fn default_grid() -> [usize; 2] {
        [8, 8]
    }
}

/// OpenCV's BORDER_REFLECT_101 index (robust to pads longer than the image).
fn reflect101(i: usize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * n - 2;
    let i = i % period;
    if i < n { i } else { period - i }
}

/// OpenCV's CLAHE on one `u8` plane, hand-written because no maintained crate ports it: tile
/// histograms (on an image padded by reflection to a multiple of the grid when needed),
/// clipped and redistributed as OpenCV does, then bilinear interpolation of the tile tables.
fn clahe_plane(
    src: &[u8],
    w: usize,
    h: usize,
    [tiles_x, tiles_y]: [usize; 2],
    clip: f64,
) -> Vec<u8> {
    let (ext_w, ext_h) = if w.is_multiple_of(tiles_x) && h.is_multiple_of(tiles_y) {
        (w, h)
    } else {
        // OpenCV pads both sides, by a full tile count where one side already divides.
        (w + tiles_x - w % tiles_x, h + tiles_y - h % tiles_y)
    };
    let (tw, th) = (ext_w / tiles_x, ext_h / tiles_y);
    let tile_total = (tw * th) as i32;
    let lut_scale = 255.0f32 / tile_total as f32;
    let clip_limit = if clip > 0.0 {
        ((clip * tile_total as f64 / 256.0) as i32).max(1)
    } else {
        0
    };
    let xs: Vec<usize> = (0..ext_w).map(|x| reflect101(x, w)).collect();
    let mut luts = vec![0u8; tiles_x * tiles_y * 256];
    let mut hist = [0i32; 256];
    for ty in 0..tiles_y {
        for tx in 0..tiles_x {
            hist.fill(0);
            for y in ty * th..(ty + 1) * th {
                let row = &src[reflect101(y, h) * w..][..w];
                for &x in &xs[tx * tw..(tx + 1) * tw] {
                    hist[row[x] as usize] += 1;
                }
            }
            if clip_limit > 0 {
                let mut clipped = 0;
                for v in hist.iter_mut().filter(|v| **v > clip_limit) {
                    clipped += *v - clip_limit;
                    *v = clip_limit;
                }
                let batch = clipped / 256;
                let mut residual = clipped - batch * 256;
                hist.iter_mut().for_each(|v| *v += batch);
                if residual > 0 {
                    let step = (256 / residual).max(1) as usize;
                    let mut i = 0;
                    while i < 256 && residual > 0 {
                        hist[i] += 1;
                        i += step;
                        residual -= 1;
                    }
                }
            }
            let lut = &mut luts[(ty * tiles_x + tx) * 256..][..256];
            let mut sum = 0;
            for (l, &v) in lut.iter_mut().zip(&hist) {
                sum += v;
                *l = (sum as f32 * lut_scale).round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
    }
    // Per column: the two tile tables and their weights.
    let inv_tw = 1.0f32 / tw as f32;
    let cols: Vec<(usize, usize, f32, f32)> = (0..w)
        .map(|x| {
            let txf = x as f32 * inv_tw - 0.5;
            let t1 = txf.floor();
            let xa = txf - t1;
            let t1 = t1 as i64;
            let (a, b) = (t1.max(0) as usize, ((t1 + 1) as usize).min(tiles_x - 1));
            (a * 256, b * 256, 1.0 - xa, xa)
        })
        .collect();
    let inv_th = 1.0f32 / th as f32;
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        let tyf = y as f32 * inv_th - 0.5;
        let t1 = tyf.floor();
        let (ya, ya1) = (tyf - t1, 1.0 - (tyf - t1));
        let t1 = t1 as i64;
        let (p1, p2) = (t1.max(0) as usize, ((t1 + 1) as usize).min(tiles_y - 1));
        let plane1 = &luts[p1 * tiles_x * 256..];
        let plane2 = &luts[p2 * tiles_x * 256..];
        let (row, dst) = (&src[y * w..][..w], &mut out[y * w..][..w]);
        for ((d, &v), &(i1, i2, xa1, xa)) in dst.iter_mut().zip(row).zip(&cols) {
            let v = v as usize;
            let res = (plane1[i1 + v] as f32 * xa1 + plane1[i2 + v] as f32 * xa) * ya1
                + (plane2[i1 + v] as f32 * xa1 + plane2[i2 + v] as f32 * xa) * ya;
            *d = res.round_ties_even().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

impl Op for Clahe {
    const NAME: &'static str = "clahe";
    /// The clip limit.
    type Params = f64;
    fn check(&self) -> Result<()> {
        validate_positive(&self.clip_limit, Self::NAME, "clip_limit", 1000.0)?;
        if self.tile_grid_size.contains(&0) {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "tile_grid_size",
                value: format!("{:?}", self.tile_grid_size),
                expected: "at least one tile each way".into(),
            });
        }
        Ok(())
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> f64 {
        self.clip_limit.sample(rng).max(1e-6)
    }
    fn apply(&self, clip: &f64, mut s: Sample) -> Result<Sample> {
        let grid = self.tile_grid_size.map(|t| t.max(1));
        let Image::U8(b) = &mut s.image else {
            return Err(AugmentError::Unsupported {
                op: Self::NAME,
                what: format!("{} images (u8 only, as OpenCV)", s.image.pixel_type()),
            });
        };
        let (w, h, c) = (b.width(), b.height(), b.channels());
        if c == 1 {
            let out = clahe_plane(b.data(), w, h, grid, *clip);
            b.data_mut().copy_from_slice(&out);
            return Ok(s);
        }
        // The image becomes Lab in place; CLAHE runs on its L plane, which goes back before
        // the image returns to RGB.
        rgb_to_lab_in_place(b.data_mut(), c);
        let l: Vec<u8> = b.data().iter().step_by(c).copied().collect();
        let l = clahe_plane(&l, w, h, grid, *clip);
        for (px, l) in b.data_mut().chunks_exact_mut(c).zip(l) {
            px[0] = l;
        }
        lab_to_rgb_in_place(b.data_mut(), c);
        Ok(s)
    }
}
