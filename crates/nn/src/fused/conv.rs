//! 2-D convolution (no groups) as gemms over im2col columns, forward and backward:
//!
//! ```text
//! cols[n] = im2col(x[n])                         [c_in·kh·kw, h'·w']
//! y[n]    = W · cols[n]                          W as [c_out, c_in·kh·kw]
//! dW      = Σ_n dy[n] · cols[n]ᵀ                 one gemm per sample, accumulated per chunk
//! dx[n]   = col2im(Wᵀ · dy[n])
//! ```
//! A 1×1 convolution with stride 1 and no padding uses `x[n]` itself as its columns.
//!
//! Burn's generic backward computes dW as a convolution with batch and channels swapped (two
//! layout copies and a convolution whose "batch" is `c_in`) and dx as a transposed
//! convolution; these are the gemms PyTorch's CPU backward runs (`slow_conv2d`).
//!
//! Samples run in parallel, each with its own column buffer and a single-threaded gemm; dW's
//! per-sample products are summed within fixed chunks of samples and the chunks added in order,
//! so the result does not depend on the thread count.

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
use gemm::Parallelism;
use rayon::prelude::*;

use super::binary_op;
use super::real::{Real, contiguous, slice, tensor, with_real};

/// Most chunks dW's samples are split into (each holds one partial `[c_out, c_in·kh·kw]`).
const WEIGHT_GRAD_CHUNKS: usize = 8;

/// The backend extension: implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait Conv2dKernels: Backend {
    /// `conv2d(x, weight)` without bias, `groups == 1`.
    fn kindling_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

/// See [`super::try_conv2d`].
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, options: ConvOptions<2>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as Conv2dKernels>::kindling_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ))
}

/// Sizes of one convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub(super) batch: usize,
    pub(super) c_in: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c_out: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) stride: [usize; 2],
    /// (before, after) per axis.
    pub(super) padding: [(usize, usize); 2],
    pub(super) dilation: [usize; 2],
}

impl Geometry {
    pub(super) fn new(x: &[usize], weight: &[usize], options: &ConvOptions<2>) -> Self {
        let (kh, kw) = (weight[2], weight[3]);
        let out = |size: usize, k: usize, axis: usize| {
            let (before, after) = options.padding[axis];
            (size + before + after - options.dilation[axis] * (k - 1) - 1) / options.stride[axis]
                + 1
        };
        Self {
            batch: x[0],
            c_in: x[1],
            h: x[2],
            w: x[3],
            c_out: weight[0],
            kh,
            kw,
            oh: out(x[2], kh, 0),
            ow: out(x[3], kw, 1),
            stride: options.stride,
            padding: options.padding,
            dilation: options.dilation,
        }
    }

    /// Rows of the column matrix (`c_in·kh·kw`).
    fn k(&self) -> usize {
        self.c_in * self.kh * self.kw
    }

    /// Columns of the column matrix (`h'·w'`).
    fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Whether `x[n]` is its own column matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [(0, 0); 2]
    }
}

/// The output positions `o` along an axis whose input position for kernel offset `k` lies
/// inside the image, as a range, and the input position of its first element.
pub(super) fn valid_span(g: &Geometry, axis: usize, k: usize) -> (std::ops::Range<usize>, usize) {
    let (size, out) = ([g.h, g.w][axis], [g.oh, g.ow][axis]);
    let (stride, before) = (g.stride[axis], g.padding[axis].0);
    let offset = k * g.dilation[axis];
    // First o with o·stride + offset ≥ before; last with o·stride + offset - before < size.
    let first = before.saturating_sub(offset).div_ceil(stride).min(out);
    let end = if offset >= before + size {
        first
    } else {
        (before + size - offset)
            .div_ceil(stride)
            .min(out)
            .max(first)
    };
    (first..end, (first * stride + offset).saturating_sub(before))
}

