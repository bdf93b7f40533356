//! Builds the optimizer from the typed [`OptimizerConfig`].
//!
//! Burn 0.22's `ModuleOptimizer` is already type-erased (any optimizer, any module), so the
//! runtime choice sgd/adam/adamw needs no enum of our own: one value holds whichever was picked
//! and serialises its state to bytes for checkpoints. The optimizers inside are Kindling's own
//! PyTorch-exact SGD/Adam/AdamW (`cycling.rs`), whose momentum (beta1) a [`MomentumHandle`]
//! can change between steps: Burn's fix it at construction.

use burn::optim::ModuleOptimizer;

use crate::config::{OptimizerConfig, OptimizerKind};
use crate::cycling::{MomentumHandle, TorchAdam, TorchSgd};

impl OptimizerConfig {
    /// Creates the optimizer these settings describe.
    ///
    /// Semantics are `torch.optim`'s, in `f64` scalars: SGD's weight decay is an L2 term added
    /// to the gradient and momentum uses `dampening`/`nesterov` as PyTorch does (the buffer
    /// starts from the first gradient); Adam adds L2 to the gradient; AdamW decays weights
    /// decoupled from the gradient (`p *= 1 - lr * weight_decay`); both add `eps` after the
    /// square root of the bias-corrected second moment.
    ///
    /// The momentum stays the configured one; for a schedule that cycles it (OneCycleLR,
    /// CyclicLR) use [`OptimizerConfig::init_with_momentum`].
    ///
    /// ```
    /// use kindling_run::{OptimizerConfig, OptimizerKind};
    /// let mut cfg = OptimizerConfig::default();
    /// cfg.name = OptimizerKind::Adamw;
    /// let _optim = cfg.init();
    /// ```
    pub fn init(&self) -> ModuleOptimizer {
        self.init_with_momentum().0
    }

    /// As [`OptimizerConfig::init`], plus the handle that sets the optimizer's momentum (SGD)
    /// or beta1 (Adam, AdamW) for the following steps. It starts at `momentum` / `betas[0]`;
    /// SGD with `momentum = 0` takes a cycled momentum too (as PyTorch, whose schedulers set it
    /// regardless).
    ///
    /// ```
    /// use kindling_schedulers::{CyclicLr, CyclicMode, Scheduler};
    /// use kindling_run::{OptimizerConfig, OptimizerKind};
    ///
    /// let cfg = OptimizerConfig { name: OptimizerKind::Adam, ..OptimizerConfig::default() };
    /// let (_optimizer, beta1) = cfg.init_with_momentum();
    /// let mut sched = Scheduler::new(CyclicLr::new(1e-4, 1e-3, 100, None, CyclicMode::Triangular), cfg.lr);
    /// for _ in 0..3 {
    ///     beta1.follow(&sched);
    ///     // model = optimizer.step(sched.lr(), model, grads);
    ///     sched.step().unwrap();
    /// }
    /// assert!((beta1.get() - (0.9 - 0.1 * 2.0 / 100.0)).abs() < 1e-12);
    /// ```
    pub fn init_with_momentum(&self) -> (ModuleOptimizer, MomentumHandle) {
        match self.name {
            OptimizerKind::Sgd => {
                let handle = MomentumHandle::new(self.momentum);
                let sgd = TorchSgd {
                    momentum: handle.clone(),
                    dampening: self.dampening,
                    nesterov: self.nesterov,
                    weight_decay: self.weight_decay,
                };
                (ModuleOptimizer::from(sgd), handle)
            }
            OptimizerKind::Adam | OptimizerKind::Adamw => {
                let handle = MomentumHandle::new(self.betas[0]);
                let adam = TorchAdam {
                    beta1: handle.clone(),
                    beta2: self.betas[1],
                    eps: self.eps,
                    weight_decay: self.weight_decay,
                    decoupled: self.name == OptimizerKind::Adamw,
                };
                (ModuleOptimizer::from(adam), handle)
            }
        }
    }
}
