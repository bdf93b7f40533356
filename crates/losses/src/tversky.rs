//! Tversky and Focal-Tversky loss, as segmentation_models_pytorch's `TverskyLoss`.

use crate::overlap::{overlap_config, overlap_module};

overlap_config! {
    /// Configuration of a [`TverskyLoss`]; the options and defaults of smp's `TverskyLoss`.
    /// With `gamma ≠ 1` it is the Focal-Tversky loss.
    TverskyLossConfig => TverskyLoss, "tversky", tversky
}

overlap_module! {
    /// Tversky loss, and Focal-Tversky with `gamma`, equal to smp 0.6's `TverskyLoss` in value
    /// and gradient.
    ///
    /// ```text
    /// tversky_c = (I + smooth) / max(I + α·FP + β·FN + smooth, eps)
    /// loss      = (mean_c((1 − tversky_c) · [ΣT > 0]))^γ
    /// ```
    ///
    /// with `FP = ΣP − I`, `FN = ΣT − I` as in [`DiceLoss`](crate::DiceLoss). α = β = 0.5 is
    /// Dice, α = β = 1 is Jaccard; α > β penalises false positives more.
    ///
    /// # Shapes
    /// - input: `[N, C, ...]` logits (or probabilities with `from_logits = false`)
    /// - target: see [`Mode`](crate::Mode)
    /// - output: `[1]`
    ///
    /// References: Salehi et al. 2017, <https://arxiv.org/abs/1706.05721>; Abraham & Khan
    /// 2019 (Focal-Tversky), <https://arxiv.org/abs/1810.07842>.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use kindling_losses::{Mode, TverskyLossConfig};
    ///
    /// let device = Device::default();
    /// let loss = TverskyLossConfig::new(Mode::Binary)
    ///     .with_alpha(0.3)
    ///     .with_beta(0.7)
    ///     .with_gamma(0.75)
    ///     .init(&device);
    /// let logits = Tensor::<4>::from_floats([[[[2.0, -1.0], [0.5, -3.0]]]], &device);
    /// let mask = Tensor::<4>::from_floats([[[[1.0, 0.0], [1.0, 1.0]]]], &device);
    /// assert!(loss.forward(logits, mask).into_scalar::<f32>() > 0.0);
    /// ```
    TverskyLoss
}
