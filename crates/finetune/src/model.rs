//! What every zoo model is: the [`Architecture`] trait, the [`ZooModel`] enum the registry
//! builds, the options a builder takes, and the classifier-head pieces families share.

use std::str::FromStr;

use burn::module::Module;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Device, Tensor};
use kindling_nn::{Linear, LinearConfig};

use crate::FinetuneError;

/// The output of [`ZooModel::forward_features`]: a CNN's last feature map, or a transformer's
/// tokens (class token first).
#[derive(Debug, Clone)]
pub enum Features {
    /// `[batch, channels, h, w]`.
    Map(Tensor<4>),
    /// `[batch, tokens, dim]`.
    Tokens(Tensor<3>),
}

impl Features {
    /// The feature map of a CNN.
    ///
    /// # Panics
    /// On tokens: a head was given the features of another (transformer) model.
    pub fn into_map(self) -> Tensor<4> {
        match self {
            Self::Map(x) => x,
            Self::Tokens(_) => panic!("a CNN head was given transformer tokens"),
        }
    }

    /// The tokens of a transformer.
    ///
    /// # Panics
    /// On a feature map: a head was given the features of another (CNN) model.
    pub fn into_tokens(self) -> Tensor<3> {
        match self {
            Self::Tokens(x) => x,
            Self::Map(_) => panic!("a transformer head was given a CNN feature map"),
        }
    }
}

/// timm's `global_pool` options for the models that pool before their classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GlobalPool {
    /// Mean over h × w (every architecture's default).
    #[default]
    Avg,
    /// Max over h × w.
    Max,
    /// `(avg + max) / 2`.
    AvgMax,
    /// `[avg, max]` concatenated: the classifier sees twice the features.
    CatAvgMax,
}

impl GlobalPool {
    /// Feature multiplier of the pooled vector.
    pub fn multiplier(self) -> usize {
        if self == Self::CatAvgMax { 2 } else { 1 }
    }

    /// Pools `[batch, c, h, w]` to `[batch, c × multiplier]`.
    pub fn forward(self, x: Tensor<4>) -> Tensor<2> {
        let avg = || adaptive_avg_pool2d(x.clone(), [1, 1]).flatten::<2>(1, 3);
        let max = || x.clone().flatten::<3>(2, 3).max_dim(2).flatten::<2>(1, 2);
        match self {
            Self::Avg => avg(),
            Self::Max => max(),
            Self::AvgMax => (avg() + max()).mul_scalar(0.5),
            Self::CatAvgMax => Tensor::cat(vec![avg(), max()], 1),
        }
    }
}

impl FromStr for GlobalPool {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "avg" | "" => Ok(Self::Avg),
            "max" => Ok(Self::Max),
            "avgmax" => Ok(Self::AvgMax),
            "catavgmax" => Ok(Self::CatAvgMax),
            other => Err(format!(
                "unknown global_pool '{other}' (expected avg, max, avgmax or catavgmax)"
            )),
        }
    }
}

/// What a builder gets: the resolved options of [`crate::ModelOptions`].
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Classifier outputs; 0 builds the model without a classifier (pooled features out).
    pub num_classes: usize,
    /// Input channels (≥ 1).
    pub in_chans: usize,
    /// Dropout before the classifier; `None` keeps the architecture's default.
    pub drop_rate: Option<f64>,
    /// Stochastic-depth rate; `None` keeps the architecture's default.
    pub drop_path_rate: Option<f64>,
    /// Pooling before the classifier.
    pub global_pool: GlobalPool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            num_classes: 1000,
            in_chans: 3,
            drop_rate: None,
            drop_path_rate: None,
            global_pool: GlobalPool::Avg,
        }
    }
}

