//! The training engine's errors: one enum, each variant naming what went wrong and where.

use std::path::PathBuf;

use crate::checkpoint::CheckpointError;

/// Why a training run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The run configuration is invalid.
    #[error(transparent)]
    Config(#[from] kindling_run::ConfigError),
    /// The device or dtype cannot be used.
    #[error(transparent)]
    Device(#[from] kindling_run::DeviceError),
    /// Mixed precision: a scaler that cannot be built, or a collapsed loss scale.
    #[error(transparent)]
    Precision(#[from] kindling_precision::PrecisionError),
    /// A dataset could not be read (the message names the file).
    #[error("{0}")]
    Data(String),
    /// Augmentation failed on a sample, or a pipeline file is unusable.
    #[error("augmentation: {0}")]
    Augment(#[from] kindling_augment::AugmentError),
    /// The augmentation pipeline produced images of another size than the model trains on.
    #[error(
        "the augmentation pipeline turned a {expected} image into {got}; end it with a resize \
         or crop to the training size"
    )]
    AugmentSize {
        /// The training size, as `W×H×C`.
        expected: String,
        /// What came out, as `W×H×C`.
        got: String,
    },
    /// The loss cannot be built or does not fit the task.
    #[error("{0}")]
    Loss(String),
    /// The learning-rate schedule cannot be built or stepped.
    #[error("scheduler: {0}")]
    Schedule(String),
    /// The loss became NaN or infinite.
    #[error(
        "training diverged: the loss is {loss} at epoch {epoch}, step {step} (lr {lr:e}); try a \
         lower --lr or --dtype f32"
    )]
    Diverged {
        /// The loss value.
        loss: f64,
        /// 1-based epoch.
        epoch: usize,
        /// 1-based step within the epoch.
        step: usize,
        /// The learning rate of that step.
        lr: f64,
    },
    /// A checkpoint cannot be read or written.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// `--resume` cannot continue from what is in the output directory.
    #[error("--resume: {0}")]
    Resume(String),
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Serialising tensors or state failed.
    #[error("{0}")]
    Record(String),
    /// A task-specific failure.
    #[error("{0}")]
    Task(String),
}

impl TrainError {
    /// An [`TrainError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// The crate's result type.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;
