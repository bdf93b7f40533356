//! # kindling-schedulers
//!
//! `torch.optim.lr_scheduler` policies for Burn with PyTorch's exact sequences: row `k` of a
//! schedule is PyTorch's `get_last_lr()` after `k` calls to `step()`, i.e. the rate of the
//! `k`-th optimizer update. A [`Scheduler`] is also a Burn [`LrScheduler`], so it plugs into
//! `Learner` and custom loops alike.
//!
//! Work in progress: the policies below match PyTorch 2.9 (see `tests/fixtures/schedulers`);
//! ReduceLROnPlateau, CyclicLR, OneCycleLR, CosineAnnealingWarmRestarts, SequentialLR and
//! ChainedScheduler, parameter groups and configuration arrive next.
//!
//! [`LrScheduler`]: burn::lr_scheduler::LrScheduler

mod base;
mod cosine;
mod decay;
mod lambda;
mod step;
mod warmup;

pub use base::{LrPolicy, Scheduler};
pub use cosine::CosineAnnealingLr;
pub use decay::{ExponentialLr, PolynomialLr};
pub use lambda::{LambdaLr, MultiplicativeLr};
pub use step::{MultiStepLr, StepLr};
pub use warmup::{ConstantLr, LinearLr};
