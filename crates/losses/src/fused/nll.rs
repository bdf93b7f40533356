//! Softmax cross-entropy per pixel against class indices, in one pass forward and one
//! backward (Burn's composition: log-softmax, a one-hot of the targets, masks, products and
//! class sums, each a full-size pass, and as many again backward):
//!
//! ```text
//! log p = log_softmax(x, 1)        w: class weights (1 without)      W = Σ_c w_c
//! ℓ     = v·[(1 − ε)·w_t·(−log p_t) + (ε/C)·(−Σ_c w_c·log p_c)]          v = [t ≠ ignore]
//! dℓ/dx_j = v·[(1 − ε)·w_t·(p_j − [j = t]) + (ε/C)·(p_j·W − w_j)]
//! focal:  ℓ' = (1 − e^{−ℓ})^γ·ℓ,  dℓ'/dx = dℓ/dx·((1 − e^{−ℓ})^γ + ℓ·γ(1 − e^{−ℓ})^{γ−1}·e^{−ℓ})
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
use burn::tensor::{Shape, Tensor};
use rayon::prelude::*;

use super::common::{CHUNK, Float, dispatched, ncs, pow, tensor, values, with_float};

/// The op's options.
#[derive(Debug, Clone, PartialEq)]
pub struct NllOptions {
    /// Class index whose pixels count zero.
    pub ignore: Option<f64>,
    /// Label smoothing ε.
    pub smoothing: f64,
    /// Per-class weights.
    pub weight: Option<Vec<f64>>,
    /// Focal modulation of each pixel's loss, `(1 − e^{−ℓ})^γ·ℓ` (smp's
    /// `softmax_focal_loss_with_logits`).
    pub focal_gamma: Option<f64>,
}

/// The backend extension: implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait NllKernels: Backend {
    /// `[N, 1, S]` losses of logits `[N, C, S]` against class indices `[N, 1, S]` (no
    /// gradient to the targets).
    fn kindling_softmax_nll(
        x: FloatTensor<Self>,
        target: FloatTensor<Self>,
        options: NllOptions,
    ) -> FloatTensor<Self>;
}

pub fn softmax_nll(x: Tensor<3>, target: Tensor<3>, options: NllOptions) -> Tensor<3> {
    Tensor::from_dispatch(<Dispatch as NllKernels>::kindling_softmax_nll(
        x.into_dispatch(),
        target.into_dispatch(),
        options,
    ))
}

/// One run of pixels of one sample.
struct Run<'a, E> {
    /// The sample's logits, `[C, S]`.
    x: &'a [E],
    /// The run's class indices.
    ids: &'a [E],
    /// First pixel.
    s0: usize,
    s: usize,
    c: usize,
}

/// Per pixel of the run: the class max, Σ e^(x − max), and with `keep` every e^(x − max)
/// (`c` rows of the run's length; the backward's softmax without a second exponential).
#[inline(always)]
fn softmax_stats<E: Float>(r: &Run<'_, E>, keep: bool) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let len = r.ids.len();
    let row = |ci: usize| &r.x[ci * r.s + r.s0..][..len];
    // Plain indexed loops throughout: an iterator adaptor's `fold` is not always inlined
    // into the AVX2 build, and a call per element leaves the loop scalar.
    let first = row(0);
    let mut max = vec![0f64; len];
    for i in 0..len {
        max[i] = first[i].to_f64();
    }
    for ci in 1..r.c {
        let xr = row(ci);
        for i in 0..len {
            max[i] = max[i].max(xr[i].to_f64());
        }
    }
    let mut sum = vec![0f64; len];
    let mut exps = vec![0f64; if keep { r.c * len } else { 0 }];
    for ci in 0..r.c {
        let xr = row(ci);
        if keep {
            let e = &mut exps[ci * len..][..len];
            for i in 0..len {
                e[i] = E::wide_exp(xr[i].to_f64() - max[i]);
                sum[i] += e[i];
            }
        } else {
            for i in 0..len {
                sum[i] += E::wide_exp(xr[i].to_f64() - max[i]);
            }
        }
    }
    (max, sum, exps)
}

