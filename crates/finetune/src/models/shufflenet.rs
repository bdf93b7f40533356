//! ShuffleNet V2 (torchvision `shufflenetv2.py`): `conv1` (conv, BN, ReLU), a 3×3 max pool,
//! `stage2..4` of inverted residuals (`branch1`, `branch2` numbered `Sequential`s, outputs
//! concatenated then channel-shuffled), `conv5` and `fc` after a global pool. timm's
//! `drop_rate` is a dropout before `fc`.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Tensor};
use kindling_nn::{Activation, BatchNormConfig, Conv2dConfig, Linear};

use crate::model::{
    Architecture, BuildOptions, Features, GlobalPool, ZooModel, classifier, classifier_outputs,
    pooled_head,
};
use crate::models::tv_blocks::{Act, Layer, MaxPool, seq};
use crate::registry::Family;
use crate::{FinetuneError, ModelEntry, Weights};

const FAMILY: Family = Family::new("conv1.0", "fc");

/// The family's builders, with torchvision's weights.
pub(crate) const MODELS: &[ModelEntry] = &[
    FAMILY.entry(
        "shufflenet_v2_x0_5",
        |o, d| build("shufflenet_v2_x0_5", [24, 48, 96, 192, 1024], o, d),
        &[Weights::tv_in1k(
            "https://download.pytorch.org/models/shufflenetv2_x0.5-f707e7126e.pth",
        )],
    ),
    FAMILY.entry(
        "shufflenet_v2_x1_0",
        |o, d| build("shufflenet_v2_x1_0", [24, 116, 232, 464, 1024], o, d),
        &[Weights::tv_in1k(
            "https://download.pytorch.org/models/shufflenetv2_x1-5666bf0f80.pth",
        )],
    ),
];

/// Blocks per stage (`stages_repeats`), the same for every width.
const REPEATS: [usize; 3] = [4, 8, 4];

/// A bias-free conv, PyTorch's default init (torchvision sets none).
fn conv(cin: usize, cout: usize, k: usize, stride: usize, groups: usize, device: &Device) -> Layer {
    Layer::Conv(
        Conv2dConfig::new(cin, cout, [k, k])
            .with_stride([stride, stride])
            .with_padding([k / 2, k / 2])
            .with_groups(groups)
            .with_bias(false)
            .init(device),
    )
}

fn relu() -> Layer {
    Layer::Act(Act::new(Activation::Relu))
}

fn bn(c: usize, device: &Device) -> Layer {
    Layer::Norm(BatchNormConfig::new(c).init(device))
}

/// `[b, c, h, w]` seen as `[b, groups, c / groups, h, w]`, the two middle axes swapped.
fn channel_shuffle(x: Tensor<4>, groups: usize) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, groups, c / groups, h, w])
        .swap_dims(1, 2)
        .reshape([b, c, h, w])
}

/// torchvision's `InvertedResidual`: with stride 2 both branches see the input; with stride
/// 1 the first half of the channels passes through and `branch1` is empty.
#[derive(Module, Debug)]
pub struct InvertedResidual {
    branch1: Vec<Layer>,
    branch2: Vec<Layer>,
    #[module(skip)]
    stride: usize,
}

impl InvertedResidual {
    fn new(cin: usize, cout: usize, stride: usize, device: &Device) -> Self {
        let bf = cout / 2;
        let branch1 = if stride > 1 {
            vec![
                conv(cin, cin, 3, stride, cin, device),
                bn(cin, device),
                conv(cin, bf, 1, 1, 1, device),
                bn(bf, device),
                relu(),
            ]
        } else {
            Vec::new()
        };
        let cin2 = if stride > 1 { cin } else { bf };
        let branch2 = vec![
            conv(cin2, bf, 1, 1, 1, device),
            bn(bf, device),
            relu(),
            conv(bf, bf, 3, stride, bf, device),
            bn(bf, device),
            conv(bf, bf, 1, 1, 1, device),
            bn(bf, device),
            relu(),
        ];
        Self {
            branch1,
            branch2,
            stride,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = if self.stride == 1 {
            let half = x.dims()[1] / 2;
            let x1 = x.clone().narrow(1, 0, half);
            let x2 = x.narrow(1, half, half);
            Tensor::cat(vec![x1, seq(&self.branch2, x2)], 1)
        } else {
            Tensor::cat(
                vec![seq(&self.branch1, x.clone()), seq(&self.branch2, x)],
                1,
            )
        };
        channel_shuffle(out, 2)
    }
}

/// torchvision's `ShuffleNetV2`.
#[derive(Module, Debug)]
pub struct ShuffleNetV2 {
    conv1: Vec<Layer>,
    maxpool: MaxPool,
    stage2: Vec<InvertedResidual>,
    stage3: Vec<InvertedResidual>,
    stage4: Vec<InvertedResidual>,
    conv5: Vec<Layer>,
    dropout: Dropout,
    fc: Option<Linear>,
    #[module(skip)]
    global_pool: GlobalPool,
    #[module(skip)]
    arch: &'static str,
    #[module(skip)]
    num_features: usize,
}

fn build(
    arch: &'static str,
    channels: [usize; 5],
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    o.no_drop_path(arch)?;
    let conv1 = vec![
        conv(o.in_chans, channels[0], 3, 2, 1, device),
        bn(channels[0], device),
        relu(),
    ];
    let mut cin = channels[0];
    let mut stages: Vec<Vec<InvertedResidual>> = Vec::with_capacity(3);
    for (&n, &cout) in REPEATS.iter().zip(&channels[1..4]) {
        let mut blocks = vec![InvertedResidual::new(cin, cout, 2, device)];
        blocks.extend((1..n).map(|_| InvertedResidual::new(cout, cout, 1, device)));
        stages.push(blocks);
        cin = cout;
    }
    let [stage2, stage3, stage4]: [Vec<InvertedResidual>; 3] =
        stages
            .try_into()
            .map_err(|_| FinetuneError::InvalidOption {
                model: arch.into(),
                message: "three stages".into(),
            })?;
    let last = channels[4];
    let conv5 = vec![conv(cin, last, 1, 1, 1, device), bn(last, device), relu()];
    let num_features = last * o.global_pool.multiplier();
    Ok(ZooModel::ShuffleNetV2(ShuffleNetV2 {
        conv1,
        maxpool: MaxPool::new(3, 2, 1, false),
        stage2,
        stage3,
        stage4,
        conv5,
        dropout: DropoutConfig::new(o.drop_rate_or(0.0)).init(),
        fc: classifier(num_features, o.num_classes, device),
        global_pool: o.global_pool,
        arch,
        num_features,
    }))
}

impl Architecture for ShuffleNetV2 {
    fn arch(&self) -> &'static str {
        self.arch
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        let mut x = self.maxpool.forward(seq(&self.conv1, x));
        for stage in [&self.stage2, &self.stage3, &self.stage4] {
            for block in stage {
                x = block.forward(x);
            }
        }
        Features::Map(seq(&self.conv5, x))
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        pooled_head(
            features,
            self.global_pool,
            &self.dropout,
            &self.fc,
            pre_logits,
        )
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn num_classes(&self) -> usize {
        classifier_outputs(&self.fc)
    }

    fn reset_classifier(&mut self, num_classes: usize, device: &Device) {
        self.fc = classifier(self.num_features, num_classes, device);
    }
}
