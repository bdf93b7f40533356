//! The region-overlap core shared by Dice, Jaccard and Tversky: smp's `soft_tversky_score`
//! per class, the empty-class mask, the class subset and weights, and the focal exponent.

use crate::fused::{Probabilities, log_sigmoid, log_softmax, overlap_sums};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::LossError;
use crate::loss::{LossTarget, cast_to, check_range, check_weights, constant, mask_to};
use crate::segmentation::{Mode, checked, flatten, to_ncs};

/// The options of an overlap loss, validated once at `init`.
#[derive(Debug, Clone)]
pub(crate) struct Overlap {
    pub name: &'static str,
    pub mode: Mode,
    pub classes: Option<Vec<usize>>,
    pub log_loss: bool,
    pub from_logits: bool,
    pub smooth: f64,
    pub ignore_index: Option<i64>,
    pub eps: f64,
    pub class_weights: Option<Vec<f64>>,
    /// Weight of false positives (Dice 0.5, Jaccard 1).
    pub alpha: f64,
    /// Weight of false negatives (Dice 0.5, Jaccard 1).
    pub beta: f64,
    /// Exponent of the aggregated loss (Focal-Tversky when ≠ 1).
    pub gamma: f64,
}

impl Overlap {
    pub fn validate(&self) -> Result<(), LossError> {
        let name = self.name;
        check_range(name, "smooth", self.smooth, 0.0, f64::INFINITY)?;
        check_range(name, "eps", self.eps, 0.0, f64::INFINITY)?;
        check_range(name, "alpha", self.alpha, 0.0, f64::INFINITY)?;
        check_range(name, "beta", self.beta, 0.0, f64::INFINITY)?;
        if !(self.gamma > 0.0 && self.gamma.is_finite()) {
            return Err(LossError::Invalid {
                loss: name,
                field: "gamma",
                value: self.gamma.to_string(),
                expected: "expected a finite value > 0".into(),
            });
        }
        if self.mode == Mode::Binary {
            for (field, set) in [
                ("classes", self.classes.is_some()),
                ("class_weights", self.class_weights.is_some()),
            ] {
                if set {
                    return Err(LossError::Invalid {
                        loss: name,
                        field,
                        value: "set".into(),
                        expected: "not supported with mode = binary (as in smp)".into(),
                    });
                }
            }
        }
        check_weights(name, "class_weights", self.class_weights.as_deref(), true)?;
        if self.classes.as_ref().is_some_and(Vec::is_empty) {
            return Err(LossError::Invalid {
                loss: name,
                field: "classes",
                value: "[]".into(),
                expected: "expected at least one class index".into(),
            });
        }
        Ok(())
    }

    /// The class weights as a constant tensor (stored in the module, so it moves with it).
    pub fn weights_tensor(&self, device: &Device) -> Option<Tensor<1>> {
        self.class_weights.as_ref().map(|w| constant(w, device))
    }

