//! The built-in training tasks, each in its own folder with its configuration section, data,
//! model and metrics; and the pieces they share.

pub mod classify;
pub mod segment;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// What to do with an image that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BadImagePolicy {
    /// Stop with an error naming the file (the default).
    #[default]
    Error,
    /// Skip the file and count it in the summary.
    Skip,
}

impl std::str::FromStr for BadImagePolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(Self::Error),
            "skip" => Ok(Self::Skip),
            other => Err(format!("unknown policy `{other}`; expected error or skip")),
        }
    }
}

/// Touches every parameter of `model` so Burn's lazy initialisers run now, in module order:
/// a seeded device then always yields the same weights.
pub fn materialize<M: Module>(model: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Touch);
}
