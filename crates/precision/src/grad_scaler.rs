//! PyTorch's `torch.amp.GradScaler`: multiply the loss by a scale so small f16 gradients do
//! not flush to zero, divide the gradients by it before the optimizer, skip the step when a
//! gradient is inf/NaN, and adapt the scale.

use burn::config::Config;
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{FloatDType, Tensor};
use serde::{Deserialize, Serialize};

use crate::PrecisionError;

/// Configuration of a [`GradScaler`] (PyTorch's constructor arguments and defaults), plus the
/// collapse guard PyTorch leaves to the user.
#[derive(Config, Debug)]
pub struct GradScalerConfig {
    /// Initial scale.
    #[config(default = 65536.0)]
    pub init_scale: f64,
    /// Scale multiplier after `growth_interval` clean steps in a row (> 1).
    #[config(default = 2.0)]
    pub growth_factor: f64,
    /// Scale multiplier after a step with inf/NaN gradients (in (0, 1)).
    #[config(default = 0.5)]
    pub backoff_factor: f64,
    /// Clean steps in a row before the scale grows.
    #[config(default = 2000)]
    pub growth_interval: u32,
    /// Off: `scale`, `unscale` and `update` do nothing and `step` always steps (PyTorch's
    /// `enabled = False`; Kindling's default for bf16).
    #[config(default = true)]
    pub enabled: bool,
    /// Stop (an error from `update`) after this many skipped steps in a row; 0 never stops.
    #[config(default = 25)]
    pub max_consecutive_skips: u32,
    /// Stop when the scale falls below this (PyTorch's docs: below 1 "something is likely
    /// wrong"); 0 never stops.
    #[config(default = 1.0)]
    pub min_scale: f64,
}

/// The scaler's state, for checkpoints (PyTorch's `state_dict` plus Kindling's counters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradScalerState {
    /// The scale (f32, as PyTorch keeps it).
    pub scale: f32,
    /// Clean steps since the last growth or backoff.
    pub growth_tracker: u32,
    /// Skipped steps in a row.
    pub consecutive_skips: u32,
    /// Skipped steps in total.
    pub skipped_steps: u64,
}

/// Loss scaling with PyTorch's semantics. Per iteration: [`scale`](Self::scale) the loss,
/// backward, optionally [`unscale`](Self::unscale) (then clip), [`step`](Self::step),
/// [`update`](Self::update).
#[derive(Debug, Clone)]
pub struct GradScaler {
    config: GradScalerConfig,
    state: GradScalerState,
    /// Whether this iteration's gradients had an inf/NaN (`None`: not checked yet).
    found_inf: Option<bool>,
    unscaled: bool,
}

impl GradScalerConfig {
    /// Builds the scaler, refusing factors PyTorch refuses.
    pub fn init(&self) -> Result<GradScaler, PrecisionError> {
        let bad = |what: &str, value: f64, expected: &str| {
            Err(PrecisionError::InvalidConfig(format!(
                "{what} = {value}: expected {expected}"
            )))
        };
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return bad("init_scale", self.init_scale, "a positive finite number");
        }
        // Written to refuse NaN too.
        if self.growth_factor.is_nan() || self.growth_factor <= 1.0 {
            return bad("growth_factor", self.growth_factor, "> 1");
        }
        if !(0.0 < self.backoff_factor && self.backoff_factor < 1.0) {
            return bad("backoff_factor", self.backoff_factor, "in (0, 1)");
        }
        if self.growth_interval == 0 {
            return bad("growth_interval", 0.0, "≥ 1");
        }
        Ok(GradScaler {
            state: GradScalerState {
                scale: self.init_scale as f32,
                growth_tracker: 0,
                consecutive_skips: 0,
                skipped_steps: 0,
            },
            config: self.clone(),
            found_inf: None,
            unscaled: false,
        })
    }
}

/// Divides every gradient of a module by the scale and detects non-finite values with one
/// reduction (a single device sync). The gradients may be split over several groups (the
/// trainer's learning-rate groups); each stays in its own.
struct Unscaler<'a> {
    groups: &'a mut [GradientsParams],
    inv_scale: f32,
    probe: Option<Tensor<1>>,
}

impl ModuleVisitor for Unscaler<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some((group, grad)) = self
            .groups
            .iter_mut()
            .find_map(|g| g.remove::<D>(param.id).map(|grad| (g, grad)))
        else {
            return;
        };
        // 0 · g is 0 for finite g and NaN for ±inf or NaN: summing those flags every case.
        let flag = grad.clone().mul_scalar(0.0).sum().cast(FloatDType::F32);
        self.probe = Some(match self.probe.take() {
            Some(p) => p + flag,
            None => flag,
        });
        group.register(param.id, grad.mul_scalar(self.inv_scale));
    }
}

impl GradScaler {
    /// A scaler with PyTorch's defaults.
    pub fn new(config: GradScalerConfig) -> Result<Self, PrecisionError> {
        config.init()
    }

