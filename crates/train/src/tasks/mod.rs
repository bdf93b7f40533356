//! The built-in training tasks, each in its own folder with its configuration section, data,
//! model and metrics; and the pieces they share.

pub mod classifier;
pub mod classify;
pub mod finetune;
pub mod segment;

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use kindling_run::{ConfigError, Overrides, RunArgs, Validate, flag_key};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::trainer::RunPaths;

/// What to do with an image that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadImagePolicy {
    /// Stop with an error naming the file (the default).
    #[default]
    Error,
    /// Skip the file and count it in the summary.
    Skip,
}

impl std::str::FromStr for BadImagePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(Self::Error),
            "skip" => Ok(Self::Skip),
            other => Err(format!("unknown policy `{other}`; expected error or skip")),
        }
    }
}

/// Touches every parameter of `model` so Burn's lazy initialisers run now, in module order:
/// a seeded device then always yields the same weights.
pub fn materialize<M: Module>(model: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}

/// Resolves a task's configuration: its defaults < `--config` file < the common flags and
/// the task's own (`task_flags` records those that were given).
pub fn resolve_task<C>(
    run: &RunArgs,
    task_flags: impl FnOnce(&mut Overrides),
) -> std::result::Result<C, ConfigError>
where
    C: Default + Serialize + DeserializeOwned + Validate,
{
    let mut overrides = Overrides::default();
    run.overrides(&mut overrides);
    task_flags(&mut overrides);
    kindling_run::resolve_config(&C::default(), run.config.as_deref(), &overrides)
}

/// The data directory: `data` if given, else the synthetic set that `generate` writes into
/// `<out>/data` (named `what` in the message).
pub fn data_dir(
    data: Option<&Path>,
    out: &Path,
    what: &str,
    generate: impl FnOnce(&Path) -> std::io::Result<PathBuf>,
) -> Result<PathBuf> {
    match data {
        Some(dir) => Ok(dir.to_path_buf()),
        None => {
            let dir = RunPaths::new(out).synthetic_data;
            eprintln!("generating the synthetic {what} in {}", dir.display());
            generate(&dir).map_err(TrainError::io(&dir))
        }
    }
}

/// Prints what was loaded: classes, split sizes, source and skipped files.
pub fn report_data(classes: &[String], train: usize, val: usize, dir: &Path, skipped: usize) {
    eprintln!(
        "data: {} classes {classes:?}, {train} train / {val} val samples from {}{}",
        classes.len(),
        dir.display(),
        match skipped {
            0 => String::new(),
            n => format!(", {n} bad file(s) skipped"),
        }
    );
}

/// The data flags every image task has (each task maps them to its own section through its
/// flag table).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ImageDataArgs {
    /// Data directory in the task's layout (see README); without it, a synthetic set is
    /// generated
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Validation fraction when DIR has no train/ + val/ split
    #[arg(long, allow_negative_numbers = true, value_parser = kindling_run::parse_number)]
    pub val_fraction: Option<f64>,
    /// Training resolution (shorter side resized, then centre-cropped)
    #[arg(long)]
    pub image_size: Option<u32>,
    /// Bad files: error (stop, naming the file) or skip (count them)
    #[arg(long)]
    pub on_bad_image: Option<BadImagePolicy>,
    /// Augmentation pipeline file for the training samples (.json, .yaml, .toml)
    #[arg(long, value_name = "FILE")]
    pub augment: Option<PathBuf>,
}

impl ImageDataArgs {
    /// Records the flags that were given, at the keys `table` names.
    pub fn overrides(&self, table: &[(&'static str, &'static str)], out: &mut Overrides) {
        let k = |id| flag_key(table, id);
        out.set(k("data"), self.data.clone())
            .set(k("val_fraction"), self.val_fraction)
            .set(k("image_size"), self.image_size)
            .set(k("on_bad_image"), self.on_bad_image)
            .set(k("augment"), self.augment.clone());
    }
}
