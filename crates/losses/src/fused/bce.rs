//! Binary cross-entropy on logits element by element, optionally focal-modulated
//! (torchvision's `sigmoid_focal_loss`), in one pass forward and one backward:
//!
//! ```text
//! t' = t·(1 − f) + (1 − t)·f                        (label smoothing f, else t' = t)
//! ce = (1 − t')·x − log σ(x)                        dce/dx = σ(x) − t'
//! focal:  p_t = σ(x)·t + (1 − σ(x))·(1 − t)  (smp: p_t = e^{−ce}),  m = (1 − p_t)^γ,
//!         α_t = α·t + (1 − α)·(1 − t),  ℓ = α_t·ce·m,  dℓ/dx = α_t·(dce·m + ce·dm/dx)
//!         dm/dx = γ(1 − p_t)^{γ−1}·(1 − 2t)·σ(1 − σ)   (smp: γ(1 − p_t)^{γ−1}·p_t·dce)
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

use super::common::{CHUNK, Float, dispatched, pow, tensor, values, with_float};

/// The focal modulation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Focal {
    pub gamma: f64,
    /// Weight of positives; `None` for no weighting (torchvision's `alpha < 0`).
    pub alpha: Option<f64>,
    /// smp's `p_t = e^{−ce}` (equal to torchvision's `σ·t + (1 − σ)·(1 − t)` for 0/1 targets,
    /// not for soft ones).
    pub pt_from_ce: bool,
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

/// `(ce, dce/dx, σ(x))` of one element, branch-free.
#[inline(always)]
fn cross_entropy<E: Float>(x: f64, soft: f64) -> (f64, f64, f64) {
    // e = e^{−|x|} ∈ (0, 1]: σ(x) and log σ(x) without overflow on either side.
    let e = E::wide_exp(-x.abs());
    let inv = 1.0 / (1.0 + e);
    let sigma = if x < 0.0 { e * inv } else { inv };
    let log_sigma = x.min(0.0) - E::wide_ln_1p(e);
    ((1.0 - soft) * x - log_sigma, sigma - soft, sigma)
}

/// Runs `$body` once per element of the chunk with `$x`, `$t` (as f64), the smoothed target
/// `$soft` and the validity `$valid` (1 or 0) bound — written as one straight loop per option
/// set so that it vectorises.
macro_rules! elements {
    ($o:expr, $len:expr, |$i:ident, $x:ident: $xs:expr, $t:ident: $ts:expr, $soft:ident, $valid:ident| $body:block) => {{
        // t·(1 − 2f) + f = t·(1 − f) + (1 − t)·f, and exactly t when f = 0.
        let f = $o.smooth.unwrap_or(0.0);
        let ignore = $o.ignore.unwrap_or(f64::NAN);
        for $i in 0..$len {
            let $x = $xs[$i].to_f64();
            let $t = $ts[$i].to_f64();
            let $soft = $t * (1.0 - 2.0 * f) + f;
            // NaN never equals: no ignore index, everything valid.
            let $valid = if $t == ignore { 0.0 } else { 1.0 };
            $body
        }
    }};
}

/// `(ℓ, dℓ/dx)` of one focal-modulated element (`ce` from [`cross_entropy`]); the forward uses
/// the value only, and the unused derivative is compiled away once this is inlined.
#[inline(always)]
fn focal_element<E: Float>(
    (ce, dce, sigma): (f64, f64, f64),
    t: f64,
    Focal {
        gamma,
        alpha,
        pt_from_ce,
    }: Focal,
) -> (f64, f64) {
    let e_ce = E::wide_exp(-ce);
    let pt = if pt_from_ce {
        e_ce
    } else {
        sigma * t + (1.0 - sigma) * (1.0 - t)
    };
    let y = 1.0 - pt;
    let (m, dm_dy) = if gamma == 2.0 {
        (y * y, 2.0 * y)
    } else {
        (pow::<E>(y, gamma), gamma * pow::<E>(y, gamma - 1.0))
    };
    // d(1 − p_t)/dx.
    let dy = if pt_from_ce {
        e_ce * dce
    } else {
        (1.0 - 2.0 * t) * sigma * (1.0 - sigma)
    };
    let a = alpha.map_or(1.0, |a| a * t + (1.0 - a) * (1.0 - t));
    (a * ce * m, a * (dce * m + ce * dm_dy * dy))
}

/// Element losses of one chunk.
#[inline(always)]
fn forward_chunk<E: Float>(xs: &[E], ts: &[E], o: &BceOptions, out: &mut [E]) {
    let len = out.len();
    match o.focal {
        None => elements!(o, len, |i, x: xs, t: ts, soft, valid| {
            out[i] = E::from_f64(valid * cross_entropy::<E>(x, soft).0);
        }),
        Some(focal) => elements!(o, len, |i, x: xs, t: ts, soft, valid| {
            let loss = focal_element::<E>(cross_entropy::<E>(x, soft), t, focal).0;
            out[i] = E::from_f64(valid * loss);
        }),
    }
}

/// dx of one chunk.
#[inline(always)]
fn backward_chunk<E: Float>(xs: &[E], ts: &[E], gs: &[E], o: &BceOptions, out: &mut [E]) {
    let len = out.len();
    match o.focal {
        None => elements!(o, len, |i, x: xs, t: ts, soft, valid| {
            out[i] = E::from_f64(gs[i].to_f64() * valid * cross_entropy::<E>(x, soft).1);
        }),
        Some(focal) => elements!(o, len, |i, x: xs, t: ts, soft, valid| {
            let d = focal_element::<E>(cross_entropy::<E>(x, soft), t, focal).1;
            out[i] = E::from_f64(gs[i].to_f64() * valid * d);
        }),
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
            Some(Focal {
                gamma,
                alpha,
                pt_from_ce,
            }) => {
                let p_t = if pt_from_ce {
                    ce.clone().neg().exp()
                } else {
                    let p = activation::sigmoid(x);
                    p.clone() * t.clone()
                        + p.neg().add_scalar(1.0) * t.clone().neg().add_scalar(1.0)
                };
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
                for pt_from_ce in [false, true] {
                    options.push(BceOptions {
                        smooth: None,
                        ignore: Some(255.0),
                        focal: Some(Focal {
                            gamma,
                            alpha,
                            pt_from_ce,
                        }),
                    });
                }
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

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let xs: Vec<f32> = uniform(1000, 1)
            .iter()
            .map(|u| (30.0 * u - 15.0) as f32)
            .collect();
        let ts: Vec<f32> = uniform(1000, 2).iter().map(|&u| u as f32).collect();
        let gs: Vec<f32> = uniform(1000, 3).iter().map(|&u| u as f32).collect();
        for focal in [
            None,
            Some(Focal {
                gamma: 1.5,
                alpha: Some(0.25),
                pt_from_ce: true,
            }),
        ] {
            let o = BceOptions {
                smooth: Some(0.1),
                ignore: None,
                focal,
            };
            let (mut a, mut b) = (vec![0f32; 1000], vec![0f32; 1000]);
            super::forward_chunk(&xs, &ts, &o, &mut a);
            super::forward_dispatched(&xs, &ts, &o, &mut b);
            assert_eq!(a, b, "forward {o:?}");
            super::backward_chunk(&xs, &ts, &gs, &o, &mut a);
            super::backward_dispatched(&xs, &ts, &gs, &o, &mut b);
            assert_eq!(a, b, "backward {o:?}");
        }
    }
}
