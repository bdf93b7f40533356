//! Binary cross-entropy on logits element by element, optionally focal-modulated
//! (torchvision's `sigmoid_focal_loss`), in one pass forward and one backward:
//!
//! ```text
//! t' = t·(1 − f) + (1 − t)·f                        (label smoothing f, else t' = t)
//! ce = (1 − t')·x − log σ(x)                        dce/dx = σ(x) − t'
//! focal:  p_t = σ(x)·t + (1 − σ(x))·(1 − t),  m = (1 − p_t)^γ,  α_t = α·t + (1 − α)·(1 − t)
//!         ℓ = α_t·ce·m                              dℓ/dx = α_t·(dce·m + ce·γ(1 − p_t)^{γ−1}·(1 − 2t)·σ(1 − σ))
//! ℓ = 0 where t = ignore
//! ```
//!
//! Computed in f64 whatever the input type (rounded once); fixed chunks, so results do not
//! depend on the thread count.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::common::{CHUNK, Float, dispatched, tensor, values, with_float};

/// torchvision's focal modulation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Focal {
    pub gamma: f64,
    /// Weight of positives; `None` for no weighting (torchvision's `alpha < 0`).
    pub alpha: Option<f64>,
}

/// The op's options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BceOptions {
    /// Label smoothing factor.
    pub smooth: Option<f64>,
    /// Target value whose elements count zero.
    pub ignore: Option<f64>,
    pub focal: Option<Focal>,
}

/// The backend extension: implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait BceKernels: Backend {
    /// Element losses of logits `x` against `target` (same shape; no gradient to the target).
    fn kindling_bce_with_logits(
        x: FloatTensor<Self>,
        target: FloatTensor<Self>,
        options: BceOptions,
    ) -> FloatTensor<Self>;
}

pub fn bce_with_logits<const D: usize>(
    x: Tensor<D>,
    target: Tensor<D>,
    options: BceOptions,
) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as BceKernels>::kindling_bce_with_logits(
        x.into_dispatch(),
        target.into_dispatch(),
        options,
    ))
}

/// y^γ for y ≥ 0 (0^0 = 1), exact for the common γ = 1 and 2.
#[inline(always)]
fn pow<E: Float>(y: f64, gamma: f64) -> f64 {
    if gamma == 2.0 {
        y * y
    } else if gamma == 1.0 {
        y
    } else if gamma == 0.0 {
        1.0
    } else if y > 0.0 {
        E::wide_exp(gamma * E::wide_ln(y))
    } else {
        0.0
    }
}

/// `(ℓ, dℓ/dx)` of one element.
#[inline(always)]
fn element<E: Float>(x: f64, t: f64, o: &BceOptions) -> (f64, f64) {
    if o.ignore == Some(t) {
        return (0.0, 0.0);
    }
    let soft = match o.smooth {
        Some(f) => t * (1.0 - f) + (1.0 - t) * f,
        None => t,
    };
    // e = e^{−|x|} ∈ (0, 1]: σ(x) and log σ(x) without overflow on either side.
    let e = E::wide_exp(-x.abs());
    let sigma = if x < 0.0 { e } else { 1.0 } / (1.0 + e);
    let log_sigma = x.min(0.0) - E::wide_ln_1p(e);
    let ce = (1.0 - soft) * x - log_sigma;
    let dce = sigma - soft;
    match o.focal {
        None => (ce, dce),
        Some(Focal { gamma, alpha }) => {
            let one_minus = 1.0 - (sigma * t + (1.0 - sigma) * (1.0 - t));
            let m = pow::<E>(one_minus, gamma);
            let dm = if gamma == 0.0 {
                0.0
            } else {
                gamma * pow::<E>(one_minus, gamma - 1.0) * (1.0 - 2.0 * t) * sigma * (1.0 - sigma)
            };
            let a = alpha.map_or(1.0, |a| a * t + (1.0 - a) * (1.0 - t));
            (a * ce * m, a * (dce * m + ce * dm))
        }
    }
}

/// Element losses of one chunk.
#[inline(always)]
fn forward_chunk<E: Float>(x: &[E], t: &[E], o: &BceOptions, out: &mut [E]) {
    for i in 0..out.len() {
        out[i] = E::from_f64(element::<E>(x[i].to_f64(), t[i].to_f64(), o).0);
    }
}

/// dx of one chunk.
#[inline(always)]
fn backward_chunk<E: Float>(x: &[E], t: &[E], g: &[E], o: &BceOptions, out: &mut [E]) {
    for i in 0..out.len() {
        let d = element::<E>(x[i].to_f64(), t[i].to_f64(), o).1;
        out[i] = E::from_f64(g[i].to_f64() * d);
    }
}

dispatched! {
    fn forward_dispatched(x: &[E], t: &[E], o: &BceOptions, out: &mut [E]) -> () = forward_chunk
}

dispatched! {
    fn backward_dispatched(x: &[E], t: &[E], g: &[E], o: &BceOptions, out: &mut [E]) -> () =
        backward_chunk
}

fn forward_flex(x: &FlexTensor, target: &FlexTensor, o: &BceOptions) -> FlexTensor {
    let shape = x.shape();
    with_float!(x.dtype(), E => {
        let (xs, ts) = (values::<E>(x), values::<E>(target));
        let mut out = vec![E::ZERO; xs.len()];
        out.par_chunks_mut(CHUNK)
            .zip(xs.par_chunks(CHUNK).zip(ts.par_chunks(CHUNK)))
            .for_each(|(out, (x, t))| forward_dispatched(x, t, o, out));
        tensor(out, shape)
    })
}

