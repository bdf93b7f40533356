//! Mixed precision for Burn: loss scaling with PyTorch's [`GradScaler`] semantics.
//!
//! The training loop of `torch.amp`:
//!
//! ```text
//! loss = model(x)                  →  let loss = model.forward(x) ...;
//! scaler.scale(loss).backward()    →  let grads = GradientsParams::from_grads(scaler.scale(loss).backward(), &model);
//! scaler.unscale_(opt)             →  scaler.unscale(&model, &mut grads)?;   (optional: clip here)
//! scaler.step(opt)                 →  let (model, stepped) = scaler.step(model, grads, |m, g| opt.step(lr, m, g))?;
//! scaler.update()                  →  scaler.update()?;
//! ```

mod error;
mod grad_scaler;

pub use error::PrecisionError;
pub use grad_scaler::{GradScaler, GradScalerConfig, GradScalerState};
