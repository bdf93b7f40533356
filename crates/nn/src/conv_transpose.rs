//! 2-D transposed convolution with PyTorch's parameter layout and defaults.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::module::conv_transpose2d;
use burn::tensor::ops::ConvTransposeOptions;
use burn::tensor::{Device, Tensor};
use kindling_precision::low;

/// Configuration of a [`ConvTranspose2d`] (PyTorch's `nn.ConvTranspose2d` arguments).
#[derive(Config, Debug)]
pub struct ConvTranspose2dConfig {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel_size: [usize; 2],
    /// Stride.
    #[config(default = "[1, 1]")]
    pub stride: [usize; 2],
    /// Implicit zero padding removed from each side of the output.
    #[config(default = "[0, 0]")]
    pub padding: [usize; 2],
    /// Extra size added to one side of the output.
    #[config(default = "[0, 0]")]
    pub output_padding: [usize; 2],
    /// Dilation.
    #[config(default = "[1, 1]")]
    pub dilation: [usize; 2],
    /// Groups.
    #[config(default = 1)]
    pub groups: usize,
    /// Whether the layer has a bias.
    #[config(default = true)]
    pub bias: bool,
}

/// A transposed convolution, `weight: [in, out / groups, kh, kw]` and `bias: [out]` as in
/// PyTorch; under autocast it runs (and returns) the scope's dtype.
#[derive(Module, Debug)]
pub struct ConvTranspose2d {
    /// The kernel, `[in_channels, out_channels / groups, kh, kw]`.
    pub weight: Param<Tensor<4>>,
    /// The optional bias, `[out_channels]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride.
    pub stride: [usize; 2],
    /// Padding.
    pub padding: [usize; 2],
    /// Output padding.
    pub output_padding: [usize; 2],
    /// Dilation.
    pub dilation: [usize; 2],
    /// Groups.
    pub groups: usize,
}

impl ConvTranspose2dConfig {
    /// Builds the layer on `device`, initialised as PyTorch does (weight and bias uniform in
    /// ±1/sqrt(fan_in), where PyTorch's fan-in of this layout is `out / groups · kh · kw`).
    ///
    /// # Panics
    /// If a channel count is zero or not divisible by `groups` (a bug in the model definition).
    pub fn init(&self, device: &Device) -> ConvTranspose2d {
        crate::conv::assert_groups(
            "conv_transpose2d",
            self.in_channels,
            self.out_channels,
            self.groups,
        );
        let [kh, kw] = self.kernel_size;
        let fan_in = self.out_channels / self.groups * kh * kw;
        let bound = 1.0 / (fan_in as f64).sqrt();
        let uniform = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        let shape = [self.in_channels, self.out_channels / self.groups, kh, kw];
        ConvTranspose2d {
            weight: uniform.init(shape, device),
            bias: self.bias.then(|| uniform.init([self.out_channels], device)),
            stride: self.stride,
            padding: self.padding,
            output_padding: self.output_padding,
            dilation: self.dilation,
            groups: self.groups,
        }
    }
}

impl ConvTranspose2d {
    /// # Shapes
    /// - input `[batch, in_channels, h, w]`
    /// - output `[batch, out_channels, h', w']`,
    ///   `h' = (h - 1)s - 2p + d(k - 1) + output_padding + 1`
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let [n, _, h, w] = input.dims();
        let (input, weight) = (low(input), low(self.weight.val()));
        let bias = self.bias.as_ref().map(|b| low(b.val()));
        let options = ConvTransposeOptions::new(
            self.stride,
            self.padding,
            self.output_padding,
            self.dilation,
            self.groups,
        );
        // The fused Flex kernel where it runs, Burn's transposed convolution everywhere else.
        let out = match crate::fused::try_conv_transpose2d(&input, &weight, &options) {
            Some(out) => match bias {
                Some(b) => {
                    let c = b.dims()[0];
                    out + b.reshape([1, c, 1, 1])
                }
                None => out,
            },
            None => conv_transpose2d(input, weight, bias, options),
        };
        // Every input value meets `out / groups · kh · kw` weights.
        let [cin, cout_per_group, kh, kw] = self.weight.dims();
        crate::flops::add_macs((n * cin * h * w * cout_per_group * kh * kw) as u64);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn a_stride_two_kernel_two_upsampling_matches_pytorch() {
        // torch 2.9: m = nn.ConvTranspose2d(1, 1, 2, stride=2); weight = [[1, 2], [3, 4]],
        // bias = 0.5; m(torch.tensor([[[[1., 2.]]]])) = [[1.5, 2.5, 2.5, 4.5], [3.5, 4.5, 6.5, 8.5]].
        let device = Device::flex();
        let mut m = ConvTranspose2dConfig::new(1, 1, [2, 2])
            .with_stride([2, 2])
            .init(&device);
        assert_eq!(m.weight.dims(), [1, 1, 2, 2]);
        m.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![1f32, 2., 3., 4.], [1, 1, 2, 2]),
            &device,
        ));
        m.bias = Some(Param::from_tensor(Tensor::from_floats([0.5], &device)));
        let x = Tensor::<4>::from_data(TensorData::new(vec![1f32, 2.], [1, 1, 1, 2]), &device);
        let y: Vec<f32> = m.forward(x).into_data().try_to_vec().unwrap();
        assert_eq!(y, [1.5, 2.5, 2.5, 4.5, 3.5, 4.5, 6.5, 8.5]);
    }
}
