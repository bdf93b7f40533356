//! `ExponentialLR` and `PolynomialLR`: smooth decays.

use crate::base::LrPolicy;

/// Multiplies the rate by `gamma` every step (PyTorch's `ExponentialLR`).
#[derive(Debug, Clone)]
pub struct ExponentialLr {
    gamma: f64,
}

impl ExponentialLr {
    /// Decay factor per step.
    pub fn new(gamma: f64) -> Self {
        Self { gamma }
    }
}

impl LrPolicy for ExponentialLr {
    fn lr(&self, _last_epoch: i64, initial: bool, lr: f64, _base_lr: f64) -> f64 {
        if initial { lr } else { lr * self.gamma }
    }

    fn closed_form(&self, last_epoch: i64, _lr: f64, base_lr: f64) -> f64 {
        base_lr * self.gamma.powf(last_epoch as f64)
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "ExponentialLR"
    }
}

/// Decays to 0 over `total_iters` steps as `(1 - t/T)^power` (PyTorch's `PolynomialLR`).
#[derive(Debug, Clone)]
pub struct PolynomialLr {
    total_iters: i64,
    power: f64,
}

impl PolynomialLr {
    /// PyTorch's defaults are `total_iters = 5`, `power = 1`.
    pub fn new(total_iters: usize, power: f64) -> Self {
        Self {
            total_iters: total_iters as i64,
            power,
        }
    }
}

impl LrPolicy for PolynomialLr {
    fn lr(&self, last_epoch: i64, initial: bool, lr: f64, _base_lr: f64) -> f64 {
        if initial || last_epoch > self.total_iters {
            return lr;
        }
        let t = self.total_iters as f64;
        let e = last_epoch as f64;
        lr * ((1.0 - e / t) / (1.0 - (e - 1.0) / t)).powf(self.power)
    }

    fn closed_form(&self, last_epoch: i64, _lr: f64, base_lr: f64) -> f64 {
        let t = self.total_iters as f64;
        base_lr * (1.0 - self.total_iters.min(last_epoch) as f64 / t).powf(self.power)
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "PolynomialLR"
    }
}
