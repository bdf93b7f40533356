//! Dropping pixels: imgaug's `Dropout`, `CoarseDropout` and `Cutout`. Fill values are in 0–255
//! units whatever the pixel type (×257 for `u16`, /255 for `f32`).

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::noise::{Chance, ElementwiseParams, replace_elementwise, sample_elementwise, threshold};
use crate::kernels::filter::{FilterPixel, sample_int, validate_int};
use crate::{AugRng, AugmentError, ImageBuf, Op, Param, Result, Sample, map_image, with_image};

/// Sets a fraction `p` of the pixels (or channel values with `per_channel`) to 0 (imgaug's
/// `Dropout`; `p` drawn per image).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Dropout {
    /// Fraction dropped, in `[0, 1]`.
    pub p: Param,
    /// Decide per channel value: a bool or the probability per image.
    pub per_channel: Chance,
}

impl Default for Dropout {
    fn default() -> Self {
        Self {
            p: Param::Range([0.0, 0.05]),
            per_channel: Chance::default(),
        }
    }
}

impl Op for Dropout {
    const NAME: &'static str = "dropout";
    type Params = ElementwiseParams;
    fn check(&self) -> Result<()> {
        self.p.validate(Self::NAME, "p", 0.0, 1.0)?;
        self.per_channel.check(Self::NAME, "per_channel")
    }
    fn sample(&self, rng: &mut AugRng, _: &Sample) -> ElementwiseParams {
        sample_elementwise(&self.p, &self.per_channel, rng)
    }
    fn apply(&self, p: &ElementwiseParams, mut s: Sample) -> Result<Sample> {
        with_image!(&mut s.image, b => replace_elementwise(b, p, |_| 0.0));
        Ok(s)
    }
}

/// Drops rectangles: a dropout mask drawn at a low resolution and enlarged (nearest neighbour)
/// to the image (imgaug's `CoarseDropout`). The mask size is `size_px` pixels, or
/// `size_percent` of the image side (height and width drawn separately), at least `min_size`;
/// with neither, `size_px` = `[3, 8]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoarseDropout {
    /// Fraction of mask cells dropped, in `[0, 1]`.
    pub p: Param,
    /// Mask height and width in cells (whole, ≥ 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_px: Option<Param>,
    /// Mask height and width as a fraction of the image's, in `[0, 1]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size_percent: Option<Param>,
    /// Decide per channel: a bool or the probability per image.
    pub per_channel: Chance,
    /// Smallest mask side in cells.
    pub min_size: usize,
}

impl Default for CoarseDropout {
    fn default() -> Self {
        Self {
            p: Param::Range([0.02, 0.1]),
            size_px: None,
            size_percent: None,
            per_channel: Chance::default(),
            min_size: 3,
        }
    }
}

/// The sampled parameters of [`CoarseDropout`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoarseDropoutParams {
    /// Probability that a mask cell is dropped.
    pub p: f64,
    /// One mask per channel.
    pub per_channel: bool,
    /// Mask height in cells.
    pub height: usize,
    /// Mask width in cells.
    pub width: usize,
    /// Seed of the mask.
    pub seed: u64,
}

