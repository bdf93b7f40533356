//! Policies selected by name from a configuration file: PyTorch's class names in snake_case,
//! PyTorch's argument names lowercased, PyTorch's defaults.
//!
//! ```
//! use kindling_schedulers::SchedulerConfig;
//! let cfg: SchedulerConfig =
//!     serde_json::from_str(r#"{"name": "step_lr", "step_size": 30, "gamma": 0.1}"#).unwrap();
//! let rows = cfg.build(0.1).unwrap().rows(31).unwrap();
//! assert!((rows[30] - 0.01).abs() < 1e-15);
//! ```

use serde::{Deserialize, Serialize};

use crate::base::{LrPolicy, ScheduleError, Scheduler};
use crate::{
    AnnealStrategy, ChainedScheduler, ConstantLr, CosineAnnealingLr, CosineAnnealingWarmRestarts,
    CyclicLr, CyclicMode, ExponentialLr, LinearLr, MultiStepLr, MultiplicativeLr, OneCycleLr,
    PlateauMode, PolynomialLr, ReduceLrOnPlateau, SequentialLr, StepLr, ThresholdMode,
};

/// A value that makes a policy invalid, named as in the configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchedulerConfigError {
    /// A value outside its range.
    #[error("scheduler `{policy}`: `{field}` = {value} is invalid: {expected}")]
    Invalid {
        /// The policy's name.
        policy: &'static str,
        /// The argument.
        field: &'static str,
        /// The given value.
        value: String,
        /// What is valid.
        expected: &'static str,
    },
    /// A policy that cannot be combined.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
}

fn one_third() -> f64 {
    1.0 / 3.0
}
fn one() -> f64 {
    1.0
}
fn five() -> usize {
    5
}
fn tenth() -> f64 {
    0.1
}

