//! MobileNetV2 and MobileNetV3 (torchvision `mobilenetv2.py`, `mobilenetv3.py`): `features`, a
//! numbered `Sequential` of `Conv2dNormActivation`s and inverted residual blocks (`conv.*` in
//! V2, `block.*` in V3), global pooling, then `classifier` (`Dropout, Linear` in V2;
//! `Linear, Hardswish, Dropout, Linear` in V3). Neither has stochastic depth.

use burn::module::Module;
use burn::nn::{DropoutConfig, Initializer};
use burn::tensor::{Device, Tensor};
use kindling_nn::{Activation, BatchNormConfig, Linear};

use super::tv_blocks::{
    Act, ConvNormAct, HeadLayer, Layer, conv, head_classes, head_forward, linear, make_divisible,
    seq, set_classifier, squeeze_excitation,
};
use crate::model::{Architecture, BuildOptions, Features, GlobalPool, ZooModel};
use crate::registry::Family;
use crate::{FinetuneError, ModelEntry, Weights};

/// V2's classifier is `Dropout, Linear`; V3's `Linear, Hardswish, Dropout, Linear`.
const V2: Family = Family::new("features.0.0", "classifier.1");
const V3: Family = Family::new("features.0.0", "classifier.3");

/// The family's builders, with torchvision's weights (`DEFAULT` first).
pub(crate) const MODELS: &[ModelEntry] = &[
    V2.entry(
        "mobilenet_v2",
        build_v2,
        &[
            Weights::tv2_in1k(tv_url!("mobilenet_v2-7ebf99e0.pth")),
            Weights::tv_in1k(tv_url!("mobilenet_v2-b0353104.pth")),
        ],
    ),
    V3.entry(
        "mobilenet_v3_large",
        |o, d| build_v3("mobilenet_v3_large", LARGE, 1280, o, d),
        &[
            Weights::tv2_in1k(tv_url!("mobilenet_v3_large-5c1a4163.pth")),
            Weights::tv_in1k(tv_url!("mobilenet_v3_large-8738ca79.pth")),
        ],
    ),
    V3.entry(
        "mobilenet_v3_small",
        |o, d| build_v3("mobilenet_v3_small", SMALL, 1024, o, d),
        &[Weights::tv_in1k(tv_url!("mobilenet_v3_small-047dcff4.pth"))],
    ),
];

/// MobileNetV2's inverted residual: `conv` = [1×1 expand,] 3×3 depthwise, 1×1 conv, BatchNorm.
#[derive(Module, Debug)]
pub struct InvertedResidualV2 {
    conv: Vec<Layer>,
    #[module(skip)]
    residual: bool,
}

/// MobileNetV3's inverted residual: `block` = [1×1 expand,] depthwise, [SE,] 1×1 project.
#[derive(Module, Debug)]
pub struct InvertedResidualV3 {
    block: Vec<Layer>,
    #[module(skip)]
    residual: bool,
}

/// One entry of `features`.
#[derive(Module, Debug)]
pub enum Feature {
    /// A `Conv2dNormActivation` (the stem and the last 1×1 conv).
    Layers(Vec<Layer>),
    /// A V2 block.
    V2(InvertedResidualV2),
    /// A V3 block.
    V3(InvertedResidualV3),
}

impl Feature {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Layers(l) => seq(l, x),
            Self::V2(b) if b.residual => seq(&b.conv, x.clone()) + x,
            Self::V2(b) => seq(&b.conv, x),
            Self::V3(b) if b.residual => seq(&b.block, x.clone()) + x,
            Self::V3(b) => seq(&b.block, x),
        }
    }
}

/// torchvision's `MobileNetV2` / `MobileNetV3`.
#[derive(Module, Debug)]
pub struct MobileNet {
    features: Vec<Feature>,
    classifier: Vec<HeadLayer>,
    /// Index of the classifier `Linear` in `classifier`.
    #[module(skip)]
    head_index: usize,
    #[module(skip)]
    global_pool: GlobalPool,
    #[module(skip)]
    arch: &'static str,
    #[module(skip)]
    num_features: usize,
}