impl Op for CoarseDropout {
    const NAME: &'static str = "coarse_dropout";
    type Params = CoarseDropoutParams;
    fn check(&self) -> Result<()> {
        self.p.validate(Self::NAME, "p", 0.0, 1.0)?;
        self.per_channel.check(Self::NAME, "per_channel")?;
        if let Some(px) = &self.size_px {
            validate_int(px, Self::NAME, "size_px", 1.0, f64::INFINITY)?;
        }
        if let Some(pc) = &self.size_percent {
            pc.validate(Self::NAME, "size_percent", 0.0, 1.0)?;
        }
        if self.size_px.is_some() && self.size_percent.is_some() {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "size_percent",
                value: "given with size_px".into(),
                expected: "either size_px or size_percent".into(),
            });
        }
        if self.min_size == 0 {
            return Err(AugmentError::Invalid {
                op: Self::NAME,
                field: "min_size",
                value: "0".into(),
                expected: "at least 1".into(),
            });
        }
        Ok(())
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> CoarseDropoutParams {
        let per_channel = self.per_channel.sample(rng);
        let p = self.p.sample(rng).clamp(0.0, 1.0);
        let (h, w) = (s.image.height(), s.image.width());
        let (mh, mw) = match (&self.size_percent, &self.size_px) {
            (Some(pc), None) => (
                (pc.sample(rng) * h as f64) as i64,
                (pc.sample(rng) * w as f64) as i64,
            ),
            (_, px) => {
                let px = px.clone().unwrap_or(Param::Range([3.0, 8.0]));
                (sample_int(&px, rng), sample_int(&px, rng))
            }
        };
        let min = self.min_size.max(1) as i64;
        CoarseDropoutParams {
            p,
            per_channel,
            height: mh.max(min) as usize,
            width: mw.max(min) as usize,
            seed: rng.next_u64(),
        }
    }
    fn apply(&self, p: &CoarseDropoutParams, mut s: Sample) -> Result<Sample> {
        with_image!(&mut s.image, b => coarse_dropout(b, p));
        Ok(s)
    }
}

/// OpenCV's `INTER_NEAREST` source index for each of `n` destination positions from `m`.
fn nearest_index(m: usize, n: usize) -> Vec<usize> {
    let inv = 1.0 / (n as f64 / m as f64);
    (0..n)
        .map(|i| ((i as f64 * inv).floor() as usize).min(m - 1))
        .collect()
}

/// Zeroes the dropped cells in place. A dropped cell is a rectangle of the image (nearest
/// upscaling of the mask), so rows are filled run by run and rows without a dropped cell are
/// not touched: the work is the area dropped, as Albumentations' rectangles, not a pass over
/// the whole image.
fn coarse_dropout<P: FilterPixel>(img: &mut ImageBuf<P>, p: &CoarseDropoutParams) {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let (mh, mw) = (p.height.max(1), p.width.max(1));
    let mc = if p.per_channel { c } else { 1 };
    let thr = threshold(p.p);
    let mut rng = AugRng::seed_from_u64(p.seed);
    let mask: Vec<bool> = (0..mh * mw * mc)
        .map(|_| u64::from(rng.next_u32()) < thr)
        .collect();
    let (ys, xs) = (nearest_index(mh, h), nearest_index(mw, w));
    // Per mask row: the runs of image values `[start, end)` to zero, per channel when the mask
    // is per channel (runs of one channel are then strided by `c`).
    let runs: Vec<Vec<(usize, usize, usize)>> = (0..mh)
        .map(|my| {
            let mut runs = Vec::new();
            for ch in 0..mc {
                let dropped = |x: usize| mask[(my * mw + xs[x]) * mc + ch];
                let mut x = 0;
                while x < w {
                    if !dropped(x) {
                        x += 1;
                        continue;
                    }
                    let start = x;
                    while x < w && dropped(x) {
                        x += 1;
                    }
                    runs.push((ch, start, x));
                }
            }
            runs
        })
        .collect();
    for (row, &my) in img.data_mut().chunks_exact_mut(w * c).zip(&ys) {
        for &(ch, start, end) in &runs[my] {
            let span = &mut row[start * c..end * c];
            if mc == 1 {
                span.fill(P::default());
            } else {
                span.iter_mut()
                    .skip(ch)
                    .step_by(c)
                    .for_each(|v| *v = P::default());
            }
        }
    }
}

/// How [`Cutout`] fills its rectangles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CutoutFill {
    /// With `cval`.
    #[default]
    Constant,
    /// With Gaussian noise around mid-grey (σ = 1/6 of the range), clipped.
    Gaussian,
}