/// Per pixel of the run: the target class (as f64), its weight (0 where ignored: an ignore
/// index inside [0, C) must not select a class) and the validity — one scalar pass per pixel,
/// so the per-class loops below are branch-free and vectorise.
#[inline(always)]
fn targets<E: Float>(r: &Run<'_, E>, o: &NllOptions) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let len = r.ids.len();
    let (mut t, mut wt, mut valid) = (vec![0.0; len], vec![0.0; len], vec![0.0; len]);
    for i in 0..len {
        let id = r.ids[i].to_f64();
        let kept = o.ignore != Some(id);
        t[i] = if kept { id } else { -1.0 };
        valid[i] = if kept { 1.0 } else { 0.0 };
        wt[i] = match (&o.weight, kept) {
            (_, false) => 0.0,
            (Some(w), true) => w[id as usize],
            (None, true) => 1.0,
        };
    }
    (t, wt, valid)
}

/// The weight of class `ci` (1 without weights).
#[inline(always)]
fn class_weight(o: &NllOptions, ci: usize) -> f64 {
    o.weight.as_ref().map_or(1.0, |w| w[ci])
}

/// The unmodulated losses of one run: `(1 − ε)·w_t·(m + ln z − x_t) + (ε/C)·v·Σ_c w_c·(m + ln z − x_c)`.
#[inline(always)]
fn pixel_losses<E: Float>(
    r: &Run<'_, E>,
    o: &NllOptions,
    (max, sum): (&[f64], &[f64]),
    (t, wt, valid): (&[f64], &[f64], &[f64]),
) -> Vec<f64> {
    let len = r.ids.len();
    let (c, eps) = (r.c, o.smoothing);
    // Per pixel: m + ln z (the log-partition), x_t, and Σ_c w_c·x_c.
    let mut log_z = vec![0f64; len];
    for i in 0..len {
        log_z[i] = max[i] + E::wide_ln(sum[i]);
    }
    let (mut x_t, mut weighted) = (vec![0f64; len], vec![0f64; len]);
    let mut total = 0.0;
    let t = &t[..len];
    for ci in 0..c {
        let xr = &r.x[ci * r.s + r.s0..][..len];
        let (x_t, weighted) = (&mut x_t[..len], &mut weighted[..len]);
        let (class, wc) = (ci as f64, class_weight(o, ci));
        total += wc;
        for i in 0..len {
            let x = xr[i].to_f64();
            x_t[i] += if t[i] == class { x } else { 0.0 };
            weighted[i] += wc * x;
        }
    }
    let smooth_scale = eps / c as f64;
    let mut loss = vec![0f64; len];
    let (out, wt, valid) = (&mut loss[..len], &wt[..len], &valid[..len]);
    let (log_z, x_t, weighted) = (&log_z[..len], &x_t[..len], &weighted[..len]);
    for i in 0..len {
        let nll = (1.0 - eps) * wt[i] * (log_z[i] - x_t[i]);
        let smooth = valid[i] * (total * log_z[i] - weighted[i]);
        out[i] = nll + smooth_scale * smooth;
    }
    loss
}

/// The focal modulation `(1 − e^{−ℓ})^γ` of a loss and its derivative by ℓ's factor:
/// `d[(1 − e^{−ℓ})^γ·ℓ]/dℓ`.
#[inline(always)]
fn focal<E: Float>(loss: f64, gamma: f64) -> (f64, f64) {
    let e = E::wide_exp(-loss);
    let y = 1.0 - e;
    let m = pow::<E>(y, gamma);
    let dm = if gamma == 0.0 {
        0.0
    } else {
        gamma * pow::<E>(y, gamma - 1.0) * e
    };
    (m * loss, m + loss * dm)
}

/// Losses of one run; with a focal modulation also each pixel's chain factor
/// `d[(1 − e^{−ℓ})^γ·ℓ]/dℓ` into `factor` (kept for the backward, so it need not recompute ℓ).
#[inline(always)]
fn forward_run<E: Float>(r: &Run<'_, E>, o: &NllOptions, out: &mut [E], factor: &mut [E]) {
    let (max, sum, _) = softmax_stats(r, false);
    let (t, wt, valid) = targets(r, o);
    let loss = pixel_losses(r, o, (&max, &sum), (&t, &wt, &valid));
    let out = &mut out[..loss.len()];
    match o.focal_gamma {
        None => {
            for i in 0..out.len() {
                out[i] = E::from_f64(loss[i]);
            }
        }
        Some(gamma) => {
            let factor = &mut factor[..loss.len()];
            for i in 0..out.len() {
                let (value, chain) = focal::<E>(loss[i], gamma);
                out[i] = E::from_f64(value);
                factor[i] = E::from_f64(chain);
            }
        }
    }
}

