//! Focal loss, as segmentation_models_pytorch's `FocalLoss` (sigmoid per class) and its
//! `softmax_focal_loss_with_logits`.

use crate::fused::log_softmax;
use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::loss::{
    LossTarget, cast_to, check_range, check_weights, constant, impl_loss, mask_to, or_panic, upcast,
};
use crate::segmentation::{Mode, checked, one_hot, to_ncs};
use crate::soft_bce::bce_with_logits;
use crate::{LossError, Reduction};

/// The focal modulation of element cross-entropies `ce` (smp's `focal_loss_with_logits`):
/// returns `(focal_term, focal_term·ce)`.
fn modulate<const D: usize>(
    ce: Tensor<D>,
    gamma: f64,
    reduced_threshold: Option<f64>,
) -> (Tensor<D>, Tensor<D>) {
    let pt = ce.clone().neg().exp();
    let one_minus = pt.clone().neg().add_scalar(1.0);
    let term = match reduced_threshold {
        None => one_minus.powf_scalar(gamma),
        Some(rt) => one_minus
            .div_scalar(rt)
            .powf_scalar(gamma)
            .mask_fill(pt.lower_elem(rt), 1.0),
    };
    (term.clone(), term * ce)
}

fn check_focal(
    loss: &'static str,
    gamma: f64,
    reduced_threshold: Option<f64>,
) -> Result<(), LossError> {
    check_range(loss, "gamma", gamma, 0.0, f64::INFINITY)?;
    if let Some(rt) = reduced_threshold
        && !(rt > 0.0 && rt <= 1.0)
    {
        return Err(LossError::Invalid {
            loss,
            field: "reduced_threshold",
            value: rt.to_string(),
            expected: "expected a value in (0, 1]".into(),
        });
    }
    Ok(())
}

/// Configuration of a [`FocalLoss`]; the options and defaults of smp's `FocalLoss`.
#[derive(Config, Debug)]
pub struct FocalLossConfig {
    /// How the target is read: binary, multiclass (one-vs-rest sigmoid per class, as in smp)
    /// or multilabel.
    pub mode: Mode,
    /// Weight of positives, `α·t + (1 − α)·(1 − t)`; none by default.
    pub alpha: Option<f64>,
    /// Focusing exponent: `(1 − p_t)^γ`.
    #[config(default = 2.0)]
    pub gamma: f64,
    /// Target value whose elements do not count.
    pub ignore_index: Option<i64>,
    /// Whether the input holds logits; probabilities are clamped to `[eps, 1 − eps]` and
    /// turned into logits (multiclass: `ln p`, as smp does).
    #[config(default = true)]
    pub from_logits: bool,
    /// Clamp for probability inputs.
    #[config(default = 1e-7)]
    pub eps: f64,
    /// Per class: mean, sum or every element; classes are then averaged (as smp).
    #[config(default = "Reduction::Mean")]
    pub reduction: Reduction,
    /// Divide by the sum of the focal terms (Normalized Focal Loss).
    #[config(default = false)]
    pub normalized: bool,
    /// Reduced Focal Loss: modulation only below this `p_t`.
    pub reduced_threshold: Option<f64>,
    /// Per-class weights of the class losses (not in binary mode).
    pub class_weights: Option<Vec<f64>>,
}

impl FocalLossConfig {
    /// Initializes a [`FocalLoss`]; panics on an invalid option.
    pub fn init(&self, device: &Device) -> FocalLoss {
        or_panic(self.try_init(device))
    }

    /// Initializes a [`FocalLoss`], or names the invalid option.
    pub fn try_init(&self, device: &Device) -> Result<FocalLoss, LossError> {
        self.check()?;
        Ok(FocalLoss {
            class_weights: self.class_weights.as_deref().map(|w| constant(w, device)),
            options: self.clone(),
        })
    }

