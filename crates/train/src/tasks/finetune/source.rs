//! Where the fine-tuned model comes from: a zoo architecture ([`Zoo`]) or a module generated
//! by `cargo xtask import-onnx` ([`Imported`]). The task is the same for both; a source says
//! how to build the model (weights, classifier size, input channels), which layer is the
//! classifier, how validation images are prepared and how the weights are saved.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use kindling_finetune::surgery::{self, Layer};
use kindling_finetune::{
    EvalTransform, IMAGENET_MEAN, IMAGENET_STD, Interpolation, ModelEntry, ModelOptions,
    Pretrained, ZooModel,
};
use kindling_precision::MasterWeights;

use crate::error::{Result, TrainError};
use crate::tasks::finetune::{FinetuneConfig, PretrainedSpec};

/// A model family `train finetune` can fine-tune.
pub trait ModelSource {
    /// The module (images `[N, C, H, W]` in, logits `[N, classes]` out).
    type Model: Module + 'static;

    /// Its name in messages and in the task's checkpoint state.
    fn name(&self) -> &str;

    /// The classifier's parameter path (its own learning rate; never frozen by accident).
    fn classifier(&self) -> &str;

    /// The weights file extension of [`ModelSource::save`] (`safetensors`, `bpk`).
    fn weights_extension(&self) -> &'static str;

    /// The eval transform's defaults when the configuration does not set them: crop
    /// fraction, filter, mean and std.
    fn eval_defaults(&self) -> (f64, Interpolation, [f64; 3], [f64; 3]);

    /// The model with its starting weights, a classifier of `classes` outputs and
    /// `cfg.in_chans` input channels.
    fn build(&self, cfg: &FinetuneConfig, classes: usize, device: &Device) -> Result<Self::Model>;

    /// Whether a fresh initialisation is a model (the demonstration pretrains and compares
    /// one); an import's constants only come from its weights file.
    fn trains_from_scratch(&self) -> bool {
        true
    }

    /// Logits for a batch of images.
    fn forward(&self, model: &Self::Model, images: Tensor<4>) -> Tensor<2>;

    /// Writes `model`'s weights to `path` (atomically), in a format [`ModelSource::build`]
    /// takes back as `pretrained = path`.
    fn save(&self, model: &Self::Model, path: &Path) -> Result<()>;

    /// The eval transform at the training resolution, with the configuration's overrides.
    fn eval_transform(&self, cfg: &FinetuneConfig) -> EvalTransform {
        let (crop, filter, mean, std) = self.eval_defaults();
        EvalTransform::new(
            cfg.image_size as usize,
            cfg.crop_pct.unwrap_or(crop),
            filter,
            cfg.mean.unwrap_or(mean),
            cfg.std.unwrap_or(std),
        )
    }
}

pub(crate) fn zoo_error(e: kindling_finetune::FinetuneError) -> TrainError {
    TrainError::Task(e.to_string())
}

/// A zoo architecture (`cfg.model`); weights saved as safetensors in PyTorch's layout, which
/// `create_model(.., pretrained = file)` and `cargo xtask zoo predict` load.
pub struct Zoo {
    entry: &'static ModelEntry,
}

impl Zoo {
    /// The zoo entry named `model`.
    pub fn new(model: &str) -> Result<Self> {
        let entry = kindling_finetune::model_entry(model).map_err(zoo_error)?;
        Ok(Self { entry })
    }
}

impl ModelSource for Zoo {
    type Model = ZooModel;

    fn name(&self) -> &str {
        self.entry.name
    }

    fn classifier(&self) -> &str {
        self.entry.classifier
    }

