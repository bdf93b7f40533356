//! The trainer's mixed precision (`amp = "f16" | "bf16"`): the autocast scope around each
//! training step's forward pass and loss, and the [`GradScaler`] around backward and the
//! optimizer step (a step with inf/NaN gradients is skipped: parameters, optimizer state and
//! a per-step schedule stay where they are).

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, FloatDType, Tensor};
use kindling_precision::{
    AutocastGuard, GradScaler, GradScalerConfig, GradScalerState, autocast_inputs,
};
use kindling_run::{Amp, RunConfig};

use crate::error::{Result, TrainError};

/// The metric columns an AMP run adds: the scale after each epoch and the skipped steps so far.
pub const AMP_COLUMNS: [&str; 2] = ["amp_scale", "skipped_steps"];

/// Autocast dtype and loss scaler of a run (inert when `amp = "off"`).
pub(crate) struct MixedPrecision {
    amp: Amp,
    scaler: Option<GradScaler>,
    /// Whether a step under autocast reached an autocast op.
    checked: bool,
}

impl MixedPrecision {
    /// Checks that `device` computes the autocast dtype and builds the scaler.
    pub(crate) fn new(cfg: &RunConfig, device: &Device) -> Result<Self> {
        let Some(dtype) = cfg.amp.float_dtype() else {
            return Ok(Self {
                amp: Amp::Off,
                scaler: None,
                checked: false,
            });
        };
        refuse_unsupported(cfg, dtype, device.supports_dtype(dtype))?;
        let s = &cfg.grad_scaler;
        let scaler = GradScalerConfig::new()
            .with_enabled(s.enabled_for(cfg.amp))
            .with_init_scale(s.init_scale)
            .with_growth_factor(s.growth_factor)
            .with_backoff_factor(s.backoff_factor)
            .with_growth_interval(s.growth_interval)
            .with_max_consecutive_skips(s.max_consecutive_skips)
            .with_min_scale(s.min_scale)
            .init()?;
        Ok(Self {
            amp: cfg.amp,
            scaler: Some(scaler),
            checked: false,
        })
    }

    /// Whether autocast is on.
    pub(crate) fn is_on(&self) -> bool {
        self.amp != Amp::Off
    }

    /// Runs one training step under the autocast scope (none when off). The first step
    /// must reach an autocast op: a model of layers that ignore autocast is an error, not an
    /// f32 run labelled AMP.
    pub(crate) fn step<T>(&mut self, step: impl FnOnce() -> Result<T>) -> Result<T> {
        let _scope = AutocastGuard::enter(self.amp.float_dtype());
        let before = autocast_inputs();
        let out = step()?;
        if self.is_on() && !self.checked {
            if autocast_inputs() == before {
                return Err(TrainError::Task(format!(
                    "--amp {}: no layer of this model follows autocast (it is not built from \
                     kindling::nn layers, e.g. Burn's own), so it would train in f32; build it \
                     from kindling::nn, run its forward pass through \
                     kindling::precision::MasterWeights::forward (apex O2, as `train finetune \
                     --onnx` does), or leave --amp out",
                    self.amp
                )));
            }
            self.checked = true;
        }
        Ok(out)
    }

    /// The loss to differentiate: multiplied by the scale when scaling is on.
    pub(crate) fn scale(&self, loss: Tensor<1>) -> Tensor<1> {
        match &self.scaler {
            Some(s) => s.scale(loss),
            None => loss,
        }
    }

    /// Unscales the step's gradients (split into learning-rate groups) and says whether the
    /// step must be skipped (an inf/NaN gradient; never without scaling).
    pub(crate) fn unscale<M: Module>(
        &mut self,
        model: &M,
        groups: &mut [GradientsParams],
    ) -> Result<bool> {
        match &mut self.scaler {
            Some(s) => Ok(s.unscale_groups(model, groups)?),
            None => Ok(false),
        }
    }

    /// Adapts the scale after the step; an error when it collapsed.
    pub(crate) fn update(&mut self) -> Result<()> {
        match &mut self.scaler {
            Some(s) => Ok(s.update()?),
            None => Ok(()),
        }
    }

