//! `train classify`: an image classifier on an ImageFolder tree or on generated shapes.

pub mod config;
pub mod data;
pub mod model;
pub mod synth;

use std::sync::{Arc, OnceLock};

use burn::tensor::{Device, Int, Tensor, TensorData};
use kindling_augment::{Batch, Pipeline};
use kindling_losses::AnyLoss;

pub use config::{CLASSIFY_FLAG_KEYS, ClassifyArgs, ClassifyConfig, ClassifyRun};
use data::{Dataset, LoadOptions, RgbSamples, Sample};
pub use model::{SmallCnn, SmallCnnConfig};

use crate::error::{Result, TrainError};
use crate::task::{Goal, StepOutput, Task, TaskData};
use crate::trainer::{Summary, Trainer};

/// Image classification: an ImageFolder tree (or the generated shapes), a [`SmallCnn`], the
/// run's loss over `[N, C]` logits, accuracy; the best checkpoint by validation accuracy.
pub struct ClassifyTask {
    cfg: ClassifyRun,
    /// The loss on the training device, built once by `init_model`.
    train_loss: OnceLock<AnyLoss>,
    data: OnceLock<Dataset>,
}

impl ClassifyTask {
    /// The task for a resolved configuration.
    pub fn new(cfg: ClassifyRun) -> Self {
        Self {
            cfg,
            train_loss: OnceLock::new(),
            data: OnceLock::new(),
        }
    }

    /// The loaded dataset (after the trainer called [`Task::data`]).
    pub fn dataset(&self) -> Option<&Dataset> {
        self.data.get()
    }

    fn loaded(&self) -> Result<&Dataset> {
        self.data
            .get()
            .ok_or_else(|| TrainError::Task("classify: the data is not loaded yet".into()))
    }

    /// The loss built by `init_model` (or, for a model made elsewhere, a new one).
    fn training_loss(&self, device: &Device) -> Result<std::borrow::Cow<'_, AnyLoss>> {
        match self.train_loss.get() {
            Some(loss) => Ok(std::borrow::Cow::Borrowed(loss)),
            None => self.loss(device).map(std::borrow::Cow::Owned),
        }
    }

    fn loss(&self, device: &Device) -> Result<AnyLoss> {
        self.cfg
            .run
            .loss
            .init(device)
            .map_err(|e| TrainError::Loss(format!("building the loss: {e}")))
    }

    /// Logits, labels and the number of correct predictions of a batch.
    fn forward(
        &self,
        model: &SmallCnn,
        batch: &Batch,
        samples: &[Sample],
    ) -> (Tensor<2>, Tensor<1, Int>, usize) {
        let device = batch.images.device();
        let labels: Vec<i64> = batch
            .indices
            .iter()
            .map(|&i| samples[i as usize].label as i64)
            .collect();
        let labels = Tensor::from_data(TensorData::new(labels, [batch.indices.len()]), &device);
        let logits = model.forward(batch.images.clone());
        let correct = crate::metrics::correct(&logits, &labels);
        (logits, labels, correct)
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
                image_size: c.image_size,
                val_fraction: c.val_fraction,
                seed: cfg.run.seed,
                workers: cfg.run.workers,
                on_bad_image: c.on_bad_image,
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
        let _ = self.data.set(dataset);
        Ok(out)
    }

    fn init_model(&self, device: &Device) -> Result<SmallCnn> {
        let classes = self.loaded()?.classes.len();
        let loss = self.loss(device)?;
        check_fits_classification(&loss, &self.cfg, classes, device)?;
        let _ = self.train_loss.set(loss);
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
        let data = self.loaded()?;
        let (logits, labels, correct) = self.forward(model, batch, &data.train);
        let loss = self
            .training_loss(&logits.device())?
            .try_forward(logits, labels)
            .map_err(|e| TrainError::Loss(format!("computing the loss: {e}")))?;
        Ok(StepOutput {
            loss,
            metrics: vec![correct as f64 / batch.indices.len().max(1) as f64],
        })
    }

    fn evaluate(
        &self,
        model: &SmallCnn,
        batches: &mut dyn Iterator<Item = Result<Batch>>,
    ) -> Result<Vec<f64>> {
        let data = self.loaded()?;
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut loss_fn = None;
        for batch in batches {
            let batch = batch?;
            let (logits, labels, batch_correct) = self.forward(model, &batch, &data.val);
            if loss_fn.is_none() {
                loss_fn = Some(self.loss(&logits.device())?);
            }
            let loss: f64 = loss_fn
                .as_ref()
                .map(|l| l.try_forward(logits, labels))
                .transpose()
                .map_err(|e| TrainError::Loss(format!("computing the validation loss: {e}")))?
                .map_or(0.0, |t| t.into_scalar::<f32>().into());
            let n = batch.indices.len();
            loss_sum += loss * n as f64;
            correct += batch_correct;
            seen += n;
        }
        let n = seen.max(1) as f64;
        Ok(vec![loss_sum / n, correct as f64 / n])
    }

    fn state(&self) -> serde_json::Value {
        match self.data.get() {
            Some(d) => serde_json::json!({ "classes": d.classes }),
            None => serde_json::Value::Null,
        }
    }
}

/// Checks on a two-sample batch that the loss fits classification (`[N, C]` logits, `[N]`
/// class indices), so a loss that does not fails before training, naming why.
fn check_fits_classification(
    loss: &AnyLoss,
    cfg: &ClassifyRun,
    classes: usize,
    device: &Device,
) -> Result<()> {
    let logits = Tensor::<2>::zeros([2, classes], device);
    let labels = Tensor::<1, Int>::from_ints([0, (classes > 1) as i32], device);
    loss.try_forward(logits, labels).map_err(|e| {
        TrainError::Loss(format!(
            "loss `{}` does not fit classification ([N, C] logits, [N] class indices): {e}; \
             try cross_entropy, focal (mode = \"multiclass\") or softmax_focal",
            cfg.run.loss.name()
        ))
    })?;
    Ok(())
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
