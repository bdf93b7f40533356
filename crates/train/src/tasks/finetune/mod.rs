//! `train finetune`: a zoo model — or an ONNX import — fine-tuned on an ImageFolder tree:
//! pretrained weights, frozen layers and gradual unfreezing, head and backbone learning rates
//! (or layer-wise decay), the model's eval transform for validation — and, without data, a
//! synthetic demonstration of why fine-tuning exists (see [`run`]).

pub mod config;
mod groups;
mod source;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::tensor::Device;
use kindling_augment::Batch;
use kindling_finetune::{EvalTransform, ParamCounts, freeze, param_counts};
use kindling_run::RunConfig;

pub use config::{FINETUNE_FLAG_KEYS, FinetuneArgs, FinetuneConfig, FinetuneRun, PretrainedSpec};
pub use source::{Imported, ModelSource, Zoo};

use crate::error::{Result, TrainError};
use crate::metrics::History;
use crate::task::{Goal, LrGroup, StepOutput, Task, TaskData};
use crate::tasks::classifier::Classifier;
use crate::tasks::classify::data::{Dataset, LoadOptions, RgbSamples};
use crate::tasks::classify::{load_pipeline, synth};
use crate::trainer::{RunPaths, Summary, Trainer};
use source::zoo_error as zoo;

/// The class names, one per line, in label order.
pub const CLASSES_FILE: &str = "classes.txt";

/// The fine-tuned weights of a run in `out`: `checkpoints/best.<ext>` (the best epoch's) or
/// `checkpoints/last.<ext>`, in the source's format — safetensors in PyTorch's layout for a
/// zoo model (what `create_model(.., pretrained = file)` and `cargo xtask zoo predict
/// --weights` load), `.bpk` for an import.
pub fn weights_file<S: ModelSource>(source: &S, out: &Path, which: &str) -> PathBuf {
    out.join("checkpoints")
        .join(format!("{which}.{}", source.weights_extension()))
}

/// Fine-tuning a model from `S` (the zoo by default) on an ImageFolder tree
/// (`finetune.data` must be set; [`run`] sets it for the synthetic demonstration).
pub struct FinetuneTask<S: ModelSource = Zoo> {
    cfg: FinetuneRun,
    source: Arc<S>,
    eval: EvalTransform,
    core: Classifier,
    /// The counts printed last, so a change (unfreezing) is reported once.
    counts: Mutex<Option<ParamCounts>>,
}

impl FinetuneTask<Zoo> {
    /// The task for a resolved configuration whose `finetune.data` is set, on the zoo
    /// model `finetune.model`.
    pub fn new(cfg: FinetuneRun) -> Result<Self> {
        let source = Arc::new(Zoo::new(&cfg.finetune.model)?);
        Ok(Self::with_source(cfg, source))
    }
}

impl<S: ModelSource> FinetuneTask<S> {
    /// The task for a resolved configuration whose `finetune.data` is set, on `source`'s
    /// model.
    pub fn with_source(cfg: FinetuneRun, source: Arc<S>) -> Self {
        let eval = source.eval_transform(&cfg.finetune);
        let core = Classifier::new("finetune", cfg.run.loss.clone());
        Self {
            cfg,
            source,
            eval,
            core,
            counts: Mutex::new(None),
        }
    }

    /// The loaded dataset (after the trainer called [`Task::data`]).
    pub fn dataset(&self) -> Option<&Dataset> {
        self.core.dataset()
    }

    /// Trainable and frozen parameter counts, as last reported.
    pub fn counts(&self) -> Option<ParamCounts> {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the `freeze` patterns hold during `epoch` (1-based).
    fn frozen_during(&self, epoch: usize) -> bool {
        let c = &self.cfg.finetune;
        !c.freeze.is_empty() && c.unfreeze_after.is_none_or(|k| epoch <= k)
    }

    fn patterns(&self) -> Vec<&str> {
        self.cfg
            .finetune
            .freeze
            .iter()
            .map(String::as_str)
            .collect()
    }

    fn report_counts(&self, counts: ParamCounts, epoch: usize) {
        let mut last = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if *last != Some(counts) {
            eprintln!("parameters (epoch {epoch}): {counts}");
            *last = Some(counts);
        }
    }
}

impl<S: ModelSource> Task for FinetuneTask<S> {
    type Model = S::Model;