    pub fn forward<const D: usize, const T: usize>(
        &self,
        weights: Option<&Tensor<1>>,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        let name = self.name;
        let (input, target) = checked(name, self.mode, input, target, self.ignore_index)?;
        let channels = input.dims()[1];
        for (field, len) in [("class_weights", self.class_weights.as_ref().map(Vec::len))] {
            if let Some(len) = len
                && len != channels
            {
                return Err(LossError::Shape {
                    loss: name,
                    what: format!("length of `{field}`"),
                    expected: format!("{channels} (the input's classes, dim 1)"),
                    actual: len.to_string(),
                });
            }
        }
        if let Some(c) = self
            .classes
            .as_ref()
            .and_then(|c| c.iter().find(|&&c| c >= channels))
        {
            return Err(LossError::Invalid {
                loss: name,
                field: "classes",
                value: c.to_string(),
                expected: format!("expected class indices below {channels} (the input's dim 1)"),
            });
        }
        let dtype = input.dtype();
        let (output_sum, target_sum, difference) = self.sums(input, target);
        let intersection = (output_sum.clone() + target_sum.clone() - difference).div_scalar(2.0);
        let fp = output_sum - intersection.clone();
        let fn_ = target_sum.clone() - intersection.clone();
        let score = intersection.clone().add_scalar(self.smooth)
            / (intersection + fp.mul_scalar(self.alpha) + fn_.mul_scalar(self.beta))
                .add_scalar(self.smooth)
                .clamp_min(self.eps);
        let loss = if self.log_loss {
            score.clamp_min(self.eps).log().neg()
        } else {
            score.neg().add_scalar(1.0)
        };
        // A class without true pixels contributes zero (smp): the overlap is undefined there.
        let loss = loss * mask_to(target_sum.greater_elem(0.0), dtype);

        let device = loss.device();
        let select = |t: Tensor<1>| match &self.classes {
            Some(c) => {
                let idx: Vec<i64> = c.iter().map(|&c| c as i64).collect();
                let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [c.len()]), &device);
                t.select(0, idx)
            }
            None => t,
        };
        let loss = select(loss);
        let aggregated = match weights {
            Some(w) => {
                let w = select(cast_to(w.clone(), dtype));
                (loss * w.clone()).sum() / w.sum()
            }
            None => loss.mean(),
        };
        Ok(if self.gamma == 1.0 {
            aggregated
        } else {
            aggregated.powf_scalar(self.gamma)
        })
    }
}

impl Overlap {
    /// Per class over batch and pixels: |P|, |T| and |P − T|₁ (smp's form, whose gradient at
    /// P = T is PyTorch's sign(0) = 0), ignored pixels left out.
    fn sums<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: Tensor<T>,
    ) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
        let channels = input.dims()[1];
        let probabilities = match (self.from_logits, self.mode) {
            (false, _) => Probabilities::Identity,
            (true, Mode::Multiclass) => Probabilities::LogSoftmax,
            (true, _) => Probabilities::LogSigmoid,
        };
        let x = to_ncs(input, channels);
        let [n, c, s] = x.dims();
        let class_ids = self.mode == Mode::Multiclass;
        let t = target.reshape([n, if class_ids { 1 } else { c }, s]);
        let ignore = self.ignore_index.map(|i| i as f64);
        if let Some(sums) = overlap_sums(&x, &t, probabilities, class_ids, ignore, false) {
            return (sums.p, sums.t, sums.abs_diff);
        }
        // smp takes probabilities through log-space for stable gradients at saturation.
        let probs = match probabilities {
            Probabilities::LogSoftmax => log_softmax(x).exp(),
            Probabilities::LogSigmoid => log_sigmoid(x).exp(),
            _ => x,
        };
        let flat = flatten(self.mode, probs, t, self.ignore_index);
        let (pred, truth) = (flat.input, flat.target);
        let per_class = |t: Tensor<3>| t.sum_dim(2).sum_dim(0).flatten::<1>(0, 2);
        (
            per_class(pred.clone()),
            per_class(truth.clone()),
            per_class((pred - truth).abs()),
        )
    }
}

