//! The zoo's one error type.

use std::path::PathBuf;

use crate::weights::LoadReport;

/// Everything the zoo refuses, naming the offending name, value, file or key.
#[derive(Debug, thiserror::Error)]
pub enum FinetuneError {
    /// `create_model`/`pretrained_cfg` with a name the registry does not have.
    #[error("unknown model '{name}'{}", suggest(.suggestion))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The closest registered name.
        suggestion: Option<String>,
    },
    /// A `name.tag` whose tag the model does not have.
    #[error("model '{model}' has no pretrained tag '{tag}' (it has: {})", .available.join(", "))]
    UnknownTag {
        /// The architecture.
        model: String,
        /// The tag asked for.
        tag: String,
        /// The tags it has.
        available: Vec<String>,
    },
    /// A model option out of range or not supported by the architecture.
    #[error("{model}: {message}")]
    InvalidOption {
        /// The architecture.
        model: String,
        /// What is wrong and what is accepted.
        message: String,
    },
    /// The weights file cannot be read.
    #[error("cannot read weights file {}: {message}", .path.display())]
    ReadWeights {
        /// The file.
        path: PathBuf,
        /// The reader's reason.
        message: String,
    },
    /// The weights do not fit the model (strict loading).
    #[error("weights {} do not fit {model}:\n{report}", .source_name)]
    WeightsMismatch {
        /// The architecture.
        model: String,
        /// The file (or source) the weights came from.
        source_name: String,
        /// Missing, unexpected and mis-shaped keys (boxed: it is large).
        report: Box<LoadReport>,
    },
    /// Writing weights failed.
    #[error("cannot write weights file {}: {message}", .path.display())]
    WriteWeights {
        /// The file.
        path: PathBuf,
        /// The writer's reason.
        message: String,
    },
    /// `pretrained = true` and the file is not in the local cache.
    #[error(
        "pretrained weights for {model} are not in the local cache: expected {}\n  \
         download {url} and place it there (or build with the `download` feature), or pass a file with pretrained = \"path\"",
        .path.display()
    )]
    NotCached {
        /// `name.tag`.
        model: String,
        /// Where the file is looked for.
        path: PathBuf,
        /// Where it can be downloaded from.
        url: String,
    },
    /// Downloading a pretrained file failed (`download` feature).
    #[error("cannot download {url} to {}: {message}", .path.display())]
    Download {
        /// The hub id.
        url: String,
        /// The cache path.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// `pretrained = true` for a model without pretrained weights.
    #[error("model '{0}' has no pretrained weights")]
    NoPretrained(String),
    /// An image the eval transform cannot prepare.
    #[error("image: {0}")]
    Image(String),
    /// A freeze/unfreeze pattern that is not a valid pattern, or matches nothing.
    #[error("{0}")]
    Pattern(String),
}

fn suggest(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean '{s}'?)"))
        .unwrap_or_default()
}
