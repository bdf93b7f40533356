//! Depthwise 2-D convolution (`groups == c_in`, `c_out = m·c_in`: output channel `o` reads input
//! channel `o / m`), forward and backward, as direct loops over each plane:
//!
//! ```text
//! y[n, o]  = Σ_{ki,kj} w[o, ki, kj] · shift_{ki,kj}(x[n, o / m])
//! dx[n, c] = Σ_{o ∈ c's m outputs} Σ_{ki,kj} w[o, ki, kj] · shift⁻¹_{ki,kj}(dy[n, o])
//! dW[o, ki, kj] = Σ_n ⟨dy[n, o], shift_{ki,kj}(x[n, o / m])⟩
//! ```
//!
//! Burn's generic grouped convolution on Flex splits the groups into separate convolutions and
//! computes the data gradient as a transposed 3-D convolution: for mobilenet_v3_small those were
//! ~40 % of a training step. Each output row here is a run of multiply-adds over the valid span
//! of each kernel offset (contiguous for stride 1, so it vectorises).
//!
//! Planes run in parallel; dW sums each output channel over its samples in order within one
//! task, so results do not depend on the thread count.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use burn::tensor::ops::ConvOptions;
use rayon::prelude::*;

use super::binary_op;
use super::conv::{Geometry, valid_span};
use super::real::{Real, contiguous, slice, tensor, with_real};

/// The backend extension: implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait DepthwiseKernels: Backend {
    /// `conv2d(x, weight)` without bias, `groups == c_in`, weight `[m·c_in, 1, kh, kw]`.
    fn kindling_depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

/// See [`super::try_conv2d`].
pub fn depthwise_conv2d(x: Tensor<4>, weight: Tensor<4>, options: ConvOptions<2>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as DepthwiseKernels>::kindling_depthwise_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ))
}

/// Calls `f(oy, iy, ox_span, ix0)` for every output row `oy` that kernel row `ki` and column
/// `kj` reach inside the image: `iy` its input row, `ox_span` the output columns and `ix0` the
/// input column of the first.
#[inline(always)]
fn for_each_row(
    g: &Geometry,
    (ki, kj): (usize, usize),
    mut f: impl FnMut(usize, usize, std::ops::Range<usize>, usize),
) {
    let (rows, iy0) = valid_span(g, 0, ki);
    let (cols, ix0) = valid_span(g, 1, kj);
    if cols.is_empty() {
        return;
    }
    for oy in rows.clone() {
        f(oy, iy0 + (oy - rows.start) * g.stride[0], cols.clone(), ix0);
    }
}

/// One output plane: `y = Σ w·shift(x)`.
fn forward_plane<E: Real>(x: &[E], w: &[E], g: &Geometry, y: &mut [E]) {
    let sx = g.stride[1];
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let wk = w[ki * g.kw + kj];
            for_each_row(g, (ki, kj), |oy, iy, span, ix0| {
                let out = &mut y[oy * g.ow..][span.clone()];
                let line = &x[iy * g.w..(iy + 1) * g.w];
                if sx == 1 {
                    let len = out.len();
                    for (o, &v) in out.iter_mut().zip(&line[ix0..ix0 + len]) {
                        *o += wk * v;
                    }
                } else {
                    for (o, &v) in out.iter_mut().zip(line[ix0..].iter().step_by(sx)) {
                        *o += wk * v;
                    }
                }
            });
        }
    }
}

/// One input plane's gradient from one of its output planes: `dx += Σ w·shift⁻¹(dy)`.
fn input_grad_plane<E: Real>(dy: &[E], w: &[E], g: &Geometry, dx: &mut [E]) {
    let sx = g.stride[1];
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let wk = w[ki * g.kw + kj];
            for_each_row(g, (ki, kj), |oy, iy, span, ix0| {
                let src = &dy[oy * g.ow..][span];
                let line = &mut dx[iy * g.w..(iy + 1) * g.w];
                if sx == 1 {
                    for (d, &v) in line[ix0..ix0 + src.len()].iter_mut().zip(src) {
                        *d += wk * v;
                    }
                } else {
                    for (d, &v) in line[ix0..].iter_mut().step_by(sx).zip(src) {
                        *d += wk * v;
                    }
                }
            });
        }
    }
}

