//! The importer's one error type.

use std::path::PathBuf;

/// Why an ONNX file could not be imported, naming the file (and the op and node).
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file cannot be read.
    #[error("cannot read ONNX file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not an ONNX model.
    #[error("{} is not a valid ONNX model: {message}", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The decoder's reason.
        message: String,
    },
    /// The graph uses operators the importer does not support.
    #[error(
        "{} uses ONNX operator(s) burn-onnx 0.22 cannot import: {}",
        .path.display(),
        .ops.iter().map(|o| o.to_string()).collect::<Vec<_>>().join("; ")
    )]
    UnsupportedOps {
        /// The file.
        path: PathBuf,
        /// Each unsupported operator with its first node.
        ops: Vec<UnsupportedOp>,
    },
    /// Type inference or code generation failed.
    #[error("burn-onnx could not import {}: {message}", .path.display())]
    Import {
        /// The file.
        path: PathBuf,
        /// burn-onnx's message.
        message: String,
    },
    /// A weights file that does not load into the module.
    #[error("cannot load weights {} into the imported module: {message}", .path.display())]
    Weights {
        /// The file.
        path: PathBuf,
        /// burn-store's reason (missing or mis-shaped tensors, a corrupt file).
        message: String,
    },
    /// The name given for the module is not a Rust identifier.
    #[error(
        "module name `{0}` is not a Rust identifier (letters, digits and `_`, not first a digit)"
    )]
    BadName(String),
    /// Writing the outputs failed.
    #[error("cannot write {}: {source}", .path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// An operator the importer lacks, with where it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOp {
    /// `op_type`, prefixed by its domain when not the default one (`com.microsoft::Attention`).
    pub op: String,
    /// The name of the first node using it (or `#index` for an unnamed node).
    pub node: String,
    /// How many nodes use it.
    pub count: usize,
}

impl std::fmt::Display for UnsupportedOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (node `{}`", self.op, self.node)?;
        if self.count > 1 {
            write!(f, " and {} more", self.count - 1)?;
        }
        f.write_str(")")
    }
}
