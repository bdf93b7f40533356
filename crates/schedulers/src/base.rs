//! The policy trait, the driver that holds the optimizer's learning rate, and the bridge to
//! Burn's `LrScheduler`.
//!
//! PyTorch's schedulers are mostly *recursive*: `step()` turns the optimizer's current rate
//! into the next one (`lr * gamma`), and composites (`SequentialLR`, `ChainedScheduler`) rely
//! on several policies acting on that one shared rate. So a [`LrPolicy`] maps
//! `(counter, current lr, base lr)` to the next lr, and a [`Scheduler`] owns the rate.

use burn::lr_scheduler::{LrScheduler, LrSchedulerRecord};

/// Why a schedule cannot advance.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// OneCycleLR stepped past its `total_steps` (PyTorch raises the same).
    #[error(
        "tried to step {step} times with total_steps = {total_steps}: OneCycleLR cannot step \
         past its schedule; raise total_steps (or epochs x steps_per_epoch)"
    )]
    PastTotalSteps {
        /// The step that was requested.
        step: i64,
        /// The schedule's length.
        total_steps: i64,
    },
    /// A metric-driven policy (ReduceLROnPlateau) was stepped without its metric.
    #[error("ReduceLROnPlateau needs the monitored metric: call step_with_metric(value)")]
    MetricRequired,
    /// The metric is NaN or infinite.
    #[error("the monitored metric is {0}: the loss diverged?")]
    BadMetric(f64),
    /// A policy that cannot be used inside a composite.
    #[error("{0} cannot be part of SequentialLR or ChainedScheduler (as in PyTorch)")]
    NotComposable(&'static str),
}

/// A learning-rate policy with PyTorch's semantics; implement it for a hand-written schedule.
///
/// Most policies only need [`LrPolicy::lr`] (PyTorch's `get_lr()`), [`LrPolicy::box_clone`]
/// and [`LrPolicy::name`]; policies with state beyond the step counter also override
/// [`LrPolicy::step`], [`LrPolicy::record`] and [`LrPolicy::load`].
///
/// ```
/// use kindling_schedulers::{LrPolicy, Scheduler};
///
/// /// Halves the rate every `every` epochs, but never below `floor`.
/// #[derive(Clone)]
/// struct HalveWithFloor { every: i64, floor: f64 }
///
/// impl LrPolicy for HalveWithFloor {
///     fn lr(&self, epoch: i64, _initial: bool, _lr: f64, base_lr: f64) -> f64 {
///         (base_lr * 0.5f64.powi((epoch / self.every) as i32)).max(self.floor)
///     }
///     fn box_clone(&self) -> Box<dyn LrPolicy> { Box::new(self.clone()) }
///     fn name(&self) -> &'static str { "HalveWithFloor" }
/// }
///
/// let rows = Scheduler::new(HalveWithFloor { every: 2, floor: 0.2 }, 1.0).rows(6).unwrap();
/// assert_eq!(rows, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2]);
/// ```
pub trait LrPolicy: Send + Sync {
    /// PyTorch's `get_lr()` for one group: the rate after the counter moved to `last_epoch`.
    /// `initial` is true during the constructor's initial step.
    fn lr(&self, last_epoch: i64, initial: bool, lr: f64, base_lr: f64) -> f64;

    /// PyTorch's `_get_closed_form_lr()`, used when `SequentialLR` restarts a policy at a
    /// milestone. Defaults to the recursive form, as PyTorch does for policies without one.
    fn closed_form(&self, last_epoch: i64, lr: f64, base_lr: f64) -> f64 {
        self.lr(last_epoch, false, lr, base_lr)
    }

    /// One `step()` (or `step(metric)`): updates the policy's own state, returns the new rate.
    /// Stateless policies keep the default, which is [`LrPolicy::lr`].
    fn step(
        &mut self,
        last_epoch: i64,
        lr: f64,
        base_lr: f64,
        _metric: Option<f64>,
    ) -> Result<f64, ScheduleError> {
        Ok(self.lr(last_epoch, false, lr, base_lr))
    }

