//! The training loop every task shares.
//!
//! Kindling runs its own loop rather than burn-train's `Learner`: it needs per-epoch
//! schedulers fed the validation metric (`Learner` steps schedulers per iteration without a
//! metric), momentum cycling (OneCycleLR/CyclicLR set SGD momentum or Adam beta1 before each
//! step), room for a dynamic loss scale around `backward`/`step`, and
//! checkpoints that carry our RNG position, metrics and task state so that a killed run
//! resumes bit-identically.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::lr_scheduler::LrSchedulerRecord;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kindling_augment::{AugmentBatcher, Batch, Identity, Pipeline};
use kindling_run::{Interval, RunConfig};
use kindling_schedulers::Scheduler;
use serde::Serialize;

use crate::amp::MixedPrecision;
use crate::callbacks::{Callback, Control, EpochInfo, StepInfo};
use crate::checkpoint::{Checkpoint, CheckpointState};
use crate::error::{Result, TrainError};
use crate::loader::{EpochLoader, mix, shuffled};
use crate::metrics::{EpochRow, History};
use crate::task::{Task, TaskData};

/// Paths inside a run's output directory.
#[derive(Debug, Clone)]
pub struct RunPaths {
    /// `<out>/config.toml`
    pub config: PathBuf,
    /// `<out>/metrics.csv`
    pub metrics: PathBuf,
    /// `<out>/curves.png`
    pub curves: PathBuf,
    /// `<out>/checkpoints/last.ckpt`
    pub checkpoint: PathBuf,
    /// `<out>/checkpoints/best.ckpt`
    pub best: PathBuf,
    /// `<out>/data` (synthetic datasets)
    pub synthetic_data: PathBuf,
}

impl RunPaths {
    /// The layout under `out`.
    pub fn new(out: &Path) -> Self {
        Self {
            config: out.join("config.toml"),
            metrics: out.join("metrics.csv"),
            curves: out.join("curves.png"),
            checkpoint: out.join("checkpoints").join("last.ckpt"),
            best: out.join("checkpoints").join("best.ckpt"),
            synthetic_data: out.join("data"),
        }
    }
}

/// The best epoch by the task's selection metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Best {
    /// The metric's column name.
    pub metric: String,
    /// Its best value.
    pub value: f64,
    /// The epoch that reached it.
    pub epoch: usize,
}

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Metrics of every epoch (including epochs run before a resume).
    pub history: History,
    /// The best epoch, if any epoch completed.
    pub best: Option<Best>,
    /// Wall-clock seconds of this process's run (data loading included).
    pub wall_seconds: f64,
    /// Training images per second over all epochs.
    pub images_per_sec: f64,
    /// The last checkpoint.
    pub checkpoint: PathBuf,
    /// The best checkpoint.
    pub best_checkpoint: PathBuf,
    /// The epoch this process started from (0 = fresh run).
    pub resumed_from: usize,
    /// Whether a callback stopped the run before its last epoch.
    pub stopped_early: bool,
}

/// Trains any [`Task`] with one run configuration.
///
/// ```no_run
/// # use kindling_train::{Trainer, Task};
/// # fn demo(task: impl Task) -> kindling_train::Result<()> {
/// let run = kindling_run::RunConfig { epochs: 3, ..Default::default() };
/// let summary = Trainer::new(run)
///     .on_epoch_end(|info| { eprintln!("epoch {} done", info.epoch); kindling_train::Control::Continue })
///     .fit(&task)?;
/// println!("best {:?}", summary.best);
/// # Ok(()) }
/// ```
pub struct Trainer<'a> {
    run: RunConfig,
    saved_config: serde_json::Value,
    augment: Option<Arc<Pipeline>>,
    callbacks: Vec<Box<dyn Callback + 'a>>,
}

impl<'a> Trainer<'a> {
    /// A trainer for `run` (seed, epochs, batch size, workers, device, dtype, output
    /// directory, resume, optimizer, schedule).
    pub fn new(run: RunConfig) -> Self {
        let saved_config = serde_json::to_value(&run).unwrap_or(serde_json::Value::Null);
        Self {
            run,
            saved_config,
            augment: None,
            callbacks: Vec::new(),
        }
    }

    /// The full configuration to save as `<out>/config.toml` and to compare on `--resume`
    /// (a task's own section included); defaults to the run configuration.
    pub fn with_saved_config<C: Serialize>(mut self, config: &C) -> Result<Self> {
        let mut tree =
            serde_json::to_value(config).map_err(|e| TrainError::Record(e.to_string()))?;
        // What is saved is what replays: without the one-off resume switch.
        if let Some(map) = tree.as_object_mut() {
            map.insert("resume".into(), serde_json::Value::Bool(false));
        }
        self.saved_config = tree;
        Ok(self)
    }

