//! Binary cross-entropy with logits for soft targets, as segmentation_models_pytorch's
//! `SoftBCEWithLogitsLoss`; also the element formula the focal losses build on.

use crate::fused::log_sigmoid;
use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::loss::{
    LossTarget, cast_to, check_range, check_shape, check_weights, constant, impl_loss, mask_to,
    or_panic, upcast,
};
use crate::{LossError, Reduction};

/// PyTorch's `binary_cross_entropy_with_logits(x, t, reduction="none")`:
/// `(1 − t)·x − w·log σ(x)`, with `w = 1 + (pos_weight − 1)·t` (1 without `pos_weight`).
/// Stable for any logit, through `log σ`.
pub(crate) fn bce_with_logits<const D: usize>(
    input: Tensor<D>,
    target: Tensor<D>,
    pos_weight: Option<Tensor<D>>,
) -> Tensor<D> {
    let log_sig = log_sigmoid(input.clone());
    let log_sig = match pos_weight {
        Some(pw) => log_sig * (pw.sub_scalar(1.0) * target.clone()).add_scalar(1.0),
        None => log_sig,
    };
    target.neg().add_scalar(1.0) * input - log_sig
}

/// Configuration of a [`SoftBceWithLogitsLoss`]; smp's `SoftBCEWithLogitsLoss` options.
#[derive(Config, Debug)]
pub struct SoftBceWithLogitsLossConfig {
    /// Target value whose elements do not count (their loss is zeroed; the mean still divides
    /// by every element, as in smp).
    #[config(default = "Some(-100)")]
    pub ignore_index: Option<i64>,
    /// How element losses are combined.
    #[config(default = "Reduction::Mean")]
    pub reduction: Reduction,
    /// Label smoothing: targets become `t·(1 − f) + (1 − t)·f`.
    pub smooth_factor: Option<f64>,
    /// Weight of positive examples, one per channel (dim 1), as `pos_weight` of shape
    /// `[C, 1, 1]` in PyTorch.
    pub pos_weight: Option<Vec<f64>>,
    /// Weight of every element, one per channel (dim 1).
    pub weight: Option<Vec<f64>>,
}

impl SoftBceWithLogitsLossConfig {
    /// Initializes a [`SoftBceWithLogitsLoss`]; panics on an invalid option.
    pub fn init(&self, device: &Device) -> SoftBceWithLogitsLoss {
        or_panic(self.try_init(device))
    }

    /// Initializes a [`SoftBceWithLogitsLoss`], or names the invalid option.
    pub fn try_init(&self, device: &Device) -> Result<SoftBceWithLogitsLoss, LossError> {
        self.check()?;
        Ok(SoftBceWithLogitsLoss {
            pos_weight: self.pos_weight.as_deref().map(|w| constant(w, device)),
            weight: self.weight.as_deref().map(|w| constant(w, device)),
            ignore_index: self.ignore_index,
            smooth_factor: self.smooth_factor,
            reduction: self.reduction,
        })
    }

    /// Checks every option without touching a device.
    pub fn check(&self) -> Result<(), LossError> {
        if let Some(f) = self.smooth_factor {
            check_range("soft_bce", "smooth_factor", f, 0.0, 1.0)?;
        }
        check_weights("soft_bce", "pos_weight", self.pos_weight.as_deref(), false)?;
        check_weights("soft_bce", "weight", self.weight.as_deref(), false)
    }
}

/// Binary cross-entropy on logits with soft targets, label smoothing, per-channel
/// `pos_weight` and `ignore_index`; equal to smp 0.6's `SoftBCEWithLogitsLoss`.
///
/// ```text
/// t' = t·(1 − f) + (1 − t)·f                      (smooth_factor f)
/// ℓ  = w · [(1 − t')·x − (1 + (pos_weight − 1)·t')·log σ(x)] · [t ≠ ignore_index]
/// ```
///
/// # Shapes
/// - input: `[N, C, ...]` logits (any rank ≥ 1 without per-channel weights)
/// - target: same shape, values in `[0, 1]` (or `ignore_index`)
/// - output: `[1]`, or every element with [`Reduction::None`]
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use kindling_losses::SoftBceWithLogitsLossConfig;
///
/// let device = Device::default();
/// let bce = SoftBceWithLogitsLossConfig::new().with_smooth_factor(Some(0.1)).init(&device);
/// let logits = Tensor::<2>::from_floats([[0.0, 3.0]], &device);
/// let target = Tensor::<2>::from_floats([[1.0, 0.5]], &device);
/// assert!(bce.forward(logits, target).into_scalar::<f32>() > 0.0);
/// ```
#[derive(Module, Debug)]
pub struct SoftBceWithLogitsLoss {
    pos_weight: Option<Tensor<1>>,
    weight: Option<Tensor<1>>,
    ignore_index: Option<i64>,
    smooth_factor: Option<f64>,
    #[module(skip)]
    reduction: Reduction,
}

/// A per-channel vector as `[1, C, 1, …]`, checked against the input's dim 1.
pub(crate) fn per_channel<const D: usize>(
    loss: &'static str,
    field: &str,
    values: &Tensor<1>,
    dims: &[usize; D],
    dtype: burn::tensor::DType,
) -> Result<Tensor<D>, LossError> {
    let c = values.dims()[0];
    if D < 2 || dims[1] != c {
        return Err(LossError::Shape {
            loss,
            what: format!("length of `{field}` (one per channel, input dim 1)"),
            expected: if D < 2 {
                "an input of rank ≥ 2".into()
            } else {
                dims[1].to_string()
            },
            actual: c.to_string(),
        });
    }
    let mut shape = [1usize; D];
    shape[1] = c;
    Ok(cast_to(values.clone(), dtype).reshape(shape))
}

impl SoftBceWithLogitsLoss {
    /// The loss, or why the inputs do not fit it.
    pub fn try_forward<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        let input = upcast(input);
        let dtype = input.dtype();
        let target = target.into_float(dtype);
        let dims = input.dims();
        check_shape("soft_bce", "target shape", &dims, &target.dims())?;
        let target: Tensor<D> = target.reshape(dims);
        let pos_weight = match &self.pos_weight {
            Some(w) => Some(per_channel("soft_bce", "pos_weight", w, &dims, dtype)?),
            None => None,
        };
        let weight = match &self.weight {
            Some(w) => Some(per_channel("soft_bce", "weight", w, &dims, dtype)?),
            None => None,
        };
        let ignore = self.ignore_index.map(|i| i as f64);
        if pos_weight.is_none()
            && let Some(loss) =
                crate::fused::bce_with_logits(&input, &target, self.smooth_factor, ignore, None)
        {
            let loss = match weight {
                Some(w) => loss * w,
                None => loss,
            };
            return Ok(self.reduction.apply(loss));
        }
        let soft = match self.smooth_factor {
            Some(f) => {
                target.clone().mul_scalar(1.0 - f)
                    + target.clone().neg().add_scalar(1.0).mul_scalar(f)
            }
            None => target.clone(),
        };
        let mut loss = bce_with_logits(input, soft, pos_weight);
        if let Some(w) = weight {
            loss = loss * w;
        }
        if let Some(ignore) = self.ignore_index {
            loss = loss * mask_to(target.not_equal_elem(ignore as f64), dtype);
        }
        Ok(self.reduction.apply(loss))
    }
}

impl_loss!(SoftBceWithLogitsLoss);
