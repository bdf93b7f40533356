//! `SequentialLR` and `ChainedScheduler`: policies combined on one shared learning rate,
//! exactly as PyTorch combines schedulers that share one optimizer.

use burn::lr_scheduler::LrSchedulerRecord;

use crate::base::{LrPolicy, ScheduleError};

/// A policy inside a composite, with its own step counter and base rate.
#[derive(Clone)]
struct Child {
    policy: Box<dyn LrPolicy>,
    last_epoch: i64,
    /// PyTorch's `base_lrs`: the group's `initial_lr` when this policy was constructed.
    base_lr: f64,
}

impl Child {
    fn new(policy: Box<dyn LrPolicy>) -> Result<Self, ScheduleError> {
        if policy.name() == "ReduceLROnPlateau" {
            return Err(ScheduleError::NotComposable("ReduceLROnPlateau"));
        }
        Ok(Self {
            policy,
            last_epoch: 0,
            base_lr: 0.0,
        })
    }

    fn step(&mut self, lr: f64) -> Result<f64, ScheduleError> {
        let lr = self
            .policy
            .step(self.last_epoch + 1, lr, self.base_lr, None)?;
        self.last_epoch += 1;
        Ok(lr)
    }

    /// The momentum the child's latest call set, if any.
    fn momentum(&self) -> Option<f64> {
        self.policy.momentum(self.last_epoch)
    }
}

/// Momentum in a composite is PyTorch's side effect of each child's `get_lr()` on the shared
/// optimizer: the last child that sets one wins, and a composite reports what its latest call
/// set (`None` if no child set one), so an outer composite or the [`Scheduler`] keeps the
/// previous value otherwise.
///
/// [`Scheduler`]: crate::Scheduler
fn latest(current: Option<f64>, set: Option<f64>) -> Option<f64> {
    set.or(current)
}

/// Constructs the children in order as PyTorch's constructors would on one optimizer group
/// whose rate is `lr`: each sees the group as the previous ones left it, takes the group's
/// `initial_lr` (set from `lr` by the first) as its base rate, and performs its initial step.
/// Returns the group's final `(lr, initial_lr)` and the momentum the initial steps set.
///
/// The group starts without `initial_lr`, as under a composite's own constructor; a composite
/// nested in another one starts afresh too (PyTorch would continue the outer group's state).
fn construct_children(children: &mut [Child], mut lr: f64) -> (f64, f64, Option<f64>) {
    let mut initial = None;
    let mut momentum = None;
    for child in children {
        let (l, i) = child.policy.construct(lr, initial);
        let base = i.unwrap_or(l);
        initial = Some(base);
        child.base_lr = base;
        lr = child.policy.start(l, base);
        momentum = latest(momentum, child.momentum());
    }
    (lr, initial.unwrap_or(lr), momentum)
}

fn record_children(children: &[Child]) -> LrSchedulerRecord {
    children
        .iter()
        .enumerate()
        .fold(LrSchedulerRecord::new(), |rec, (i, c)| {
            rec.with_scalar(&format!("{i}.last_epoch"), c.last_epoch)
                .with_record(&i.to_string(), c.policy.record())
        })
}

fn load_children(children: &mut [Child], record: &LrSchedulerRecord) {
    for (i, c) in children.iter_mut().enumerate() {
        if let Some(last_epoch) = record.scalar(&format!("{i}.last_epoch")) {
            c.last_epoch = last_epoch;
            c.policy.load(&record.record(&i.to_string()));
        }
    }
}

/// Runs one policy after another, switching at `milestones` (PyTorch's `SequentialLR`): the
/// policy that takes over restarts from its closed form at 0. Linear warm-up followed by any
/// policy is `SequentialLr::new(vec![Box::new(LinearLr::new(..)), Box::new(other)], vec![n])`.
///
/// ```
/// use kindling_schedulers::{CosineAnnealingLr, LinearLr, Scheduler, SequentialLr};
/// let warmup_then_cosine = SequentialLr::new(
///     vec![Box::new(LinearLr::new(0.1, 1.0, 5)), Box::new(CosineAnnealingLr::new(20, 0.0))],
///     vec![5],
/// )
/// .unwrap();
/// let rows = Scheduler::new(warmup_then_cosine, 0.5).rows(25).unwrap();
/// assert!((rows[0] - 0.05).abs() < 1e-12 && (rows[5] - 0.5).abs() < 1e-12);
/// ```
///
/// Momentum (OneCycleLR, CyclicLR children): as in PyTorch, each child sets it on the
/// optimizer when it computes a rate (also while the composite is constructed), and it keeps
/// its last value after a cycling child hands over to one that does not cycle momentum.
#[derive(Clone)]
pub struct SequentialLr {
    children: Vec<Child>,
    milestones: Vec<i64>,
    /// The momentum set by the latest start/step.
    momentum: Option<f64>,
}

