//! VGG (torchvision `vgg.py`): `features` (3×3 convs with ReLU, with BatchNorm for the `_bn`
//! variants, and 2×2 max pools, numbered as one `Sequential`), a 7×7 adaptive average pool and
//! `classifier`: `Linear(25088, 4096)`, ReLU, Dropout, `Linear(4096, 4096)`, ReLU, Dropout and
//! `Linear(4096, classes)` at `classifier.6`. With `num_classes = 0` the head ends after the
//! second dropout (4096 features out).

use burn::module::{Module, Param};
use burn::nn::{DropoutConfig, Initializer};
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};
use kindling_nn::{Activation, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear};

use crate::model::{Architecture, BuildOptions, Features, ZooModel};
use crate::models::tv_blocks::{
    Act, HeadLayer, MaxPool, head_classes, head_forward, linear, set_classifier,
};
use crate::registry::Family;
use crate::{FinetuneError, ModelEntry, Weights};

const FAMILY: Family = Family::new("features.0", "classifier.6");

/// A max pool in a configuration (torchvision's `"M"`).
const M: usize = 0;
/// torchvision's `cfgs["A"]` (VGG 11).
const A: &[usize] = &[64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M];
/// torchvision's `cfgs["B"]` (VGG 13).
const B: &[usize] = &[
    64, 64, M, 128, 128, M, 256, 256, M, 512, 512, M, 512, 512, M,
];
/// torchvision's `cfgs["D"]` (VGG 16).
const D: &[usize] = &[
    64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M,
];

/// The family's builders, with torchvision's weights.
pub(crate) const MODELS: &[ModelEntry] = &[
    FAMILY.entry(
        "vgg11",
        |o, d| build("vgg11", A, false, o, d),
        &[Weights::tv_in1k(tv_url!("vgg11-8a719046.pth"))],
    ),
    FAMILY.entry(
        "vgg11_bn",
        |o, d| build("vgg11_bn", A, true, o, d),
        &[Weights::tv_in1k(tv_url!("vgg11_bn-6002323d.pth"))],
    ),
    FAMILY.entry(
        "vgg13",
        |o, d| build("vgg13", B, false, o, d),
        &[Weights::tv_in1k(tv_url!("vgg13-19584684.pth"))],
    ),
    FAMILY.entry(
        "vgg16",
        |o, d| build("vgg16", D, false, o, d),
        &[Weights::tv_in1k(tv_url!("vgg16-397923af.pth"))],
    ),
    FAMILY.entry(
        "vgg16_bn",
        |o, d| build("vgg16_bn", D, true, o, d),
        &[Weights::tv_in1k(tv_url!("vgg16_bn-6c64b313.pth"))],
    ),
];

/// Width of the hidden classifier layers, and of the features with an identity head.
const HIDDEN: usize = 4096;

/// One entry of VGG's `features` `Sequential`.
#[derive(Module, Debug)]
pub enum FeatureLayer {
    /// `nn.Conv2d`.
    Conv(Conv2d),
    /// `nn.BatchNorm2d` (the `_bn` variants).
    Norm(BatchNorm),
    /// `nn.ReLU`.
    Act(Act),
    /// `nn.MaxPool2d(2, 2)`.
    MaxPool(MaxPool),
}

impl FeatureLayer {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Conv(m) => m.forward(x),
            Self::Norm(m) => m.forward(x),
            Self::Act(m) => m.activation.forward(x),
            Self::MaxPool(m) => m.forward(x),
        }
    }
}

/// torchvision's `VGG`.
#[derive(Module, Debug)]
pub struct Vgg {
    features: Vec<FeatureLayer>,
    classifier: Vec<HeadLayer>,
    #[module(skip)]
    arch: &'static str,
}

/// torchvision's linear init: `normal_(0, 0.01)`, bias 0.
fn fc(d_in: usize, d_out: usize, device: &Device) -> Linear {
    linear(
        d_in,
        d_out,
        Initializer::Normal {
            mean: 0.0,
            std: 0.01,
        },
        device,
    )
}

fn build(
    arch: &'static str,
    cfg: &[usize],
    batch_norm: bool,
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    o.no_drop_path(arch)?;
    o.avg_pool_only(arch)?;
    let mut features = Vec::new();
    let mut cin = o.in_chans;
    for &v in cfg {
        if v == M {
            features.push(FeatureLayer::MaxPool(MaxPool::new(2, 2, 0, false)));
            continue;
        }
        // torchvision: kaiming_normal_(mode = "fan_out", nonlinearity = "relu"), bias 0.
        let mut conv = Conv2dConfig::new(cin, v, [3, 3])
            .with_padding([1, 1])
            .with_initializer(Initializer::KaimingNormal {
                gain: 2f64.sqrt(),
                fan_out_only: true,
            })
            .init(device);
        conv.bias = Some(Param::from_tensor(Tensor::zeros([v], device)));
        features.push(FeatureLayer::Conv(conv));
        if batch_norm {
            features.push(FeatureLayer::Norm(BatchNormConfig::new(v).init(device)));
        }
        features.push(FeatureLayer::Act(Act::new(Activation::Relu)));
        cin = v;
    }
    let p = o.drop_rate_or(0.5);
    let relu = || HeadLayer::Act(Act::new(Activation::Relu));
    let dropout = || HeadLayer::Dropout(DropoutConfig::new(p).init());
    let mut classifier = vec![
        HeadLayer::Linear(fc(cin * 7 * 7, HIDDEN, device)),
        relu(),
        dropout(),
        HeadLayer::Linear(fc(HIDDEN, HIDDEN, device)),
        relu(),
        dropout(),
    ];
    set_classifier(&mut classifier, LAST, head(o.num_classes, device));
    Ok(ZooModel::Vgg(Vgg {
        features,
        classifier,
        arch,
    }))
}

/// Index of the last classifier layer (`classifier.6`).
const LAST: usize = 6;

fn head(num_classes: usize, device: &Device) -> Option<Linear> {
    (num_classes > 0).then(|| fc(HIDDEN, num_classes, device))
}

impl Architecture for Vgg {
    fn arch(&self) -> &'static str {
        self.arch
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        Features::Map(self.features.iter().fold(x, |t, l| l.forward(t)))
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.into_map();
        let x = adaptive_avg_pool2d(x, [7, 7]).flatten::<2>(1, 3);
        head_forward(&self.classifier, LAST, x, pre_logits)
    }

    fn num_features(&self) -> usize {
        HIDDEN
    }

    fn num_classes(&self) -> usize {
        head_classes(&self.classifier, LAST)
    }

    fn reset_classifier(&mut self, num_classes: usize, device: &Device) {
        set_classifier(&mut self.classifier, LAST, head(num_classes, device));
    }
}
