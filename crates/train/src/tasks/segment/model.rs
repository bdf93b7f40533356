//! The segment task's model: a U-Net (Ronneberger et al., 2015) — an encoder of double-conv
//! blocks with max-pooling, a bottleneck, and a decoder that upsamples with transposed
//! convolutions and concatenates the encoder's features at each scale (skip connections).

use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::relu;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use kindling_nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig,
    max_pool2d,
};

/// Configuration of [`UNet`].
#[derive(Config, Debug)]
pub struct UNetConfig {
    /// Number of output classes (channels of the logits).
    pub num_classes: usize,
    /// Input channels (3 for RGB).
    #[config(default = 3)]
    pub in_channels: usize,
    /// Channels of each encoder level (its length is the depth); the bottleneck has twice the
    /// last. Inputs must be divisible by `2^depth`.
    #[config(default = "vec![16, 32, 64]")]
    pub widths: Vec<usize>,
}

impl UNetConfig {
    /// Builds the model on `device` and draws every initial weight now, in a fixed order, so a
    /// seeded device always yields the same weights (Burn initialises parameters lazily).
    pub fn init(&self, device: &Device) -> UNet {
        let mut down = Vec::with_capacity(self.widths.len());
        let mut channels = self.in_channels;
        for &w in &self.widths {
            down.push(DoubleConv::new(channels, w, device));
            channels = w;
        }
        let bottom = *self.widths.last().unwrap_or(&16) * 2;
        let bottleneck = DoubleConv::new(channels, bottom, device);
        let mut up = Vec::with_capacity(self.widths.len());
        let mut channels = bottom;
        for &w in self.widths.iter().rev() {
            up.push(UpBlock {
                upsample: ConvTranspose2dConfig::new(channels, w, [2, 2])
                    .with_stride([2, 2])
                    .init(device),
                conv: DoubleConv::new(2 * w, w, device),
            });
            channels = w;
        }
        let model = UNet {
            down,
            bottleneck,
            up,
            head: Conv2dConfig::new(channels, self.num_classes, [1, 1]).init(device),
        };
        crate::tasks::materialize(&model);
        model
    }
}

/// (Conv 3×3 → BatchNorm → ReLU) × 2.
#[derive(Module, Debug)]
pub struct DoubleConv {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
}

impl DoubleConv {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new(i, o, [3, 3])
                .with_padding([1, 1])
                .with_bias(false)
                .init(device)
        };
        Self {
            conv1: conv(input, output),
            norm1: BatchNormConfig::new(output).init(device),
            conv2: conv(output, output),
            norm2: BatchNormConfig::new(output).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = relu(self.norm1.forward(self.conv1.forward(x)));
        relu(self.norm2.forward(self.conv2.forward(x)))
    }
}

/// Transposed conv 2×2 (stride 2), concatenation with the skip, double conv.
#[derive(Module, Debug)]
pub struct UpBlock {
    upsample: ConvTranspose2d,
    conv: DoubleConv,
}

/// U-Net for semantic segmentation.
#[derive(Module, Debug)]
pub struct UNet {
    down: Vec<DoubleConv>,
    bottleneck: DoubleConv,
    up: Vec<UpBlock>,
    head: Conv2d,
}

impl UNet {
    /// Per-pixel class logits.
    ///
    /// # Shapes
    /// - input: `[N, C_in, H, W]` with `H` and `W` divisible by `2^depth`
    /// - output: `[N, num_classes, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.down.len());
        let mut x = x;
        for block in &self.down {
            let features = block.forward(x);
            x = max_pool2d(
                features.clone(),
                MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
            );
            skips.push(features);
        }
        let mut x = self.bottleneck.forward(x);
        for (block, skip) in self.up.iter().zip(skips.into_iter().rev()) {
            let up = block.upsample.forward(x);
            x = block.conv.forward(Tensor::cat(vec![up, skip], 1));
        }
        self.head.forward(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logits_have_the_input_resolution_and_one_channel_per_class() {
        let device = Device::default();
        let model = UNetConfig::new(4).with_widths(vec![4, 8]).init(&device);
        let x = Tensor::<4>::zeros([2, 3, 16, 24], &device);
        assert_eq!(model.forward(x).dims(), [2, 4, 16, 24]);
    }
}