/// dx of one run into the sample's `[C, S]` gradient rows (`outs[ci]` is the run's slice).
#[inline(always)]
fn backward_run<E: Float>(
    r: &Run<'_, E>,
    o: &NllOptions,
    (g, factor): (&[E], &[E]),
    outs: &mut [&mut [E]],
) {
    let (_, sum, exps) = softmax_stats(r, true);
    let (t, wt, valid) = targets(r, o);
    let len = r.ids.len();
    let (c, eps) = (r.c, o.smoothing);
    let total: f64 = (0..c).map(|ci| class_weight(o, ci)).sum();
    // Per pixel: g·v (the upstream gradient where the pixel counts) and 1/z.
    let (mut gv, mut inv_z) = (vec![0f64; len], vec![0f64; len]);
    for i in 0..len {
        gv[i] = g[i].to_f64() * valid[i];
        inv_z[i] = 1.0 / sum[i];
    }
    if o.focal_gamma.is_some() {
        // Chain rule through the per-pixel modulation (its factor kept by the forward).
        let factor = &factor[..len];
        for i in 0..len {
            gv[i] *= factor[i].to_f64();
        }
    }
    let smooth_scale = eps / c as f64;
    // Every slice cut to `len`, so the loop has no bounds checks and vectorises.
    let (inv_z, t, wt, gv) = (&inv_z[..len], &t[..len], &wt[..len], &gv[..len]);
    for (ci, out) in outs.iter_mut().enumerate() {
        let e = &exps[ci * len..][..len];
        let out = &mut out[..len];
        let (class, wc) = (ci as f64, class_weight(o, ci));
        for i in 0..len {
            let p = e[i] * inv_z[i];
            let hot = if t[i] == class { 1.0 } else { 0.0 };
            let d = (1.0 - eps) * wt[i] * (p - hot) + smooth_scale * (p * total - wc);
            out[i] = E::from_f64(gv[i] * d);
        }
    }
}

dispatched! {
    fn forward_dispatched(r: &Run<'_, E>, o: &NllOptions, out: &mut [E], factor: &mut [E]) -> () =
        forward_run
}

dispatched! {
    fn backward_dispatched(
        r: &Run<'_, E>,
        o: &NllOptions,
        grads: (&[E], &[E]),
        outs: &mut [&mut [E]],
    ) -> () = backward_run
}

/// The losses `[N·S]` and, with a focal modulation, the per-pixel chain factors (else empty).
fn forward_kernel<E: Float>(
    x: &[E],
    ids: &[E],
    (n, c, s): (usize, usize, usize),
    o: &NllOptions,
) -> (Vec<E>, Vec<E>) {
    let focal = o.focal_gamma.is_some();
    let mut out = vec![E::ZERO; n * s];
    // Without a modulation the factors are never written: an empty slice per chunk.
    let mut factor = vec![E::ZERO; if focal { n * s } else { 0 }];
    if s == 0 {
        return (out, factor);
    }
    let run = |b: usize, k: usize, out: &mut [E], factor: &mut [E]| {
        let s0 = k * CHUNK;
        let r = Run {
            x: &x[b * c * s..][..c * s],
            ids: &ids[b * s + s0..][..out.len()],
            s0,
            s,
            c,
        };
        forward_dispatched(&r, o, out, factor);
    };
    if focal {
        out.par_chunks_mut(s)
            .zip(factor.par_chunks_mut(s))
            .enumerate()
            .for_each(|(b, (out_b, factor_b))| {
                out_b
                    .par_chunks_mut(CHUNK)
                    .zip(factor_b.par_chunks_mut(CHUNK))
                    .enumerate()
                    .for_each(|(k, (out, factor))| run(b, k, out, factor));
            });
    } else {
        out.par_chunks_mut(s).enumerate().for_each(|(b, out_b)| {
            out_b
                .par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(k, out)| run(b, k, out, &mut []));
        });
    }
    (out, factor)
}