    fn name(&self) -> &str {
        "finetune"
    }

    fn data(&self) -> Result<TaskData> {
        let cfg = &self.cfg;
        let c = &cfg.finetune;
        let dir = c.data.as_deref().ok_or_else(|| {
            TrainError::Data("finetune: no data directory (give --data DIR)".into())
        })?;
        let dataset = Dataset::load(
            dir,
            &LoadOptions {
                on_bad_image: c.on_bad_image,
                channels: c.in_chans,
                val_transform: Some(self.eval.clone()),
                ..LoadOptions::rgb(c.image_size, c.val_fraction, cfg.run.seed, cfg.run.workers)
            },
        )
        .map_err(|e| TrainError::Data(e.to_string()))?;
        if let Some(n) = c.num_classes
            && n != dataset.classes.len()
        {
            return Err(TrainError::Data(format!(
                "--num-classes {n} but {} has {} class folders ({}); leave --num-classes out \
                 to take the data's",
                dir.display(),
                dataset.classes.len(),
                dataset.classes.join(", ")
            )));
        }
        crate::tasks::report_data(
            &dataset.classes,
            dataset.train.len(),
            dataset.val.len(),
            dir,
            dataset.skipped.len(),
        );
        std::fs::create_dir_all(&cfg.run.out).map_err(TrainError::io(&cfg.run.out))?;
        let classes_file = cfg.run.out.join(CLASSES_FILE);
        let mut names = dataset.classes.join("\n");
        names.push('\n');
        kindling_run::write_atomic(&classes_file, names.as_bytes())
            .map_err(TrainError::io(&classes_file))?;
        let (size, ch) = (c.image_size, c.in_chans);
        let to_f32 = |v: [f64; 3]| v[..ch].iter().map(|&x| x as f32).collect::<Vec<_>>();
        let out = TaskData {
            train: Arc::new(RgbSamples::with_channels(dataset.train.clone(), size, ch)),
            val: Arc::new(RgbSamples::with_channels(dataset.val.clone(), size, ch)),
            mean: to_f32(self.eval.mean),
            std: to_f32(self.eval.std),
            input_size: Some((size as usize, size as usize, ch)),
        };
        self.core.set_data(dataset);
        Ok(out)
    }

    fn init_model(&self, device: &Device) -> Result<S::Model> {
        let c = &self.cfg.finetune;
        let classes = self.core.loaded()?.classes.len();
        self.core.init_loss(device, classes)?;
        let model = self.source.build(c, classes, device)?;
        if !c.freeze.is_empty() {
            // Frozen as in epoch 1 (`prepare_epoch` sets the state of every epoch), so that a
            // pattern set that leaves nothing to train fails before any data is loaded.
            let model = freeze::freeze(model, &self.patterns()).map_err(zoo)?;
            let counts = param_counts(&model);
            if counts.trainable == 0 {
                return Err(TrainError::Task(format!(
                    "--freeze {} freezes all {} parameters of {}: nothing would train; leave \
                     the classifier `{}` out of the patterns",
                    c.freeze.join(" --freeze "),
                    counts.frozen,
                    self.source.name(),
                    self.source.classifier()
                )));
            }
            return Ok(model);
        }
        Ok(model)
    }

    fn prepare_epoch(&self, model: S::Model, epoch: usize) -> Result<S::Model> {
        let model = if self.cfg.finetune.freeze.is_empty() {
            model
        } else if self.frozen_during(epoch) {
            freeze::freeze(model, &self.patterns()).map_err(zoo)?
        } else {
            freeze::unfreeze(model, &self.patterns()).map_err(zoo)?
        };
        self.report_counts(param_counts(&model), epoch);
        Ok(model)
    }

