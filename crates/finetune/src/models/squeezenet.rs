//! SqueezeNet 1.0 and 1.1 (torchvision `squeezenet.py`): `features` (a stem conv, ReLU and
//! ceil-mode 3×3 max pools between `Fire` modules, numbered as one `Sequential`) and
//! `classifier`: Dropout, the final 1×1 conv to the classes at `classifier.1`, ReLU and a
//! global average pool. With `num_classes = 0` the final conv (and its ReLU) is left out and
//! the head returns the 512 pooled features.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};
use kindling_nn::{Activation, Conv2d, Conv2dConfig};

use crate::model::{Architecture, BuildOptions, Features, ZooModel};
use crate::models::tv_blocks::{Act, MaxPool};
use crate::registry::Family;
use crate::{FinetuneError, ModelEntry, Weights};

const FAMILY: Family = Family::new("features.0", "classifier.1");

/// The family's builders, with torchvision's weights.
pub(crate) const MODELS: &[ModelEntry] = &[
    FAMILY.entry(
        "squeezenet1_0",
        |o, d| build("squeezenet1_0", Version::V1_0, o, d),
        &[Weights::tv_in1k(
            "https://download.pytorch.org/models/squeezenet1_0-b66bff10.pth",
        )],
    ),
    FAMILY.entry(
        "squeezenet1_1",
        |o, d| build("squeezenet1_1", Version::V1_1, o, d),
        &[Weights::tv_in1k(
            "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
        )],
    ),
];

#[derive(Clone, Copy, PartialEq)]
enum Version {
    V1_0,
    V1_1,
}

/// Channels of the last `Fire` module, what the final conv sees.
const FEATURES: usize = 512;

/// torchvision's conv init: `kaiming_uniform_` (fan in, ReLU gain), bias 0.
fn conv(cin: usize, cout: usize, k: usize, stride: usize, pad: usize, device: &Device) -> Conv2d {
    conv_with(
        cin,
        cout,
        (k, stride, pad),
        Initializer::KaimingUniform {
            gain: 2f64.sqrt(),
            fan_out_only: false,
        },
        device,
    )
}

fn conv_with(
    cin: usize,
    cout: usize,
    (k, stride, pad): (usize, usize, usize),
    init: Initializer,
    device: &Device,
) -> Conv2d {
    let mut c = Conv2dConfig::new(cin, cout, [k, k])
        .with_stride([stride, stride])
        .with_padding([pad, pad])
        .with_initializer(init)
        .init(device);
    c.bias = Some(Param::from_tensor(Tensor::zeros([cout], device)));
    c
}

/// The final conv: `normal_(0, 0.01)`, bias 0.
fn final_conv(num_classes: usize, device: &Device) -> Conv2d {
    conv_with(
        FEATURES,
        num_classes,
        (1, 1, 0),
        Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        },
        device,
    )
}

/// torchvision's `Fire`: a 1×1 squeeze, then 1×1 and 3×3 expands concatenated, all ReLU.
#[derive(Module, Debug)]
pub struct Fire {
    squeeze: Conv2d,
    expand1x1: Conv2d,
    expand3x3: Conv2d,
}

impl Fire {
    fn new(cin: usize, squeeze: usize, e1: usize, e3: usize, device: &Device) -> Self {
        Self {
            squeeze: conv(cin, squeeze, 1, 1, 0, device),
            expand1x1: conv(squeeze, e1, 1, 1, 0, device),
            expand3x3: conv(squeeze, e3, 3, 1, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let relu = |t| Activation::Relu.forward(t);
        let x = relu(self.squeeze.forward(x));
        Tensor::cat(
            vec![
                relu(self.expand1x1.forward(x.clone())),
                relu(self.expand3x3.forward(x)),
            ],
            1,
        )
    }
}

/// One entry of SqueezeNet's `features` or `classifier` `Sequential`.
// Layers are built once; Burn has no `Module` for `Box`, so variants stay inline.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum SqueezeLayer {
    /// `nn.Conv2d`.
    Conv(Conv2d),
    /// `nn.ReLU` (or, in place of an absent final conv, the identity).
    Act(Act),
    /// `nn.MaxPool2d(3, 2, ceil_mode = True)`.
    MaxPool(MaxPool),
    /// A `Fire` module.
    Fire(Fire),
    /// `nn.Dropout`.
    Dropout(Dropout),
}

impl SqueezeLayer {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Conv(m) => m.forward(x),
            Self::Act(m) => m.activation.forward(x),
            Self::MaxPool(m) => m.forward(x),
            Self::Fire(m) => m.forward(x),
            Self::Dropout(m) => m.forward(x),
        }
    }
}

