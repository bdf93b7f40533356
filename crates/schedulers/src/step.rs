//! `StepLR` and `MultiStepLR`: decay by `gamma` every `step_size` epochs or at milestones.

use crate::base::LrPolicy;

/// Multiplies the rate by `gamma` every `step_size` steps (PyTorch's `StepLR`).
#[derive(Debug, Clone)]
pub struct StepLr {
    step_size: i64,
    gamma: f64,
}

impl StepLr {
    /// `step_size` must be at least 1 (checked by the configuration layer).
    pub fn new(step_size: usize, gamma: f64) -> Self {
        Self {
            step_size: step_size.max(1) as i64,
            gamma,
        }
    }
}

impl LrPolicy for StepLr {
    fn lr(&self, last_epoch: i64, _initial: bool, lr: f64, _base_lr: f64) -> f64 {
        if last_epoch == 0 || last_epoch % self.step_size != 0 {
            lr
        } else {
            lr * self.gamma
        }
    }

    fn closed_form(&self, last_epoch: i64, _lr: f64, base_lr: f64) -> f64 {
        base_lr
            * self
                .gamma
                .powf((last_epoch.div_euclid(self.step_size)) as f64)
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "StepLR"
    }
}

/// Multiplies the rate by `gamma` at each milestone (PyTorch's `MultiStepLR`; a milestone
/// listed twice decays twice).
#[derive(Debug, Clone)]
pub struct MultiStepLr {
    milestones: Vec<i64>,
    gamma: f64,
}

impl MultiStepLr {
    /// Decays at the given epochs.
    pub fn new(milestones: impl IntoIterator<Item = usize>, gamma: f64) -> Self {
        let mut milestones: Vec<i64> = milestones.into_iter().map(|m| m as i64).collect();
        milestones.sort_unstable();
        Self { milestones, gamma }
    }
}

impl LrPolicy for MultiStepLr {
    fn lr(&self, last_epoch: i64, _initial: bool, lr: f64, _base_lr: f64) -> f64 {
        let hits = self.milestones.iter().filter(|&&m| m == last_epoch).count();
        if hits == 0 {
            lr
        } else {
            lr * self.gamma.powf(hits as f64)
        }
    }

    fn closed_form(&self, last_epoch: i64, _lr: f64, base_lr: f64) -> f64 {
        let passed = self.milestones.partition_point(|&m| m <= last_epoch);
        base_lr * self.gamma.powf(passed as f64)
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "MultiStepLR"
    }
}
