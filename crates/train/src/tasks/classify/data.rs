//! ImageFolder datasets: one sub-folder per class, decoded with `image`, split and batched.

use std::path::{Path, PathBuf};

use std::sync::Arc;

use burn::data::dataset::DatasetError;
use image::DynamicImage;
use image::imageops::FilterType;
use kindling_augment::{Image, ImageBuf};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

pub use crate::tasks::BadImagePolicy;

/// File extensions read as images (torchvision's `IMG_EXTENSIONS`, less the rare ones).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"];

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The data path is not a directory.
    #[error("data directory {0} does not exist or is not a directory")]
    NotADirectory(PathBuf),
    /// No class folders with images were found.
    #[error(
        "no class folders with images in {0}; expected an ImageFolder tree: one sub-folder per \
         class (optionally under train/ and val/), with .png/.jpg/... files inside"
    )]
    NoClasses(PathBuf),
    /// An image has another number of channels than the model takes.
    #[error(
        "image {path} is {found} but the model takes {expected} input channel(s); give \
         --in-chans 3 (grayscale images are then converted to RGB) or grayscale images"
    )]
    Channels {
        /// The file.
        path: PathBuf,
        /// What the file holds (`RGB`, `RGBA`, …).
        found: String,
        /// The channels asked for.
        expected: usize,
    },
    /// A class folder holds no images.
    #[error("class folder {0} contains no images ({exts})", exts = IMAGE_EXTENSIONS.join(", "))]
    EmptyClass(PathBuf),
    /// The val/ tree lacks a class of the train/ tree, or has an extra one.
    #[error("class folders differ between {train} and {val}: {detail}")]
    ClassMismatch {
        /// The train directory.
        train: PathBuf,
        /// The val directory.
        val: PathBuf,
        /// Which classes differ.
        detail: String,
    },
    /// An image could not be read or decoded.
    #[error("cannot read image {path}: {reason} (use --on-bad-image skip to skip such files)")]
    BadImage {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        reason: String,
    },
    /// Too few images to form both a training and a validation set.
    #[error("class `{class}` has {count} image(s): need at least 2 to split off a validation set")]
    TooFewToSplit {
        /// The class.
        class: String,
        /// How many images it has.
        count: usize,
    },
    /// Directory listing failed.
    #[error("cannot list {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// One decoded image: `size × size × 3` RGB bytes (HWC) and its class index.
#[derive(Debug, Clone)]
pub struct Sample {
    /// RGB pixels, row-major, interleaved.
    pub pixels: Vec<u8>,
    /// Class index into [`Dataset::classes`].
    pub label: usize,
}

/// A decoded, split dataset held in memory at the training resolution.
#[derive(Debug)]
pub struct Dataset {
    /// Class names, sorted (their index is the label).
    pub classes: Vec<String>,
    /// Training samples.
    pub train: Arc<Vec<Sample>>,
    /// Validation samples.
    pub val: Arc<Vec<Sample>>,
    /// Images that could not be decoded and were skipped, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Side length of every image.
    pub image_size: u32,
}

/// How to load a dataset.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Images are resized (shorter side) and centre-cropped to this size.
    pub image_size: u32,
    /// Fraction of each class held out for validation when there is no val/ tree.
    pub val_fraction: f64,
    /// Seed of the split.
    pub seed: u64,
    /// Decoding threads.
    pub workers: usize,
    /// Error or skip on undecodable files.
    pub on_bad_image: BadImagePolicy,
    /// Channels of the decoded samples: 3 (RGB; grayscale images are converted, as
    /// torchvision's `ImageFolder` does) or 1 (grayscale images only: a colour image is an
    /// error naming it).
    pub channels: usize,
    /// Decodes validation images with this transform (timm's eval resize and centre crop,
    /// whose crop must be `image_size`) instead of the training resize.
    pub val_transform: Option<kindling_finetune::EvalTransform>,
}

impl LoadOptions {
    /// RGB samples at `image_size`, validation decoded as training.
    pub fn rgb(image_size: u32, val_fraction: f64, seed: u64, workers: usize) -> Self {
        Self {
            image_size,
            val_fraction,
            seed,
            workers,
            on_bad_image: BadImagePolicy::Error,
            channels: 3,
            val_transform: None,
        }
    }
}

type Listing = Vec<(PathBuf, usize)>;

