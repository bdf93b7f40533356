//! The per-class sums every overlap loss is built from, in one pass forward and one backward:
//!
//! ```text
//! p = act(x)  (identity, σ, e^{log σ} or e^{log_softmax} over dim 1)      v = [t ≠ ignore]
//! out[P, c]   = Σ_{n,s} v·p          out[T, c]  = Σ v·t
//! out[ABS, c] = Σ |v·p − v·t|        out[PT, c] = Σ v·p·t
//! out[BCE, c] = Σ v·bce(p, t)        (PyTorch's binary_cross_entropy on probabilities)
//! ```
//!
//! Burn's composition of the same sums (activation, one-hot, masks, `abs`, five reductions and
//! their backward) is ~25 full-size passes; here the forward reads `x` and the target once, and
//! the backward recomputes `p` from `x` and writes `dx` once. Sums are accumulated in f64 within
//! fixed chunks and the chunks added in order, so results do not depend on the thread count.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Shape, Tensor};
use rayon::prelude::*;

use super::common::{CHUNK, Float, dispatched, ncs, tensor, values, with_float};

/// Rows of the output, one sum each.
pub const P: usize = 0;
pub const T: usize = 1;
pub const ABS: usize = 2;
pub const PT: usize = 3;
pub const BCE: usize = 4;
pub const ROWS: usize = 5;

/// How the input becomes probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The input already holds probabilities.
    Identity,
    /// `e^{log σ(x)}` (smp's route through log-space), derivative `p·σ(−x)`.
    LogSigmoid,
    /// `σ(x)` as `torch.sigmoid`, derivative `p·(1 − p)`.
    Sigmoid,
    /// `e^{log_softmax(x, 1)}`.
    LogSoftmax,
}

/// The op's options.
#[derive(Debug, Clone, Copy)]
pub struct OverlapOptions {
    pub activation: Activation,
    /// The target is `[N, 1, S]` class indices (one-hot per class) rather than `[N, C, S]`.
    pub class_ids: bool,
    /// Target value (or class index) whose elements (pixels) do not count.
    pub ignore: Option<f64>,
    /// Whether the BCE row is computed (two logarithms per element).
    pub bce: bool,
}

/// The backend extension: implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait OverlapKernels: Backend {
    /// `[ROWS, C]` sums of `x: [N, C, S]` against `target` (no gradient to the target).
    fn kindling_overlap_sums(
        x: FloatTensor<Self>,
        target: FloatTensor<Self>,
        options: OverlapOptions,
    ) -> FloatTensor<Self>;
}

pub fn overlap_sums(x: Tensor<3>, target: Tensor<3>, options: OverlapOptions) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as OverlapKernels>::kindling_overlap_sums(
        x.into_dispatch(),
        target.into_dispatch(),
        options,
    ))
}

/// One run of `len` pixels `s0..s0 + len` of sample `b`.
#[derive(Clone, Copy)]
struct Run {
    b: usize,
    s0: usize,
    len: usize,
}

/// The runs work is split into: whole samples cut into CHUNK-pixel pieces.
fn runs(n: usize, s: usize) -> Vec<Run> {
    let pieces = s.div_ceil(CHUNK).max(1);
    (0..n * pieces)
        .map(|k| {
            let (b, piece) = (k / pieces, k % pieces);
            let s0 = piece * CHUNK;
            Run {
                b,
                s0,
                len: CHUNK.min(s - s0),
            }
        })
        .collect()
}

