//! `SequentialLR` and `ChainedScheduler`: policies combined on one shared learning rate,
//! exactly as PyTorch combines schedulers that share one optimizer.

use burn::lr_scheduler::LrSchedulerRecord;

use crate::base::{LrPolicy, ScheduleError};

/// A policy inside a composite, with its own step counter.
#[derive(Clone)]
struct Child {
    policy: Box<dyn LrPolicy>,
    last_epoch: i64,
}

impl Child {
    fn new(policy: Box<dyn LrPolicy>) -> Result<Self, ScheduleError> {
        if policy.name() == "ReduceLROnPlateau" {
            return Err(ScheduleError::NotComposable("ReduceLROnPlateau"));
        }
        Ok(Self {
            policy,
            last_epoch: 0,
        })
    }

    fn step(&mut self, lr: f64, base_lr: f64) -> Result<f64, ScheduleError> {
        let lr = self.policy.step(self.last_epoch + 1, lr, base_lr, None)?;
        self.last_epoch += 1;
        Ok(lr)
    }
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
#[derive(Clone)]
pub struct SequentialLr {
    children: Vec<Child>,
    milestones: Vec<i64>,
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
        })
    }
}

impl LrPolicy for SequentialLr {
    fn lr(&self, _last_epoch: i64, _initial: bool, lr: f64, _base_lr: f64) -> f64 {
        lr
    }

    fn start(&mut self, lr: f64, base_lr: f64) -> f64 {
        // PyTorch constructs every child (each performing its initial step), then resets the
        // rate and re-runs only the first child's initial step: the rates the children
        // computed are discarded, any state their initial step set is kept.
        for child in &mut self.children {
            child.policy.start(lr, base_lr);
        }
        match self.children.first_mut() {
            Some(first) => first.policy.start(base_lr, base_lr),
            None => base_lr,
        }
    }

    fn step(
        &mut self,
        last_epoch: i64,
        lr: f64,
        base_lr: f64,
        _metric: Option<f64>,
    ) -> Result<f64, ScheduleError> {
        let idx = self.milestones.partition_point(|&m| m <= last_epoch);
        let idx = idx.min(self.children.len().saturating_sub(1));
        let Some(child) = self.children.get_mut(idx) else {
            return Ok(lr);
        };
        if idx > 0 && self.milestones[idx - 1] == last_epoch {
            child.last_epoch = 0;
            Ok(child.policy.closed_form(0, lr, base_lr))
        } else {
            child.step(lr, base_lr)
        }
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
/// effects multiply.
#[derive(Clone)]
pub struct ChainedScheduler {
    children: Vec<Child>,
}

impl ChainedScheduler {
    /// The policies, applied in this order at each step.
    pub fn new(policies: Vec<Box<dyn LrPolicy>>) -> Result<Self, ScheduleError> {
        let children = policies
            .into_iter()
            .map(Child::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { children })
    }
}

impl LrPolicy for ChainedScheduler {
    fn lr(&self, _last_epoch: i64, _initial: bool, lr: f64, _base_lr: f64) -> f64 {
        lr
    }

    fn start(&mut self, lr: f64, base_lr: f64) -> f64 {
        self.children
            .iter_mut()
            .fold(lr, |lr, child| child.policy.start(lr, base_lr))
    }

    fn step(
        &mut self,
        _last_epoch: i64,
        lr: f64,
        base_lr: f64,
        _metric: Option<f64>,
    ) -> Result<f64, ScheduleError> {
        self.children
            .iter_mut()
            .try_fold(lr, |lr, child| child.step(lr, base_lr))
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
