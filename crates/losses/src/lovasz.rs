//! Lovász hinge (binary, multilabel) and Lovász-softmax (multiclass) losses, as
//! segmentation_models_pytorch's `LovaszLoss` (Berman et al. 2018).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Device, Tensor};

use crate::LossError;
use crate::loss::{LossTarget, impl_loss, mask_to};
use crate::segmentation::{Mode, checked, one_hot, to_ncs};

/// Configuration of a [`LovaszLoss`]; smp's `LovaszLoss` options.
#[derive(Config, Debug)]
pub struct LovaszLossConfig {
    /// binary and multilabel: Lovász hinge on logits; multiclass: Lovász-softmax.
    pub mode: Mode,
    /// Compute the loss per image and average, instead of over the whole batch.
    #[config(default = false)]
    pub per_image: bool,
    /// Target value whose pixels do not count.
    pub ignore_index: Option<i64>,
}

impl LovaszLossConfig {
    /// Initializes a [`LovaszLoss`].
    pub fn init(&self, _device: &Device) -> LovaszLoss {
        LovaszLoss {
            options: self.clone(),
        }
    }

    /// Initializes a [`LovaszLoss`] (every option combination is valid).
    pub fn try_init(&self, device: &Device) -> Result<LovaszLoss, LossError> {
        Ok(self.init(device))
    }

    /// Checks every option (all combinations are valid).
    pub fn check(&self) -> Result<(), LossError> {
        Ok(())
    }
}

/// Lovász loss, the convex surrogate of the Jaccard index, equal to smp 0.6's `LovaszLoss`
/// in value and gradient.
///
/// Per group (the batch, or each image with `per_image`), errors sorted in decreasing order
/// are weighted by the gradient of the Lovász extension of the Jaccard loss:
///
/// ```text
/// hinge:   e_i = 1 − x_i·(2·t_i − 1),      loss = Σ_i relu(e_(i)) · g_i
/// softmax: e_i = |[y_i = c] − p_{i,c}|,    loss = mean over present classes c of Σ_i e_(i) · g_i
/// g = Δ(1 − (Σt − cumsum t) / (Σt + cumsum(1 − t)))   over the sorted targets
/// ```
///
/// Ignored pixels are dropped; a group with no pixel left contributes 0, and only classes
/// present in the group's target count in Lovász-softmax (smp's `classes="present"`).
///
/// # Shapes
/// - input: `[N, C, ...]` logits (`C = 1` in binary mode)
/// - target: see [`Mode`]
/// - output: `[1]`
///
/// Reference: <https://arxiv.org/abs/1705.08790>.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use kindling_losses::{LovaszLossConfig, Mode};
///
/// let device = Device::default();
/// let lovasz = LovaszLossConfig::new(Mode::Binary).init(&device);
/// let logits = Tensor::<4>::from_floats([[[[2.0, -1.0], [0.5, -3.0]]]], &device);
/// let mask = Tensor::<4>::from_floats([[[[1.0, 0.0], [1.0, 0.0]]]], &device);
/// // Every pixel has margin ≥ 1 except the 0.5 one: error 0.5, weight 1/2.
/// assert!((lovasz.forward(logits, mask).into_scalar::<f32>() - 0.25).abs() < 1e-6);
/// ```
#[derive(Module, Debug)]
pub struct LovaszLoss {
    #[module(skip)]
    options: LovaszLossConfig,
}

/// The gradient of the Lovász extension for sorted 0/1 targets, along the last dimension.
fn lovasz_grad<const D: usize>(gt_sorted: Tensor<D>) -> Tensor<D> {
    let last = D - 1;
    let p = gt_sorted.dims()[last];
    let gts = gt_sorted.clone().sum_dim(last);
    let intersection = gts.clone() - gt_sorted.clone().cumsum(last);
    let union = gts + gt_sorted.neg().add_scalar(1.0).cumsum(last);
    let jaccard = (intersection / union).neg().add_scalar(1.0);
    if p == 1 {
        return jaccard;
    }
    let previous = jaccard.clone().narrow(last, 0, p - 1);
    let first = jaccard.clone().narrow(last, 0, 1);
    let rest = jaccard.narrow(last, 1, p - 1) - previous;
    Tensor::cat(vec![first, rest], last)
}