    /// Augments every training sample with `pipeline`, keyed by (pipeline seed, epoch,
    /// sample index), in the data loader's workers.
    pub fn augment(mut self, pipeline: Option<Arc<Pipeline>>) -> Self {
        self.augment = pipeline;
        self
    }

    /// Adds a callback.
    pub fn callback(mut self, callback: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// Adds a closure called after each epoch (after its checkpoint is written).
    pub fn on_epoch_end(self, f: impl FnMut(&EpochInfo) -> Control + 'a) -> Self {
        self.callback(crate::callbacks::OnEpochEnd(f))
    }

    /// Adds a closure called after each optimizer step.
    pub fn on_step(self, f: impl FnMut(&StepInfo) -> Control + 'a) -> Self {
        self.callback(crate::callbacks::OnStep(f))
    }

    /// The output paths of this run.
    pub fn paths(&self) -> RunPaths {
        RunPaths::new(&self.run.out)
    }

    /// Trains `task` to the configured number of epochs (or until a callback stops it).
    pub fn fit<T: Task>(mut self, task: &T) -> Result<Summary> {
        let started = Instant::now();
        let cfg = self.run.clone();
        let paths = self.paths();
        // Inputs are checked before any work: a missing or foreign checkpoint fails before a
        // dataset is generated or a model is built.
        let resumed = if cfg.resume {
            let ckpt = Checkpoint::load(&paths.checkpoint).map_err(|e| {
                TrainError::Resume(format!(
                    "no usable checkpoint in {} (run once without --resume first): {e}",
                    cfg.out.display()
                ))
            })?;
            check_resumable(&ckpt.state, task, &self.saved_config)?;
            Some(ckpt)
        } else {
            None
        };

        point_burn_default_device(cfg.device);
        // The device (and its float dtype) is fixed before any tensor exists.
        let device = kindling_run::init_device(cfg.device, cfg.dtype, cfg.seed)?;
        let train_device = device.clone().autodiff();
        let mut amp = MixedPrecision::new(&cfg, &device)?;
        std::fs::create_dir_all(&cfg.out).map_err(TrainError::io(&cfg.out))?;

        let data = task.data()?;
        if let Some(ckpt) = &resumed
            && task.state() != serde_json::Value::Null
            && ckpt.state.task_state != task.state()
        {
            return Err(TrainError::Resume(format!(
                "the checkpoint's {} state {} differs from this run's {}",
                task.name(),
                ckpt.state.task_state,
                task.state()
            )));
        }
        kindling_run::save_config(&self.saved_config, &paths.config)
            .map_err(TrainError::io(&paths.config))?;

        let mut model = task.init_model(&train_device)?;
        // The handle carries SGD momentum / Adam beta1 into the optimizer: OneCycleLR and
        // CyclicLR cycle it (`cycle_momentum`, on by default as in PyTorch).
        let (mut optimizer, momentum) = cfg.optimizer.init_with_momentum();
        // The schedule steps after the optimizer update (per epoch or per step) and always
        // gets a metric: ReduceLROnPlateau uses it (validation loss per epoch, batch loss per
        // step), the other policies ignore it.
        let mut schedule: Option<(Interval, Scheduler)> = match &cfg.scheduler {
            Some(s) => Some((
                s.interval,
                s.build(cfg.optimizer.lr)
                    .map_err(|e| TrainError::Schedule(e.to_string()))?,
            )),
            None => None,
        };
        let mut columns = vec!["train_loss".to_string()];
        columns.extend(task.train_columns());
        // Averages over the epoch's training samples.
        let train_columns = columns.len();
        let val_columns = task.val_columns();
        columns.extend(val_columns.iter().cloned());
        columns.extend(amp.columns());
        let mut history = History::new(columns);
        let (best_name, goal) = task.best_metric();
        let best_column = history.column(&best_name).ok_or_else(|| {
            TrainError::Task(format!(
                "task {}: best metric `{best_name}` is not one of its columns {:?}",
                task.name(),
                history.columns
            ))
        })?;
        let mut best: Option<(f64, usize)> = None;
        let mut train_seconds = 0.0;

        if let Some(ckpt) = resumed {
            let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(ckpt.model))
                .map_err(|e| TrainError::Record(format!("reading the checkpoint's model: {e}")))?;
            model = model.try_load_record(record).map_err(|e| {
                TrainError::Record(format!("applying the checkpoint's model weights: {e}"))
            })?;
            optimizer = optimizer
                .from_bytes(Bytes::from_bytes_vec(ckpt.optimizer))
                .map_err(|e| {
                    TrainError::Record(format!("reading the checkpoint's optimizer state: {e}"))
                })?;
            if let (Some((_, schedule)), Some(bytes)) = (schedule.as_mut(), ckpt.state.scheduler) {
                let record =
                    LrSchedulerRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| {
                        TrainError::Record(format!("reading the checkpoint's scheduler: {e}"))
                    })?;
                schedule.load(&record);
            }
            if ckpt.state.metrics.columns != history.columns {
                return Err(TrainError::Resume(format!(
                    "the checkpoint's metric columns {:?} differ from {:?}",
                    ckpt.state.metrics.columns, history.columns
                )));
            }
            amp.load_state(ckpt.state.grad_scaler)?;
            history = ckpt.state.metrics;
            best = ckpt.state.best;
            train_seconds = ckpt.state.train_seconds;
            eprintln!(
                "resuming from {} after epoch {}",
                paths.checkpoint.display(),
                ckpt.state.epoch
            );
        }
        let resumed_from = history.rows.len();

