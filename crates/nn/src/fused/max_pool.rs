//! 2-D max pooling, one pass per plane forward (keeping each window's arg-max) and a scatter
//! of the output gradient onto the arg-max positions backward, planes in parallel.
//!
//! Semantics are PyTorch's `max_pool2d`: padding never wins (it is −∞), the first maximum in
//! row-major window order wins ties, and a NaN in a window makes the output NaN. Burn 0.22's
//! Flex pooling goes through a generic 3-D kernel that was 15–20 % of the classify model's
//! step; this is the 2-D loop with the 2×2/stride 2 case unrolled.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{FloatDType, Tensor};
use rayon::prelude::*;

use super::real::{Real, cast, contiguous, low_precision, slice, tensor, with_real};

/// The backend extension: implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait MaxPool2dKernels: Backend {
    /// `max_pool2d(x)` with `ceil_mode == false`.
    fn kindling_max_pool2d(x: FloatTensor<Self>, options: MaxPoolOptions<2>) -> FloatTensor<Self>;
}

/// See [`super::try_max_pool2d`].
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as MaxPool2dKernels>::kindling_max_pool2d(
        x.into_dispatch(),
        options,
    ))
}

/// Output size along one axis (floor mode).
fn out_size(size: usize, options: &MaxPoolOptions<2>, axis: usize) -> usize {
    let (before, after) = options.padding[axis];
    let span = options.dilation[axis] * (options.kernel_size[axis] - 1) + 1;
    (size + before + after).saturating_sub(span) / options.stride[axis] + 1
}

/// Max and arg-max (index into the plane) of each window of one `[h, w]` plane.
fn pool_plane<E: Real>(
    plane: &[E],
    (h, w): (usize, usize),
    options: &MaxPoolOptions<2>,
    out: &mut [E],
    arg: &mut [u32],
) {
    let (oh, ow) = (out_size(h, options, 0), out_size(w, options, 1));
    let [kh, kw] = options.kernel_size;
    let [sh, sw] = options.stride;
    let [dh, dw] = options.dilation;
    let (ph, pw) = (options.padding[0].0, options.padding[1].0);
    let simple = [kh, kw] == [2, 2] && [sh, sw] == [2, 2] && [dh, dw] == [1, 1] && ph + pw == 0;
    for oy in 0..oh {
        for ox in 0..ow {
            let o = oy * ow + ox;
            if simple {
                let i = 2 * oy * w + 2 * ox;
                let mut best = (plane[i], i);
                for j in [i + 1, i + w, i + w + 1] {
                    if better(plane[j], best.0) {
                        best = (plane[j], j);
                    }
                }
                (out[o], arg[o]) = (best.0, best.1 as u32);
                continue;
            }
            let mut best: Option<(E, usize)> = None;
            for ki in 0..kh {
                let Some(iy) = (oy * sh + ki * dh).checked_sub(ph).filter(|&y| y < h) else {
                    continue;
                };
                for kj in 0..kw {
                    let Some(ix) = (ox * sw + kj * dw).checked_sub(pw).filter(|&x| x < w) else {
                        continue;
                    };
                    let j = iy * w + ix;
                    if best.is_none_or(|(v, _)| better(plane[j], v)) {
                        best = Some((plane[j], j));
                    }
                }
            }
            // A window entirely in the padding (only possible with padding ≥ kernel, which
            // Burn rejects) would be −∞; keep the first position for a defined gradient.
            let (v, j) = best.unwrap_or((E::from_f64(f64::NEG_INFINITY), 0));
            (out[o], arg[o]) = (v, j as u32);
        }
    }
}

/// PyTorch's rule: a value replaces the running max when greater, or when it is NaN.
fn better<E: Real>(candidate: E, best: E) -> bool {
    #[allow(clippy::eq_op)] // x != x is the NaN test, without a conversion per comparison
    {
        candidate > best || (candidate != candidate && best == best)
    }
}