    /// Checks every option without touching a device.
    pub fn check(&self) -> Result<(), LossError> {
        check_focal("focal", self.gamma, self.reduced_threshold)?;
        if let Some(alpha) = self.alpha {
            check_range("focal", "alpha", alpha, 0.0, 1.0)?;
        }
        check_range("focal", "eps", self.eps, 0.0, 0.5)?;
        if let Some(w) = &self.class_weights
            && self.mode == Mode::Binary
        {
            return Err(LossError::Invalid {
                loss: "focal",
                field: "class_weights",
                value: format!("{w:?}"),
                expected: "not supported with mode = binary (as in smp)".into(),
            });
        }
        check_weights(
            "focal",
            "class_weights",
            self.class_weights.as_deref(),
            true,
        )
    }
}

/// Focal loss (Lin et al. 2017) for segmentation and classification, equal to smp 0.6's
/// `FocalLoss` in value and gradient.
///
/// Per element, with `ce` the binary cross-entropy of the logit against its 0/1 target
/// (one-vs-rest per class in multiclass mode):
///
/// ```text
/// p_t = exp(−ce)
/// ℓ   = (1 − p_t)^γ · ce · (α·t + (1 − α)·(1 − t))
/// ```
///
/// `reduced_threshold` keeps the modulation only where `p_t` is below it (and divides by
/// it); `normalized` divides by the sum of `(1 − p_t)^γ`. Each class is reduced over the batch
/// and pixels, then classes are averaged (or weighted by `class_weights`). Ignored elements
/// do not count: the mean divides by the kept elements, and [`Reduction::None`] returns them
/// as zeros (smp drops them).
///
/// # Shapes
/// - input: `[N, C, ...]` logits — `[N, C]` for classification
/// - target: see [`Mode`]
/// - output: `[1]`, or every element with [`Reduction::None`] in binary mode (smp reduces
///   `none` to the mean in the other modes)
///
/// Reference: <https://arxiv.org/abs/1708.02002>; smp's
/// <https://github.com/qubvel-org/segmentation_models.pytorch/blob/main/segmentation_models_pytorch/losses/focal.py>.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use kindling_losses::{FocalLossConfig, Mode};
///
/// let device = Device::default();
/// let focal = FocalLossConfig::new(Mode::Multiclass).with_gamma(2.0).init(&device);
/// let logits = Tensor::<2>::from_floats([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]], &device);
/// let labels = Tensor::<1, Int>::from_ints([0, 2], &device);
/// assert!(focal.forward(logits, labels).into_scalar::<f32>() > 0.0);
/// ```
#[derive(Module, Debug)]
pub struct FocalLoss {
    class_weights: Option<Tensor<1>>,
    #[module(skip)]
    options: FocalLossConfig,
}