        let train_batcher = AugmentBatcher::new(
            match &self.augment {
                Some(p) => p.clone(),
                None => Arc::new(Pipeline::new(Identity, cfg.seed)?),
            },
            &data.mean,
            &data.std,
        );
        let val_batcher =
            AugmentBatcher::new(Arc::new(Pipeline::new(Identity, 0)?), &data.mean, &data.std);
        let current_lr = |s: &Option<(Interval, Scheduler)>| {
            s.as_ref().map_or(cfg.optimizer.lr, |(_, s)| s.lr())
        };
        let n_train = data.train.len();
        // Training samples per epoch: `drop_last` leaves out the incomplete last batch.
        let per_epoch = match cfg.drop_last {
            true => n_train / cfg.batch_size * cfg.batch_size,
            false => n_train,
        };
        if per_epoch == 0 && n_train > 0 {
            return Err(TrainError::Data(format!(
                "drop_last with batch_size {} and {n_train} training samples leaves no batch; \
                 lower --batch-size or leave --drop-last out",
                cfg.batch_size
            )));
        }
        let mut stopped_early = false;

        'epochs: for epoch in resumed_from + 1..=cfg.epochs {
            let epoch_start = Instant::now();
            // Every RNG stream is keyed by (seed, epoch): resuming at epoch e needs nothing else.
            device.seed(mix(cfg.seed, epoch as u64));
            train_batcher.set_epoch(epoch as u64);
            let mut order = shuffled(n_train, cfg.seed, epoch as u64);
            order.truncate(per_epoch);
            let steps = order.len().div_ceil(cfg.batch_size);
            let loader = EpochLoader::new(
                &data.train,
                order,
                &train_batcher,
                cfg.batch_size,
                cfg.workers,
                &train_device,
            );
            model = task.prepare_epoch(model, epoch)?;
            let groups = task.lr_groups(&model)?;
            let bar = progress_bar(steps, epoch, cfg.epochs);

