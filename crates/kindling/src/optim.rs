//! Builds Burn's optimizer from the typed [`OptimizerConfig`].
//!
//! Burn 0.22's `ModuleOptimizer` is already type-erased (any optimizer, any module), so the
//! runtime choice sgd/adam/adamw needs no enum of our own: one value holds whichever was picked
//! and serialises its state to bytes for checkpoints.

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use crate::config::{OptimizerConfig, OptimizerKind};

impl OptimizerConfig {
    /// Creates the optimizer these settings describe.
    ///
    /// Semantics follow `torch.optim`: SGD's weight decay is an L2 term added to the gradient
    /// and momentum uses `dampening`/`nesterov` as PyTorch does; Adam adds L2 to the gradient;
    /// AdamW decays weights decoupled from the gradient.
    ///
    /// ```
    /// use kindling::{OptimizerConfig, OptimizerKind};
    /// let mut cfg = OptimizerConfig::default();
    /// cfg.name = OptimizerKind::Adamw;
    /// let _optim = cfg.init();
    /// ```
    pub fn init(&self) -> ModuleOptimizer {
        let decay = (self.weight_decay > 0.0).then_some(WeightDecayConfig {
            penalty: self.weight_decay as f32,
        });
        match self.name {
            OptimizerKind::Sgd => {
                let momentum = (self.momentum > 0.0).then_some(MomentumConfig {
                    momentum: self.momentum,
                    dampening: self.dampening,
                    nesterov: self.nesterov,
                });
                SgdConfig::new()
                    .with_momentum(momentum)
                    .with_weight_decay(decay)
                    .init()
            }
            OptimizerKind::Adam => AdamConfig::new()
                .with_beta_1(self.betas[0] as f32)
                .with_beta_2(self.betas[1] as f32)
                .with_epsilon(self.eps as f32)
                .with_weight_decay(decay)
                .init(),
            OptimizerKind::Adamw => AdamWConfig::new()
                .with_beta_1(self.betas[0] as f32)
                .with_beta_2(self.betas[1] as f32)
                .with_epsilon(self.eps as f32)
                .with_weight_decay(self.weight_decay as f32)
                .init(),
        }
    }
}