/// Output `[n, c, h', w']` and arg-max indices (per plane).
fn forward_kernel<E: Real>(
    x: &[E],
    [n, c, h, w]: [usize; 4],
    options: &MaxPoolOptions<2>,
) -> (Vec<E>, Vec<u32>, [usize; 4]) {
    let (oh, ow) = (out_size(h, options, 0), out_size(w, options, 1));
    let mut out = vec![E::default(); n * c * oh * ow];
    let mut arg = vec![0u32; out.len()];
    out.par_chunks_mut(oh * ow)
        .zip(arg.par_chunks_mut(oh * ow))
        .zip(x.par_chunks(h * w))
        .for_each(|((o, a), plane)| pool_plane(plane, (h, w), options, o, a));
    (out, arg, [n, c, oh, ow])
}

/// dx: each output gradient added at its window's arg-max.
fn backward_kernel<E: Real>(
    dy: &[E],
    arg: &[u32],
    plane_out: usize,
    x_shape: [usize; 4],
) -> Vec<E> {
    let plane_in = x_shape[2] * x_shape[3];
    let mut dx = vec![E::default(); x_shape.iter().product()];
    dx.par_chunks_mut(plane_in)
        .zip(dy.par_chunks(plane_out).zip(arg.par_chunks(plane_out)))
        .for_each(|(d, (g, a))| {
            for (&gv, &j) in g.iter().zip(a) {
                d[j as usize] += gv;
            }
        });
    dx
}

/// The forward; an f16/bf16 input is pooled in f32 (exact: the maxima are inputs) and rounded
/// back, so that under autocast the pool keeps u32 arg-maxes instead of Burn's i64 indices.
fn forward_flex(x: FlexTensor, options: &MaxPoolOptions<2>) -> (FlexTensor, Vec<u32>) {
    match low_precision(&x) {
        Some(dtype) => {
            let (y, arg) = forward_real(cast(x, FloatDType::F32), options);
            (cast(y, dtype), arg)
        }
        None => forward_real(x, options),
    }
}

fn forward_real(x: FlexTensor, options: &MaxPoolOptions<2>) -> (FlexTensor, Vec<u32>) {
    let shape: [usize; 4] = x.shape().dims();
    let x = contiguous(x);
    with_real!(x.dtype(), E => {
        let (out, arg, out_shape) = forward_kernel::<E>(slice(&x), shape, options);
        (tensor(out, out_shape), arg)
    })
}

impl MaxPool2dKernels for Flex {
    fn kindling_max_pool2d(x: FlexTensor, options: MaxPoolOptions<2>) -> FlexTensor {
        forward_flex(x, &options).0
    }
}

#[derive(Debug)]
struct MaxPool2dBackward;

impl Backward<Flex, 1> for MaxPool2dBackward {
    /// The input's shape and the arg-max of every output.
    type State = ([usize; 4], std::sync::Arc<Vec<u32>>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let (x_shape, arg) = ops.state;
        if let Some(node) = node_x {
            // An f16/bf16 gradient is scattered (overlapping windows summed) in f32.
            let low = low_precision(&dy);
            let dy = if low.is_some() {
                cast(dy, FloatDType::F32)
            } else {
                dy
            };
            let plane_out = dy.shape().dims::<4>()[2] * dy.shape().dims::<4>()[3];
            let dx = with_real!(dy.dtype(), E => {
                tensor(backward_kernel::<E>(slice(&dy), &arg, plane_out, x_shape), x_shape)
            });
            let dx = match low {
                Some(d) => cast(dx, d),
                None => dx,
            };
            grads.register::<Flex>(node.id, dx);
        }
    }
}

