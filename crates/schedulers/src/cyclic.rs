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
/// iteration). It sets the optimizer's rate to `base_lr`, as PyTorch does.
///
/// Momentum cycles inversely to the rate, as with PyTorch's default `cycle_momentum = true`:
/// `max_momentum - (max_momentum - base_momentum) * position * scale` (defaults 0.9 and 0.8),
/// with the mode's amplitude scale. Read it with
/// [`Scheduler::momentum`](crate::Scheduler::momentum) and give it to the optimizer (SGD
/// momentum, Adam/AdamW beta1) before each update, e.g. through `kindling::MomentumHandle`;
/// [`CyclicLr::with_cycle_momentum`]`(false)` turns it off.
#[derive(Debug, Clone)]
pub struct CyclicLr {
    base_lr: f64,
    max_lr: f64,
    total_size: f64,
    step_ratio: f64,
    mode: CyclicMode,
    cycle_momentum: bool,
    base_momentum: f64,
    max_momentum: f64,
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
            cycle_momentum: true,
            base_momentum: 0.8,
            max_momentum: 0.9,
        }
    }

    /// PyTorch's `base_momentum` and `max_momentum` (defaults 0.8 and 0.9).
    pub fn with_momentum(mut self, base_momentum: f64, max_momentum: f64) -> Self {
        self.base_momentum = base_momentum;
        self.max_momentum = max_momentum;
        self
    }

    /// PyTorch's `cycle_momentum` (default `true`).
    pub fn with_cycle_momentum(mut self, cycle_momentum: bool) -> Self {
        self.cycle_momentum = cycle_momentum;
        self
    }

    /// PyTorch's `get_lr()` terms at `last_epoch`: (scale_factor, amplitude scale).
    fn position(&self, last_epoch: i64) -> (f64, f64) {
        let e = last_epoch as f64;
        let cycle = (1.0 + e / self.total_size).floor();
        let x = 1.0 + e / self.total_size - cycle;
        let scale_factor = if x <= self.step_ratio {
            x / self.step_ratio
        } else {
            (x - 1.0) / (self.step_ratio - 1.0)
        };
        let scale = match &self.mode {
            CyclicMode::Triangular => 1.0,
            CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
            CyclicMode::ExpRange { gamma } => gamma.powf(e),
            CyclicMode::CustomByCycle(f) => f(cycle),
            CyclicMode::CustomByIteration(f) => f(e),
        };
        (scale_factor, scale)
    }
}

impl LrPolicy for CyclicLr {
    fn lr(&self, last_epoch: i64, _initial: bool, _lr: f64, _base_lr: f64) -> f64 {
        let (scale_factor, scale) = self.position(last_epoch);
        let height = (self.max_lr - self.base_lr) * scale_factor;
        self.base_lr + height * scale
    }

    fn construct(&self, _lr: f64, initial_lr: Option<f64>) -> (f64, Option<f64>) {
        // `group["lr"] = base_lr` before the base class reads it.
        (self.base_lr, initial_lr)
    }

    fn momentum(&self, last_epoch: i64) -> Option<f64> {
        if !self.cycle_momentum {
            return None;
        }
        let (scale_factor, scale) = self.position(last_epoch);
        let height = (self.max_momentum - self.base_momentum) * scale_factor;
        Some(self.max_momentum - height * scale)
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "CyclicLR"
    }
}
