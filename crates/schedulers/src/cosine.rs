//! `CosineAnnealingLR` in PyTorch's recursive form (which differs from the closed form once
//! chained with other policies).

use std::f64::consts::PI;

use crate::base::LrPolicy;

/// Anneals from the base rate to `eta_min` along a half cosine over `t_max` steps, then back
/// up (PyTorch's `CosineAnnealingLR`).
#[derive(Debug, Clone)]
pub struct CosineAnnealingLr {
    t_max: i64,
    eta_min: f64,
}

impl CosineAnnealingLr {
    /// Half period `t_max` (at least 1) and floor `eta_min`.
    pub fn new(t_max: usize, eta_min: f64) -> Self {
        Self {
            t_max: t_max.max(1) as i64,
            eta_min,
        }
    }
}

impl LrPolicy for CosineAnnealingLr {
    fn lr(&self, last_epoch: i64, initial: bool, lr: f64, base_lr: f64) -> f64 {
        let t = self.t_max as f64;
        let e = last_epoch as f64;
        if initial {
            lr
        } else if (last_epoch - 1 - self.t_max).rem_euclid(2 * self.t_max) == 0 {
            lr + (base_lr - self.eta_min) * (1.0 - (PI / t).cos()) / 2.0
        } else {
            (1.0 + (PI * e / t).cos()) / (1.0 + (PI * (e - 1.0) / t).cos()) * (lr - self.eta_min)
                + self.eta_min
        }
    }

    fn closed_form(&self, last_epoch: i64, _lr: f64, base_lr: f64) -> f64 {
        self.eta_min
            + (base_lr - self.eta_min) * (1.0 + (PI * last_epoch as f64 / self.t_max as f64).cos())
                / 2.0
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "CosineAnnealingLR"
    }
}

/// Cosine annealing with warm restarts every `t_0`, `t_0 * t_mult`, … steps (SGDR; PyTorch's
/// `CosineAnnealingWarmRestarts`).
#[derive(Debug, Clone)]
pub struct CosineAnnealingWarmRestarts {
    t_mult: i64,
    eta_min: f64,
    t_cur: i64,
    t_i: i64,
}

impl CosineAnnealingWarmRestarts {
    /// First period `t_0` (at least 1), period multiplier `t_mult` (at least 1), floor
    /// `eta_min`.
    pub fn new(t_0: usize, t_mult: usize, eta_min: f64) -> Self {
        let t_0 = t_0.max(1) as i64;
        Self {
            t_mult: t_mult.max(1) as i64,
            eta_min,
            t_cur: 0,
            t_i: t_0,
        }
    }
}

impl LrPolicy for CosineAnnealingWarmRestarts {
    fn lr(&self, _last_epoch: i64, _initial: bool, _lr: f64, base_lr: f64) -> f64 {
        self.eta_min
            + (base_lr - self.eta_min) * (1.0 + (PI * self.t_cur as f64 / self.t_i as f64).cos())
                / 2.0
    }

    fn step(
        &mut self,
        last_epoch: i64,
        lr: f64,
        base_lr: f64,
        _metric: Option<f64>,
    ) -> Result<f64, crate::ScheduleError> {
        self.t_cur += 1;
        if self.t_cur >= self.t_i {
            self.t_cur %= self.t_i;
            self.t_i *= self.t_mult;
        }
        Ok(self.lr(last_epoch, false, lr, base_lr))
    }

    fn record(&self) -> burn::lr_scheduler::LrSchedulerRecord {
        burn::lr_scheduler::LrSchedulerRecord::new()
            .with_scalar("t_cur", self.t_cur)
            .with_scalar("t_i", self.t_i)
    }

    fn load(&mut self, record: &burn::lr_scheduler::LrSchedulerRecord) {
        if let (Some(t_cur), Some(t_i)) = (record.scalar("t_cur"), record.scalar("t_i")) {
            (self.t_cur, self.t_i) = (t_cur, t_i);
        }
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "CosineAnnealingWarmRestarts"
    }
}