/// Fills `nb_iterations` rectangles at uniformly random centres (imgaug 0.4's `Cutout` with
/// `position="uniform"`). Their height and width are `size` times the image's (drawn
/// separately; a `squared` rectangle takes the height for both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cutout {
    /// How many rectangles (whole, ≥ 0).
    pub nb_iterations: Param,
    /// Side as a fraction of the image side, in `[0, 1]`.
    pub size: Param,
    /// Square rectangles: a bool or the probability per rectangle.
    pub squared: Chance,
    /// Constant or Gaussian fill.
    pub fill_mode: CutoutFill,
    /// The constant fill, 0–255 units.
    pub cval: Param,
    /// A fill value (or noise) per channel: a bool or the probability per rectangle.
    pub fill_per_channel: Chance,
}

impl Default for Cutout {
    fn default() -> Self {
        Self {
            nb_iterations: Param::Fixed(1.0),
            size: Param::Fixed(0.2),
            squared: Chance::Always(true),
            fill_mode: CutoutFill::Constant,
            cval: Param::Fixed(128.0),
            fill_per_channel: Chance::default(),
        }
    }
}

/// One sampled [`Cutout`] rectangle, in pixels (`x2`, `y2` exclusive).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CutoutArea {
    /// Left column.
    pub x1: usize,
    /// Top row.
    pub y1: usize,
    /// Right column, exclusive.
    pub x2: usize,
    /// Bottom row, exclusive.
    pub y2: usize,
    /// Gaussian fill (else constant).
    pub gaussian: bool,
    /// The constant per channel (one value: all channels), 0–255 units.
    pub cval: Vec<f64>,
    /// Gaussian noise per channel value.
    pub per_channel: bool,
    /// Seed of the Gaussian fill.
    pub seed: u64,
}

impl Op for Cutout {
    const NAME: &'static str = "cutout";
    type Params = Vec<CutoutArea>;
    fn check(&self) -> Result<()> {
        validate_int(&self.nb_iterations, Self::NAME, "nb_iterations", 0.0, 1e6)?;
        self.size.validate(Self::NAME, "size", 0.0, 1.0)?;
        self.cval.validate(Self::NAME, "cval", 0.0, 255.0)?;
        self.squared.check(Self::NAME, "squared")?;
        self.fill_per_channel.check(Self::NAME, "fill_per_channel")
    }
    fn sample(&self, rng: &mut AugRng, s: &Sample) -> Vec<CutoutArea> {
        let (w, h, c) = (
            s.image.width() as f64,
            s.image.height() as f64,
            s.image.channels(),
        );
        let n = sample_int(&self.nb_iterations, rng).max(0);
        let mut areas = Vec::new();
        for _ in 0..n {
            let (px, py): (f64, f64) = (rng.random(), rng.random());
            let (sh, sw) = (self.size.sample(rng), self.size.sample(rng));
            let squared = self.squared.sample(rng);
            let per_channel = self.fill_per_channel.sample(rng);
            let cval: Vec<f64> = (0..if per_channel { c } else { 1 })
                .map(|_| self.cval.sample(rng).clamp(0.0, 255.0))
                .collect();
            let seed = rng.next_u64();
            let (mut x1, mut x2) = ((px - sw / 2.0) * w, (px + sw / 2.0) * w);
            let (y1, y2) = ((py - sh / 2.0) * h, (py + sh / 2.0) * h);
            if squared {
                let (half, centre) = ((y2 - y1) / 2.0, x1 + (x2 - x1) / 2.0);
                (x1, x2) = (centre - half, centre + half);
            }
            // imgaug: int() (toward zero), then clipped to the image.
            let clip = |v: f64, n: f64| (v.trunc()).clamp(0.0, n) as usize;
            let area = CutoutArea {
                x1: clip(x1, w),
                y1: clip(y1, h),
                x2: clip(x2, w),
                y2: clip(y2, h),
                gaussian: self.fill_mode == CutoutFill::Gaussian,
                cval,
                per_channel,
                seed,
            };
            if area.x2 > area.x1 && area.y2 > area.y1 {
                areas.push(area);
            }
        }
        areas
    }
    fn apply(&self, areas: &Vec<CutoutArea>, mut s: Sample) -> Result<Sample> {
        s.image = map_image!(&s.image, b => cutout(b, areas));
        Ok(s)
    }
}

