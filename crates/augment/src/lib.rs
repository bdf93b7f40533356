//! # kindling-augment
//!
//! imgaug-style augmentation for Burn: images over `u8`, `u16` and `f32` with 1, 3 or 4
//! channels, with segmentation masks, heatmaps, bounding boxes and keypoints moved by the same
//! sampled parameters. A [`Pipeline`] has a seed, and sample `i` of epoch `e` depends only on
//! `(seed, e, i)`: identical for any number of threads or DataLoader workers. Every call can be
//! recorded and replayed, and pipelines are serde (JSON, YAML, TOML).
//!
//! ```
//! use kindling_augment::{Fliplr, Image, ImageBuf, Pipeline, Sample, Sequential};
//!
//! let pipeline = Pipeline::new(
//!     Sequential { children: vec![Box::new(Fliplr { p: 0.5 })], random_order: false },
//!     42,
//! )?;
//! let image = Image::U8(ImageBuf::filled(32, 24, 3, 128)?);
//! let once = pipeline.augment(Sample::new(image.clone()), 0, 7)?;
//! let again = pipeline.augment(Sample::new(image), 0, 7)?;
//! assert_eq!(once, again); // (seed, epoch, index) decide everything
//! # Ok::<(), kindling_augment::AugmentError>(())
//! ```

mod augmenter;
mod batch;
mod containers;
mod error;
mod image;
mod kernels;
pub mod ops;
mod param;
mod pipeline;
mod simd;
mod target;
mod tensor;

pub use augmenter::{AugRng, Augmenter, Op, Record, sample_rng};
pub use batch::{AugmentBatcher, Batch, IndexedDataset, Item};
pub use containers::{Count, Identity, Lambda, LambdaFn, OneOf, Sequential, SomeOf, Sometimes};
pub use error::{AugmentError, Result};
pub use image::{Image, ImageBuf, Pixel};
pub use kernels::pil::{PilFilter, resize_pil};
pub use ops::*;
pub use param::{Dist, Param, check_probability};
pub use pipeline::{AugmenterSpec, OP_NAMES, Pipeline, PipelineConfig};
pub use target::{BBox, BoxFormat, BoxParams, Keypoint, Sample};
pub use tensor::{IMAGENET_MEAN, IMAGENET_STD, to_tensor};
