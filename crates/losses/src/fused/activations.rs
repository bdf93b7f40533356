//! The two kernels and their backend extension.
//!
//! ```text
//! log_softmax: y = (x − m) − ln Σ_c e^(x_c − m), m = max_c x_c
//!              dx = g − e^(x − m) / Σ_c e^(x_c − m) · Σ_c g_c
//! log_sigmoid: y = min(x, 0) − ln(1 + e^−|x|)
//!              dx = g · σ(−x)
//! ```

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::{Shape, Tensor};
use rayon::prelude::*;

use super::common::{CHUNK, Float, ncs, tensor, values, with_float};

/// The backend extension: implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait LossActivationKernels: Backend {
    /// `log_softmax` over dimension 1.
    fn kindling_log_softmax_dim1(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `log_sigmoid`, element-wise.
    fn kindling_log_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

pub fn log_softmax_dim1<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(
        <Dispatch as LossActivationKernels>::kindling_log_softmax_dim1(x.into_dispatch()),
    )
}

pub fn log_sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    Tensor::from_dispatch(<Dispatch as LossActivationKernels>::kindling_log_sigmoid(
        x.into_dispatch(),
    ))
}

/// For every (n, s): `step` folded over the classes of `a` into `out[n·S + s]`, starting at
/// `init`. `step(acc, row, at)` gets a run of accumulators, the matching run of one class's row,
/// and the run's first column index (for column-aligned side arrays); runs are contiguous, so
/// the loops inside `step` vectorise.
fn per_column<E: Float>(
    a: &[E],
    (c, s): (usize, usize),
    out: &mut [E],
    init: E,
    step: impl Fn(&mut [E], &[E], usize) + Sync,
) {
    out.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(k, chunk)| {
            chunk.fill(init);
            let start = k * CHUNK;
            let mut i = 0;
            while i < chunk.len() {
                let (b, s0) = ((start + i) / s, (start + i) % s);
                let run = (s - s0).min(chunk.len() - i);
                let acc = &mut chunk[i..i + run];
                for ci in 0..c {
                    step(acc, &a[(b * c + ci) * s + s0..][..run], start + i);
                }
                i += run;
            }
        });
}

/// `(y, max, sum)`: the output and, per (n, s), the class max and Σ e^(x − max) (kept for the
/// backward, which recomputes the softmax from them: e^y would carry y's rounding, ~|y| ulp).
fn log_softmax_forward<E: Float>(x: &[E], g: (usize, usize, usize)) -> (Vec<E>, Vec<E>, Vec<E>) {
    let (n, c, s) = g;
    let mut max = vec![E::ZERO; n * s];
    per_column(x, (c, s), &mut max, E::MIN, |acc, row, _| {
        for (m, &v) in acc.iter_mut().zip(row) {
            *m = if v > *m { v } else { *m };
        }
    });
    let mut sum = vec![E::ZERO; n * s];
    per_column(x, (c, s), &mut sum, E::ZERO, |acc, row, at| {
        for ((t, &v), &m) in acc.iter_mut().zip(row).zip(&max[at..]) {
            *t = *t + (v - m).exp();
        }
    });
    // (x − max) − ln Σ, as Burn and PyTorch round it: x − (max + ln Σ) would round the
    // sum to max's ulp first.
    let log_sum: Vec<E> = sum.iter().map(|&t| t.ln()).collect();
    let mut y = vec![E::ZERO; x.len()];
    y.par_chunks_mut(s)
        .zip(x.par_chunks(s))
        .enumerate()
        .for_each(|(row, (out, xr))| {
            let at = (row / c) * s;
            let (m, l) = (&max[at..][..s], &log_sum[at..][..s]);
            for (((o, &v), &m), &l) in out.iter_mut().zip(xr).zip(m).zip(l) {
                *o = (v - m) - l;
            }
        });
    (y, max, sum)
}

