//! ResNet, ResNeXt and Wide ResNet (torchvision `resnet.py`): `conv1`, `bn1`, `layer1..4` of
//! basic or bottleneck blocks with `downsample.0/1`, `fc`. timm's extras: `drop_rate` before
//! `fc`, `drop_path_rate` on the residual branches (rising linearly per block, as timm).

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};
use kindling_nn::{Activation, BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, DropPath, Linear};

use crate::model::{
    Architecture, BuildOptions, Features, GlobalPool, ZooModel, classifier, classifier_outputs,
    pooled_head,
};
use crate::registry::Family;
use crate::{FinetuneError, ModelEntry, Weights};

const FAMILY: Family = Family::new("conv1", "fc");

/// The family's builders, with torchvision's weights (`DEFAULT` first).
pub(crate) const MODELS: &[ModelEntry] = &[
    FAMILY.entry(
        "resnet18",
        |o, d| build("resnet18", Kind::Basic, [2, 2, 2, 2], 1, 64, o, d),
        &[Weights::tv_in1k(tv_url!("resnet18-f37072fd.pth"))],
    ),
    FAMILY.entry(
        "resnet34",
        |o, d| build("resnet34", Kind::Basic, [3, 4, 6, 3], 1, 64, o, d),
        &[Weights::tv_in1k(tv_url!("resnet34-b627a593.pth"))],
    ),
    FAMILY.entry(
        "resnet50",
        |o, d| build("resnet50", Kind::Bottleneck, [3, 4, 6, 3], 1, 64, o, d),
        &[
            Weights::tv2_in1k(tv_url!("resnet50-11ad3fa6.pth")),
            Weights::tv_in1k(tv_url!("resnet50-0676ba61.pth")),
        ],
    ),
    FAMILY.entry(
        "resnet101",
        |o, d| build("resnet101", Kind::Bottleneck, [3, 4, 23, 3], 1, 64, o, d),
        &[
            Weights::tv2_in1k(tv_url!("resnet101-cd907fc2.pth")),
            Weights::tv_in1k(tv_url!("resnet101-63fe2227.pth")),
        ],
    ),
    FAMILY.entry(
        "resnet152",
        |o, d| build("resnet152", Kind::Bottleneck, [3, 8, 36, 3], 1, 64, o, d),
        &[
            Weights::tv2_in1k(tv_url!("resnet152-f82ba261.pth")),
            Weights::tv_in1k(tv_url!("resnet152-394f9c45.pth")),
        ],
    ),
    FAMILY.entry(
        "resnext50_32x4d",
        |o, d| {
            build(
                "resnext50_32x4d",
                Kind::Bottleneck,
                [3, 4, 6, 3],
                32,
                4,
                o,
                d,
            )
        },
        &[
            Weights::tv2_in1k(tv_url!("resnext50_32x4d-1a0047aa.pth")),
            Weights::tv_in1k(tv_url!("resnext50_32x4d-7cdf4587.pth")),
        ],
    ),
    FAMILY.entry(
        "resnext101_32x8d",
        |o, d| {
            build(
                "resnext101_32x8d",
                Kind::Bottleneck,
                [3, 4, 23, 3],
                32,
                8,
                o,
                d,
            )
        },
        &[
            Weights::tv2_in1k(tv_url!("resnext101_32x8d-110c445d.pth")),
            Weights::tv_in1k(tv_url!("resnext101_32x8d-8ba56ff5.pth")),
        ],
    ),
    FAMILY.entry(
        "wide_resnet50_2",
        |o, d| {
            build(
                "wide_resnet50_2",
                Kind::Bottleneck,
                [3, 4, 6, 3],
                1,
                128,
                o,
                d,
            )
        },
        &[
            Weights::tv2_in1k(tv_url!("wide_resnet50_2-9ba9bcbe.pth")),
            Weights::tv_in1k(tv_url!("wide_resnet50_2-95faca4d.pth")),
        ],
    ),
    FAMILY.entry(
        "wide_resnet101_2",
        |o, d| {
            build(
                "wide_resnet101_2",
                Kind::Bottleneck,
                [3, 4, 23, 3],
                1,
                128,
                o,
                d,
            )
        },
        &[
            Weights::tv2_in1k(tv_url!("wide_resnet101_2-d733dc28.pth")),
            Weights::tv_in1k(tv_url!("wide_resnet101_2-32ee1156.pth")),
        ],
    ),
];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Basic,
    Bottleneck,
}

/// torchvision's conv init: `kaiming_normal_(mode = "fan_out", nonlinearity = "relu")`.
fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new(cin, cout, [k, k])
        .with_stride([stride, stride])
        .with_padding([k / 2, k / 2])
        .with_groups(groups)
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal {
            gain: 2f64.sqrt(),
            fan_out_only: true,
        })
        .init(device)
}

fn bn(c: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(c).init(device)
}

/// torchvision's `downsample = Sequential(conv1x1, BatchNorm2d)`: keys `downsample.0`,
/// `downsample.1`.
#[derive(Module, Debug)]
pub enum DownsampleLayer {
    /// `downsample.0`.
    Conv(Conv2d),
    /// `downsample.1`.
    Norm(BatchNorm),
}

