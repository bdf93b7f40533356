//! torchvision's `sigmoid_focal_loss`, the RetinaNet loss for dense detection heads.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use crate::loss::{LossTarget, check_shape, impl_loss, or_panic, upcast};
use crate::soft_bce::bce_with_logits;
use crate::{LossError, Reduction};

/// Configuration of a [`SigmoidFocalLoss`]; torchvision's arguments and defaults (note the
/// default reduction is `none`, as in torchvision).
#[derive(Config, Debug)]
pub struct SigmoidFocalLossConfig {
    /// Weight of positives in `[0, 1]`, or a negative value for no weighting (torchvision
    /// accepts −1).
    #[config(default = 0.25)]
    pub alpha: f64,
    /// Focusing exponent.
    #[config(default = 2.0)]
    pub gamma: f64,
    /// How element losses are combined.
    #[config(default = "Reduction::None")]
    pub reduction: Reduction,
}

impl SigmoidFocalLossConfig {
    /// Initializes a [`SigmoidFocalLoss`]; panics on an invalid option.
    pub fn init(&self, device: &Device) -> SigmoidFocalLoss {
        or_panic(self.try_init(device))
    }

    /// Initializes a [`SigmoidFocalLoss`], or names the invalid option.
    pub fn try_init(&self, _device: &Device) -> Result<SigmoidFocalLoss, LossError> {
        self.check()?;
        Ok(SigmoidFocalLoss {
            options: self.clone(),
        })
    }

    /// Checks every option without touching a device.
    pub fn check(&self) -> Result<(), LossError> {
        if !((0.0..=1.0).contains(&self.alpha) || self.alpha == -1.0) {
            return Err(LossError::Invalid {
                loss: "sigmoid_focal",
                field: "alpha",
                value: self.alpha.to_string(),
                expected: "expected a value in [0, 1], or -1 for no weighting".into(),
            });
        }
        crate::loss::check_range("sigmoid_focal", "gamma", self.gamma, 0.0, f64::INFINITY)
    }
}

/// Sigmoid focal loss of any-shaped logits against 0/1 (or soft) targets, equal to
/// torchvision 0.24's `ops.sigmoid_focal_loss`.
///
/// ```text
/// p   = σ(x),   ce = BCEWithLogits(x, t)
/// p_t = p·t + (1 − p)·(1 − t)
/// ℓ   = (α·t + (1 − α)·(1 − t)) · (1 − p_t)^γ · ce        (α term only when α ≥ 0)
/// ```
///
/// # Shapes
/// - input: any shape
/// - target: the input's shape
/// - output: every element with [`Reduction::None`] (flattened), else `[1]`
///
/// Reference: <https://arxiv.org/abs/1708.02002>,
/// <https://github.com/pytorch/vision/blob/main/torchvision/ops/focal_loss.py>.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use kindling_losses::{Reduction, SigmoidFocalLossConfig};
///
/// let device = Device::default();
/// let loss = SigmoidFocalLossConfig::new().with_reduction(Reduction::Sum).init(&device);
/// let logits = Tensor::<2>::from_floats([[3.0, -2.0], [0.0, 1.0]], &device);
/// let targets = Tensor::<2>::from_floats([[1.0, 0.0], [1.0, 0.0]], &device);
/// assert!(loss.forward(logits, targets).into_scalar::<f32>() > 0.0);
/// ```
#[derive(Module, Debug)]
pub struct SigmoidFocalLoss {
    #[module(skip)]
    options: SigmoidFocalLossConfig,
}

impl SigmoidFocalLoss {
    /// The loss, or why the inputs do not fit it.
    pub fn try_forward<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        let o = &self.options;
        let input = upcast(input);
        let target = target.into_float(input.dtype());
        check_shape(
            "sigmoid_focal",
            "target shape",
            &input.dims(),
            &target.dims(),
        )?;
        let t: Tensor<D> = target.reshape(input.dims());
        let alpha = (o.alpha >= 0.0).then_some(o.alpha);
        if let Some(loss) =
            crate::fused::bce_with_logits(&input, &t, None, None, Some((o.gamma, alpha, false)))
        {
            return Ok(o.reduction.apply(loss));
        }
        let p = sigmoid(input.clone());
        let ce = bce_with_logits(input, t.clone(), None);
        let p_t = p.clone() * t.clone() + p.neg().add_scalar(1.0) * t.clone().neg().add_scalar(1.0);
        let mut loss = ce * p_t.neg().add_scalar(1.0).powf_scalar(o.gamma);
        if o.alpha >= 0.0 {
            loss = (t.clone().mul_scalar(o.alpha)
                + t.neg().add_scalar(1.0).mul_scalar(1.0 - o.alpha))
                * loss;
        }
        Ok(o.reduction.apply(loss))
    }
}

impl_loss!(SigmoidFocalLoss);
