//! Segmentation folders: `DIR/images/*` and `DIR/masks/*.png` paired by file stem (mask pixel
//! value = class index), an optional `DIR/classes.txt`, and `train/` + `val/` sub-trees when
//! present; decoded, checked, resized and kept in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::data::dataset::DatasetError;
use image::imageops::FilterType;
use image::{GrayImage, RgbImage};
use kindling_augment::{Image, ImageBuf};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::tasks::BadImagePolicy;
use crate::tasks::classify::data::IMAGE_EXTENSIONS;

/// One decoded pair at the training size: RGB pixels (HWC) and class indices (HW).
#[derive(Debug, Clone)]
pub struct SegSample {
    /// `size × size × 3` RGB bytes.
    pub image: Vec<u8>,
    /// `size × size` class indices (the ignore index marks unlabelled pixels).
    pub mask: Vec<u8>,
    /// The mask's file, for messages.
    pub mask_path: PathBuf,
}

/// A loaded, checked and split segmentation set.
#[derive(Debug)]
pub struct SegDataset {
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Training pairs.
    pub train: Arc<Vec<SegSample>>,
    /// Validation pairs.
    pub val: Arc<Vec<SegSample>>,
    /// Files skipped under `--on-bad-image skip`, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// How to load a segmentation folder.
#[derive(Debug, Clone)]
pub struct SegLoadOptions {
    /// Images and masks are resized (shorter side) and centre-cropped to this size.
    pub image_size: u32,
    /// Held-out fraction when there are no `train/` and `val/` sub-trees.
    pub val_fraction: f64,
    /// Seed of the split.
    pub seed: u64,
    /// The mask value of unlabelled pixels.
    pub ignore_index: u8,
    /// Number of classes when there is no `classes.txt` (`None`: the largest mask value + 1).
    pub num_classes: Option<usize>,
    /// Error or skip on a bad pair.
    pub on_bad_image: BadImagePolicy,
}

/// Why a segmentation folder cannot be used; every variant names the file or directory.
#[derive(Debug, thiserror::Error)]
pub enum SegDataError {
    /// A required directory is missing.
    #[error(
        "{0} is not a segmentation folder: expected images/ and masks/ (or train/ and val/ \
         with images/ and masks/ inside)"
    )]
    Layout(PathBuf),
    /// A directory could not be listed.
    #[error("cannot list {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// An image has no mask with the same stem.
    #[error("image {image} has no mask (expected {expected}); use --on-bad-image skip to skip it")]
    MissingMask {
        /// The image.
        image: PathBuf,
        /// The mask path looked for.
        expected: PathBuf,
    },
    /// A file could not be decoded, or a mask is unusable.
    #[error("{path}: {reason} (use --on-bad-image skip to skip such pairs)")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No pairs at all.
    #[error("no image/mask pairs in {0}")]
    Empty(PathBuf),
    /// Too few pairs to split off a validation set.
    #[error("{0}: need at least 2 image/mask pairs to split off a validation set")]
    TooFewToSplit(PathBuf),
}

type Pair = (PathBuf, PathBuf);

impl SegDataset {
    /// Loads the folder at `dir`.
    pub fn load(dir: &Path, opts: &SegLoadOptions) -> Result<Self, SegDataError> {
        let (train_dir, val_dir) = (dir.join("train"), dir.join("val"));
        let mut skipped = Vec::new();
        let (train_pairs, val_pairs) = if train_dir.is_dir() && val_dir.is_dir() {
            (
                pairs(&train_dir, opts, &mut skipped)?,
                pairs(&val_dir, opts, &mut skipped)?,
            )
        } else {
            let mut all = pairs(dir, opts, &mut skipped)?;
            if all.len() < 2 {
                return Err(SegDataError::TooFewToSplit(dir.to_path_buf()));
            }
            all.shuffle(&mut ChaCha8Rng::seed_from_u64(opts.seed));
            let n_val =
                ((all.len() as f64 * opts.val_fraction).round() as usize).clamp(1, all.len() - 1);
            let train = all.split_off(n_val);
            (train, all)
        };
        let classes_file = dir.join("classes.txt");
        let named: Option<Vec<String>> = std::fs::read_to_string(&classes_file).ok().map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect()
        });
        let decode_all = |pairs: &[Pair]| -> Vec<Result<SegSample, (PathBuf, String)>> {
            pairs
                .par_iter()
                .map(|(img, mask)| decode_pair(img, mask, opts.image_size))
                .collect()
        };
        let mut keep = |results: Vec<Result<SegSample, (PathBuf, String)>>| {
            let mut out = Vec::with_capacity(results.len());
            for r in results {
                match r {
                    Ok(s) => out.push(s),
                    Err((path, reason)) => match opts.on_bad_image {
                        BadImagePolicy::Error => return Err(SegDataError::Bad { path, reason }),
                        BadImagePolicy::Skip => skipped.push((path, reason)),
                    },
                }
            }
            Ok(out)
        };
        let mut train = keep(decode_all(&train_pairs))?;
        let mut val = keep(decode_all(&val_pairs))?;
        if train.is_empty() || val.is_empty() {
            return Err(SegDataError::Empty(dir.to_path_buf()));
        }
        let num_classes = match (&named, opts.num_classes) {
            (Some(names), _) => names.len(),
            (None, Some(n)) => n,
            (None, None) => {
                let max = train
                    .iter()
                    .chain(val.iter())
                    .flat_map(|s| s.mask.iter().copied())
                    .filter(|&v| v != opts.ignore_index)
                    .max()
                    .unwrap_or(0);
                max as usize + 1
            }
        };
        // Mask values must be class indices or the ignore index.
        let mut check = |samples: &mut Vec<SegSample>| -> Result<(), SegDataError> {
            let mut kept = Vec::with_capacity(samples.len());
            for s in samples.drain(..) {
                let bad = s
                    .mask
                    .iter()
                    .find(|&&v| v != opts.ignore_index && v as usize >= num_classes);
                let Some(&v) = bad else {
                    kept.push(s);
                    continue;
                };
                let reason = format!(
                    "mask value {v} is not a class index (0..{num_classes}) nor the ignore \
                     index {}",
                    opts.ignore_index
                );
                match opts.on_bad_image {
                    BadImagePolicy::Error => {
                        return Err(SegDataError::Bad {
                            path: s.mask_path,
                            reason,
                        });
                    }
                    BadImagePolicy::Skip => skipped.push((s.mask_path, reason)),
                }
            }
            *samples = kept;
            Ok(())
        };
        check(&mut train)?;
        check(&mut val)?;
        let classes =
            named.unwrap_or_else(|| (0..num_classes).map(|c| format!("class{c}")).collect());
        Ok(Self {
            classes,
            train: Arc::new(train),
            val: Arc::new(val),
            skipped,
        })
    }
}

