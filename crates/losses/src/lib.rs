//! # kindling-losses
//!
//! The losses segmentation and detection users reach for in PyTorch, for Burn: equal in value
//! and input gradient to PyTorch 2.9, segmentation_models_pytorch 0.6 and torchvision 0.24.
//! Every loss is a `#[derive(Config)]` configuration whose `init(&device)` gives a
//! `#[derive(Module)]` with `forward` (panics on bad input with a message naming expected and
//! actual values) and `try_forward` (returns a [`LossError`]). Half-precision inputs are
//! computed in f32.
//!
//! Training code takes any [`Loss`]: a loss module or a plain closure. [`LossConfig`] selects
//! a loss by name from a configuration file.
//!
//! | name | loss | reference |
//! |---|---|---|
//! | `dice` | [`DiceLoss`] | smp `DiceLoss` |
//! | `jaccard` | [`JaccardLoss`] | smp `JaccardLoss` |
//! | `tversky` | [`TverskyLoss`] (Focal-Tversky with `gamma`) | smp `TverskyLoss` |
//! | `focal` | [`FocalLoss`] | smp `FocalLoss` |
//! | `softmax_focal` | [`SoftmaxFocalLoss`] | smp `softmax_focal_loss_with_logits` |
//! | `sigmoid_focal` | [`SigmoidFocalLoss`] | torchvision `ops.sigmoid_focal_loss` |
//! | `lovasz` | [`LovaszLoss`] | smp `LovaszLoss` |
//! | `soft_bce` | [`SoftBceWithLogitsLoss`] | smp `SoftBCEWithLogitsLoss` |
//! | `bce_dice` | [`BceDiceLoss`] | smp BCE + Dice |
//! | `cross_entropy` | [`CrossEntropyLoss`] | `torch.nn.CrossEntropyLoss` |
//! | `tutorial_dice`, `tutorial_dice_bce`, `tutorial_iou`, `tutorial_focal` | [`TutorialDiceLoss`], … | the tutorial's classes |

mod bce_dice;
mod config;
mod cross_entropy;
mod dice;
mod error;
mod focal;
pub mod fused;
mod jaccard;
mod loss;
mod lovasz;
mod overlap;
mod segmentation;
mod sigmoid_focal;
mod soft_bce;
mod sum;
mod tutorial;
mod tversky;

pub use bce_dice::{BceDiceLoss, BceDiceLossConfig};
pub use config::{AnyLoss, LossConfig};
pub use cross_entropy::{CrossEntropyLoss, CrossEntropyLossConfig};
pub use dice::{DiceLoss, DiceLossConfig};
pub use error::LossError;
pub use focal::{FocalLoss, FocalLossConfig, SoftmaxFocalLoss, SoftmaxFocalLossConfig};
pub use jaccard::{JaccardLoss, JaccardLossConfig};
pub use loss::{Loss, LossTarget, Reduction};
pub use lovasz::{LovaszLoss, LovaszLossConfig};
pub use segmentation::Mode;
pub use sigmoid_focal::{SigmoidFocalLoss, SigmoidFocalLossConfig};
pub use soft_bce::{SoftBceWithLogitsLoss, SoftBceWithLogitsLossConfig};
pub use sum::{SumLoss, SumLossConfig, SumTerm};
pub use tutorial::{
    TutorialDiceBceLoss, TutorialDiceBceLossConfig, TutorialDiceLoss, TutorialDiceLossConfig,
    TutorialFocalLoss, TutorialFocalLossConfig, TutorialIouLoss, TutorialIouLossConfig,
};
pub use tversky::{TverskyLoss, TverskyLossConfig};
