//! `cargo xtask train classify`: an image classifier on an ImageFolder tree or on generated
//! shapes.

pub mod config;
pub mod data;
pub mod model;
pub mod synth;
pub mod train;

pub use config::{CLASSIFY_FLAG_KEYS, ClassifyArgs, ClassifyConfig, ClassifyRun};
pub use train::{Outcome, RunPaths, run};