    /// The columns this run adds to the metrics.
    pub(crate) fn columns(&self) -> Vec<String> {
        match self.is_on() {
            true => AMP_COLUMNS.iter().map(|c| c.to_string()).collect(),
            false => Vec::new(),
        }
    }

    /// Their values now.
    pub(crate) fn values(&self) -> Vec<f64> {
        match &self.scaler {
            Some(s) => vec![s.scale_factor() as f64, s.state().skipped_steps as f64],
            None => Vec::new(),
        }
    }

    /// For the progress bar: ` scale 65536 skipped 0`, or nothing.
    pub(crate) fn progress(&self) -> String {
        match &self.scaler {
            Some(s) if s.is_enabled() => format!(
                " scale {} skipped {}",
                s.scale_factor(),
                s.state().skipped_steps
            ),
            _ => String::new(),
        }
    }

    /// The scaler state to checkpoint.
    pub(crate) fn state(&self) -> Option<GradScalerState> {
        self.scaler.as_ref().map(|s| s.state().clone())
    }

    /// Restores a checkpoint's scaler state; an AMP run refuses a checkpoint without one.
    pub(crate) fn load_state(&mut self, state: Option<GradScalerState>) -> Result<()> {
        match (&mut self.scaler, state) {
            (Some(s), Some(state)) => {
                s.load_state(state);
                Ok(())
            }
            (Some(_), None) => Err(TrainError::Resume(format!(
                "the checkpoint has no loss-scaler state, and this run has --amp {}: it was \
                 written without --amp (resume it without --amp, or start a new run)",
                self.amp
            ))),
            (None, _) => Ok(()),
        }
    }
}

/// The error for a device that cannot compute the autocast dtype (`supported` = what the
/// device reports), naming the amp value, the device and the other dtype to try.
fn refuse_unsupported(cfg: &RunConfig, dtype: FloatDType, supported: bool) -> Result<()> {
    if supported {
        return Ok(());
    }
    Err(TrainError::Task(format!(
        "--amp {}: device `{}` cannot compute {dtype:?}; use --amp {} or another device",
        cfg.amp,
        cfg.device,
        match cfg.amp {
            Amp::F16 => "bf16",
            _ => "f16",
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_without_the_dtype_is_refused_naming_both() {
        let cfg = RunConfig {
            amp: Amp::F16,
            ..RunConfig::default()
        };
        assert!(refuse_unsupported(&cfg, FloatDType::F16, true).is_ok());
        let err = refuse_unsupported(&cfg, FloatDType::F16, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--amp f16")
                && err.contains(&format!("device `{}`", cfg.device))
                && err.contains("F16")
                && err.contains("use --amp bf16"),
            "{err}"
        );
    }

    #[test]
    fn an_amp_run_refuses_a_checkpoint_without_scaler_state() {
        let cfg = RunConfig {
            amp: Amp::F16,
            ..RunConfig::default()
        };
        let mut amp = MixedPrecision::new(&cfg, &Device::flex()).unwrap();
        assert_eq!(amp.columns(), AMP_COLUMNS);
        assert_eq!(amp.values(), [65536.0, 0.0]);
        let err = amp.load_state(None).unwrap_err().to_string();
        assert!(
            err.contains("no loss-scaler state") && err.contains("--amp f16"),
            "{err}"
        );
        // Without --amp there is nothing to restore, whatever the checkpoint holds.
        let mut off = MixedPrecision::new(&RunConfig::default(), &Device::flex()).unwrap();
        assert!(off.load_state(None).is_ok() && off.columns().is_empty());
    }

    #[test]
    fn bf16_is_not_scaled_by_default() {
        let cfg = RunConfig {
            amp: Amp::Bf16,
            ..RunConfig::default()
        };
        let amp = MixedPrecision::new(&cfg, &Device::flex()).unwrap();
        assert_eq!(amp.values(), [1.0, 0.0]);
        assert_eq!(amp.progress(), "");
    }
}
