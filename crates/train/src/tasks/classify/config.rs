//! The classify task's configuration: the common run settings plus a `[classify]` section.

use std::path::PathBuf;

use kindling_run::{
    ConfigError, OptimizerConfig, RunArgs, RunConfig, Validate, flag_key, out_of_range,
};
use serde::{Deserialize, Serialize};

use crate::tasks::{BadImagePolicy, ImageDataArgs};

/// Everything a `cargo xtask train classify` run is configured by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifyRun {
    /// Settings every task has.
    #[serde(flatten)]
    pub run: RunConfig,
    /// Settings of this task.
    pub classify: ClassifyConfig,
}

/// The `[classify]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifyConfig {
    /// ImageFolder directory; unset = generate the synthetic shapes dataset in `<out>/data`.
    pub data: Option<PathBuf>,
    /// Fraction of each class held out for validation when `data` has no `val/` tree.
    pub val_fraction: f64,
    /// Images are resized and centre-cropped to `image_size × image_size`.
    pub image_size: u32,
    /// What to do with an undecodable image: `error` or `skip`.
    pub on_bad_image: BadImagePolicy,
    /// Images per class of the synthetic dataset (used when `data` is unset).
    pub synthetic_per_class: usize,
    /// Output channels of the model's conv blocks.
    pub widths: Vec<usize>,
    /// Augmentation pipeline file (.json, .yaml, .toml) applied to training images; its seed
    /// is combined with the epoch and each image's index.
    pub augment: Option<PathBuf>,
}

impl Default for ClassifyRun {
    fn default() -> Self {
        Self {
            run: RunConfig {
                out: PathBuf::from("runs/classify"),
                // 0.05 (the generic default) reaches the same accuracy but its last epochs
                // oscillate on some seeds; with a constant rate 0.02 ends where it peaks.
                optimizer: OptimizerConfig {
                    lr: 0.02,
                    ..OptimizerConfig::default()
                },
                ..RunConfig::default()
            },
            classify: ClassifyConfig {
                data: None,
                val_fraction: 0.2,
                image_size: 32,
                on_bad_image: BadImagePolicy::Error,
                synthetic_per_class: 400,
                widths: vec![16, 32, 64],
                augment: None,
            },
        }
    }
}

impl Validate for ClassifyRun {
    fn validate(&self) -> Result<(), ConfigError> {
        self.run.validate()?;
        let c = &self.classify;
        if !(c.val_fraction > 0.0 && c.val_fraction < 1.0) {
            return Err(out_of_range(
                "classify.val_fraction",
                c.val_fraction,
                "must be strictly between 0 and 1",
            ));
        }
        if c.image_size < 4 {
            return Err(out_of_range(
                "classify.image_size",
                c.image_size,
                "must be at least 4",
            ));
        }
        if c.synthetic_per_class < 2 {
            return Err(out_of_range(
                "classify.synthetic_per_class",
                c.synthetic_per_class,
                "must be at least 2",
            ));
        }
        if c.widths.is_empty() || c.widths.contains(&0) {
            return Err(out_of_range(
                "classify.widths",
                format!("{:?}", c.widths),
                "must list at least one positive channel count",
            ));
        }
        if c.image_size >> c.widths.len() == 0 {
            return Err(out_of_range(
                "classify.widths",
                format!("{:?}", c.widths),
                "too many blocks for image_size: each block halves the resolution",
            ));
        }
        Ok(())
    }
}

/// Flags of `cargo xtask train classify`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClassifyArgs {
    /// Common run flags.
    #[command(flatten)]
    pub run: RunArgs,
    /// Data flags (`classify.data`, …).
    #[command(flatten)]
    pub data: ImageDataArgs,
    /// Images per class of the generated dataset (without --data)
    #[arg(long)]
    pub synthetic_per_class: Option<usize>,
}

/// Which configuration key each classify-only flag sets.
pub const CLASSIFY_FLAG_KEYS: &[(&str, &str)] = &[
    ("data", "classify.data"),
    ("val_fraction", "classify.val_fraction"),
    ("image_size", "classify.image_size"),
    ("on_bad_image", "classify.on_bad_image"),
    ("synthetic_per_class", "classify.synthetic_per_class"),
    ("augment", "classify.augment"),
];

impl ClassifyArgs {
    /// Resolves defaults < `--config` file < flags.
    pub fn resolve(&self) -> Result<ClassifyRun, ConfigError> {
        crate::tasks::resolve_task(&self.run, |out| {
            let k = |id| flag_key(CLASSIFY_FLAG_KEYS, id);
            self.data.overrides(CLASSIFY_FLAG_KEYS, out);
            out.set(k("synthetic_per_class"), self.synthetic_per_class);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn val_fraction_outside_open_unit_interval_is_rejected() {
        for bad in [0.0, 1.0, -0.1, 1.5] {
            let args = ClassifyArgs {
                data: ImageDataArgs {
                    val_fraction: Some(bad),
                    ..Default::default()
                },
                ..Default::default()
            };
            let msg = args.resolve().unwrap_err().to_string();
            assert!(msg.contains("classify.val_fraction"), "{bad}: {msg}");
        }
    }

    #[test]
    fn unknown_key_in_the_task_section_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.toml");
        std::fs::write(&file, "[classify]\nimage_sise = 16\n").unwrap();
        let args = ClassifyArgs {
            run: RunArgs {
                config: Some(file),
                ..Default::default()
            },
            ..Default::default()
        };
        let msg = args.resolve().unwrap_err().to_string();
        assert!(msg.contains("`classify.image_sise`"), "{msg}");
        assert!(msg.contains("did you mean `classify.image_size`"), "{msg}");
    }

    #[test]
    fn printed_config_replays_to_the_same_run() {
        let args = ClassifyArgs {
            data: ImageDataArgs {
                data: Some("some/dir".into()),
                image_size: Some(48),
                ..Default::default()
            },
            ..Default::default()
        };
        let cfg = args.resolve().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        kindling_run::save_config(&cfg, &file).unwrap();
        let replay = ClassifyArgs {
            run: RunArgs {
                config: Some(file),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(replay.resolve().unwrap(), cfg);
    }
}