/// torchvision's Linear init in MobileNet: `normal_(0, 0.01)`, bias zero.
fn fc(d_input: usize, d_output: usize, device: &Device) -> Linear {
    let init = Initializer::Normal {
        mean: 0.0,
        std: 0.01,
    };
    linear(d_input, d_output, init, device)
}

fn classifier(features: usize, num_classes: usize, device: &Device) -> Option<Linear> {
    (num_classes > 0).then(|| fc(features, num_classes, device))
}

fn head(mut pre_logits: Vec<HeadLayer>, fc: Option<Linear>) -> Vec<HeadLayer> {
    pre_logits.extend(fc.map(HeadLayer::Linear));
    pre_logits
}

fn build_v2(o: &BuildOptions, device: &Device) -> Result<ZooModel, FinetuneError> {
    o.no_drop_path("mobilenet_v2")?;
    // t (expansion), c (channels), n (blocks), s (first stride).
    const SETTING: [[usize; 4]; 7] = [
        [1, 16, 1, 1],
        [6, 24, 2, 2],
        [6, 32, 3, 2],
        [6, 64, 4, 2],
        [6, 96, 3, 1],
        [6, 160, 3, 2],
        [6, 320, 1, 1],
    ];
    let relu6 = Some(Activation::Relu6);
    let mut input = make_divisible(32.0, 8);
    let last = make_divisible(1280.0, 8);
    let mut features = vec![Feature::Layers(
        ConvNormAct::new(o.in_chans, input, 3, device)
            .stride(2)
            .act(relu6)
            .init(),
    )];
    for [t, c, n, s] in SETTING {
        let out = make_divisible(c as f64, 8);
        for i in 0..n {
            let stride = if i == 0 { s } else { 1 };
            let hidden = input * t;
            let mut layers = Vec::with_capacity(4);
            if t != 1 {
                layers.push(ConvNormAct::new(input, hidden, 1, device).act(relu6).seq());
            }
            layers.push(
                ConvNormAct::new(hidden, hidden, 3, device)
                    .stride(stride)
                    .groups(hidden)
                    .act(relu6)
                    .seq(),
            );
            layers.push(Layer::Conv(conv(hidden, out, 1, 1, false, device).init()));
            layers.push(Layer::Norm(BatchNormConfig::new(out).init(device)));
            features.push(Feature::V2(InvertedResidualV2 {
                conv: layers,
                residual: stride == 1 && input == out,
            }));
            input = out;
        }
    }
    features.push(Feature::Layers(
        ConvNormAct::new(input, last, 1, device).act(relu6).init(),
    ));
    let num_features = last * o.global_pool.multiplier();
    let dropout = HeadLayer::Dropout(DropoutConfig::new(o.drop_rate_or(0.2)).init());
    Ok(ZooModel::MobileNet(MobileNet {
        features,
        classifier: head(
            vec![dropout],
            classifier(num_features, o.num_classes, device),
        ),
        head_index: 1,
        global_pool: o.global_pool,
        arch: "mobilenet_v2",
        num_features,
    }))
}

/// One row of MobileNetV3's Tables 1–2: input, kernel, expanded, output channels, SE,
/// Hardswish (else ReLU), stride.
type Bneck = (usize, usize, usize, usize, bool, bool, usize);

const LARGE: &[Bneck] = &[
    (16, 3, 16, 16, false, false, 1),
    (16, 3, 64, 24, false, false, 2),
    (24, 3, 72, 24, false, false, 1),
    (24, 5, 72, 40, true, false, 2),
    (40, 5, 120, 40, true, false, 1),
    (40, 5, 120, 40, true, false, 1),
    (40, 3, 240, 80, false, true, 2),
    (80, 3, 200, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 184, 80, false, true, 1),
    (80, 3, 480, 112, true, true, 1),
    (112, 3, 672, 112, true, true, 1),
    (112, 5, 672, 160, true, true, 2),
    (160, 5, 960, 160, true, true, 1),
    (160, 5, 960, 160, true, true, 1),
];