/// `p = act(x)` in f64 for every class row of a run: `c` rows of `r.len`.
#[inline(always)]
fn probabilities<E: Float>(
    activation: Activation,
    x: &[E],
    (c, s): (usize, usize),
    r: Run,
) -> Vec<f64> {
    let row = |ci: usize| &x[(r.b * c + ci) * s + r.s0..][..r.len];
    let mut p = vec![0f64; c * r.len];
    if activation == Activation::LogSoftmax {
        // Indexed loops: an iterator adaptor's `fold` is not always inlined into the AVX2
        // build.
        let first = row(0);
        let mut max = vec![0f64; r.len];
        for i in 0..r.len {
            max[i] = first[i].to_f64();
        }
        for ci in 1..c {
            for (m, &v) in max.iter_mut().zip(row(ci)) {
                *m = m.max(v.to_f64());
            }
        }
        let mut sum = vec![0f64; r.len];
        for (ci, pc) in p.chunks_exact_mut(r.len).enumerate() {
            for (((p, t), &v), &m) in pc.iter_mut().zip(&mut sum).zip(row(ci)).zip(&max) {
                *p = E::wide_exp(v.to_f64() - m);
                *t += *p;
            }
        }
        for pc in p.chunks_exact_mut(r.len) {
            for (p, &t) in pc.iter_mut().zip(&sum) {
                *p /= t;
            }
        }
        return p;
    }
    for (ci, pc) in p.chunks_exact_mut(r.len).enumerate() {
        let xr = row(ci);
        match activation {
            Activation::LogSigmoid => {
                // e^{log σ(x)} = σ(x), exactly in real arithmetic; computed from e^{−|x|} with
                // one exponential (f64 leaves both forms within an ulp of f32's).
                for (p, &v) in pc.iter_mut().zip(xr) {
                    let v = v.to_f64();
                    let e = E::wide_exp(-v.abs());
                    *p = if v < 0.0 { e } else { 1.0 } / (1.0 + e);
                }
            }
            Activation::Sigmoid => {
                for (p, &v) in pc.iter_mut().zip(xr) {
                    *p = 1.0 / (1.0 + E::wide_exp(-v.to_f64()));
                }
            }
            _ => {
                for (p, &v) in pc.iter_mut().zip(xr) {
                    *p = v.to_f64();
                }
            }
        }
    }
    p
}

/// The target (zero where ignored) and validity (1 or 0) of one element, branch-free:
/// `ignore` is NaN without an ignore index (NaN never equals), `class` the row's class.
#[inline(always)]
fn truth_of(y: f64, ignore: f64, class_ids: bool, class: f64) -> (f64, f64) {
    let valid = if y == ignore { 0.0 } else { 1.0 };
    let hot = if y == class { 1.0 } else { 0.0 };
    (if class_ids { hot } else { y } * valid, valid)
}

/// ln(u) for u ≥ 0, −∞ at 0.
#[inline(always)]
fn ln_or_minus_infinity<E: Float>(u: f64) -> f64 {
    if u >= f64::MIN_POSITIVE {
        E::wide_ln(u)
    } else {
        f64::NEG_INFINITY
    }
}

/// PyTorch's `binary_cross_entropy` element: `−(t·max(ln p, −100) + (1 − t)·max(ln(1 − p), −100))`.
#[inline(always)]
fn bce<E: Float>(p: f64, t: f64) -> f64 {
    let lp = ln_or_minus_infinity::<E>(p).max(-100.0);
    let lq = ln_or_minus_infinity::<E>(1.0 - p).max(-100.0);
    -(t * lp + (1.0 - t) * lq)
}

/// Its derivative as PyTorch's backward computes it: `(p − t) / max(p·(1 − p), 1e-12)`.
#[inline(always)]
fn bce_grad(p: f64, t: f64) -> f64 {
    (p - t) / ((1.0 - p) * p).max(1e-12)
}

/// The target of pixels `r` for class row `ci` (the class-id plane when `class_ids`).
#[inline(always)]
fn target_row<'a, E>(
    target: &'a [E],
    o: &OverlapOptions,
    (c, s): (usize, usize),
    ci: usize,
    r: Run,
) -> &'a [E] {
    let plane = if o.class_ids { r.b } else { r.b * c + ci };
    &target[plane * s + r.s0..][..r.len]
}