impl BceKernels for Flex {
    fn kindling_bce_with_logits(x: FlexTensor, target: FlexTensor, o: BceOptions) -> FlexTensor {
        forward_flex(&x, &target, &o)
    }
}

#[derive(Debug)]
struct BceBackward;

impl Backward<Flex, 1> for BceBackward {
    /// The input, the target and the options.
    type State = (FlexTensor, FlexTensor, BceOptions);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, target, o) = ops.state;
        if let Some(node) = parent {
            let shape = x.shape();
            let dx = with_float!(x.dtype(), E => {
                let (xs, ts, gs) = (values::<E>(&x), values::<E>(&target), values::<E>(&dy));
                let mut out = vec![E::ZERO; xs.len()];
                out.par_chunks_mut(CHUNK)
                    .zip(xs.par_chunks(CHUNK).zip(ts.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK))))
                    .for_each(|(out, (x, (t, g)))| backward_dispatched(x, t, g, &o, out));
                tensor(out, shape)
            });
            grads.register::<Flex>(node.id, dx);
        }
    }
}

impl<C: CheckpointStrategy> BceKernels for Autodiff<Flex, C> {
    fn kindling_bce_with_logits(
        x: FloatTensor<Self>,
        target: FloatTensor<Self>,
        o: BceOptions,
    ) -> FloatTensor<Self> {
        let target = target.into_primitive();
        match BceBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward_flex(x.primitive(), &target, &o);
                prep.finish((x.into_primitive(), target, o), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward_flex(x.primitive(), &target, &o)),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{DType, Device, FloatDType, Tensor, TensorData, activation};

    use super::{BceOptions, Focal};
    use crate::fused::activations::tests::assert_close;
    use crate::fused::overlap::tests::uniform;

    /// The same element losses composed from Burn's ops (the losses' own fallback formulas).
    fn composed(x: Tensor<2>, t: Tensor<2>, o: &BceOptions) -> Tensor<2> {
        let soft = match o.smooth {
            Some(f) => {
                t.clone().mul_scalar(1.0 - f) + t.clone().neg().add_scalar(1.0).mul_scalar(f)
            }
            None => t.clone(),
        };
        let ce = crate::soft_bce::bce_with_logits(x.clone(), soft, None);
        let mut loss = match o.focal {
            None => ce,
            Some(Focal { gamma, alpha }) => {
                let p = activation::sigmoid(x);
                let p_t = p.clone() * t.clone()
                    + p.neg().add_scalar(1.0) * t.clone().neg().add_scalar(1.0);
                let loss = ce * p_t.neg().add_scalar(1.0).powf_scalar(gamma);
                match alpha {
                    Some(a) => {
                        (t.clone().mul_scalar(a)
                            + t.clone().neg().add_scalar(1.0).mul_scalar(1.0 - a))
                            * loss
                    }
                    None => loss,
                }
            }
        };
        if let Some(i) = o.ignore {
            let dtype = FloatDType::from(t.dtype());
            loss = loss * t.not_equal_elem(i).float().cast(dtype);
        }
        loss
    }

    #[test]
    fn equal_burns_composition() {
        let device = Device::flex().autodiff();
        let len = 3 * 4500;
        let make = |v: Vec<f64>, dtype: DType| {
            Tensor::<2>::from_data(TensorData::new(v, [3, 4500]), &device)
                .cast(FloatDType::from(dtype))
        };
        let xs: Vec<f64> = uniform(len, 1).iter().map(|u| 30.0 * u - 15.0).collect();
        let targets: Vec<f64> = uniform(len, 2)
            .iter()
            .map(|&u| if u < 0.1 { 255.0 } else { (u - 0.1) / 0.9 })
            .collect();
        let weights = uniform(len, 3);
        let mut options = Vec::new();
        for smooth in [None, Some(0.1)] {
            for ignore in [None, Some(255.0)] {
                options.push(BceOptions {
                    smooth,
                    ignore,
                    focal: None,
                });
            }
        }
        for gamma in [0.0, 0.5, 2.0, 3.0] {
            for alpha in [None, Some(0.25)] {
                options.push(BceOptions {
                    smooth: None,
                    ignore: Some(255.0),
                    focal: Some(Focal { gamma, alpha }),
                });
            }
        }
        for o in options {
            for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
                let (x0, t, w) = (
                    make(xs.clone(), dtype),
                    make(targets.clone(), dtype),
                    make(weights.clone(), dtype),
                );
                let run = |fused: bool| {
                    let x = x0.clone().require_grad();
                    let y = if fused {
                        super::bce_with_logits(x.clone(), t.clone(), o)
                    } else {
                        composed(x.clone(), t.clone(), &o)
                    };
                    let grads = (y.clone() * w.clone()).sum().backward();
                    [y.into_data(), x.grad(&grads).expect("dx").into_data()]
                };
                let (a, b) = (run(true), run(false));
                for (i, (a, b)) in a.into_iter().zip(b).enumerate() {
                    assert_close(a, b, tol, &format!("{o:?} {dtype:?} {}", ["loss", "dx"][i]));
                }
            }
        }
    }
}
