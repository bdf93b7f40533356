//! Pieces torchvision's MobileNet, EfficientNet and RegNet share: `Conv2dNormActivation` and
//! its `Sequential`s as numbered `Vec<Layer>`s (an enum variant is not a path segment, so a
//! layer's keys are `<index>.weight`), classifier heads as `Vec<HeadLayer>`,
//! `_make_divisible`, and torchvision's initialisations.

use burn::module::Module;
use burn::nn::{Dropout, Initializer};
use burn::tensor::{Device, Tensor};
use kindling_nn::{
    Activation, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear, LinearConfig,
    SqueezeExcitation,
};

/// A parameter-less activation that still takes its index in a torchvision `Sequential`.
#[derive(Module, Debug)]
pub struct Act {
    /// The activation applied.
    #[module(skip)]
    pub activation: Activation,
}

impl Act {
    /// Wraps `activation`.
    pub fn new(activation: Activation) -> Self {
        Self { activation }
    }
}

/// One entry of a torchvision `Sequential` of 2-D layers.
#[derive(Module, Debug)]
pub enum Layer {
    /// `nn.Conv2d`.
    Conv(Conv2d),
    /// `nn.BatchNorm2d`.
    Norm(BatchNorm),
    /// An activation module (no parameters).
    Act(Act),
    /// `ops.SqueezeExcitation`.
    Se(SqueezeExcitation),
    /// A nested `Sequential` (a `Conv2dNormActivation` inside a block).
    Seq(Vec<Layer>),
}

impl Layer {
    /// Applies the layer.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Conv(c) => c.forward(x),
            Self::Norm(n) => n.forward(x),
            Self::Act(a) => a.activation.forward(x),
            Self::Se(s) => s.forward(x),
            Self::Seq(layers) => seq(layers, x),
        }
    }
}

/// Applies a `Sequential` of layers in order.
pub fn seq(layers: &[Layer], x: Tensor<4>) -> Tensor<4> {
    layers.iter().fold(x, |t, l| l.forward(t))
}

/// torchvision's `_make_divisible(v, divisor)`: the nearest multiple of `divisor` (at least
/// `divisor`), rounded up once more if rounding lost over 10%.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = divisor.max(((v + d / 2.0) as usize) / divisor * divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// A convolution initialised as torchvision's CNNs do: `kaiming_normal_(mode = "fan_out")`
/// (RegNet's `normal_(0, sqrt(2 / fan_out))` is the same), PyTorch's fan_out
/// `out × kh × kw` (not divided by groups), bias zero.
pub fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    bias: bool,
    device: &Device,
) -> ConvSpec {
    ConvSpec {
        cin,
        cout,
        k,
        stride,
        groups: 1,
        dilation: 1,
        bias,
        device: device.clone(),
    }
}

/// A convolution being configured; [`ConvSpec::init`] builds it.
pub struct ConvSpec {
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
    dilation: usize,
    bias: bool,
    device: Device,
}

impl ConvSpec {
    /// Sets the groups.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Sets the dilation.
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = dilation;
        self
    }

    /// Builds the convolution with torchvision's "same" padding `(k - 1) / 2 × dilation`.
    pub fn init(self) -> Conv2d {
        let std = (2.0 / (self.cout * self.k * self.k) as f64).sqrt();
        let pad = (self.k - 1) / 2 * self.dilation;
        let mut c = Conv2dConfig::new(self.cin, self.cout, [self.k, self.k])
            .with_stride([self.stride, self.stride])
            .with_padding([pad, pad])
            .with_dilation([self.dilation, self.dilation])
            .with_groups(self.groups)
            .with_bias(self.bias)
            .with_initializer(Initializer::Normal { mean: 0.0, std })
            .init(&self.device);
        c.bias = c
            .bias
            .map(|_| Initializer::Zeros.init([self.cout], &self.device));
        c
    }
}

/// torchvision's `Conv2dNormActivation` (bias-free conv, BatchNorm, optional activation) as
/// the `Vec` whose indices are its keys (`0.weight`, `1.running_mean`).
pub struct ConvNormAct {
    spec: ConvSpec,
    eps: f64,
    momentum: f64,
    activation: Option<Activation>,
}

impl ConvNormAct {
    /// A `k × k` block with ReLU and BatchNorm eps 1e-5, momentum 0.1 (torchvision's
    /// defaults).
    pub fn new(cin: usize, cout: usize, k: usize, device: &Device) -> Self {
        Self {
            spec: conv(cin, cout, k, 1, false, device),
            eps: 1e-5,
            momentum: 0.1,
            activation: Some(Activation::Relu),
        }
    }

    /// Sets the stride.
    pub fn stride(mut self, stride: usize) -> Self {
        self.spec.stride = stride;
        self
    }

    /// Sets the groups.
    pub fn groups(mut self, groups: usize) -> Self {
        self.spec.groups = groups;
        self
    }

