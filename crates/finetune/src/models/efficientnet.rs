//! EfficientNet B0–B3 (torchvision `efficientnet.py`): `features` = stem
//! `Conv2dNormActivation`, seven stages of MBConv blocks (`features.<stage>.<block>.block.*`,
//! SiLU, squeeze-excitation, stochastic depth on the residual), a 1×1 head conv; global
//! pooling, then `classifier` = `Dropout, Linear`.

use burn::module::Module;
use burn::nn::{DropoutConfig, Initializer};
use burn::tensor::{Device, Tensor};
use kindling_nn::{Activation, DropPath, Linear};

use super::tv_blocks::{
    ConvNormAct, HeadLayer, Layer, head_classes, head_forward, linear, make_divisible, seq,
    set_classifier, squeeze_excitation,
};
use crate::model::{Architecture, BuildOptions, Features, GlobalPool, ZooModel};
use crate::registry::Family;
use crate::registry::Interpolation::{Bicubic, Bilinear};
use crate::{FinetuneError, ModelEntry, Weights};

const FAMILY: Family = Family::new("features.0.0", "classifier.1");

/// The family's builders, with torchvision's weights (`DEFAULT` first). The `IMAGENET1K_V1`
/// weights are ported from timm and evaluated with bicubic resizing.
pub(crate) const MODELS: &[ModelEntry] = &[
    FAMILY.entry(
        "efficientnet_b0",
        |o, d| build("efficientnet_b0", 1.0, 1.0, 0.2, o, d),
        &[Weights::torchvision(
            "tv_in1k",
            tv_url!("efficientnet_b0_rwightman-7f5810bc.pth"),
            224,
            256,
            Bicubic,
        )],
    ),
    FAMILY.entry(
        "efficientnet_b1",
        |o, d| build("efficientnet_b1", 1.0, 1.1, 0.2, o, d),
        &[
            Weights::torchvision(
                "tv2_in1k",
                tv_url!("efficientnet_b1-c27df63c.pth"),
                240,
                255,
                Bilinear,
            ),
            Weights::torchvision(
                "tv_in1k",
                tv_url!("efficientnet_b1_rwightman-bac287d4.pth"),
                240,
                256,
                Bicubic,
            ),
        ],
    ),
    FAMILY.entry(
        "efficientnet_b2",
        |o, d| build("efficientnet_b2", 1.1, 1.2, 0.3, o, d),
        &[Weights::torchvision(
            "tv_in1k",
            tv_url!("efficientnet_b2_rwightman-c35c1473.pth"),
            288,
            288,
            Bicubic,
        )],
    ),
    FAMILY.entry(
        "efficientnet_b3",
        |o, d| build("efficientnet_b3", 1.2, 1.4, 0.3, o, d),
        &[Weights::torchvision(
            "tv_in1k",
            tv_url!("efficientnet_b3_rwightman-b3899882.pth"),
            300,
            320,
            Bicubic,
        )],
    ),
];

/// torchvision's `MBConv`: `block` = [1×1 expand,] depthwise, SE, 1×1 project; the residual
/// (stride 1, same width) goes through `stochastic_depth`.
#[derive(Module, Debug)]
pub struct MBConv {
    block: Vec<Layer>,
    stochastic_depth: DropPath,
    #[module(skip)]
    residual: bool,
}

impl MBConv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = seq(&self.block, x.clone());
        if self.residual {
            self.stochastic_depth.forward(y) + x
        } else {
            y
        }
    }
}

/// One entry of `features`.
#[derive(Module, Debug)]
pub enum Feature {
    /// A `Conv2dNormActivation` (the stem and the head conv).
    Layers(Vec<Layer>),
    /// A stage of MBConv blocks.
    Stage(Vec<MBConv>),
}

/// torchvision's `EfficientNet` (B0–B3).
#[derive(Module, Debug)]
pub struct EfficientNet {
    features: Vec<Feature>,
    classifier: Vec<HeadLayer>,
    #[module(skip)]
    global_pool: GlobalPool,
    #[module(skip)]
    arch: &'static str,
    #[module(skip)]
    num_features: usize,
}

