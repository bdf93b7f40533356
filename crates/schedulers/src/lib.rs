//! # kindling-schedulers
//!
//! Every `torch.optim.lr_scheduler` policy for Burn, with PyTorch's exact sequences: row `k`
//! of a schedule is PyTorch's `get_last_lr()` after `k` calls to `step()`, i.e. the rate of
//! the `k`-th optimizer update. A [`Scheduler`] is also a Burn [`LrScheduler`], so it plugs
//! into `Learner` and custom loops alike, and its record restores the exact position.
//!
//! ```
//! use kindling_schedulers::{Scheduler, StepLr};
//! // The tutorial's loop: optimizer step with the current rate, then scheduler step.
//! let mut sched = Scheduler::new(StepLr::new(30, 0.1), 0.1);
//! for _epoch in 0..3 {
//!     let _lr = sched.lr(); // optimizer.step(lr, model, grads)
//!     sched.step().unwrap();
//! }
//! ```
//!
//! Custom schedules: [`LambdaLr`] takes any closure of the epoch; a hand-written policy
//! implements [`LrPolicy`].
//!
//! Momentum cycling (OneCycleLR, CyclicLR; PyTorch's default `cycle_momentum = true`):
//! [`Scheduler::momentum`] is what PyTorch puts in `param_group['momentum']` (SGD) or
//! `param_group['betas'][0]` (Adam, AdamW) after as many `step()` calls. Burn 0.22's optimizers
//! fix momentum at construction, so give it to an optimizer that reads it per step: the
//! `kindling` facade's `OptimizerConfig::init_with_momentum` returns one with a
//! `MomentumHandle`.
//!
//! ```
//! use kindling_schedulers::{CyclicLr, CyclicMode, Scheduler};
//! let mut sched = Scheduler::new(CyclicLr::new(0.01, 0.1, 4, None, CyclicMode::Triangular), 0.1);
//! for _ in 0..8 {
//!     let (_lr, _momentum) = (sched.lr(), sched.momentum().unwrap());
//!     // momentum_handle.set(_momentum); optimizer.step(_lr, model, grads)
//!     sched.step().unwrap();
//! }
//! ```
//!
//! [`LrScheduler`]: burn::lr_scheduler::LrScheduler

mod base;
mod composite;
mod config;
mod cosine;
mod cyclic;
mod decay;
mod groups;
mod lambda;
mod one_cycle;
mod plateau;
mod step;
mod warmup;

pub use base::{LrPolicy, ScheduleError, Scheduler};
pub use composite::{ChainedScheduler, SequentialLr};
pub use config::{SchedulerConfig, SchedulerConfigError};
pub use cosine::{CosineAnnealingLr, CosineAnnealingWarmRestarts};
pub use cyclic::{CyclicLr, CyclicMode};
pub use decay::{ExponentialLr, PolynomialLr};
pub use groups::GroupScheduler;
pub use lambda::{LambdaLr, MultiplicativeLr};
pub use one_cycle::{AnnealStrategy, OneCycleLr};
pub use plateau::{PlateauMode, ReduceLrOnPlateau, ThresholdMode};
pub use step::{MultiStepLr, StepLr};
pub use warmup::{ConstantLr, LinearLr};
