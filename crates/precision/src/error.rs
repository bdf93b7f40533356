//! The precision crate's error type.

/// Misuse of the scaler, or a run whose loss scale collapsed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PrecisionError {
    /// A configuration value PyTorch refuses too.
    #[error("invalid GradScaler configuration: {0}")]
    InvalidConfig(String),
    /// `unscale` twice in one step (PyTorch raises the same).
    #[error("unscale() has already been called since the last update()")]
    AlreadyUnscaled,
    /// `update` without a `step` (or `unscale`) since the previous one.
    #[error("update() needs step() (or unscale()) first: no inf check was recorded")]
    NoInfCheck,
    /// The scale fell below the floor or too many steps in a row were skipped: gradients are
    /// inf/NaN even unscaled, so training would go on without ever updating.
    #[error(
        "loss scale collapsed: {consecutive_skips} consecutive skipped steps, scale {scale:e} \
         (limits: {max_consecutive_skips} skips, scale ≥ {min_scale:e}); the gradients are not \
         finite even unscaled — lower the learning rate, check the data, or train in f32/bf16"
    )]
    ScaleCollapsed {
        /// Skipped steps in a row.
        consecutive_skips: u32,
        /// The scale now.
        scale: f32,
        /// The configured limit of skips in a row.
        max_consecutive_skips: u32,
        /// The configured floor.
        min_scale: f32,
    },
}