/// torchvision's `SqueezeNet`.
#[derive(Module, Debug)]
pub struct SqueezeNet {
    features: Vec<SqueezeLayer>,
    classifier: Vec<SqueezeLayer>,
    #[module(skip)]
    arch: &'static str,
}

/// Index of the final conv in `classifier`.
const FINAL: usize = 1;

/// `classifier.1` and `classifier.2`: the final conv and its ReLU, or two identities that
/// keep the later indices.
fn head(num_classes: usize, device: &Device) -> [SqueezeLayer; 2] {
    if num_classes > 0 {
        [
            SqueezeLayer::Conv(final_conv(num_classes, device)),
            SqueezeLayer::Act(Act::new(Activation::Relu)),
        ]
    } else {
        [
            SqueezeLayer::Act(Act::new(Activation::Identity)),
            SqueezeLayer::Act(Act::new(Activation::Identity)),
        ]
    }
}

fn build(
    arch: &'static str,
    version: Version,
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    o.no_drop_path(arch)?;
    o.avg_pool_only(arch)?;
    use SqueezeLayer::{Fire as F, MaxPool as P};
    let pool = || P(MaxPool::new(3, 2, 0, true));
    let fire = |cin, s, e| F(Fire::new(cin, s, e, e, device));
    let relu = || SqueezeLayer::Act(Act::new(Activation::Relu));
    let features = match version {
        Version::V1_0 => vec![
            SqueezeLayer::Conv(conv(o.in_chans, 96, 7, 2, 0, device)),
            relu(),
            pool(),
            fire(96, 16, 64),
            fire(128, 16, 64),
            fire(128, 32, 128),
            pool(),
            fire(256, 32, 128),
            fire(256, 48, 192),
            fire(384, 48, 192),
            fire(384, 64, 256),
            pool(),
            fire(512, 64, 256),
        ],
        Version::V1_1 => vec![
            SqueezeLayer::Conv(conv(o.in_chans, 64, 3, 2, 0, device)),
            relu(),
            pool(),
            fire(64, 16, 64),
            fire(128, 16, 64),
            pool(),
            fire(128, 32, 128),
            fire(256, 32, 128),
            pool(),
            fire(256, 48, 192),
            fire(384, 48, 192),
            fire(384, 64, 256),
            fire(512, 64, 256),
        ],
    };
    let [conv_layer, act] = head(o.num_classes, device);
    // The global average pool (`classifier.3`) has no parameters; the head applies it.
    let classifier = vec![
        SqueezeLayer::Dropout(DropoutConfig::new(o.drop_rate_or(0.5)).init()),
        conv_layer,
        act,
    ];
    Ok(ZooModel::SqueezeNet(SqueezeNet {
        features,
        classifier,
        arch,
    }))
}

impl Architecture for SqueezeNet {
    fn arch(&self) -> &'static str {
        self.arch
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        Features::Map(self.features.iter().fold(x, |t, l| l.forward(t)))
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.into_map();
        // Pre-logits: the dropout only, so the result is the pooled 512 features.
        let end = if pre_logits {
            FINAL
        } else {
            self.classifier.len()
        };
        let x = self.classifier[..end].iter().fold(x, |t, l| l.forward(t));
        adaptive_avg_pool2d(x, [1, 1]).flatten::<2>(1, 3)
    }

    fn num_features(&self) -> usize {
        FEATURES
    }

    fn num_classes(&self) -> usize {
        match self.classifier.get(FINAL) {
            Some(SqueezeLayer::Conv(c)) => c.out_channels(),
            _ => 0,
        }
    }

    fn reset_classifier(&mut self, num_classes: usize, device: &Device) {
        self.classifier.truncate(FINAL);
        self.classifier.extend(head(num_classes, device));
    }
}
