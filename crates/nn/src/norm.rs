//! Normalisation layers: BatchNorm (PyTorch's running statistics), LayerNorm, LayerNorm2d.

use burn::config::Config;
use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::module::{batch_norm, batch_norm_train, layer_norm};
use burn::tensor::{DType, Device, Tensor};
use kindling_precision::{full, to_dtype};

/// Configuration of a [`BatchNorm`].
#[derive(Config, Debug)]
pub struct BatchNormConfig {
    /// Channels (dimension 1 of the input).
    pub num_features: usize,
    /// Added to the variance before the square root (torchvision's mobilenet_v3 and
    /// efficientnet use 1e-3).
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Weight of the new batch statistic in the running average (PyTorch's `momentum`).
    #[config(default = 0.1)]
    pub momentum: f64,
}

/// Batch normalisation over dimension 1, PyTorch's `BatchNorm1d/2d`.
///
/// The struct is named and laid out like `burn::nn::BatchNorm` (`gamma`, `beta`,
/// `running_mean`, `running_var`) so `burn-store`'s PyTorch adapter maps torchvision's
/// `weight`/`bias` onto it. The difference is the training update:
///
/// ```text
/// y            = (x - mean_B) / sqrt(var_B + eps) * gamma + beta      (var_B biased)
/// running_mean = (1 - m) * running_mean + m * mean_B
/// running_var  = (1 - m) * running_var  + m * var_B * n / (n - 1)     (unbiased, as PyTorch)
/// ```
/// with `n` the number of values per channel (batch × spatial). In eval mode (no autodiff
/// device, or a frozen layer) the running statistics normalise.
#[derive(Module, Debug)]
pub struct BatchNorm {
    /// Scale (PyTorch's `weight`).
    pub gamma: Param<Tensor<1>>,
    /// Shift (PyTorch's `bias`).
    pub beta: Param<Tensor<1>>,
    /// Off when the layer is frozen: it then normalises with its running statistics.
    pub training: Param<Flag>,
    /// Running mean.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance.
    pub running_var: RunningState<Tensor<1>>,
    /// Momentum of the running statistics.
    pub momentum: f64,
    /// Epsilon.
    pub epsilon: f64,
}

impl BatchNormConfig {
    /// Builds the layer: `gamma` 1, `beta` 0, running mean 0 and variance 1, as PyTorch.
    ///
    /// # Panics
    /// On zero features, a non-positive epsilon or a momentum outside [0, 1].
    pub fn init(&self, device: &Device) -> BatchNorm {
        assert!(
            self.num_features > 0,
            "BatchNorm needs at least one feature"
        );
        assert!(self.epsilon > 0.0, "BatchNorm epsilon must be positive");
        assert!(
            (0.0..=1.0).contains(&self.momentum),
            "BatchNorm momentum must be within [0, 1]"
        );
        let n = self.num_features;
        BatchNorm {
            gamma: Param::from_tensor(Tensor::ones([n], device)),
            beta: Param::from_tensor(Tensor::zeros([n], device)),
            training: Param::from_bool(true),
            running_mean: RunningState::new(Tensor::zeros([n], device)),
            running_var: RunningState::new(Tensor::ones([n], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
        }
    }
}

impl BatchNorm {
    /// Normalises `input`; batch statistics in training, running statistics in eval.
    ///
    /// # Shapes
    /// - input and output `[batch, channels, ...]`
    ///
    /// An f16/bf16 input is normalised in f32 and the output returned in its dtype, as
    /// PyTorch's BatchNorm accumulates half-precision input in float: under autocast (f32
    /// parameters), in a whole-f16 model, and in a [`MasterWeights`] working copy (f16
    /// parameters and statistics), where a BatchNorm computing in f16 loses the variance. The
    /// running statistics keep their own dtype.
    ///
    /// [`MasterWeights`]: kindling_precision::MasterWeights
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let dtype = input.dtype();
        to_dtype(self.forward_wide(input), dtype)
    }

    /// The forward in the input's dtype widened to at least f32 (an f64 model stays f64). The
    /// fused Flex kernel takes an f16/bf16 input as it is (it widens it itself and keeps it low
    /// precision for the backward, as PyTorch's BatchNorm does); Burn's composition gets it
    /// widened.
    fn forward_wide<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let device = input.device();
        let wide = match input.dtype() {
            DType::F16 | DType::BF16 => DType::F32,
            dtype => dtype,
        };
        let (gamma, beta) = (
            to_dtype(self.gamma.val(), wide),
            to_dtype(self.beta.val(), wide),
        );
        let running = |state: &RunningState<Tensor<1>>, synced: bool| {
            let value = if synced {
                state.value_sync()
            } else {
                state.value()
            };
            to_dtype(value.to_device(&device), wide)
        };
        if !(device.is_autodiff() && self.training.is_enabled()) {
            return batch_norm(
                to_dtype(input, wide),
                gamma,
                beta,
                running(&self.running_mean, false),
                running(&self.running_var, false),
                self.epsilon,
            );
        }
        let dims = input.dims();
        let per_channel: usize = dims[0] * dims[2..].iter().product::<usize>();
        // The fused Flex kernel where it runs, Burn's composition everywhere else.
        let (output, batch_mean, batch_var) =
            match crate::fused::try_batch_norm_train(&input, &gamma, &beta, self.epsilon) {
                Some(result) => result,
                None => {
                    let r = batch_norm_train(to_dtype(input, wide), gamma, beta, self.epsilon);
                    (r.output, r.mean, r.variance)
                }
            };
        // PyTorch keeps the unbiased variance. With one value per channel there is none (PyTorch
        // raises); the update then uses the biased one, 0, rather than dividing by zero.
        let bessel = if per_channel > 1 {
            per_channel as f64 / (per_channel - 1) as f64
        } else {
            1.0
        };
        let m = self.momentum;
        let update = |state: &RunningState<Tensor<1>>, batch: Tensor<1>, scale: f64| {
            let stored = state.value().dtype();
            let value = running(state, true)
                .mul_scalar(1.0 - m)
                .add(to_dtype(batch.detach(), wide).mul_scalar(m * scale));
            state.update(to_dtype(value, stored).detach());
        };
        update(&self.running_mean, batch_mean, 1.0);
        update(&self.running_var, batch_var, bessel);
        output
    }
}

/// Configuration of a [`LayerNorm`] or a [`LayerNorm2d`].
#[derive(Config, Debug)]
pub struct LayerNormConfig {
    /// Size of the normalised dimension (last for `LayerNorm`, channels for `LayerNorm2d`).
    pub d_model: usize,
    /// Epsilon (torchvision's ViT and ConvNeXt use 1e-6).
    #[config(default = 1e-5)]
    pub epsilon: f64,
}

/// Layer normalisation over the last dimension, PyTorch's `LayerNorm(d)`; named and laid out
/// like Burn's (`gamma`, `beta`) so the PyTorch adapter maps `weight`/`bias` onto it.
///
/// ```text
/// y = (x - mean(x)) / sqrt(var(x) + eps) * gamma + beta     (biased var, last axis)
/// ```
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// Scale.
    pub gamma: Param<Tensor<1>>,
    /// Shift.
    pub beta: Param<Tensor<1>>,
    /// Epsilon.
    pub epsilon: f64,
}

