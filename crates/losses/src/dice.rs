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

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Int, Tensor};

    use crate::{DiceLossConfig, LossError, Mode};

    #[test]
    fn dice_ignores_ignore_index_pixels() {
        let device = Device::default();
        let dice = DiceLossConfig::new(Mode::Multiclass)
            .with_ignore_index(Some(-1))
            .init(&device);
        let target = Tensor::<3, Int>::from_ints([[[0, 1, -1], [2, -1, 1]]], &device);
        let a = Tensor::<4>::random([1, 3, 2, 3], burn::tensor::Distribution::Default, &device);
        // Change only the logits of the two ignored pixels.
        let b = a.clone().slice_assign(
            [0..1, 0..3, 0..1, 2..3],
            Tensor::full([1, 3, 1, 1], 9.0, &device),
        );
        let b = b.slice_assign(
            [0..1, 0..3, 1..2, 1..2],
            Tensor::full([1, 3, 1, 1], -9.0, &device),
        );
        let la = dice.forward(a, target.clone()).into_scalar::<f32>();
        let lb = dice.forward(b, target).into_scalar::<f32>();
        assert_eq!(la, lb);
    }

    #[test]
    fn an_all_background_mask_gives_zero_not_nan() {
        let device = Device::default().autodiff();
        let dice = DiceLossConfig::new(Mode::Binary).init(&device);
        let logits =
            Tensor::<4>::from_floats([[[[100.0, -100.0], [3.0, 0.0]]]], &device).require_grad();
        let loss = dice.forward(logits.clone(), Tensor::<4>::zeros([1, 1, 2, 2], &device));
        assert_eq!(loss.clone().into_scalar::<f32>(), 0.0);
        let grad = logits.grad(&loss.backward()).unwrap();
        assert!(grad.into_data().iter::<f32>().all(f32::is_finite));
    }

    #[test]
    fn invalid_options_are_named() {
        let device = Device::default();
        let err = DiceLossConfig::new(Mode::Binary)
            .with_smooth(-1.0)
            .try_init(&device)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dice: `smooth` = -1 is invalid: expected a value ≥ 0"
        );
        let err = DiceLossConfig::new(Mode::Binary)
            .with_classes(Some(vec![0]))
            .try_init(&device)
            .unwrap_err();
        assert!(
            matches!(
                err,
                LossError::Invalid {
                    field: "classes",
                    ..
                }
            ),
            "{err}"
        );
        let dice = DiceLossConfig::new(Mode::Multiclass)
            .with_classes(Some(vec![0, 4]))
            .init(&device);
        let err = dice
            .try_forward(
                Tensor::<4>::zeros([1, 3, 2, 2], &device),
                Tensor::<3, Int>::zeros([1, 2, 2], &device),
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("`classes` = 4 is invalid"),
            "{err}"
        );
    }
}
