//! BatchNorm's training forward and backward, one pass over the data each (plus one for the
//! statistics), per-channel parallel; the same maths as Burn's `batch_norm_train` and
//! `batch_norm_train_backward`:
//!
//! ```text
//! mean = Σx / n, var = Σ(x - mean)² / n (biased), x̂ = (x - mean) / sqrt(var + eps)
//! y    = x̂ · γ + β
//! dβ   = Σdy, dγ = Σ dy · x̂
//! dx   = γ / sqrt(var + eps) · (dy - dβ / n - x̂ · dγ / n)
//! ```
//! with the sums over the batch and spatial positions of each channel, accumulated in f64.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{FloatDType, Tensor};
use rayon::prelude::*;

use super::real::{Real, cast, contiguous, low_precision, slice, tensor, with_real};

/// The backend extension: implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait BatchNormKernels: Backend {
    /// `(output, mean, biased variance)` of training-mode BatchNorm.
    fn kindling_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// See [`super::try_batch_norm_train`].
pub fn train<const D: usize>(
    x: Tensor<D>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> (Tensor<D>, Tensor<1>, Tensor<1>) {
    let (y, mean, var) = <Dispatch as BatchNormKernels>::kindling_batch_norm_train(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        epsilon,
    );
    (
        Tensor::from_dispatch(y),
        Tensor::from_dispatch(mean),
        Tensor::from_dispatch(var),
    )
}

/// `[batch, channels, rest…]` as (batch, channels, elements per row).
fn geometry(x: &FlexTensor) -> (usize, usize, usize) {
    let dims = x.shape();
    let (n, c) = (dims[0], dims[1]);
    (n, c, dims.iter().skip(2).product())
}

/// Σ f(v) over `row` in f64, in eight independent lanes (they vectorise) combined in a fixed
/// order.
fn lane_sum<E: Real>(row: &[E], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v.to_f64());
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|v| f(v.to_f64())).sum();
    lanes.iter().sum::<f64>() + tail
}

/// Per channel, the rows `[n][c]` of `x` (each `hw` long).
fn rows<E: Real>(x: &[E], n: usize, c: usize, hw: usize, ch: usize) -> impl Iterator<Item = &[E]> {
    (0..n).map(move |b| &x[(b * c + ch) * hw..(b * c + ch + 1) * hw])
}

fn forward_kernel<E: Real>(
    x: &[E],
    gamma: &[E],
    beta: &[E],
    (n, c, hw): (usize, usize, usize),
    epsilon: f64,
) -> (Vec<E>, Vec<E>, Vec<E>) {
    let count = (n * hw) as f64;
    let stats: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let mean = rows(x, n, c, hw, ch)
                .map(|r| lane_sum(r, |v| v))
                .sum::<f64>()
                / count;
            let var = rows(x, n, c, hw, ch)
                .map(|r| lane_sum(r, |v| (v - mean) * (v - mean)))
                .sum::<f64>()
                / count;
            (mean, var)
        })
        .collect();
    let mut y = vec![E::default(); x.len()];
    y.par_chunks_mut(hw.max(1))
        .zip(x.par_chunks(hw.max(1)))
        .enumerate()
        .for_each(|(row, (out, input))| {
            let ch = row % c;
            let (mean, var) = stats[ch];
            let mean = E::from_f64(mean);
            let scale = E::from_f64(gamma[ch].to_f64() / (var + epsilon).sqrt());
            let shift = beta[ch];
            normalise(out, input, mean, scale, shift);
        });
    let mean = stats.iter().map(|s| E::from_f64(s.0)).collect();
    let var = stats.iter().map(|s| E::from_f64(s.1)).collect();
    (y, mean, var)
}

/// `out = (input - mean) · scale + shift`, in the element type.
fn normalise<E: Real>(out: &mut [E], input: &[E], mean: E, scale: E, shift: E) {
    for (o, &v) in out.iter_mut().zip(input) {
        *o = (v - mean) * scale + shift;
    }
}