const SMALL: &[Bneck] = &[
    (16, 3, 16, 16, true, false, 2),
    (16, 3, 72, 24, false, false, 2),
    (24, 3, 88, 24, false, false, 1),
    (24, 5, 96, 40, true, true, 2),
    (40, 5, 240, 40, true, true, 1),
    (40, 5, 240, 40, true, true, 1),
    (40, 5, 120, 48, true, true, 1),
    (48, 5, 144, 48, true, true, 1),
    (48, 5, 288, 96, true, true, 2),
    (96, 5, 576, 96, true, true, 1),
    (96, 5, 576, 96, true, true, 1),
];

fn build_v3(
    arch: &'static str,
    setting: &[Bneck],
    last_channel: usize,
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    o.no_drop_path(arch)?;
    // torchvision: BatchNorm2d(eps = 0.001, momentum = 0.01) throughout.
    const EPS: f64 = 1e-3;
    // The momentum changes only training (the running-statistics update), so the eval-mode
    // parity fixtures cannot see it; the training-step test does.
    const MOMENTUM: f64 = 0.01;
    let adjust = |c: usize| make_divisible(c as f64, 8);
    let cna = |cin, cout, k| {
        ConvNormAct::new(cin, cout, k, device)
            .eps(EPS)
            .momentum(MOMENTUM)
    };
    let hardswish = Some(Activation::Hardswish);
    let (Some(first), Some(last)) = (setting.first(), setting.last()) else {
        return Err(FinetuneError::InvalidOption {
            model: arch.into(),
            message: "empty block setting".into(),
        });
    };
    let mut features = vec![Feature::Layers(
        cna(o.in_chans, adjust(first.0), 3)
            .stride(2)
            .act(hardswish)
            .init(),
    )];
    for &(cin, k, exp, out, se, hs, stride) in setting {
        let (cin, exp, out) = (adjust(cin), adjust(exp), adjust(out));
        let act = Some(if hs {
            Activation::Hardswish
        } else {
            Activation::Relu
        });
        let mut block = Vec::with_capacity(4);
        if exp != cin {
            block.push(cna(cin, exp, 1).act(act).seq());
        }
        block.push(cna(exp, exp, k).stride(stride).groups(exp).act(act).seq());
        if se {
            let squeeze = make_divisible((exp / 4) as f64, 8);
            block.push(Layer::Se(squeeze_excitation(
                exp,
                squeeze,
                Activation::Relu,
                Activation::Hardsigmoid,
                device,
            )));
        }
        block.push(cna(exp, out, 1).act(None).seq());
        features.push(Feature::V3(InvertedResidualV3 {
            block,
            residual: stride == 1 && cin == out,
        }));
    }
    let last_in = adjust(last.3);
    let last_out = 6 * last_in;
    features.push(Feature::Layers(
        cna(last_in, last_out, 1).act(hardswish).init(),
    ));
    let last_channel = adjust(last_channel);
    let pooled = last_out * o.global_pool.multiplier();
    let pre_logits = vec![
        HeadLayer::Linear(fc(pooled, last_channel, device)),
        HeadLayer::Act(Act::new(Activation::Hardswish)),
        HeadLayer::Dropout(DropoutConfig::new(o.drop_rate_or(0.2)).init()),
    ];
    Ok(ZooModel::MobileNet(MobileNet {
        features,
        classifier: head(pre_logits, classifier(last_channel, o.num_classes, device)),
        head_index: 3,
        global_pool: o.global_pool,
        arch,
        num_features: last_channel,
    }))
}

impl Architecture for MobileNet {
    fn arch(&self) -> &'static str {
        self.arch
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        Features::Map(self.features.iter().fold(x, |t, f| f.forward(t)))
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.into_map();
        let x = self.global_pool.forward(x);
        head_forward(&self.classifier, self.head_index, x, pre_logits)
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn num_classes(&self) -> usize {
        head_classes(&self.classifier, self.head_index)
    }

    fn reset_classifier(&mut self, num_classes: usize, device: &Device) {
        let fc = classifier(self.num_features, num_classes, device);
        set_classifier(&mut self.classifier, self.head_index, fc);
    }
}
