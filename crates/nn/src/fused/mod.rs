//! Fused CPU kernels for the Flex backend: BatchNorm's training forward and backward in one pass
//! each, the convolution forward and its data and weight gradients as gemms over im2col columns,
//! depthwise convolutions as direct per-plane loops, transposed convolutions through the same
//! gemms, and 2-D max pooling.
//!
//! Burn 0.22 runs both through generic compositions on Flex (BatchNorm as ~8 tensor ops forward
//! and ~15 backward with layout copies; the conv weight gradient as a convolution with batch and
//! channels swapped). Each kernel here is an operation of a backend extension
//! (`#[backend_extension(Flex, Autodiff)]`) with a hand-written backward for autodiff. The
//! layers call them through the `try_*` functions, which answer `None` for anything a kernel
//! does not cover — another device, a dtype other than f32/f64, grouped convolutions that are
//! not depthwise — and the
//! layer then runs Burn's composition, so the numbers on every other device do not change.
//!
//! Determinism: every reduction runs in a fixed order over fixed chunks, so the results are
//! bit-identical whatever the number of threads.

#[cfg(feature = "flex")]
mod batch_norm;
#[cfg(feature = "flex")]
mod binary_op;
#[cfg(feature = "flex")]
mod conv;
#[cfg(feature = "flex")]
mod conv_transpose;
#[cfg(feature = "flex")]
mod depthwise;
#[cfg(feature = "flex")]
mod max_pool;
#[cfg(feature = "flex")]
mod real;

use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, MaxPoolOptions};
use burn::tensor::{DType, Tensor};

/// Whether the fused kernels run for `tensor`: on a Flex device (with or without autodiff), in
/// f32 or f64, with the kernels compiled in (`flex` feature) and not switched off by
/// `KINDLING_FUSED=0` (a switch for measuring them against Burn's composition).
pub fn fused_available<const D: usize>(tensor: &Tensor<D>) -> bool {
    matches!(tensor.dtype(), DType::F32 | DType::F64) && on_fused_device(tensor)
}

/// [`fused_available`] for the convolution, BatchNorm and max-pool kernels, which also take f16 and bf16
/// (autocast's dtypes): they widen them to f32 and round the results back (`binary_op::run`).
fn fused_available_widening<const D: usize>(tensor: &Tensor<D>) -> bool {
    matches!(
        tensor.dtype(),
        DType::F32 | DType::F64 | DType::F16 | DType::BF16
    ) && on_fused_device(tensor)
}

/// Whether `tensor` is on a Flex device with the kernels compiled in and enabled.
fn on_fused_device<const D: usize>(tensor: &Tensor<D>) -> bool {
    #[cfg(feature = "flex")]
    {
        use burn::backend::DispatchDevice;
        let device = tensor.device();
        let on_flex = match device.as_dispatch() {
            DispatchDevice::Flex(_) => true,
            DispatchDevice::Autodiff(inner) => {
                matches!(inner.clone().inner(), DispatchDevice::Flex(_))
            }
            #[allow(unreachable_patterns)]
            _ => false,
        };
        on_flex && enabled()
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = tensor;
        false
    }
}

#[cfg(feature = "flex")]
fn enabled() -> bool {
    use std::sync::OnceLock;
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("KINDLING_FUSED").map_or(true, |v| v != "0"))
}

