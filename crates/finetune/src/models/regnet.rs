//! RegNetY-400MF (torchvision `regnet.py`): `stem` (3×3 `Conv2dNormActivation`),
//! `trunk_output.block<s>.block<s>-<i>` residual bottleneck blocks (`proj`, `f.a`, `f.b`,
//! `f.se`, `f.c`), global pooling, `fc`. No stochastic depth; `drop_rate` (default 0, as
//! torchvision has none) adds dropout before `fc`.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Initializer};
use burn::tensor::{Device, Tensor};
use kindling_nn::{Activation, Linear, SqueezeExcitation};

use super::named::Named;
use super::tv_blocks::{ConvNormAct, Layer, linear, make_divisible, seq, squeeze_excitation};
use crate::model::{
    Architecture, BuildOptions, Features, GlobalPool, ZooModel, classifier_outputs, pooled_head,
};
use crate::registry::Interpolation::Bilinear;
use crate::{FinetuneError, ModelEntry, Weights};

/// The family's builders, with torchvision's weights (`DEFAULT` first).
pub(crate) const MODELS: &[ModelEntry] = &[ModelEntry {
    name: "regnet_y_400mf",
    build: |o, d| {
        let params = RegNetParams {
            depth: 16,
            w_0: 48,
            w_a: 27.89,
            w_m: 2.09,
            group_width: 8,
            se_ratio: Some(0.25),
        };
        build("regnet_y_400mf", &params, o, d)
    },
    first_conv: "stem.0",
    classifier: "fc",
    weights: &[
        Weights::torchvision(
            "tv2_in1k",
            "https://download.pytorch.org/models/regnet_y_400mf-e6988f5f.pth",
            224,
            232,
            Bilinear,
        ),
        Weights::torchvision(
            "tv_in1k",
            "https://download.pytorch.org/models/regnet_y_400mf-c65dace8.pth",
            224,
            256,
            Bilinear,
        ),
    ],
    key_rules: &[],
}];

/// torchvision's `BottleneckTransform`: 1×1 `a`, grouped 3×3 `b`, optional `se`, 1×1 `c`.
#[derive(Module, Debug)]
pub struct BottleneckTransform {
    a: Vec<Layer>,
    b: Vec<Layer>,
    se: Option<SqueezeExcitation>,
    c: Vec<Layer>,
}

/// torchvision's `ResBottleneckBlock`: `relu(proj(x) + f(x))` (`x + f(x)` without `proj`).
#[derive(Module, Debug)]
pub struct ResBottleneckBlock {
    proj: Option<Vec<Layer>>,
    f: BottleneckTransform,
}

impl ResBottleneckBlock {
    fn new(
        width_in: usize,
        width_out: usize,
        stride: usize,
        group_width: usize,
        se_ratio: Option<f64>,
        device: &Device,
    ) -> Self {
        let proj = (width_in != width_out || stride != 1).then(|| {
            ConvNormAct::new(width_in, width_out, 1, device)
                .stride(stride)
                .act(None)
                .init()
        });
        // Bottleneck multiplier 1: w_b = width_out.
        let w_b = width_out;
        let se = se_ratio.map(|r| {
            let squeeze = (r * width_in as f64).round_ties_even() as usize;
            squeeze_excitation(w_b, squeeze, Activation::Relu, Activation::Sigmoid, device)
        });
        let f = BottleneckTransform {
            a: ConvNormAct::new(width_in, w_b, 1, device).init(),
            b: ConvNormAct::new(w_b, w_b, 3, device)
                .stride(stride)
                .groups(w_b / group_width)
                .init(),
            se,
            c: ConvNormAct::new(w_b, width_out, 1, device).act(None).init(),
        };
        Self { proj, f }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = seq(&self.f.b, seq(&self.f.a, x.clone()));
        if let Some(se) = &self.f.se {
            y = se.forward(y);
        }
        let y = seq(&self.f.c, y);
        let shortcut = match &self.proj {
            Some(p) => seq(p, x),
            None => x,
        };
        Activation::Relu.forward(shortcut + y)
    }
}

/// `BlockParams.from_init_params` arguments (bottleneck multiplier 1).
struct RegNetParams {
    depth: usize,
    w_0: usize,
    w_a: f64,
    w_m: f64,
    group_width: usize,
    se_ratio: Option<f64>,
}