/// ConvNeXt's channels-first layer norm (torchvision `LayerNorm2d`): normalises over the
/// channels of each pixel of a `[batch, channels, h, w]` input. Named `weight`/`bias` like
/// torchvision's, which it is not Burn's layer for.
#[derive(Module, Debug)]
pub struct LayerNorm2d {
    /// Scale.
    pub weight: Param<Tensor<1>>,
    /// Shift.
    pub bias: Param<Tensor<1>>,
    /// Epsilon.
    pub epsilon: f64,
}

impl LayerNormConfig {
    /// Builds a last-dimension [`LayerNorm`] (scale 1, shift 0).
    pub fn init(&self, device: &Device) -> LayerNorm {
        LayerNorm {
            gamma: Param::from_tensor(Tensor::ones([self.d_model], device)),
            beta: Param::from_tensor(Tensor::zeros([self.d_model], device)),
            epsilon: self.epsilon,
        }
    }

    /// Builds a channels-first [`LayerNorm2d`] (scale 1, shift 0).
    pub fn init_2d(&self, device: &Device) -> LayerNorm2d {
        LayerNorm2d {
            weight: Param::from_tensor(Tensor::ones([self.d_model], device)),
            bias: Param::from_tensor(Tensor::zeros([self.d_model], device)),
            epsilon: self.epsilon,
        }
    }
}