/// A policy and its arguments, tagged by `name`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum SchedulerConfig {
    /// `torch.optim.lr_scheduler.MultiplicativeLR` with a constant factor.
    MultiplicativeLr {
        /// Factor applied at each step.
        factor: f64,
    },
    /// `StepLR`.
    StepLr {
        /// Steps between decays.
        step_size: usize,
        /// Decay factor.
        #[serde(default = "tenth")]
        gamma: f64,
    },
    /// `MultiStepLR`.
    MultiStepLr {
        /// Increasing steps at which to decay.
        milestones: Vec<usize>,
        /// Decay factor.
        #[serde(default = "tenth")]
        gamma: f64,
    },
    /// `ConstantLR`.
    ConstantLr {
        /// Scale until `total_iters`.
        #[serde(default = "one_third")]
        factor: f64,
        /// Steps at the scaled rate.
        #[serde(default = "five")]
        total_iters: usize,
    },
    /// `LinearLR`.
    LinearLr {
        /// Factor at step 0.
        #[serde(default = "one_third")]
        start_factor: f64,
        /// Factor from `total_iters` on.
        #[serde(default = "one")]
        end_factor: f64,
        /// Length of the ramp.
        #[serde(default = "five")]
        total_iters: usize,
    },
    /// `ExponentialLR`.
    ExponentialLr {
        /// Decay per step.
        gamma: f64,
    },
    /// `PolynomialLR`.
    PolynomialLr {
        /// Steps to reach 0.
        #[serde(default = "five")]
        total_iters: usize,
        /// Exponent.
        #[serde(default = "one")]
        power: f64,
    },
    /// `CosineAnnealingLR`.
    CosineAnnealingLr {
        /// Half period.
        t_max: usize,
        /// Floor.
        #[serde(default)]
        eta_min: f64,
    },
    /// `CosineAnnealingWarmRestarts`.
    CosineAnnealingWarmRestarts {
        /// First period.
        t_0: usize,
        /// Period multiplier.
        #[serde(default = "one_usize")]
        t_mult: usize,
        /// Floor.
        #[serde(default)]
        eta_min: f64,
    },
    /// `CyclicLR`.
    CyclicLr {
        /// Lower bound of the cycle (replaces the optimizer's rate, as in PyTorch).
        base_lr: f64,
        /// Upper bound of the cycle.
        max_lr: f64,
        /// Steps going up.
        #[serde(default = "two_thousand")]
        step_size_up: usize,
        /// Steps going down (default: `step_size_up`).
        #[serde(default)]
        step_size_down: Option<usize>,
        /// triangular, triangular2 or exp_range.
        #[serde(default = "triangular")]
        mode: String,
        /// exp_range's decay per iteration.
        #[serde(default = "one")]
        gamma: f64,
        /// Cycle momentum (SGD) or beta1 (Adam/AdamW) inversely to the rate.
        #[serde(default = "yes")]
        cycle_momentum: bool,
        /// Momentum at the rate's peak.
        #[serde(default = "eight_tenths")]
        base_momentum: f64,
        /// Momentum at `base_lr`.
        #[serde(default = "nine_tenths")]
        max_momentum: f64,
    },
    /// `OneCycleLR`.
    OneCycleLr {
        /// Peak rate.
        max_lr: f64,
        /// Schedule length (or give `epochs` and `steps_per_epoch`).
        #[serde(default)]
        total_steps: Option<usize>,
        /// Epochs, with `steps_per_epoch`.
        #[serde(default)]
        epochs: Option<usize>,
        /// Steps per epoch, with `epochs`.
        #[serde(default)]
        steps_per_epoch: Option<usize>,
        /// Fraction of the schedule spent warming up.
        #[serde(default = "three_tenths")]
        pct_start: f64,
        /// cos or linear.
        #[serde(default = "cos")]
        anneal_strategy: String,
        /// Start at `max_lr / div_factor`.
        #[serde(default = "twenty_five")]
        div_factor: f64,
        /// End at `max_lr / div_factor / final_div_factor`.
        #[serde(default = "ten_thousand")]
        final_div_factor: f64,
        /// Use PyTorch's three-phase variant.
        #[serde(default)]
        three_phase: bool,
        /// Cycle momentum (SGD) or beta1 (Adam/AdamW) inversely to the rate.
        #[serde(default = "yes")]
        cycle_momentum: bool,
        /// Momentum at the rate's peak.
        #[serde(default = "eighty_five_hundredths")]
        base_momentum: f64,
        /// Momentum at the start and the end.
        #[serde(default = "ninety_five_hundredths")]
        max_momentum: f64,
    },
    /// `ReduceLROnPlateau`.
    ReduceLrOnPlateau {
        /// min or max.
        #[serde(default = "min")]
        mode: String,
        /// Decay factor.
        #[serde(default = "tenth")]
        factor: f64,
        /// Steps without improvement before a decay.
        #[serde(default = "ten")]
        patience: usize,
        /// Significant change.
        #[serde(default = "threshold")]
        threshold: f64,
        /// rel or abs.
        #[serde(default = "rel")]
        threshold_mode: String,
        /// Steps to wait after a decay.
        #[serde(default)]
        cooldown: usize,
        /// Lower bound.
        #[serde(default)]
        min_lr: f64,
        /// Smallest decay applied.
        #[serde(default = "eps")]
        eps: f64,
    },
    /// `SequentialLR`.
    SequentialLr {
        /// The policies, in order.
        schedulers: Vec<SchedulerConfig>,
        /// Steps at which the next policy takes over (one fewer than `schedulers`).
        milestones: Vec<usize>,
    },
    /// `ChainedScheduler`.
    ChainedScheduler {
        /// The policies applied at each step, in order.
        schedulers: Vec<SchedulerConfig>,
    },
}

fn yes() -> bool {
    true
}
fn eight_tenths() -> f64 {
    0.8
}
fn nine_tenths() -> f64 {
    0.9
}
fn eighty_five_hundredths() -> f64 {
    0.85
}
fn ninety_five_hundredths() -> f64 {
    0.95
}
fn one_usize() -> usize {
    1
}
fn two_thousand() -> usize {
    2000
}
fn triangular() -> String {
    "triangular".into()
}
fn three_tenths() -> f64 {
    0.3
}
fn cos() -> String {
    "cos".into()
}
fn twenty_five() -> f64 {
    25.0
}
fn ten_thousand() -> f64 {
    1e4
}
fn min() -> String {
    "min".into()
}
fn ten() -> usize {
    10
}
fn threshold() -> f64 {
    1e-4
}
fn rel() -> String {
    "rel".into()
}
fn eps() -> f64 {
    1e-8
}