fn cutout<P: FilterPixel>(img: &ImageBuf<P>, areas: &[CutoutArea]) -> ImageBuf<P> {
    let (w, h, c) = (img.width(), img.height(), img.channels());
    let mut out = img.clone();
    let data = out.data_mut();
    let unit = P::MAX / 255.0;
    for a in areas {
        let (x1, x2, y1, y2) = (a.x1.min(w), a.x2.min(w), a.y1.min(h), a.y2.min(h));
        let mut rng = AugRng::seed_from_u64(a.seed);
        // Gaussian fill: N(max/2, max/6), clipped, truncated to the type (imgaug's astype).
        let noise = |rng: &mut AugRng| {
            let v = P::MAX * (0.5 + rng.sample::<f32, _>(StandardNormal) / 6.0);
            P::from_f32_trunc(v.clamp(0.0, P::MAX))
        };
        let consts: Vec<P> = (0..c)
            .map(|ch| {
                let v = a.cval.get(ch).or(a.cval.first()).copied().unwrap_or(0.0);
                P::from_f32_trunc(v as f32 * unit)
            })
            .collect();
        for y in y1..y2 {
            let row = &mut data[(y * w + x1) * c..(y * w + x2) * c];
            for px in row.chunks_exact_mut(c) {
                if !a.gaussian {
                    px.copy_from_slice(&consts);
                } else if a.per_channel {
                    px.iter_mut().for_each(|v| *v = noise(&mut rng));
                } else {
                    px.fill(noise(&mut rng));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BBox, Image, Keypoint};

    fn flat(w: usize, h: usize, c: usize) -> Sample {
        Sample::new(ImageBuf::<u8>::filled(w, h, c, 200).unwrap())
    }

    fn zeros(s: &Sample) -> usize {
        match &s.image {
            Image::U8(b) => b.data().iter().filter(|v| **v == 0).count(),
            Image::U16(b) => b.data().iter().filter(|v| **v == 0).count(),
            Image::F32(b) => b.data().iter().filter(|v| **v == 0.0).count(),
        }
    }

    #[test]
    fn dropout_zeroes_about_p_of_the_pixels_on_every_channel() {
        let p = ElementwiseParams {
            p: 0.2,
            per_channel: false,
            seed: 1,
        };
        let out = Dropout::default().apply(&p, flat(100, 100, 3)).unwrap();
        let frac = zeros(&out) as f64 / 30000.0;
        assert!((frac - 0.2).abs() < 0.015, "{frac}");
        let Image::U8(b) = &out.image else { panic!() };
        assert!(b.data().chunks(3).all(|px| px.iter().all(|v| *v == px[0])));
        let per = ElementwiseParams {
            per_channel: true,
            ..p
        };
        let out = Dropout::default().apply(&per, flat(100, 100, 3)).unwrap();
        let Image::U8(b) = &out.image else { panic!() };
        let mixed = b.data().chunks(3).filter(|px| px[0] != px[1]).count();
        assert!(mixed > 1000, "{mixed}");
    }

    #[test]
    fn coarse_dropout_drops_whole_cells() {
        let p = CoarseDropoutParams {
            p: 0.5,
            per_channel: false,
            height: 4,
            width: 4,
            seed: 7,
        };
        let out = CoarseDropout::default().apply(&p, flat(32, 32, 1)).unwrap();
        let Image::U8(b) = &out.image else { panic!() };
        // Each 8×8 cell is either all dropped or all kept.
        for cy in 0..4 {
            for cx in 0..4 {
                let first = b.pixel(cx * 8, cy * 8)[0];
                for y in 0..8 {
                    for x in 0..8 {
                        assert_eq!(b.pixel(cx * 8 + x, cy * 8 + y)[0], first);
                    }
                }
            }
        }
        assert!(zeros(&out) > 0 && zeros(&out) < 32 * 32);
    }

    #[test]
    fn coarse_dropout_sizes_follow_size_percent_and_min_size() {
        let op = CoarseDropout {
            size_percent: Some(Param::Fixed(0.25)),
            ..Default::default()
        };
        let mut rng = AugRng::seed_from_u64(0);
        let p = op.sample(&mut rng, &flat(40, 20, 3));
        assert_eq!((p.height, p.width), (5, 10));
        let p = op.sample(&mut rng, &flat(8, 8, 3));
        assert_eq!((p.height, p.width), (3, 3), "min_size");
        let both = CoarseDropout {
            size_px: Some(Param::Fixed(4.0)),
            ..op
        };
        assert!(both.check().unwrap_err().to_string().contains("size_px"));
    }

    #[test]
    fn cutout_fills_a_centred_square_with_cval() {
        let op = Cutout {
            cval: Param::Fixed(0.0),
            ..Default::default()
        };
        let mut rng = AugRng::seed_from_u64(4);
        let s = flat(50, 40, 3);
        let areas = op.sample(&mut rng, &s);
        assert_eq!(areas.len(), 1);
        let a = &areas[0];
        // 0.2 · 40 = 8 rows; squared: 8 columns (less where clipped).
        assert!(a.y2 - a.y1 <= 8 && a.x2 - a.x1 <= 8, "{a:?}");
        let out = op.apply(&areas, s).unwrap();
        assert_eq!(zeros(&out), (a.y2 - a.y1) * (a.x2 - a.x1) * 3);
    }

    #[test]
    fn cutout_scales_cval_and_noise_to_u16_and_f32() {
        let area = CutoutArea {
            x1: 1,
            y1: 1,
            x2: 3,
            y2: 3,
            gaussian: false,
            cval: vec![255.0],
            per_channel: false,
            seed: 0,
        };
        let s = Sample::new(ImageBuf::<u16>::filled(4, 4, 1, 0).unwrap());
        let out = Cutout::default().apply(&vec![area.clone()], s).unwrap();
        let Image::U16(b) = &out.image else { panic!() };
        assert_eq!(b.pixel(2, 2)[0], 65535);
        let noisy = CutoutArea {
            gaussian: true,
            x2: 4,
            y2: 4,
            x1: 0,
            y1: 0,
            ..area
        };
        let s = Sample::new(ImageBuf::<f32>::filled(4, 4, 4, 2.0).unwrap());
        let out = Cutout::default().apply(&vec![noisy], s).unwrap();
        let Image::F32(b) = &out.image else { panic!() };
        assert!(b.data().iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn invalid_dropout_options_are_refused_with_their_value() {
        let err = Dropout {
            p: Param::Fixed(1.5),
            ..Default::default()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(err.contains("`p` = 1.5"), "{err}");
        assert!(
            Cutout {
                size: Param::Range([0.5, 0.2]),
                ..Default::default()
            }
            .check()
            .is_err()
        );
        assert!(
            CoarseDropout {
                size_px: Some(Param::Fixed(0.5)),
                ..Default::default()
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn dropouts_leave_masks_boxes_and_keypoints_alone() {
        let s = flat(24, 24, 4)
            .with_mask(ImageBuf::<u8>::filled(24, 24, 1, 1).unwrap())
            .with_boxes([BBox {
                x1: 0.0,
                y1: 0.0,
                x2: 10.0,
                y2: 10.0,
                label: 2,
            }])
            .with_keypoints([Keypoint { x: 5.0, y: 5.0 }]);
        let ops: Vec<Box<dyn crate::Augmenter>> = vec![
            Box::new(Dropout {
                p: Param::Fixed(0.5),
                ..Default::default()
            }),
            Box::new(CoarseDropout::default()),
            Box::new(Cutout::default()),
        ];
        let mut rng = AugRng::seed_from_u64(8);
        for op in ops {
            let (out, record) = op.augment(s.clone(), &mut rng).unwrap();
            assert_ne!(out.image, s.image, "{}", op.name());
            assert_eq!(
                (&out.masks, &out.boxes, &out.keypoints),
                (&s.masks, &s.boxes, &s.keypoints)
            );
            assert_eq!(op.replay(s.clone(), &record).unwrap(), out);
        }
    }
}