/// Training-mode BatchNorm with the batch's statistics: `(output, mean, biased variance)`, or
/// `None` where the fused kernel does not run (see the module docs). An f16/bf16 `x` with f32
/// `gamma` and `beta` (autocast) is computed in f32: the output has `x`'s dtype, the statistics
/// are f32.
///
/// # Shapes
/// - `x`: `[batch, channels, ...]`; `gamma`, `beta` and the returned statistics `[channels]`
pub fn try_batch_norm_train<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: &Tensor<1>,
    epsilon: f64,
) -> Option<(Tensor<D>, Tensor<1>, Tensor<1>)> {
    // Parameters of the input's dtype, or f32 ones for an f16/bf16 input (autocast: the kernel
    // widens the input and keeps it low precision for the backward).
    let params = match x.dtype() {
        DType::F16 | DType::BF16 => DType::F32,
        dtype => dtype,
    };
    if D < 2 || !fused_available_widening(x) || gamma.dtype() != params || beta.dtype() != params {
        return None;
    }
    #[cfg(feature = "flex")]
    {
        Some(batch_norm::train(
            x.clone(),
            gamma.clone(),
            beta.clone(),
            epsilon,
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        let _ = epsilon;
        None
    }
}

/// A 2-D convolution without bias: with `groups == 1` its backward computes the data gradient
/// as gemm + col2im and the weight gradient as one gemm per chunk of samples over im2col
/// columns; a depthwise convolution (`groups == in`, weight `[m·in, 1, kh, kw]`) runs direct
/// per-plane loops both ways; f16 and bf16 inputs are computed in f32 and rounded back. `None`
/// where it does not run (another device, other grouped convolutions).
///
/// # Shapes
/// - `x`: `[batch, in, h, w]`, `weight`: `[out, in / groups, kh, kw]` → `[batch, out, h', w']`
pub fn try_conv2d(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvOptions<2>,
) -> Option<Tensor<4>> {
    let (c_in, [c_out, per_group, _, _]) = (x.dims()[1], weight.dims());
    let depthwise = options.groups == c_in && c_in > 1 && per_group == 1 && c_out % c_in == 0;
    if (options.groups != 1 && !depthwise)
        || !fused_available_widening(x)
        || weight.dtype() != x.dtype()
    {
        return None;
    }
    #[cfg(feature = "flex")]
    {
        Some(if depthwise {
            depthwise::depthwise_conv2d(x.clone(), weight.clone(), options.clone())
        } else {
            conv::conv2d(x.clone(), weight.clone(), options.clone())
        })
    }
    #[cfg(not(feature = "flex"))]
    {
        None
    }
}

/// A 2-D transposed convolution without bias through the convolution's gemm kernels (its
/// output is a convolution's data gradient; see `conv_transpose`), f16 and bf16 computed in f32;
/// `None` where it does not run (another device, `groups > 1`).
///
/// # Shapes
/// - `x`: `[batch, in, h, w]`, `weight`: `[in, out, kh, kw]` → `[batch, out, h', w']`
pub fn try_conv_transpose2d(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    options: &ConvTransposeOptions<2>,
) -> Option<Tensor<4>> {
    if options.groups != 1 || !fused_available_widening(x) || weight.dtype() != x.dtype() {
        return None;
    }
    #[cfg(feature = "flex")]
    {
        Some(conv_transpose::conv_transpose2d(
            x.clone(),
            weight.clone(),
            options.clone(),
        ))
    }
    #[cfg(not(feature = "flex"))]
    {
        None
    }
}

/// 2-D max pooling (PyTorch's semantics) whose backward scatters onto the stored arg-max;
/// f16/bf16 pooled in f32; `None` where it does not run (another device, `ceil_mode`).
///
/// # Shapes
/// - `x`: `[batch, channels, h, w]` → `[batch, channels, h', w']`
pub fn try_max_pool2d(x: &Tensor<4>, options: &MaxPoolOptions<2>) -> Option<Tensor<4>> {
    let [_, _, h, w] = x.dims();
    // Arg-max indices are u32 per plane.
    if options.ceil_mode || h * w > u32::MAX as usize || !fused_available_widening(x) {
        return None;
    }
    #[cfg(feature = "flex")]
    {
        Some(max_pool::max_pool2d(x.clone(), options.clone()))
    }
    #[cfg(not(feature = "flex"))]
    {
        None
    }
}

#[cfg(all(test, feature = "flex"))]
pub(crate) mod testing {
    //! Comparison of a fused op with Burn's composition on the same inputs.
    use burn::tensor::{Device, Tensor, TensorData};
    use rand::{RngExt, SeedableRng};

    /// A standard-normal tensor of `shape` on `device` in `dtype` (f32 or f64), from its own
    /// seeded generator: the device's generator is shared by the tests running in parallel, so
    /// `device.seed(s)` followed by a draw need not give the same values twice.
    pub fn random<const D: usize>(
        shape: [usize; D],
        dtype: burn::tensor::DType,
        seed: u64,
        device: &Device,
    ) -> Tensor<D> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let len = shape.iter().product();
        let values: Vec<f32> = (0..len)
            .map(|_| rng.sample(rand_distr::StandardNormal))
            .collect();
        Tensor::<D>::from_data(TensorData::new(values, shape), device)
            .cast(burn::tensor::FloatDType::from(dtype))
    }

    /// Asserts `|a - b| ≤ tol · max|b|` element-wise (relative to the tensor's scale).
    pub fn assert_close(a: TensorData, b: TensorData, tol: f64, what: &str) {
        let a: Vec<f64> = a.convert::<f64>().try_to_vec::<f64>().expect("f64 data");
        let b: Vec<f64> = b.convert::<f64>().try_to_vec::<f64>().expect("f64 data");
        assert_eq!(a.len(), b.len(), "{what}: lengths");
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
}