    /// The constructor's initial step.
    fn start(&mut self, lr: f64, base_lr: f64) -> f64 {
        self.lr(0, true, lr, base_lr)
    }

    /// PyTorch's constructor side effects on the optimizer's group before the scheduler reads
    /// its base rate, as `(lr, initial_lr)` from the group's `(lr, initial_lr)`: CyclicLR sets
    /// `lr = base_lr`, OneCycleLR overwrites `initial_lr = max_lr / div_factor`; the default
    /// changes nothing. Only composites use it: a policy's base rate is the group's
    /// `initial_lr` when it was constructed (set from `lr` if unset), and `SequentialLR` resets
    /// the rate to the last `initial_lr`.
    fn construct(&self, lr: f64, initial_lr: Option<f64>) -> (f64, Option<f64>) {
        (lr, initial_lr)
    }

    /// The momentum this policy's latest [`LrPolicy::start`], [`LrPolicy::step`] or
    /// [`LrPolicy::closed_form`] (the one at `last_epoch`) set on the optimizer: PyTorch's side
    /// effect of `get_lr()` on `param_group['momentum']` (SGD) or `param_group['betas'][0]`
    /// (Adam, AdamW). `None` (the default) when the policy does not cycle momentum; the
    /// optimizer's momentum then stays what it was.
    fn momentum(&self, _last_epoch: i64) -> Option<f64> {
        None
    }

    /// State beyond the step counter, for checkpoints.
    fn record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new()
    }

    /// Restores [`LrPolicy::record`].
    fn load(&mut self, _record: &LrSchedulerRecord) {}

    /// A boxed copy (schedulers are cloned into Burn's `Box<dyn LrScheduler>`).
    fn box_clone(&self) -> Box<dyn LrPolicy>;

    /// The policy's PyTorch class name, for messages.
    fn name(&self) -> &'static str;
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
/// `optimizer.step(sched.lr(), ..)` then `sched.step()`. Each step is O(1).
///
/// ```
/// use kindling_schedulers::{Scheduler, StepLr};
/// let s = Scheduler::new(StepLr::new(2, 0.1), 1.0);
/// assert_eq!(s.rows(4).unwrap(), [1.0, 1.0, 0.1, 0.1, 0.010000000000000002]);
/// ```
#[derive(Clone)]
pub struct Scheduler {
    policy: Box<dyn LrPolicy>,
    base_lr: f64,
    lr: f64,
    /// The momentum last set by the policy (PyTorch's `param_group['momentum']`/`betas[0]`).
    momentum: Option<f64>,
    last_epoch: i64,
    /// Burn's `step()` returns the rate for the next update; the first call returns the
    /// initial rate without advancing.
    burn_started: bool,
}

impl Scheduler {
    /// Wraps `policy` for an optimizer whose base learning rate is `base_lr`, and performs the
    /// initial step as PyTorch's constructor does.
    pub fn new(policy: impl LrPolicy + 'static, base_lr: f64) -> Self {
        Self::from_boxed(Box::new(policy), base_lr)
    }

    /// As [`Scheduler::new`], for a boxed policy.
    pub fn from_boxed(mut policy: Box<dyn LrPolicy>, base_lr: f64) -> Self {
        let lr = policy.start(base_lr, base_lr);
        let momentum = policy.momentum(0);
        Self {
            policy,
            base_lr,
            lr,
            momentum,
            last_epoch: 0,
            burn_started: false,
        }
    }

