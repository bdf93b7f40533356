//! Cross-entropy over dense `[N, C, ...]` logits, as PyTorch's `F.cross_entropy` with class
//! weights, label smoothing and `ignore_index` (Burn's own takes `[N, C]` only).

use crate::fused::log_softmax;
use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::loss::{
    LossTarget, cast_to, check_range, check_weights, constant, impl_loss, mask_to, or_panic,
};
use crate::segmentation::{Mode, checked, one_hot, to_ncs};
use crate::{LossError, Reduction};

/// Configuration of a [`CrossEntropyLoss`]; `torch.nn.CrossEntropyLoss`'s arguments and
/// defaults.
#[derive(Config, Debug)]
pub struct CrossEntropyLossConfig {
    /// Weight of each class (length `C`).
    pub weight: Option<Vec<f64>>,
    /// Target value whose elements do not count.
    #[config(default = -100)]
    pub ignore_index: i64,
    /// How element losses are combined; the mean divides by the summed weights of the kept
    /// targets, as PyTorch does.
    #[config(default = "Reduction::Mean")]
    pub reduction: Reduction,
    /// Mass `ε` spread uniformly over the classes: the target becomes `(1 − ε)·y + ε/C`.
    #[config(default = 0.0)]
    pub label_smoothing: f64,
}

impl CrossEntropyLossConfig {
    /// Initializes a [`CrossEntropyLoss`]; panics on an invalid option.
    pub fn init(&self, device: &Device) -> CrossEntropyLoss {
        or_panic(self.try_init(device))
    }

    /// Initializes a [`CrossEntropyLoss`], or names the invalid option.
    pub fn try_init(&self, device: &Device) -> Result<CrossEntropyLoss, LossError> {
        self.check()?;
        Ok(CrossEntropyLoss {
            weight: self.weight.as_deref().map(|w| constant(w, device)),
            ignore_index: self.ignore_index,
            label_smoothing: self.label_smoothing,
            reduction: self.reduction,
        })
    }

    /// Checks every option without touching a device.
    pub fn check(&self) -> Result<(), LossError> {
        check_range(
            "cross_entropy",
            "label_smoothing",
            self.label_smoothing,
            0.0,
            1.0,
        )?;
        check_weights("cross_entropy", "weight", self.weight.as_deref(), false)
    }
}

/// Cross-entropy of `[N, C, ...]` logits against class indices, equal to PyTorch 2.9's
/// `F.cross_entropy(x, y, weight, ignore_index, reduction, label_smoothing)` in value and
/// gradient.
///
/// ```text
/// ℓ_i  = (1 − ε)·w_{y_i}·(−ln p_{i,y_i}) + ε/C · Σ_c w_c·(−ln p_{i,c})    for y_i ≠ ignore_index
/// mean = Σ_i ℓ_i / Σ_i w_{y_i}                                          (kept i only)
/// ```
///
/// With every target ignored the mean is 0/0 = NaN, as in PyTorch.
///
/// # Shapes
/// - input: `[N, C]` or `[N, C, d1, ...]` logits
/// - target: `[N]` or `[N, d1, ...]` class indices (integer or float tensor)
/// - output: `[1]`, or `N × d1 × ...` elements with [`Reduction::None`]
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use kindling_losses::CrossEntropyLossConfig;
///
/// let device = Device::default();
/// let ce = CrossEntropyLossConfig::new().with_label_smoothing(0.1).with_ignore_index(255).init(&device);
/// let logits = Tensor::<4>::zeros([2, 4, 8, 8], &device);
/// let labels = Tensor::<3, Int>::zeros([2, 8, 8], &device);
/// let loss = ce.forward(logits, labels).into_scalar::<f32>();
/// assert!((loss - 4f32.ln()).abs() < 1e-5);
/// ```
#[derive(Module, Debug)]
pub struct CrossEntropyLoss {
    weight: Option<Tensor<1>>,
    ignore_index: i64,
    label_smoothing: f64,
    #[module(skip)]
    reduction: Reduction,
}

impl CrossEntropyLoss {
    /// The loss, or why the inputs do not fit it.
    pub fn try_forward<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        let (input, target) = checked(
            "cross_entropy",
            Mode::Multiclass,
            input,
            target,
            Some(self.ignore_index),
        )?;
        let c = input.dims()[1];
        let dtype = input.dtype();
        let weight = match &self.weight {
            Some(w) if w.dims()[0] != c => {
                return Err(LossError::Shape {
                    loss: "cross_entropy",
                    what: "length of `weight`".into(),
                    expected: format!("{c} (the input's classes, dim 1)"),
                    actual: w.dims()[0].to_string(),
                });
            }
            Some(w) => Some(cast_to(w.clone(), dtype).reshape([1, c, 1])),
            None => None,
        };
        let x = to_ncs(input, c);
        let [n, _, s] = x.dims();
        let ids = target.reshape([n, 1, s]);
        let ignore = self.ignore_index as f64;
        if let Some(loss) = crate::fused::softmax_nll(
            &x,
            &ids,
            self.weight.as_ref(),
            self.label_smoothing,
            Some(ignore),
            None,
        ) {
            return Ok(match self.reduction {
                Reduction::Mean => {
                    let valid = mask_to(ids.clone().not_equal_elem(ignore), dtype);
                    let denom = match &weight {
                        // Σ of the kept pixels' class weights.
                        Some(w) => {
                            let idx = ids.int().clamp(0, c as i64 - 1).flatten::<1>(0, 2);
                            (cast_to(w.clone(), dtype).reshape([c]).select(0, idx)
                                * valid.flatten::<1>(0, 2))
                            .sum()
                        }
                        None => valid.sum(),
                    };
                    loss.sum() / denom
                }
                other => other.apply(loss.reshape([n, s])),
            });
        }
        let logp = log_softmax(x);
        let valid = mask_to(ids.clone().not_equal_elem(self.ignore_index as f64), dtype);
        // One-hot of the kept targets (an ignore_index inside [0, C) must not select a class).
        let hot = one_hot(ids, c) * valid.clone();
        let eps = self.label_smoothing;
        let (hot_w, logp_w) = match &weight {
            Some(w) => (hot * w.clone(), logp.clone() * w.clone()),
            None => (hot, logp.clone()),
        };
        let nll = (logp * hot_w.clone()).sum_dim(1).neg();
        let mut loss = nll.mul_scalar(1.0 - eps);
        if eps > 0.0 {
            let smooth = logp_w.sum_dim(1).neg() * valid.clone();
            loss = loss + smooth.mul_scalar(eps / c as f64);
        }
        Ok(match self.reduction {
            Reduction::Mean => {
                let denom = match weight {
                    Some(_) => hot_w.sum(),
                    None => valid.sum(),
                };
                loss.sum() / denom
            }
            other => other.apply(loss),
        })
    }
}

impl_loss!(CrossEntropyLoss);