/// Writes sample `x` (`[c_in, h, w]`) as its column matrix `[c_in·kh·kw, h'·w']`.
fn im2col<E: Real>(x: &[E], g: &Geometry, cols: &mut [E]) {
    let p = g.p();
    let stride = g.stride[1];
    for ci in 0..g.c_in {
        let plane = &x[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (rows, iy0) = valid_span(g, 0, ki);
            for kj in 0..g.kw {
                let (span, ix0) = valid_span(g, 1, kj);
                let row = &mut cols[((ci * g.kh + ki) * g.kw + kj) * p..][..p];
                for oy in 0..g.oh {
                    let out = &mut row[oy * g.ow..(oy + 1) * g.ow];
                    if !rows.contains(&oy) {
                        out.fill(E::default());
                        continue;
                    }
                    let iy = iy0 + (oy - rows.start) * g.stride[0];
                    let line = &plane[iy * g.w..(iy + 1) * g.w];
                    out[..span.start].fill(E::default());
                    out[span.end..].fill(E::default());
                    let dst = &mut out[span.clone()];
                    if stride == 1 {
                        dst.copy_from_slice(&line[ix0..ix0 + dst.len()]);
                    } else {
                        for (o, &v) in dst.iter_mut().zip(line[ix0..].iter().step_by(stride)) {
                            *o = v;
                        }
                    }
                }
            }
        }
    }
}

