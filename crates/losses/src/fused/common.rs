//! What the fused loss kernels share: the float types they run on, contiguous views of Flex
//! tensors, and the fixed chunk size that keeps results independent of the thread count.

use burn::backend::flex::FlexTensor;
use burn::tensor::{Element, Shape, TensorData};

use super::math;

/// Elements per parallel task (fixed, so the split does not depend on the thread count).
pub const CHUNK: usize = 4096;

/// The float types the kernels run on.
pub trait Float:
    Element
    + bytemuck::Pod
    + Send
    + Sync
    + Default
    + PartialOrd
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
    + core::ops::Div<Output = Self>
    + core::ops::Neg<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    const MIN: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn abs(self) -> Self;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    /// e^x computed in f64 as accurately as this type's results need (f32: ~3e-11 relative,
    /// vectorising; f64: the standard library).
    fn wide_exp(x: f64) -> f64;
    /// ln(u) for a positive normal f64, likewise.
    fn wide_ln(u: f64) -> f64;
    /// ln(1 + t) for t ≥ 0, likewise.
    fn wide_ln_1p(t: f64) -> f64;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const MIN: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn exp(self) -> Self {
        math::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        math::ln(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        math::ln_1p(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn wide_exp(x: f64) -> f64 {
        math::exp64(x)
    }
    #[inline(always)]
    fn wide_ln(u: f64) -> f64 {
        math::ln64(u)
    }
    #[inline(always)]
    fn wide_ln_1p(t: f64) -> f64 {
        math::ln_1p64(t)
    }
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const MIN: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        f64::ln_1p(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn wide_exp(x: f64) -> f64 {
        x.exp()
    }
    #[inline(always)]
    fn wide_ln(u: f64) -> f64 {
        u.ln()
    }
    #[inline(always)]
    fn wide_ln_1p(t: f64) -> f64 {
        t.ln_1p()
    }
}

/// y^γ for y ≥ 0 (0^0 = 1), without branches on y (so the loops vectorise); exact for the
/// common γ = 1 and 2, which the callers pick outside their loops.
#[inline(always)]
pub fn pow<E: Float>(y: f64, gamma: f64) -> f64 {
    let general = E::wide_exp(gamma * E::wide_ln(y.max(f64::MIN_POSITIVE)));
    let at_zero = if gamma > 0.0 { 0.0 } else { 1.0 };
    if y > 0.0 { general } else { at_zero }
}

/// `[n, c, s]` of a `[n, c, ...]` shape.
pub fn ncs(shape: &Shape) -> (usize, usize, usize) {
    (
        shape[0],
        shape[1],
        (2..shape.num_dims()).map(|i| shape[i]).product(),
    )
}

/// The tensor's elements, contiguous (a copy only when it is not).
pub fn values<E: Float>(t: &FlexTensor) -> std::borrow::Cow<'_, [E]> {
    match t.as_slice::<E>() {
        Some(s) => std::borrow::Cow::Borrowed(s),
        None => std::borrow::Cow::Owned(
            t.to_contiguous()
                .as_slice::<E>()
                .expect("contiguous of the checked dtype")
                .to_vec(),
        ),
    }
}

pub fn tensor<E: Float>(v: Vec<E>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// Runs `$body` with `$E` the element type of `$dtype`.
macro_rules! with_float_impl {
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
            other => unreachable!("fused loss kernels run on f32/f64 only, got {other:?}"),
        }
    };
}

pub(crate) use with_float_impl as with_float;

/// Whether the CPU has AVX2 and FMA (cached by the standard library after the first call).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Whether the CPU has AVX-512 F (with AVX2 and FMA).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub fn has_avx512f() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && has_avx2_fma()
}

/// `fn $name<E: Float>(args) -> R` that runs the `#[inline(always)]` function `$inner`
/// compiled for AVX-512 F or AVX2 + FMA when the CPU has them, the portable (SSE2) build
/// otherwise:
/// run-time dispatch, so one binary serves every x86-64 CPU. Everything `$inner` calls in its
/// loops is `#[inline(always)]` too, so it is compiled with the features; Rust never
/// contracts `a·b + c` into an FMA by itself, so both builds round alike and results do not
/// depend on the CPU.
macro_rules! dispatched_impl {
    ($(#[$attr:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty = $inner:ident) => {
        $(#[$attr])*
        fn $name<E: Float>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2<E: Float>($($arg: $ty),*) -> $ret {
                $inner::<E>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512<E: Float>($($arg: $ty),*) -> $ret {
                $inner::<E>($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::fused::common::has_avx512f() {
                // SAFETY: the CPU has the features, checked on the line above.
                return unsafe { avx512::<E>($($arg),*) };
            }
            #[cfg(target_arch = "x86_64")]
            if $crate::fused::common::has_avx2_fma() {
                // SAFETY: the CPU has both features, checked on the line above.
                return unsafe { avx2::<E>($($arg),*) };
            }
            $inner::<E>($($arg),*)
        }
    };
}

pub(crate) use dispatched_impl as dispatched;
