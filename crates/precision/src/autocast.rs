//! `torch.autocast` for Burn: a scope under which Kindling's layers run convolutions, linear
//! layers and matmuls in f16 or bf16, and normalisation, softmax and losses in f32, while the
//! parameters stay f32 (the master weights: their gradients and the optimizer state are f32,
//! because `cast` is differentiable and casts the gradient back).
//!
//! Burn has no dtype promotion (an op with an f16 and an f32 input panics), so the layers cast
//! their inputs themselves, through [`low`] (an autocast op's input) and [`full`] (an f32
//! op's input); a model adding a parameter to an activation casts it with [`like`].
//!
//! ```
//! use burn::tensor::{DType, Device, FloatDType, Tensor};
//! use kindling_precision::{autocast, low};
//!
//! let device = Device::flex();
//! let x = Tensor::<2>::ones([2, 3], &device);
//! let y = autocast(FloatDType::BF16, || low(x.clone()));
//! assert_eq!(y.dtype(), DType::BF16);
//! assert_eq!(low(x).dtype(), DType::F32); // outside the scope: unchanged
//! ```
//!
//! The scope is per thread (like PyTorch's): enter it on the thread that runs the forward
//! pass. The backward pass needs no scope.

use std::cell::Cell;

use burn::tensor::{DType, FloatDType, Tensor};

thread_local! {
    static ACTIVE: Cell<Option<FloatDType>> = const { Cell::new(None) };
    /// Inputs [`low`] received inside a scope on this thread.
    static LOW_INPUTS: Cell<u64> = const { Cell::new(0) };
}

/// Leaves the scope entered by [`AutocastGuard::enter`] when dropped, restoring the outer one.
#[must_use = "the scope ends when the guard is dropped"]
pub struct AutocastGuard {
    outer: Option<FloatDType>,
}

impl AutocastGuard {
    /// Enters autocast to `dtype` (f16 or bf16); `None` disables autocast inside an enabled
    /// scope (`torch.autocast(enabled=False)`). Scopes nest.
    pub fn enter(dtype: Option<FloatDType>) -> Self {
        let dtype = dtype.filter(|d| *d != FloatDType::F32);
        Self {
            outer: ACTIVE.with(|a| a.replace(dtype)),
        }
    }
}

impl Drop for AutocastGuard {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.outer));
    }
}

/// Runs `f` under autocast to `dtype`.
pub fn autocast<R>(dtype: FloatDType, f: impl FnOnce() -> R) -> R {
    let _guard = AutocastGuard::enter(Some(dtype));
    f()
}

/// Runs `f` with autocast off (inside an autocast scope: PyTorch's `enabled=False`).
pub fn without_autocast<R>(f: impl FnOnce() -> R) -> R {
    let _guard = AutocastGuard::enter(None);
    f()
}

/// The dtype autocast ops run in on this thread, if a scope is active.
pub fn autocast_dtype() -> Option<FloatDType> {
    ACTIVE.with(Cell::get)
}

fn cast_to<const D: usize>(x: Tensor<D>, dtype: FloatDType) -> Tensor<D> {
    if x.dtype() == DType::from(dtype) {
        x
    } else {
        x.cast(dtype)
    }
}

/// An autocast op's input (convolution, linear, matmul): cast to the scope's dtype; unchanged
/// outside a scope.
pub fn low<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match autocast_dtype() {
        Some(dtype) => {
            LOW_INPUTS.with(|n| n.set(n.get() + 1));
            cast_to(x, dtype)
        }
        None => x,
    }
}

/// Counts one autocast op input, inside a scope: a [`MasterWeights`](crate::MasterWeights)
/// forward pass under the scope is one, so the training loop's check passes for it.
pub(crate) fn count_low_input() {
    if autocast_dtype().is_some() {
        LOW_INPUTS.with(|n| n.set(n.get() + 1));
    }
}

