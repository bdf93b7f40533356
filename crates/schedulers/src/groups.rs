//! One policy, several base rates: parameter groups (e.g. backbone 1e-4, head 1e-2), as
//! PyTorch's per-group `lr` under one scheduler.

use burn::lr_scheduler::LrSchedulerRecord;
use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::module::ParamGroup;

use crate::base::{LrPolicy, ScheduleError, Scheduler};

/// A policy applied to several parameter groups, each from its own base rate.
///
/// The first group is every parameter (the optimizer's base rate); later groups override it
/// for the parameters they match, as in Burn's `ModuleOptimizer`. [`GroupScheduler::rates`]
/// is what `ModuleOptimizer::step` takes.
///
/// ```
/// use burn::module::ParamGroup;
/// use kindling_schedulers::{GroupScheduler, StepLr};
/// let head = ParamGroup::from_regex("^head\\.").unwrap();
/// let mut s = GroupScheduler::new(Box::new(StepLr::new(1, 0.5)), 1e-4, vec![(head, 1e-2)]);
/// s.step().unwrap();
/// assert_eq!(s.lrs(), vec![5e-5, 5e-3]);
/// let _rates = s.rates(); // optimizer.step(s.rates(), model, grads)
/// ```
#[derive(Clone)]
pub struct GroupScheduler {
    groups: Vec<(ParamGroup, Scheduler)>,
}

impl GroupScheduler {
    /// `policy` for all parameters from `base_lr`, and for each `(group, lr)` from `lr`.
    pub fn new(policy: Box<dyn LrPolicy>, base_lr: f64, groups: Vec<(ParamGroup, f64)>) -> Self {
        let mut all = vec![(
            ParamGroup::all(),
            Scheduler::from_boxed(policy.clone(), base_lr),
        )];
        all.extend(
            groups
                .into_iter()
                .map(|(group, lr)| (group, Scheduler::from_boxed(policy.clone(), lr))),
        );
        Self { groups: all }
    }

    /// The current rate of each group (base group first).
    pub fn lrs(&self) -> Vec<f64> {
        self.groups.iter().map(|(_, s)| s.lr()).collect()
    }

    /// The momentum the policy sets, as [`Scheduler::momentum`]: one value for all groups (the
    /// momentum of OneCycleLR and CyclicLR does not depend on the rate).
    pub fn momentum(&self) -> Option<f64> {
        self.groups.first().and_then(|(_, s)| s.momentum())
    }

    /// The current rates as Burn's per-parameter learning rate.
    pub fn rates(&self) -> ModuleLearningRate {
        let mut groups = self.groups.iter();
        let Some((_, base)) = groups.next() else {
            return ModuleLearningRate::from(0.0);
        };
        // Burn builds a `ModuleLearningRate` only through a scheduler: a constant rate is a
        // scheduler whose first step returns it.
        let mut module = ModuleLrScheduler::new(base.lr());
        for (group, s) in groups {
            module = module.with_group(group.clone(), s.lr());
        }
        module.step()
    }

    /// Steps every group.
    pub fn step(&mut self) -> Result<(), ScheduleError> {
        self.groups
            .iter_mut()
            .try_for_each(|(_, s)| s.step().map(|_| ()))
    }

    /// Steps every group with the monitored metric.
    pub fn step_with_metric(&mut self, metric: f64) -> Result<(), ScheduleError> {
        self.groups
            .iter_mut()
            .try_for_each(|(_, s)| s.step_with_metric(metric).map(|_| ()))
    }

    /// The position of every group.
    pub fn record(&self) -> LrSchedulerRecord {
        self.groups
            .iter()
            .enumerate()
            .fold(LrSchedulerRecord::new(), |r, (i, (_, s))| {
                r.with_record(&i.to_string(), s.record())
            })
    }

    /// Restores [`GroupScheduler::record`].
    pub fn load(&mut self, record: &LrSchedulerRecord) {
        for (i, (_, s)) in self.groups.iter_mut().enumerate() {
            s.load(&record.record(&i.to_string()));
        }
    }
}
