//! The one error type of this crate: every variant names the loss and the offending value.

/// Why a loss refused its configuration or its inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LossError {
    /// Input and target shapes that do not fit together.
    #[error("{loss}: {what}: expected {expected}, got {actual}")]
    Shape {
        /// The loss's name.
        loss: &'static str,
        /// Which tensor or dimension.
        what: String,
        /// What the loss needs.
        expected: String,
        /// What it was given.
        actual: String,
    },
    /// A class index outside `[0, C)` that is not the `ignore_index`.
    #[error(
        "{loss}: target class {value} is out of range for {classes} classes (valid: 0..{classes}{ignore})"
    )]
    TargetOutOfRange {
        /// The loss's name.
        loss: &'static str,
        /// The first offending value found.
        value: f64,
        /// Number of classes `C` of the input.
        classes: usize,
        /// `", or ignore_index N"` when one is set.
        ignore: String,
    },
    /// An option outside its range.
    #[error("{loss}: `{field}` = {value} is invalid: {expected}")]
    Invalid {
        /// The loss's name.
        loss: &'static str,
        /// The option, as named in the configuration.
        field: &'static str,
        /// The given value.
        value: String,
        /// What is valid.
        expected: String,
    },
    /// An unknown loss name in a configuration.
    #[error("unknown loss `{name}`{hint}; valid names: {valid}")]
    UnknownName {
        /// The given name.
        name: String,
        /// `", did you mean …"` when a close name exists.
        hint: String,
        /// Every valid name.
        valid: String,
    },
    /// An unknown option key in a configuration.
    #[error("loss `{loss}`: unknown option `{key}`{hint}; valid options: {valid}")]
    UnknownOption {
        /// The loss's name.
        loss: String,
        /// The given key.
        key: String,
        /// `", did you mean …"` when a close key exists.
        hint: String,
        /// Every valid key.
        valid: String,
    },
    /// A configuration value of the wrong type, or a missing required option.
    #[error("loss `{loss}`: {message}")]
    Config {
        /// The loss's name.
        loss: String,
        /// serde's description of the problem.
        message: String,
    },
    /// The loss is not defined for this kind of input (e.g. a segmentation loss asked to score
    /// class-index targets in binary mode).
    #[error("{loss}: {message}")]
    Unsupported {
        /// The loss's name.
        loss: &'static str,
        /// What is unsupported and what to use instead.
        message: String,
    },
}

/// `", did you mean `x`"` for the closest candidate, or nothing.
pub(crate) fn suggestion<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(", did you mean `{c}`"))
        .unwrap_or_default()
}
