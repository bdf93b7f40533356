//! # kindling-run
//!
//! Devices and dtypes from strings, the typed run configuration (defaults < config file <
//! flags) and the optimizers every Kindling run uses. Re-exported by the `kindling` facade.
//!
//! ```
//! use kindling_run::{DeviceSpec, Precision, RunConfig, init_device};
//! let cfg = RunConfig::default();
//! let device = init_device(cfg.device, cfg.dtype, cfg.seed).unwrap();
//! # let _ = device;
//! ```

mod allocator;
mod amp;
mod args;
mod config;
mod cycling;
mod device;
mod error;
mod fs;
mod optim;
mod schedule;

pub use allocator::keep_freed_memory;
pub use amp::{Amp, GradScalerSettings};
pub use args::{
    RUN_FLAG_KEYS, RunArgs, document_defaults, flag_key, lookup, parse_number, parse_numbers,
};
pub use burn::optim::ModuleOptimizer;
pub use config::{
    OptimizerConfig, OptimizerKind, Overrides, RunConfig, Validate, did_you_mean, out_of_range,
    read_config_file, resolve_config, save_config, to_toml_string,
};
pub use cycling::MomentumHandle;
pub use device::{
    DEVICE_ENV, DEVICE_SYNTAX, DeviceSpec, Precision, compiled_features, init_device,
    set_burn_default_device,
};
pub use error::{ConfigError, DeviceError};
pub use fs::write_atomic;
pub use schedule::{Interval, ScheduleConfig};
