//! The [`Loss`] abstraction, [`Reduction`], and the helpers every loss shares: target
//! conversion, the f32 compute dtype for half-precision inputs, and entry checks.

use burn::tensor::{Bool, DType, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::LossError;

/// Anything training code can minimise: a loss module or a plain function/closure.
///
/// A closure `Fn(Input, Target) -> Tensor<1>` is a `Loss` as it is — the tutorial's
/// `torch.mean((output - target)**2)` needs no struct:
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use kindling_losses::Loss;
///
/// fn my_loss(output: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
///     (output - target).powi_scalar(2).mean()
/// }
///
/// fn train_step(loss: &impl Loss<Tensor<2>, Tensor<2>>, out: Tensor<2>, y: Tensor<2>) -> f32 {
///     loss.loss(out, y).into_scalar::<f32>()
/// }
///
/// let device = Device::default();
/// let out = Tensor::<2>::from_floats([[1.0, 2.0]], &device);
/// let y = Tensor::<2>::from_floats([[1.0, 4.0]], &device);
/// assert_eq!(train_step(&my_loss, out, y), 2.0);
/// ```
///
/// Loss modules implement it too, and add a fallible entry point: [`Loss::try_loss`] checks
/// shapes, class ranges and modes and returns a [`LossError`] instead of panicking.
pub trait Loss<Input, Target> {
    /// The loss; panics with the message of [`Loss::try_loss`]'s error on bad input.
    fn loss(&self, input: Input, target: Target) -> Tensor<1>;

    /// The loss, or why the inputs do not fit it. Closures cannot fail, so their default is
    /// `Ok(self.loss(..))`.
    fn try_loss(&self, input: Input, target: Target) -> Result<Tensor<1>, LossError> {
        Ok(self.loss(input, target))
    }
}

impl<I, T, F> Loss<I, T> for F
where
    F: Fn(I, T) -> Tensor<1>,
{
    fn loss(&self, input: I, target: T) -> Tensor<1> {
        self(input, target)
    }
}

/// How element losses become the returned value, as PyTorch's `reduction=`.
///
/// `None` returns every element loss, flattened to one dimension in row-major order
/// (PyTorch returns them in the input's shape; `reshape` restores it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reduction {
    /// The mean of the element losses.
    #[default]
    Mean,
    /// The sum of the element losses.
    Sum,
    /// No reduction.
    None,
}

impl Reduction {
    /// Applies the reduction to element losses.
    pub fn apply<const D: usize>(self, loss: Tensor<D>) -> Tensor<1> {
        match self {
            Reduction::Mean => loss.mean(),
            Reduction::Sum => loss.sum(),
            Reduction::None => loss.flatten(0, D - 1),
        }
    }
}

/// A target tensor a loss accepts: float masks (binary, multilabel, soft targets) or integer
/// class indices (multiclass). Both become float values in the loss's compute dtype.
pub trait LossTarget<const D: usize> {
    /// The target as floats of `dtype`.
    fn into_float(self, dtype: DType) -> Tensor<D>;
}

impl<const D: usize> LossTarget<D> for Tensor<D> {
    fn into_float(self, dtype: DType) -> Tensor<D> {
        cast_to(self, dtype)
    }
}

impl<const D: usize> LossTarget<D> for Tensor<D, Int> {
    fn into_float(self, dtype: DType) -> Tensor<D> {
        cast_to(self.float(), dtype)
    }
}

/// The dtype a loss computes in: the input's own, except half precision, which is computed in
/// f32 (reductions, `exp` and `log` over many f16 values lose too much).
pub(crate) fn compute_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}

pub(crate) use kindling_precision::to_dtype as cast_to;

/// The input in its compute dtype (see [`compute_dtype`]).
pub(crate) fn upcast<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    let dtype = compute_dtype(t.dtype());
    cast_to(t, dtype)
}

/// A boolean mask as 0/1 floats of `dtype`.
pub(crate) fn mask_to<const D: usize>(mask: Tensor<D, Bool>, dtype: DType) -> Tensor<D> {
    cast_to(mask.float(), dtype)
}

/// A constant vector (class weights and the like) on `device`, in its default float dtype
/// (exact on an f64 device), or f32 where that default is half precision, since losses
/// compute in f32 there.
pub(crate) fn constant(values: &[f64], device: &burn::tensor::Device) -> Tensor<1> {
    let data = burn::tensor::TensorData::new(values.to_vec(), [values.len()]);
    let t = Tensor::<1>::from_data(data.clone(), device);
    if compute_dtype(t.dtype()) == t.dtype() {
        t
    } else {
        Tensor::<1>::from_data(data, (device, DType::F32))
    }
}

/// Fails unless `got` equals `expected`.
pub(crate) fn check_shape(
    loss: &'static str,
    what: &str,
    expected: &[usize],
    got: &[usize],
) -> Result<(), LossError> {
    if expected == got {
        Ok(())
    } else {
        Err(LossError::Shape {
            loss,
            what: what.to_string(),
            expected: format!("{expected:?}"),
            actual: format!("{got:?}"),
        })
    }
}

