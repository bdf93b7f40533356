//! # kindling-onnx
//!
//! ONNX models as Burn modules that fine-tune like zoo models. [`import`] runs burn-onnx's code
//! generator (the successor of `burn-import`) on a checked and, by default, *logits* version of
//! the graph, and writes `<name>.rs` (a `Model` deriving `Module`, with `new`, `from_file` and
//! `forward`), `<name>.bpk` (its weights) and a `README.md` with the input and output shapes.
//! Include the module in a crate (`include!` or `mod`; with `burn`, `burn-store` and
//! `kindling-nn`, whose BatchNorm it uses) and it is an ordinary Burn module:
//! `kindling::finetune::surgery::replace_classifier`, `adapt_first_conv` and
//! `freeze::{freeze, unfreeze}` work on it by parameter path.
//!
//! `cargo xtask import-onnx MODEL.onnx --out DIR [--name NAME]` runs it from the command line;
//! [`build::generate`] runs it from a build script.

pub mod build;
mod error;
mod graph;
mod import;
mod weights;

pub use error::{OnnxError, UnsupportedOp};
pub use graph::{Signature, TensorInfo, inspect};
pub use import::{ImportOptions, Imported, has_kindling_batchnorm, import};
pub use weights::load_weights;