/// `dx = g − softmax · Σ_c g` with `softmax = e^(x − max) / sum`.
fn log_softmax_backward<E: Float>(
    x: &[E],
    (max, sum): (&[E], &[E]),
    dy: &[E],
    g: (usize, usize, usize),
) -> Vec<E> {
    let (n, c, s) = g;
    let mut total = vec![E::ZERO; n * s];
    per_column(dy, (c, s), &mut total, E::ZERO, |acc, row, _| {
        for (t, &v) in acc.iter_mut().zip(row) {
            *t = *t + v;
        }
    });
    // Per column: Σg / Σe^(x − max), so each element needs one exp and one multiply.
    let scale: Vec<E> = total.iter().zip(sum).map(|(&t, &z)| t / z).collect();
    let mut dx = vec![E::ZERO; x.len()];
    dx.par_chunks_mut(s)
        .zip(x.par_chunks(s).zip(dy.par_chunks(s)))
        .enumerate()
        .for_each(|(row, (out, (xr, gr)))| {
            let at = (row / c) * s;
            let (m, k) = (&max[at..][..s], &scale[at..][..s]);
            for ((((o, &xv), &gv), &m), &k) in out.iter_mut().zip(xr).zip(gr).zip(m).zip(k) {
                *o = gv - (xv - m).exp() * k;
            }
        });
    dx
}

fn log_sigmoid_forward<E: Float>(x: &[E]) -> Vec<E> {
    let mut y = vec![E::ZERO; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(out, xs)| {
            for (o, &v) in out.iter_mut().zip(xs) {
                let low = if v < E::ZERO { v } else { E::ZERO };
                *o = low - (-v.abs()).exp().ln_1p();
            }
        });
    y
}

fn log_sigmoid_backward<E: Float>(x: &[E], dy: &[E]) -> Vec<E> {
    let mut dx = vec![E::ZERO; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(out, (xs, gs))| {
            for ((o, &v), &g) in out.iter_mut().zip(xs).zip(gs) {
                // σ(−x) from e = e^−|x| ∈ (0, 1], without overflow on either side.
                let e = (-v.abs()).exp();
                let top = if v < E::ZERO { E::ONE } else { e };
                *o = g * (top / (E::ONE + e));
            }
        });
    dx
}

/// The output and the state its backward needs (the input, per-column max and sum).
fn log_softmax_flex(x: &FlexTensor) -> (FlexTensor, SoftmaxState) {
    let shape = x.shape();
    with_float!(x.dtype(), E => {
        let (y, max, sum) = log_softmax_forward::<E>(&values(x), ncs(&shape));
        let columns = Shape::new([max.len()]);
        (
            tensor(y, shape),
            (x.clone(), tensor(max, columns.clone()), tensor(sum, columns)),
        )
    })
}

/// Input, per-column max and per-column Σ e^(x − max).
type SoftmaxState = (FlexTensor, FlexTensor, FlexTensor);

fn log_sigmoid_flex(x: &FlexTensor) -> FlexTensor {
    let shape = x.shape();
    with_float!(x.dtype(), E => tensor(log_sigmoid_forward::<E>(&values(x)), shape))
}

impl LossActivationKernels for Flex {
    fn kindling_log_softmax_dim1(x: FlexTensor) -> FlexTensor {
        log_softmax_flex(&x).0
    }
    fn kindling_log_sigmoid(x: FlexTensor) -> FlexTensor {
        log_sigmoid_flex(&x)
    }
}

#[derive(Debug)]
struct LogSoftmaxBackward;

impl Backward<Flex, 1> for LogSoftmaxBackward {
    type State = SoftmaxState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, max, sum) = ops.state;
        if let Some(node) = parent {
            let shape = x.shape();
            let dx = with_float!(x.dtype(), E => tensor(
                log_softmax_backward::<E>(
                    &values(&x),
                    (&values(&max), &values(&sum)),
                    &values(&dy),
                    ncs(&shape),
                ),
                shape,
            ));
            grads.register::<Flex>(node.id, dx);
        }
    }
}

