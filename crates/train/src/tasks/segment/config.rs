//! The segment task's configuration: the common run settings plus a `[segment]` section.

use std::path::PathBuf;

use kindling_run::{
    ConfigError, OptimizerConfig, RunArgs, RunConfig, Validate, flag_key, out_of_range,
};
use serde::{Deserialize, Serialize};

use crate::tasks::{BadImagePolicy, ImageDataArgs};

/// Everything a `cargo xtask train segment` run is configured by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRun {
    /// Settings every task has.
    #[serde(flatten)]
    pub run: RunConfig,
    /// Settings of this task.
    pub segment: SegmentConfig,
}

/// The `[segment]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentConfig {
    /// Segmentation folder (`images/`, `masks/`, optional `classes.txt`, optional `train/` and
    /// `val/`); unset = generate the synthetic set in `<out>/data`.
    pub data: Option<PathBuf>,
    /// Fraction held out for validation when `data` has no `train/` + `val/` sub-trees.
    pub val_fraction: f64,
    /// Images and masks are resized and centre-cropped to `image_size × image_size`.
    pub image_size: u32,
    /// Mask value of unlabelled pixels (excluded from the loss and the metrics).
    pub ignore_index: u8,
    /// Number of classes when the data has no `classes.txt` (unset: largest mask value + 1).
    pub num_classes: Option<usize>,
    /// What to do with a bad image/mask pair: `error` or `skip`.
    pub on_bad_image: BadImagePolicy,
    /// Images in the synthetic set (used when `data` is unset).
    pub synthetic_count: usize,
    /// Channels of the U-Net's encoder levels (the bottleneck has twice the last).
    pub widths: Vec<usize>,
    /// Augmentation pipeline file (.json, .yaml, .toml) applied to training images and their
    /// masks (nearest for masks).
    pub augment: Option<PathBuf>,
    /// Validation images drawn in `<out>/predictions.png`.
    pub preview: usize,
}

impl Default for SegmentRun {
    fn default() -> Self {
        Self {
            run: RunConfig {
                out: PathBuf::from("runs/segment"),
                // Measured on 2 cores: about 10 s per epoch; batches of 8 converge in fewer
                // epochs than 16, and the cosine decay settles the masks' edges at the end.
                epochs: 20,
                batch_size: 8,
                scheduler: serde_json::from_value(serde_json::json!({
                    "name": "cosine_annealing_lr",
                    "t_max": 20
                }))
                .ok(),
                optimizer: OptimizerConfig {
                    name: kindling_run::OptimizerKind::Adam,
                    lr: 3e-3,
                    weight_decay: 0.0,
                    ..OptimizerConfig::default()
                },
                loss: kindling_losses::LossConfig::from_json(serde_json::json!({
                    "name": "cross_entropy",
                    "ignore_index": 255
                }))
                .unwrap_or_default(),
                ..RunConfig::default()
            },
            segment: SegmentConfig {
                data: None,
                val_fraction: 0.2,
                image_size: 48,
                ignore_index: 255,
                num_classes: None,
                on_bad_image: BadImagePolicy::Error,
                synthetic_count: 320,
                widths: vec![12, 24, 48],
                augment: None,
                preview: 8,
            },
        }
    }
}

impl Validate for SegmentRun {
    fn validate(&self) -> Result<(), ConfigError> {
        self.run.validate()?;
        let s = &self.segment;
        if !(s.val_fraction > 0.0 && s.val_fraction < 1.0) {
            return Err(out_of_range(
                "segment.val_fraction",
                s.val_fraction,
                "must be strictly between 0 and 1",
            ));
        }
        if s.widths.is_empty() || s.widths.contains(&0) {
            return Err(out_of_range(
                "segment.widths",
                format!("{:?}", s.widths),
                "must list at least one positive channel count",
            ));
        }
        let step = 1u32 << s.widths.len();
        if s.image_size < step || !s.image_size.is_multiple_of(step) {
            return Err(out_of_range(
                "segment.image_size",
                s.image_size,
                "must be a multiple of 2^depth (the U-Net halves it once per level)",
            ));
        }
        if s.synthetic_count < 4 {
            return Err(out_of_range(
                "segment.synthetic_count",
                s.synthetic_count,
                "must be at least 4",
            ));
        }
        if s.num_classes == Some(0) || s.num_classes.is_some_and(|n| n > 255) {
            return Err(out_of_range(
                "segment.num_classes",
                format!("{:?}", s.num_classes),
                "must be between 1 and 255",
            ));
        }
        Ok(())
    }
}

/// Flags of `cargo xtask train segment`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SegmentArgs {
    /// Common run flags.
    #[command(flatten)]
    pub run: RunArgs,
    /// Data flags (`segment.data`, …).
    #[command(flatten)]
    pub data: ImageDataArgs,
    /// Mask value of unlabelled pixels
    #[arg(long)]
    pub ignore_index: Option<u8>,
    /// Number of classes when the data has no classes.txt
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Images of the generated dataset (without --data)
    #[arg(long)]
    pub synthetic_count: Option<usize>,
}

/// Which configuration key each segment-only flag sets.
pub const SEGMENT_FLAG_KEYS: &[(&str, &str)] = &[
    ("data", "segment.data"),
    ("val_fraction", "segment.val_fraction"),
    ("image_size", "segment.image_size"),
    ("ignore_index", "segment.ignore_index"),
    ("num_classes", "segment.num_classes"),
    ("on_bad_image", "segment.on_bad_image"),
    ("synthetic_count", "segment.synthetic_count"),
    ("augment", "segment.augment"),
];

impl SegmentArgs {
    /// Resolves defaults < `--config` file < flags.
    pub fn resolve(&self) -> Result<SegmentRun, ConfigError> {
        crate::tasks::resolve_task(&self.run, |out| {
            let k = |id| flag_key(SEGMENT_FLAG_KEYS, id);
            self.data.overrides(SEGMENT_FLAG_KEYS, out);
            out.set(k("ignore_index"), self.ignore_index)
                .set(k("num_classes"), self.num_classes)
                .set(k("synthetic_count"), self.synthetic_count);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classify_key_in_the_segment_section_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("run.toml");
        std::fs::write(&file, "[segment]\nsynthetic_per_class = 3\n").unwrap();
        let args = SegmentArgs {
            run: RunArgs {
                config: Some(file),
                ..Default::default()
            },
            ..Default::default()
        };
        let msg = args.resolve().unwrap_err().to_string();
        assert!(msg.contains("`segment.synthetic_per_class`"), "{msg}");
    }

    #[test]
    fn image_size_must_suit_the_unet_depth() {
        let args = SegmentArgs {
            data: ImageDataArgs {
                image_size: Some(50),
                ..Default::default()
            },
            ..Default::default()
        };
        let msg = args.resolve().unwrap_err().to_string();
        assert!(msg.contains("segment.image_size"), "{msg}");
    }
}