/// `(dx, dγ, dβ)`.
fn backward_kernel<E: Real>(
    x: &[E],
    gamma: &[E],
    mean: &[E],
    var: &[E],
    dy: &[E],
    (n, c, hw): (usize, usize, usize),
    epsilon: f64,
) -> (Vec<E>, Vec<E>, Vec<E>) {
    let count = (n * hw) as f64;
    // Per channel: Σdy and Σdy·(x - mean), pairing the rows of x and dy.
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let m = mean[ch].to_f64();
            let mut sum_dy = 0.0;
            let mut sum_dyx = 0.0;
            for (xr, gr) in rows(x, n, c, hw, ch).zip(rows(dy, n, c, hw, ch)) {
                sum_dy += lane_sum(gr, |g| g);
                sum_dyx += pair_sum(xr, gr, m);
            }
            (sum_dy, sum_dyx)
        })
        .collect();
    let inv_std: Vec<f64> = var
        .iter()
        .map(|v| 1.0 / (v.to_f64() + epsilon).sqrt())
        .collect();
    let beta_grad: Vec<E> = sums.iter().map(|s| E::from_f64(s.0)).collect();
    let gamma_grad: Vec<E> = sums
        .iter()
        .zip(&inv_std)
        .map(|(s, is)| E::from_f64(s.1 * is))
        .collect();
    let mut dx = vec![E::default(); x.len()];
    dx.par_chunks_mut(hw.max(1))
        .zip(x.par_chunks(hw.max(1)).zip(dy.par_chunks(hw.max(1))))
        .enumerate()
        .for_each(|(row, (out, (xr, gr)))| {
            let ch = row % c;
            let (sum_dy, sum_dyx) = sums[ch];
            let is = inv_std[ch];
            // x̂ = (x - mean)·is; dx = γ·is·(dy - Σdy/n - x̂·Σdy·x̂/n)
            let coefficients = [
                mean[ch].to_f64(),
                is,
                sum_dy / count,
                sum_dyx * is / count,
                gamma[ch].to_f64() * is,
            ]
            .map(E::from_f64);
            input_grad(out, xr, gr, coefficients);
        });
    (dx, gamma_grad, beta_grad)
}

/// Σ dy · (x - mean) over a row pair, in f64 lanes.
fn pair_sum<E: Real>(x: &[E], dy: &[E], mean: f64) -> f64 {
    let mut lanes = [0f64; 8];
    let mut xs = x.chunks_exact(8);
    let mut gs = dy.chunks_exact(8);
    for (xc, gc) in (&mut xs).zip(&mut gs) {
        for ((lane, xv), gv) in lanes.iter_mut().zip(xc).zip(gc) {
            *lane += gv.to_f64() * (xv.to_f64() - mean);
        }
    }
    let tail: f64 = xs
        .remainder()
        .iter()
        .zip(gs.remainder())
        .map(|(xv, gv)| gv.to_f64() * (xv.to_f64() - mean))
        .sum();
    lanes.iter().sum::<f64>() + tail
}

/// `out = scale · (dy - mean_dy - x̂ · mean_dyx̂)` with `x̂ = (x - mean) · inv_std`.
fn input_grad<E: Real>(out: &mut [E], x: &[E], dy: &[E], [mean, is, mdy, mdyx, scale]: [E; 5]) {
    for ((o, &xv), &g) in out.iter_mut().zip(x).zip(dy) {
        let xhat = (xv - mean) * is;
        *o = scale * (g - mdy - xhat * mdyx);
    }
}

/// The forward; an f16/bf16 input (autocast, with f32 parameters) is widened to f32 and the
/// output rounded back, the statistics stay f32.
fn forward_flex(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    match low_precision(&x) {
        Some(dtype) => {
            let (y, mean, var) = forward_real(cast(x, FloatDType::F32), gamma, beta, epsilon);
            (cast(y, dtype), mean, var)
        }
        None => forward_real(x, gamma, beta, epsilon),
    }
}

fn forward_real(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = x.shape();
    let geometry = geometry(&x);
    let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    with_real!(x.dtype(), E => {
        let (y, mean, var) = forward_kernel::<E>(
            slice(&x),
            slice(&gamma),
            slice(&beta),
            geometry,
            epsilon,
        );
        let c = geometry.1;
        (tensor(y, shape), tensor(mean, [c]), tensor(var, [c]))
    })
}

