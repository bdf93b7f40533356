//! 2-D convolution with PyTorch's parameter layout and defaults.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use kindling_precision::low;

/// Configuration of a [`Conv2d`].
#[derive(Config, Debug)]
pub struct Conv2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Stride.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Zero padding on each side.
    #[config(default = "[0, 0]")]
    pub padding: [usize; 2],
    /// Dilation.
    #[config(default = "[1, 1]")]
    pub dilation: [usize; 2],
    /// Groups (`in_channels` for a depthwise convolution).
    #[config(default = 1)]
    pub groups: usize,
    /// Whether the layer has a bias.
    #[config(default = true)]
    pub bias: bool,
    /// Weight initializer; the default is PyTorch's (`kaiming_uniform_(a = sqrt(5))`, i.e.
    /// uniform in ±1/sqrt(fan_in)). The bias is always PyTorch's uniform in ±1/sqrt(fan_in).
    #[config(
        default = "Initializer::KaimingUniform { gain: 1.0 / 3.0f64.sqrt(), fan_out_only: false }"
    )]
    pub initializer: Initializer,
}

/// A 2-D convolution, `weight: [out, in / groups, kh, kw]` and `bias: [out]` as in PyTorch.
#[derive(Module, Debug)]
pub struct Conv2d {
    /// The kernel, `[out_channels, in_channels / groups, kh, kw]`.
    pub weight: Param<Tensor<4>>,
    /// The optional bias, `[out_channels]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride.
    pub stride: [usize; 2],
    /// Zero padding on each side.
    pub padding: [usize; 2],
    /// Dilation.
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
}

impl Conv2dConfig {
    /// Builds the layer on `device`.
    ///
    /// # Panics
    /// If a channel count is zero or not divisible by `groups` (a bug in the model definition).
    pub fn init(&self, device: &Device) -> Conv2d {
        assert_groups("conv2d", self.in_channels, self.out_channels, self.groups);
        let [kh, kw] = self.kernel_size;
        let fan_in = self.in_channels / self.groups * kh * kw;
        let fan_out = self.out_channels / self.groups * kh * kw;
        let shape = [self.out_channels, self.in_channels / self.groups, kh, kw];
        let weight = self
            .initializer
            .init_with(shape, Some(fan_in), Some(fan_out), device);
        let bound = 1.0 / (fan_in as f64).sqrt();
        let bias = self.bias.then(|| {
            Initializer::Uniform {
                min: -bound,
                max: bound,
            }
            .init([self.out_channels], device)
        });
        Conv2d {
            weight,
            bias,
            stride: self.stride,
            padding: self.padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }
}

/// Panics unless both channel counts are positive multiples of `groups` (a model-definition
/// bug, caught when the layer is built).
pub(crate) fn assert_groups(op: &str, in_channels: usize, out_channels: usize, groups: usize) {
    assert!(
        groups > 0
            && in_channels > 0
            && out_channels > 0
            && in_channels.is_multiple_of(groups)
            && out_channels.is_multiple_of(groups),
        "{op} channels {in_channels}→{out_channels} do not fit groups {groups}"
    );
}

impl Conv2d {
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.dims()[1] * self.groups
    }

    /// Applies the convolution.
    ///
    /// # Shapes
    /// - input `[batch, in_channels, h, w]`
    /// - output `[batch, out_channels, h', w']`, `h' = (h + 2p - d(k - 1) - 1) / s + 1`
    ///
    /// Under autocast the convolution runs in the scope's dtype (input, weight and bias cast
    /// to it; the f32 parameters get f32 gradients) and returns that dtype.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let options = ConvOptions::new(self.stride, self.padding, self.dilation, self.groups);
        let (input, weight) = (low(input), low(self.weight.val()));
        let bias = self.bias.as_ref().map(|b| low(b.val()));
        // The fused Flex kernel where it runs, Burn's convolution everywhere else.
        let out = match crate::fused::try_conv2d(&input, &weight, &options) {
            Some(out) => match bias {
                Some(b) => out + b.reshape([1, self.out_channels(), 1, 1]),
                None => out,
            },
            None => conv2d(input, weight, bias, options),
        };
        let [_, cin_per_group, kh, kw] = self.weight.dims();
        crate::flops::add_macs((out.shape().num_elements() * cin_per_group * kh * kw) as u64);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_shape_follows_pytorch_formula() {
        let device = Device::flex();
        let conv = Conv2dConfig::new(4, 6, [3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .with_groups(2)
            .init(&device);
        assert_eq!(conv.weight.dims(), [6, 2, 3, 3]);
        assert_eq!(conv.in_channels(), 4);
        let y = conv.forward(Tensor::<4>::ones([2, 4, 9, 9], &device));
        assert_eq!(y.dims(), [2, 6, 5, 5]);
    }
}