    /// The current learning rate (`get_last_lr()`).
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The momentum the policy has set on the optimizer, if it cycles momentum (OneCycleLR,
    /// CyclicLR with `cycle_momentum`, or a composite containing one): PyTorch's
    /// `param_group['momentum']` (SGD) or `param_group['betas'][0]` (Adam/AdamW) after the
    /// same number of `step()` calls, i.e. the momentum of the update that uses [`Scheduler::lr`].
    /// `None` when no policy has set one: the optimizer keeps its configured momentum.
    ///
    /// A training loop passes it to the optimizer before each update, e.g. through
    /// `kindling::MomentumHandle::set`.
    ///
    /// ```
    /// use kindling_schedulers::{OneCycleLr, Scheduler};
    /// let mut s = Scheduler::new(OneCycleLr::new(0.1, 100), 0.1);
    /// assert_eq!(s.momentum(), Some(0.95)); // max_momentum at the start
    /// for _ in 0..30 {
    ///     s.step().unwrap();
    /// }
    /// assert!((s.momentum().unwrap() - 0.85).abs() < 1e-3); // base_momentum at the peak lr
    /// ```
    pub fn momentum(&self) -> Option<f64> {
        self.momentum
    }

    /// The base learning rate (the optimizer's `lr`).
    pub fn base_lr(&self) -> f64 {
        self.base_lr
    }

    /// How many times the schedule has stepped.
    pub fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    /// Advances one epoch or iteration (`scheduler.step()`).
    pub fn step(&mut self) -> Result<f64, ScheduleError> {
        self.advance(None)
    }

    /// Advances with the monitored metric (`ReduceLROnPlateau.step(metric)`); other policies
    /// ignore the metric.
    pub fn step_with_metric(&mut self, metric: f64) -> Result<f64, ScheduleError> {
        if !metric.is_finite() {
            return Err(ScheduleError::BadMetric(metric));
        }
        self.advance(Some(metric))
    }

    fn advance(&mut self, metric: Option<f64>) -> Result<f64, ScheduleError> {
        let lr = self
            .policy
            .step(self.last_epoch + 1, self.lr, self.base_lr, metric)?;
        self.last_epoch += 1;
        self.lr = lr;
        if let Some(m) = self.policy.momentum(self.last_epoch) {
            self.momentum = Some(m);
        }
        Ok(lr)
    }

    /// Rows 0..=n of the schedule (row k = the rate of the k-th update).
    pub fn rows(mut self, n: usize) -> Result<Vec<f64>, ScheduleError> {
        let mut rows = Vec::with_capacity(n + 1);
        rows.push(self.lr);
        for _ in 0..n {
            rows.push(self.step()?);
        }
        Ok(rows)
    }

    /// The complete position of the schedule, for checkpoints.
    ///
    /// The momentum is saved too: a lone OneCycleLR/CyclicLR derives it from the step counter,
    /// but inside `SequentialLR` it is whatever the last cycling policy set, possibly before
    /// the current policy took over.
    pub fn record(&self) -> LrSchedulerRecord {
        let record = LrSchedulerRecord::new()
            .with_scalar("last_epoch", self.last_epoch)
            .with_scalar("lr", self.lr)
            .with_scalar("burn_started", self.burn_started)
            .with_record("policy", self.policy.record());
        match self.momentum {
            Some(m) => record.with_scalar("momentum", m),
            None => record,
        }
    }

    /// Restores a position saved by [`Scheduler::record`].
    pub fn load(&mut self, record: &LrSchedulerRecord) {
        if let (Some(last_epoch), Some(lr)) = (
            record.scalar::<i64>("last_epoch"),
            record.scalar::<f64>("lr"),
        ) {
            self.last_epoch = last_epoch;
            self.lr = lr;
            self.burn_started = record.scalar::<bool>("burn_started").unwrap_or(false);
            self.policy.load(&record.record("policy"));
            // Records written before momentum was saved: derive it from the position.
            self.momentum = record
                .scalar::<f64>("momentum")
                .or_else(|| self.policy.momentum(last_epoch));
        }
    }
}

impl LrScheduler for Scheduler {
    /// # Panics
    /// When the schedule cannot advance (OneCycleLR past `total_steps`, ReduceLROnPlateau
    /// without a metric): Burn's trait has no error channel. Use [`Scheduler::step`] and
    /// [`Scheduler::step_with_metric`] to get a `Result`.
    fn step(&mut self) -> burn::optim::LearningRate {
        if !self.burn_started {
            self.burn_started = true;
            return self.lr;
        }
        match Scheduler::step(self) {
            Ok(lr) => lr,
            Err(e) => panic!("{e}"),
        }
    }

    fn to_record(&self) -> LrSchedulerRecord {
        self.record()
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        self.load(&record);
    }
}
