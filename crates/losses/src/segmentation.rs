//! What segmentation_models_pytorch's losses share: the `mode`, and flattening `[N, C, ...]`
//! logits plus their target into `[N, C, S]` with the `ignore_index` mask applied.

use burn::tensor::{DType, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::LossError;
use crate::loss::{LossTarget, check_classes, check_rank, check_shape, mask_to, upcast};

/// How a segmentation loss reads its target, as smp's `mode`.
///
/// | mode | input | target |
/// |---|---|---|
/// | `binary` | `[N, 1, ...]` | `[N, 1, ...]` or `[N, ...]`, 0/1 |
/// | `multiclass` | `[N, C, ...]` | `[N, ...]`, class indices |
/// | `multilabel` | `[N, C, ...]` | `[N, C, ...]`, 0/1 per channel |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One foreground class against background (sigmoid).
    Binary,
    /// Mutually exclusive classes (softmax), class-index targets.
    Multiclass,
    /// Independent classes (sigmoid per channel).
    Multilabel,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Binary => "binary",
            Mode::Multiclass => "multiclass",
            Mode::Multilabel => "multilabel",
        })
    }
}

/// Input and target flattened to `[N, C, S]` (C = 1 in binary mode); the target is 0/1 per
/// class (one-hot in multiclass mode); both are zero where ignored.
pub(crate) struct Flat {
    pub input: Tensor<3>,
    pub target: Tensor<3>,
}

/// Checks the target's shape against `mode` and returns the target as floats in the input's
/// compute dtype (the input is upcast from f16/bf16 to f32).
pub(crate) fn checked<const D: usize, const T: usize>(
    loss: &'static str,
    mode: Mode,
    input: Tensor<D>,
    target: impl LossTarget<T>,
    ignore_index: Option<i64>,
) -> Result<(Tensor<D>, Tensor<T>), LossError> {
    let input = upcast(input);
    let target = target.into_float(input.dtype());
    let dims = input.dims();
    let tdims = target.dims();
    check_rank(loss, &dims, 2)?;
    match mode {
        Mode::Binary => {
            if dims[1] != 1 {
                return Err(LossError::Shape {
                    loss,
                    what: "binary-mode input channels (dim 1)".into(),
                    expected: "1".into(),
                    actual: format!(
                        "{} (input {dims:?}; use multiclass or multilabel mode)",
                        dims[1]
                    ),
                });
            }
            let squeezed: Vec<usize> = [&dims[..1], &dims[2..]].concat();
            if tdims.as_slice() != dims.as_slice() {
                check_shape(loss, "binary-mode target shape", &squeezed, &tdims).map_err(|e| {
                    match e {
                        LossError::Shape {
                            loss,
                            what,
                            expected,
                            actual,
                        } => LossError::Shape {
                            loss,
                            what,
                            expected: format!("{dims:?} or {expected}"),
                            actual,
                        },
                        other => other,
                    }
                })?;
            }
        }
        Mode::Multiclass => {
            let expected: Vec<usize> = [&dims[..1], &dims[2..]].concat();
            check_shape(
                loss,
                "multiclass-mode target shape (input shape without C)",
                &expected,
                &tdims,
            )?;
            check_classes(loss, &target, dims[1], ignore_index)?;
        }
        Mode::Multilabel => check_shape(loss, "multilabel-mode target shape", &dims, &tdims)?,
    }
    Ok((input, target))
}

/// `[N, C, ...]` as `[N, C, S]`.
pub(crate) fn to_ncs<const D: usize>(t: Tensor<D>, channels: usize) -> Tensor<3> {
    let n = t.dims()[0];
    t.reshape([n as i64, channels as i64, -1])
}

/// `C` one-hot planes of class-index targets `[N, 1, S]`: `[N, C, S]` of 0/1.
pub(crate) fn one_hot(ids: Tensor<3>, classes: usize) -> Tensor<3> {
    let [n, _, s] = ids.dims();
    let dtype = ids.dtype();
    let device = ids.device();
    let range = Tensor::<1, Int>::arange(0..classes as i64, &device).float();
    let range = crate::loss::cast_to(range, dtype)
        .reshape([1, classes, 1])
        .expand([n, classes, s]);
    mask_to(ids.expand([n, classes, s]).equal(range), dtype)
}