            let mut sums = vec![0.0f64; train_columns];
            let mut seen = 0usize;
            let mut lr = current_lr(&schedule);
            for (step, batch) in loader.iter().enumerate() {
                let batch = batch?;
                check_size(&batch, &data)?;
                let n = batch.indices.len();
                let out = amp.step(|| task.train_step(&model, &batch))?;
                let loss_value: f64 = out.loss.clone().into_scalar::<f32>().into();
                lr = current_lr(&schedule);
                if !loss_value.is_finite() {
                    return Err(TrainError::Diverged {
                        loss: loss_value,
                        epoch,
                        step: step + 1,
                        lr,
                    });
                }
                let mut grads = amp.scale(out.loss).backward();
                if let Some((_, s)) = &schedule {
                    momentum.follow(s);
                }
                // One optimizer step per group, each over its own parameters' gradients: the
                // optimizer keys its state by parameter, so this is PyTorch's param_groups
                // with one optimizer.
                let (factors, mut part_grads): (Vec<f64>, Vec<GradientsParams>) =
                    if groups.is_empty() {
                        (vec![1.0], vec![GradientsParams::from_grads(grads, &model)])
                    } else {
                        groups
                            .iter()
                            .map(|g| {
                                let p = GradientsParams::from_params(&mut grads, &model, &g.params);
                                (g.factor, p)
                            })
                            .unzip()
                    };
                let skip = amp.unscale(&model, &mut part_grads)?;
                if !skip {
                    for (factor, g) in factors.into_iter().zip(part_grads) {
                        if !g.is_empty() {
                            model = optimizer.step(lr * factor, model, g);
                        }
                    }
                }
                amp.update().map_err(|e| at_step(e, epoch, step + 1))?;
                // A skipped step does not advance a per-step schedule (PyTorch's warning case).
                if let Some((Interval::Step, s)) = schedule.as_mut().filter(|_| !skip) {
                    s.step_with_metric(loss_value).map_err(|e| {
                        TrainError::Schedule(format!("at epoch {epoch}, step {}: {e}", step + 1))
                    })?;
                }

                sums[0] += loss_value * n as f64;
                for (sum, v) in sums[1..].iter_mut().zip(&out.metrics) {
                    *sum += v * n as f64;
                }
                seen += n;
                let rate = seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
                let mut message = format!("loss {:.4}", sums[0] / seen as f64);
                for (name, sum) in history.columns[1..train_columns].iter().zip(&sums[1..]) {
                    message.push_str(&format!(
                        " {} {:.4}",
                        name.trim_start_matches("train_"),
                        sum / seen as f64
                    ));
                }
                message.push_str(&amp.progress());
                bar.set_message(format!("{message} lr {lr:.3e} {rate:.0} img/s"));
                bar.inc(1);
                let info = StepInfo {
                    epoch,
                    step: step + 1,
                    steps,
                    loss: loss_value,
                    lr,
                };
                if self.dispatch(|c| c.on_step(&info)) == Control::Stop {
                    stopped_early = true;
                    bar.finish_and_clear();
                    break 'epochs;
                }
            }
            drop(loader);
            let epoch_train_seconds = epoch_start.elapsed().as_secs_f64();
            train_seconds += epoch_train_seconds;
            bar.finish_and_clear();

            let eval_model = model.valid();
            let val_loader = EpochLoader::new(
                &data.val,
                (0..data.val.len()).collect(),
                &val_batcher,
                cfg.batch_size,
                cfg.workers,
                &device,
            );
            let val = task.evaluate(&eval_model, &mut val_loader.iter())?;
            drop(val_loader);
            if val.len() != val_columns.len() {
                return Err(TrainError::Task(format!(
                    "task {} returned {} validation metrics for the columns {val_columns:?}",
                    task.name(),
                    val.len()
                )));
            }
            if let Some((Interval::Epoch, s)) = schedule.as_mut() {
                s.step_with_metric(val[0])
                    .map_err(|e| TrainError::Schedule(format!("after epoch {epoch}: {e}")))?;
            }
            let mut values: Vec<f64> = sums.iter().map(|s| s / seen.max(1) as f64).collect();
            values.extend(&val);
            values.extend(amp.values());
            let row = EpochRow {
                epoch,
                values,
                lr,
                seconds: epoch_start.elapsed().as_secs_f64(),
                images_per_sec: seen as f64 / epoch_train_seconds.max(1e-9),
            };
            let mut line = format!("epoch {epoch}/{}:", cfg.epochs);
            for (name, v) in history.columns.iter().zip(&row.values) {
                line.push_str(&format!(" {name} {v:.4}"));
            }
            eprintln!(
                "{line} | lr {lr:.3e} | {:.1}s, {:.0} img/s",
                row.seconds, row.images_per_sec
            );
            let metric = row.values[best_column];
            history.rows.push(row);
            let improved = best.is_none_or(|(b, _)| goal.improves(metric, b));
            if improved {
                best = Some((metric, epoch));
            }