/// Pairs `dir/images/<stem>.*` with `dir/masks/<stem>.png`, sorted by stem.
fn pairs(
    dir: &Path,
    opts: &SegLoadOptions,
    skipped: &mut Vec<(PathBuf, String)>,
) -> Result<Vec<Pair>, SegDataError> {
    let (images, masks) = (dir.join("images"), dir.join("masks"));
    if !images.is_dir() || !masks.is_dir() {
        return Err(SegDataError::Layout(dir.to_path_buf()));
    }
    let list = |d: &Path| -> Result<BTreeMap<String, PathBuf>, SegDataError> {
        let io = |source| SegDataError::Io {
            path: d.to_path_buf(),
            source,
        };
        let mut out = BTreeMap::new();
        for entry in std::fs::read_dir(d).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let is_image = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if let (true, Some(stem)) = (is_image, path.file_stem()) {
                out.insert(stem.to_string_lossy().into_owned(), path);
            }
        }
        Ok(out)
    };
    let mask_files = list(&masks)?;
    let mut out = Vec::new();
    for (stem, image) in list(&images)? {
        match mask_files.get(&stem) {
            Some(mask) => out.push((image, mask.clone())),
            None => {
                let expected = masks.join(format!("{stem}.png"));
                match opts.on_bad_image {
                    BadImagePolicy::Error => {
                        return Err(SegDataError::MissingMask { image, expected });
                    }
                    BadImagePolicy::Skip => skipped.push((image, "no mask".into())),
                }
            }
        }
    }
    Ok(out)
}

fn decode_pair(image: &Path, mask: &Path, size: u32) -> Result<SegSample, (PathBuf, String)> {
    let open = |p: &Path| {
        image::ImageReader::open(p)
            .map_err(|e| e.to_string())
            .and_then(|r| r.with_guessed_format().map_err(|e| e.to_string()))
            .and_then(|r| r.decode().map_err(|e| e.to_string()))
            .map_err(|e| (p.to_path_buf(), e))
    };
    let img = open(image)?.into_rgb8();
    let m = open(mask)?;
    if m.color().has_color() {
        return Err((
            mask.to_path_buf(),
            "mask is a colour image; save class indices as 8-bit grayscale".into(),
        ));
    }
    let m = m.into_luma8();
    if img.dimensions() != m.dimensions() {
        return Err((
            mask.to_path_buf(),
            format!(
                "mask is {}×{}, its image {} is {}×{}",
                m.width(),
                m.height(),
                image.display(),
                img.width(),
                img.height()
            ),
        ));
    }
    let (img, m) = fit(img, m, size).map_err(|e| (image.to_path_buf(), e))?;
    Ok(SegSample {
        image: img.into_raw(),
        mask: m.into_raw(),
        mask_path: mask.to_path_buf(),
    })
}

/// Resizes the shorter side to `size` (bilinear image, nearest mask) and centre-crops.
fn fit(img: RgbImage, mask: GrayImage, size: u32) -> Result<(RgbImage, GrayImage), String> {
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err("image has zero width or height".into());
    }
    if (w, h) == (size, size) {
        return Ok((img, mask));
    }
    let scale = size as f64 / w.min(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(size),
        ((h as f64 * scale).round() as u32).max(size),
    );
    let img = image::imageops::resize(&img, nw, nh, FilterType::Triangle);
    let mask = image::imageops::resize(&mask, nw, nh, FilterType::Nearest);
    let (x, y) = ((nw - size) / 2, (nh - size) / 2);
    Ok((
        image::imageops::crop_imm(&img, x, y, size, size).to_image(),
        image::imageops::crop_imm(&mask, x, y, size, size).to_image(),
    ))
}

/// Decoded pairs as a Burn dataset of augmentable samples (image + one mask).
pub struct SegSamples {
    samples: Arc<Vec<SegSample>>,
    size: usize,
}

impl SegSamples {
    /// `size × size` pairs.
    pub fn new(samples: Arc<Vec<SegSample>>, size: u32) -> Self {
        Self {
            samples,
            size: size as usize,
        }
    }
}

impl burn::data::dataset::Dataset<kindling_augment::Sample> for SegSamples {
    fn get(&self, index: usize) -> Result<kindling_augment::Sample, DatasetError> {
        let s = &self.samples[index];
        let image =
            ImageBuf::new(self.size, self.size, 3, s.image.clone()).map_err(DatasetError::new)?;
        let mask =
            ImageBuf::new(self.size, self.size, 1, s.mask.clone()).map_err(DatasetError::new)?;
        Ok(kindling_augment::Sample::new(Image::U8(image)).with_mask(Image::U8(mask)))
    }
    fn len(&self) -> usize {
        self.samples.len()
    }
}