/// Flattens checked input and target to `[N, C, S]` the way smp's Dice/Jaccard/Tversky do,
/// with ignored pixels zeroed in both.
pub(crate) fn flatten<const D: usize, const T: usize>(
    mode: Mode,
    input: Tensor<D>,
    target: Tensor<T>,
    ignore_index: Option<i64>,
) -> Flat {
    let channels = input.dims()[1];
    let dtype: DType = input.dtype();
    match mode {
        Mode::Binary | Mode::Multilabel => {
            let input = to_ncs(input, channels);
            let target = target.reshape(input.dims());
            match ignore_index {
                None => Flat { input, target },
                Some(ignore) => {
                    let valid = mask_to(target.clone().not_equal_elem(ignore as f64), dtype);
                    Flat {
                        input: input * valid.clone(),
                        target: target * valid,
                    }
                }
            }
        }
        Mode::Multiclass => {
            let input = to_ncs(input, channels);
            let [n, _, s] = input.dims();
            let ids = target.reshape([n, 1, s]);
            let target = one_hot(ids.clone(), channels);
            match ignore_index {
                None => Flat { input, target },
                Some(ignore) => {
                    let valid = mask_to(ids.not_equal_elem(ignore as f64), dtype);
                    Flat {
                        input: input * valid.clone(),
                        target: target * valid,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Int, Tensor};

    use crate::{DiceLossConfig, LossError, Mode};

    fn logits(shape: [usize; 4]) -> Tensor<4> {
        Tensor::<4>::zeros(shape, &Device::default())
    }

    #[test]
    fn multiclass_target_out_of_range_names_the_value() {
        let dice = DiceLossConfig::new(Mode::Multiclass).init(&Device::default());
        let target = Tensor::<3, Int>::from_ints([[[0, 1], [5, 2]]], &Device::default());
        let err = dice.try_forward(logits([1, 3, 2, 2]), target).unwrap_err();
        assert!(
            matches!(err, LossError::TargetOutOfRange { value, classes: 3, .. } if value == 5.0),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("target class 5 is out of range for 3 classes"),
            "{err}"
        );
    }

    #[test]
    fn ignore_index_is_not_out_of_range() {
        let dice = DiceLossConfig::new(Mode::Multiclass)
            .with_ignore_index(Some(255))
            .init(&Device::default());
        let target = Tensor::<3, Int>::from_ints([[[0, 1], [255, 2]]], &Device::default());
        assert!(dice.try_forward(logits([1, 3, 2, 2]), target).is_ok());
        let target = Tensor::<3, Int>::from_ints([[[0, 1], [254, 2]]], &Device::default());
        let err = dice.try_forward(logits([1, 3, 2, 2]), target).unwrap_err();
        assert!(err.to_string().contains("or ignore_index 255"), "{err}");
    }

    #[test]
    fn mismatched_shapes_name_expected_and_actual() {
        let dice = DiceLossConfig::new(Mode::Multilabel).init(&Device::default());
        let err = dice
            .try_forward(
                logits([2, 3, 4, 4]),
                Tensor::<4>::zeros([2, 3, 4, 5], &Device::default()),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dice: multilabel-mode target shape: expected [2, 3, 4, 4], got [2, 3, 4, 5]"
        );
    }

    #[test]
    fn a_mode_that_does_not_fit_the_ranks_is_refused() {
        // Multiclass wants [N, H, W] class indices, not a [N, C, H, W] mask.
        let dice = DiceLossConfig::new(Mode::Multiclass).init(&Device::default());
        let err = dice
            .try_forward(
                logits([2, 3, 4, 4]),
                Tensor::<4>::zeros([2, 3, 4, 4], &Device::default()),
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected [2, 4, 4], got [2, 3, 4, 4]"),
            "{err}"
        );
        // Binary wants one channel.
        let dice = DiceLossConfig::new(Mode::Binary).init(&Device::default());
        let err = dice
            .try_forward(
                logits([2, 3, 4, 4]),
                Tensor::<4>::zeros([2, 3, 4, 4], &Device::default()),
            )
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("binary-mode input channels (dim 1): expected 1, got 3"),
            "{err}"
        );
    }

    #[test]
    #[should_panic(expected = "target class 7 is out of range")]
    fn forward_panics_with_the_same_message() {
        let dice = DiceLossConfig::new(Mode::Multiclass).init(&Device::default());
        let target = Tensor::<3, Int>::from_ints([[[0, 1], [7, 2]]], &Device::default());
        let _ = dice.forward(logits([1, 3, 2, 2]), target);
    }

    #[test]
    fn non_integer_class_targets_are_refused() {
        let dice = DiceLossConfig::new(Mode::Multiclass).init(&Device::default());
        let target = Tensor::<3>::from_floats([[[0.0, 1.5], [1.0, 2.0]]], &Device::default());
        assert!(dice.try_forward(logits([1, 3, 2, 2]), target).is_err());
    }
}
