//! 2-D transposed convolution (no groups) through the convolution kernels of [`super::conv`]:
//! a transposed convolution is the data gradient of the convolution that maps its output back
//! onto its input, so with that convolution's geometry `g` (input = the transposed output,
//! weight `[in, out, kh, kw]` read as `[conv out, conv in, kh, kw]`):
//!
//! ```text
//! y  = col2im(Wᵀ · x)          the convolution's input gradient
//! dx = W · im2col(dy)          the convolution's forward
//! dW = Σ_n x[n] · im2col(dy[n])ᵀ   the convolution's weight gradient, roles swapped
//! ```
//!
//! Burn's generic transposed convolution on Flex goes through its 3-D kernel both ways.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::tensor::Tensor;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

use super::binary_op;
use super::conv::{Geometry, forward_kernel, input_grad_kernel, weight_grad_kernel};
use super::real::{contiguous, slice, tensor, with_real};

/// The backend extension: implemented for Flex and for autodiff over Flex.
#[backend_extension(Flex, Autodiff)]
pub trait ConvTranspose2dKernels: Backend {
    /// `conv_transpose2d(x, weight)` without bias, `groups == 1`.
    fn kindling_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self>;
}

/// See [`super::try_conv_transpose2d`].
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    options: ConvTransposeOptions<2>,
) -> Tensor<4> {
    Tensor::from_dispatch(
        <Dispatch as ConvTranspose2dKernels>::kindling_conv_transpose2d(
            x.into_dispatch(),
            weight.into_dispatch(),
            options,
        ),
    )
}

/// The geometry of the convolution whose data gradient this transposed convolution is.
fn geometry(x: &[usize], weight: &[usize], o: &ConvTransposeOptions<2>) -> Geometry {
    let out = |axis: usize| {
        (x[2 + axis] - 1) * o.stride[axis]
            + o.dilation[axis] * (weight[2 + axis] - 1)
            + o.padding_out[axis]
            + 1
            - 2 * o.padding[axis]
    };
    let conv = ConvOptions::new(o.stride, o.padding, o.dilation, 1);
    let g = Geometry::new(&[x[0], weight[1], out(0), out(1)], weight, &conv);
    debug_assert_eq!(
        (g.oh, g.ow),
        (x[2], x[3]),
        "transposed convolution geometry"
    );
    g
}

fn forward_flex(
    x: FlexTensor,
    weight: FlexTensor,
    options: &ConvTransposeOptions<2>,
) -> FlexTensor {
    let g = geometry(&x.shape(), &weight.shape(), options);
    let (x, weight) = (contiguous(x), contiguous(weight));
    with_real!(x.dtype(), E => {
        let y = input_grad_kernel::<E>(slice(&weight), slice(&x), &g);
        tensor(y, [g.batch, g.c_in, g.h, g.w])
    })
}

impl ConvTranspose2dKernels for Flex {
    fn kindling_conv_transpose2d(
        x: FlexTensor,
        weight: FlexTensor,
        options: ConvTransposeOptions<2>,
    ) -> FlexTensor {
        binary_op::run(x, weight, &options, forward_flex)
    }
}

#[derive(Debug)]
struct ConvTranspose2dBackward;

impl Backward<Flex, 2> for ConvTranspose2dBackward {
    /// The input and the weight (checkpointed) and the options.
    type State = binary_op::State<ConvTransposeOptions<2>>;

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
                let g = geometry(&x.shape(), &weight.shape(), options);
                with_real!(x.dtype(), E => [
                    need_x.then(|| {
                        let dx = forward_kernel::<E>(slice(dy), slice(weight), &g);
                        tensor(dx, [g.batch, g.c_out, g.oh, g.ow])
                    }),
                    need_w.then(|| {
                        let dw = weight_grad_kernel::<E>(slice(dy), slice(x), &g);
                        tensor(dw, [g.c_out, g.c_in, g.kh, g.kw])
                    }),
                ])
            },
        );
    }
}

impl<C: CheckpointStrategy> ConvTranspose2dKernels for Autodiff<Flex, C> {
    fn kindling_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        binary_op::forward::<C, _, _>(ConvTranspose2dBackward, x, weight, options, forward_flex)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::conv_transpose2d;
    use burn::tensor::ops::ConvTransposeOptions;
    use burn::tensor::{DType, Device};

    use super::super::testing::{assert_close, random};

    fn compare(
        dtype: DType,
        x: [usize; 4],
        w: [usize; 4],
        options: ConvTransposeOptions<2>,
        tol: f64,
    ) {
        let device = Device::flex().autodiff();
        let (x0, w0) = (random(x, dtype, 1, &device), random(w, dtype, 2, &device));
        let out_dims = conv_transpose2d(x0.clone(), w0.clone(), None, options.clone()).dims();
        let weights = random(out_dims, dtype, 3, &device);
        let run = |fused: bool| {
            let xt = x0.clone().require_grad();
            let wt = w0.clone().require_grad();
            let y = if fused {
                super::conv_transpose2d(xt.clone(), wt.clone(), options.clone())
            } else {
                conv_transpose2d(xt.clone(), wt.clone(), None, options.clone())
            };
            assert_eq!(y.dims(), out_dims);
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

    #[test]
    fn equals_burns_transposed_convolution() {
        let cases = [
            // the U-Net's 2×2 stride-2 upsampling
            (
                [2, 6, 5, 4],
                [6, 3, 2, 2],
                ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1),
            ),
            // 3×3, padding 1, output padding 1, stride 2
            (
                [2, 3, 4, 5],
                [3, 4, 3, 3],
                ConvTransposeOptions::new([2, 2], [1, 1], [1, 1], [1, 1], 1),
            ),
            // dilation 2, asymmetric stride
            (
                [1, 2, 5, 6],
                [2, 3, 3, 3],
                ConvTransposeOptions::new([1, 2], [1, 0], [0, 1], [2, 2], 1),
            ),
        ];
        for (x, w, options) in cases {
            compare(DType::F64, x, w, options.clone(), 1e-12);
            compare(DType::F32, x, w, options, 1e-5);
        }
    }
}