/// A residual block: basic (two 3×3) or bottleneck (1×1, grouped 3×3, 1×1).
#[derive(Module, Debug)]
pub struct Block {
    conv1: Conv2d,
    bn1: BatchNorm,
    conv2: Conv2d,
    bn2: BatchNorm,
    conv3: Option<Conv2d>,
    bn3: Option<BatchNorm>,
    downsample: Option<Vec<DownsampleLayer>>,
    drop_path: DropPath,
}

impl Block {
    fn new(
        kind: Kind,
        inplanes: usize,
        planes: usize,
        stride: usize,
        (groups, base_width): (usize, usize),
        drop_path: f64,
        device: &Device,
    ) -> Self {
        let expansion = if kind == Kind::Basic { 1 } else { 4 };
        let out = planes * expansion;
        let downsample = (stride != 1 || inplanes != out).then(|| {
            vec![
                DownsampleLayer::Conv(conv(inplanes, out, 1, stride, 1, device)),
                DownsampleLayer::Norm(bn(out, device)),
            ]
        });
        let drop_path = DropPath::new(drop_path);
        match kind {
            Kind::Basic => Self {
                conv1: conv(inplanes, planes, 3, stride, 1, device),
                bn1: bn(planes, device),
                conv2: conv(planes, planes, 3, 1, 1, device),
                bn2: bn(planes, device),
                conv3: None,
                bn3: None,
                downsample,
                drop_path,
            },
            Kind::Bottleneck => {
                let width = planes * base_width / 64 * groups;
                Self {
                    conv1: conv(inplanes, width, 1, 1, 1, device),
                    bn1: bn(width, device),
                    conv2: conv(width, width, 3, stride, groups, device),
                    bn2: bn(width, device),
                    conv3: Some(conv(width, out, 1, 1, 1, device)),
                    bn3: Some(bn(out, device)),
                    downsample,
                    drop_path,
                }
            }
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let relu = |t| Activation::Relu.forward(t);
        let identity = match &self.downsample {
            Some(layers) => layers.iter().fold(x.clone(), |t, l| match l {
                DownsampleLayer::Conv(c) => c.forward(t),
                DownsampleLayer::Norm(n) => n.forward(t),
            }),
            None => x.clone(),
        };
        let mut y = relu(self.bn1.forward(self.conv1.forward(x)));
        y = self.bn2.forward(self.conv2.forward(y));
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            y = bn3.forward(conv3.forward(relu(y)));
        }
        relu(self.drop_path.forward(y) + identity)
    }
}

/// torchvision's `ResNet` (also ResNeXt and Wide ResNet through `groups`/`width_per_group`).
#[derive(Module, Debug)]
pub struct ResNet {
    conv1: Conv2d,
    bn1: BatchNorm,
    layer1: Vec<Block>,
    layer2: Vec<Block>,
    layer3: Vec<Block>,
    layer4: Vec<Block>,
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
    kind: Kind,
    layers: [usize; 4],
    groups: usize,
    base_width: usize,
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    let expansion = if kind == Kind::Basic { 1 } else { 4 };
    let total: usize = layers.iter().sum();
    let dpr = o.drop_path_rate_or(0.0);
    let mut index = 0;
    let mut inplanes = 64;
    let mut stages: Vec<Vec<Block>> = Vec::new();
    for (stage, (&n, planes)) in layers.iter().zip([64, 128, 256, 512]).enumerate() {
        let stride = if stage == 0 { 1 } else { 2 };
        let mut blocks = Vec::with_capacity(n);
        for b in 0..n {
            // timm: drop_path_rate * block_index / (blocks - 1).
            let rate = if total > 1 {
                dpr * index as f64 / (total - 1) as f64
            } else {
                dpr
            };
            let s = if b == 0 { stride } else { 1 };
            blocks.push(Block::new(
                kind,
                inplanes,
                planes,
                s,
                (groups, base_width),
                rate,
                device,
            ));
            inplanes = planes * expansion;
            index += 1;
        }
        stages.push(blocks);
    }
    let num_features = 512 * expansion * o.global_pool.multiplier();
    let [layer1, layer2, layer3, layer4]: [Vec<Block>; 4] =
        stages
            .try_into()
            .map_err(|_| FinetuneError::InvalidOption {
                model: arch.into(),
                message: "four stages".into(),
            })?;
    Ok(ZooModel::ResNet(ResNet {
        conv1: conv(o.in_chans, 64, 7, 2, 1, device),
        bn1: bn(64, device),
        layer1,
        layer2,
        layer3,
        layer4,
        dropout: DropoutConfig::new(o.drop_rate_or(0.0)).init(),
        fc: classifier(num_features, o.num_classes, device),
        global_pool: o.global_pool,
        arch,
        num_features,
    }))
}

impl Architecture for ResNet {
    fn arch(&self) -> &'static str {
        self.arch
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        let x = Activation::Relu.forward(self.bn1.forward(self.conv1.forward(x)));
        let mut x = kindling_nn::max_pool2d(
            x,
            MaxPoolOptions::new([3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1]),
        );
        for stage in [&self.layer1, &self.layer2, &self.layer3, &self.layer4] {
            for block in stage {
                x = block.forward(x);
            }
        }
        Features::Map(x)
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
