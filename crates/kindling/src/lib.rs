//! # Kindling
//!
//! The advanced-training toolbox for [Burn](https://burn.dev): one code path on every Burn
//! device, typed hyper-parameters from defaults, config files and flags, and (in its own
//! crates) losses, schedulers, augmentation, fine-tuning and mixed precision.
//!
//! This facade owns the backend cargo features (`flex` by default; `wgpu`, `vulkan`, `metal`,
//! `cuda`, `tch`), device and dtype selection from strings, and the run configuration.
//!
//! ```
//! use kindling::{DeviceSpec, Precision, RunConfig, init_device};
//! let cfg = RunConfig::default();
//! let device = init_device(cfg.device, cfg.dtype, cfg.seed).unwrap();
//! # let _ = device;
//! ```

mod args;
mod config;
mod cycling;
mod device;
mod error;
mod fs;
mod optim;
mod schedule;

pub use args::{RUN_FLAG_KEYS, RunArgs, document_defaults, flag_key, lookup, parse_number};
pub use burn::optim::ModuleOptimizer;
pub use config::{
    OptimizerConfig, OptimizerKind, Overrides, RunConfig, Validate, out_of_range, read_config_file,
    resolve_config, save_config, to_toml_string,
};
pub use cycling::MomentumHandle;
pub use device::{
    DEVICE_ENV, DEVICE_SYNTAX, DeviceSpec, Precision, compiled_features, init_device,
    set_burn_default_device,
};
pub use error::{ConfigError, DeviceError};
pub use fs::write_atomic;
pub use schedule::{Interval, ScheduleConfig};

/// Learning-rate schedules (`kindling-schedulers`).
pub use kindling_augment as augment;
pub use kindling_losses as losses;
pub use kindling_schedulers as schedulers;

/// Burn itself, at the version Kindling is built against.
pub use burn;