#[derive(Debug)]
struct LogSigmoidBackward;

impl Backward<Flex, 1> for LogSigmoidBackward {
    /// The input (checkpointed).
    type State = NodeId;

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [parent] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let x = checkpointer.retrieve_node_output::<FlexTensor>(ops.state);
        if let Some(node) = parent {
            let shape = x.shape();
            let dx = with_float!(x.dtype(), E => tensor(
                log_sigmoid_backward::<E>(&values(&x), &values(&dy)),
                shape,
            ));
            grads.register::<Flex>(node.id, dx);
        }
    }
}

impl<C: CheckpointStrategy> LossActivationKernels for Autodiff<Flex, C> {
    fn kindling_log_softmax_dim1(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match LogSoftmaxBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, state) = log_softmax_flex(x.primitive());
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(log_softmax_flex(x.primitive()).0),
        }
    }

    fn kindling_log_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        match LogSigmoidBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, log_sigmoid_flex(x.primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(log_sigmoid_flex(x.primitive())),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use burn::tensor::activation;
    use burn::tensor::{DType, Device, Distribution, FloatDType, Tensor, TensorData};

    /// `|a − b| ≤ tol · max|b|` element-wise.
    pub fn assert_close(a: TensorData, b: TensorData, tol: f64, what: &str) {
        let a: Vec<f64> = a.convert::<f64>().try_to_vec().expect("f64");
        let b: Vec<f64> = b.convert::<f64>().try_to_vec().expect("f64");
        let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-300);
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() / scale)
            .fold(0f64, f64::max);
        assert!(
            worst <= tol,
            "{what}: max relative difference {worst:e} > {tol:e}"
        );
    }

    fn compare<const D: usize>(shape: [usize; D], dtype: DType, tol: f64, softmax: bool) {
        let device = Device::flex().autodiff();
        // Logits up to ±24: the tails where e^x under- and overflows naive forms.
        let x0 = Tensor::<D>::random(shape, Distribution::Uniform(-24.0, 24.0), &device)
            .cast(FloatDType::from(dtype));
        let w = Tensor::<D>::random(shape, Distribution::Normal(0.0, 1.0), &device)
            .cast(FloatDType::from(dtype));
        let run = |fused: bool| {
            let x = x0.clone().require_grad();
            let y = match (softmax, fused) {
                (true, true) => super::log_softmax_dim1(x.clone()),
                (true, false) => activation::log_softmax(x.clone(), 1),
                (false, true) => super::log_sigmoid(x.clone()),
                (false, false) => activation::log_sigmoid(x.clone()),
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            [y.into_data(), x.grad(&grads).expect("dx").into_data()]
        };
        let (a, b) = (run(true), run(false));
        for (i, (a, b)) in a.into_iter().zip(b).enumerate() {
            let what = format!(
                "{} {dtype:?} {shape:?} {}",
                if softmax {
                    "log_softmax"
                } else {
                    "log_sigmoid"
                },
                ["y", "dx"][i]
            );
            assert_close(a, b, tol, &what);
        }
    }

    #[test]
    fn equal_burns_ops() {
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
            for softmax in [true, false] {
                compare([3, 5, 7, 9], dtype, tol, softmax);
                compare([6, 4], dtype, tol, softmax);
                compare([2, 3, 5000], dtype, tol, softmax);
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let device = Device::flex().autodiff();
        let x0 = Tensor::<3>::random([3, 4, 9000], Distribution::Normal(0.0, 3.0), &device);
        let run = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                let x = x0.clone().require_grad();
                let y = super::log_softmax_dim1(x.clone()) + super::log_sigmoid(x.clone());
                let grads = (y.clone() * y.clone()).sum().backward();
                [y.into_data(), x.grad(&grads).expect("dx").into_data()]
            })
        };
        assert_eq!(run(1), run(2));
    }
}
