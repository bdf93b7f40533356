//! `train segment`: semantic segmentation with a U-Net on a segmentation folder or on a
//! generated set of shapes; any segmentation loss of `kindling-losses`; IoU, Dice and pixel
//! accuracy; the best checkpoint by mIoU; a predictions grid.

pub mod config;
pub mod data;
pub mod metrics;
pub mod model;
pub mod preview;
pub mod synth;

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use burn::tensor::{Device, Int, Tensor};
use kindling_augment::Batch;
use kindling_losses::AnyLoss;

pub use config::{SEGMENT_FLAG_KEYS, SegmentArgs, SegmentConfig, SegmentRun};
use data::{SegDataset, SegLoadOptions, SegSamples};
pub use metrics::Confusion;
pub use model::{UNet, UNetConfig};

use crate::error::{Result, TrainError};
use crate::metrics::History;
use crate::task::{Goal, StepOutput, Task, TaskData};
use crate::tasks::classify::load_pipeline;
use crate::trainer::{Summary, Trainer};

/// Normalisation of the segment task's images (ImageNet's statistics).
pub const MEAN: [f32; 3] = kindling_augment::IMAGENET_MEAN;
/// See [`MEAN`].
pub const STD: [f32; 3] = kindling_augment::IMAGENET_STD;

/// Semantic segmentation: per-pixel classes from a [`UNet`], the run's loss over
/// `[N, C, H, W]` logits and `[N, H, W]` masks.
pub struct SegmentTask {
    cfg: SegmentRun,
    /// The loss on the training device, built once by `init_model`.
    train_loss: OnceLock<AnyLoss>,
    data: OnceLock<SegDataset>,
    /// Per-class IoU of the last evaluation, for the summary.
    last_iou: Mutex<Vec<Option<f64>>>,
}

impl SegmentTask {
    /// The task for a resolved configuration.
    pub fn new(cfg: SegmentRun) -> Self {
        Self {
            cfg,
            train_loss: OnceLock::new(),
            data: OnceLock::new(),
            last_iou: Mutex::new(Vec::new()),
        }
    }

    /// The loaded dataset (after the trainer called [`Task::data`]).
    pub fn dataset(&self) -> Option<&SegDataset> {
        self.data.get()
    }

    /// Per-class IoU of the last validation pass (`None`: class absent from targets and
    /// predictions).
    pub fn last_per_class_iou(&self) -> Vec<Option<f64>> {
        self.last_iou.lock().map(|v| v.clone()).unwrap_or_default()
    }

    fn loaded(&self) -> Result<&SegDataset> {
        self.data
            .get()
            .ok_or_else(|| TrainError::Task("segment: the data is not loaded yet".into()))
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

    fn masks(batch: &Batch) -> Result<Tensor<3, Int>> {
        batch.masks.clone().ok_or_else(|| {
            TrainError::Task("segment: a batch without masks (every sample needs one)".into())
        })
    }

    /// A loss with an `ignore_index` option (a `sum`'s terms included) must ignore the
    /// data's ignore index.
    fn check_ignore_index(&self) -> Result<()> {
        fn indices(v: &serde_json::Value, out: &mut Vec<i64>) {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(i) = map.get("ignore_index").and_then(|i| i.as_i64()) {
                        out.push(i);
                    }
                    map.values().for_each(|v| indices(v, out));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| indices(v, out)),
                _ => {}
            }
        }
        let ignore = i64::from(self.cfg.segment.ignore_index);
        let mut found = Vec::new();
        indices(&self.cfg.run.loss.to_json(), &mut found);
        if let Some(v) = found.into_iter().find(|&v| v != ignore) {
            return Err(TrainError::Loss(format!(
                "loss `{}` ignores index {v} but the masks mark unlabelled pixels with {ignore}; \
                 set the loss's ignore_index = {ignore} (or segment.ignore_index = {v})",
                self.cfg.run.loss.name()
            )));
        }
        Ok(())
    }
}

impl Task for SegmentTask {
    type Model = UNet;

    fn name(&self) -> &str {
        "segment"
    }

    fn data(&self) -> Result<TaskData> {
        self.check_ignore_index()?;
        let cfg = &self.cfg;
        let s = &cfg.segment;
        let dir =
            crate::tasks::data_dir(s.data.as_deref(), &cfg.run.out, "segmentation set", |dir| {
                synth::write_folder(dir, cfg.run.seed, s.synthetic_count, s.image_size)
            })?;
        let dataset = SegDataset::load(
            &dir,
            &SegLoadOptions {
                image_size: s.image_size,
                val_fraction: s.val_fraction,
                seed: cfg.run.seed,
                ignore_index: s.ignore_index,
                num_classes: s.num_classes,
                on_bad_image: s.on_bad_image,
            },
        )
        .map_err(|e| TrainError::Data(e.to_string()))?;
        crate::tasks::report_data(
            &dataset.classes,
            dataset.train.len(),
            dataset.val.len(),
            &dir,
            dataset.skipped.len(),
        );
        let size = s.image_size;
        let out = TaskData {
            train: Arc::new(SegSamples::new(dataset.train.clone(), size)),
            val: Arc::new(SegSamples::new(dataset.val.clone(), size)),
            mean: MEAN.to_vec(),
            std: STD.to_vec(),
            input_size: Some((size as usize, size as usize, 3)),
        };
        let _ = self.data.set(dataset);
        Ok(out)
    }