/// `Σ a_i·b_i` over eight lanes in `E`, returned in f64.
#[inline(always)]
fn dot<E: Real>(a: &[E], b: impl Iterator<Item = E>) -> f64 {
    let mut lanes = [E::default(); 8];
    for (i, (&x, y)) in a.iter().zip(b).enumerate() {
        lanes[i % 8] += x * y;
    }
    lanes.iter().map(|v| v.to_f64()).sum()
}

/// One output channel's weight gradient over every sample, in f64.
fn weight_grad_channel<E: Real>(x: &[E], dy: &[E], g: &Geometry, o: usize, dw: &mut [E]) {
    let m = g.c_out / g.c_in;
    let (plane_in, plane_out) = (g.h * g.w, g.oh * g.ow);
    let sx = g.stride[1];
    for ki in 0..g.kh {
        for kj in 0..g.kw {
            let mut acc = 0f64;
            for n in 0..g.batch {
                let xp = &x[(n * g.c_in + o / m) * plane_in..][..plane_in];
                let dyp = &dy[(n * g.c_out + o) * plane_out..][..plane_out];
                for_each_row(g, (ki, kj), |oy, iy, span, ix0| {
                    let src = &dyp[oy * g.ow..][span];
                    let line = &xp[iy * g.w..(iy + 1) * g.w];
                    acc += if sx == 1 {
                        dot(src, line[ix0..ix0 + src.len()].iter().copied())
                    } else {
                        dot(src, line[ix0..].iter().step_by(sx).copied())
                    };
                });
            }
            dw[ki * g.kw + kj] = E::from_f64(acc);
        }
    }
}

fn forward_kernel<E: Real>(x: &[E], w: &[E], g: &Geometry) -> Vec<E> {
    let m = g.c_out / g.c_in;
    let (plane_in, plane_out, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let mut y = vec![E::default(); g.batch * g.c_out * plane_out];
    y.par_chunks_mut(plane_out.max(1))
        .enumerate()
        .for_each(|(plane, out)| {
            let (n, o) = (plane / g.c_out, plane % g.c_out);
            let xp = &x[(n * g.c_in + o / m) * plane_in..][..plane_in];
            forward_plane(xp, &w[o * taps..][..taps], g, out);
        });
    y
}

fn input_grad_kernel<E: Real>(w: &[E], dy: &[E], g: &Geometry) -> Vec<E> {
    let m = g.c_out / g.c_in;
    let (plane_in, plane_out, taps) = (g.h * g.w, g.oh * g.ow, g.kh * g.kw);
    let mut dx = vec![E::default(); g.batch * g.c_in * plane_in];
    dx.par_chunks_mut(plane_in.max(1))
        .enumerate()
        .for_each(|(plane, dxp)| {
            let (n, c) = (plane / g.c_in, plane % g.c_in);
            for o in c * m..(c + 1) * m {
                let dyp = &dy[(n * g.c_out + o) * plane_out..][..plane_out];
                input_grad_plane(dyp, &w[o * taps..][..taps], g, dxp);
            }
        });
    dx
}

fn weight_grad_kernel<E: Real>(x: &[E], dy: &[E], g: &Geometry) -> Vec<E> {
    let taps = g.kh * g.kw;
    let mut dw = vec![E::default(); g.c_out * taps];
    dw.par_chunks_mut(taps.max(1))
        .enumerate()
        .for_each(|(o, dwo)| weight_grad_channel(x, dy, g, o, dwo));
    dw
}

fn forward_flex(x: FlexTensor, weight: FlexTensor, options: &ConvOptions<2>) -> FlexTensor {
    let g = Geometry::new(&x.shape(), &weight.shape(), options);
    let (x, weight) = (contiguous(x), contiguous(weight));
    with_real!(x.dtype(), E => {
        let y = forward_kernel::<E>(slice(&x), slice(&weight), &g);
        tensor(y, [g.batch, g.c_out, g.oh, g.ow])
    })
}

impl DepthwiseKernels for Flex {
    fn kindling_depthwise_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        binary_op::run(x, weight, &options, forward_flex)
    }
}

#[derive(Debug)]
struct DepthwiseBackward;

