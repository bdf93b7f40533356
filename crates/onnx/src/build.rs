//! Importing from a build script.
//!
//! ```no_run
//! // build.rs of a crate with `kindling-onnx` in [build-dependencies] and `burn`,
//! // `burn-store`, `kindling-nn` in [dependencies]:
//! // fn main() {
//! kindling_onnx::build::generate("models/classifier.onnx", "classifier");
//! // }
//! // src/lib.rs:
//! // include!(concat!(env!("OUT_DIR"), "/classifier/classifier.rs"));
//! ```
//!
//! **Build-time cost.** Build dependencies are compiled for the host in their own profile, so
//! this compiles burn-onnx *and a second copy of Burn* (with Flex) for the script, once per
//! clean build: as long again as the crate's own Burn build. That is why Kindling's own
//! workspace never uses it: `cargo xtask import-onnx` generates the code once with the copy of
//! Burn the workspace already builds, and the generated module is committed.

use std::path::Path;

use crate::{ImportOptions, import};

/// Imports `model` (relative to the crate root) into `$OUT_DIR/<name>/<name>.rs` and `.bpk`,
/// with a trailing Softmax removed (logits). Panics with the importer's message on failure,
/// which is how a build script reports one; re-runs when the model changes.
pub fn generate(model: impl AsRef<Path>, name: &str) {
    let model = model.as_ref();
    println!("cargo:rerun-if-changed={}", model.display());
    let out_dir = std::env::var_os("OUT_DIR")
        .expect("kindling_onnx::build::generate runs from a build script (OUT_DIR is unset)");
    let out = Path::new(&out_dir).join(name);
    let options = ImportOptions {
        name: Some(name.to_string()),
        logits: true,
    };
    if let Err(e) = import(model, &out, &options) {
        panic!("importing {}: {e}", model.display());
    }
}
