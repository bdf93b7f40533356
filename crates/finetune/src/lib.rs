//! Kindling's model zoo: torchvision architectures ported to Burn with torchvision's
//! parameter names, behind timm's API.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use kindling_finetune::{ModelOptions, create_model, list_models};
//!
//! assert!(list_models(&["resnet*"], &[], false).contains(&"resnet50".to_string()));
//! let device = Device::flex();
//! let model = create_model("resnet18", ModelOptions::default().num_classes(10), &device)?;
//! let logits = model.forward(Tensor::<4>::zeros([1, 3, 64, 64], &device));
//! assert_eq!(logits.dims(), [1, 10]);
//! # Ok::<(), kindling_finetune::FinetuneError>(())
//! ```

mod error;
pub mod freeze;
pub mod hub;
mod model;
pub mod models;
mod registry;
pub mod surgery;
#[doc(hidden)]
pub mod testing;
mod transforms;
pub mod weights;

pub use error::FinetuneError;
pub use freeze::{ParamCounts, param_counts};
pub use model::{
    Architecture, BuildOptions, Features, GlobalPool, ZooModel, apply_classifier, classifier,
    classifier_outputs, pooled_head,
};
pub use registry::{
    Builder, Family, IMAGENET_MEAN, IMAGENET_STD, Interpolation, ModelEntry, ModelOptions,
    Pretrained, PretrainedCfg, Weights, create_model, list_models, model_entry, pretrained_cfg,
    split_name_tag, wildcard_match,
};
pub use transforms::EvalTransform;
pub use weights::{
    LoadOptions, LoadReport, StateDict, load_file, load_with_key_map, save_burnpack,
    save_safetensors,
};