/// How many inputs autocast ops received inside a scope on this thread so far. A training
/// loop checks that its first step under autocast moved it: a model built from layers that
/// do not follow autocast (Burn's own) would otherwise train in f32 without a word.
pub fn autocast_inputs() -> u64 {
    LOW_INPUTS.with(Cell::get)
}

/// An f32 op's input (normalisation, softmax, exp/log, reductions, losses): cast to f32 inside
/// a scope; unchanged outside one (so a pure `--dtype f16` model stays f16).
pub fn full<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    match autocast_dtype() {
        Some(_) => cast_to(x, FloatDType::F32),
        None => x,
    }
}

/// `x` cast to `other`'s dtype, for an elementwise op between a parameter (f32) and an
/// activation (f16 under autocast): the dtype promotion Burn does not do.
pub fn like<const D: usize, const E: usize>(x: Tensor<D>, other: &Tensor<E>) -> Tensor<D> {
    to_dtype(x, other.dtype())
}

/// Both tensors in the wider of their float dtypes (f32 over f16/bf16): PyTorch's type
/// promotion for an elementwise op (a residual sum of an f32 and a low-precision branch).
pub fn promote<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> (Tensor<D>, Tensor<D>) {
    let (da, db) = (a.dtype(), b.dtype());
    if da == db {
        (a, b)
    } else if da.size() >= db.size() {
        let b = to_dtype(b, da);
        (a, b)
    } else {
        let a = to_dtype(a, db);
        (a, b)
    }
}

/// `x` cast back to `dtype` (a layer computing in f32 returns its input's dtype, as PyTorch's
/// CUDA BatchNorm does).
/// Any float dtype; `x` is returned as it is for a non-float one.
pub fn to_dtype<const D: usize>(x: Tensor<D>, dtype: DType) -> Tensor<D> {
    match dtype {
        DType::F64 | DType::F32 | DType::Flex32 | DType::F16 | DType::BF16 => {
            cast_to(x, dtype.into())
        }
        _ => x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn scopes_nest_and_restore() {
        assert_eq!(autocast_dtype(), None);
        autocast(FloatDType::F16, || {
            assert_eq!(autocast_dtype(), Some(FloatDType::F16));
            without_autocast(|| assert_eq!(autocast_dtype(), None));
            autocast(FloatDType::BF16, || {
                assert_eq!(autocast_dtype(), Some(FloatDType::BF16))
            });
            assert_eq!(autocast_dtype(), Some(FloatDType::F16));
        });
        assert_eq!(autocast_dtype(), None);
    }

    #[test]
    fn low_full_and_like_cast_only_inside_a_scope() {
        let device = Device::flex();
        let x = Tensor::<2>::ones([2, 2], &device);
        assert_eq!(full(x.clone().cast(FloatDType::F16)).dtype(), DType::F16);
        autocast(FloatDType::F16, || {
            let before = autocast_inputs();
            let h = low(x.clone());
            assert_eq!(h.dtype(), DType::F16);
            assert_eq!(autocast_inputs(), before + 1);
            assert_eq!(full(h.clone()).dtype(), DType::F32);
            assert_eq!(like(x.clone(), &h).dtype(), DType::F16);
            let (a, b) = promote(h.clone(), x.clone());
            assert_eq!((a.dtype(), b.dtype()), (DType::F32, DType::F32));
        });
    }

    #[test]
    fn gradients_through_a_cast_are_f32() {
        let device = Device::flex().autodiff();
        let w = Tensor::<2>::ones([2, 2], &device).require_grad();
        let y = autocast(FloatDType::BF16, || {
            let h = low(w.clone()) * 3.0;
            full(h).sum()
        });
        let grads = y.backward();
        let g = w.grad(&grads).unwrap();
        assert_eq!(g.dtype(), DType::F32);
        assert_eq!(g.into_data().try_to_vec::<f32>().unwrap(), vec![3.0; 4]);
    }
}
