//! Fully connected layer.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Device, Tensor};
use kindling_precision::low;

/// Configuration of a [`Linear`].
#[derive(Config, Debug)]
pub struct LinearConfig {
    /// Input features.
    pub d_input: usize,
    /// Output features.
    pub d_output: usize,
    /// Whether the layer has a bias.
    #[config(default = true)]
    pub bias: bool,
    /// Weight initializer; the default is PyTorch's (uniform in ±1/sqrt(fan_in)). The bias is
    /// always PyTorch's uniform in ±1/sqrt(fan_in).
    #[config(
        default = "Initializer::KaimingUniform { gain: 1.0 / 3.0f64.sqrt(), fan_out_only: false }"
    )]
    pub initializer: Initializer,
}

/// `y = x W + b`, Burn's layout (`weight: [in, out]`): the PyTorch adapter transposes a
/// torchvision `[out, in]` weight onto it.
#[derive(Module, Debug)]
pub struct Linear {
    /// `[d_input, d_output]`.
    pub weight: Param<Tensor<2>>,
    /// `[d_output]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl LinearConfig {
    /// Builds the layer on `device`.
    pub fn init(&self, device: &Device) -> Linear {
        let weight = self.initializer.init_with(
            [self.d_input, self.d_output],
            Some(self.d_input),
            Some(self.d_output),
            device,
        );
        let bound = 1.0 / (self.d_input.max(1) as f64).sqrt();
        let bias = self.bias.then(|| {
            Initializer::Uniform {
                min: -bound,
                max: bound,
            }
            .init([self.d_output], device)
        });
        Linear { weight, bias }
    }
}

impl Linear {
    /// Output features.
    pub fn d_output(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Input features.
    pub fn d_input(&self) -> usize {
        self.weight.dims()[0]
    }

    /// # Shapes
    /// - input `[..., d_input]`, output `[..., d_output]`
    ///
    /// Under autocast it runs (and returns) the scope's dtype, as the convolution does.
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let out = burn::tensor::module::linear(
            low(input),
            low(self.weight.val()),
            self.bias.as_ref().map(|b| low(b.val())),
        );
        crate::flops::add_macs((out.shape().num_elements() * self.d_input()) as u64);
        out
    }
}
