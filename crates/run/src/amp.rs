//! Mixed-precision settings: `amp = "off" | "f16" | "bf16"` (PyTorch's `autocast(dtype=..)`
//! around the forward pass, with f32 master weights) and the `[grad_scaler]` section
//! (`torch.amp.GradScaler`'s arguments).

use std::fmt;
use std::str::FromStr;

use burn::tensor::FloatDType;
use serde::{Deserialize, Serialize};

use crate::config::out_of_range;
use crate::error::ConfigError;

/// Automatic mixed precision (`--amp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Amp {
    /// Everything in `dtype` (the default).
    #[default]
    Off,
    /// Autocast to f16, with loss scaling on by default.
    F16,
    /// Autocast to bf16 (f32's exponent range: no loss scaling by default).
    Bf16,
}

impl Amp {
    /// The autocast dtype, or `None` when off.
    pub fn float_dtype(&self) -> Option<FloatDType> {
        match self {
            Amp::Off => None,
            Amp::F16 => Some(FloatDType::F16),
            Amp::Bf16 => Some(FloatDType::BF16),
        }
    }
}

impl fmt::Display for Amp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Amp::Off => "off",
            Amp::F16 => "f16",
            Amp::Bf16 => "bf16",
        })
    }
}

impl FromStr for Amp {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" | "false" | "none" => Ok(Amp::Off),
            "f16" | "float16" | "half" | "fp16" => Ok(Amp::F16),
            "bf16" | "bfloat16" => Ok(Amp::Bf16),
            _ => Err(format!(
                "unknown amp `{s}`; expected one of: off, f16, bf16"
            )),
        }
    }
}

/// `torch.amp.GradScaler`'s arguments and defaults, plus the collapse guard: a run whose
/// scale collapses stops with a message instead of training on silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradScalerSettings {
    /// Loss scaling on or off; unset = on for `amp = "f16"`, off for `"bf16"`.
    pub enabled: Option<bool>,
    /// The first scale.
    pub init_scale: f64,
    /// The scale's factor after `growth_interval` finite steps in a row (> 1).
    pub growth_factor: f64,
    /// The scale's factor after a step with inf/NaN gradients (in (0, 1)).
    pub backoff_factor: f64,
    /// Finite steps in a row before the scale grows (≥ 1).
    pub growth_interval: u32,
    /// Stop after this many skipped steps in a row (0: never).
    pub max_consecutive_skips: u32,
    /// Stop when the scale falls below this (0: never).
    pub min_scale: f64,
}

impl Default for GradScalerSettings {
    fn default() -> Self {
        Self {
            enabled: None,
            init_scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            max_consecutive_skips: 25,
            min_scale: 1.0,
        }
    }
}

impl GradScalerSettings {
    /// Whether loss scaling runs under `amp`.
    pub fn enabled_for(&self, amp: Amp) -> bool {
        amp != Amp::Off && self.enabled.unwrap_or(amp == Amp::F16)
    }

    /// Range checks naming the field (`grad_scaler.growth_factor`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return Err(out_of_range(
                "grad_scaler.init_scale",
                self.init_scale,
                "must be a positive finite number",
            ));
        }
        if self.growth_factor.is_nan() || self.growth_factor <= 1.0 {
            return Err(out_of_range(
                "grad_scaler.growth_factor",
                self.growth_factor,
                "must be > 1",
            ));
        }
        if !(self.backoff_factor > 0.0 && self.backoff_factor < 1.0) {
            return Err(out_of_range(
                "grad_scaler.backoff_factor",
                self.backoff_factor,
                "must be in (0, 1)",
            ));
        }
        if self.growth_interval == 0 {
            return Err(out_of_range(
                "grad_scaler.growth_interval",
                0,
                "must be at least 1",
            ));
        }
        if !(self.min_scale >= 0.0 && self.min_scale.is_finite()) {
            return Err(out_of_range(
                "grad_scaler.min_scale",
                self.min_scale,
                "must be >= 0",
            ));
        }
        Ok(())
    }
}
