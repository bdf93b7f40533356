//! The classify task's model: a small VGG-style CNN, built from Kindling's layers (PyTorch's
//! initialisation and BatchNorm statistics; autocast-aware).

use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::tensor::activation::relu;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use kindling_nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear, LinearConfig, max_pool2d,
};

/// Configuration of [`SmallCnn`].
#[derive(Config, Debug)]
pub struct SmallCnnConfig {
    /// Number of output classes.
    pub num_classes: usize,
    /// Input channels (3 for RGB).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Output channels of each conv block; every block halves the resolution.
    #[config(default = "vec![16, 32, 64]")]
    pub widths: Vec<usize>,
}

impl SmallCnnConfig {
    /// Builds the model on `device` and draws every initial weight now, in a fixed order, so a
    /// seeded device always yields the same weights (Burn initialises parameters lazily).
    pub fn init(&self, device: &Device) -> SmallCnn {
        let mut blocks = Vec::with_capacity(self.widths.len());
        let mut channels = self.in_channels;
        for &width in &self.widths {
            blocks.push(ConvBlock {
                conv: Conv2dConfig::new(channels, width, [3, 3])
                    .with_padding([1, 1])
                    .with_bias(false)
                    .init(device),
                norm: BatchNormConfig::new(width).init(device),
            });
            channels = width;
        }
        let model = SmallCnn {
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            head: LinearConfig::new(channels, self.num_classes).init(device),
        };
        crate::tasks::materialize(&model);
        model
    }
}

/// Conv 3×3 → BatchNorm → ReLU → MaxPool 2×2.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv: Conv2d,
    norm: BatchNorm,
}

impl ConvBlock {
    /// `[N, C_in, H, W]` → `[N, C_out, H/2, W/2]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.norm.forward(self.conv.forward(x)));
        max_pool2d(x, MaxPoolOptions::new([2, 2]).with_stride([2, 2]))
    }
}

/// A small CNN for image classification: conv blocks, global average pooling, linear head.
#[derive(Module, Debug)]
pub struct SmallCnn {
    blocks: Vec<ConvBlock>,
    pool: AdaptiveAvgPool2d,
    head: Linear,
}

impl SmallCnn {
    /// Logits for a batch.
    ///
    /// # Shapes
    /// - input: `[N, C_in, H, W]`
    /// - output: `[N, num_classes]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        let [n, c, _, _] = x.dims();
        self.head.forward(self.pool.forward(x).reshape([n, c]))
    }
}
