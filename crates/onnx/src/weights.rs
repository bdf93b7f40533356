//! Loading an imported module's `.bpk` with a typed error (the generated `from_file` panics).

use std::path::Path;

use burn::module::Module;

use crate::OnnxError;

/// Loads the weights file `path` (the importer's `<name>.bpk`) into `model`, built with the
/// generated `Model::new(&device)`. A missing, corrupt or mismatching file is an error naming
/// it, where the generated `Model::from_file` would panic.
pub fn load_weights<M: Module>(model: &mut M, path: impl AsRef<Path>) -> Result<(), OnnxError> {
    let path = path.as_ref();
    kindling_finetune::weights::load_burnpack(model, path).map_err(|e| OnnxError::Weights {
        path: path.to_path_buf(),
        message: match e {
            kindling_finetune::FinetuneError::ReadWeights { message, .. } => message,
            other => other.to_string(),
        },
    })
}