    fn init_model(&self, device: &Device) -> Result<UNet> {
        let classes = self.loaded()?.classes.len();
        // The loss must take [N, C, H, W] logits and [N, H, W] class indices with C classes.
        let logits = Tensor::<4>::zeros([2, classes, 4, 4], device);
        let masks = Tensor::<3, Int>::zeros([2, 4, 4], device);
        let loss = self.loss(device)?;
        loss.try_forward(logits, masks).map_err(|e| {
            TrainError::Loss(format!(
                "loss `{}` does not fit {classes}-class segmentation ([N, C, H, W] logits, \
                 [N, H, W] class indices): {e}; try cross_entropy, or dice/jaccard/focal/\
                 lovasz/tversky with mode = \"multiclass\"",
                self.cfg.run.loss.name()
            ))
        })?;
        let _ = self.train_loss.set(loss);
        Ok(UNetConfig::new(classes)
            .with_widths(self.cfg.segment.widths.clone())
            .init(device))
    }

    fn val_columns(&self) -> Vec<String> {
        ["val_loss", "val_miou", "val_dice", "val_pixel_accuracy"]
            .map(String::from)
            .to_vec()
    }

    fn best_metric(&self) -> (String, Goal) {
        ("val_miou".into(), Goal::Max)
    }

    fn train_step(&self, model: &UNet, batch: &Batch) -> Result<StepOutput> {
        let masks = Self::masks(batch)?;
        let logits = model.forward(batch.images.clone());
        let loss = self
            .training_loss(&logits.device())?
            .try_forward(logits, masks)
            .map_err(|e| TrainError::Loss(format!("computing the loss: {e}")))?;
        Ok(StepOutput {
            loss,
            metrics: Vec::new(),
        })
    }

    fn evaluate(
        &self,
        model: &UNet,
        batches: &mut dyn Iterator<Item = Result<Batch>>,
    ) -> Result<Vec<f64>> {
        let classes = self.loaded()?.classes.len();
        let ignore = i64::from(self.cfg.segment.ignore_index);
        let mut confusion = Confusion::new(classes);
        let (mut loss_sum, mut seen) = (0.0f64, 0usize);
        let mut loss_fn = None;
        for batch in batches {
            let batch = batch?;
            let masks = Self::masks(&batch)?;
            let logits = model.forward(batch.images.clone());
            let predicted = logits.clone().argmax(1).squeeze_dim::<3>(1);
            let loss_fn = match &loss_fn {
                Some(l) => l,
                None => loss_fn.insert(self.loss(&logits.device())?),
            };
            let loss: f64 = loss_fn
                .try_forward(logits, masks.clone())
                .map_err(|e| TrainError::Loss(format!("computing the validation loss: {e}")))?
                .into_scalar::<f32>()
                .into();
            let targets = ints(masks)?;
            confusion.add(&targets, &ints(predicted)?, ignore);
            let n = batch.indices.len();
            loss_sum += loss * n as f64;
            seen += n;
        }
        if let Ok(mut last) = self.last_iou.lock() {
            *last = confusion.per_class_iou();
        }
        Ok(vec![
            loss_sum / seen.max(1) as f64,
            confusion.miou(),
            confusion.dice(),
            confusion.pixel_accuracy(),
        ])
    }

    fn state(&self) -> serde_json::Value {
        match self.data.get() {
            Some(d) => serde_json::json!({ "classes": d.classes }),
            None => serde_json::Value::Null,
        }
    }

    fn after_epoch(&self, model: &UNet, _history: &History, out: &Path) -> Result<()> {
        let data = self.loaded()?;
        let path = out.join("predictions.png");
        preview::write_predictions(
            model,
            &data.val,
            self.cfg.segment.preview,
            self.cfg.segment.image_size,
            self.cfg.segment.ignore_index,
            &path,
        )
    }
}

fn ints<const D: usize>(t: Tensor<D, Int>) -> Result<Vec<i64>> {
    t.into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| TrainError::Task(format!("reading class indices: {e:?}")))
}

/// Trains the segmentation model described by `cfg` with `trainer`; loads the augmentation
/// pipeline named in the configuration first.
pub fn run<'a>(cfg: &SegmentRun, trainer: Trainer<'a>) -> Result<(Summary, SegmentTask)> {
    let pipeline = load_pipeline(cfg.segment.augment.as_deref())?;
    let task = SegmentTask::new(cfg.clone());
    let summary = trainer
        .with_saved_config(cfg)?
        .augment(pipeline)
        .fit(&task)?;
    Ok((summary, task))
}