fn backward_kernel<E: Float>(
    (x, ids): (&[E], &[E]),
    (g, factor): (&[E], &[E]),
    (_, c, s): (usize, usize, usize),
    o: &NllOptions,
) -> Vec<E> {
    let mut dx = vec![E::ZERO; x.len()];
    if dx.is_empty() {
        return dx;
    }
    // One task per run of pixels, holding that run's slice of every class row.
    let pieces = s.div_ceil(CHUNK);
    let mut tasks: Vec<Vec<&mut [E]>> = (0..dx.len() / (c * s) * pieces)
        .map(|_| Vec::with_capacity(c))
        .collect();
    for (row, values) in dx.chunks_mut(s).enumerate() {
        for (k, part) in values.chunks_mut(CHUNK).enumerate() {
            tasks[row / c * pieces + k].push(part);
        }
    }
    tasks
        .into_par_iter()
        .enumerate()
        .for_each(|(task, mut outs)| {
            let (b, s0) = (task / pieces, (task % pieces) * CHUNK);
            let len = outs[0].len();
            let r = Run {
                x: &x[b * c * s..][..c * s],
                ids: &ids[b * s + s0..][..len],
                s0,
                s,
                c,
            };
            let factor = if factor.is_empty() {
                factor
            } else {
                &factor[b * s + s0..][..len]
            };
            backward_dispatched(&r, o, (&g[b * s + s0..][..len], factor), &mut outs);
        });
    dx
}

/// The losses and, with a focal modulation, the chain factors the backward needs.
fn forward_flex(x: &FlexTensor, ids: &FlexTensor, o: &NllOptions) -> (FlexTensor, FlexTensor) {
    let dims = ncs(&x.shape());
    with_float!(x.dtype(), E => {
        let (out, factor) = forward_kernel::<E>(&values(x), &values(ids), dims, o);
        let len = factor.len();
        (tensor(out, Shape::new([dims.0, 1, dims.2])), tensor(factor, Shape::new([len])))
    })
}

impl NllKernels for Flex {
    fn kindling_softmax_nll(x: FlexTensor, target: FlexTensor, o: NllOptions) -> FlexTensor {
        forward_flex(&x, &target, &o).0
    }
}

#[derive(Debug)]
struct NllBackward;

impl Backward<Flex, 1> for NllBackward {
    /// The logits, the class indices, the focal chain factors (empty without) and the options.
    type State = (FlexTensor, FlexTensor, FlexTensor, NllOptions);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, ids, factor, o) = ops.state;
        if let Some(node) = parent {
            let shape = x.shape();
            let dx = with_float!(x.dtype(), E => tensor(
                backward_kernel::<E>(
                    (&values(&x), &values(&ids)),
                    (&values(&dy), &values(&factor)),
                    ncs(&shape),
                    &o,
                ),
                shape,
            ));
            grads.register::<Flex>(node.id, dx);
        }
    }
}

impl<C: CheckpointStrategy> NllKernels for Autodiff<Flex, C> {
    fn kindling_softmax_nll(
        x: FloatTensor<Self>,
        target: FloatTensor<Self>,
        o: NllOptions,
    ) -> FloatTensor<Self> {
        let target = target.into_primitive();
        match NllBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, factor) = forward_flex(x.primitive(), &target, &o);
                prep.finish((x.into_primitive(), target, factor, o), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward_flex(x.primitive(), &target, &o).0),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{DType, Device, FloatDType, Int, Tensor, TensorData, activation};

    use super::NllOptions;
    use crate::fused::activations::tests::assert_close;
    use crate::fused::overlap::tests::uniform;

    /// The same losses composed from Burn's ops (cross_entropy's fallback).
    fn composed(x: Tensor<3>, ids: Tensor<3>, o: &NllOptions) -> Tensor<3> {
        let [n, c, s] = x.dims();
        let dtype = FloatDType::from(x.dtype());
        let logp = activation::log_softmax(x, 1);
        let valid = match o.ignore {
            Some(i) => ids.clone().not_equal_elem(i).float().cast(dtype),
            None => ids.ones_like(),
        };
        let classes = Tensor::<1, Int>::arange(0..c as i64, &logp.device())
            .float()
            .cast(dtype)
            .reshape([1, c, 1])
            .expand([n, c, s]);
        let hot = ids.expand([n, c, s]).equal(classes).float().cast(dtype) * valid.clone();
        let w = o.weight.as_ref().map(|w| {
            Tensor::<1>::from_data(TensorData::new(w.clone(), [c]), &logp.device())
                .cast(dtype)
                .reshape([1, c, 1])
        });
        let (hot_w, logp_w) = match &w {
            Some(w) => (hot * w.clone(), logp.clone() * w.clone()),
            None => (hot, logp.clone()),
        };
        let loss = (logp * hot_w)
            .sum_dim(1)
            .neg()
            .mul_scalar(1.0 - o.smoothing);
        let loss = loss + (logp_w.sum_dim(1).neg() * valid).mul_scalar(o.smoothing / c as f64);
        match o.focal_gamma {
            Some(gamma) => {
                let term = loss.clone().neg().exp().neg().add_scalar(1.0);
                term.powf_scalar(gamma) * loss
            }
            None => loss,
        }
    }

