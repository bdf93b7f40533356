//! DenseNet-BC (torchvision `densenet.py`): `features` holds `conv0`, `norm0`, four
//! `denseblock{i}` of `denselayer{j}` (`norm1`, `conv1` 1×1 bottleneck, `norm2`, `conv2` 3×3
//! growth), `transition{i}` (`norm`, `conv`, 2×2 average pool) and `norm5`; then ReLU, the
//! global pool and `classifier`. timm's `drop_rate` is a dropout before the classifier.
//!
//! Module paths are torchvision's current keys; older checkpoints (`norm.1`, `conv.2`, still
//! those of torchvision's download links) are renamed by the family's key rule.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor};
use kindling_nn::{Activation, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear};

use super::named::Named;
use crate::model::{
    Architecture, BuildOptions, Features, GlobalPool, ZooModel, classifier_outputs, pooled_head,
};
use crate::registry::Family;
use crate::registry::Interpolation::Bilinear;
use crate::{FinetuneError, ModelEntry, Weights};

/// torchvision's `_load_state_dict` pattern: `denselayer1.norm.1.weight` → `norm1.weight`.
const OLD_KEYS: &[(&str, &str)] = &[(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$",
    "${1}${2}",
)];

const FAMILY: Family = Family::new("features.conv0", "classifier").with_key_rules(OLD_KEYS);

/// The family's builders, with torchvision's weights (`IMAGENET1K_V1`: crop 224, resize 256,
/// bilinear).
pub(crate) const MODELS: &[ModelEntry] = &[FAMILY.entry(
    "densenet121",
    |o, d| build("densenet121", 32, [6, 12, 24, 16], 64, o, d),
    &[Weights::torchvision(
        "tv_in1k",
        "https://download.pytorch.org/models/densenet121-a639ec97.pth",
        224,
        256,
        Bilinear,
    )],
)];

/// torchvision's bottleneck width factor (`bn_size`).
const BN_SIZE: usize = 4;

/// torchvision's conv init: `kaiming_normal_` (fan in, ReLU gain), no bias.
fn conv(cin: usize, cout: usize, k: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new(cin, cout, [k, k])
        .with_stride([stride, stride])
        .with_padding([k / 2, k / 2])
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: 2f64.sqrt(),
            fan_out_only: false,
        })
        .init(device)
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

fn relu(x: Tensor<4>) -> Tensor<4> {
    Activation::Relu.forward(x)
}

/// torchvision's `_DenseLayer`: BN-ReLU-conv1×1 to `4 × growth`, BN-ReLU-conv3×3 to `growth`.
#[derive(Module, Debug)]
pub struct DenseLayer {
    norm1: BatchNorm,
    conv1: Conv2d,
    norm2: BatchNorm,
    conv2: Conv2d,
}

