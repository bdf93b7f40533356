//! The facade's typed errors: each variant names the offending thing and what was expected.

use std::path::PathBuf;

use crate::device::Precision;

/// A device or dtype that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// The string names no known device.
    #[error("unknown device `{given}`; expected one of: {valid}")]
    UnknownDevice {
        /// What the user wrote.
        given: String,
        /// The accepted syntax.
        valid: &'static str,
    },
    /// The device exists but its backend was not compiled into this binary.
    #[error(
        "device `{device}` is not compiled into this build; rebuild with cargo feature \
         `{feature}` (`--features {feature}`, e.g. `cargo run -p xtask --features {feature} -- ...`)"
    )]
    NotCompiled {
        /// The device string.
        device: String,
        /// The cargo feature that compiles it in.
        feature: &'static str,
    },
    /// The string names no known float dtype.
    #[error("unknown dtype `{given}`; expected one of: f32, f16, bf16")]
    UnknownDtype {
        /// What the user wrote.
        given: String,
    },
    /// The device cannot compute in the requested dtype.
    #[error("device `{device}` does not support dtype {dtype}; use --dtype f32 or another device")]
    UnsupportedDtype {
        /// The device string.
        device: String,
        /// The refused dtype.
        dtype: Precision,
    },
    /// Burn refused to configure the device (e.g. tensors already exist on it).
    #[error("cannot configure device `{device}` for dtype {dtype}: {reason}")]
    Configure {
        /// The device string.
        device: String,
        /// The requested dtype.
        dtype: Precision,
        /// Burn's reason.
        reason: String,
    },
}

/// A run configuration that cannot be loaded or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file's extension is not one we parse.
    #[error("config file {path} has an unsupported extension; use .toml, .json, .yaml or .yml")]
    Format {
        /// The file.
        path: PathBuf,
    },
    /// The config file is not valid TOML/JSON/YAML.
    #[error("cannot parse config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// A key that the configuration does not have.
    #[error("unknown key `{key}` in {source_name}{}", suggestion_text(.suggestion))]
    UnknownKey {
        /// Dotted path of the unknown key, e.g. `optimizer.lrr`.
        key: String,
        /// The closest valid key, when one is close enough.
        suggestion: Option<String>,
        /// Where the key came from (a file path or "command line").
        source_name: String,
    },
    /// A value of the wrong type or an unknown variant.
    #[error("invalid value{} in {source_name}: {message}", for_key(key))]
    InvalidValue {
        /// Dotted path of the key.
        key: String,
        /// What was wrong.
        message: String,
        /// Where the value came from.
        source_name: String,
    },
    /// A value outside its valid range.
    #[error("`{field}` = {value} is out of range: {expected}")]
    OutOfRange {
        /// Dotted path of the field.
        field: &'static str,
        /// The given value.
        value: String,
        /// The valid range.
        expected: &'static str,
    },
    /// The `[scheduler]` table names an invalid policy argument.
    #[error("invalid [scheduler]: {0}")]
    Scheduler(kindling_schedulers::SchedulerConfigError),
    /// The `loss` table names an unknown loss, option, or an invalid value.
    #[error("invalid loss: {0}")]
    Loss(kindling_losses::LossError),
    /// A required value is missing.
    #[error("missing required value `{field}`: {hint}")]
    Missing {
        /// Dotted path of the field.
        field: &'static str,
        /// How to provide it.
        hint: &'static str,
    },
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

/// `" for `key`"`, or nothing where serde lost the path (inside `#[serde(flatten)]`; the
/// message then names the value itself).
fn for_key(key: &str) -> String {
    if key.is_empty() || key == "." {
        String::new()
    } else {
        format!(" for `{key}`")
    }
}
