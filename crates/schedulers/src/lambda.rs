//! `LambdaLR` and `MultiplicativeLR`: schedules from a closure of the epoch (section 6.2.2's
//! `adjust_learning_rate`, written once as a function).

use std::sync::Arc;

use crate::base::LrPolicy;

type Factor = Arc<dyn Fn(i64) -> f64 + Send + Sync>;

/// `lr = base_lr * f(epoch)` (PyTorch's `LambdaLR`).
///
/// ```
/// use kindling_schedulers::{LambdaLr, Scheduler};
/// // The tutorial's adjust_learning_rate: lr * 0.1 ** (epoch // 30).
/// let s = Scheduler::new(LambdaLr::new(|epoch| 0.1f64.powi((epoch / 30) as i32)), 0.1);
/// let rows = s.rows(60).unwrap();
/// assert_eq!((rows[0], rows[29]), (0.1, 0.1));
/// assert!((rows[30] - 0.01).abs() < 1e-15 && (rows[60] - 0.001).abs() < 1e-15);
/// ```
#[derive(Clone)]
pub struct LambdaLr {
    factor: Factor,
}

impl LambdaLr {
    /// A schedule multiplying the base rate by `factor(epoch)`.
    pub fn new(factor: impl Fn(i64) -> f64 + Send + Sync + 'static) -> Self {
        Self {
            factor: Arc::new(factor),
        }
    }
}

impl LrPolicy for LambdaLr {
    fn lr(&self, last_epoch: i64, _initial: bool, _lr: f64, base_lr: f64) -> f64 {
        base_lr * (self.factor)(last_epoch)
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "LambdaLR"
    }
}

/// `lr = lr * f(epoch)` at every step after the first (PyTorch's `MultiplicativeLR`).
#[derive(Clone)]
pub struct MultiplicativeLr {
    factor: Factor,
}

impl MultiplicativeLr {
    /// A schedule multiplying the current rate by `factor(epoch)` at each step.
    pub fn new(factor: impl Fn(i64) -> f64 + Send + Sync + 'static) -> Self {
        Self {
            factor: Arc::new(factor),
        }
    }
}

impl LrPolicy for MultiplicativeLr {
    fn lr(&self, last_epoch: i64, initial: bool, lr: f64, _base_lr: f64) -> f64 {
        if initial {
            lr
        } else {
            lr * (self.factor)(last_epoch)
        }
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "MultiplicativeLR"
    }
}