impl<C: CheckpointStrategy> MaxPool2dKernels for Autodiff<Flex, C> {
    fn kindling_max_pool2d(x: FloatTensor<Self>, options: MaxPoolOptions<2>) -> FloatTensor<Self> {
        match MaxPool2dBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let shape: [usize; 4] = x.shape().dims();
                let (y, arg) = forward_flex(x.into_primitive(), &options);
                prep.finish((shape, std::sync::Arc::new(arg)), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward_flex(x.into_primitive(), &options).0),
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    use burn::tensor::{DType, Device, Tensor, TensorData};

    use super::super::testing::{assert_close, random};

    fn compare(dtype: DType, x: [usize; 4], options: MaxPoolOptions<2>) {
        let device = Device::flex().autodiff();
        let x0 = random(x, dtype, 1, &device);
        let run = |fused: bool| {
            let xt = x0.clone().require_grad();
            let y = if fused {
                super::max_pool2d(xt.clone(), options.clone())
            } else {
                max_pool2d(xt.clone(), options.clone())
            };
            assert_eq!(y.dtype(), dtype, "output dtype");
            let weights = random(y.dims(), dtype, 3, &device);
            let grads = (y.clone() * weights).sum().backward();
            [y.into_data(), xt.grad(&grads).expect("dx").into_data()]
        };
        let (fused, burn) = (run(true), run(false));
        for (i, (a, b)) in fused.into_iter().zip(burn).enumerate() {
            let what = ["output", "dx"][i];
            // A max and its scattered gradient are copies: exactly equal.
            assert_close(a, b, 0.0, &format!("{dtype:?} {x:?} {options:?} {what}"));
        }
    }

    #[test]
    fn equals_burns_max_pool() {
        for dtype in [DType::F32, DType::F64] {
            compare(
                dtype,
                [2, 3, 8, 6],
                MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
            );
            // odd size: the last row and column are dropped (floor mode)
            compare(
                dtype,
                [1, 2, 9, 7],
                MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
            );
            // resnet's stem pool: 3×3, stride 2, padding 1
            compare(
                dtype,
                [2, 2, 11, 10],
                MaxPoolOptions::new([3, 3])
                    .with_stride([2, 2])
                    .with_padding([1, 1]),
            );
            // overlapping windows, dilation (f32/f64 only below: Burn sums overlapping f16
            // gradients in f16, the kernel in f32)
            compare(
                dtype,
                [1, 2, 10, 9],
                MaxPoolOptions::new([3, 2])
                    .with_stride([1, 2])
                    .with_dilation([2, 1]),
            );
        }
    }

    /// f16 and bf16 (autocast): pooled in f32 and rounded back, which is exact, so equal to
    /// Burn's pool in the dtype wherever no window overlaps another.
    #[test]
    fn half_precision_equals_burns_max_pool() {
        for dtype in [DType::F16, DType::BF16] {
            compare(
                dtype,
                [2, 3, 8, 6],
                MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
            );
            compare(
                dtype,
                [1, 2, 9, 7],
                MaxPoolOptions::new([3, 3]).with_stride([3, 3]),
            );
        }
    }

    #[test]
    fn ties_go_to_the_first_and_nan_propagates_like_pytorch() {
        // torch.nn.functional.max_pool2d(x, 2, return_indices=True) on
        // [[1, 1], [1, 0]] → value 1, index 0; on [[0, nan], [5, 1]] → nan.
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1f32, 1., 1., 0., 0., f32::NAN, 5., 1.], [1, 2, 2, 2]),
            &device,
        )
        .require_grad();
        let y = super::max_pool2d(x.clone(), MaxPoolOptions::new([2, 2]).with_stride([2, 2]));
        let values: Vec<f32> = y.clone().into_data().try_to_vec().expect("f32");
        assert_eq!(values[0], 1.0);
        assert!(values[1].is_nan());
        let grads = y.sum().backward();
        let dx: Vec<f32> = x
            .grad(&grads)
            .expect("dx")
            .into_data()
            .try_to_vec()
            .expect("f32");
        assert_eq!(&dx[..4], &[1.0, 0.0, 0.0, 0.0]);
        assert_eq!(&dx[4..], &[0.0, 1.0, 0.0, 0.0]);
    }
}