    /// Whether scaling is on.
    pub fn is_enabled(&self) -> bool {
        self.config.enabled
    }

    /// The current scale (1 when disabled, as PyTorch's `get_scale` returns 1.0).
    pub fn scale_factor(&self) -> f32 {
        if self.config.enabled {
            self.state.scale
        } else {
            1.0
        }
    }

    /// The state to checkpoint.
    pub fn state(&self) -> &GradScalerState {
        &self.state
    }

    /// Restores a checkpointed state (between iterations).
    pub fn load_state(&mut self, state: GradScalerState) {
        self.state = state;
        self.found_inf = None;
        self.unscaled = false;
    }

    /// `loss × scale` (the loss itself when disabled).
    pub fn scale<const D: usize>(&self, loss: Tensor<D>) -> Tensor<D> {
        if !self.config.enabled {
            return loss;
        }
        loss.mul_scalar(self.state.scale)
    }

    /// Divides `grads` (of `model`'s parameters) by the scale in place and records whether any
    /// is inf/NaN; returns that. Once per iteration, before clipping.
    pub fn unscale<M: Module>(
        &mut self,
        model: &M,
        grads: &mut GradientsParams,
    ) -> Result<bool, PrecisionError> {
        self.unscale_groups(model, std::slice::from_mut(grads))
    }

    /// [`unscale`](Self::unscale) for gradients split into parameter groups (one optimizer
    /// step per group, as PyTorch's `param_groups`): one inf/NaN check over all of them.
    pub fn unscale_groups<M: Module>(
        &mut self,
        model: &M,
        groups: &mut [GradientsParams],
    ) -> Result<bool, PrecisionError> {
        if !self.config.enabled {
            return Ok(false);
        }
        if self.unscaled {
            return Err(PrecisionError::AlreadyUnscaled);
        }
        // PyTorch: scale.double().reciprocal().float().
        let inv_scale = (1.0 / self.state.scale as f64) as f32;
        let mut unscaler = Unscaler {
            groups,
            inv_scale,
            probe: None,
        };
        model.visit(&mut unscaler);
        let found = unscaler
            .probe
            .map(|p| p.into_scalar::<f32>().is_nan())
            .unwrap_or(false);
        self.unscaled = true;
        self.found_inf = Some(found);
        Ok(found)
    }

    /// Unscales (if [`unscale`](Self::unscale) was not called) and applies `optimizer_step`
    /// unless a gradient is inf/NaN; then the model comes back unchanged (parameters and
    /// optimizer state untouched) and the second value is `false`. A skipped step must not
    /// advance a per-step learning-rate schedule.
    pub fn step<M: Module>(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        optimizer_step: impl FnOnce(M, GradientsParams) -> M,
    ) -> Result<(M, bool), PrecisionError> {
        if !self.config.enabled {
            return Ok((optimizer_step(model, grads), true));
        }
        let found_inf = match self.found_inf {
            Some(found) => found,
            None => self.unscale(&model, &mut grads)?,
        };
        if found_inf {
            return Ok((model, false));
        }
        Ok((optimizer_step(model, grads), true))
    }

    /// PyTorch's `_amp_update_scale_`: after an inf/NaN step the scale is multiplied by the
    /// backoff factor and the tracker resets; after `growth_interval` clean steps in a row it
    /// is multiplied by the growth factor unless that overflows f32. Errors when the scale
    /// collapsed (see [`GradScalerConfig::max_consecutive_skips`] and `min_scale`).
    pub fn update(&mut self) -> Result<(), PrecisionError> {
        if !self.config.enabled {
            return Ok(());
        }
        let found_inf = self.found_inf.take().ok_or(PrecisionError::NoInfCheck)?;
        self.unscaled = false;
        let s = &mut self.state;
        if found_inf {
            s.scale = (s.scale as f64 * self.config.backoff_factor) as f32;
            s.growth_tracker = 0;
            s.consecutive_skips += 1;
            s.skipped_steps += 1;
        } else {
            s.consecutive_skips = 0;
            let successful = s.growth_tracker + 1;
            if successful == self.config.growth_interval {
                let grown = (s.scale as f64 * self.config.growth_factor) as f32;
                if grown.is_finite() {
                    s.scale = grown;
                }
                s.growth_tracker = 0;
            } else {
                s.growth_tracker = successful;
            }
        }
        let c = &self.config;
        let too_many =
            c.max_consecutive_skips > 0 && s.consecutive_skips >= c.max_consecutive_skips;
        if too_many || (s.scale as f64) < c.min_scale {
            return Err(PrecisionError::ScaleCollapsed {
                consecutive_skips: s.consecutive_skips,
                scale: s.scale,
                max_consecutive_skips: c.max_consecutive_skips,
                min_scale: c.min_scale as f32,
            });
        }
        Ok(())
    }
}