/// Fails unless the input has at least `min` dimensions (batch and classes first).
pub(crate) fn check_rank(loss: &'static str, dims: &[usize], min: usize) -> Result<(), LossError> {
    if dims.len() >= min {
        Ok(())
    } else {
        Err(LossError::Shape {
            loss,
            what: "input rank".into(),
            expected: format!("at least {min} dimensions ([N, C, ...])"),
            actual: format!("{dims:?}"),
        })
    }
}

/// Fails when a class-index target holds a value outside `[0, classes)` other than `ignore`,
/// or a non-integer. One device read of a boolean.
pub(crate) fn check_classes<const D: usize>(
    loss: &'static str,
    target: &Tensor<D>,
    classes: usize,
    ignore: Option<i64>,
) -> Result<(), LossError> {
    let t = target.clone();
    let mut bad = t
        .clone()
        .lower_elem(0.0)
        .bool_or(t.clone().greater_equal_elem(classes as f64))
        .bool_or(t.clone().round().not_equal(t.clone()));
    if let Some(ignore) = ignore {
        bad = bad.bool_and(t.clone().not_equal_elem(ignore as f64));
    }
    if !bad.clone().any().into_scalar::<bool>() {
        return Ok(());
    }
    // Name the first offending value: a second read, only on the error path.
    let values = t.flatten::<1>(0, D - 1).into_data().convert::<f64>();
    let flags = bad.flatten::<1>(0, D - 1).into_data();
    let value = values
        .iter::<f64>()
        .zip(flags.iter::<bool>())
        .find(|(_, b)| *b)
        .map(|(v, _)| v)
        .unwrap_or(f64::NAN);
    Err(LossError::TargetOutOfRange {
        loss,
        value,
        classes,
        ignore: ignore
            .map(|i| format!(", or ignore_index {i}"))
            .unwrap_or_default(),
    })
}

/// Fails unless `value` lies in `[lo, hi]`.
pub(crate) fn check_range(
    loss: &'static str,
    field: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
) -> Result<(), LossError> {
    if (lo..=hi).contains(&value) {
        Ok(())
    } else {
        let expected = match (lo.is_finite(), hi.is_finite()) {
            (true, true) => format!("expected a value in [{lo}, {hi}]"),
            (true, false) => format!("expected a value ≥ {lo}"),
            _ => format!("expected a value ≤ {hi}"),
        };
        Err(LossError::Invalid {
            loss,
            field,
            value: value.to_string(),
            expected,
        })
    }
}

/// Fails unless `weights` is non-empty, finite and ≥ 0 (with a positive sum when
/// `positive_sum`, as a weighted mean divides by it).
pub(crate) fn check_weights(
    loss: &'static str,
    field: &'static str,
    weights: Option<&[f64]>,
    positive_sum: bool,
) -> Result<(), LossError> {
    let Some(w) = weights else { return Ok(()) };
    let bad = w.is_empty()
        || w.iter().any(|w| !(w.is_finite() && *w >= 0.0))
        || (positive_sum && w.iter().sum::<f64>() <= 0.0);
    if bad {
        return Err(LossError::Invalid {
            loss,
            field,
            value: format!("{w:?}"),
            expected: if positive_sum {
                "expected finite weights ≥ 0 with a positive sum".into()
            } else {
                "expected finite weights ≥ 0, one per class (dim 1)".into()
            },
        });
    }
    Ok(())
}

/// Panics with the error's message: the infallible `forward` of every loss module.
pub(crate) fn or_panic<T>(result: Result<T, LossError>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

/// Gives a module whose `try_forward<D, T>(input, target)` accepts any [`LossTarget`] its
/// panicking `forward` and implements [`Loss`] for float targets and integer class indices of
/// any rank.
macro_rules! impl_loss {
    ($ty:ty) => {
        impl $ty {
            /// The loss; panics with a message naming expected and actual values on bad input
            /// (see `try_forward` for the fallible form).
            pub fn forward<const D: usize, const T: usize>(
                &self,
                input: burn::tensor::Tensor<D>,
                target: impl $crate::LossTarget<T>,
            ) -> burn::tensor::Tensor<1> {
                $crate::loss::or_panic(self.try_forward(input, target))
            }
        }
        $crate::loss::impl_loss!(@kind $ty, burn::tensor::Float);
        $crate::loss::impl_loss!(@kind $ty, burn::tensor::Int);
    };
    (@kind $ty:ty, $kind:ty) => {
        impl<const D: usize, const T: usize>
            $crate::Loss<burn::tensor::Tensor<D>, burn::tensor::Tensor<T, $kind>> for $ty
        {
            fn loss(
                &self,
                input: burn::tensor::Tensor<D>,
                target: burn::tensor::Tensor<T, $kind>,
            ) -> burn::tensor::Tensor<1> {
                $crate::loss::or_panic(self.try_forward(input, target))
            }
            fn try_loss(
                &self,
                input: burn::tensor::Tensor<D>,
                target: burn::tensor::Tensor<T, $kind>,
            ) -> Result<burn::tensor::Tensor<1>, $crate::LossError> {
                self.try_forward(input, target)
            }
        }
    };
}
pub(crate) use impl_loss;