    /// Sets the dilation.
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.spec.dilation = dilation;
        self
    }

    /// Sets BatchNorm's running-statistics momentum.
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets BatchNorm's epsilon.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the activation (`None`: conv and norm only, as `activation_layer = None`).
    pub fn act(mut self, activation: Option<Activation>) -> Self {
        self.activation = activation;
        self
    }

    /// Builds the layers.
    pub fn init(self) -> Vec<Layer> {
        let cout = self.spec.cout;
        let device = self.spec.device.clone();
        let mut layers = vec![
            Layer::Conv(self.spec.init()),
            Layer::Norm(
                BatchNormConfig::new(cout)
                    .with_epsilon(self.eps)
                    .with_momentum(self.momentum)
                    .init(&device),
            ),
        ];
        layers.extend(self.activation.map(|a| Layer::Act(Act::new(a))));
        layers
    }

    /// Builds the layers as one nested `Sequential` entry.
    pub fn seq(self) -> Layer {
        Layer::Seq(self.init())
    }
}

/// torchvision's `SqueezeExcitation(channels, squeeze)` with its 1×1 convolutions initialised
/// as the model's other convolutions.
pub fn squeeze_excitation(
    channels: usize,
    squeeze: usize,
    activation: Activation,
    scale_activation: Activation,
    device: &Device,
) -> SqueezeExcitation {
    SqueezeExcitation {
        fc1: conv(channels, squeeze, 1, 1, true, device).init(),
        fc2: conv(squeeze, channels, 1, 1, true, device).init(),
        activation,
        scale_activation,
    }
}

/// A linear layer with `init` weights and a zero bias (torchvision's head initialisations).
pub fn linear(d_input: usize, d_output: usize, init: Initializer, device: &Device) -> Linear {
    let mut l = LinearConfig::new(d_input, d_output)
        .with_initializer(init)
        .init(device);
    l.bias = l.bias.map(|_| Initializer::Zeros.init([d_output], device));
    l
}

/// One entry of a torchvision classifier `Sequential` (`classifier.0`, `classifier.1`, ...).
#[derive(Module, Debug)]
pub enum HeadLayer {
    /// `nn.Linear`.
    Linear(Linear),
    /// An activation module (no parameters).
    Act(Act),
    /// `nn.Dropout`.
    Dropout(Dropout),
}

/// Applies a classifier `Sequential` whose classifier `Linear` sits at `index` (absent for an
/// identity head); with `pre_logits`, only the entries before it.
pub fn head_forward(
    layers: &[HeadLayer],
    index: usize,
    x: Tensor<2>,
    pre_logits: bool,
) -> Tensor<2> {
    let n = if pre_logits { index } else { layers.len() };
    layers[..n.min(layers.len())]
        .iter()
        .fold(x, |t, l| match l {
            HeadLayer::Linear(fc) => fc.forward(t),
            HeadLayer::Act(a) => a.activation.forward(t),
            HeadLayer::Dropout(d) => d.forward(t),
        })
}

/// Outputs of the classifier at `index` (0 for an identity head).
pub fn head_classes(layers: &[HeadLayer], index: usize) -> usize {
    match layers.get(index) {
        Some(HeadLayer::Linear(fc)) => fc.d_output(),
        _ => 0,
    }
}

/// Puts `fc` at `index`, dropping any classifier there (`None`: identity head).
pub fn set_classifier(layers: &mut Vec<HeadLayer>, index: usize, fc: Option<Linear>) {
    layers.truncate(index);
    layers.extend(fc.map(HeadLayer::Linear));
}

/// `nn.MaxPool2d(kernel, stride, padding, ceil_mode)`: no parameters, but it takes its index
/// in a `Sequential` (VGG, SqueezeNet).
#[derive(Module, Debug)]
pub struct MaxPool {
    #[module(skip)]
    kernel: usize,
    #[module(skip)]
    stride: usize,
    #[module(skip)]
    padding: usize,
    #[module(skip)]
    ceil_mode: bool,
}

impl MaxPool {
    /// A square max pool.
    pub fn new(kernel: usize, stride: usize, padding: usize, ceil_mode: bool) -> Self {
        Self {
            kernel,
            stride,
            padding,
            ceil_mode,
        }
    }

    /// Pools `[batch, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        kindling_nn::max_pool2d(
            x,
            burn::tensor::ops::MaxPoolOptions::new([self.kernel, self.kernel])
                .with_stride([self.stride, self.stride])
                .with_padding([self.padding, self.padding])
                .with_ceil_mode(self.ceil_mode),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::make_divisible;

    #[test]
    fn make_divisible_matches_torchvision() {
        // torchvision 0.24 _make_divisible(v, 8) of 35.2, 19.2, 1536, 12, 7.
        assert_eq!(make_divisible(35.2, 8), 32);
        assert_eq!(make_divisible(19.2, 8), 24);
        assert_eq!(make_divisible(1536.0, 8), 1536);
        assert_eq!(make_divisible(12.0, 8), 16);
        assert_eq!(make_divisible(7.0, 8), 8);
    }
}