impl RegNetParams {
    /// Stage widths, depths and group widths, as torchvision computes them (in float32, as its
    /// torch tensors): quantised linear widths, split where the width changes.
    fn stages(&self) -> Vec<(usize, usize, usize)> {
        let (w_0, w_a, w_m) = (self.w_0 as f32, self.w_a as f32, self.w_m as f32);
        let widths: Vec<usize> = (0..self.depth)
            .map(|i| {
                let cont = i as f32 * w_a + w_0;
                let capacity = ((cont / w_0).ln() / w_m.ln()).round_ties_even();
                ((w_0 * w_m.powf(capacity) / 8.0).round_ties_even() * 8.0) as usize
            })
            .collect();
        let mut stages: Vec<(usize, usize, usize)> = Vec::new();
        for w in widths {
            match stages.last_mut() {
                Some((last, depth, _)) if *last == w => *depth += 1,
                _ => stages.push((w, 1, 0)),
            }
        }
        // _adjust_widths_groups_compatibilty with bottleneck multiplier 1.
        for (w, _, g) in &mut stages {
            *g = self.group_width.min(*w);
            *w = make_divisible(*w as f64, *g);
        }
        stages
    }
}

/// torchvision's `RegNet`.
#[derive(Module, Debug)]
pub struct RegNet {
    stem: Vec<Layer>,
    trunk_output: Named<Named<ResBottleneckBlock>>,
    dropout: Dropout,
    fc: Option<Linear>,
    #[module(skip)]
    global_pool: GlobalPool,
    #[module(skip)]
    arch: &'static str,
    #[module(skip)]
    num_features: usize,
}

/// torchvision's `fc` init here: `normal_(0, 0.01)`, bias zero.
fn classifier(features: usize, num_classes: usize, device: &Device) -> Option<Linear> {
    let init = Initializer::Normal {
        mean: 0.0,
        std: 0.01,
    };
    (num_classes > 0).then(|| linear(features, num_classes, init, device))
}

fn build(
    arch: &'static str,
    params: &RegNetParams,
    o: &BuildOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    o.no_drop_path(arch)?;
    const STEM: usize = 32;
    let stem = ConvNormAct::new(o.in_chans, STEM, 3, device)
        .stride(2)
        .init();
    let mut width = STEM;
    let mut trunk = Vec::new();
    for (s, (width_out, depth, group_width)) in params.stages().into_iter().enumerate() {
        let stage = (0..depth)
            .map(|i| {
                let (w_in, stride) = if i == 0 { (width, 2) } else { (width_out, 1) };
                let block = ResBottleneckBlock::new(
                    w_in,
                    width_out,
                    stride,
                    group_width,
                    params.se_ratio,
                    device,
                );
                (format!("block{}-{i}", s + 1), block)
            })
            .collect();
        trunk.push((format!("block{}", s + 1), Named::new(stage)));
        width = width_out;
    }
    let num_features = width * o.global_pool.multiplier();
    Ok(ZooModel::RegNet(RegNet {
        stem,
        trunk_output: Named::new(trunk),
        dropout: DropoutConfig::new(o.drop_rate_or(0.0)).init(),
        fc: classifier(num_features, o.num_classes, device),
        global_pool: o.global_pool,
        arch,
        num_features,
    }))
}

impl Architecture for RegNet {
    fn arch(&self) -> &'static str {
        self.arch
    }

    fn forward_features(&self, x: Tensor<4>) -> Features {
        let x = self
            .trunk_output
            .modules()
            .flat_map(|stage| stage.modules())
            .fold(seq(&self.stem, x), |t, b| b.forward(t));
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

#[cfg(test)]
mod tests {
    use super::RegNetParams;

    #[test]
    fn regnet_y_400mf_stages_match_torchvision() {
        // torchvision 0.24 BlockParams.from_init_params(16, 48, 27.89, 2.09, 8, 0.25).
        let params = RegNetParams {
            depth: 16,
            w_0: 48,
            w_a: 27.89,
            w_m: 2.09,
            group_width: 8,
            se_ratio: Some(0.25),
        };
        let got = params.stages();
        assert_eq!(got, [(48, 1, 8), (104, 3, 8), (208, 6, 8), (440, 6, 8)]);
    }
}
