//! # kindling-train
//!
//! Kindling's training engine as a library: a [`Task`] says what is particular to a job (its
//! data, model, loss and metrics), and the [`Trainer`] does the rest — device and dtype
//! set-up, seeding, per-epoch shuffling, per-sample augmentation keyed by (seed, epoch,
//! index) in Burn's `DataLoader` workers, the optimizer and learning-rate schedule (per epoch
//! or per step, ReduceLROnPlateau fed the validation loss), mixed precision (`amp`: each step
//! under autocast with f32 master weights, loss scaling with skipped steps), divergence
//! detection, atomic
//! `last`/`best` checkpoints, `--resume`, `metrics.csv` with the task's columns, PNG curves,
//! progress bars, callbacks and a final [`Summary`].
//!
//! The built-in tasks live in [`tasks`]: `classify`, `segment` and `finetune` (zoo models,
//! with freezing, gradual unfreezing and head/backbone learning rates). `examples/train_custom.rs`
//! trains a user's own module on a user's own dataset.

mod amp;
mod callbacks;
pub mod checkpoint;
mod error;
mod loader;
pub mod metrics;
mod task;
pub mod tasks;
mod trainer;

pub use callbacks::{Callback, Control, EpochInfo, StepInfo};
pub use checkpoint::{Checkpoint, CheckpointError, CheckpointState};
pub use error::{Result, TrainError};
pub use loader::{EpochLoader, mix, shuffled};
pub use metrics::{EpochRow, History, accuracy, correct};
pub use task::{Goal, LrGroup, SampleDataset, StepOutput, Task, TaskData};
pub use trainer::{Best, RunPaths, Summary, Trainer};