impl DenseLayer {
    fn new(cin: usize, growth: usize, device: &Device) -> Self {
        Self {
            norm1: bn(cin, device),
            conv1: conv(cin, BN_SIZE * growth, 1, 1, device),
            norm2: bn(BN_SIZE * growth, device),
            conv2: conv(BN_SIZE * growth, growth, 3, 1, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.conv1.forward(relu(self.norm1.forward(x)));
        self.conv2.forward(relu(self.norm2.forward(y)))
    }
}

/// torchvision's `_DenseBlock`: `denselayer1..n`, each fed every earlier output
/// concatenated; a [`Named`] sequence so the paths are torchvision's `denselayer{i}`
/// (1-based), where a derived `Vec` field would give `{i - 1}`.
pub type DenseBlock = Named<DenseLayer>;

fn dense_block(n: usize, cin: usize, growth: usize, device: &Device) -> DenseBlock {
    let layers = (0..n)
        .map(|i| DenseLayer::new(cin + i * growth, growth, device))
        .collect();
    Named::numbered("denselayer", 1, layers)
}

fn dense_block_forward(block: &DenseBlock, x: Tensor<4>) -> Tensor<4> {
    let mut features = vec![x];
    for layer in block.modules() {
        let y = layer.forward(Tensor::cat(features.clone(), 1));
        features.push(y);
    }
    Tensor::cat(features, 1)
}

/// torchvision's `_Transition`: BN-ReLU-conv1×1 halving the channels, 2×2 average pool.
#[derive(Module, Debug)]
pub struct Transition {
    norm: BatchNorm,
    conv: Conv2d,
}

impl Transition {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv.forward(relu(self.norm.forward(x)));
        avg_pool2d(x, AvgPoolOptions::new([2, 2]).with_stride([2, 2]))
    }
}

/// torchvision's `features` `Sequential` (named children).
#[derive(Module, Debug)]
pub struct DenseFeatures {
    conv0: Conv2d,
    norm0: BatchNorm,
    denseblock1: DenseBlock,
    transition1: Transition,
    denseblock2: DenseBlock,
    transition2: Transition,
    denseblock3: DenseBlock,
    transition3: Transition,
    denseblock4: DenseBlock,
    norm5: BatchNorm,
}

/// torchvision's `DenseNet`.
#[derive(Module, Debug)]
pub struct DenseNet {
    features: DenseFeatures,
    dropout: Dropout,
    classifier: Option<Linear>,
    #[module(skip)]
    global_pool: GlobalPool,
    #[module(skip)]
    arch: &'static str,
    #[module(skip)]
    num_features: usize,
}

/// torchvision's classifier init: PyTorch's default weight, bias 0.
fn classifier(features: usize, num_classes: usize, device: &Device) -> Option<Linear> {
    let mut fc = crate::model::classifier(features, num_classes, device)?;
    fc.bias = Some(Param::from_tensor(Tensor::zeros([num_classes], device)));
    Some(fc)
}

fn build(
    arch: &'static str,
    growth: usize,
    blocks: [usize; 4],
    init_features: usize,
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    o.no_drop_path(arch)?;
    let mut c = init_features;
    let mut dense = Vec::with_capacity(4);
    let mut transitions = Vec::with_capacity(3);
    for (i, &n) in blocks.iter().enumerate() {
        dense.push(dense_block(n, c, growth, device));
        c += n * growth;
        if i < 3 {
            transitions.push(Transition {
                norm: bn(c, device),
                conv: conv(c, c / 2, 1, 1, device),
            });
            c /= 2;
        }
    }
    let mut dense = dense.into_iter();
    let mut transitions = transitions.into_iter();
    // Four blocks and three transitions were pushed above.
    let (Some(b1), Some(b2), Some(b3), Some(b4)) =
        (dense.next(), dense.next(), dense.next(), dense.next())
    else {
        unreachable!("four dense blocks")
    };
    let (Some(t1), Some(t2), Some(t3)) =
        (transitions.next(), transitions.next(), transitions.next())
    else {
        unreachable!("three transitions")
    };
    let features = DenseFeatures {
        conv0: conv(o.in_chans, init_features, 7, 2, device),
        norm0: bn(init_features, device),
        denseblock1: b1,
        transition1: t1,
        denseblock2: b2,
        transition2: t2,
        denseblock3: b3,
        transition3: t3,
        denseblock4: b4,
        norm5: bn(c, device),
    };
    let num_features = c * o.global_pool.multiplier();
    Ok(ZooModel::DenseNet(DenseNet {
        features,
        dropout: DropoutConfig::new(o.drop_rate_or(0.0)).init(),
        classifier: classifier(num_features, o.num_classes, device),
        global_pool: o.global_pool,
        arch,
        num_features,
    }))
}

impl Architecture for DenseNet {
    fn arch(&self) -> &'static str {
        self.arch
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        let f = &self.features;
        let x = relu(f.norm0.forward(f.conv0.forward(x)));
        let mut x = kindling_nn::max_pool2d(
            x,
            MaxPoolOptions::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]),
        );
        x = f
            .transition1
            .forward(dense_block_forward(&f.denseblock1, x));
        x = f
            .transition2
            .forward(dense_block_forward(&f.denseblock2, x));
        x = f
            .transition3
            .forward(dense_block_forward(&f.denseblock3, x));
        x = dense_block_forward(&f.denseblock4, x);
        // torchvision applies the final ReLU in `forward`; timm counts it as a feature.
        Features::Map(relu(f.norm5.forward(x)))
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        pooled_head(
            features,
            self.global_pool,
            &self.dropout,
            &self.classifier,
            pre_logits,
        )
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn num_classes(&self) -> usize {
        classifier_outputs(&self.classifier)
    }

    fn reset_classifier(&mut self, num_classes: usize, device: &Device) {
        self.classifier = classifier(self.num_features, num_classes, device);
    }
}