impl Dataset {
    /// Loads an ImageFolder tree: `dir/train/<class>/…` + `dir/val/<class>/…` when both exist,
    /// else `dir/<class>/…` split per class by `val_fraction` with a seeded shuffle.
    pub fn load(dir: &Path, opts: &LoadOptions) -> Result<Self, DataError> {
        if !dir.is_dir() {
            return Err(DataError::NotADirectory(dir.to_path_buf()));
        }
        let (train_dir, val_dir) = (dir.join("train"), dir.join("val"));
        let (classes, train_files, val_files) = if train_dir.is_dir() && val_dir.is_dir() {
            let (classes, train) = scan(&train_dir)?;
            let (val_classes, val) = scan(&val_dir)?;
            if val_classes != classes {
                let missing: Vec<_> = classes
                    .iter()
                    .filter(|c| !val_classes.contains(c))
                    .collect();
                let extra: Vec<_> = val_classes
                    .iter()
                    .filter(|c| !classes.contains(c))
                    .collect();
                return Err(DataError::ClassMismatch {
                    train: train_dir,
                    val: val_dir,
                    detail: format!("missing in val: {missing:?}; only in val: {extra:?}"),
                });
            }
            (classes, train, val)
        } else {
            let (classes, files) = scan(dir)?;
            let (train, val) = split(&classes, files, opts.val_fraction, opts.seed)?;
            (classes, train, val)
        };

        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(opts.workers.max(1))
            .build()
            .map_err(|e| DataError::Io {
                path: dir.to_path_buf(),
                source: std::io::Error::other(e),
            })?;
        let decode_all = |files: &Listing, eval| -> Vec<Result<Sample, (PathBuf, Rejected)>> {
            pool.install(|| {
                files
                    .par_iter()
                    .map(|(path, label)| {
                        decode(path, opts, eval)
                            .map(|pixels| Sample {
                                pixels,
                                label: *label,
                            })
                            .map_err(|reason| (path.clone(), reason))
                    })
                    .collect()
            })
        };
        let mut skipped = Vec::new();
        let mut keep = |results: Vec<Result<Sample, (PathBuf, Rejected)>>| {
            let mut samples = Vec::with_capacity(results.len());
            for r in results {
                match r {
                    Ok(s) => samples.push(s),
                    // A colour image for a grayscale model is a setting mismatch, never skipped.
                    Err((path, Rejected::Colour(found))) => {
                        return Err(DataError::Channels {
                            path,
                            found,
                            expected: 1,
                        });
                    }
                    Err((path, Rejected::Undecodable(reason))) => match opts.on_bad_image {
                        BadImagePolicy::Error => return Err(DataError::BadImage { path, reason }),
                        BadImagePolicy::Skip => skipped.push((path, reason)),
                    },
                }
            }
            Ok(samples)
        };
        let train = keep(decode_all(&train_files, None))?;
        let val = keep(decode_all(&val_files, opts.val_transform.as_ref()))?;
        Ok(Self {
            classes,
            train: Arc::new(train),
            val: Arc::new(val),
            skipped,
            image_size: opts.image_size,
        })
    }
}