/// The backward; for an f16/bf16 input, `x` and `dy` are widened to f32 and `dx` rounded back
/// (γ's and β's gradients are f32, as γ and β are).
fn backward_flex(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    var: FlexTensor,
    dy: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    match low_precision(&x) {
        Some(dtype) => {
            let (x, dy) = (cast(x, FloatDType::F32), cast(dy, FloatDType::F32));
            let (dx, dgamma, dbeta) = backward_real(x, gamma, mean, var, dy, epsilon);
            (cast(dx, dtype), dgamma, dbeta)
        }
        None => backward_real(x, gamma, mean, var, dy, epsilon),
    }
}

fn backward_real(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    var: FlexTensor,
    dy: FlexTensor,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let shape = x.shape();
    let geometry = geometry(&x);
    let [x, gamma, mean, var, dy] = [x, gamma, mean, var, dy].map(contiguous);
    with_real!(x.dtype(), E => {
        let (dx, dgamma, dbeta) = backward_kernel::<E>(
            slice(&x),
            slice(&gamma),
            slice(&mean),
            slice(&var),
            slice(&dy),
            geometry,
            epsilon,
        );
        let c = geometry.1;
        (tensor(dx, shape), tensor(dgamma, [c]), tensor(dbeta, [c]))
    })
}

impl BatchNormKernels for Flex {
    fn kindling_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        forward_flex(x, gamma, beta, epsilon)
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl Backward<Flex, 3> for BatchNormBackward {
    /// The input and γ (checkpointed), the batch statistics, epsilon.
    type State = (NodeId, NodeId, FlexTensor, FlexTensor, f64);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x_state, gamma_state, mean, var, epsilon) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FlexTensor>(gamma_state);
        let (dx, dgamma, dbeta) = backward_flex(x, gamma, mean, var, dy, epsilon);
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, dx);
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, dgamma);
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, dbeta);
        }
    }
}

