//! Dice loss, as segmentation_models_pytorch's `DiceLoss`.

use crate::overlap::{overlap_config, overlap_module};

overlap_config! {
    /// Configuration of a [`DiceLoss`]; the options and defaults of smp's `DiceLoss`.
    DiceLossConfig => DiceLoss, "dice", alpha 0.5, beta 0.5
}

overlap_module! {
    /// Dice loss for segmentation, equal to smp 0.6's `DiceLoss` in value and gradient.
    ///
    /// Per class `c`, over the batch and all pixels, with `P` the probabilities and `T` the
    /// 0/1 target (one-hot in multiclass mode), ignored pixels zeroed in both:
    ///
    /// ```text
    /// I = (ΣP + ΣT − Σ|P − T|) / 2
    /// dice_c = (I + smooth) / max(I + 0.5·(ΣP − I) + 0.5·(ΣT − I) + smooth, eps)
    /// loss_c = 1 − dice_c            (or −ln max(dice_c, eps) with log_loss)
    /// loss   = mean_c(loss_c · [ΣT > 0])   (weighted by class_weights, over `classes`)
    /// ```
    ///
    /// A class with no true pixel contributes zero, so an all-background mask gives a finite
    /// loss, as in smp.
    ///
    /// # Shapes
    /// - input: `[N, C, ...]` logits (or probabilities with `from_logits = false`)
    /// - target: see [`Mode`](crate::Mode); float masks or integer class indices
    /// - output: `[1]`
    ///
    /// Reference: <https://github.com/qubvel-org/segmentation_models.pytorch/blob/main/segmentation_models_pytorch/losses/dice.py>
    ///
    /// ```
    /// use burn::tensor::{Device, Int, Tensor};
    /// use kindling_losses::{DiceLossConfig, Mode};
    ///
    /// let device = Device::default();
    /// let dice = DiceLossConfig::new(Mode::Multiclass).init(&device);
    /// // Uniform logits over 3 classes: every probability is 1/3.
    /// let logits = Tensor::<4>::zeros([1, 3, 2, 2], &device);
    /// let target = Tensor::<3, Int>::from_ints([[[0, 1], [2, 2]]], &device);
    /// let loss = dice.forward(logits, target).into_scalar::<f32>();
    /// // Per-class dice 2/7, 2/7 and 2/5.
    /// assert!((loss - 71.0 / 105.0).abs() < 1e-6);
    /// ```
    DiceLoss
}