type Res<T> = Result<T, SchedulerConfigError>;

fn check(
    ok: bool,
    policy: &'static str,
    field: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(SchedulerConfigError::Invalid {
            policy,
            field,
            value: value.to_string(),
            expected,
        })
    }
}

fn positive(policy: &'static str, field: &'static str, v: f64) -> Res<()> {
    check(v.is_finite() && v > 0.0, policy, field, v, "must be > 0")
}

fn non_negative(policy: &'static str, field: &'static str, v: f64) -> Res<()> {
    check(v.is_finite() && v >= 0.0, policy, field, v, "must be >= 0")
}

/// Momentum bounds: PyTorch does not check them, but SGD needs momentum >= 0 and Adam's beta1
/// must be in [0, 1).
fn momentum_bounds(policy: &'static str, base: f64, max: f64) -> Res<()> {
    for (field, v) in [("base_momentum", base), ("max_momentum", max)] {
        check(
            (0.0..1.0).contains(&v),
            policy,
            field,
            v,
            "must be in [0, 1)",
        )?;
    }
    Ok(())
}

fn at_least_one(policy: &'static str, field: &'static str, v: usize) -> Res<()> {
    check(v >= 1, policy, field, v, "must be at least 1")
}

impl SchedulerConfig {
    /// The policy's snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MultiplicativeLr { .. } => "multiplicative_lr",
            Self::StepLr { .. } => "step_lr",
            Self::MultiStepLr { .. } => "multi_step_lr",
            Self::ConstantLr { .. } => "constant_lr",
            Self::LinearLr { .. } => "linear_lr",
            Self::ExponentialLr { .. } => "exponential_lr",
            Self::PolynomialLr { .. } => "polynomial_lr",
            Self::CosineAnnealingLr { .. } => "cosine_annealing_lr",
            Self::CosineAnnealingWarmRestarts { .. } => "cosine_annealing_warm_restarts",
            Self::CyclicLr { .. } => "cyclic_lr",
            Self::OneCycleLr { .. } => "one_cycle_lr",
            Self::ReduceLrOnPlateau { .. } => "reduce_lr_on_plateau",
            Self::SequentialLr { .. } => "sequential_lr",
            Self::ChainedScheduler { .. } => "chained_scheduler",
        }
    }

    /// Validates the arguments and builds the policy.
    pub fn policy(&self) -> Res<Box<dyn LrPolicy>> {
        let p = self.name();
        Ok(match self {
            Self::MultiplicativeLr { factor } => {
                positive(p, "factor", *factor)?;
                let f = *factor;
                Box::new(MultiplicativeLr::new(move |_| f))
            }
            Self::StepLr { step_size, gamma } => {
                at_least_one(p, "step_size", *step_size)?;
                positive(p, "gamma", *gamma)?;
                Box::new(StepLr::new(*step_size, *gamma))
            }
            Self::MultiStepLr { milestones, gamma } => {
                check(
                    milestones.windows(2).all(|w| w[0] <= w[1]),
                    p,
                    "milestones",
                    format!("{milestones:?}"),
                    "must be increasing (a repeated milestone decays twice, as in PyTorch)",
                )?;
                positive(p, "gamma", *gamma)?;
                Box::new(MultiStepLr::new(milestones.iter().copied(), *gamma))
            }
            Self::ConstantLr {
                factor,
                total_iters,
            } => {
                check(
                    *factor > 0.0 && *factor <= 1.0,
                    p,
                    "factor",
                    factor,
                    "must be in (0, 1]",
                )?;
                Box::new(ConstantLr::new(*factor, *total_iters))
            }
            Self::LinearLr {
                start_factor,
                end_factor,
                total_iters,
            } => {
                check(
                    *start_factor > 0.0 && *start_factor <= 1.0,
                    p,
                    "start_factor",
                    start_factor,
                    "must be in (0, 1]",
                )?;
                check(
                    (0.0..=1.0).contains(end_factor),
                    p,
                    "end_factor",
                    end_factor,
                    "must be in [0, 1]",
                )?;
                at_least_one(p, "total_iters", *total_iters)?;
                Box::new(LinearLr::new(*start_factor, *end_factor, *total_iters))
            }
            Self::ExponentialLr { gamma } => {
                positive(p, "gamma", *gamma)?;
                Box::new(ExponentialLr::new(*gamma))
            }
            Self::PolynomialLr { total_iters, power } => {
                at_least_one(p, "total_iters", *total_iters)?;
                non_negative(p, "power", *power)?;
                Box::new(PolynomialLr::new(*total_iters, *power))
            }
            Self::CosineAnnealingLr { t_max, eta_min } => {
                at_least_one(p, "t_max", *t_max)?;
                non_negative(p, "eta_min", *eta_min)?;
                Box::new(CosineAnnealingLr::new(*t_max, *eta_min))
            }
            Self::CosineAnnealingWarmRestarts {
                t_0,
                t_mult,
                eta_min,
            } => {
                at_least_one(p, "t_0", *t_0)?;
                at_least_one(p, "t_mult", *t_mult)?;
                non_negative(p, "eta_min", *eta_min)?;
                Box::new(CosineAnnealingWarmRestarts::new(*t_0, *t_mult, *eta_min))
            }
            Self::CyclicLr {
                base_lr,
                max_lr,
                step_size_up,
                step_size_down,
                mode,
                gamma,
                cycle_momentum,
                base_momentum,
                max_momentum,
            } => {
                positive(p, "base_lr", *base_lr)?;
                positive(p, "max_lr", *max_lr)?;
                at_least_one(p, "step_size_up", *step_size_up)?;
                if let Some(down) = step_size_down {
                    at_least_one(p, "step_size_down", *down)?;
                }
                let mode = match mode.as_str() {
                    "triangular" => CyclicMode::Triangular,
                    "triangular2" => CyclicMode::Triangular2,
                    "exp_range" => {
                        positive(p, "gamma", *gamma)?;
                        CyclicMode::ExpRange { gamma: *gamma }
                    }
                    other => {
                        return Err(SchedulerConfigError::Invalid {
                            policy: p,
                            field: "mode",
                            value: other.to_string(),
                            expected: "one of triangular, triangular2, exp_range",
                        });
                    }
                };
                if *cycle_momentum {
                    momentum_bounds(p, *base_momentum, *max_momentum)?;
                }
                Box::new(
                    CyclicLr::new(*base_lr, *max_lr, *step_size_up, *step_size_down, mode)
                        .with_cycle_momentum(*cycle_momentum)
                        .with_momentum(*base_momentum, *max_momentum),
                )
            }
            Self::OneCycleLr {
                max_lr,
                total_steps,
                epochs,
                steps_per_epoch,
                pct_start,
                anneal_strategy,
                div_factor,
                final_div_factor,
                three_phase,
                cycle_momentum,
                base_momentum,
                max_momentum,
            } => {
                positive(p, "max_lr", *max_lr)?;
                let total = match (total_steps, epochs, steps_per_epoch) {
                    (Some(t), _, _) => {
                        at_least_one(p, "total_steps", *t)?;
                        *t
                    }
                    (None, Some(e), Some(s)) => {
                        at_least_one(p, "epochs", *e)?;
                        at_least_one(p, "steps_per_epoch", *s)?;
                        e * s
                    }
                    _ => {
                        return Err(SchedulerConfigError::Invalid {
                            policy: p,
                            field: "total_steps",
                            value: "unset".into(),
                            expected: "give total_steps, or epochs and steps_per_epoch",
                        });
                    }
                };
                check(
                    (0.0..=1.0).contains(pct_start),
                    p,
                    "pct_start",
                    pct_start,
                    "must be in [0, 1]",
                )?;
                let anneal = match anneal_strategy.as_str() {
                    "cos" => AnnealStrategy::Cos,
                    "linear" => AnnealStrategy::Linear,
                    other => {
                        return Err(SchedulerConfigError::Invalid {
                            policy: p,
                            field: "anneal_strategy",
                            value: other.to_string(),
                            expected: "cos or linear",
                        });
                    }
                };
                positive(p, "div_factor", *div_factor)?;
                positive(p, "final_div_factor", *final_div_factor)?;
                if *cycle_momentum {
                    momentum_bounds(p, *base_momentum, *max_momentum)?;
                }
                Box::new(
                    OneCycleLr::with_options(
                        *max_lr,
                        total,
                        *pct_start,
                        anneal,
                        *div_factor,
                        *final_div_factor,
                        *three_phase,
                    )
                    .with_cycle_momentum(*cycle_momentum)
                    .with_momentum(*base_momentum, *max_momentum),
                )
            }
            Self::ReduceLrOnPlateau {
                mode,
                factor,
                patience,
                threshold,
                threshold_mode,
                cooldown,
                min_lr,
                eps,
            } => {
                let mode = match mode.as_str() {
                    "min" => PlateauMode::Min,
                    "max" => PlateauMode::Max,
                    other => {
                        return Err(SchedulerConfigError::Invalid {
                            policy: p,
                            field: "mode",
                            value: other.to_string(),
                            expected: "min or max",
                        });
                    }
                };
                let threshold_mode = match threshold_mode.as_str() {
                    "rel" => ThresholdMode::Rel,
                    "abs" => ThresholdMode::Abs,
                    other => {
                        return Err(SchedulerConfigError::Invalid {
                            policy: p,
                            field: "threshold_mode",
                            value: other.to_string(),
                            expected: "rel or abs",
                        });
                    }
                };
                check(
                    *factor > 0.0 && *factor < 1.0,
                    p,
                    "factor",
                    factor,
                    "must be in (0, 1)",
                )?;
                non_negative(p, "threshold", *threshold)?;
                non_negative(p, "min_lr", *min_lr)?;
                non_negative(p, "eps", *eps)?;
                Box::new(
                    ReduceLrOnPlateau::new(mode)
                        .with_factor(*factor)
                        .with_patience(*patience)
                        .with_threshold(*threshold, threshold_mode)
                        .with_cooldown(*cooldown)
                        .with_min_lr(*min_lr)
                        .with_eps(*eps),
                )
            }
            Self::SequentialLr {
                schedulers,
                milestones,
            } => {
                check(
                    !schedulers.is_empty() && milestones.len() + 1 == schedulers.len(),
                    p,
                    "milestones",
                    format!("{milestones:?}"),
                    "needs exactly one milestone fewer than schedulers",
                )?;
                check(
                    milestones.windows(2).all(|w| w[0] < w[1]),
                    p,
                    "milestones",
                    format!("{milestones:?}"),
                    "must be strictly increasing",
                )?;
                let policies = schedulers
                    .iter()
                    .map(SchedulerConfig::policy)
                    .collect::<Res<Vec<_>>>()?;
                Box::new(SequentialLr::new(policies, milestones.clone())?)
            }
            Self::ChainedScheduler { schedulers } => {
                check(
                    !schedulers.is_empty(),
                    p,
                    "schedulers",
                    "[]",
                    "needs at least one scheduler",
                )?;
                let policies = schedulers
                    .iter()
                    .map(SchedulerConfig::policy)
                    .collect::<Res<Vec<_>>>()?;
                Box::new(ChainedScheduler::new(policies)?)
            }
        })
    }

    /// Builds a [`Scheduler`] for an optimizer whose base rate is `base_lr`.
    pub fn build(&self, base_lr: f64) -> Res<Scheduler> {
        Ok(Scheduler::from_boxed(self.policy()?, base_lr))
    }
}