impl LayerNorm {
    /// # Shapes
    /// - input and output `[..., d_model]`
    ///
    /// Under autocast it runs in f32 and returns f32 (PyTorch's autocast `layer_norm`).
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        layer_norm(
            full(input),
            self.gamma.val(),
            Some(self.beta.val()),
            self.epsilon,
        )
    }
}

impl LayerNorm2d {
    /// # Shapes
    /// - input and output `[batch, channels, h, w]`
    ///
    /// Under autocast it runs in f32 and returns f32, as [`LayerNorm`] does.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let x = full(input).permute([0, 2, 3, 1]);
        layer_norm(x, self.weight.val(), Some(self.bias.val()), self.epsilon).permute([0, 3, 1, 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn batchnorm_running_var_is_unbiased_like_pytorch() {
        // torch 2.9: bn = nn.BatchNorm2d(1); bn(torch.tensor([1., 2., 3., 6.]).view(2, 1, 2, 1))
        // → running_mean 0.3, running_var 0.9 * 1 + 0.1 * 14/3 = 1.3666667 (biased would be 1.25).
        let device = Device::flex().autodiff();
        let bn = BatchNormConfig::new(1).init(&device);
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1f32, 2., 3., 6.], [2, 1, 2, 1]),
            &device,
        );
        let _ = bn.forward(x);
        let mean: Vec<f32> = bn.running_mean.value_sync().to_data().try_to_vec().unwrap();
        let var: Vec<f32> = bn.running_var.value_sync().to_data().try_to_vec().unwrap();
        assert!((mean[0] - 0.3).abs() < 1e-6, "{mean:?}");
        assert!((var[0] - (0.9 + 0.1 * 14.0 / 3.0)).abs() < 1e-6, "{var:?}");
    }

    #[test]
    fn an_f16_batchnorm_normalises_in_f32() {
        // A master-weights working copy: parameters, statistics and input in f16. The input
        // is exact in f16 (256 + k/4), but its sum (2055) is not: computed in f16 the mean
        // would round to 257 and the variance be 0.34375, not 0.328125.
        let device = Device::flex().autodiff();
        let o2 = kindling_precision::MasterWeights::new(burn::tensor::FloatDType::F16);
        let bn = o2.working(&BatchNormConfig::new(1).init(&device));
        let values: Vec<f32> = (0..8).map(|k| 256.0 + k as f32 / 4.0).collect();
        let x = o2.input(Tensor::<4>::from_data(
            TensorData::new(values.clone(), [2, 1, 4, 1]),
            &device,
        ));
        let y = bn.forward(x);
        assert_eq!(y.dtype(), DType::F16);
        let y: Vec<f32> = y.into_data().convert::<f32>().try_to_vec().unwrap();
        let (mean, var) = (256.875f32, 0.328125f32);
        for (got, v) in y.iter().zip(&values) {
            let want = (v - mean) / (var + 1e-5).sqrt();
            assert!((got - want).abs() < 2e-3, "{y:?}");
        }
        // The running statistics stay f16, updated from the f32 statistics (exact in f16
        // here): 0.1 · 256.875 and 0.9 + 0.1 · 0.328125 · 8/7.
        let stat = |s: &RunningState<Tensor<1>>| {
            let t = s.value_sync();
            assert_eq!(t.dtype(), DType::F16);
            t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()[0]
        };
        assert_eq!(stat(&bn.running_mean), 25.6875);
        assert_eq!(stat(&bn.running_var), 0.9375);
    }

    /// A tiny variance: 2^-10 + k·2^-20 (k = 0..7) is exact in f16, its unbiased variance
    /// 6·2^-40 ≈ 5.5e-12 is exact in f32 and 0 in f16 (below its smallest subnormal, 6e-8).
    fn tiny_variance_step(o2: kindling_precision::MasterWeights) -> (Block, f32) {
        let device = Device::flex().autodiff();
        let master = Block {
            linear: burn::nn::LinearConfig::new(1, 1).init(&device),
            bn: BatchNormConfig::new(1).with_momentum(1.0).init(&device),
        };
        let working = o2.working(&master);
        let values: Vec<f32> = (0..8)
            .map(|k| (1024.0 + k as f32) / (1 << 20) as f32)
            .collect();
        let x = o2.input(Tensor::<4>::from_data(
            TensorData::new(values, [2, 1, 4, 1]),
            &device,
        ));
        let y = working.bn.forward(x);
        assert_eq!(y.dtype(), DType::F16);
        let grads = y.cast(burn::tensor::FloatDType::F32).sum().backward();
        let gamma = master.bn.gamma.grad(&grads).expect("gamma has a gradient");
        assert_eq!(gamma.dtype(), DType::F32);
        let master = o2.restore(master);
        let var = master.bn.running_var.value_sync();
        assert_eq!(var.dtype(), DType::F32);
        (master, var.into_data().try_to_vec::<f32>().unwrap()[0])
    }

    #[derive(Module, Debug)]
    struct Block {
        linear: burn::nn::Linear,
        bn: BatchNorm,
    }

    #[test]
    fn a_master_weights_copy_keeps_batchnorm_in_f32_when_asked() {
        use burn::tensor::FloatDType;
        use kindling_precision::MasterWeights;
        let exact = 6.0 / (1u64 << 40) as f32;
        // Cast with the rest (the default, for Burn's BatchNorm): the statistic underflows.
        let (_, cast) = tiny_variance_step(MasterWeights::new(FloatDType::F16));
        assert_eq!(cast, 0.0);
        // apex's keep_batchnorm_fp32: parameters and statistics stay f32 in the copy.
        let o2 = MasterWeights::new(FloatDType::F16).keep_batchnorm_f32(true);
        let (master, kept) = tiny_variance_step(o2);
        assert!(
            (kept - exact).abs() <= 1e-6 * exact,
            "{kept:e} vs {exact:e}"
        );
        let working = o2.working(&master);
        assert_eq!(working.bn.gamma.val().dtype(), DType::F32);
        assert_eq!(working.bn.running_mean.value_sync().dtype(), DType::F32);
        assert_eq!(working.linear.weight.val().dtype(), DType::F16);
    }

    #[test]
    fn batchnorm_eval_uses_running_statistics() {
        let device = Device::flex();
        let bn = BatchNormConfig::new(1).init(&device);
        let x = Tensor::<4>::from_data(TensorData::new(vec![1f32, 2.], [1, 1, 2, 1]), &device);
        let y: Vec<f32> = bn.forward(x).to_data().try_to_vec().unwrap();
        let s = (1.0f32 + 1e-5).sqrt();
        assert!((y[0] - 1.0 / s).abs() < 1e-6 && (y[1] - 2.0 / s).abs() < 1e-6);
    }

    #[test]
    fn layernorm2d_normalises_each_pixel_over_channels() {
        let device = Device::flex();
        let ln = LayerNormConfig::new(2).init_2d(&device);
        let x = Tensor::<4>::from_data(
            TensorData::new(vec![1f32, 5., 3., 9.], [1, 2, 1, 2]),
            &device,
        );
        let y: Vec<f32> = ln.forward(x).to_data().try_to_vec().unwrap();
        // pixel 0 has channels (1, 3), pixel 1 (5, 9): each becomes (-1, 1).
        for (got, want) in y.iter().zip([-1.0f32, -1.0, 1.0, 1.0]) {
            assert!((got - want).abs() < 1e-4, "{y:?}");
        }
    }
}
