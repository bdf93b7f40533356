//! The element types the fused kernels compute in (f32, f64) and the conversions between Flex
//! tensors and slices.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::tensor::{DType, Element, FloatDType, Shape, TensorData};

/// A float the kernels run on; sums accumulate in `Acc` (f64 for both: f32 statistics of a
/// large batch lose digits in an f32 sum).
pub trait Real:
    Element
    + bytemuck::Pod
    + Send
    + Sync
    + Copy
    + Default
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
    + core::ops::AddAssign
    + PartialOrd
    + 'static
{
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl Real for f32 {
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// The low-precision dtype (f16, bf16) a kernel widens to f32 and rounds its results back to,
/// if `tensor` has one.
pub fn low_precision(tensor: &FlexTensor) -> Option<FloatDType> {
    match tensor.dtype() {
        DType::F16 => Some(FloatDType::F16),
        DType::BF16 => Some(FloatDType::BF16),
        _ => None,
    }
}

/// Flex's cast.
pub fn cast(tensor: FlexTensor, dtype: FloatDType) -> FlexTensor {
    <Flex as FloatTensorOps<Flex>>::float_cast(tensor, dtype)
}

/// The tensor's elements in row-major order (a copy only when it is not contiguous).
pub fn contiguous(tensor: FlexTensor) -> FlexTensor {
    if tensor.layout().contiguous_offsets().is_some() {
        tensor
    } else {
        tensor.to_contiguous()
    }
}

/// A contiguous tensor's elements.
pub fn slice<E: Real>(tensor: &FlexTensor) -> &[E] {
    tensor
        .as_slice::<E>()
        .expect("fused kernel input made contiguous, of the checked dtype")
}

/// A Flex tensor owning `values` with `shape`.
pub fn tensor<E: Real>(values: Vec<E>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// Runs `$body` with `$E` bound to the element type of `$dtype` (f32 or f64).
macro_rules! with_real {
    ($dtype:expr, $E:ident => $body:expr) => {
        match $dtype {
            burn::tensor::DType::F32 => {
                type $E = f32;
                $body
            }
            burn::tensor::DType::F64 => {
                type $E = f64;
                $body
            }
            other => unreachable!("fused kernels are only called on f32/f64, got {other:?}"),
        }
    };
}
pub(crate) use with_real;