impl Backward<Flex, 2> for DepthwiseBackward {
    /// The input and the weight (checkpointed) and the options.
    type State = binary_op::State<ConvOptions<2>>;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        binary_op::backward(
            ops,
            grads,
            checkpointer,
            |dy, x, weight, options, [need_x, need_w]| {
                let g = Geometry::new(&x.shape(), &weight.shape(), options);
                with_real!(x.dtype(), E => [
                    need_x.then(|| {
                        let dx = input_grad_kernel::<E>(slice(weight), slice(dy), &g);
                        tensor(dx, [g.batch, g.c_in, g.h, g.w])
                    }),
                    need_w.then(|| {
                        let dw = weight_grad_kernel::<E>(slice(x), slice(dy), &g);
                        tensor(dw, [g.c_out, 1, g.kh, g.kw])
                    }),
                ])
            },
        );
    }
}

impl<C: CheckpointStrategy> DepthwiseKernels for Autodiff<Flex, C> {
    fn kindling_depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        binary_op::forward::<C, _, _>(DepthwiseBackward, x, weight, options, forward_flex)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{DType, Device, TensorData};

    use super::super::testing::{assert_close, random};

    fn compare(dtype: DType, x: [usize; 4], w: [usize; 4], options: ConvOptions<2>, tol: f64) {
        let device = Device::flex().autodiff();
        let (x0, w0) = (random(x, dtype, 1, &device), random(w, dtype, 2, &device));
        let out_dims = conv2d(x0.clone(), w0.clone(), None, options.clone()).dims();
        let weights = random(out_dims, dtype, 3, &device);
        let run = |fused: bool| {
            let xt = x0.clone().require_grad();
            let wt = w0.clone().require_grad();
            let y = if fused {
                super::depthwise_conv2d(xt.clone(), wt.clone(), options.clone())
            } else {
                conv2d(xt.clone(), wt.clone(), None, options.clone())
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            [
                y.into_data(),
                xt.grad(&grads).expect("dx").into_data(),
                wt.grad(&grads).expect("dw").into_data(),
            ]
        };
        let (fused, burn) = (run(true), run(false));
        for (i, (a, b)) in fused.into_iter().zip(burn).enumerate() {
            let what = ["output", "dx", "dw"][i];
            assert_close(
                a,
                b,
                tol,
                &format!("{dtype:?} {x:?} {w:?} {options:?} {what}"),
            );
        }
    }

    fn cases() -> Vec<([usize; 4], [usize; 4], ConvOptions<2>)> {
        vec![
            // 3×3 stride 1 (mobilenet's inverted residuals)
            (
                [2, 4, 9, 8],
                [4, 1, 3, 3],
                ConvOptions::new([1, 1], [1, 1], [1, 1], 4),
            ),
            // 5×5 stride 2, odd size
            (
                [2, 3, 15, 13],
                [3, 1, 5, 5],
                ConvOptions::new([2, 2], [2, 2], [1, 1], 3),
            ),
            // channel multiplier 2, dilation 2, asymmetric stride
            (
                [1, 2, 11, 10],
                [4, 1, 3, 3],
                ConvOptions::new([1, 2], [2, 1], [2, 2], 2),
            ),
            // asymmetric padding
            (
                [3, 2, 6, 7],
                [2, 1, 2, 2],
                ConvOptions::new_with_padding([1, 1], [(0, 1), (1, 0)], [1, 1], 2),
            ),
        ]
    }

    #[test]
    fn equals_burns_grouped_convolution() {
        for (x, w, options) in cases() {
            compare(DType::F64, x, w, options.clone(), 1e-12);
            compare(DType::F32, x, w, options, 1e-5);
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let device = Device::flex().autodiff();
        let x0 = random([5, 6, 14, 14], DType::F32, 1, &device);
        let w0 = random([6, 1, 3, 3], DType::F32, 2, &device);
        let run = |threads: usize| -> Vec<TensorData> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                let x = x0.clone().require_grad();
                let w = w0.clone().require_grad();
                let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 6);
                let y = super::depthwise_conv2d(x.clone(), w.clone(), options);
                let grads = (y.clone() * y.clone()).sum().backward();
                vec![
                    y.into_data(),
                    x.grad(&grads).expect("dx").into_data(),
                    w.grad(&grads).expect("dw").into_data(),
                ]
            })
        };
        assert_eq!(run(1), run(2));
    }
}
