//! Activations, chosen by value so a block can carry the one its torchvision original uses.

use burn::tensor::Tensor;
use burn::tensor::activation;

/// An element-wise activation with PyTorch's exact definition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`.
    #[default]
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
    /// `x * sigmoid(x)` (SiLU / swish).
    Silu,
    /// `x * relu6(x + 3) / 6`.
    Hardswish,
    /// `relu6(x + 3) / 6` (PyTorch's slope 1/6, not Burn's default 0.2).
    Hardsigmoid,
    /// `sigmoid(x)`.
    Sigmoid,
    /// Exact GELU, `x * Φ(x)` with `erf` (PyTorch's default `approximate = "none"`).
    Gelu,
    /// The input unchanged.
    Identity,
}

impl Activation {
    /// Applies the activation.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Relu => activation::relu(x),
            Self::Relu6 => activation::relu6(x),
            Self::Silu => activation::silu(x),
            Self::Hardswish => activation::hard_swish(x),
            Self::Hardsigmoid => activation::hard_sigmoid(x, 1.0 / 6.0, 0.5),
            Self::Sigmoid => activation::sigmoid(x),
            Self::Gelu => activation::gelu(x),
            Self::Identity => x,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn hardsigmoid_and_hardswish_match_pytorch() {
        // torch 2.9: F.hardsigmoid / F.hardswish of [-4, -1, 0, 1.5, 4].
        let device = Device::flex();
        let x =
            || Tensor::<1>::from_data(TensorData::from([-4.0f32, -1.0, 0.0, 1.5, 4.0]), &device);
        let hs: Vec<f32> = Activation::Hardsigmoid
            .forward(x())
            .to_data()
            .try_to_vec()
            .unwrap();
        let hw: Vec<f32> = Activation::Hardswish
            .forward(x())
            .to_data()
            .try_to_vec()
            .unwrap();
        let want_hs = [0.0f32, 0.333_333_34, 0.5, 0.75, 1.0];
        let want_hw = [0.0f32, -0.333_333_34, 0.0, 1.125, 4.0];
        for i in 0..5 {
            assert!((hs[i] - want_hs[i]).abs() < 1e-6, "{hs:?}");
            assert!((hw[i] - want_hw[i]).abs() < 1e-6, "{hw:?}");
        }
    }
}