impl FocalLoss {
    /// The loss, or why the inputs do not fit it.
    pub fn try_forward<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        let o = &self.options;
        let (input, target) = checked("focal", o.mode, input, target, o.ignore_index)?;
        let channels = input.dims()[1];
        if let Some(w) = &o.class_weights
            && w.len() != channels
        {
            return Err(LossError::Shape {
                loss: "focal",
                what: "length of `class_weights`".into(),
                expected: format!("{channels} (the input's classes, dim 1)"),
                actual: w.len().to_string(),
            });
        }
        let dtype = input.dtype();
        let logits = if o.from_logits {
            input
        } else {
            let p = input.clamp(o.eps, 1.0 - o.eps);
            match o.mode {
                Mode::Multiclass => p.log(),
                _ => (p.clone() / p.neg().add_scalar(1.0)).log(),
            }
        };
        let logits = to_ncs(logits, channels);
        let [n, c, s] = logits.dims();
        // Targets as 0/1 per class, and where they count.
        let (truth, valid) = match o.mode {
            Mode::Multiclass => {
                let ids = target.reshape([n, 1, s]);
                let valid = o
                    .ignore_index
                    .map(|i| mask_to(ids.clone().not_equal_elem(i as f64), dtype));
                (one_hot(ids, c), valid)
            }
            _ => {
                let t = target.reshape([n, c, s]);
                match o.ignore_index {
                    // Ignored targets become 0 before the formula, so a 255 cannot overflow
                    // `exp` in masked-out elements.
                    Some(i) => {
                        let valid = mask_to(t.clone().not_equal_elem(i as f64), dtype);
                        (t * valid.clone(), Some(valid))
                    }
                    None => (t, None),
                }
            }
        };
        // The fused kernel computes α_t·ce·(1 − e^{−ce})^γ in one pass (the focal term itself is
        // not returned, so not for the normalized or reduced variants).
        let fused = (!o.normalized && o.reduced_threshold.is_none())
            .then(|| {
                crate::fused::bce_with_logits(
                    &logits,
                    &truth,
                    None,
                    None,
                    Some((o.gamma, o.alpha, true)),
                )
            })
            .flatten();
        let (term, loss) = match fused {
            Some(loss) => (None, loss),
            None => {
                let ce = bce_with_logits(logits, truth.clone(), None);
                let (term, mut loss) = modulate(ce, o.gamma, o.reduced_threshold);
                if let Some(alpha) = o.alpha {
                    loss = loss
                        * (truth.clone().mul_scalar(alpha)
                            + truth.neg().add_scalar(1.0).mul_scalar(1.0 - alpha));
                }
                (Some(term), loss)
            }
        };
        let per_class = |t: Tensor<3>| t.sum_dim(2).sum_dim(0).reshape([c]);
        let (mut loss, term) = match &valid {
            Some(v) => (loss * v.clone(), term.map(|t| t * v.clone())),
            None => (loss, term),
        };
        if o.normalized
            && let Some(term) = term
        {
            let norm = per_class(term).clamp_min(1e-6).reshape([1, c, 1]);
            loss = loss / norm;
        }
        let class_losses = match o.reduction {
            Reduction::None if o.mode == Mode::Binary => return Ok(loss.flatten(0, 2)),
            Reduction::Sum => per_class(loss),
            // smp averages the stacked per-class element losses, so `none` in multiclass and
            // multilabel mode is the mean.
            Reduction::Mean | Reduction::None => match valid {
                Some(v) => per_class(loss) / per_class(v.expand([n, c, s])),
                None => per_class(loss).div_scalar((n * s) as f64),
            },
        };
        Ok(match &self.class_weights {
            Some(w) => {
                let w = cast_to(w.clone(), dtype);
                (class_losses * w.clone()).sum() / w.sum()
            }
            None => class_losses.mean(),
        })
    }
}

impl_loss!(FocalLoss);

/// Configuration of a [`SoftmaxFocalLoss`]; smp's `softmax_focal_loss_with_logits` options.
#[derive(Config, Debug)]
pub struct SoftmaxFocalLossConfig {
    /// Focusing exponent.
    #[config(default = 2.0)]
    pub gamma: f64,
    /// How element losses are combined.
    #[config(default = "Reduction::Mean")]
    pub reduction: Reduction,
    /// Divide by the sum of the focal terms.
    #[config(default = false)]
    pub normalized: bool,
    /// Reduced Focal Loss threshold.
    pub reduced_threshold: Option<f64>,
}

impl SoftmaxFocalLossConfig {
    /// Initializes a [`SoftmaxFocalLoss`]; panics on an invalid option.
    pub fn init(&self, device: &Device) -> SoftmaxFocalLoss {
        or_panic(self.try_init(device))
    }

    /// Initializes a [`SoftmaxFocalLoss`], or names the invalid option.
    pub fn try_init(&self, _device: &Device) -> Result<SoftmaxFocalLoss, LossError> {
        self.check()?;
        Ok(SoftmaxFocalLoss {
            options: self.clone(),
        })
    }

    /// Checks every option without touching a device.
    pub fn check(&self) -> Result<(), LossError> {
        check_focal("softmax_focal", self.gamma, self.reduced_threshold)
    }
}

