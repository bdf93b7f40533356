//! Vision Transformer (torchvision `vision_transformer.py`): `conv_proj` patchify conv,
//! `class_token`, `encoder` (`pos_embedding`, pre-norm `layers`, final `ln`), `heads.head`.
//!
//! torchvision names the blocks `encoder.layers.encoder_layer_{i}`, a [`Named`] sequence here,
//! so paths and saved files keep torchvision's keys. torchvision's `dropout` (inside the encoder)
//! is timm's `drop_rate` here (default 0); the architecture has no stochastic depth and pools
//! nothing (the class token is the feature vector).

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::{Device, Distribution, Tensor};
use kindling_nn::{
    Conv2d, Conv2dConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig, MultiheadAttention,
};
use kindling_precision::like;

use super::convnext::Gelu;
use super::named::Named;
use crate::model::{Architecture, BuildOptions, Features, ZooModel, apply_classifier};
use crate::registry::Interpolation::Bilinear;
use crate::{FinetuneError, ModelEntry, Weights};

/// The family's builders, with torchvision's weights (`DEFAULT` first).
pub(crate) const MODELS: &[ModelEntry] = &[ModelEntry {
    name: "vit_b_16",
    build: |o, d| build("vit_b_16", ViTConfig::B_16, o, d),
    first_conv: "conv_proj",
    classifier: "heads.head",
    // IMAGENET1K_V1: `ImageClassification(crop_size = 224)`, i.e. resize 256, bilinear.
    weights: &[Weights::torchvision(
        "tv_in1k",
        "https://download.pytorch.org/models/vit_b_16-c867db91.pth",
        224,
        256,
        Bilinear,
    )],
    key_rules: &[],
}];

/// torchvision's `_vision_transformer` arguments.
#[derive(Clone, Copy)]
struct ViTConfig {
    image_size: usize,
    patch_size: usize,
    num_layers: usize,
    num_heads: usize,
    hidden_dim: usize,
    mlp_dim: usize,
}

impl ViTConfig {
    const B_16: Self = Self {
        image_size: 224,
        patch_size: 16,
        num_layers: 12,
        num_heads: 12,
        hidden_dim: 768,
        mlp_dim: 3072,
    };
}

fn layer_norm(d: usize, device: &Device) -> LayerNorm {
    LayerNormConfig::new(d).with_epsilon(1e-6).init(device)
}

/// One entry of torchvision's `MLPBlock` (an `MLP` Sequential): `0` linear, `1` GELU,
/// `2` dropout, `3` linear, `4` dropout.
#[derive(Module, Debug)]
pub enum MlpLayer {
    /// `mlp.0` (`dim → mlp_dim`) and `mlp.3` (`mlp_dim → dim`).
    Linear(Linear),
    /// `mlp.1`.
    Gelu(Gelu),
    /// `mlp.2` and `mlp.4`.
    Dropout(Dropout),
}

/// `MLPBlock`'s init: Xavier-uniform weights, biases normal with std 1e-6.
fn mlp_linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    let mut fc = LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::XavierUniform { gain: 1.0 })
        .init(device);
    fc.bias = Some(Param::from_tensor(Tensor::random(
        [d_out],
        Distribution::Normal(0.0, 1e-6),
        device,
    )));
    fc
}

/// torchvision's `EncoderBlock`: pre-norm self-attention and MLP, each residual.
#[derive(Module, Debug)]
pub struct EncoderBlock {
    ln_1: LayerNorm,
    self_attention: MultiheadAttention,
    dropout: Dropout,
    ln_2: LayerNorm,
    mlp: Vec<MlpLayer>,
}

impl EncoderBlock {
    fn new(c: &ViTConfig, dropout: f64, device: &Device) -> Self {
        let drop = || DropoutConfig::new(dropout).init();
        Self {
            ln_1: layer_norm(c.hidden_dim, device),
            // torchvision's `attention_dropout` is 0.
            self_attention: MultiheadAttention::new(c.hidden_dim, c.num_heads, 0.0, device),
            dropout: drop(),
            ln_2: layer_norm(c.hidden_dim, device),
            mlp: vec![
                MlpLayer::Linear(mlp_linear(c.hidden_dim, c.mlp_dim, device)),
                MlpLayer::Gelu(Gelu::new()),
                MlpLayer::Dropout(drop()),
                MlpLayer::Linear(mlp_linear(c.mlp_dim, c.hidden_dim, device)),
                MlpLayer::Dropout(drop()),
            ],
        }
    }

    fn forward(&self, input: Tensor<3>) -> Tensor<3> {
        let x = self.ln_1.forward(input.clone());
        let x = self.dropout.forward(self.self_attention.forward(x)) + input;
        let y = self
            .mlp
            .iter()
            .fold(self.ln_2.forward(x.clone()), |t, l| match l {
                MlpLayer::Linear(fc) => fc.forward(t),
                MlpLayer::Gelu(g) => g.forward(t),
                MlpLayer::Dropout(d) => d.forward(t),
            });
        x + y
    }
}

/// torchvision's `Encoder`: position embedding, dropout, the blocks, a final LayerNorm.
#[derive(Module, Debug)]
pub struct Encoder {
    /// `[1, 1 + patches, dim]`.
    pos_embedding: Param<Tensor<3>>,
    dropout: Dropout,
    layers: Named<EncoderBlock>,
    ln: LayerNorm,
}

