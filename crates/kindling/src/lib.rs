//! # Kindling
//!
//! The advanced-training toolbox for [Burn](https://burn.dev): one code path on every Burn
//! device, typed hyper-parameters from defaults, config files and flags, and (in its own
//! crates) losses, schedulers, augmentation, fine-tuning and mixed precision.
//!
//! This facade owns the backend cargo features (`flex` by default; `wgpu`, `vulkan`, `metal`,
//! `cuda`, `tch`), device and dtype selection from strings, and the run configuration (`kindling-run`,
//! re-exported here), and re-exports every Kindling crate.
//!
//! ```
//! use kindling::{DeviceSpec, Precision, RunConfig, init_device};
//! let cfg = RunConfig::default();
//! let device = init_device(cfg.device, cfg.dtype, cfg.seed).unwrap();
//! # let _ = device;
//! ```

pub use kindling_run::*;

/// Image and target augmentation (`kindling-augment`).
pub use kindling_augment as augment;
/// The model zoo: torchvision architectures behind timm's API, weights, freezing
/// (`kindling-finetune`).
pub use kindling_finetune as finetune;
/// Segmentation and detection losses (`kindling-losses`).
pub use kindling_losses as losses;
/// The layers every Kindling model is built from (`kindling-nn`).
pub use kindling_nn as nn;
/// ONNX models as fine-tunable Burn modules (burn-onnx's code generator).
pub use kindling_onnx as onnx;
/// Mixed precision: loss scaling (`kindling-precision`).
pub use kindling_precision as precision;
/// Learning-rate schedules (`kindling-schedulers`).
pub use kindling_schedulers as schedulers;
/// The training engine: `Task`, `Trainer`, the built-in tasks (`kindling-train`).
pub use kindling_train as train;

/// Burn itself, at the version Kindling is built against.
pub use burn;
