//! ConvNeXt (torchvision `convnext.py`): `features` = stem (`4×4/4` conv + `LayerNorm2d`),
//! then stages of `CNBlock`s alternating with downsamples (`LayerNorm2d` + `2×2/2` conv);
//! `classifier` = `Sequential(LayerNorm2d, Flatten, Linear)`. Stochastic depth rises linearly
//! per block to torchvision's `stochastic_depth_prob` (tiny 0.1, small 0.4). timm's extras:
//! `drop_rate` before the final `Linear` (default 0), `global_pool` avg, max or avgmax.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::{Device, Tensor};
use kindling_nn::{
    Activation, Conv2d, Conv2dConfig, DropPath, LayerNorm, LayerNorm2d, LayerNormConfig, Linear,
    LinearConfig,
};

use crate::model::{Architecture, BuildOptions, Features, GlobalPool, ZooModel, classifier};
use crate::registry::Family;
use crate::registry::Interpolation::Bilinear;
use crate::{FinetuneError, ModelEntry, Weights};

const FAMILY: Family = Family::new("features.0.0", "classifier.2");

/// The family's builders, with torchvision's weights (`DEFAULT` first).
pub(crate) const MODELS: &[ModelEntry] = &[
    FAMILY.entry(
        "convnext_tiny",
        |o, d| build("convnext_tiny", [3, 3, 9, 3], 0.1, o, d),
        &[Weights::torchvision(
            "tv_in1k",
            "https://download.pytorch.org/models/convnext_tiny-983f1562.pth",
            224,
            236,
            Bilinear,
        )],
    ),
    FAMILY.entry(
        "convnext_small",
        |o, d| build("convnext_small", [3, 3, 27, 3], 0.4, o, d),
        &[Weights::torchvision(
            "tv_in1k",
            "https://download.pytorch.org/models/convnext_small-0c510722.pth",
            224,
            230,
            Bilinear,
        )],
    ),
];

/// Stage widths of the tiny and small variants.
const WIDTHS: [usize; 4] = [96, 192, 384, 768];

/// torchvision's init for every conv and linear: `trunc_normal_(std = 0.02)` (its ±2 bounds
/// are 100 σ away, so a plain normal), zero bias.
const INIT: Initializer = Initializer::Normal {
    mean: 0.0,
    std: 0.02,
};

fn zero_bias(c: usize, device: &Device) -> Option<Param<Tensor<1>>> {
    Some(Param::from_tensor(Tensor::zeros([c], device)))
}

fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    let mut conv = Conv2dConfig::new(cin, cout, [k, k])
        .with_stride([stride, stride])
        // The 7×7 depthwise conv keeps the size; the 4×4 stem and 2×2 downsamples are unpadded.
        .with_padding(if k == 7 { [3, 3] } else { [0, 0] })
        .with_groups(groups)
        .with_initializer(INIT)
        .init(device);
    conv.bias = zero_bias(cout, device);
    conv
}

fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut fc = LinearConfig::new(d_in, d_out)
        .with_initializer(INIT)
        .init(device);
    fc.bias = zero_bias(d_out, device);
    fc
}

fn norm2d(c: usize, device: &Device) -> LayerNorm2d {
    LayerNormConfig::new(c).with_epsilon(1e-6).init_2d(device)
}

/// torchvision's `Permute`: no parameters, but it holds its index in `block`.
#[derive(Module, Debug)]
pub struct Permute {
    #[module(skip)]
    dims: [usize; 4],
}

/// `nn.GELU()` (exact): holds its index in `block`.
#[derive(Module, Debug)]
pub struct Gelu {
    #[module(skip)]
    activation: Activation,
}

impl Gelu {
    /// The exact (erf) GELU.
    pub fn new() -> Self {
        Self {
            activation: Activation::Gelu,
        }
    }

    /// Applies it.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.activation.forward(x)
    }
}

impl Default for Gelu {
    fn default() -> Self {
        Self::new()
    }
}

/// `nn.Flatten(1)` of the classifier: holds index 1 (the pooled vector is already flat).
#[derive(Module, Debug)]
pub struct Flatten {
    #[module(skip)]
    start_dim: usize,
}

/// One entry of `CNBlock.block`: `0` conv, `1` permute, `2` norm, `3` linear, `4` GELU,
/// `5` linear, `6` permute.
#[derive(Module, Debug)]
pub enum BlockLayer {
    /// The 7×7 depthwise convolution.
    Conv(Conv2d),
    /// Channels last and back.
    Permute(Permute),
    /// `LayerNorm(dim, eps = 1e-6)` over the channels (last dimension).
    Norm(LayerNorm),
    /// The `4 × dim` expansion and its projection back.
    Linear(Linear),
    /// GELU between the linears.
    Gelu(Gelu),
}

