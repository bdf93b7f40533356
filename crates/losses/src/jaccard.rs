//! Jaccard (IoU) loss, as segmentation_models_pytorch's `JaccardLoss`.

use crate::overlap::{overlap_config, overlap_module};

overlap_config! {
    /// Configuration of a [`JaccardLoss`]; the options and defaults of smp's `JaccardLoss`.
    JaccardLossConfig => JaccardLoss, "jaccard", alpha 1.0, beta 1.0
}

overlap_module! {
    /// Jaccard (intersection over union) loss, equal to smp 0.6's `JaccardLoss` in value and
    /// gradient.
    ///
    /// As [`DiceLoss`](crate::DiceLoss) with false positives and negatives weighted 1:
    ///
    /// ```text
    /// iou_c  = (I + smooth) / max(I + (ΣP − I) + (ΣT − I) + smooth, eps)
    /// loss   = mean_c((1 − iou_c) · [ΣT > 0])
    /// ```
    ///
    /// # Shapes
    /// - input: `[N, C, ...]` logits (or probabilities with `from_logits = false`)
    /// - target: see [`Mode`](crate::Mode)
    /// - output: `[1]`
    ///
    /// Reference: <https://github.com/qubvel-org/segmentation_models.pytorch/blob/main/segmentation_models_pytorch/losses/jaccard.py>
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use kindling_losses::{JaccardLossConfig, Mode};
    ///
    /// let device = Device::default();
    /// let iou = JaccardLossConfig::new(Mode::Binary).with_from_logits(false).init(&device);
    /// let probs = Tensor::<2>::from_floats([[1.0, 1.0, 0.0, 0.0]], &device).reshape([1, 1, 4]);
    /// let mask = Tensor::<2>::from_floats([[1.0, 0.0, 0.0, 0.0]], &device).reshape([1, 1, 4]);
    /// // Intersection 1, union 2.
    /// assert!((iou.forward(probs, mask).into_scalar::<f32>() - 0.5).abs() < 1e-6);
    /// ```
    JaccardLoss
}
