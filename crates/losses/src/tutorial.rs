//! The four loss classes of the tutorial's "custom losses" section (the Kaggle "Loss Function
//! Library – Keras & PyTorch"), as named presets with its exact numbers: the logits go
//! through a sigmoid, the whole batch is flattened, `smooth = 1`, and the focal loss
//! modulates the *mean* BCE.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};

use crate::LossError;
use crate::fused::{Probabilities, overlap_sums};
use crate::loss::{LossTarget, check_range, check_shape, impl_loss, or_panic, upcast};

/// PyTorch's `F.binary_cross_entropy(p, t, reduction="none")` on probabilities, with its
/// exact gradient. Forward: `−(t·max(ln p, −100) + (1 − t)·max(ln(1 − p), −100))`. PyTorch's
/// backward is not the derivative of that: it is `(p − t) / max(p·(1 − p), 1e-12)`, and near
/// saturation the two differ by orders of magnitude. Burn has no hook for a custom backward on
/// `Tensor`, so the gradient is attached with a zero-valued term, `(p − p̄)·g̅`, whose
/// derivative is `g` (bars: detached).
pub(crate) fn binary_cross_entropy<const D: usize>(p: Tensor<D>, t: Tensor<D>) -> Tensor<D> {
    let pd = p.clone().detach();
    let value = (t.clone() * pd.clone().log().clamp_min(-100.0)
        + t.clone().neg().add_scalar(1.0) * pd.clone().neg().log1p().clamp_min(-100.0))
    .neg();
    let grad = (pd.clone() - t) / (pd.clone().neg().add_scalar(1.0) * pd.clone()).clamp_min(1e-12);
    value + (p - pd) * grad
}

/// Sums over the whole flattened batch, `p = σ(x)`: `Σp`, `Σt`, `Σp·t` and, when asked for,
/// `Σ bce(p, t)`; with the number of elements.
struct FlatSums {
    p: Tensor<1>,
    t: Tensor<1>,
    pt: Tensor<1>,
    bce: Option<Tensor<1>>,
    count: usize,
}

impl FlatSums {
    fn new<const D: usize, const T: usize>(
        loss: &'static str,
        input: Tensor<D>,
        target: impl LossTarget<T>,
        bce: bool,
    ) -> Result<Self, LossError> {
        let input = upcast(input);
        let target = target.into_float(input.dtype());
        check_shape(loss, "target shape", &input.dims(), &target.dims())?;
        let count = input.shape().num_elements();
        let x = input.reshape([1, 1, count]);
        let t = target.reshape([1, 1, count]);
        if let Some(sums) = overlap_sums(&x, &t, Probabilities::Sigmoid, false, None, bce) {
            return Ok(Self {
                p: sums.p,
                t: sums.t,
                pt: sums.product,
                bce: bce.then_some(sums.bce),
                count,
            });
        }
        let (p, t) = (sigmoid(x).flatten::<1>(0, 2), t.flatten::<1>(0, 2));
        Ok(Self {
            pt: (p.clone() * t.clone()).sum(),
            bce: bce.then(|| binary_cross_entropy(p.clone(), t.clone()).sum()),
            p: p.sum(),
            t: t.sum(),
            count,
        })
    }

    /// The mean BCE (the sums were made with `bce`).
    fn mean_bce(&self) -> Tensor<1> {
        self.bce
            .clone()
            .expect("sums made with the BCE row")
            .div_scalar(self.count as f64)
    }
}