/// torchvision's `CNBlock`: `x + stochastic_depth(layer_scale * block(x))`.
#[derive(Module, Debug)]
pub struct CNBlock {
    block: Vec<BlockLayer>,
    /// `[dim, 1, 1]`, initialised to 1e-6.
    layer_scale: Param<Tensor<3>>,
    stochastic_depth: DropPath,
}

impl CNBlock {
    fn new(dim: usize, sd_prob: f64, device: &Device) -> Self {
        let norm = LayerNormConfig::new(dim).with_epsilon(1e-6).init(device);
        Self {
            block: vec![
                BlockLayer::Conv(conv(dim, dim, 7, 1, dim, device)),
                BlockLayer::Permute(Permute { dims: [0, 2, 3, 1] }),
                BlockLayer::Norm(norm),
                BlockLayer::Linear(linear(dim, 4 * dim, device)),
                BlockLayer::Gelu(Gelu::new()),
                BlockLayer::Linear(linear(4 * dim, dim, device)),
                BlockLayer::Permute(Permute { dims: [0, 3, 1, 2] }),
            ],
            layer_scale: Param::from_tensor(Tensor::ones([dim, 1, 1], device).mul_scalar(1e-6)),
            stochastic_depth: DropPath::new(sd_prob),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = self.block.iter().fold(x.clone(), |t, l| match l {
            BlockLayer::Conv(c) => c.forward(t),
            BlockLayer::Permute(p) => t.permute(p.dims),
            BlockLayer::Norm(n) => n.forward(t),
            BlockLayer::Linear(fc) => fc.forward(t),
            BlockLayer::Gelu(g) => g.forward(t),
        });
        let y = y.clone() * kindling_precision::like(self.layer_scale.val(), &y).unsqueeze::<4>();
        let (y, x) = kindling_precision::promote(self.stochastic_depth.forward(y), x);
        y + x
    }
}

/// An entry of the stem (`conv`, `norm`) or of a downsample (`norm`, `conv`).
#[derive(Module, Debug)]
pub enum ConvNorm {
    /// A strided patchify convolution.
    Conv(Conv2d),
    /// Channels-first `LayerNorm2d(eps = 1e-6)`.
    Norm(LayerNorm2d),
}

/// One entry of `features`.
#[derive(Module, Debug)]
pub enum Stage {
    /// `features.0`: `Conv2dNormActivation(in_chans, 96, 4, stride 4)` without activation.
    Stem(Vec<ConvNorm>),
    /// A stage of blocks (`features.1`, `.3`, `.5`, `.7`).
    Blocks(Vec<CNBlock>),
    /// A downsample (`features.2`, `.4`, `.6`).
    Downsample(Vec<ConvNorm>),
}

/// One entry of `classifier`: `0` norm, `1` flatten, `2` linear (absent without classes).
#[derive(Module, Debug)]
pub enum HeadLayer {
    /// `LayerNorm2d` of the pooled features.
    Norm(LayerNorm2d),
    /// `Flatten(1)`.
    Flatten(Flatten),
    /// The classifier proper.
    Linear(Linear),
}

/// torchvision's `ConvNeXt`.
#[derive(Module, Debug)]
pub struct ConvNeXt {
    features: Vec<Stage>,
    classifier: Vec<HeadLayer>,
    head_drop: Dropout,
    #[module(skip)]
    global_pool: GlobalPool,
    #[module(skip)]
    arch: &'static str,
    #[module(skip)]
    num_features: usize,
}

fn build(
    arch: &'static str,
    depths: [usize; 4],
    stochastic_depth_prob: f64,
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    if o.global_pool == GlobalPool::CatAvgMax {
        // The head's LayerNorm2d has one weight per channel: it cannot take [avg, max].
        return Err(FinetuneError::InvalidOption {
            model: arch.into(),
            message: "global_pool CatAvgMax: the head norm takes one value per channel \
                      (use avg, max or avgmax)"
                .into(),
        });
    }
    let dpr = o.drop_path_rate_or(stochastic_depth_prob);
    let total: usize = depths.iter().sum();
    let mut features = vec![Stage::Stem(vec![
        ConvNorm::Conv(conv(o.in_chans, WIDTHS[0], 4, 4, 1, device)),
        ConvNorm::Norm(norm2d(WIDTHS[0], device)),
    ])];
    let mut id = 0;
    for (stage, &n) in depths.iter().enumerate() {
        let dim = WIDTHS[stage];
        let blocks = (0..n)
            .map(|_| {
                // torchvision: stochastic_depth_prob * block_id / (total_blocks - 1).
                let p = dpr * id as f64 / (total - 1) as f64;
                id += 1;
                CNBlock::new(dim, p, device)
            })
            .collect();
        features.push(Stage::Blocks(blocks));
        if let Some(&out) = WIDTHS.get(stage + 1) {
            features.push(Stage::Downsample(vec![
                ConvNorm::Norm(norm2d(dim, device)),
                ConvNorm::Conv(conv(dim, out, 2, 2, 1, device)),
            ]));
        }
    }
    let num_features = WIDTHS[3];
    let mut model = ConvNeXt {
        features,
        classifier: vec![
            HeadLayer::Norm(norm2d(num_features, device)),
            HeadLayer::Flatten(Flatten { start_dim: 1 }),
        ],
        head_drop: DropoutConfig::new(o.drop_rate_or(0.0)).init(),
        global_pool: o.global_pool,
        arch,
        num_features,
    };
    if o.num_classes > 0 {
        model.classifier.push(HeadLayer::Linear(linear(
            num_features,
            o.num_classes,
            device,
        )));
    }
    Ok(ZooModel::ConvNeXt(model))
}

impl Architecture for ConvNeXt {
    fn arch(&self) -> &'static str {
        self.arch
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        let conv_norm = |t: Tensor<4>, layers: &[ConvNorm]| {
            layers.iter().fold(t, |t, l| match l {
                ConvNorm::Conv(c) => c.forward(t),
                ConvNorm::Norm(n) => n.forward(t),
            })
        };
        let x = self.features.iter().fold(x, |x, stage| match stage {
            Stage::Stem(layers) | Stage::Downsample(layers) => conv_norm(x, layers),
            Stage::Blocks(blocks) => blocks.iter().fold(x, |x, b| b.forward(x)),
        });
        Features::Map(x)
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.into_map();
        let mut x = self.global_pool.forward(x);
        for layer in &self.classifier {
            x = match layer {
                HeadLayer::Norm(n) => {
                    let [b, c] = x.dims();
                    n.forward(x.reshape([b, c, 1, 1])).reshape([b, c])
                }
                // The pool already flattened [b, c, 1, 1] to [b, c].
                HeadLayer::Flatten(f) => {
                    debug_assert_eq!(f.start_dim, 1);
                    x
                }
                HeadLayer::Linear(_) if pre_logits => x,
                HeadLayer::Linear(fc) => fc.forward(self.head_drop.forward(x)),
            };
        }
        x
    }