impl BuildOptions {
    /// Refuses a stochastic-depth rate for an architecture that has no residual branch to drop.
    pub fn no_drop_path(&self, model: &str) -> Result<(), FinetuneError> {
        match self.drop_path_rate {
            Some(r) if r > 0.0 => Err(FinetuneError::InvalidOption {
                model: model.into(),
                message: format!("drop_path_rate {r}: the architecture has no stochastic depth"),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses a global pool other than average for an architecture whose head does not pool
    /// globally (VGG, SqueezeNet, ViT).
    pub fn avg_pool_only(&self, model: &str) -> Result<(), FinetuneError> {
        if self.global_pool != GlobalPool::Avg {
            return Err(FinetuneError::InvalidOption {
                model: model.into(),
                message: format!(
                    "global_pool {:?}: the architecture's head does not pool globally",
                    self.global_pool
                ),
            });
        }
        Ok(())
    }

    /// The dropout rate: the option, else the architecture's default.
    pub fn drop_rate_or(&self, default: f64) -> f64 {
        self.drop_rate.unwrap_or(default)
    }

    /// The stochastic-depth rate: the option, else the architecture's default.
    pub fn drop_path_rate_or(&self, default: f64) -> f64 {
        self.drop_path_rate.unwrap_or(default)
    }
}

/// A new classifier, or none when `num_classes` is 0 (timm's identity head).
pub fn classifier(features: usize, num_classes: usize, device: &Device) -> Option<Linear> {
    (num_classes > 0).then(|| LinearConfig::new(features, num_classes).init(device))
}

/// The head most torchvision CNNs share (ResNet, DenseNet, ShuffleNet, RegNet): global pool,
/// dropout, then the optional classifier unless `pre_logits`.
pub fn pooled_head(
    features: Features,
    pool: GlobalPool,
    dropout: &burn::nn::Dropout,
    fc: &Option<Linear>,
    pre_logits: bool,
) -> Tensor<2> {
    let x = dropout.forward(pool.forward(features.into_map()));
    apply_classifier(fc, x, pre_logits)
}

/// Outputs of an optional classifier (0 for an identity head).
pub fn classifier_outputs(fc: &Option<Linear>) -> usize {
    fc.as_ref().map_or(0, |fc| fc.d_output())
}

/// Applies an optional classifier: logits, or the features themselves for an identity head.
pub fn apply_classifier(fc: &Option<Linear>, x: Tensor<2>, pre_logits: bool) -> Tensor<2> {
    match fc {
        Some(fc) if !pre_logits => fc.forward(x),
        _ => x,
    }
}

/// The interface every zoo family implements; [`ZooModel`] delegates to it.
pub trait Architecture {
    /// The builder name (`resnet18`).
    fn arch(&self) -> &'static str;
    /// Backbone output, before pooling.
    fn forward_features(&self, x: Tensor<4>) -> Features;
    /// Pooling (and pre-logit layers), then the classifier unless `pre_logits`.
    fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2>;
    /// Width of the vector the classifier sees.
    fn num_features(&self) -> usize;
    /// Classifier outputs (0 for an identity head).
    fn num_classes(&self) -> usize;
    /// Replaces the classifier by a freshly initialised one (`0`: identity, features out).
    fn reset_classifier(&mut self, num_classes: usize, device: &Device);
}

macro_rules! zoo_models {
    ($($(#[$doc:meta])* $variant:ident($ty:ty)),* $(,)?) => {
        /// Any model of the zoo, as built by [`crate::create_model`]: one variant per family.
        ///
        /// Its module paths are torchvision's `state_dict` keys (the variant is not a path
        /// segment), so `burn-store` maps a torchvision file onto it.
        // A model is built once and moved a few times per step; Burn has no `Module` for `Box`,
        // so the variants stay inline.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum ZooModel {
            $($(#[$doc])* $variant($ty)),*
        }

        impl ZooModel {
            fn inner(&self) -> &dyn Architecture {
                match self { $(Self::$variant(m) => m),* }
            }

            fn inner_mut(&mut self) -> &mut dyn Architecture {
                match self { $(Self::$variant(m) => m),* }
            }
        }
    };
}

zoo_models! {
    /// ResNet, ResNeXt, Wide ResNet.
    ResNet(crate::models::resnet::ResNet),
    /// MobileNetV2, MobileNetV3.
    MobileNet(crate::models::mobilenet::MobileNet),
    /// EfficientNet B0–B3.
    EfficientNet(crate::models::efficientnet::EfficientNet),
    /// RegNetY.
    RegNet(crate::models::regnet::RegNet),
    /// ConvNeXt.
    ConvNeXt(crate::models::convnext::ConvNeXt),
    /// Vision Transformer.
    VisionTransformer(crate::models::vit::VisionTransformer),
    /// VGG.
    Vgg(crate::models::vgg::Vgg),
    /// SqueezeNet.
    SqueezeNet(crate::models::squeezenet::SqueezeNet),
    /// DenseNet.
    DenseNet(crate::models::densenet::DenseNet),
    /// ShuffleNet V2.
    ShuffleNetV2(crate::models::shufflenet::ShuffleNetV2),
}

impl ZooModel {
    /// The builder name (`resnet18`).
    pub fn arch(&self) -> &'static str {
        self.inner().arch()
    }

    /// Logits `[batch, num_classes]` (pooled features when the head is the identity).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let f = self.forward_features(x);
        self.forward_head(f, false)
    }

    /// Backbone output, before pooling.
    pub fn forward_features(&self, x: Tensor<4>) -> Features {
        self.inner().forward_features(x)
    }

    /// Pooling, then the classifier unless `pre_logits`.
    pub fn forward_head(&self, features: Features, pre_logits: bool) -> Tensor<2> {
        self.inner().forward_head(features, pre_logits)
    }

    /// Width of the vector the classifier sees.
    pub fn num_features(&self) -> usize {
        self.inner().num_features()
    }

    /// Classifier outputs (0 for an identity head).
    pub fn num_classes(&self) -> usize {
        self.inner().num_classes()
    }

    /// Replaces the classifier by a freshly initialised one; `0` makes the head the identity
    /// so [`Self::forward`] returns pooled features.
    pub fn reset_classifier(&mut self, num_classes: usize, device: &Device) {
        self.inner_mut().reset_classifier(num_classes, device)
    }
}
