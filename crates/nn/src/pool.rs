//! Max pooling through the fused Flex kernel where it runs, Burn's everywhere else.

use burn::tensor::Tensor;
use burn::tensor::module;
use burn::tensor::ops::MaxPoolOptions;

/// `burn::tensor::module::max_pool2d` with the fused Flex kernel where it runs (same values
/// and gradients; see [`crate::fused::try_max_pool2d`]).
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use burn::tensor::ops::MaxPoolOptions;
///
/// let x = Tensor::<4>::ones([1, 3, 8, 8], &Device::flex());
/// let y = kindling_nn::max_pool2d(x, MaxPoolOptions::new([2, 2]).with_stride([2, 2]));
/// assert_eq!(y.dims(), [1, 3, 4, 4]);
/// ```
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    match crate::fused::try_max_pool2d(&x, &options) {
        Some(y) => y,
        None => module::max_pool2d(x, options),
    }
}