    #[test]
    fn equal_burns_composition() {
        let device = Device::flex().autodiff();
        let (n, c, s) = (3, 5, 4200);
        let make = |v: Vec<f64>, shape: [usize; 3], dtype: DType| {
            Tensor::<3>::from_data(TensorData::new(v, shape), &device).cast(FloatDType::from(dtype))
        };
        let xs: Vec<f64> = uniform(n * c * s, 1)
            .iter()
            .map(|u| 16.0 * u - 8.0)
            .collect();
        let ids: Vec<f64> = uniform(n * s, 2)
            .iter()
            .map(|&u| {
                if u < 0.1 {
                    255.0
                } else {
                    ((u - 0.1) / 0.9 * c as f64).floor().min(4.0)
                }
            })
            .collect();
        let grads = uniform(n * s, 3);
        for weight in [None, Some(vec![0.5, 2.0, 1.0, 0.25, 3.0])] {
            for smoothing in [0.0, 0.1] {
                for (ignore, focal_gamma) in [
                    (None, None),
                    (Some(255.0), None),
                    (Some(2.0), None),
                    (None, Some(2.0)),
                    (Some(255.0), Some(0.5)),
                    (None, Some(0.0)),
                ] {
                    let o = NllOptions {
                        ignore,
                        smoothing,
                        weight: weight.clone(),
                        focal_gamma,
                    };
                    // Every target is a class or the ignore index (checked before the op).
                    let ids: Vec<f64> = ids
                        .iter()
                        .map(|&t| {
                            if ignore != Some(255.0) && t == 255.0 {
                                1.0
                            } else {
                                t
                            }
                        })
                        .collect();
                    for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
                        let x0 = make(xs.clone(), [n, c, s], dtype);
                        let t = make(ids.clone(), [n, 1, s], dtype);
                        let g = make(grads.clone(), [n, 1, s], dtype);
                        let run = |fused: bool| {
                            let x = x0.clone().require_grad();
                            let y = if fused {
                                super::softmax_nll(x.clone(), t.clone(), o.clone())
                            } else {
                                composed(x.clone(), t.clone(), &o)
                            };
                            let grads = (y.clone() * g.clone()).sum().backward();
                            [y.into_data(), x.grad(&grads).expect("dx").into_data()]
                        };
                        let (a, b) = (run(true), run(false));
                        for (i, (a, b)) in a.into_iter().zip(b).enumerate() {
                            assert_close(
                                a,
                                b,
                                tol,
                                &format!("{o:?} {dtype:?} {}", ["loss", "dx"][i]),
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let (c, s) = (4, 1000);
        let x: Vec<f32> = uniform(c * s, 1)
            .iter()
            .map(|u| (16.0 * u - 8.0) as f32)
            .collect();
        let ids: Vec<f32> = uniform(s, 2)
            .iter()
            .map(|u| (u * 4.0).floor() as f32)
            .collect();
        let g: Vec<f32> = uniform(s, 3).iter().map(|&u| u as f32).collect();
        let o = NllOptions {
            ignore: Some(1.0),
            smoothing: 0.1,
            weight: Some(vec![1.0, 2.0, 0.5, 3.0]),
            focal_gamma: Some(1.5),
        };
        let r = super::Run {
            x: &x,
            ids: &ids,
            s0: 0,
            s,
            c,
        };
        let (mut a, mut b) = (vec![0f32; s], vec![0f32; s]);
        let (mut fa, mut fb) = (vec![0f32; s], vec![0f32; s]);
        super::forward_run(&r, &o, &mut a, &mut fa);
        super::forward_dispatched(&r, &o, &mut b, &mut fb);
        assert_eq!((&a, &fa), (&b, &fb), "forward");
        let (mut a, mut b) = (vec![0f32; c * s], vec![0f32; c * s]);
        let mut rows_a: Vec<&mut [f32]> = a.chunks_mut(s).collect();
        let mut rows_b: Vec<&mut [f32]> = b.chunks_mut(s).collect();
        super::backward_run(&r, &o, (&g, &fa), &mut rows_a);
        super::backward_dispatched(&r, &o, (&g, &fa), &mut rows_b);
        assert_eq!(a, b, "backward");
    }
}