    fn weights_extension(&self) -> &'static str {
        "safetensors"
    }

    /// The default pretrained tag's transform; timm's defaults (crop 0.875, bilinear,
    /// ImageNet statistics) for a model without one.
    fn eval_defaults(&self) -> (f64, Interpolation, [f64; 3], [f64; 3]) {
        match kindling_finetune::pretrained_cfg(self.entry.name) {
            Ok(p) => (p.crop_pct, p.interpolation, p.mean, p.std),
            Err(_) => (0.875, Interpolation::Bilinear, IMAGENET_MEAN, IMAGENET_STD),
        }
    }

    fn build(&self, cfg: &FinetuneConfig, classes: usize, device: &Device) -> Result<ZooModel> {
        let pretrained = match &cfg.pretrained {
            PretrainedSpec::No => Pretrained::No,
            PretrainedSpec::Hub => Pretrained::Yes,
            PretrainedSpec::File(path) => Pretrained::File(path.clone()),
        };
        let options = ModelOptions {
            pretrained,
            num_classes: Some(classes),
            in_chans: cfg.in_chans,
            ..ModelOptions::default()
        };
        let model =
            kindling_finetune::create_model(self.entry.name, options, device).map_err(zoo_error)?;
        if cfg.pretrained != PretrainedSpec::No {
            eprintln!(
                "{}: weights from {} (classifier `{}` fresh for {classes} classes)",
                self.entry.name, cfg.pretrained, self.entry.classifier
            );
        }
        Ok(model)
    }

    fn forward(&self, model: &ZooModel, images: Tensor<4>) -> Tensor<2> {
        model.forward(images)
    }

    fn save(&self, model: &ZooModel, path: &Path) -> Result<()> {
        kindling_finetune::save_safetensors(model, path).map_err(zoo_error)
    }
}

/// A module generated by `cargo xtask import-onnx` (or by `kindling_onnx::build`), with the
/// importer's weights file. Its classifier is its last `Linear` (or 1×1 conv) and its stem
/// its first conv, found by walking the module; fine-tuned weights are saved as `.bpk`.
pub struct Imported<M> {
    name: String,
    weights: PathBuf,
    classifier: String,
    stem: Option<Layer>,
    outputs: usize,
    new: fn(&Device) -> M,
    forward: fn(&M, Tensor<4>) -> Tensor<2>,
    /// Its BatchNorms stay f32 in a master-weights copy (see [`Imported::keep_batchnorm_f32`]).
    batchnorm_f32: bool,
}

