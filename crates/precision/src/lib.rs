//! Mixed precision for Burn: an autocast scope that Kindling's layers follow (f16/bf16
//! convolutions, linear layers and matmuls; f32 normalisation, softmax and losses; f32 master
//! parameters), [`MasterWeights`] (apex O2) for modules built from other layers, and loss
//! scaling with PyTorch's [`GradScaler`] semantics.
//!
//! The training loop of `torch.amp`:
//!
//! ```text
//! with autocast(dtype):            →  let loss = autocast(dtype, || model.forward(x) ...);
//!     loss = model(x)
//! scaler.scale(loss).backward()    →  let grads = GradientsParams::from_grads(scaler.scale(loss).backward(), &model);
//! scaler.unscale_(opt)             →  scaler.unscale(&model, &mut grads)?;   (optional: clip here)
//! scaler.step(opt)                 →  let (model, stepped) = scaler.step(model, grads, |m, g| opt.step(lr, m, g))?;
//! scaler.update()                  →  scaler.update()?;
//! ```

mod autocast;
mod error;
mod grad_scaler;
mod master_weights;

pub use autocast::{
    AutocastGuard, autocast, autocast_dtype, autocast_inputs, full, like, low, promote, to_dtype,
    without_autocast,
};
pub use error::PrecisionError;
pub use grad_scaler::{GradScaler, GradScalerConfig, GradScalerState};
pub use master_weights::MasterWeights;