/// torchvision's `heads` Sequential: just `head` (no `representation_size`).
#[derive(Module, Debug)]
pub struct Heads {
    head: Option<Linear>,
}

/// torchvision's `VisionTransformer`.
#[derive(Module, Debug)]
pub struct VisionTransformer {
    conv_proj: Conv2d,
    /// `[1, 1, dim]`.
    class_token: Param<Tensor<3>>,
    encoder: Encoder,
    heads: Heads,
    #[module(skip)]
    arch: &'static str,
    #[module(skip)]
    image_size: usize,
    #[module(skip)]
    hidden_dim: usize,
}

/// torchvision zero-initialises the head.
fn head(d: usize, num_classes: usize, device: &Device) -> Option<Linear> {
    (num_classes > 0)
        .then(|| {
            LinearConfig::new(d, num_classes)
                .with_initializer(Initializer::Zeros)
                .init(device)
        })
        .map(|mut fc| {
            fc.bias = Some(Param::from_tensor(Tensor::zeros([num_classes], device)));
            fc
        })
}

fn build(
    arch: &'static str,
    c: ViTConfig,
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    o.no_drop_path(arch)?;
    o.avg_pool_only(arch)?;
    let dropout = o.drop_rate_or(0.0);
    let (d, p) = (c.hidden_dim, c.patch_size);
    let seq_length = (c.image_size / p).pow(2) + 1;
    // torchvision: trunc_normal_(std = sqrt(1 / fan_in)) (±2 is ≥ 50 σ: a plain normal).
    let fan_in = o.in_chans * p * p;
    let mut conv_proj = Conv2dConfig::new(o.in_chans, d, [p, p])
        .with_stride([p, p])
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: (1.0 / fan_in as f64).sqrt(),
        })
        .init(device);
    conv_proj.bias = Some(Param::from_tensor(Tensor::zeros([d], device)));
    let encoder = Encoder {
        pos_embedding: Param::from_tensor(Tensor::random(
            [1, seq_length, d],
            Distribution::Normal(0.0, 0.02),
            device,
        )),
        dropout: DropoutConfig::new(dropout).init(),
        layers: Named::numbered(
            "encoder_layer_",
            0,
            (0..c.num_layers)
                .map(|_| EncoderBlock::new(&c, dropout, device))
                .collect(),
        ),
        ln: layer_norm(d, device),
    };
    Ok(ZooModel::VisionTransformer(VisionTransformer {
        conv_proj,
        class_token: Param::from_tensor(Tensor::zeros([1, 1, d], device)),
        encoder,
        heads: Heads {
            head: head(d, o.num_classes, device),
        },
        arch,
        image_size: c.image_size,
        hidden_dim: d,
    }))
}

impl Architecture for VisionTransformer {
    fn arch(&self) -> &'static str {
        self.arch
    }

    /// # Panics
    /// If the input is not `image_size × image_size` (224²), as torchvision asserts: the
    /// position embedding has one entry per patch of that size.
    fn forward_features(&self, x: Tensor<4>) -> Features {
        let [n, _, h, w] = x.dims();
        assert!(
            h == self.image_size && w == self.image_size,
            "{}: input is {h}×{w}, the model takes {s}×{s}",
            self.arch,
            s = self.image_size
        );
        let d = self.hidden_dim;
        // [n, d, h/p, w/p] → [n, patches, d].
        let x = self.conv_proj.forward(x).flatten::<3>(2, 3).swap_dims(1, 2);
        // Under autocast the patch embedding is low precision: the token and the position
        // embedding follow it (Burn has no dtype promotion).
        let cls = like(self.class_token.val(), &x).expand([n, 1, d]);
        let x = Tensor::cat(vec![cls, x.clone()], 1) + like(self.encoder.pos_embedding.val(), &x);
        let x = self.encoder.dropout.forward(x);
        let x = self.encoder.layers.modules().fold(x, |x, b| b.forward(x));
        Features::Tokens(self.encoder.ln.forward(x))
    }

    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        let x = features.into_tokens();
        let [b, _, d] = x.dims();
        // The class token.
        let x = x.narrow(1, 0, 1).reshape([b, d]);
        apply_classifier(&self.heads.head, x, pre_logits)
    }

    fn num_features(&self) -> usize {
        self.hidden_dim
    }

    fn num_classes(&self) -> usize {
        self.heads.head.as_ref().map_or(0, |fc| fc.d_output())
    }

    fn reset_classifier(&mut self, num_classes: usize, device: &Device) {
        self.heads.head = head(self.hidden_dim, num_classes, device);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Features, FinetuneError, ModelOptions, create_model};
    use burn::tensor::{Device, Tensor};

    #[test]
    fn vit_features_are_tokens_and_options_are_checked() {
        let device = Device::flex();
        let model =
            create_model("vit_b_16", ModelOptions::default().num_classes(0), &device).unwrap();
        let f = model.forward_features(Tensor::<4>::zeros([1, 3, 224, 224], &device));
        let Features::Tokens(t) = &f else {
            panic!("tokens expected")
        };
        assert_eq!(t.dims(), [1, 197, 768]);
        assert_eq!(model.forward_head(f, false).dims(), [1, 768]);
        let dp = ModelOptions::default().drop_path_rate(0.1);
        assert!(matches!(
            create_model("vit_b_16", dp, &device),
            Err(FinetuneError::InvalidOption { .. })
        ));
    }
}