impl SequentialLr {
    /// `milestones` must have one entry fewer than `policies`.
    pub fn new(
        policies: Vec<Box<dyn LrPolicy>>,
        milestones: Vec<usize>,
    ) -> Result<Self, ScheduleError> {
        let children = policies
            .into_iter()
            .map(Child::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            children,
            milestones: milestones.into_iter().map(|m| m as i64).collect(),
            momentum: None,
        })
    }
}

impl LrPolicy for SequentialLr {
    fn lr(&self, _last_epoch: i64, _initial: bool, lr: f64, _base_lr: f64) -> f64 {
        lr
    }

    fn start(&mut self, lr: f64, _base_lr: f64) -> f64 {
        // PyTorch constructs every child (each performing its initial step), then resets the
        // rate to the group's `initial_lr` and re-runs only the first child's initial step:
        // the rates the children computed are discarded, any state their initial step set is
        // kept. OneCycleLR and CyclicLR change `initial_lr`/`lr` as they are constructed, so
        // the reset rate and the children's base rates can differ from the optimizer's rate.
        // Momentum: each child's initial step sets it, the first child's repeated one last.
        let (_, initial, mut momentum) = construct_children(&mut self.children, lr);
        let lr = match self.children.first_mut() {
            Some(first) => {
                let lr = first.policy.start(initial, first.base_lr);
                momentum = latest(momentum, first.momentum());
                lr
            }
            None => lr,
        };
        self.momentum = momentum;
        lr
    }

    fn momentum(&self, _last_epoch: i64) -> Option<f64> {
        self.momentum
    }

    fn step(
        &mut self,
        last_epoch: i64,
        lr: f64,
        _base_lr: f64,
        _metric: Option<f64>,
    ) -> Result<f64, ScheduleError> {
        let idx = self.milestones.partition_point(|&m| m <= last_epoch);
        let idx = idx.min(self.children.len().saturating_sub(1));
        self.momentum = None;
        let Some(child) = self.children.get_mut(idx) else {
            return Ok(lr);
        };
        let lr = if idx > 0 && self.milestones[idx - 1] == last_epoch {
            child.last_epoch = 0;
            let lr = child.policy.closed_form(0, lr, child.base_lr);
            // PyTorch restarts the child with `_update_lr(0)`: OneCycleLR and CyclicLR have no
            // closed form, so their `get_lr()` runs at 0 and sets momentum. A nested composite
            // cannot restart (PyTorch raises): it sets nothing.
            if !matches!(child.policy.name(), "SequentialLR" | "ChainedScheduler") {
                self.momentum = child.momentum();
            }
            lr
        } else {
            let lr = child.step(lr)?;
            self.momentum = child.momentum();
            lr
        };
        Ok(lr)
    }

    fn record(&self) -> LrSchedulerRecord {
        record_children(&self.children)
    }

    fn load(&mut self, record: &LrSchedulerRecord) {
        load_children(&mut self.children, record);
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "SequentialLR"
    }
}

/// Steps every policy, in order, on the same rate (PyTorch's `ChainedScheduler`): their
/// effects multiply. Momentum: the last child that cycles momentum sets it, as in PyTorch.
#[derive(Clone)]
pub struct ChainedScheduler {
    children: Vec<Child>,
    /// The momentum set by the latest start/step.
    momentum: Option<f64>,
}

impl ChainedScheduler {
    /// The policies, applied in this order at each step.
    pub fn new(policies: Vec<Box<dyn LrPolicy>>) -> Result<Self, ScheduleError> {
        let children = policies
            .into_iter()
            .map(Child::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            children,
            momentum: None,
        })
    }
}

impl LrPolicy for ChainedScheduler {
    fn lr(&self, _last_epoch: i64, _initial: bool, lr: f64, _base_lr: f64) -> f64 {
        lr
    }

    fn start(&mut self, lr: f64, _base_lr: f64) -> f64 {
        // The children were constructed in order on the optimizer, each initial step acting on
        // the rate the previous one left.
        let (lr, _, momentum) = construct_children(&mut self.children, lr);
        self.momentum = momentum;
        lr
    }

    fn momentum(&self, _last_epoch: i64) -> Option<f64> {
        self.momentum
    }

    fn step(
        &mut self,
        _last_epoch: i64,
        lr: f64,
        _base_lr: f64,
        _metric: Option<f64>,
    ) -> Result<f64, ScheduleError> {
        let mut momentum = None;
        let lr = self.children.iter_mut().try_fold(lr, |lr, child| {
            let lr = child.step(lr)?;
            momentum = latest(momentum, child.momentum());
            Ok(lr)
        })?;
        self.momentum = momentum;
        Ok(lr)
    }

    fn record(&self) -> LrSchedulerRecord {
        record_children(&self.children)
    }

    fn load(&mut self, record: &LrSchedulerRecord) {
        load_children(&mut self.children, record);
    }

    fn box_clone(&self) -> Box<dyn LrPolicy> {
        Box::new(self.clone())
    }

    fn name(&self) -> &'static str {
        "ChainedScheduler"
    }
}
