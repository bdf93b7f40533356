//! The layers every Kindling model is built from.
//!
//! They keep Burn's record layout (so `burn-store`'s PyTorch adapter maps torchvision
//! `state_dict`s onto them) and fix what Burn's own layers do differently from PyTorch:
//! [`BatchNorm`] updates `running_var` with the unbiased batch variance, [`Activation`]'s
//! Hardsigmoid has PyTorch's slope 1/6, [`DropPath`] is the identity in eval.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use kindling_nn::{Activation, BatchNormConfig, Conv2dConfig};
//!
//! let device = Device::flex();
//! let conv = Conv2dConfig::new(3, 8, [3, 3]).with_padding([1, 1]).init(&device);
//! let bn = BatchNormConfig::new(8).init(&device);
//! let x = Tensor::<4>::ones([1, 3, 16, 16], &device);
//! let y = Activation::Relu.forward(bn.forward(conv.forward(x)));
//! assert_eq!(y.dims(), [1, 8, 16, 16]);
//! ```

mod activation;
mod attention;
mod conv;
mod conv_transpose;
mod drop_path;
pub mod flops;
pub mod fused;
mod linear;
mod norm;
mod pool;
mod prelu;
mod squeeze_excitation;

pub use activation::Activation;
pub use attention::MultiheadAttention;
pub use conv::{Conv2d, Conv2dConfig};
pub use conv_transpose::{ConvTranspose2d, ConvTranspose2dConfig};
pub use drop_path::DropPath;
pub use linear::{Linear, LinearConfig};
pub use norm::{BatchNorm, BatchNormConfig, LayerNorm, LayerNorm2d, LayerNormConfig};
pub use pool::max_pool2d;
pub use prelu::Prelu;
pub use squeeze_excitation::SqueezeExcitation;
