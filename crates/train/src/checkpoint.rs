//! Single-file training checkpoints, written atomically.
//!
//! Layout: the magic `KINDLCK1`, then three length-prefixed (u64 little-endian) sections:
//! the JSON [`CheckpointState`], the model's burnpack bytes and the optimizer's burnpack bytes.
//! One file means one rename publishes model, optimizer and state together: a run killed at
//! any instant leaves either the previous checkpoint or the new one, never a mix.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::History;

const MAGIC: &[u8; 8] = b"KINDLCK1";

/// Everything besides tensors needed to continue a run exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointState {
    /// The task that wrote it (`classify`, `segment`, or a user task's name).
    pub task: String,
    /// Epochs completed (the next epoch to run is `epoch + 1`).
    pub epoch: usize,
    /// The run's configuration, as resolved (JSON tree).
    pub config: serde_json::Value,
    /// The task's own state (class names, …), checked on resume.
    pub task_state: serde_json::Value,
    /// Metrics of every completed epoch.
    pub metrics: History,
    /// Seed of every RNG stream. Kindling keys each stream by (seed, epoch, item), so with
    /// `epoch` this is the complete RNG state: the device RNG is reseeded from
    /// (seed, epoch) at the start of each epoch, the shuffle of epoch e is a pure function of
    /// (seed, e).
    pub rng_seed: u64,
    /// Wall-clock seconds spent training so far (for throughput over resumed runs).
    pub train_seconds: f64,
    /// The learning-rate schedule's position (a burnpack `LrSchedulerRecord`), if any.
    #[serde(default)]
    pub scheduler: Option<Vec<u8>>,
    /// The best value of the task's selection metric so far, and its epoch.
    #[serde(default)]
    pub best: Option<(f64, usize)>,
    /// The loss scaler's state (`amp` runs).
    #[serde(default)]
    pub grad_scaler: Option<kindling_precision::GradScalerState>,
}

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    /// Non-tensor state.
    pub state: CheckpointState,
    /// Model parameters (burnpack).
    pub model: Vec<u8>,
    /// Optimizer state (burnpack).
    pub optimizer: Vec<u8>,
}

/// A checkpoint file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// I/O failure.
    #[error("cannot access checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Not a Kindling checkpoint, truncated, or corrupt.
    #[error("checkpoint {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let json = serde_json::to_vec(&self.state).map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut bytes =
            Vec::with_capacity(8 + 24 + json.len() + self.model.len() + self.optimizer.len());
        bytes.extend_from_slice(MAGIC);
        for section in [&json, &self.model, &self.optimizer] {
            bytes.extend_from_slice(&(section.len() as u64).to_le_bytes());
            bytes.extend_from_slice(section);
        }
        kindling_run::write_atomic(path, &bytes).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let corrupt = |reason: &str| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| corrupt("not a Kindling checkpoint (bad magic)"))?;
        let mut sections = Vec::with_capacity(3);
        let mut rest = rest;
        for name in ["state", "model", "optimizer"] {
            let (len, tail) = rest
                .split_first_chunk::<8>()
                .ok_or_else(|| corrupt(&format!("truncated before the {name} section")))?;
            let len = usize::try_from(u64::from_le_bytes(*len))
                .map_err(|_| corrupt("section length overflows"))?;
            if tail.len() < len {
                return Err(corrupt(&format!("truncated {name} section")));
            }
            let (section, tail) = tail.split_at(len);
            sections.push(section.to_vec());
            rest = tail;
        }
        if !rest.is_empty() {
            return Err(corrupt("trailing bytes after the optimizer section"));
        }
        let optimizer = sections.pop().unwrap_or_default();
        let model = sections.pop().unwrap_or_default();
        let state = serde_json::from_slice(&sections.pop().unwrap_or_default())
            .map_err(|e| corrupt(&format!("bad state section: {e}")))?;
        Ok(Self {
            state,
            model,
            optimizer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::EpochRow;

    fn sample() -> Checkpoint {
        Checkpoint {
            state: CheckpointState {
                task: "classify".into(),
                epoch: 2,
                config: serde_json::json!({"seed": 1}),
                task_state: serde_json::json!({"classes": ["a", "b"]}),
                // Values whose JSON round trip needs correctly rounded parsing.
                metrics: History {
                    columns: vec!["train_loss".into(), "val_accuracy".into()],
                    rows: vec![EpochRow {
                        epoch: 1,
                        values: vec![1.5929235935211181, f64::MIN_POSITIVE],
                        lr: 0.016659440098579996,
                        seconds: 1.0,
                        images_per_sec: 2.0,
                    }],
                },
                rng_seed: 1,
                train_seconds: 1.5,
                scheduler: Some(vec![4, 2]),
                best: Some((0.1 + 0.2, 1)),
                grad_scaler: Some(kindling_precision::GradScalerState {
                    scale: 32768.0,
                    growth_tracker: 7,
                    consecutive_skips: 1,
                    skipped_steps: 3,
                }),
            },
            model: vec![1, 2, 3],
            optimizer: vec![9; 10],
        }
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.ckpt");
        sample().save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.state, sample().state);
        assert_eq!((back.model, back.optimizer), (vec![1, 2, 3], vec![9; 10]));

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 4]).unwrap();
        let msg = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(
            msg.contains("truncated optimizer") && msg.contains("last.ckpt"),
            "{msg}"
        );
        std::fs::write(&path, b"garbage!garbage").unwrap();
        assert!(
            Checkpoint::load(&path)
                .unwrap_err()
                .to_string()
                .contains("bad magic")
        );
    }
}