/// The `[ROWS, C]` sums of one run: one pass per class row, eight f64 lanes per sum (so
/// the loop vectorises; the lanes and the tail are added in a fixed order).
#[inline(always)]
fn forward_run<E: Float>(
    x: &[E],
    target: &[E],
    (c, s): (usize, usize),
    o: &OverlapOptions,
    r: Run,
) -> Vec<f64> {
    let len = r.len;
    let probs = probabilities(o.activation, x, (c, s), r);
    let ignore = o.ignore.unwrap_or(f64::NAN);
    let mut acc = vec![0f64; ROWS * c];
    let whole = len - len % 8;
    for ci in 0..c {
        let p = &probs[ci * len..][..len];
        let y = &target_row(target, o, (c, s), ci, r)[..len];
        let class = ci as f64;
        let mut lanes = [[0f64; 8]; 4];
        for k in 0..whole / 8 {
            for j in 0..8 {
                let i = k * 8 + j;
                let (t, v) = truth_of(y[i].to_f64(), ignore, o.class_ids, class);
                let pv = p[i] * v;
                lanes[0][j] += pv;
                lanes[1][j] += t;
                lanes[2][j] += (pv - t).abs();
                lanes[3][j] += pv * t;
            }
        }
        let mut sums = [0f64; 4];
        for (sum, lane) in sums.iter_mut().zip(&lanes) {
            *sum = lane.iter().sum();
        }
        let mut tail = [0f64; 4];
        for i in whole..len {
            let (t, v) = truth_of(y[i].to_f64(), ignore, o.class_ids, class);
            let pv = p[i] * v;
            tail[0] += pv;
            tail[1] += t;
            tail[2] += (pv - t).abs();
            tail[3] += pv * t;
        }
        acc[P * c + ci] = sums[0] + tail[0];
        acc[T * c + ci] = sums[1] + tail[1];
        acc[ABS * c + ci] = sums[2] + tail[2];
        acc[PT * c + ci] = sums[3] + tail[3];
        if o.bce {
            // The terms first, in their own loop (with the sums above in it, LLVM left this
            // one scalar), then summed like the others.
            let mut terms = vec![0f64; len];
            for i in 0..len {
                let (t, v) = truth_of(y[i].to_f64(), ignore, o.class_ids, class);
                terms[i] = v * bce::<E>(p[i], t);
            }
            let mut lanes = [0f64; 8];
            for k in 0..whole / 8 {
                for j in 0..8 {
                    lanes[j] += terms[k * 8 + j];
                }
            }
            let tail: f64 = terms[whole..].iter().sum();
            acc[BCE * c + ci] = lanes.iter().sum::<f64>() + tail;
        }
    }
    acc
}

dispatched! {
    fn forward_run_dispatched(
        x: &[E],
        target: &[E],
        cs: (usize, usize),
        o: &OverlapOptions,
        r: Run,
    ) -> Vec<f64> = forward_run
}

dispatched! {
    fn backward_run_dispatched(
        inputs: (&[E], &[E], &[f64]),
        cs: (usize, usize),
        o: &OverlapOptions,
        r: Run,
        outs: &mut [&mut [E]],
    ) -> () = backward_run
}

/// Computed in f64 whatever E is (rounded once, into the sums and dx): the softmax backward
/// cancels `dy_c − p_c·Σ dy` to ~1e-3 of its terms, where f32 intermediates leave ~1e-4
/// relative error — the size of the PyTorch parity tolerance.
fn forward_kernel<E: Float>(
    x: &[E],
    target: &[E],
    (n, c, s): (usize, usize, usize),
    o: &OverlapOptions,
) -> Vec<E> {
    let partials: Vec<Vec<f64>> = runs(n, s)
        .into_par_iter()
        .map(|r| forward_run_dispatched(x, target, (c, s), o, r))
        .collect();
    let mut total = vec![0f64; ROWS * c];
    for partial in partials {
        for (a, b) in total.iter_mut().zip(partial) {
            *a += b;
        }
    }
    total.into_iter().map(E::from_f64).collect()
}