/// Adds the column matrix `cols` back onto sample `dx` (`[c_in, h, w]`), the adjoint of
/// [`im2col`].
fn col2im<E: Real>(cols: &[E], g: &Geometry, dx: &mut [E]) {
    let p = g.p();
    let stride = g.stride[1];
    for ci in 0..g.c_in {
        let plane = &mut dx[ci * g.h * g.w..(ci + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (rows, iy0) = valid_span(g, 0, ki);
            for kj in 0..g.kw {
                let (span, ix0) = valid_span(g, 1, kj);
                let row = &cols[((ci * g.kh + ki) * g.kw + kj) * p..][..p];
                for oy in rows.clone() {
                    let iy = iy0 + (oy - rows.start) * g.stride[0];
                    let line = &mut plane[iy * g.w..(iy + 1) * g.w];
                    let src = &row[oy * g.ow..(oy + 1) * g.ow][span.clone()];
                    if stride == 1 {
                        for (d, &v) in line[ix0..ix0 + src.len()].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (d, &v) in line[ix0..].iter_mut().step_by(stride).zip(src) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`, all row-major with the given row strides;
/// `rhs_t` reads `rhs` transposed (it is stored n×k).
#[allow(clippy::too_many_arguments)]
fn matmul<E: Real>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [E],
    accumulate: bool,
    lhs: &[E],
    lhs_t: bool,
    rhs: &[E],
    rhs_t: bool,
    parallelism: Parallelism,
) {
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n);
    // Strides (column, row) of each operand as stored.
    let (lhs_cs, lhs_rs) = if lhs_t {
        (m as isize, 1)
    } else {
        (1, k as isize)
    };
    let (rhs_cs, rhs_rs) = if rhs_t {
        (k as isize, 1)
    } else {
        (1, n as isize)
    };
    // SAFETY: the asserts above bound every index gemm reads or writes; `dst` is exclusively
    // borrowed, the operands shared; E is f32 or f64, both of which gemm supports.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr(),
            rhs_cs,
            rhs_rs,
            E::from_f64(1.0),
            E::from_f64(1.0),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Parallelism inside one gemm: all threads when there is one sample to spread them over,
/// none when the samples already run in parallel.
fn inner_parallelism(samples: usize) -> Parallelism {
    if samples == 1 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}

pub(super) fn forward_kernel<E: Real>(x: &[E], weight: &[E], g: &Geometry) -> Vec<E> {
    let (k, p) = (g.k(), g.p());
    let sample_in = g.c_in * g.h * g.w;
    let mut y = vec![E::default(); g.batch * g.c_out * p];
    let par = inner_parallelism(g.batch);
    y.par_chunks_mut(g.c_out * p)
        .zip(x.par_chunks(sample_in))
        .for_each_init(Vec::new, |cols, (out, xn)| {
            let cols: &[E] = if g.pointwise() {
                xn
            } else {
                cols.resize(k * p, E::default());
                im2col(xn, g, cols);
                cols
            };
            matmul((g.c_out, p, k), out, false, weight, false, cols, false, par);
        });
    y
}

pub(super) fn input_grad_kernel<E: Real>(weight: &[E], dy: &[E], g: &Geometry) -> Vec<E> {
    let (k, p) = (g.k(), g.p());
    let sample_in = g.c_in * g.h * g.w;
    let mut dx = vec![E::default(); g.batch * sample_in];
    let par = inner_parallelism(g.batch);
    dx.par_chunks_mut(sample_in)
        .zip(dy.par_chunks(g.c_out * p))
        .for_each_init(Vec::new, |cols, (dxn, dyn_)| {
            if g.pointwise() {
                matmul((k, p, g.c_out), dxn, false, weight, true, dyn_, false, par);
            } else {
                cols.resize(k * p, E::default());
                matmul((k, p, g.c_out), cols, false, weight, true, dyn_, false, par);
                col2im(cols, g, dxn);
            }
        });
    dx
}

pub(super) fn weight_grad_kernel<E: Real>(x: &[E], dy: &[E], g: &Geometry) -> Vec<E> {
    let (k, p) = (g.k(), g.p());
    let sample_in = g.c_in * g.h * g.w;
    let per_chunk = g.batch.div_ceil(WEIGHT_GRAD_CHUNKS).max(1);
    let chunks = g.batch.div_ceil(per_chunk);
    let par = inner_parallelism(chunks);
    let partials: Vec<Vec<E>> = (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            let mut dw = vec![E::default(); g.c_out * k];
            let mut cols = Vec::new();
            let samples = chunk * per_chunk..((chunk + 1) * per_chunk).min(g.batch);
            for (i, n) in samples.enumerate() {
                let xn = &x[n * sample_in..(n + 1) * sample_in];
                let cols: &[E] = if g.pointwise() {
                    xn
                } else {
                    cols.resize(k * p, E::default());
                    im2col(xn, g, &mut cols);
                    &cols
                };
                let dyn_ = &dy[n * g.c_out * p..(n + 1) * g.c_out * p];
                matmul(
                    (g.c_out, k, p),
                    &mut dw,
                    i > 0,
                    dyn_,
                    false,
                    cols,
                    true,
                    par,
                );
            }
            dw
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut dw = partials
        .next()
        .unwrap_or_else(|| vec![E::default(); g.c_out * k]);
    for partial in partials {
        for (a, b) in dw.iter_mut().zip(partial) {
            *a += b;
        }
    }
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

impl Conv2dKernels for Flex {
    fn kindling_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        binary_op::run(x, weight, &options, forward_flex)
    }
}

#[derive(Debug)]
struct Conv2dBackward;

impl Backward<Flex, 2> for Conv2dBackward {
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
                        tensor(dw, [g.c_out, g.c_in, g.kh, g.kw])
                    }),
                ])
            },
        );
    }
}

impl<C: CheckpointStrategy> Conv2dKernels for Autodiff<Flex, C> {
    fn kindling_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        binary_op::forward::<C, _, _>(Conv2dBackward, x, weight, options, forward_flex)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    use burn::tensor::{DType, Device, TensorData};

    use super::super::testing::{assert_close, random};

    /// Output and both gradients of the fused op against Burn's conv2d.
    fn compare(dtype: DType, x: [usize; 4], w: [usize; 4], options: ConvOptions<2>, tol: f64) {
        let device = Device::flex().autodiff();
        let (x0, w0) = (random(x, dtype, 1, &device), random(w, dtype, 2, &device));
        let out_dims = conv2d(x0.clone(), w0.clone(), None, options.clone()).dims();
        let weights = random(out_dims, dtype, 3, &device);
        let run = |fused: bool| {
            let xt = x0.clone().require_grad();
            let wt = w0.clone().require_grad();
            let y = if fused {
                super::conv2d(xt.clone(), wt.clone(), options.clone())
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
            // 3×3, padding 1 (the classify and U-Net blocks)
            (
                [3, 4, 9, 8],
                [5, 4, 3, 3],
                ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            ),
            // stride 2, padding 3, 7×7 (resnet's stem), odd size
            (
                [2, 3, 15, 13],
                [4, 3, 7, 7],
                ConvOptions::new([2, 2], [3, 3], [1, 1], 1),
            ),
            // pointwise (x is its own column matrix)
            (
                [2, 6, 5, 5],
                [3, 6, 1, 1],
                ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
            ),
            // pointwise with stride 2 (resnet's downsample)
            (
                [2, 6, 7, 7],
                [3, 6, 1, 1],
                ConvOptions::new([2, 2], [0, 0], [1, 1], 1),
            ),
            // dilation 2, asymmetric stride
            (
                [1, 2, 11, 10],
                [3, 2, 3, 3],
                ConvOptions::new([1, 2], [2, 1], [2, 2], 1),
            ),
            // more samples than dW chunks
            (
                [19, 2, 4, 4],
                [2, 2, 3, 3],
                ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            ),
            // asymmetric padding (ONNX "SAME_UPPER")
            (
                [2, 2, 6, 7],
                [3, 2, 2, 2],
                ConvOptions::new_with_padding([1, 1], [(0, 1), (1, 0)], [1, 1], 1),
            ),
        ]
    }

    #[test]
    fn f64_equals_burns_convolution() {
        for (x, w, options) in cases() {
            compare(DType::F64, x, w, options, 1e-12);
        }
    }

    #[test]
    fn f32_equals_burns_convolution() {
        for (x, w, options) in cases() {
            compare(DType::F32, x, w, options, 1e-5);
        }
    }

    /// f16 and bf16 (autocast's convolutions): computed in f32 and rounded once, so the output
    /// and both gradients are the f64 convolution of the same inputs to within the dtype's
    /// rounding, and all three keep the dtype.
    #[test]
    fn half_precision_is_computed_in_f32_and_keeps_its_dtype() {
        use burn::tensor::{FloatDType, Tensor};
        let device = Device::flex().autodiff();
        // Twice the unit roundoff: one rounding of an f32 result.
        for (dtype, tol) in [(DType::F16, 2f64.powi(-10)), (DType::BF16, 2f64.powi(-7))] {
            for (x, w, options) in cases() {
                let (x0, w0) = (random(x, dtype, 1, &device), random(w, dtype, 2, &device));
                let y_dims = conv2d(x0.clone(), w0.clone(), None, options.clone()).dims();
                let weights = random(y_dims, dtype, 3, &device);
                let run = |cast: Option<FloatDType>, fused: bool| -> Vec<TensorData> {
                    let to = |t: &Tensor<4>| match cast {
                        Some(d) => t.clone().cast(d),
                        None => t.clone(),
                    };
                    let (xt, wt) = (to(&x0).require_grad(), to(&w0).require_grad());
                    let y = if fused {
                        super::conv2d(xt.clone(), wt.clone(), options.clone())
                    } else {
                        conv2d(xt.clone(), wt.clone(), None, options.clone())
                    };
                    let grads = (y.clone() * to(&weights)).sum().backward();
                    let (dx, dw) = (xt.grad(&grads).expect("dx"), wt.grad(&grads).expect("dw"));
                    for (t, what) in [
                        (y.dtype(), "output"),
                        (dx.dtype(), "dx"),
                        (dw.dtype(), "dw"),
                    ] {
                        assert_eq!(t, to(&x0).dtype(), "{what} dtype");
                    }
                    vec![y.into_data(), dx.into_data(), dw.into_data()]
                };
                let (low, exact) = (run(None, true), run(Some(FloatDType::F64), false));
                for (i, (a, b)) in low.into_iter().zip(exact).enumerate() {
                    let what = ["output", "dx", "dw"][i];
                    assert_close(a, b, tol, &format!("{dtype:?} {x:?} {w:?} {what}"));
                }
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let device = Device::flex().autodiff();
        // The same inputs for both pools.
        let x0 = random([11, 3, 12, 12], DType::F32, 1, &device);
        let w0 = random([8, 3, 3, 3], DType::F32, 2, &device);
        let run = |threads: usize| -> Vec<TensorData> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            pool.install(|| {
                let x = x0.clone().require_grad();
                let w = w0.clone().require_grad();
                let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
                let y = super::conv2d(x.clone(), w.clone(), options);
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