            let checkpoint = Checkpoint {
                state: CheckpointState {
                    task: task.name().to_string(),
                    epoch,
                    config: self.saved_config.clone(),
                    task_state: task.state(),
                    metrics: history.clone(),
                    rng_seed: cfg.seed,
                    train_seconds,
                    scheduler: match &schedule {
                        Some((_, s)) => Some(record_bytes(s.record().into_bytes())?),
                        None => None,
                    },
                    best,
                    grad_scaler: amp.state(),
                },
                model: record_bytes(model.clone().into_record().into_bytes())?,
                optimizer: record_bytes(optimizer.into_bytes())?,
            };
            if improved {
                checkpoint.save(&paths.best)?;
            }
            checkpoint.save(&paths.checkpoint)?;
            history
                .write_csv(&paths.metrics)
                .map_err(TrainError::io(&paths.metrics))?;
            if let Err(e) = history.plot_curves(&paths.curves) {
                eprintln!("warning: could not draw {}: {e}", paths.curves.display());
            }
            task.after_epoch(&eval_model, &history, &cfg.out)?;
            let info = EpochInfo {
                epoch,
                epochs: cfg.epochs,
                history: &history,
                checkpoint: &paths.checkpoint,
            };
            if self.dispatch(|c| c.on_epoch_end(&info)) == Control::Stop {
                stopped_early = epoch < cfg.epochs;
                break;
            }
        }

        let trained = per_epoch * history.rows.len();
        Ok(Summary {
            best: best.map(|(value, epoch)| Best {
                metric: best_name,
                value,
                epoch,
            }),
            images_per_sec: trained as f64 / train_seconds.max(1e-9),
            history,
            wall_seconds: started.elapsed().as_secs_f64(),
            checkpoint: paths.checkpoint,
            best_checkpoint: paths.best,
            resumed_from,
            stopped_early,
        })
    }

    /// Calls every callback; `Stop` if any asks to stop.
    fn dispatch(&mut self, mut call: impl FnMut(&mut dyn Callback) -> Control) -> Control {
        let mut control = Control::Continue;
        for c in &mut self.callbacks {
            if call(c.as_mut()) == Control::Stop {
                control = Control::Stop;
            }
        }
        control
    }
}

/// Points Burn's `Device::default()` at the run's backend (Burn creates an optimizer's loaded
/// state there), unless it already is.
fn point_burn_default_device(spec: kindling_run::DeviceSpec) {
    let wanted = spec.burn_backend_name();
    if std::env::var(kindling_run::DEVICE_ENV).is_ok_and(|v| v == wanted) {
        return;
    }
    // SAFETY: the trainer has started no thread yet, and Kindling's own threads (data
    // workers) are spawned after this point; a program that reads the environment from
    // other threads while calling `fit` must set `BURN_DEVICE` itself beforehand.
    unsafe { kindling_run::set_burn_default_device(spec) };
}

fn record_bytes(bytes: std::result::Result<Bytes, impl std::fmt::Display>) -> Result<Vec<u8>> {
    bytes
        .map(|b| b.to_vec())
        .map_err(|e| TrainError::Record(e.to_string()))
}

/// Refuses to resume a checkpoint made by another task or configuration.
fn check_resumable<T: Task>(
    state: &CheckpointState,
    task: &T,
    config: &serde_json::Value,
) -> Result<()> {
    if state.task != task.name() {
        return Err(TrainError::Resume(format!(
            "the checkpoint was written by the `{}` task, not `{}`; give another --out",
            state.task,
            task.name()
        )));
    }
    // Epochs may be raised to train longer, and workers never change results.
    let comparable = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("epochs");
            map.remove("workers");
            map.remove("resume");
        }
        v
    };
    let (saved, given) = (comparable(&state.config), comparable(config));
    if saved != given {
        let mut changes = Vec::new();
        differences("", &saved, &given, &mut changes);
        changes.truncate(5);
        return Err(TrainError::Resume(format!(
            "the checkpoint was made with a different configuration ({}); resume with --config \
             {}/config.toml (only epochs and workers may change)",
            changes.join(", "),
            config
                .get("out")
                .and_then(|v| v.as_str())
                .unwrap_or("<out>")
        )));
    }
    Ok(())
}

/// The dotted keys whose values differ between two configuration trees, as
/// `key: checkpoint → now`.
fn differences(
    prefix: &str,
    saved: &serde_json::Value,
    given: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (saved, given) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            let null = Value::Null;
            for key in keys {
                let path = match prefix {
                    "" => key.clone(),
                    p => format!("{p}.{key}"),
                };
                differences(
                    &path,
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(format!("{prefix}: {a} → {b}")),
        _ => {}
    }
}

/// Refuses a batch whose images are not the size the task trains on.
fn check_size(batch: &Batch, data: &TaskData) -> Result<()> {
    let Some((w, h, c)) = data.input_size else {
        return Ok(());
    };
    let [_, bc, bh, bw] = batch.images.dims();
    if (bw, bh, bc) != (w, h, c) {
        return Err(TrainError::AugmentSize {
            expected: format!("{w}×{h}×{c}"),
            got: format!("{bw}×{bh}×{bc}"),
        });
    }
    Ok(())
}

fn progress_bar(len: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {epoch}/{epochs}"));
    bar
}

/// A collapsed loss scale, with where it happened.
fn at_step(e: TrainError, epoch: usize, step: usize) -> TrainError {
    match e {
        TrainError::Precision(e) => TrainError::Task(format!("epoch {epoch}, step {step}: {e}")),
        other => other,
    }
}
