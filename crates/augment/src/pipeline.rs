//! A seeded pipeline: the augmenter tree, the seed and the box filter. Sample `i` of epoch `e`
//! is augmented with a generator seeded from `(seed, e, i)` only, so any number of threads or
//! DataLoader workers gives the same result (imgaug #406 solved by construction).

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::containers::{Count, OneOf, Sequential, SomeOf, Sometimes};
use crate::ops::*;
use crate::{
    AugmentError, Augmenter, BoxParams, Identity, Image, Record, Result, Sample, sample_rng,
};

macro_rules! registry {
    ($($name:literal => $ty:ident),* $(,)?) => {
        /// An augmenter tree as written in a pipeline file: `{ "op": "affine", "rotate": [-25, 25] }`.
        /// Containers hold their children; every op's options are its struct's fields.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "op", rename_all = "snake_case")]
        pub enum AugmenterSpec {
            /// Every child in order (or shuffled per sample).
            Sequential {
                /// The children.
                children: Vec<AugmenterSpec>,
                /// Shuffle the order per sample.
                #[serde(default)]
                random_order: bool,
            },
            /// `then` with probability `p`, else `else`.
            Sometimes {
                /// Probability of `then`.
                p: f64,
                /// Applied with probability `p`.
                then: Box<AugmenterSpec>,
                /// Applied otherwise.
                #[serde(default, rename = "else", skip_serializing_if = "Option::is_none")]
                otherwise: Option<Box<AugmenterSpec>>,
            },
            /// One child, chosen uniformly.
            OneOf {
                /// The candidates.
                children: Vec<AugmenterSpec>,
            },
            /// `n` (or `[a, b]`) children.
            SomeOf {
                /// How many.
                n: Count,
                /// The candidates.
                children: Vec<AugmenterSpec>,
                /// Shuffle the chosen ones.
                #[serde(default)]
                random_order: bool,
            },
            /// Nothing.
            Identity,
            $(
                #[doc = concat!("[`", stringify!($ty), "`]")]
                #[serde(rename = $name)]
                $ty($ty),
            )*
        }

        /// Every op name, for messages.
        pub const OP_NAMES: &[&str] = &["sequential", "sometimes", "one_of", "some_of", "identity", $($name),*];

        impl AugmenterSpec {
            /// The augmenter, validated.
            pub fn build(&self) -> Result<Box<dyn Augmenter>> {
                let built: Box<dyn Augmenter> = match self {
                    AugmenterSpec::Sequential { children, random_order } => Box::new(Sequential {
                        children: children.iter().map(|c| c.build()).collect::<Result<_>>()?,
                        random_order: *random_order,
                    }),
                    AugmenterSpec::Sometimes { p, then, otherwise } => Box::new(Sometimes {
                        p: *p,
                        then: then.build()?,
                        otherwise: otherwise.as_ref().map(|o| o.build()).transpose()?,
                    }),
                    AugmenterSpec::OneOf { children } => Box::new(OneOf {
                        children: children.iter().map(|c| c.build()).collect::<Result<_>>()?,
                    }),
                    AugmenterSpec::SomeOf { n, children, random_order } => Box::new(SomeOf {
                        n: *n,
                        children: children.iter().map(|c| c.build()).collect::<Result<_>>()?,
                        random_order: *random_order,
                    }),
                    AugmenterSpec::Identity => Box::new(Identity),
                    $(AugmenterSpec::$ty(op) => Box::new(op.clone()),)*
                };
                built.validate()?;
                Ok(built)
            }
        }
    };
}

// One line per op; each family file under `ops/` defines the struct (its options, serde).
registry! {
    // geometry
    "fliplr" => Fliplr,
    "flipud" => Flipud,
    "rot90" => Rot90,
    "rotate" => Rotate,
    "affine" => Affine,
    "crop" => Crop,
    "pad" => Pad,
    "crop_and_pad" => CropAndPad,
    "center_crop" => CenterCrop,
    "random_crop" => RandomCrop,
    "random_resized_crop" => RandomResizedCrop,
    "resize" => Resize,
    "perspective_transform" => PerspectiveTransform,
    "elastic_transformation" => ElasticTransformation,
    "grid_distortion" => GridDistortion,
    "pad_if_needed" => PadIfNeeded,
    "piecewise_affine" => PiecewiseAffine,
    // GEOMETRY-OPS (keep this marker: new geometric ops go above it)
    // noise, dropout and filters
    "additive_gaussian_noise" => AdditiveGaussianNoise,
    "additive_laplace_noise" => AdditiveLaplaceNoise,
    "salt_and_pepper" => SaltAndPepper,
    "dropout" => Dropout,
    "coarse_dropout" => CoarseDropout,
    "cutout" => Cutout,
    "gaussian_blur" => GaussianBlur,
    "average_blur" => AverageBlur,
    "median_blur" => MedianBlur,
    "motion_blur" => MotionBlur,
    "sharpen" => Sharpen,
    "emboss" => Emboss,
    "normalize" => Normalize,
    // colour, contrast and intensity
    "add" => Add,
    "multiply" => Multiply,
    "multiply_brightness" => MultiplyBrightness,
    "linear_contrast" => LinearContrast,
    "gamma_contrast" => GammaContrast,
    "invert" => Invert,
    "solarize" => Solarize,
    "posterize" => Posterize,
    "grayscale" => Grayscale,
    "add_to_hue_and_saturation" => AddToHueAndSaturation,
    "histogram_equalization" => HistogramEqualization,
    "clahe" => Clahe,
    "jpeg_compression" => JpegCompression,
    "channel_shuffle" => ChannelShuffle,
    // PIXEL-OPS (keep this marker: new pixel ops go above it)
}