/// torchvision's classifier init here: `uniform_(±1 / sqrt(out_features))`, bias zero.
fn classifier(features: usize, num_classes: usize, device: &Device) -> Option<Linear> {
    (num_classes > 0).then(|| {
        let range = 1.0 / (num_classes as f64).sqrt();
        let init = Initializer::Uniform {
            min: -range,
            max: range,
        };
        linear(features, num_classes, init, device)
    })
}

/// EfficientNet-B's stages: expand ratio, kernel, stride, input and output channels, blocks.
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
];

fn build(
    arch: &'static str,
    width_mult: f64,
    depth_mult: f64,
    dropout: f64,
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    let adjust = |c: usize| make_divisible(c as f64 * width_mult, 8);
    let stages: Vec<_> = STAGES
        .iter()
        .map(|&(ratio, k, stride, cin, cout, n)| {
            let n = (n as f64 * depth_mult).ceil() as usize;
            (ratio, k, stride, adjust(cin), adjust(cout), n)
        })
        .collect();
    let total: usize = stages.iter().map(|s| s.5).sum();
    let sd_prob = o.drop_path_rate_or(0.2);
    if !(0.0..1.0).contains(&sd_prob) {
        return Err(FinetuneError::InvalidOption {
            model: arch.into(),
            message: format!("drop_path_rate {sd_prob}: expected a probability in [0, 1)"),
        });
    }
    let silu = Some(Activation::Silu);
    let stem = ConvNormAct::new(o.in_chans, stages[0].3, 3, device)
        .stride(2)
        .act(silu);
    let mut features = vec![Feature::Layers(stem.init())];
    let mut index = 0;
    for &(ratio, k, stride, cin, cout, n) in &stages {
        let mut blocks = Vec::with_capacity(n);
        for b in 0..n {
            let (cin, stride) = if b == 0 { (cin, stride) } else { (cout, 1) };
            // torchvision: stochastic_depth_prob × block index / total blocks.
            let p = sd_prob * index as f64 / total as f64;
            let exp = make_divisible(cin as f64 * ratio as f64, 8);
            let mut block = Vec::with_capacity(4);
            if exp != cin {
                block.push(ConvNormAct::new(cin, exp, 1, device).act(silu).seq());
            }
            block.push(
                ConvNormAct::new(exp, exp, k, device)
                    .stride(stride)
                    .groups(exp)
                    .act(silu)
                    .seq(),
            );
            block.push(Layer::Se(squeeze_excitation(
                exp,
                (cin / 4).max(1),
                Activation::Silu,
                Activation::Sigmoid,
                device,
            )));
            block.push(ConvNormAct::new(exp, cout, 1, device).act(None).seq());
            blocks.push(MBConv {
                block,
                stochastic_depth: DropPath::new(p),
                residual: stride == 1 && cin == cout,
            });
            index += 1;
        }
        features.push(Feature::Stage(blocks));
    }
    let last_in = stages[stages.len() - 1].4;
    let last_out = 4 * last_in;
    features.push(Feature::Layers(
        ConvNormAct::new(last_in, last_out, 1, device)
            .act(silu)
            .init(),
    ));
    let num_features = last_out * o.global_pool.multiplier();
    let mut head = vec![HeadLayer::Dropout(
        DropoutConfig::new(o.drop_rate_or(dropout)).init(),
    )];
    head.extend(classifier(num_features, o.num_classes, device).map(HeadLayer::Linear));
    Ok(ZooModel::EfficientNet(EfficientNet {
        features,
        classifier: head,
        global_pool: o.global_pool,
        arch,
        num_features,
    }))
}

impl Architecture for EfficientNet {
    fn arch(&self) -> &'static str {
        self.arch
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        let x = self.features.iter().fold(x, |t, f| match f {
            Feature::Layers(l) => seq(l, t),
            Feature::Stage(blocks) => blocks.iter().fold(t, |t, b| b.forward(t)),
        });
        Features::Map(x)
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.into_map();
        head_forward(&self.classifier, 1, self.global_pool.forward(x), pre_logits)
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn num_classes(&self) -> usize {
        head_classes(&self.classifier, 1)
    }

    fn reset_classifier(&mut self, num_classes: usize, device: &Device) {
        let fc = classifier(self.num_features, num_classes, device);
        set_classifier(&mut self.classifier, 1, fc);
    }
}
