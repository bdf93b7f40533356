//! BCE-Dice: a weighted sum of soft BCE with logits and Dice, the usual binary and multilabel
//! segmentation objective.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use crate::loss::{LossTarget, check_range, impl_loss, or_panic};
use crate::{
    DiceLoss, DiceLossConfig, LossError, Mode, Reduction, SoftBceWithLogitsLoss,
    SoftBceWithLogitsLossConfig,
};

/// Configuration of a [`BceDiceLoss`].
#[derive(Config, Debug)]
pub struct BceDiceLossConfig {
    /// binary or multilabel (BCE needs a 0/1 target per channel).
    pub mode: Mode,
    /// Weight of the BCE term.
    #[config(default = 1.0)]
    pub bce_weight: f64,
    /// Weight of the Dice term.
    #[config(default = 1.0)]
    pub dice_weight: f64,
    /// Dice smoothing.
    #[config(default = 0.0)]
    pub smooth: f64,
    /// Dice denominator bound.
    #[config(default = 1e-7)]
    pub eps: f64,
    /// `-ln(dice)` instead of `1 - dice`.
    #[config(default = false)]
    pub log_loss: bool,
    /// Target value whose pixels count in neither term (BCE still divides by every element,
    /// as smp's `SoftBCEWithLogitsLoss`).
    pub ignore_index: Option<i64>,
    /// BCE weight of positives, one per channel.
    pub pos_weight: Option<Vec<f64>>,
}

impl BceDiceLossConfig {
    /// Initializes a [`BceDiceLoss`]; panics on an invalid option.
    pub fn init(&self, device: &Device) -> BceDiceLoss {
        or_panic(self.try_init(device))
    }

    /// Initializes a [`BceDiceLoss`], or names the invalid option.
    pub fn try_init(&self, device: &Device) -> Result<BceDiceLoss, LossError> {
        self.check()?;
        Ok(BceDiceLoss {
            bce: self.bce().try_init(device)?,
            dice: self.dice().try_init(device)?,
            bce_weight: self.bce_weight,
            dice_weight: self.dice_weight,
        })
    }

    fn bce(&self) -> SoftBceWithLogitsLossConfig {
        SoftBceWithLogitsLossConfig::new()
            .with_ignore_index(self.ignore_index)
            .with_reduction(Reduction::Mean)
            .with_pos_weight(self.pos_weight.clone())
    }

    fn dice(&self) -> DiceLossConfig {
        DiceLossConfig::new(self.mode)
            .with_smooth(self.smooth)
            .with_eps(self.eps)
            .with_log_loss(self.log_loss)
            .with_ignore_index(self.ignore_index)
    }

    /// Checks every option without touching a device.
    pub fn check(&self) -> Result<(), LossError> {
        if self.mode == Mode::Multiclass {
            return Err(LossError::Invalid {
                loss: "bce_dice",
                field: "mode",
                value: "multiclass".into(),
                expected: "expected binary or multilabel (BCE needs a 0/1 target per channel)"
                    .into(),
            });
        }
        check_range(
            "bce_dice",
            "bce_weight",
            self.bce_weight,
            0.0,
            f64::INFINITY,
        )?;
        check_range(
            "bce_dice",
            "dice_weight",
            self.dice_weight,
            0.0,
            f64::INFINITY,
        )?;
        self.bce().check()?;
        self.dice().check()
    }
}

/// `bce_weight · SoftBCEWithLogits + dice_weight · Dice` on the same logits, equal to the
/// same sum of smp 0.6's `SoftBCEWithLogitsLoss` and `DiceLoss`.
///
/// # Shapes
/// - input: `[N, C, ...]` logits
/// - target: the input's shape (or `[N, ...]` in binary mode), 0/1
/// - output: `[1]`
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use kindling_losses::{BceDiceLossConfig, Mode};
///
/// let device = Device::default();
/// let loss = BceDiceLossConfig::new(Mode::Binary).with_dice_weight(0.5).init(&device);
/// let logits = Tensor::<4>::from_floats([[[[2.0, -1.0], [0.5, -3.0]]]], &device);
/// let mask = Tensor::<4>::from_floats([[[[1.0, 0.0], [1.0, 0.0]]]], &device);
/// assert!(loss.forward(logits, mask).into_scalar::<f32>() > 0.0);
/// ```
#[derive(Module, Debug)]
pub struct BceDiceLoss {
    bce: SoftBceWithLogitsLoss,
    dice: DiceLoss,
    bce_weight: f64,
    dice_weight: f64,
}

impl BceDiceLoss {
    /// The loss, or why the inputs do not fit it.
    pub fn try_forward<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        let dtype = crate::loss::compute_dtype(input.dtype());
        let target = target.into_float(dtype);
        // The Dice term checks the shapes (and accepts [N, ...] in binary mode); BCE then
        // sees the target in the input's shape.
        let dice = self.dice.try_forward(input.clone(), target.clone())?;
        let target: Tensor<D> = target.reshape(input.dims());
        let bce = self.bce.try_forward(input, target)?;
        Ok(bce.mul_scalar(self.bce_weight) + dice.mul_scalar(self.dice_weight))
    }
}

impl_loss!(BceDiceLoss);