/// Softmax focal loss for mutually exclusive classes, equal to smp 0.6's
/// `softmax_focal_loss_with_logits`: the focal modulation of cross-entropy,
/// `(1 − p_y)^γ · (−ln p_y)` with `p = softmax(x)` over dim 1.
///
/// # Shapes
/// - input: `[N, C, ...]` logits
/// - target: `[N, ...]` class indices
/// - output: `[1]`, or `N × ...` elements with [`Reduction::None`]
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use kindling_losses::SoftmaxFocalLossConfig;
///
/// let device = Device::default();
/// let focal = SoftmaxFocalLossConfig::new().init(&device);
/// let logits = Tensor::<2>::from_floats([[2.0, -1.0, 0.5]], &device);
/// let labels = Tensor::<1, Int>::from_ints([0], &device);
/// assert!(focal.forward(logits, labels).into_scalar::<f32>() > 0.0);
/// ```
#[derive(Module, Debug)]
pub struct SoftmaxFocalLoss {
    #[module(skip)]
    options: SoftmaxFocalLossConfig,
}

impl SoftmaxFocalLoss {
    /// The loss, or why the inputs do not fit it.
    pub fn try_forward<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        let o = &self.options;
        let (input, target) = checked("softmax_focal", Mode::Multiclass, input, target, None)?;
        let c = input.dims()[1];
        let x = to_ncs(upcast(input), c);
        let [n, _, s] = x.dims();
        let ids = target.reshape([n, 1, s]);
        // The fused kernel modulates in the same pass (not the reduced or normalized variants,
        // which need the focal term itself).
        if o.reduced_threshold.is_none()
            && !o.normalized
            && let Some(loss) = crate::fused::softmax_nll(&x, &ids, None, 0.0, None, Some(o.gamma))
        {
            return Ok(o.reduction.apply(loss));
        }
        let nll = match crate::fused::softmax_nll(&x, &ids, None, 0.0, None, None) {
            Some(nll) => nll,
            None => (log_softmax(x) * one_hot(ids, c)).sum_dim(1).neg(),
        };
        let (term, loss) = modulate(nll, o.gamma, o.reduced_threshold);
        let loss = if o.normalized {
            loss / term.sum().clamp_min(1e-6).reshape([1, 1, 1])
        } else {
            loss
        };
        Ok(o.reduction.apply(loss))
    }
}

impl_loss!(SoftmaxFocalLoss);

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Int, Tensor};

    use crate::{FocalLossConfig, LossError, Mode, SoftmaxFocalLossConfig};

    #[test]
    fn negative_alpha_and_gamma_are_refused() {
        let device = Device::default();
        let err = FocalLossConfig::new(Mode::Binary)
            .with_gamma(-2.0)
            .try_init(&device)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "focal: `gamma` = -2 is invalid: expected a value ≥ 0"
        );
        let err = FocalLossConfig::new(Mode::Binary)
            .with_alpha(Some(-0.5))
            .try_init(&device)
            .unwrap_err();
        assert!(
            matches!(err, LossError::Invalid { field: "alpha", .. }),
            "{err}"
        );
        assert!(
            SoftmaxFocalLossConfig::new()
                .with_reduced_threshold(Some(0.0))
                .try_init(&device)
                .is_err()
        );
    }

    #[test]
    fn gamma_zero_is_binary_cross_entropy() {
        let device = Device::default();
        let focal = FocalLossConfig::new(Mode::Binary)
            .with_gamma(0.0)
            .init(&device);
        let x = Tensor::<2>::from_floats([[0.3], [-1.2]], &device);
        let t = Tensor::<2>::from_floats([[1.0], [0.0]], &device);
        let got = focal.forward(x, t).into_scalar::<f32>();
        let expected = ((1.0 + (-0.3f32).exp()).ln() + (1.0 + (-1.2f32).exp()).ln()) / 2.0;
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    #[test]
    fn classification_logits_take_class_indices() {
        let device = Device::default();
        let focal = FocalLossConfig::new(Mode::Multiclass).init(&device);
        let x = Tensor::<2>::from_floats([[2.0, -1.0, 0.5]], &device);
        let err = focal
            .try_forward(x, Tensor::<1, Int>::from_ints([3], &device))
            .unwrap_err();
        assert!(
            err.to_string().contains("out of range for 3 classes"),
            "{err}"
        );
    }
}
