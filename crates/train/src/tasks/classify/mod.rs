//! `train classify`: an image classifier on an ImageFolder tree or on generated shapes.

pub mod config;
pub mod data;
pub mod model;
pub mod synth;

use std::sync::Arc;

use burn::tensor::Device;
use kindling_augment::{Batch, Pipeline};

pub use config::{CLASSIFY_FLAG_KEYS, ClassifyArgs, ClassifyConfig, ClassifyRun};
use data::{Dataset, LoadOptions, RgbSamples};
pub use model::{SmallCnn, SmallCnnConfig};

use crate::error::{Result, TrainError};
use crate::task::{Goal, StepOutput, Task, TaskData};
use crate::tasks::classifier::Classifier;
use crate::trainer::{Summary, Trainer};

/// Image classification: an ImageFolder tree (or the generated shapes), a [`SmallCnn`], the
/// run's loss over `[N, C]` logits, accuracy; the best checkpoint by validation accuracy.
pub struct ClassifyTask {
    cfg: ClassifyRun,
    core: Classifier,
}

impl ClassifyTask {
    /// The task for a resolved configuration.
    pub fn new(cfg: ClassifyRun) -> Self {
        let core = Classifier::new("classify", cfg.run.loss.clone());
        Self { cfg, core }
    }

    /// The loaded dataset (after the trainer called [`Task::data`]).
    pub fn dataset(&self) -> Option<&Dataset> {
        self.core.dataset()
    }
}

impl Task for ClassifyTask {
    type Model = SmallCnn;

    fn name(&self) -> &str {
        "classify"
    }

    fn data(&self) -> Result<TaskData> {
        let cfg = &self.cfg;
        let c = &cfg.classify;
        let data_dir =
            crate::tasks::data_dir(c.data.as_deref(), &cfg.run.out, "shapes dataset", |dir| {
                synth::write_image_folder(dir, cfg.run.seed, c.synthetic_per_class, c.image_size)
            })?;
        let dataset = Dataset::load(
            &data_dir,
            &LoadOptions {
                on_bad_image: c.on_bad_image,
                ..LoadOptions::rgb(c.image_size, c.val_fraction, cfg.run.seed, cfg.run.workers)
            },
        )
        .map_err(|e| TrainError::Data(e.to_string()))?;
        crate::tasks::report_data(
            &dataset.classes,
            dataset.train.len(),
            dataset.val.len(),
            &data_dir,
            dataset.skipped.len(),
        );
        let size = c.image_size;
        let out = TaskData {
            train: Arc::new(RgbSamples::new(dataset.train.clone(), size)),
            val: Arc::new(RgbSamples::new(dataset.val.clone(), size)),
            mean: data::MEAN.to_vec(),
            std: data::STD.to_vec(),
            input_size: Some((size as usize, size as usize, 3)),
        };
        self.core.set_data(dataset);
        Ok(out)
    }

    fn init_model(&self, device: &Device) -> Result<SmallCnn> {
        let classes = self.core.loaded()?.classes.len();
        self.core.init_loss(device, classes)?;
        Ok(SmallCnnConfig::new(classes)
            .with_widths(self.cfg.classify.widths.clone())
            .init(device))
    }

    fn train_columns(&self) -> Vec<String> {
        vec!["train_accuracy".into()]
    }

    fn val_columns(&self) -> Vec<String> {
        vec!["val_loss".into(), "val_accuracy".into()]
    }

    fn best_metric(&self) -> (String, Goal) {
        ("val_accuracy".into(), Goal::Max)
    }

    fn train_step(&self, model: &SmallCnn, batch: &Batch) -> Result<StepOutput> {
        self.core.train_step(|x| model.forward(x), batch)
    }

    fn evaluate(
        &self,
        model: &SmallCnn,
        batches: &mut dyn Iterator<Item = Result<Batch>>,
    ) -> Result<Vec<f64>> {
        self.core.evaluate(|x| model.forward(x), batches)
    }

    fn state(&self) -> serde_json::Value {
        self.core.state()
    }
}

/// Trains the classifier described by `cfg` with `trainer` (progress to stderr); loads the
/// augmentation pipeline named in the configuration first.
pub fn run<'a>(cfg: &ClassifyRun, trainer: Trainer<'a>) -> Result<(Summary, ClassifyTask)> {
    let pipeline = load_pipeline(cfg.classify.augment.as_deref())?;
    let task = ClassifyTask::new(cfg.clone());
    let summary = trainer
        .with_saved_config(cfg)?
        .augment(pipeline)
        .fit(&task)?;
    Ok((summary, task))
}

/// Loads an augmentation pipeline file, naming it on failure.
pub fn load_pipeline(path: Option<&std::path::Path>) -> Result<Option<Arc<Pipeline>>> {
    match path {
        Some(path) => {
            let pipeline = Pipeline::from_file(path).map_err(|e| {
                let e = e.to_string();
                TrainError::Data(format!(
                    "loading the augmentation pipeline {}: {e}{}",
                    path.display(),
                    kindling_run::did_you_mean(&e)
                ))
            })?;
            eprintln!("augment: {} (seed {})", path.display(), pipeline.seed());
            Ok(Some(Arc::new(pipeline)))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_mistyped_augmenter_gets_the_closest_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.json");
        std::fs::write(
            &file,
            r#"{"seed": 1, "pipeline": {"op": "fliplrr", "p": 0.5}}"#,
        )
        .unwrap();
        let err = super::load_pipeline(Some(&file)).err().unwrap().to_string();
        assert!(
            err.contains("p.json") && err.contains("did you mean `fliplr`?"),
            "{err}"
        );
    }
}