/// The `#[derive(Config)]` struct of an overlap loss: smp's options and defaults, plus
/// `alpha`, `beta`, `gamma` for Tversky. A macro because Dice, Jaccard and Tversky share
/// every option, and Burn's `Config` derive needs the fields spelled out.
macro_rules! overlap_config {
    ($(#[$doc:meta])* $config:ident => $loss:ident, $name:literal, alpha $alpha:literal, beta $beta:literal) => {
        $crate::overlap::overlap_config!(@struct $(#[$doc])* $config {});
        impl $config {
            pub(crate) fn overlap(&self) -> $crate::overlap::Overlap {
                $crate::overlap::overlap_config!(@overlap self, $name, $alpha, $beta, 1.0)
            }
        }
        $crate::overlap::overlap_config!(@init $config => $loss);
    };
    ($(#[$doc:meta])* $config:ident => $loss:ident, $name:literal, tversky) => {
        $crate::overlap::overlap_config!(@struct $(#[$doc])* $config {
            /// Weight of false positives.
            #[config(default = 0.5)]
            pub alpha: f64,
            /// Weight of false negatives.
            #[config(default = 0.5)]
            pub beta: f64,
            /// Exponent of the aggregated loss (Focal-Tversky when ≠ 1).
            #[config(default = 1.0)]
            pub gamma: f64,
        });
        impl $config {
            pub(crate) fn overlap(&self) -> $crate::overlap::Overlap {
                $crate::overlap::overlap_config!(@overlap self, $name, self.alpha, self.beta, self.gamma)
            }
        }
        $crate::overlap::overlap_config!(@init $config => $loss);
    };
    (@struct $(#[$doc:meta])* $config:ident { $($extra:tt)* }) => {
        $(#[$doc])*
        #[derive(burn::config::Config, Debug)]
        pub struct $config {
            /// How the target is read: binary, multiclass or multilabel.
            pub mode: $crate::Mode,
            /// Classes that contribute to the loss (all by default; not in binary mode).
            pub classes: Option<Vec<usize>>,
            /// `-ln(score)` instead of `1 - score`.
            #[config(default = false)]
            pub log_loss: bool,
            /// Whether the input holds logits (sigmoid/softmax applied here) or probabilities.
            #[config(default = true)]
            pub from_logits: bool,
            /// Added to numerator and denominator.
            #[config(default = 0.0)]
            pub smooth: f64,
            /// Target value whose pixels do not count.
            pub ignore_index: Option<i64>,
            /// Lower bound of the denominator (and of the score under `log_loss`).
            #[config(default = 1e-7)]
            pub eps: f64,
            /// Per-class weights of the class losses (not in binary mode; need not sum to 1).
            pub class_weights: Option<Vec<f64>>,
            $($extra)*
        }
    };
    (@overlap $self:ident, $name:literal, $alpha:expr, $beta:expr, $gamma:expr) => {
        $crate::overlap::Overlap {
            name: $name,
            mode: $self.mode,
            classes: $self.classes.clone(),
            log_loss: $self.log_loss,
            from_logits: $self.from_logits,
            smooth: $self.smooth,
            ignore_index: $self.ignore_index,
            eps: $self.eps,
            class_weights: $self.class_weights.clone(),
            alpha: $alpha,
            beta: $beta,
            gamma: $gamma,
        }
    };
    (@init $config:ident => $loss:ident) => {
        impl $config {
            #[doc = concat!("Initializes a [`", stringify!($loss), "`]; panics on an invalid option (see [`Self::try_init`]).")]
            pub fn init(&self, device: &burn::tensor::Device) -> $loss {
                $crate::loss::or_panic(self.try_init(device))
            }

            /// Checks every option without touching a device.
            pub fn check(&self) -> Result<(), $crate::LossError> {
                self.overlap().validate()
            }

            #[doc = concat!("Initializes a [`", stringify!($loss), "`], or names the invalid option.")]
            pub fn try_init(&self, device: &burn::tensor::Device) -> Result<$loss, $crate::LossError> {
                self.check()?;
                let options = self.overlap();
                Ok($loss {
                    class_weights: options.weights_tensor(device),
                    options,
                })
            }
        }
    };
}
pub(crate) use overlap_config;

/// The `#[derive(Module)]` struct of an overlap loss with its `forward`/`try_forward`.
macro_rules! overlap_module {
    ($(#[$doc:meta])* $loss:ident) => {
        $(#[$doc])*
        #[derive(burn::module::Module, Debug)]
        pub struct $loss {
            class_weights: Option<burn::tensor::Tensor<1>>,
            #[module(skip)]
            options: $crate::overlap::Overlap,
        }

        impl $loss {

            /// The loss, or why the inputs do not fit it.
            pub fn try_forward<const D: usize, const T: usize>(
                &self,
                input: burn::tensor::Tensor<D>,
                target: impl $crate::LossTarget<T>,
            ) -> Result<burn::tensor::Tensor<1>, $crate::LossError> {
                self.options.forward(self.class_weights.as_ref(), input, target)
            }
        }

        $crate::loss::impl_loss!($loss);
    };
}
pub(crate) use overlap_module;