impl<C: CheckpointStrategy> BatchNormKernels for Autodiff<Flex, C> {
    fn kindling_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let (y, mean, var) = forward_flex(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                let state = (x_state, gamma_state, mean.clone(), var.clone(), epsilon);
                (
                    prep.finish(state, y),
                    FloatTensor::<Self>::new(mean),
                    FloatTensor::<Self>::new(var),
                )
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = forward_flex(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                );
                (
                    prep.finish(y),
                    FloatTensor::<Self>::new(mean),
                    FloatTensor::<Self>::new(var),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::batch_norm_train;
    use burn::tensor::{DType, Device, Tensor};

    use super::super::testing::{assert_close, random};

    /// Values and gradients of the fused op against Burn's composition, on a loss that weights
    /// every output differently.
    fn compare(dtype: DType, shape: [usize; 4], tol: f64) {
        let device = Device::flex().autodiff();
        let c = shape[1];
        let inputs = (
            random(shape, dtype, 1, &device),
            random([c], dtype, 2, &device),
            random([c], dtype, 3, &device),
        );
        let weights = random(shape, dtype, 4, &device);
        let run = |fused: bool| {
            let x = inputs.0.clone().require_grad();
            let gamma = inputs.1.clone().require_grad();
            let beta = inputs.2.clone().require_grad();
            let weights = weights.clone();
            let (y, mean, var) = if fused {
                super::train(x.clone(), gamma.clone(), beta.clone(), 1e-5)
            } else {
                let r = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
                (r.output, r.mean, r.variance)
            };
            let grads = (y.clone() * weights).sum().backward();
            let g = |t: &Tensor<4>| t.grad(&grads).expect("x grad").into_data();
            let g1 = |t: &Tensor<1>| t.grad(&grads).expect("param grad").into_data();
            [
                y.into_data(),
                mean.into_data(),
                var.into_data(),
                g(&x),
                g1(&gamma),
                g1(&beta),
            ]
        };
        let (fused, burn) = (run(true), run(false));
        for (i, (a, b)) in fused.into_iter().zip(burn).enumerate() {
            let what = ["output", "mean", "variance", "dx", "dgamma", "dbeta"][i];
            assert_close(a, b, tol, &format!("{dtype:?} {shape:?} {what}"));
        }
    }

    /// Autocast: an f16/bf16 input with f32 parameters is computed in f32. The output and dx
    /// keep the input's dtype and are within one rounding of the f64 composition on the same
    /// inputs; the statistics and the parameters' gradients are f32.
    #[test]
    fn half_precision_input_with_f32_parameters() {
        use burn::tensor::FloatDType;
        let device = Device::flex().autodiff();
        for (dtype, tol) in [(DType::F16, 2f64.powi(-10)), (DType::BF16, 2f64.powi(-7))] {
            let shape = [4, 3, 6, 5];
            let x0 = random(shape, dtype, 1, &device);
            let (g0, b0) = (
                random([3], DType::F32, 2, &device),
                random([3], DType::F32, 3, &device),
            );
            let w0 = random(shape, dtype, 4, &device);
            let run = |exact: bool| {
                let to = |d: DType| {
                    if exact {
                        FloatDType::F64
                    } else {
                        FloatDType::from(d)
                    }
                };
                let x = x0.clone().cast(to(dtype)).require_grad();
                let gamma = g0.clone().cast(to(DType::F32)).require_grad();
                let beta = b0.clone().cast(to(DType::F32)).require_grad();
                let (y, mean, var) = if exact {
                    let r = batch_norm_train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
                    (r.output, r.mean, r.variance)
                } else {
                    super::train(x.clone(), gamma.clone(), beta.clone(), 1e-5)
                };
                let grads = (y.clone() * w0.clone().cast(to(dtype))).sum().backward();
                let dx = x.grad(&grads).expect("x grad");
                let (dg, db) = (
                    gamma.grad(&grads).expect("γ grad"),
                    beta.grad(&grads).expect("β grad"),
                );
                if !exact {
                    assert_eq!([y.dtype(), dx.dtype()], [dtype, dtype], "output, dx");
                    assert_eq!(
                        [mean.dtype(), var.dtype(), dg.dtype(), db.dtype()],
                        [DType::F32; 4]
                    );
                }
                [
                    y.into_data(),
                    mean.into_data(),
                    var.into_data(),
                    dx.into_data(),
                    dg.into_data(),
                    db.into_data(),
                ]
            };
            let (low, exact) = (run(false), run(true));
            for (i, (a, b)) in low.into_iter().zip(exact).enumerate() {
                let what = ["output", "mean", "variance", "dx", "dgamma", "dbeta"][i];
                let tol = if matches!(i, 0 | 3) { tol } else { 1e-5 };
                assert_close(a, b, tol, &format!("{dtype:?} {what}"));
            }
        }
    }

    #[test]
    fn f64_equals_burns_composition() {
        compare(DType::F64, [4, 3, 5, 7], 1e-12);
        compare(DType::F64, [2, 5, 16, 16], 1e-12);
    }

    #[test]
    fn f32_equals_burns_composition() {
        compare(DType::F32, [4, 3, 5, 7], 1e-5);
        compare(DType::F32, [8, 16, 32, 32], 1e-5);
    }

    #[test]
    fn without_autodiff_it_returns_the_same_output() {
        let device = Device::flex();
        let x = random([2, 3, 4, 4], DType::F32, 1, &device);
        let gamma = random([3], DType::F32, 2, &device);
        let beta = random([3], DType::F32, 3, &device);
        let (y, _, _) = super::train(x.clone(), gamma.clone(), beta.clone(), 1e-5);
        let r = batch_norm_train(x, gamma, beta, 1e-5);
        assert_close(y.into_data(), r.output.into_data(), 1e-5, "output");
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let device = Device::flex().autodiff();
        let x0 = random([5, 7, 33, 31], DType::F32, 1, &device);
        let (g0, b0) = (
            random([7], DType::F32, 2, &device),
            random([7], DType::F32, 3, &device),
        );
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                let x = x0.clone().require_grad();
                let gamma = g0.clone().require_grad();
                let (y, mean, var) = super::train(x.clone(), gamma.clone(), b0.clone(), 1e-5);
                let grads = (y.clone() * y.clone()).sum().backward();
                [
                    y.into_data(),
                    mean.into_data(),
                    var.into_data(),
                    x.grad(&grads).expect("dx").into_data(),
                    gamma.grad(&grads).expect("dgamma").into_data(),
                ]
            })
        };
        assert_eq!(run(1), run(2));
    }
}
