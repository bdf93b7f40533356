//! Squeeze-and-excitation (torchvision `SqueezeExcitation`).

use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::module::adaptive_avg_pool2d;

use crate::{Activation, Conv2d, Conv2dConfig};

/// `x * scale(fc2(act(fc1(avgpool(x)))))`, with `fc1`/`fc2` 1×1 convolutions with bias as in
/// torchvision (ReLU + Sigmoid in EfficientNet/RegNet as SiLU + Sigmoid, Hardsigmoid in
/// MobileNetV3).
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    /// Reduction, `channels → squeeze_channels`.
    pub fc1: Conv2d,
    /// Expansion, `squeeze_channels → channels`.
    pub fc2: Conv2d,
    /// Activation after `fc1`.
    #[module(skip)]
    pub activation: Activation,
    /// Gate after `fc2`.
    #[module(skip)]
    pub scale_activation: Activation,
}

impl SqueezeExcitation {
    /// Builds the block.
    pub fn new(
        channels: usize,
        squeeze_channels: usize,
        activation: Activation,
        scale_activation: Activation,
        device: &Device,
    ) -> Self {
        Self {
            fc1: Conv2dConfig::new(channels, squeeze_channels, [1, 1]).init(device),
            fc2: Conv2dConfig::new(squeeze_channels, channels, [1, 1]).init(device),
            activation,
            scale_activation,
        }
    }

    /// # Shapes
    /// - input and output `[batch, channels, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let s = adaptive_avg_pool2d(x.clone(), [1, 1]);
        let s = self.activation.forward(self.fc1.forward(s));
        let s = self.scale_activation.forward(self.fc2.forward(s));
        x * s
    }
}