macro_rules! tutorial_overlap {
    ($(#[$doc:meta])* $config:ident => $loss:ident, $name:literal, bce $bce:literal, $formula:expr) => {
        #[doc = concat!("Configuration of a [`", stringify!($loss), "`].")]
        #[derive(Config, Debug)]
        pub struct $config {
            /// Added to numerator and denominator (the tutorial's `smooth=1`).
            #[config(default = 1.0)]
            pub smooth: f64,
        }

        impl $config {
            #[doc = concat!("Initializes a [`", stringify!($loss), "`]; panics on an invalid option.")]
            pub fn init(&self, device: &Device) -> $loss {
                or_panic(self.try_init(device))
            }

            #[doc = concat!("Initializes a [`", stringify!($loss), "`], or names the invalid option.")]
            pub fn try_init(&self, _device: &Device) -> Result<$loss, LossError> {
                self.check()?;
                Ok($loss { smooth: self.smooth })
            }

            /// Checks every option without touching a device.
            pub fn check(&self) -> Result<(), LossError> {
                check_range($name, "smooth", self.smooth, 0.0, f64::INFINITY)
            }
        }

        $(#[$doc])*
        #[derive(Module, Debug)]
        pub struct $loss {
            smooth: f64,
        }

        impl $loss {

            /// The loss, or why the inputs do not fit it.
            pub fn try_forward<const D: usize, const T: usize>(
                &self,
                input: Tensor<D>,
                target: impl LossTarget<T>,
            ) -> Result<Tensor<1>, LossError> {
                let sums = FlatSums::new($name, input, target, $bce)?;
                let formula: fn(&FlatSums, f64) -> Tensor<1> = $formula;
                Ok(formula(&sums, self.smooth))
            }
        }

        impl_loss!($loss);
    };
}

/// `1 − (2·Σpt + s) / (Σp + Σt + s)`.
fn dice(sums: &FlatSums, smooth: f64) -> Tensor<1> {
    (sums.pt.clone().mul_scalar(2.0).add_scalar(smooth)
        / (sums.p.clone() + sums.t.clone()).add_scalar(smooth))
    .neg()
    .add_scalar(1.0)
}

tutorial_overlap! {
    /// The tutorial's `DiceLoss`: `1 − (2·Σpt + smooth) / (Σp + Σt + smooth)` over the whole
    /// flattened batch, `p = σ(x)`.
    ///
    /// ```
    /// use burn::tensor::{Device, Tensor};
    /// use kindling_losses::TutorialDiceLossConfig;
    ///
    /// let device = Device::default();
    /// let loss = TutorialDiceLossConfig::new().init(&device);
    /// let logits = Tensor::<4>::zeros([1, 1, 2, 2], &device);
    /// let mask = Tensor::<4>::from_floats([[[[1.0, 0.0], [1.0, 0.0]]]], &device);
    /// // p = 0.5 everywhere: 1 − (2·1 + 1) / (2 + 2 + 1).
    /// assert!((loss.forward(logits, mask).into_scalar::<f32>() - 0.4).abs() < 1e-6);
    /// ```
    TutorialDiceLossConfig => TutorialDiceLoss, "tutorial_dice", bce false, dice
}

tutorial_overlap! {
    /// The tutorial's `DiceBCELoss`: `F.binary_cross_entropy(σ(x), t)` (mean) plus its
    /// [`TutorialDiceLoss`], on the flattened batch.
    TutorialDiceBceLossConfig => TutorialDiceBceLoss, "tutorial_dice_bce", bce true,
        |sums, smooth| sums.mean_bce() + dice(sums, smooth)
}

tutorial_overlap! {
    /// The tutorial's `IoULoss`: `1 − (Σpt + smooth) / (Σ(p + t) − Σpt + smooth)`.
    TutorialIouLossConfig => TutorialIouLoss, "tutorial_iou", bce false, |sums, smooth| {
        let intersection = sums.pt.clone();
        let union = sums.p.clone() + sums.t.clone() - intersection.clone();
        (intersection.add_scalar(smooth) / union.add_scalar(smooth)).neg().add_scalar(1.0)
    }
}

/// Configuration of a [`TutorialFocalLoss`]; the tutorial's `ALPHA = 0.8`, `GAMMA = 2`.
#[derive(Config, Debug)]
pub struct TutorialFocalLossConfig {
    /// Scale of the loss.
    #[config(default = 0.8)]
    pub alpha: f64,
    /// Focusing exponent.
    #[config(default = 2.0)]
    pub gamma: f64,
}

impl TutorialFocalLossConfig {
    /// Checks every option without touching a device.
    pub fn check(&self) -> Result<(), LossError> {
        check_range("tutorial_focal", "alpha", self.alpha, 0.0, f64::INFINITY)?;
        check_range("tutorial_focal", "gamma", self.gamma, 0.0, f64::INFINITY)
    }

    /// Initializes a [`TutorialFocalLoss`]; panics on an invalid option.
    pub fn init(&self, device: &Device) -> TutorialFocalLoss {
        or_panic(self.try_init(device))
    }

    /// Initializes a [`TutorialFocalLoss`], or names the invalid option.
    pub fn try_init(&self, _device: &Device) -> Result<TutorialFocalLoss, LossError> {
        self.check()?;
        Ok(TutorialFocalLoss {
            alpha: self.alpha,
            gamma: self.gamma,
        })
    }
}

/// The tutorial's `FocalLoss`: the focal term applied to the *mean* BCE of the flattened
/// batch, `α·(1 − e^{−BCE})^γ·BCE` — not the per-element focal loss of
/// [`FocalLoss`](crate::FocalLoss); kept so a reader of the tutorial gets its numbers.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use kindling_losses::TutorialFocalLossConfig;
///
/// let device = Device::default();
/// let loss = TutorialFocalLossConfig::new().init(&device);
/// let logits = Tensor::<2>::from_floats([[2.0, -1.0, 0.5]], &device);
/// let mask = Tensor::<2>::from_floats([[1.0, 0.0, 0.0]], &device);
/// assert!(loss.forward(logits, mask).into_scalar::<f32>() > 0.0);
/// ```
#[derive(Module, Debug)]
pub struct TutorialFocalLoss {
    alpha: f64,
    gamma: f64,
}

impl TutorialFocalLoss {
    /// The loss, or why the inputs do not fit it.
    pub fn try_forward<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        let bce = FlatSums::new("tutorial_focal", input, target, true)?.mean_bce();
        let term = bce
            .clone()
            .neg()
            .exp()
            .neg()
            .add_scalar(1.0)
            .powf_scalar(self.gamma);
        Ok(term.mul_scalar(self.alpha) * bce)
    }
}

impl_loss!(TutorialFocalLoss);
