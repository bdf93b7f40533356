//! The one error type of this crate: every variant names the problem and the offending value.

use std::path::PathBuf;

/// Why an augmenter, a pipeline or an image refused its input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AugmentError {
    /// A file that could not be read or decoded.
    #[error("cannot decode image {path}: {message}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
    /// A file that could not be written.
    #[error("cannot write image {path}: {message}")]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's message.
        message: String,
    },
    /// An image with no pixels, or a pixel buffer of the wrong length.
    #[error("invalid image: {0}")]
    Image(String),
    /// A pixel type / channel count combination an operation does not support.
    #[error("{op}: unsupported {what}")]
    Unsupported {
        /// The augmenter.
        op: &'static str,
        /// What is unsupported, e.g. "2-channel images".
        what: String,
    },
    /// A target that does not fit its image (mask size, box corners, …).
    #[error("invalid target: {0}")]
    Target(String),
    /// An option outside its range (probability, range with a > b, …).
    #[error("{op}: `{field}` = {value} is invalid: {expected}")]
    Invalid {
        /// The augmenter.
        op: &'static str,
        /// The option.
        field: &'static str,
        /// The given value.
        value: String,
        /// What is valid.
        expected: String,
    },
    /// A pipeline file that could not be parsed.
    #[error("invalid pipeline: {0}")]
    Config(String),
    /// A record that does not match the pipeline it is replayed on.
    #[error("cannot replay: {0}")]
    Replay(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = AugmentError> = std::result::Result<T, E>;