/// Σ over the last dimension of `f(errors sorted decreasingly) · lovasz_grad(targets)`,
/// skipping invalid elements: they sort last (key −∞), so the cumulative sums of the valid
/// ones are untouched, and their own terms are zeroed.
fn sorted_dot<const D: usize>(
    errors: Tensor<D>,
    truth: Tensor<D>,
    valid: Option<Tensor<D>>,
    hinge: bool,
) -> Tensor<D> {
    let last = D - 1;
    let key = match &valid {
        Some(v) => errors
            .clone()
            .detach()
            .mask_fill(v.clone().equal_elem(0.0), f64::NEG_INFINITY),
        None => errors.clone().detach(),
    };
    let perm = key.argsort_descending(last);
    let errors_sorted = errors.gather(last, perm.clone());
    let grad = lovasz_grad(truth.gather(last, perm.clone()));
    let contribution = if hinge {
        relu(errors_sorted)
    } else {
        errors_sorted
    };
    let terms = contribution * grad;
    let terms = match valid {
        Some(v) => terms * v.gather(last, perm),
        None => terms,
    };
    terms.sum_dim(last)
}

impl LovaszLoss {
    /// The loss, or why the inputs do not fit it.
    pub fn try_forward<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        let o = &self.options;
        let (input, target) = checked("lovasz", o.mode, input, target, o.ignore_index)?;
        let dtype = input.dtype();
        let c = input.dims()[1];
        let n = input.dims()[0];
        let groups = if o.per_image { n } else { 1 };
        match o.mode {
            Mode::Binary | Mode::Multilabel => {
                // Hinge over every channel and pixel of a group, as smp flattens them.
                let logits: Tensor<2> = input.reshape([groups as i64, -1]);
                let t: Tensor<2> = target.reshape(logits.dims());
                let valid = o
                    .ignore_index
                    .map(|i| mask_to(t.clone().not_equal_elem(i as f64), dtype));
                let t = match &valid {
                    Some(v) => t * v.clone(),
                    None => t,
                };
                let errors = (logits * t.clone().mul_scalar(2.0).sub_scalar(1.0))
                    .neg()
                    .add_scalar(1.0);
                Ok(sorted_dot(errors, t, valid, true).mean())
            }
            Mode::Multiclass => {
                let probs = to_ncs(softmax(input, 1), c);
                let s = probs.dims()[2];
                let ids = target.reshape([n, 1, s]);
                // [G, C, P]: one row of errors per group and class.
                let (probs, ids) = if o.per_image {
                    (probs, ids)
                } else {
                    (
                        probs.swap_dims(0, 1).reshape([1, c, n * s]),
                        ids.reshape([1, 1, n * s]),
                    )
                };
                let p = probs.dims()[2];
                let valid = o
                    .ignore_index
                    .map(|i| mask_to(ids.clone().not_equal_elem(i as f64), dtype));
                let fg = one_hot(ids, c);
                let fg = match &valid {
                    Some(v) => fg * v.clone(),
                    None => fg,
                };
                let present = mask_to(fg.clone().sum_dim(2).greater_elem(0.0), dtype); // [G, C, 1]
                let errors = (fg.clone() - probs).abs();
                let valid = valid.map(|v| v.expand([groups, c, p]));
                let per_class = sorted_dot(errors, fg, valid, false) * present.clone(); // [G, C, 1]
                let count = present.sum_dim(1).clamp_min(1.0); // no present class: loss 0
                Ok((per_class.sum_dim(1) / count).mean())
            }
        }
    }
}

impl_loss!(LovaszLoss);
