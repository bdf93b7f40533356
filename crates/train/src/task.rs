//! The seam between the generic [`Trainer`](crate::Trainer) and what is particular to one job:
//! its data, model, loss and metrics.

use std::path::Path;
use std::sync::Arc;

use burn::data::dataset::Dataset;
use burn::module::{Module, ParamId};
use burn::tensor::{Device, Tensor};
use kindling_augment::{Batch, Sample};

use crate::error::Result;
use crate::metrics::History;

/// A dataset of augmentable samples (an image plus its masks, boxes or keypoints). A sample's
/// position in the dataset keys its augmentation stream and is how a task finds its label
/// (see [`Batch::indices`]).
pub type SampleDataset = Arc<dyn Dataset<Sample>>;

/// Whether larger or smaller values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Larger is better (accuracy, mIoU).
    Max,
    /// Smaller is better (a loss).
    Min,
}

impl Goal {
    /// Whether `new` improves on `best`.
    pub fn improves(self, new: f64, best: f64) -> bool {
        match self {
            Goal::Max => new > best,
            Goal::Min => new < best,
        }
    }
}

/// The training and validation data of a task, and how its images are normalised.
#[derive(Clone)]
pub struct TaskData {
    /// Training samples (augmented by the run's pipeline, if any).
    pub train: SampleDataset,
    /// Validation samples (never augmented).
    pub val: SampleDataset,
    /// Per-channel mean subtracted after scaling to [0, 1].
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by.
    pub std: Vec<f32>,
    /// `(width, height, channels)` every batch must have: an augmentation pipeline that ends
    /// at another size is refused before training. `None` skips the check.
    pub input_size: Option<(usize, usize, usize)>,
}

/// A learning-rate group (see [`Task::lr_groups`]).
#[derive(Debug, Clone)]
pub struct LrGroup {
    /// A name for messages (`head`, `backbone`, `layer3`).
    pub name: String,
    /// The parameters in the group.
    pub params: Vec<ParamId>,
    /// The group's learning rate over the scheduled one.
    pub factor: f64,
}

/// What one training batch produced.
pub struct StepOutput {
    /// The scalar loss to back-propagate (`[1]`).
    pub loss: Tensor<1>,
    /// The batch's values of [`Task::train_columns`] (means over the batch), computed
    /// without gradients.
    pub metrics: Vec<f64>,
}

/// One training job, as the [`Trainer`](crate::Trainer) sees it.
///
/// A task owns its data, builds its model, computes the loss of a batch and evaluates the
/// model; the trainer does everything else (device, seeding, loading and augmentation in
/// workers, optimizer and schedule, divergence checks, checkpoints, resume, CSV, curves,
/// progress, callbacks). `examples/train_custom.rs` implements one in a few lines.
pub trait Task {
    /// The model (a Burn module; the trainer moves it between the autodiff device for
    /// training and the plain device for evaluation).
    type Model: Module + 'static;

    /// The task's name, saved in checkpoints (a `--resume` by another task is refused).
    fn name(&self) -> &str;

    /// The data (called once, before any model exists).
    fn data(&self) -> Result<TaskData>;

    /// A freshly initialised model on `device` (the trainer has seeded it).
    fn init_model(&self, device: &Device) -> Result<Self::Model>;

    /// Training metrics besides `train_loss`, e.g. `["train_accuracy"]`.
    fn train_columns(&self) -> Vec<String> {
        Vec::new()
    }

    /// Validation metric names, in the order [`Task::evaluate`] returns them. The first
    /// must be `val_loss` (the scheduler's ReduceLROnPlateau follows it). Defaults to
    /// `val_loss` and the training columns renamed `val_…`, which the default
    /// [`Task::evaluate`] computes.
    fn val_columns(&self) -> Vec<String> {
        let mut columns = vec!["val_loss".to_string()];
        columns.extend(
            self.train_columns()
                .iter()
                .map(|c| format!("val_{}", c.strip_prefix("train_").unwrap_or(c))),
        );
        columns
    }

    /// The column that picks the best checkpoint and whether it is maximised (default: the
    /// lowest `val_loss`).
    fn best_metric(&self) -> (String, Goal) {
        ("val_loss".into(), Goal::Min)
    }

    /// The model for training epoch `epoch` (1-based), called before each epoch and after a
    /// resume: a task that freezes layers for some epochs (gradual unfreezing) sets them here,
    /// from the epoch number alone, so a resumed run trains exactly as an uninterrupted one.
    fn prepare_epoch(&self, model: Self::Model, _epoch: usize) -> Result<Self::Model> {
        Ok(model)
    }

    /// Learning-rate groups, like PyTorch's optimizer `param_groups`: each group's parameter
    /// ids and the factor its learning rate is the scheduled rate times (a backbone at 0.1×
    /// the head). Empty (the default) trains every parameter at the scheduled rate; otherwise
    /// a parameter in no group is not updated. Called after [`Task::prepare_epoch`].
    fn lr_groups(&self, _model: &Self::Model) -> Result<Vec<LrGroup>> {
        Ok(Vec::new())
    }

    /// Forward and loss of one training batch (on the autodiff device).
    fn train_step(&self, model: &Self::Model, batch: &Batch) -> Result<StepOutput>;

    /// The validation metrics over `batches` (the model is in eval mode on the plain device).
    /// Defaults to [`Task::train_step`]'s loss and metrics averaged over the samples, in the
    /// order of the default [`Task::val_columns`].
    fn evaluate(
        &self,
        model: &Self::Model,
        batches: &mut dyn Iterator<Item = Result<Batch>>,
    ) -> Result<Vec<f64>> {
        let (mut sums, mut seen) = (Vec::new(), 0usize);
        for batch in batches {
            let batch = batch?;
            let n = batch.indices.len();
            let out = self.train_step(model, &batch)?;
            let loss: f64 = out.loss.into_scalar::<f32>().into();
            let values = std::iter::once(loss).chain(out.metrics);
            sums.resize(1 + self.train_columns().len(), 0.0);
            for (sum, v) in sums.iter_mut().zip(values) {
                *sum += v * n as f64;
            }
            seen += n;
        }
        Ok(sums.iter().map(|s| s / seen.max(1) as f64).collect())
    }

    /// State that must match for a `--resume` (class names, …); saved in checkpoints.
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    /// Task-specific outputs after each epoch (a predictions grid, …) under `out`.
    fn after_epoch(&self, _model: &Self::Model, _history: &History, _out: &Path) -> Result<()> {
        Ok(())
    }
}