/// Lists `dir/<class>/**/<image>` sorted by class then path.
fn scan(dir: &Path) -> Result<(Vec<String>, Listing), DataError> {
    let mut classes: Vec<String> = read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.starts_with('.'))
        .collect();
    classes.sort();
    if classes.is_empty() {
        return Err(DataError::NoClasses(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        let before = files.len();
        walk_images(&class_dir, &mut |p| files.push((p, label)))?;
        if files.len() == before {
            return Err(DataError::EmptyClass(class_dir));
        }
    }
    Ok((classes, files))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let io = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    entries.sort();
    Ok(entries)
}

fn walk_images(dir: &Path, found: &mut dyn FnMut(PathBuf)) -> Result<(), DataError> {
    for path in read_dir_sorted(dir)? {
        if path.is_dir() {
            walk_images(&path, found)?;
        } else if is_image(&path) {
            found(path);
        }
    }
    Ok(())
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Splits each class by `val_fraction` after a seeded shuffle (stratified).
fn split(
    classes: &[String],
    files: Listing,
    val_fraction: f64,
    seed: u64,
) -> Result<(Listing, Listing), DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (label, class) in classes.iter().enumerate() {
        let mut of_class: Vec<_> = files.iter().filter(|(_, l)| *l == label).cloned().collect();
        if of_class.len() < 2 {
            return Err(DataError::TooFewToSplit {
                class: class.clone(),
                count: of_class.len(),
            });
        }
        of_class.shuffle(&mut rng);
        let n_val =
            ((of_class.len() as f64 * val_fraction).round() as usize).clamp(1, of_class.len() - 1);
        val.extend(of_class.drain(..n_val));
        train.extend(of_class);
    }
    Ok((train, val))
}

/// Why [`decode`] rejected a file.
enum Rejected {
    /// It cannot be read or decoded (the reason).
    Undecodable(String),
    /// It is a colour image (its layout) and the samples are grayscale.
    Colour(String),
}

/// Decodes `path` to RGB (or grayscale, per `opts.channels`); then `eval`'s resize and crop,
/// or a resize of the shorter side to `opts.image_size` and a centre crop.
fn decode(
    path: &Path,
    opts: &LoadOptions,
    eval: Option<&kindling_finetune::EvalTransform>,
) -> Result<Vec<u8>, Rejected> {
    let bad = |e: &dyn std::fmt::Display| Rejected::Undecodable(e.to_string());
    let img = image::ImageReader::open(path)
        .map_err(|e| bad(&e))?
        .with_guessed_format()
        .map_err(|e| bad(&e))?
        .decode()
        .map_err(|e| bad(&e))?;
    let (w, h) = (img.width(), img.height());
    if w == 0 || h == 0 {
        return Err(bad(&"image has zero width or height"));
    }
    // `into_rgb8` guarantees RGB order and converts grayscale, RGBA and 16-bit images.
    let img = match opts.channels {
        1 if img.color().channel_count() > 2 => {
            return Err(Rejected::Colour(format!("{:?}", img.color())));
        }
        1 => DynamicImage::ImageLuma8(img.into_luma8()),
        _ => DynamicImage::ImageRgb8(img.into_rgb8()),
    };
    if let Some(eval) = eval {
        let channels = img.color().channel_count() as usize;
        let image = ImageBuf::new(w as usize, h as usize, channels, img.into_bytes())
            .map_err(|e| bad(&e))?;
        let out = eval.resize_and_crop(&image).map_err(|e| bad(&e))?;
        return Ok(out.data().to_vec());
    }
    let size = opts.image_size;
    if (w, h) == (size, size) {
        return Ok(img.into_bytes());
    }
    let scale = size as f64 / w.min(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(size),
        ((h as f64 * scale).round() as u32).max(size),
    );
    let resized = img.resize_exact(nw, nh, FilterType::Triangle);
    Ok(resized
        .crop_imm((nw - size) / 2, (nh - size) / 2, size, size)
        .into_bytes())
}

/// Per-channel normalisation applied to every image: `(x / 255 - mean) / std`.
pub const MEAN: [f32; 3] = [0.5, 0.5, 0.5];
/// See [`MEAN`].
pub const STD: [f32; 3] = [0.25, 0.25, 0.25];

/// Decoded samples as a Burn dataset of augmentable RGB images (labels stay in the
/// [`Sample`]s, found by index).
pub struct RgbSamples {
    samples: Arc<Vec<Sample>>,
    size: usize,
    channels: usize,
}

impl RgbSamples {
    /// `size × size` RGB samples.
    pub fn new(samples: Arc<Vec<Sample>>, size: u32) -> Self {
        Self::with_channels(samples, size, 3)
    }

    /// `size × size` samples of `channels` interleaved channels (1 for grayscale).
    pub fn with_channels(samples: Arc<Vec<Sample>>, size: u32, channels: usize) -> Self {
        Self {
            samples,
            size: size as usize,
            channels,
        }
    }
}

impl burn::data::dataset::Dataset<kindling_augment::Sample> for RgbSamples {
    fn get(&self, index: usize) -> Result<kindling_augment::Sample, DatasetError> {
        let pixels = self.samples[index].pixels.clone();
        let image = ImageBuf::new(self.size, self.size, self.channels, pixels)
            .map_err(DatasetError::new)?;
        Ok(kindling_augment::Sample::new(Image::U8(image)))
    }
    fn len(&self) -> usize {
        self.samples.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> LoadOptions {
        LoadOptions::rgb(8, 0.25, 1, 2)
    }

    fn folder(classes: &[(&str, usize)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (class, n) in classes {
            std::fs::create_dir_all(dir.path().join(class)).unwrap();
            for i in 0..*n {
                let img = image::RgbImage::from_pixel(10, 12, image::Rgb([i as u8, 0, 255]));
                img.save(dir.path().join(class).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        dir
    }

    #[test]
    fn split_is_stratified_and_seeded() {
        let dir = folder(&[("a", 8), ("b", 4)]);
        let ds = Dataset::load(dir.path(), &opts()).unwrap();
        assert_eq!(ds.classes, ["a", "b"]);
        assert_eq!((ds.train.len(), ds.val.len()), (9, 3));
        assert_eq!(ds.val.iter().filter(|s| s.label == 1).count(), 1);
        assert_eq!(ds.train[0].pixels.len(), 8 * 8 * 3);
        let again = Dataset::load(dir.path(), &opts()).unwrap();
        let ids = |d: &Dataset| d.val.iter().map(|s| s.pixels[0]).collect::<Vec<_>>();
        assert_eq!(ids(&ds), ids(&again));
    }

    #[test]
    fn grayscale_and_rgba_images_become_rgb() {
        let dir = folder(&[("a", 2), ("b", 2)]);
        image::GrayImage::from_pixel(8, 8, image::Luma([77]))
            .save(dir.path().join("a/gray.png"))
            .unwrap();
        image::RgbaImage::from_pixel(8, 8, image::Rgba([1, 2, 3, 4]))
            .save(dir.path().join("b/rgba.png"))
            .unwrap();
        let ds = Dataset::load(dir.path(), &opts()).unwrap();
        let all: Vec<_> = ds.train.iter().chain(ds.val.iter()).collect();
        assert!(all.iter().any(|s| s.pixels[..3] == [77, 77, 77]));
        assert!(all.iter().any(|s| s.pixels[..3] == [1, 2, 3]));
    }

    #[test]
    fn corrupt_image_is_named_or_skipped() {
        let dir = folder(&[("a", 3), ("b", 3)]);
        let bad = dir.path().join("b/broken.png");
        std::fs::write(&bad, b"not a png at all").unwrap();
        let err = Dataset::load(dir.path(), &opts()).unwrap_err().to_string();
        assert!(err.contains("broken.png"), "{err}");
        let skip = LoadOptions {
            on_bad_image: BadImagePolicy::Skip,
            ..opts()
        };
        let ds = Dataset::load(dir.path(), &skip).unwrap();
        assert_eq!(ds.skipped.len(), 1);
        assert_eq!(ds.skipped[0].0, bad);
        assert_eq!(ds.train.len() + ds.val.len(), 6);
    }

    #[test]
    fn one_channel_takes_grayscale_and_names_a_colour_image() {
        let dir = folder(&[("a", 3), ("b", 3)]);
        let gray = LoadOptions {
            channels: 1,
            ..opts()
        };
        let ds = Dataset::load(dir.path(), &gray).unwrap_err().to_string();
        assert!(ds.contains("Rgb8") && ds.contains("--in-chans"), "{ds}");
        let dir = tempfile::tempdir().unwrap();
        for class in ["a", "b"] {
            std::fs::create_dir_all(dir.path().join(class)).unwrap();
            for i in 0..2u8 {
                image::GrayImage::from_pixel(8, 8, image::Luma([40 * i + 10]))
                    .save(dir.path().join(class).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let ds = Dataset::load(dir.path(), &gray).unwrap();
        assert!(ds.train.iter().all(|s| s.pixels.len() == 64));
    }

    #[test]
    fn the_eval_transform_decodes_validation_images() {
        let dir = folder(&[("a", 4), ("b", 4)]);
        let eval = kindling_finetune::EvalTransform::new(
            8,
            0.5,
            kindling_finetune::Interpolation::Bilinear,
            [0.5; 3],
            [0.5; 3],
        );
        let ds = Dataset::load(
            dir.path(),
            &LoadOptions {
                val_transform: Some(eval),
                ..opts()
            },
        )
        .unwrap();
        assert!(ds.val.iter().all(|s| s.pixels.len() == 8 * 8 * 3));
    }

    #[test]
    fn layout_errors_say_what_is_wrong() {
        let empty = tempfile::tempdir().unwrap();
        let err = Dataset::load(empty.path(), &opts())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no class folders"), "{err}");
        let err = Dataset::load(&empty.path().join("nope"), &opts()).unwrap_err();
        assert!(matches!(err, DataError::NotADirectory(_)));
        let one = folder(&[("a", 1), ("b", 3)]);
        let err = Dataset::load(one.path(), &opts()).unwrap_err().to_string();
        assert!(err.contains("class `a` has 1 image"), "{err}");
    }

    #[test]
    fn train_and_val_trees_are_used_when_present() {
        let dir = tempfile::tempdir().unwrap();
        for (split, n) in [("train", 3), ("val", 2)] {
            for class in ["x", "y"] {
                let d = dir.path().join(split).join(class);
                std::fs::create_dir_all(&d).unwrap();
                for i in 0..n {
                    image::RgbImage::new(4, 4)
                        .save(d.join(format!("{i}.png")))
                        .unwrap();
                }
            }
        }
        let ds = Dataset::load(dir.path(), &opts()).unwrap();
        assert_eq!((ds.train.len(), ds.val.len()), (6, 4));
        std::fs::remove_dir_all(dir.path().join("val/y")).unwrap();
        let err = Dataset::load(dir.path(), &opts()).unwrap_err().to_string();
        assert!(
            err.contains("missing in val") && err.contains("\"y\""),
            "{err}"
        );
    }
}