/// A pipeline file: the seed, the box filter and the augmenter tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Seed of every sample's generator (with the epoch and the sample index).
    #[serde(default)]
    pub seed: u64,
    /// Box clipping and filtering after the pipeline.
    #[serde(default)]
    pub boxes: BoxParams,
    /// The augmenter tree.
    pub pipeline: AugmenterSpec,
}

/// A seeded, validated augmentation pipeline.
#[derive(Debug)]
pub struct Pipeline {
    seed: u64,
    boxes: BoxParams,
    root: Box<dyn Augmenter>,
    spec: Option<PipelineConfig>,
}

impl Pipeline {
    /// A pipeline from Rust code (closures allowed; it cannot be saved to a file).
    pub fn new(root: impl Augmenter + 'static, seed: u64) -> Result<Self> {
        root.validate()?;
        Ok(Self {
            seed,
            boxes: BoxParams::default(),
            root: Box::new(root),
            spec: None,
        })
    }

    /// Sets the box filter (Albumentations' `BboxParams`).
    pub fn with_box_params(mut self, boxes: BoxParams) -> Self {
        self.boxes = boxes;
        if let Some(spec) = &mut self.spec {
            spec.boxes = boxes;
        }
        self
    }

    /// A pipeline from its configuration.
    pub fn from_config(config: PipelineConfig) -> Result<Self> {
        let root = config.pipeline.build()?;
        Ok(Self {
            seed: config.seed,
            boxes: config.boxes,
            root,
            spec: Some(config),
        })
    }

    /// Reads a pipeline file: `.json`, `.yaml`/`.yml` or `.toml`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| AugmentError::Config(format!("cannot read {}: {e}", path.display())))?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        let config = PipelineConfig::parse(&text, ext)
            .map_err(|e| AugmentError::Config(format!("{}: {e}", path.display())))?;
        Self::from_config(config)
    }

    /// The configuration this pipeline was built from (none for Rust-built pipelines).
    pub fn config(&self) -> Option<&PipelineConfig> {
        self.spec.as_ref()
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Augments sample `index` of epoch `epoch`.
    pub fn augment(&self, sample: Sample, epoch: u64, index: u64) -> Result<Sample> {
        sample.validate()?;
        let mut rng = sample_rng(self.seed, epoch, index);
        let mut out = self.root.run(sample, &mut rng)?;
        out.boxes = self
            .boxes
            .filter(out.boxes, out.image.width(), out.image.height());
        Ok(out)
    }

    /// Augments sample `index` of epoch `epoch` and returns what was sampled.
    pub fn augment_recorded(
        &self,
        sample: Sample,
        epoch: u64,
        index: u64,
    ) -> Result<(Sample, Record)> {
        sample.validate()?;
        let mut rng = sample_rng(self.seed, epoch, index);
        let (mut out, record) = self.root.augment(sample, &mut rng)?;
        out.boxes = self
            .boxes
            .filter(out.boxes, out.image.width(), out.image.height());
        Ok((out, record))
    }

    /// Applies a record of [`Self::augment_recorded`] again, to this or another sample.
    pub fn replay(&self, sample: Sample, record: &Record) -> Result<Sample> {
        sample.validate()?;
        let mut out = self.root.replay(sample, record)?;
        out.boxes = self
            .boxes
            .filter(out.boxes, out.image.width(), out.image.height());
        Ok(out)
    }

    /// Augments one image (no targets).
    pub fn augment_image(&self, image: Image, epoch: u64, index: u64) -> Result<Image> {
        Ok(self.augment(Sample::new(image), epoch, index)?.image)
    }

    /// Augments images `first_index..` of epoch `epoch` in parallel; each image (of any size)
    /// gets its own parameters, and the result does not depend on the thread count.
    pub fn augment_images(
        &self,
        images: Vec<Image>,
        epoch: u64,
        first_index: u64,
    ) -> Result<Vec<Image>> {
        images
            .into_par_iter()
            .enumerate()
            .map(|(i, img)| self.augment_image(img, epoch, first_index + i as u64))
            .collect()
    }

    /// Augments samples `first_index..` of epoch `epoch` in parallel.
    pub fn augment_batch(
        &self,
        samples: Vec<Sample>,
        epoch: u64,
        first_index: u64,
    ) -> Result<Vec<Sample>> {
        samples
            .into_par_iter()
            .enumerate()
            .map(|(i, s)| self.augment(s, epoch, first_index + i as u64))
            .collect()
    }
}

impl PipelineConfig {
    /// Parses a pipeline from text by format: `json`, `yaml`/`yml` or `toml`.
    pub fn parse(text: &str, format: &str) -> std::result::Result<Self, String> {
        match format {
            "json" => serde_json::from_str(text).map_err(|e| e.to_string()),
            "yaml" | "yml" => serde_yaml_ng::from_str(text).map_err(|e| e.to_string()),
            "toml" => toml::from_str(text).map_err(|e| e.to_string()),
            other => Err(format!(
                "unsupported pipeline format `{other}`; use .json, .yaml or .toml"
            )),
        }
    }
}
