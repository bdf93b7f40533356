//! Kindling's task runner as a library: training tasks, the device smoke test and checks.
//!
//! The binary (`cargo xtask …`) is a thin command-line layer over these modules.

pub mod augment_grid;
pub mod bench;
pub mod check_losses;
pub mod checks;
pub mod finetune_onnx;
pub mod gpu;
pub mod import_onnx;
pub mod lr;
pub mod smoke;
pub mod train_cli;
pub mod zoo;