/// dx of one run into `outs` (that run's slice of every class row).
#[inline(always)]
fn backward_run<E: Float>(
    (x, target, g): (&[E], &[E], &[f64]),
    (c, s): (usize, usize),
    o: &OverlapOptions,
    r: Run,
    outs: &mut [&mut [E]],
) {
    let softmax = o.activation == Activation::LogSoftmax;
    let probs = probabilities(o.activation, x, (c, s), r);
    let ignore = o.ignore.unwrap_or(f64::NAN);
    let mut dy = vec![0f64; if softmax { c * r.len } else { r.len }];
    // Σ_c p_c·dp_c per pixel (softmax only).
    let mut coupled = vec![0f64; r.len];
    for ci in 0..c {
        let p = &probs[ci * r.len..][..r.len];
        let xr = &x[(r.b * c + ci) * s + r.s0..][..r.len];
        let y = &target_row(target, o, (c, s), ci, r)[..r.len];
        let class = ci as f64;
        let (gp, ga) = (g[P * c + ci], g[ABS * c + ci]);
        let (gpt, gb) = (g[PT * c + ci], g[BCE * c + ci]);
        let out = &mut dy[if softmax { ci * r.len } else { 0 }..][..r.len];
        // dL/dp, then through the activation: separate straight loops (a `match` inside the
        // loop would keep it scalar).
        let gb = if o.bce { gb } else { 0.0 };
        for i in 0..r.len {
            let pi = p[i];
            let (ti, vi) = truth_of(y[i].to_f64(), ignore, o.class_ids, class);
            let pv = pi * vi;
            let sign = if pv > ti { 1.0 } else { 0.0 } - if pv < ti { 1.0 } else { 0.0 };
            let bce = if o.bce { gb * bce_grad(pi, ti) } else { 0.0 };
            out[i] = (gp + gpt * ti + ga * sign + bce) * vi;
        }
        match o.activation {
            Activation::Identity => {}
            Activation::Sigmoid => {
                for i in 0..r.len {
                    out[i] *= p[i] * (1.0 - p[i]);
                }
            }
            Activation::LogSigmoid => {
                for i in 0..r.len {
                    let xv = xr[i].to_f64();
                    let e = E::wide_exp(-xv.abs());
                    let top = if xv < 0.0 { 1.0 } else { e };
                    out[i] *= p[i] * (top / (1.0 + e));
                }
            }
            Activation::LogSoftmax => {
                for i in 0..r.len {
                    out[i] *= p[i];
                    coupled[i] += out[i];
                }
            }
        }
        if !softmax {
            for (o, &d) in outs[ci].iter_mut().zip(out.iter()) {
                *o = E::from_f64(d);
            }
        }
    }
    if softmax {
        // dx_c = dy_c − p_c·Σ_k dy_k.
        for (ci, out) in outs.iter_mut().enumerate() {
            let p = &probs[ci * r.len..][..r.len];
            let dyc = &dy[ci * r.len..][..r.len];
            for (((o, &pi), &k), &d) in out.iter_mut().zip(p).zip(&coupled).zip(dyc) {
                *o = E::from_f64(d - pi * k);
            }
        }
    }
}

/// In f64 like the forward.
fn backward_kernel<E: Float>(
    x: &[E],
    target: &[E],
    grad: &[E],
    (_, c, s): (usize, usize, usize),
    o: &OverlapOptions,
) -> Vec<E> {
    let g: Vec<f64> = grad.iter().map(|v| v.to_f64()).collect();
    let mut dx = vec![E::ZERO; x.len()];
    if dx.is_empty() {
        return dx;
    }
    // One task per run of pixels, holding that run's slice of every class row (the softmax
    // couples a pixel's classes, which lie `s` apart).
    let pieces = s.div_ceil(CHUNK).max(1);
    let mut tasks: Vec<Vec<&mut [E]>> = (0..dx.len() / (c * s) * pieces)
        .map(|_| Vec::with_capacity(c))
        .collect();
    for (row, values) in dx.chunks_mut(s).enumerate() {
        let b = row / c;
        for (k, part) in values.chunks_mut(CHUNK).enumerate() {
            tasks[b * pieces + k].push(part);
        }
    }
    tasks
        .into_par_iter()
        .enumerate()
        .for_each(|(task, mut outs)| {
            let r = Run {
                b: task / pieces,
                s0: (task % pieces) * CHUNK,
                len: outs[0].len(),
            };
            backward_run_dispatched((x, target, &g), (c, s), o, r, &mut outs);
        });
    dx
}

fn forward_flex(x: &FlexTensor, target: &FlexTensor, o: &OverlapOptions) -> FlexTensor {
    let dims = ncs(&x.shape());
    with_float!(x.dtype(), E => tensor(
        forward_kernel::<E>(&values(x), &values(target), dims, o),
        Shape::new([ROWS, dims.1]),
    ))
}

impl OverlapKernels for Flex {
    fn kindling_overlap_sums(x: FlexTensor, target: FlexTensor, o: OverlapOptions) -> FlexTensor {
        forward_flex(&x, &target, &o)
    }
}

#[derive(Debug)]
struct OverlapBackward;

impl Backward<Flex, 1> for OverlapBackward {
    /// The input, the target and the options.
    type State = (FlexTensor, FlexTensor, OverlapOptions);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, target, o) = ops.state;
        if let Some(node) = parent {
            let shape = x.shape();
            let dx = with_float!(x.dtype(), E => tensor(
                backward_kernel::<E>(&values(&x), &values(&target), &values(&dy), ncs(&shape), &o),
                shape,
            ));
            grads.register::<Flex>(node.id, dx);
        }
    }
}