impl<M: Module + 'static> Imported<M> {
    /// The imported module `name` whose generated constructor is `new` and forward pass
    /// `forward`, with the importer's weights file `weights` (`<dir>/<name>.bpk`).
    pub fn new(
        name: &str,
        weights: PathBuf,
        new: fn(&Device) -> M,
        forward: fn(&M, Tensor<4>) -> Tensor<2>,
    ) -> Result<Self> {
        let probe = new(&Device::default());
        let layers = surgery::linear_and_conv_layers(&probe);
        let head = layers
            .iter()
            .rev()
            .find(|l| l.kind == "Linear" || l.weight[2..] == [1, 1])
            .ok_or_else(|| {
                TrainError::Task(format!(
                    "{name}: no Linear or 1×1 conv layer to use as the classifier (layers: \
                     {})",
                    layers
                        .iter()
                        .map(|l| l.path.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let stem = layers.iter().find(|l| l.kind == "Conv2d").cloned();
        Ok(Self {
            name: name.to_string(),
            classifier: head.path.clone(),
            outputs: head.outputs(),
            stem,
            weights,
            new,
            forward,
            batchnorm_f32: false,
        })
    }

    /// Under `--amp`, keeps the module's BatchNorms in f32 in the master-weights working copy
    /// (apex's `keep_batchnorm_fp32`): for a module whose BatchNorms are `kindling_nn`'s, as
    /// `import-onnx` writes them (`kindling_onnx::has_kindling_batchnorm`); Burn's cannot take
    /// an f16 input with f32 parameters.
    pub fn keep_batchnorm_f32(self, keep: bool) -> Self {
        Self {
            batchnorm_f32: keep,
            ..self
        }
    }

    /// The importer's weights file.
    pub fn weights(&self) -> &Path {
        &self.weights
    }

    fn load(&self, model: &mut M, path: &Path) -> Result<()> {
        kindling_finetune::weights::load_burnpack(model, path).map_err(zoo_error)
    }

    /// Refuses an image size at which the output does not depend on the input. An imported
    /// graph downsamples by fixed strides, and a pooling window larger than its input gives
    /// an empty map in Burn (onnxruntime pools the partial window), after which every image
    /// gets the same logits and training silently learns nothing.
    fn check_input_size(&self, model: &M, cfg: &FinetuneConfig, device: &Device) -> Result<()> {
        let size = cfg.image_size as usize;
        let probe = model.valid();
        let images = Tensor::<4>::random(
            [2, cfg.in_chans, size, size],
            Distribution::Uniform(-2.0, 2.0),
            device,
        );
        let logits = (self.forward)(&probe, images.inner());
        let [a, b] = [0, 1].map(|i| logits.clone().slice(i..i + 1));
        let spread: f32 = (a - b).abs().max().into_scalar();
        if spread == 0.0 || !spread.is_finite() {
            return Err(TrainError::Task(format!(
                "{}: at {size}×{size} its logits do not depend on the image (a layer's output \
                 is empty or non-finite: the graph downsamples too far for this size); raise \
                 --image-size to the model's input size",
                self.name
            )));
        }
        Ok(())
    }

    /// The stem adapted to `cfg.in_chans` as timm adapts a pretrained one.
    fn refit(&self, model: M, cfg: &FinetuneConfig) -> Result<M> {
        match &self.stem {
            Some(stem) if stem.inputs() != cfg.in_chans => {
                let (adapted, _) = surgery::adapt_first_conv(model, &stem.path, cfg.in_chans)
                    .map_err(zoo_error)?;
                Ok(adapted)
            }
            _ => Ok(model),
        }
    }

    fn with_head(&self, model: M, classes: usize) -> Result<M> {
        let (model, _) =
            surgery::replace_classifier(model, &self.classifier, classes).map_err(zoo_error)?;
        Ok(model)
    }
}

impl<M: Module + 'static> ModelSource for Imported<M> {
    type Model = M;

    fn name(&self) -> &str {
        &self.name
    }

    fn classifier(&self) -> &str {
        &self.classifier
    }

    fn weights_extension(&self) -> &'static str {
        "bpk"
    }

    /// ONNX files carry no preprocessing: timm's defaults (crop 0.875, bilinear, ImageNet
    /// statistics) unless `crop_pct`, `mean` and `std` are configured.
    fn eval_defaults(&self) -> (f64, Interpolation, [f64; 3], [f64; 3]) {
        (0.875, Interpolation::Bilinear, IMAGENET_MEAN, IMAGENET_STD)
    }

    /// The importer's weights (`pretrained = true`, or unset), or a `.bpk` this task saved
    /// (`pretrained = FILE`: with the original classifier or an already fine-tuned one);
    /// then a fresh classifier when `classes` differs from the model's, and the stem adapted
    /// to `in_chans` as timm adapts a pretrained one.
    fn build(&self, cfg: &FinetuneConfig, classes: usize, device: &Device) -> Result<M> {
        let from = match &cfg.pretrained {
            PretrainedSpec::File(path) => path.clone(),
            _ => self.weights.clone(),
        };
        // The importer's layout first; then the layout this task saves for `classes` and
        // `in_chans` (a file an earlier fine-tuning run wrote).
        let mut model = (self.new)(device);
        let mut fitted = false;
        if let Err(first) = self.load(&mut model, &from) {
            let mut refitted = self.refit(self.with_head((self.new)(device), classes)?, cfg)?;
            if self.load(&mut refitted, &from).is_err() {
                return Err(first);
            }
            (model, fitted) = (refitted, true);
        }
        let fresh_head = !fitted && self.outputs != classes;
        eprintln!(
            "{}: weights from {}{}",
            self.name,
            from.display(),
            if fresh_head {
                format!(
                    " (classifier `{}` fresh for {classes} classes)",
                    self.classifier
                )
            } else {
                String::new()
            }
        );
        if fresh_head {
            model = self.with_head(model, classes)?;
        }
        if !fitted {
            model = self.refit(model, cfg)?;
        }
        self.check_input_size(&model, cfg, device)?;
        Ok(model)
    }

    fn trains_from_scratch(&self) -> bool {
        false
    }

    /// Under `--amp` (an autocast scope) the import runs on master weights (apex O2): its
    /// layers are Burn's, which ignore autocast, so the step runs on an f16/bf16 working copy
    /// (its BatchNorms f32 with [`Imported::keep_batchnorm_f32`]) and the f32 masters take
    /// the optimizer step.
    fn forward(&self, model: &M, images: Tensor<4>) -> Tensor<2> {
        match MasterWeights::in_scope() {
            Some(o2) => {
                o2.keep_batchnorm_f32(self.batchnorm_f32)
                    .forward(model, images, self.forward)
            }
            None => (self.forward)(model, images),
        }
    }

    fn save(&self, model: &M, path: &Path) -> Result<()> {
        kindling_finetune::save_burnpack(model, path).map_err(zoo_error)
    }
}
