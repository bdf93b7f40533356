//! `ReduceLROnPlateau`: decay when a monitored metric stops improving.

use burn::lr_scheduler::LrSchedulerRecord;

use crate::base::{LrPolicy, ScheduleError};

/// Whether lower or higher metric values are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// How `threshold` defines a significant improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdMode {
    /// Relative: better than `best * (1 ∓ threshold)`.
    Rel,
    /// Absolute: better than `best ∓ threshold`.
    Abs,
}

/// Multiplies the rate by `factor` after `patience` steps without improvement
/// (PyTorch's `ReduceLROnPlateau`). Step it with the metric:
/// [`Scheduler::step_with_metric`](crate::Scheduler::step_with_metric).
#[derive(Debug, Clone)]
pub struct ReduceLrOnPlateau {
    mode: PlateauMode,
    factor: f64,
    patience: i64,
    threshold: f64,
    threshold_mode: ThresholdMode,
    cooldown: i64,
    min_lr: f64,
    eps: f64,
    best: f64,
    num_bad_epochs: i64,
    cooldown_counter: i64,
}

impl ReduceLrOnPlateau {
    /// PyTorch's defaults: mode min, factor 0.1, patience 10, threshold 1e-4 rel,
    /// cooldown 0, min_lr 0, eps 1e-8.
    pub fn new(mode: PlateauMode) -> Self {
        Self {
            mode,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            best: Self::worst(mode),
            num_bad_epochs: 0,
            cooldown_counter: 0,
        }
    }

    fn worst(mode: PlateauMode) -> f64 {
        match mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        }
    }

    /// Decay factor (< 1).
    pub fn with_factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Steps without improvement tolerated before a decay.
    pub fn with_patience(mut self, patience: usize) -> Self {
        self.patience = patience as i64;
        self
    }

    /// Minimum significant change, and how it is measured.
    pub fn with_threshold(mut self, threshold: f64, mode: ThresholdMode) -> Self {
        self.threshold = threshold;
        self.threshold_mode = mode;
        self
    }

    /// Steps to wait after a decay before counting again.
    pub fn with_cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown as i64;
        self
    }

    /// Lower bound on the rate.
    pub fn with_min_lr(mut self, min_lr: f64) -> Self {
        self.min_lr = min_lr;
        self
    }

    /// Decays smaller than this are skipped.
    pub fn with_eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    fn is_better(&self, a: f64) -> bool {
        match (self.mode, self.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < self.best * (1.0 - self.threshold),
            (PlateauMode::Min, ThresholdMode::Abs) => a < self.best - self.threshold,
            (PlateauMode::Max, ThresholdMode::Rel) => a > self.best * (self.threshold + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > self.best + self.threshold,
        }
    }
}

impl LrPolicy for ReduceLrOnPlateau {
    fn lr(&self, _last_epoch: i64, _initial: bool, lr: f64, _base_lr: f64) -> f64 {
        lr
    }

    fn step(
        &mut self,
        _last_epoch: i64,
        lr: f64,
        _base_lr: f64,
        metric: Option<f64>,
    ) -> Result<f64, ScheduleError> {
        let current = metric.ok_or(ScheduleError::MetricRequired)?;
        if self.is_better(current) {
            self.best = current;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        let mut lr = lr;
        if self.num_bad_epochs > self.patience {
            let new_lr = (lr * self.factor).max(self.min_lr);
            if lr - new_lr > self.eps {
                lr = new_lr;
            }
            self.cooldown_counter = self.cooldown;
            self.num_bad_epochs = 0;
        }
        Ok(lr)
    }

    fn record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new()
            .with_scalar("best", self.best)
            .with_scalar("num_bad_epochs", self.num_bad_epochs)
            .with_scalar("cooldown_counter", self.cooldown_counter)
    }

    fn load(&mut self, record: &LrSchedulerRecord) {
        if let (Some(best), Some(bad), Some(cool)) = (
            record.scalar("best"),
            record.scalar("num_bad_epochs"),
            record.scalar("cooldown_counter"),
        ) {
            (self.best, self.num_bad_epochs, self.cooldown_counter) = (best, bad, cool);
        }
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "ReduceLROnPlateau"
    }
}