impl<C: CheckpointStrategy> OverlapKernels for Autodiff<Flex, C> {
    fn kindling_overlap_sums(
        x: FloatTensor<Self>,
        target: FloatTensor<Self>,
        o: OverlapOptions,
    ) -> FloatTensor<Self> {
        let target = target.into_primitive();
        match OverlapBackward
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
pub(crate) mod tests {
    use burn::tensor::{Device, Int, Tensor, TensorData, activation};

    use super::{Activation, OverlapOptions, ROWS};
    use crate::tutorial::binary_cross_entropy;

    /// Deterministic values in [0, 1) (a local generator: Flex's is shared by parallel tests).
    pub fn uniform(len: usize, seed: u64) -> Vec<f64> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    fn from(values: Vec<f64>, shape: [usize; 3], dtype: burn::tensor::DType) -> Tensor<3> {
        Tensor::<3>::from_data(TensorData::new(values, shape), &Device::flex().autodiff())
            .cast(burn::tensor::FloatDType::from(dtype))
    }

    /// The same sums composed from Burn's ops.
    fn composed(x: Tensor<3>, t: Tensor<3>, o: &OverlapOptions) -> Tensor<2> {
        let [n, c, s] = x.dims();
        let dtype = x.dtype();
        let p = match o.activation {
            Activation::Identity => x,
            Activation::LogSigmoid => activation::log_sigmoid(x).exp(),
            Activation::Sigmoid => activation::sigmoid(x),
            Activation::LogSoftmax => activation::log_softmax(x, 1).exp(),
        };
        let valid = |t: Tensor<3>| match o.ignore {
            Some(i) => t.not_equal_elem(i).float().cast(dtype),
            None => t.ones_like(),
        };
        let (t, v) = if o.class_ids {
            let classes = Tensor::<1, Int>::arange(0..c as i64, &p.device())
                .float()
                .cast(dtype)
                .reshape([1, c, 1]);
            let hot = t.clone().expand([n, c, s]).equal(classes.expand([n, c, s]));
            (hot.float().cast(dtype), valid(t).expand([n, c, s]))
        } else {
            (t.clone(), valid(t))
        };
        let t = t * v.clone();
        let pv = p.clone() * v.clone();
        let per_class = |a: Tensor<3>| a.sum_dim(2).sum_dim(0).reshape([1, c]);
        let bce = if o.bce {
            per_class(binary_cross_entropy(p, t.clone()) * v)
        } else {
            Tensor::<2>::zeros([1, c], &pv.device()).cast(burn::tensor::FloatDType::from(dtype))
        };
        Tensor::cat(
            vec![
                per_class(pv.clone()),
                per_class(t.clone()),
                per_class((pv.clone() - t.clone()).abs()),
                per_class(pv * t),
                bce,
            ],
            0,
        )
    }

    fn case(shape: [usize; 3], o: OverlapOptions, dtype: burn::tensor::DType, tol: f64) {
        let [n, c, s] = shape;
        let x: Vec<f64> = uniform(n * c * s, 1)
            .iter()
            .map(|u| 12.0 * u - 6.0)
            .collect();
        let x = match o.activation {
            // Probabilities, away from 0 and 1 where BCE's clamps bite.
            Activation::Identity => x.iter().map(|v| 0.02 + 0.96 / (1.0 + (-v).exp())).collect(),
            _ => x,
        };
        let ignored = |u: f64| o.ignore.is_some() && u < 0.15;
        let t: Vec<f64> = if o.class_ids {
            uniform(n * s, 2)
                .iter()
                .map(|&u| {
                    if ignored(u) {
                        255.0
                    } else {
                        ((u - 0.15) / 0.85 * c as f64)
                            .floor()
                            .min(c as f64 - 1.0)
                            .max(0.0)
                    }
                })
                .collect()
        } else {
            uniform(n * c * s, 2)
                .iter()
                .map(|&u| {
                    if ignored(u) {
                        255.0
                    } else if o.bce {
                        u
                    } else {
                        (u > 0.5) as u8 as f64
                    }
                })
                .collect()
        };
        let t = from(t, [n, if o.class_ids { 1 } else { c }, s], dtype);
        let x0 = from(x, shape, dtype);
        let w = from(uniform(ROWS * c, 3), [1, ROWS, c], dtype).reshape([ROWS, c]);
        let run = |fused: bool| {
            let x = x0.clone().require_grad();
            let y = if fused {
                super::overlap_sums(x.clone(), t.clone(), o)
            } else {
                composed(x.clone(), t.clone(), &o)
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            [y.into_data(), x.grad(&grads).expect("dx").into_data()]
        };
        let (a, b) = (run(true), run(false));
        for (i, (a, b)) in a.into_iter().zip(b).enumerate() {
            let what = format!("{o:?} {dtype:?} {shape:?} {}", ["sums", "dx"][i]);
            crate::fused::activations::tests::assert_close(a, b, tol, &what);
        }
    }

    fn all_options() -> Vec<OverlapOptions> {
        let mut all = Vec::new();
        for activation in [
            Activation::Identity,
            Activation::LogSigmoid,
            Activation::Sigmoid,
            Activation::LogSoftmax,
        ] {
            for class_ids in [false, true] {
                for ignore in [None, Some(255.0)] {
                    for bce in [false, true] {
                        // The BCE row is the tutorial's: σ (or probabilities), soft targets, no
                        // class ids. (After e^{log σ} in f32 Burn's p·(1 − p) near p = 1 is
                        // already off by ~1e-5 of the gradient's scale.)
                        let tutorial =
                            matches!(activation, Activation::Sigmoid | Activation::Identity);
                        if bce && (class_ids || !tutorial) {
                            continue;
                        }
                        all.push(OverlapOptions {
                            activation,
                            class_ids,
                            ignore,
                            bce,
                        });
                    }
                }
            }
        }
        all
    }

    #[test]
    fn equal_burns_composition() {
        use burn::tensor::DType;
        for o in all_options() {
            for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
                case([2, 3, 4100], o, dtype, tol);
                case([3, 1, 7], o, dtype, tol);
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let x0 = from(
            uniform(4 * 3 * 9000, 1),
            [4, 3, 9000],
            burn::tensor::DType::F32,
        );
        let t = from(
            uniform(4 * 9000, 2)
                .iter()
                .map(|u| (u * 3.0).floor())
                .collect(),
            [4, 1, 9000],
            burn::tensor::DType::F32,
        );
        let o = OverlapOptions {
            activation: Activation::LogSoftmax,
            class_ids: true,
            ignore: None,
            bce: false,
        };
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                let x = x0.clone().require_grad();
                let y = super::overlap_sums(x.clone(), t.clone(), o);
                let grads = (y.clone() * y.clone()).sum().backward();
                [y.into_data(), x.grad(&grads).expect("dx").into_data()]
            })
        };
        assert_eq!(run(1), run(2));
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        let (c, s) = (3, 1000);
        let x: Vec<f32> = uniform(c * s, 1)
            .iter()
            .map(|u| (12.0 * u - 6.0) as f32)
            .collect();
        let ids: Vec<f32> = uniform(s, 2)
            .iter()
            .map(|u| (u * 3.0).floor() as f32)
            .collect();
        let soft: Vec<f32> = uniform(c * s, 3).iter().map(|&u| u as f32).collect();
        let g: Vec<f64> = uniform(super::ROWS * c, 4);
        let r = super::Run {
            b: 0,
            s0: 0,
            len: s,
        };
        for (activation, class_ids, bce) in [
            (Activation::LogSoftmax, true, false),
            (Activation::Sigmoid, false, true),
            (Activation::LogSigmoid, false, false),
        ] {
            let o = OverlapOptions {
                activation,
                class_ids,
                ignore: Some(255.0),
                bce,
            };
            let target = if class_ids { &ids } else { &soft };
            let portable = super::forward_run(&x, target, (c, s), &o, r);
            let dispatched = super::forward_run_dispatched(&x, target, (c, s), &o, r);
            assert_eq!(portable, dispatched, "forward {o:?}");
            let (mut a, mut b) = (vec![0f32; c * s], vec![0f32; c * s]);
            let mut rows_a: Vec<&mut [f32]> = a.chunks_mut(s).collect();
            let mut rows_b: Vec<&mut [f32]> = b.chunks_mut(s).collect();
            super::backward_run((&x, target, &g), (c, s), &o, r, &mut rows_a);
            super::backward_run_dispatched((&x, target, &g), (c, s), &o, r, &mut rows_b);
            assert_eq!(a, b, "backward {o:?}");
        }
    }
}
