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
/// error, as in PyTorch. Momentum cycling is not applied (Burn's optimizers do not expose it).
#[derive(Debug, Clone)]
pub struct OneCycleLr {
    total_steps: i64,
    anneal: AnnealStrategy,
    /// (end_step, start_lr, end_lr) per phase.
    phases: Vec<(f64, f64, f64)>,
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
        let phases = if three_phase {
            vec![
                (pct_start * total - 1.0, initial, max_lr),
                (2.0 * pct_start * total - 2.0, max_lr, initial),
                (total - 1.0, initial, min),
            ]
        } else {
            vec![
                (pct_start * total - 1.0, initial, max_lr),
                (total - 1.0, max_lr, min),
            ]
        };
        Self {
            total_steps: total_steps as i64,
            anneal,
            phases,
        }
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
        let step = last_epoch as f64;
        let mut start_step = 0.0;
        let last = self.phases.len() - 1;
        for (i, &(end_step, start_lr, end_lr)) in self.phases.iter().enumerate() {
            if step <= end_step || i == last {
                let pct = (step - start_step) / (end_step - start_step);
                return self.anneal(start_lr, end_lr, pct);
            }
            start_step = end_step;
        }
        unreachable!("the last phase always matches")
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
