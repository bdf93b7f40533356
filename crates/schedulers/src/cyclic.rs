//! `CyclicLR`: the rate cycles between `base_lr` and `max_lr` (Smith, 2017).

use std::sync::Arc;

use crate::base::LrPolicy;

/// How the amplitude changes from cycle to cycle.
#[derive(Clone)]
pub enum CyclicMode {
    /// Constant amplitude.
    Triangular,
    /// Amplitude halves every cycle.
    Triangular2,
    /// Amplitude scales by `gamma^iteration`.
    ExpRange {
        /// Decay per iteration.
        gamma: f64,
    },
    /// A custom scale function of the cycle number (`scale_mode = "cycle"`).
    CustomByCycle(Arc<dyn Fn(f64) -> f64 + Send + Sync>),
    /// A custom scale function of the iteration (`scale_mode = "iterations"`).
    CustomByIteration(Arc<dyn Fn(f64) -> f64 + Send + Sync>),
}

impl std::fmt::Debug for CyclicMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CyclicMode::Triangular => f.write_str("Triangular"),
            CyclicMode::Triangular2 => f.write_str("Triangular2"),
            CyclicMode::ExpRange { gamma } => write!(f, "ExpRange {{ gamma: {gamma} }}"),
            CyclicMode::CustomByCycle(_) => f.write_str("CustomByCycle(..)"),
            CyclicMode::CustomByIteration(_) => f.write_str("CustomByIteration(..)"),
        }
    }
}

/// Cycles the rate between `base_lr` and `max_lr` (PyTorch's `CyclicLR`; step it per
/// iteration). It sets the optimizer's rate to `base_lr`, as PyTorch does. Momentum cycling is
/// not applied: Burn's optimizers do not expose momentum for change during training.
#[derive(Debug, Clone)]
pub struct CyclicLr {
    base_lr: f64,
    max_lr: f64,
    total_size: f64,
    step_ratio: f64,
    mode: CyclicMode,
}

impl CyclicLr {
    /// PyTorch's defaults: `step_size_up = 2000`, `step_size_down = step_size_up`, triangular.
    pub fn new(
        base_lr: f64,
        max_lr: f64,
        step_size_up: usize,
        step_size_down: Option<usize>,
        mode: CyclicMode,
    ) -> Self {
        let up = step_size_up as f64;
        let down = step_size_down.map_or(up, |d| d as f64);
        Self {
            base_lr,
            max_lr,
            total_size: up + down,
            step_ratio: up / (up + down),
            mode,
        }
    }
}

impl LrPolicy for CyclicLr {
    fn lr(&self, last_epoch: i64, _initial: bool, _lr: f64, _base_lr: f64) -> f64 {
        let e = last_epoch as f64;
        let cycle = (1.0 + e / self.total_size).floor();
        let x = 1.0 + e / self.total_size - cycle;
        let scale_factor = if x <= self.step_ratio {
            x / self.step_ratio
        } else {
            (x - 1.0) / (self.step_ratio - 1.0)
        };
        let height = (self.max_lr - self.base_lr) * scale_factor;
        let scale = match &self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
            CyclicMode::ExpRange { gamma } => gamma.powf(e),
            CyclicMode::CustomByCycle(f) => f(cycle),
            CyclicMode::CustomByIteration(f) => f(e),
        };
        self.base_lr + height * scale
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "CyclicLR"
    }
}
