//! `OneCycleLR`: warm up to `max_lr`, then anneal far below the start (Smith & Topin, 2018).

use std::f64::consts::PI;

use crate::base::{LrPolicy, ScheduleError};

/// The shape of each phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnealStrategy {
    /// Half-cosine.
    Cos,
    /// Straight line.
    Linear,
}

/// The 1cycle policy (PyTorch's `OneCycleLR`; step it per iteration). It ignores the
/// optimizer's base rate: the start is `max_lr / div_factor`. Stepping past `total_steps` is an
/// error, as in PyTorch.
///
/// Momentum cycles inversely to the rate, as with PyTorch's default `cycle_momentum = true`:
/// from `max_momentum` (0.95) down to `base_momentum` (0.85) while the rate warms up, then back
/// (three-phase: down, up, then held at `max_momentum`). Read it with
/// [`Scheduler::momentum`](crate::Scheduler::momentum) and give it to the optimizer (SGD
/// momentum, Adam/AdamW beta1) before each update, e.g. through `kindling::MomentumHandle`;
/// [`OneCycleLr::with_cycle_momentum`]`(false)` turns it off.
#[derive(Debug, Clone)]
pub struct OneCycleLr {
    total_steps: i64,
    anneal: AnnealStrategy,
    /// (end_step, start_lr, end_lr, start_momentum_is_max, end_momentum_is_max) per phase.
    phases: Vec<(f64, f64, f64, bool, bool)>,
    cycle_momentum: bool,
    base_momentum: f64,
    max_momentum: f64,
}

impl OneCycleLr {
    /// PyTorch's defaults: `pct_start = 0.3`, cos, `div_factor = 25`,
    /// `final_div_factor = 1e4`, two phases.
    pub fn new(max_lr: f64, total_steps: usize) -> Self {
        Self::with_options(
            max_lr,
            total_steps,
            0.3,
            AnnealStrategy::Cos,
            25.0,
            1e4,
            false,
        )
    }

    /// Every option of PyTorch's `OneCycleLR` that shapes the rate.
    pub fn with_options(
        max_lr: f64,
        total_steps: usize,
        pct_start: f64,
        anneal: AnnealStrategy,
        div_factor: f64,
        final_div_factor: f64,
        three_phase: bool,
    ) -> Self {
        let total = total_steps as f64;
        let initial = max_lr / div_factor;
        let min = initial / final_div_factor;
        // PyTorch's `_schedule_phases`: momentum goes max -> base -> max (-> max).
        let phases = if three_phase {
            vec![
                (pct_start * total - 1.0, initial, max_lr, true, false),
                (2.0 * pct_start * total - 2.0, max_lr, initial, false, true),
                (total - 1.0, initial, min, true, true),
            ]
        } else {
            vec![
                (pct_start * total - 1.0, initial, max_lr, true, false),
                (total - 1.0, max_lr, min, false, true),
            ]
        };
        Self {
            total_steps: total_steps as i64,
            anneal,
            phases,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// PyTorch's `base_momentum` and `max_momentum` (defaults 0.85 and 0.95).
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

    /// The phase containing `last_epoch` and the position in it: (phase index, pct).
    fn phase(&self, last_epoch: i64) -> (usize, f64) {
        let step = last_epoch as f64;
        let mut start_step = 0.0;
        let last = self.phases.len() - 1;
        for (i, &(end_step, ..)) in self.phases.iter().enumerate() {
            if step <= end_step || i == last {
                return (i, (step - start_step) / (end_step - start_step));
            }
            start_step = end_step;
        }
        unreachable!("the last phase always matches")
    }

    fn anneal(&self, start: f64, end: f64, pct: f64) -> f64 {
        match self.anneal {
            AnnealStrategy::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            AnnealStrategy::Linear => (end - start) * pct + start,
        }
    }
}

impl LrPolicy for OneCycleLr {
    fn lr(&self, last_epoch: i64, _initial: bool, _lr: f64, _base_lr: f64) -> f64 {
        let (i, pct) = self.phase(last_epoch);
        let (_, start_lr, end_lr, ..) = self.phases[i];
        self.anneal(start_lr, end_lr, pct)
    }

    fn construct(&self, lr: f64, _initial_lr: Option<f64>) -> (f64, Option<f64>) {
        // `group["initial_lr"] = max_lr / div_factor`: the first phase's start.
        (lr, Some(self.phases[0].1))
    }

    fn momentum(&self, last_epoch: i64) -> Option<f64> {
        if !self.cycle_momentum {
            return None;
        }
        let (i, pct) = self.phase(last_epoch);
        let (.., start_max, end_max) = self.phases[i];
        let pick = |max: bool| {
            if max {
                self.max_momentum
            } else {
                self.base_momentum
            }
        };
        Some(self.anneal(pick(start_max), pick(end_max), pct))
    }

    fn step(
        &mut self,
        last_epoch: i64,
        lr: f64,
        base_lr: f64,
        _metric: Option<f64>,
    ) -> Result<f64, ScheduleError> {
        if last_epoch > self.total_steps {
            return Err(ScheduleError::PastTotalSteps {
                step: last_epoch,
                total_steps: self.total_steps,
            });
        }
        Ok(self.lr(last_epoch, false, lr, base_lr))
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "OneCycleLR"
    }
}
