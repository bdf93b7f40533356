//! Hooks into the training loop: observe progress, or stop a run cleanly.

use std::path::Path;

use crate::metrics::History;

/// What a callback asks the trainer to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Control {
    /// Go on training.
    #[default]
    Continue,
    /// Stop now. After a step: the epoch is abandoned and its checkpoint not written (the
    /// last checkpoint stays the previous epoch's). After an epoch: that epoch's checkpoint is
    /// already written.
    Stop,
}

/// After each optimizer step.
#[derive(Debug, Clone)]
pub struct StepInfo {
    /// 1-based epoch.
    pub epoch: usize,
    /// 1-based step within the epoch.
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// The batch's loss.
    pub loss: f64,
    /// The learning rate the step used.
    pub lr: f64,
}

/// After each epoch, once its checkpoint, CSV and curves are written.
#[derive(Debug, Clone)]
pub struct EpochInfo<'a> {
    /// 1-based epoch just completed.
    pub epoch: usize,
    /// The configured number of epochs.
    pub epochs: usize,
    /// Every epoch's metrics so far.
    pub history: &'a History,
    /// The checkpoint just written.
    pub checkpoint: &'a Path,
}

/// Called by the [`Trainer`](crate::Trainer) during a run; both methods default to
/// `Continue`.
pub trait Callback {
    /// After each optimizer step.
    fn on_step(&mut self, _info: &StepInfo) -> Control {
        Control::Continue
    }
    /// After each epoch.
    fn on_epoch_end(&mut self, _info: &EpochInfo) -> Control {
        Control::Continue
    }
}

/// A closure as an [`Callback::on_epoch_end`].
pub(crate) struct OnEpochEnd<F>(pub F);

impl<F: FnMut(&EpochInfo) -> Control> Callback for OnEpochEnd<F> {
    fn on_epoch_end(&mut self, info: &EpochInfo) -> Control {
        (self.0)(info)
    }
}

/// A closure as an [`Callback::on_step`].
pub(crate) struct OnStep<F>(pub F);

impl<F: FnMut(&StepInfo) -> Control> Callback for OnStep<F> {
    fn on_step(&mut self, info: &StepInfo) -> Control {
        (self.0)(info)
    }
}
