//! Fused Flex kernels for the losses' activations: `log_softmax` over the class dimension and
//! `log_sigmoid`, each one vectorised, multithreaded pass forward and one backward, through
//! Burn's backend extension (`#[backend_extension(Flex, Autodiff)]`, hand-written backward).
//!
//! [`log_softmax`] and [`log_sigmoid`] fall back to Burn's own ops for anything else (another
//! device, a dtype other than f32/f64), so other devices compute exactly what they did. f32 uses
//! the vectorising `exp`/`ln` of `math` (≤ 3 ulp, see there); f64 the standard library. Work
//! is split into fixed chunks with no cross-chunk reduction: results do not depend on the
//! thread count.

#[cfg(feature = "flex")]
mod activations;
#[cfg(any(feature = "flex", test))]
mod math;

use burn::tensor::{DType, Tensor, activation};

/// Whether the fused kernels run for `tensor` (Flex device, f32/f64, `flex` feature, not
/// switched off with `KINDLING_FUSED=0`).
fn fused_available<const D: usize>(tensor: &Tensor<D>) -> bool {
    #[cfg(feature = "flex")]
    {
        use burn::backend::DispatchDevice;
        let on_flex = match tensor.device().as_dispatch() {
            DispatchDevice::Flex(_) => true,
            DispatchDevice::Autodiff(inner) => {
                matches!(inner.clone().inner(), DispatchDevice::Flex(_))
            }
            #[allow(unreachable_patterns)]
            _ => false,
        };
        on_flex && matches!(tensor.dtype(), DType::F32 | DType::F64) && enabled()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (tensor, DType::F32);
        false
    }
}

/// `KINDLING_FUSED=0` read once (the losses call this per forward).
#[cfg(feature = "flex")]
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("KINDLING_FUSED").map_or(true, |v| v != "0"))
}

/// `log_softmax(x, 1)`: the fused kernel on Flex, Burn's everywhere else.
pub fn log_softmax<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if D >= 2 && fused_available(&x) {
        #[cfg(feature = "flex")]
        return activations::log_softmax_dim1(x);
    }
    activation::log_softmax(x, 1)
}

/// `log_sigmoid(x) = min(x, 0) − ln(1 + e^−|x|)`: the fused kernel on Flex, Burn's elsewhere.
pub fn log_sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if fused_available(&x) {
        #[cfg(feature = "flex")]
        return activations::log_sigmoid(x);
    }
    activation::log_sigmoid(x)
}