    fn num_features(&self) -> usize {
        self.num_features
    }

    fn num_classes(&self) -> usize {
        self.classifier
            .iter()
            .find_map(|l| match l {
                HeadLayer::Linear(fc) => Some(fc.d_output()),
                _ => None,
            })
            .unwrap_or(0)
    }

    fn reset_classifier(&mut self, num_classes: usize, device: &Device) {
        // Keeps the head norm (pretrained) and replaces only `classifier.2`.
        self.classifier
            .retain(|l| !matches!(l, HeadLayer::Linear(_)));
        if let Some(fc) = classifier(self.num_features, num_classes, device) {
            self.classifier.push(HeadLayer::Linear(fc));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{FinetuneError, GlobalPool, ModelOptions, create_model, pretrained_cfg};
    use burn::tensor::{Device, Tensor};

    #[test]
    fn convnext_options_follow_timm() {
        let device = Device::flex();
        let opts = ModelOptions::default().num_classes(0).in_chans(1);
        let mut model = create_model("convnext_tiny", opts, &device).unwrap();
        let x = || Tensor::<4>::zeros([2, 1, 32, 32], &device);
        assert_eq!(model.forward(x()).dims(), [2, 768]);
        model.reset_classifier(5, &device);
        assert_eq!(
            (model.num_classes(), model.forward(x()).dims()),
            (5, [2, 5])
        );
        let pool = ModelOptions::default().global_pool(GlobalPool::CatAvgMax);
        assert!(matches!(
            create_model("convnext_tiny", pool, &device),
            Err(FinetuneError::InvalidOption { .. })
        ));
        let cfg = pretrained_cfg("convnext_small").unwrap();
        assert_eq!(
            (cfg.first_conv, cfg.classifier),
            ("features.0.0", "classifier.2")
        );
        assert!((cfg.crop_pct - 224.0 / 230.0).abs() < 1e-12);
    }
}
