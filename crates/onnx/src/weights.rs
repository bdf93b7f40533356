//! Loading an imported module's `.bpk` with a typed error (the generated `from_file` panics).

use std::path::Path;

use burn::module::Module;
use burn_store::{BurnpackStore, ModuleSnapshot};

use crate::OnnxError;

/// Loads the weights file `path` (the importer's `<name>.bpk`) into `model`, built with the
/// generated `Model::new(&device)`. A missing, corrupt or mismatching file is an error naming
/// it, where the generated `Model::from_file` would panic.
pub fn load_weights<M: Module + ModuleSnapshot>(
    model: &mut M,
    path: &Path,
) -> Result<(), OnnxError> {
    let fail = |message: String| OnnxError::Weights {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(fail("no such file".into()));
    }
    let mut store = BurnpackStore::from_file(path);
    let result = model
        .load_from(&mut store)
        .map_err(|e| fail(e.to_string()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
        problems.extend(
            result
                .missing
                .iter()
                .map(|(path, _)| format!("missing {path}")),
        );
        problems.truncate(10);
        return Err(fail(problems.join("; ")));
    }
    Ok(())
}
