//! The policy trait, the driver that holds the optimizer's learning rate, and the bridge to
//! Burn's `LrScheduler`.
//!
//! PyTorch's schedulers are mostly *recursive*: `step()` turns the optimizer's current rate
//! into the next one (`lr * gamma`), and composites (`SequentialLR`, `ChainedScheduler`) rely
//! on several policies acting on that one shared rate. So a [`LrPolicy`] here maps
//! `(counter, current lr, base lr)` to the next lr, and a [`Scheduler`] owns the rate.

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};

/// A learning-rate policy with PyTorch's semantics.
pub trait LrPolicy: Send + Sync {
    /// PyTorch's `get_lr()` for one group: the rate after the counter moved to `last_epoch`.
    /// `initial` is true during the constructor's initial step (`last_epoch == 0`).
    fn lr(&self, last_epoch: i64, initial: bool, lr: f64, base_lr: f64) -> f64;

    /// PyTorch's `_get_closed_form_lr()`, used when a composite restarts a policy at a
    /// milestone (`SequentialLR`). Defaults to the recursive form.
    fn closed_form(&self, last_epoch: i64, lr: f64, base_lr: f64) -> f64 {
        self.lr(last_epoch, false, lr, base_lr)
    }

    /// A boxed copy (policies are cloned into Burn's `Box<dyn LrScheduler>`).
    fn box_clone(&self) -> Box<dyn LrPolicy>;
}

impl Clone for Box<dyn LrPolicy> {
    fn clone(&self) -> Self {
        self.box_clone()
    }
}

/// One policy driving one learning rate, stepped like a PyTorch scheduler.
///
/// `lr()` is PyTorch's `get_last_lr()`: after `k` calls to [`Scheduler::step`] it is the rate
/// of the `k`-th optimizer update (0-based), so a training loop does
/// `optimizer.step(sched.lr(), ..)` then `sched.step()`.
///
/// ```
/// use kindling_schedulers::{Scheduler, StepLr};
/// let mut s = Scheduler::new(StepLr::new(2, 0.1), 1.0);
/// let mut rows = vec![s.lr()];
/// for _ in 0..4 { s.step(); rows.push(s.lr()); }
/// assert_eq!(rows, [1.0, 1.0, 0.1, 0.1, 0.010000000000000002]);
/// ```
#[derive(Clone)]
pub struct Scheduler {
    policy: Box<dyn LrPolicy>,
    base_lr: f64,
    lr: f64,
    last_epoch: i64,
    /// Burn's `step()` returns the rate for the next update; the first call returns the
    /// initial rate without advancing.
    burn_started: bool,
}

impl Scheduler {
    /// Wraps `policy` for an optimizer whose base learning rate is `base_lr`, and performs the
    /// initial step as PyTorch's constructor does.
    pub fn new(policy: impl LrPolicy + 'static, base_lr: f64) -> Self {
        let policy: Box<dyn LrPolicy> = Box::new(policy);
        let lr = policy.lr(0, true, base_lr, base_lr);
        Self {
            policy,
            base_lr,
            lr,
            last_epoch: 0,
            burn_started: false,
        }
    }

    /// The current learning rate (`get_last_lr()`).
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// How many times [`Scheduler::step`] has run.
    pub fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    /// Advances one epoch or iteration (`scheduler.step()`), in O(1).
    pub fn step(&mut self) -> f64 {
        self.last_epoch += 1;
        self.lr = self
            .policy
            .lr(self.last_epoch, false, self.lr, self.base_lr);
        self.lr
    }

    /// The first `n + 1` rates: rows 0..=n of the schedule.
    pub fn rows(mut self, n: usize) -> Vec<f64> {
        let mut rows = Vec::with_capacity(n + 1);
        rows.push(self.lr);
        for _ in 0..n {
            rows.push(self.step());
        }
        rows
    }
}

impl LrScheduler for Scheduler {
    fn step(&mut self) -> burn::optim::LearningRate {
        if self.burn_started {
            Scheduler::step(self)
        } else {
            self.burn_started = true;
            self.lr
        }
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new()
            .with_scalar("last_epoch", self.last_epoch)
            .with_scalar("lr", self.lr)
            .with_scalar("burn_started", self.burn_started)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let (Some(last_epoch), Some(lr)) = (
            record.scalar::<i64>("last_epoch"),
            record.scalar::<f64>("lr"),
        ) {
            self.last_epoch = last_epoch;
            self.lr = lr;
            self.burn_started = record.scalar::<bool>("burn_started").unwrap_or(false);
        }
    }
}