    fn lr_groups(&self, model: &S::Model) -> Result<Vec<LrGroup>> {
        groups::lr_groups(&self.cfg, self.source.classifier(), model)
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

    fn train_step(&self, model: &S::Model, batch: &Batch) -> Result<StepOutput> {
        self.core
            .train_step(|x| self.source.forward(model, x), batch)
    }

    fn evaluate(
        &self,
        model: &S::Model,
        batches: &mut dyn Iterator<Item = Result<Batch>>,
    ) -> Result<Vec<f64>> {
        self.core
            .evaluate(|x| self.source.forward(model, x), batches)
    }

    fn state(&self) -> serde_json::Value {
        let mut state = self.core.state();
        if let Some(map) = state.as_object_mut() {
            map.insert("model".into(), self.source.name().into());
        }
        state
    }

    /// Writes the epoch's weights, and the best epoch's (see [`weights_file`]).
    fn after_epoch(&self, model: &S::Model, history: &History, out: &Path) -> Result<()> {
        let last_path = weights_file(&*self.source, out, "last");
        self.source.save(model, &last_path)?;
        let accuracy = history.series("val_accuracy");
        if let Some((last, before)) = accuracy.split_last()
            && before.iter().all(|b| last > b)
        {
            let best = weights_file(&*self.source, out, "best");
            let bytes = std::fs::read(&last_path).map_err(TrainError::io(&last_path))?;
            kindling_run::write_atomic(&best, &bytes).map_err(TrainError::io(&best))?;
        }
        Ok(())
    }
}

/// What [`run`] trained.
pub struct FinetuneOutcome<S: ModelSource = Zoo> {
    /// The fine-tuning run.
    pub summary: Summary,
    /// Its task (dataset, parameter counts).
    pub task: FinetuneTask<S>,
    /// The synthetic source pretraining, when the demonstration ran it.
    pub source: Option<Summary>,
    /// The same model trained from scratch on the target, in the demonstration.
    pub scratch: Option<Summary>,
    /// The fine-tuned weights file (see [`weights_file`]).
    pub weights: PathBuf,
}

/// Runs `train finetune` on the zoo model `finetune.model` (see [`run_with`]).
pub fn run<'a>(
    cfg: &FinetuneRun,
    trainer: impl FnMut(RunConfig) -> Trainer<'a>,
) -> Result<FinetuneOutcome> {
    run_with(cfg, Arc::new(Zoo::new(&cfg.finetune.model)?), trainer)
}

/// Runs `train finetune` on `source`'s model. With `finetune.data`, one fine-tuning run on
/// it. Without, the demonstration: the model is pretrained on the synthetic *source* task
/// (five shapes, `source_per_class` images each; skipped when `pretrained` names weights or
/// the model is an import, which comes with its own), fine-tuned on a *target* task of five
/// other shapes with `target_per_class` training images each, and — for a zoo model —
/// trained from scratch on the same target for comparison, under `<out>/source`, `<out>` and
/// `<out>/scratch`. `trainer` makes each phase's trainer from its run configuration.
pub fn run_with<'a, S: ModelSource>(
    cfg: &FinetuneRun,
    source: Arc<S>,
    mut trainer: impl FnMut(RunConfig) -> Trainer<'a>,
) -> Result<FinetuneOutcome<S>> {
    let pipeline = load_pipeline(cfg.finetune.augment.as_deref())?;
    let mut fit = |phase: FinetuneRun| -> Result<(Summary, FinetuneTask<S>)> {
        let task = FinetuneTask::with_source(phase.clone(), source.clone());
        let summary = trainer(phase.run.clone())
            .with_saved_config(&phase)?
            .augment(pipeline.clone())
            .fit(&task)?;
        Ok((summary, task))
    };
    let weights = weights_file(&*source, &cfg.run.out, "best");
    let alone = |(summary, task): (Summary, FinetuneTask<S>)| FinetuneOutcome {
        summary,
        task,
        source: None,
        scratch: None,
        weights: weights.clone(),
    };
    if cfg.finetune.data.is_some() {
        return fit(cfg.clone()).map(alone);
    }

    let c = &cfg.finetune;
    let imported = !source.trains_from_scratch();
    let (source_dir, target_dir) = write_synthetic(cfg, !imported)?;
    let phase = |out: PathBuf, data: &Path| {
        let mut p = cfg.clone();
        p.run.resume = cfg.run.resume && RunPaths::new(&out).checkpoint.exists();
        p.run.out = out;
        p.finetune.data = Some(data.to_path_buf());
        p
    };
    let plain = |mut p: FinetuneRun| {
        p.finetune.pretrained = PretrainedSpec::No;
        p.finetune.freeze.clear();
        p.finetune.unfreeze_after = None;
        p.finetune.lr_head = None;
        p.finetune.lr_backbone = None;
        p.finetune.layer_decay = None;
        p
    };
    if imported {
        // An import's constants are parameters that only its weights file fills: it has no
        // from-scratch initialisation to pretrain or compare with.
        eprintln!(
            "== fine-tuning the imported {} on the synthetic target task",
            source.name()
        );
        return fit(phase(cfg.run.out.clone(), &target_dir)).map(alone);
    }
    let (pretraining, start) = match &c.pretrained {
        PretrainedSpec::No => {
            eprintln!("== 1/3: pretraining {} on the source task", source.name());
            let out = cfg.run.out.join("source");
            let mut p = plain(phase(out.clone(), &source_dir));
            p.run.epochs = c.source_epochs;
            let (summary, _) = fit(p)?;
            let file = weights_file(&*source, &out, "best");
            (Some(summary), PretrainedSpec::File(file))
        }
        given => (None, given.clone()),
    };
    eprintln!("== 2/3: fine-tuning on the target task");
    let mut p = phase(cfg.run.out.clone(), &target_dir);
    p.finetune.pretrained = start;
    let (summary, task) = fit(p)?;
    eprintln!("== 3/3: the same model from scratch on the target task");
    let (scratch, _) = fit(plain(phase(cfg.run.out.join("scratch"), &target_dir)))?;
    Ok(FinetuneOutcome {
        summary,
        task,
        source: pretraining,
        scratch: Some(scratch),
        weights,
    })
}

