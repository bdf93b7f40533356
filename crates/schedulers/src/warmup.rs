//! `ConstantLR` and `LinearLR`: the usual warm-up shapes.

use crate::base::LrPolicy;

/// Scales the rate by `factor` until `total_iters`, then restores it (PyTorch's `ConstantLR`).
#[derive(Debug, Clone)]
pub struct ConstantLr {
    factor: f64,
    total_iters: i64,
}

impl ConstantLr {
    /// PyTorch's defaults are `factor = 1/3`, `total_iters = 5`.
    pub fn new(factor: f64, total_iters: usize) -> Self {
        Self {
            factor,
            total_iters: total_iters as i64,
        }
    }
}

impl LrPolicy for ConstantLr {
    fn lr(&self, last_epoch: i64, _initial: bool, lr: f64, _base_lr: f64) -> f64 {
        if last_epoch == 0 {
            lr * self.factor
        } else if last_epoch != self.total_iters {
            lr
        } else {
            lr * (1.0 / self.factor)
        }
    }

    fn closed_form(&self, last_epoch: i64, _lr: f64, base_lr: f64) -> f64 {
        let done = if last_epoch >= self.total_iters {
            1.0
        } else {
            0.0
        };
        base_lr * (self.factor + done * (1.0 - self.factor))
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "ConstantLR"
    }
}

/// Moves the factor linearly from `start_factor` to `end_factor` over `total_iters` steps
/// (PyTorch's `LinearLR`): the linear warm-up.
#[derive(Debug, Clone)]
pub struct LinearLr {
    start_factor: f64,
    end_factor: f64,
    total_iters: i64,
}

impl LinearLr {
    /// PyTorch's defaults are `start_factor = 1/3`, `end_factor = 1`, `total_iters = 5`.
    pub fn new(start_factor: f64, end_factor: f64, total_iters: usize) -> Self {
        Self {
            start_factor,
            end_factor,
            total_iters: total_iters as i64,
        }
    }
}

impl LrPolicy for LinearLr {
    fn lr(&self, last_epoch: i64, initial: bool, lr: f64, _base_lr: f64) -> f64 {
        if last_epoch == 0 {
            return lr * self.start_factor;
        }
        if initial || last_epoch > self.total_iters {
            return lr;
        }
        let span = self.end_factor - self.start_factor;
        lr * (1.0
            + span / (self.total_iters as f64 * self.start_factor + (last_epoch - 1) as f64 * span))
    }

    fn closed_form(&self, last_epoch: i64, _lr: f64, base_lr: f64) -> f64 {
        let t = self.total_iters.min(last_epoch) as f64;
        base_lr
            * (self.start_factor
                + (self.end_factor - self.start_factor) * t / self.total_iters as f64)
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "LinearLR"
    }
}
