//! Fused Flex kernels for the losses, each one multithreaded pass forward and one backward
//! through Burn's backend extension (`#[backend_extension(Flex, Autodiff)]`, hand-written
//! backward):
//!
//! - `overlap_sums`: the per-class sums of Dice, Jaccard, Tversky (every mode) and the
//!   tutorial's Dice/IoU/BCE;
//! - `bce_with_logits`: BCE-with-logits elements, optionally focal-modulated (soft_bce,
//!   sigmoid_focal, smp's focal);
//! - `softmax_nll`: per-pixel softmax cross-entropy with weights, smoothing, `ignore_index`
//!   and the softmax focal modulation;
//! - [`log_softmax`] (dim 1) and [`log_sigmoid`], for what still composes them.
//!
//! Each returns `None` (or falls back to Burn's ops) for anything else — another device, a
//! dtype other than f32/f64 — so other devices compute exactly what they did. The new kernels
//! compute in f64 whatever the input type (f32 inputs get `math`'s vectorising f64 `exp`/`ln`,
//! ~1e-11 relative; f64 the standard library) and are compiled for AVX-512 F, AVX2 + FMA and
//! SSE2, picked at run time (`common::dispatched`). Work is split into fixed chunks and partial
//! sums added in order: results do not depend on the thread count or the CPU.
//!
//! The kernels' hot loops index slices cut to one length (`for i in 0..len`): those vectorise
//! reliably inside the AVX builds, where iterator adaptors (`zip`, `map`, `fold`) are not
//! always inlined and leave a call per element.
#![allow(clippy::needless_range_loop)]

#[cfg(feature = "flex")]
mod activations;
#[cfg(feature = "flex")]
mod bce;
#[cfg(feature = "flex")]
mod common;
#[cfg(any(feature = "flex", test))]
mod math;
#[cfg(feature = "flex")]
mod nll;
#[cfg(feature = "flex")]
mod overlap;

use burn::tensor::{DType, Tensor, activation};

/// How an overlap loss turns its input into probabilities (see [`overlap_sums`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probabilities {
    /// The input holds probabilities.
    Identity,
    /// `e^{log σ(x)}`, smp's route (gradient `p·σ(−x)`).
    LogSigmoid,
    /// `torch.sigmoid` (gradient `p·(1 − p)`), the tutorial's.
    Sigmoid,
    /// `e^{log_softmax(x, 1)}`.
    LogSoftmax,
}

/// Per-class sums (`[C]` each) over batch and pixels of `p = act(x)` and the target `t`,
/// counting only elements whose target is not `ignore`: `Σp`, `Σt`, `Σ|p − t|`, `Σp·t`, and
/// `Σ bce(p, t)` (PyTorch's `binary_cross_entropy` on probabilities, its gradient included)
/// when asked for.
pub(crate) struct OverlapSums {
    pub p: Tensor<1>,
    pub t: Tensor<1>,
    pub abs_diff: Tensor<1>,
    pub product: Tensor<1>,
    pub bce: Tensor<1>,
}

/// [`OverlapSums`] of `x: [N, C, S]` against `target` — `[N, C, S]` values, or `[N, 1, S]`
/// class indices with `class_ids` — as one fused kernel forward and backward, or `None` where
/// the kernel does not run (the caller composes Burn's ops).
pub(crate) fn overlap_sums(
    x: &Tensor<3>,
    target: &Tensor<3>,
    activation: Probabilities,
    class_ids: bool,
    ignore: Option<f64>,
    bce: bool,
) -> Option<OverlapSums> {
    if !fused_available(x) || target.dtype() != x.dtype() {
        return None;
    }
    #[cfg(feature = "flex")]
    {
        use overlap::Activation;
        let options = overlap::OverlapOptions {
            activation: match activation {
                Probabilities::Identity => Activation::Identity,
                Probabilities::LogSigmoid => Activation::LogSigmoid,
                Probabilities::Sigmoid => Activation::Sigmoid,
                Probabilities::LogSoftmax => Activation::LogSoftmax,
            },
            class_ids,
            ignore,
            bce,
        };
        let c = x.dims()[1];
        let sums = overlap::overlap_sums(x.clone(), target.clone(), options);
        let row = |i: usize| sums.clone().slice([i..i + 1, 0..c]).reshape([c]);
        Some(OverlapSums {
            p: row(overlap::P),
            t: row(overlap::T),
            abs_diff: row(overlap::ABS),
            product: row(overlap::PT),
            bce: row(overlap::BCE),
        })
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (activation, class_ids, ignore, bce);
        None
    }
}

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

/// The focal modulation of [`bce_with_logits`]: `gamma`, `alpha` (`None`: no class
/// weighting), and whether `p_t = e^{−ce}` (smp) rather than `σ·t + (1 − σ)·(1 − t)`
/// (torchvision).
pub(crate) type Focal = (f64, Option<f64>, bool);

/// Element losses `(1 − t')·x − log σ(x)` of logits against targets (`t'` label-smoothed by
/// `smooth`), zero where the target is `ignore`, optionally focal-modulated — one fused pass
/// forward and one backward, or `None` where the kernel does not run.
pub(crate) fn bce_with_logits<const D: usize>(
    x: &Tensor<D>,
    target: &Tensor<D>,
    smooth: Option<f64>,
    ignore: Option<f64>,
    focal: Option<Focal>,
) -> Option<Tensor<D>> {
    if !fused_available(x) || target.dtype() != x.dtype() || target.dims() != x.dims() {
        return None;
    }
    #[cfg(feature = "flex")]
    {
        let options = bce::BceOptions {
            smooth,
            ignore,
            focal: focal.map(|(gamma, alpha, pt_from_ce)| bce::Focal {
                gamma,
                alpha,
                pt_from_ce,
            }),
        };
        Some(bce::bce_with_logits(x.clone(), target.clone(), options))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (smooth, ignore, focal);
        None
    }
}

/// Per-pixel softmax cross-entropy `[N, 1, S]` of logits `x: [N, C, S]` against class indices
/// `ids: [N, 1, S]` (as floats), with optional class `weight`, label `smoothing` and an
/// `ignore`d index (those pixels count zero) — PyTorch's `cross_entropy(reduction="none")`
/// per pixel — optionally focal-modulated, `(1 − e^{−ℓ})^γ·ℓ`; one fused pass forward and one backward, or `None` where the kernel does not run.
pub(crate) fn softmax_nll(
    x: &Tensor<3>,
    ids: &Tensor<3>,
    weight: Option<&Tensor<1>>,
    smoothing: f64,
    ignore: Option<f64>,
    focal_gamma: Option<f64>,
) -> Option<Tensor<3>> {
    if !fused_available(x) || ids.dtype() != x.dtype() {
        return None;
    }
    #[cfg(feature = "flex")]
    {
        let options = nll::NllOptions {
            ignore,
            smoothing,
            // Read back only here, where the kernel runs (Flex: no device round trip).
            weight: weight.map(|w| {
                w.to_data()
                    .convert::<f64>()
                    .try_to_vec::<f64>()
                    .unwrap_or_default()
            }),
            focal_gamma,
        };
        Some(nll::softmax_nll(x.clone(), ids.clone(), options))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = (weight, smoothing, ignore, focal_gamma);
        None
    }
}