/// Writes the demonstration's source (shapes 0–4; only `with_source`) and target (shapes
/// 5–9, separate train and val trees) sets under `<out>/data`.
fn write_synthetic(cfg: &FinetuneRun, with_source: bool) -> Result<(PathBuf, PathBuf)> {
    let c = &cfg.finetune;
    let root = RunPaths::new(&cfg.run.out).synthetic_data;
    let (seed, size) = (cfg.run.seed, c.image_size);
    let source = root.join("source");
    let target = root.join("target");
    eprintln!(
        "generating the synthetic {}target sets in {}",
        if with_source { "source and " } else { "" },
        root.display()
    );
    if with_source {
        synth::write_shapes(&source, seed, &[0, 1, 2, 3, 4], 0..c.source_per_class, size)
            .map_err(TrainError::io(&source))?;
    }
    let n = c.target_per_class;
    let target_shapes = [5, 6, 7, 8, 9];
    let train = target.join("train");
    synth::write_shapes(&train, seed, &target_shapes, 0..n, size)
        .map_err(TrainError::io(&train))?;
    let val = target.join("val");
    synth::write_shapes(
        &val,
        seed,
        &target_shapes,
        n..n + c.target_val_per_class,
        size,
    )
    .map_err(TrainError::io(&val))?;
    Ok((source, target))
}
