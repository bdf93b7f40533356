//! The classify training loop.
//!
//! Kindling runs its own loop rather than burn-train's `Learner`: the later pieces need
//! control that `Learner` does not give — per-epoch schedulers fed the validation metric
//! (`Learner` steps schedulers per iteration without a metric), mixed precision with a
//! dynamic loss scale around `backward`/`step`, and checkpoints that carry our RNG state and
//! metrics history so a killed run resumes bit-identically.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::lr_scheduler::LrSchedulerRecord;
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Int, Tensor};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use kindling::Interval;
use kindling::augment::{Image, ImageBuf, Pipeline, to_tensor};
use kindling::losses::{AnyLoss, LossConfig};
use kindling::schedulers::Scheduler;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::config::ClassifyRun;
use super::data::{self, Dataset, LoadOptions, Sample};
use super::model::{SmallCnn, SmallCnnConfig};
use super::synth;
use crate::checkpoint::{Checkpoint, CheckpointState};
use crate::metrics::{self, EpochMetrics};

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Metrics of every epoch (including epochs run before a resume).
    pub metrics: Vec<EpochMetrics>,
    /// Best validation accuracy over all epochs.
    pub best_val_accuracy: f64,
    /// Wall-clock seconds of this process's run (data loading included).
    pub wall_seconds: f64,
    /// Training images per second over all epochs.
    pub images_per_sec: f64,
    /// The last checkpoint.
    pub checkpoint: PathBuf,
    /// Images skipped as undecodable.
    pub skipped_images: usize,
    /// The epoch this process started from (0 = fresh run).
    pub resumed_from: usize,
}

/// Paths inside a run's output directory.
pub struct RunPaths {
    /// `<out>/config.toml`
    pub config: PathBuf,
    /// `<out>/metrics.csv`
    pub metrics: PathBuf,
    /// `<out>/curves.png`
    pub curves: PathBuf,
    /// `<out>/checkpoints/last.ckpt`
    pub checkpoint: PathBuf,
    /// `<out>/data` (synthetic dataset)
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
            synthetic_data: out.join("data"),
        }
    }
}

/// Environment variable for tests: after writing the checkpoint of this epoch, the process
/// stops making progress (sleeps) so a test can kill it at a known point.
pub const HANG_AFTER_EPOCH_ENV: &str = "KINDLING_TEST_HANG_AFTER_EPOCH";

/// Trains the classifier described by `cfg`. Progress goes to stderr.
pub fn run(cfg: &ClassifyRun) -> Result<Outcome> {
    let started = Instant::now();
    let out = &cfg.run.out;
    let paths = RunPaths::new(out);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    // The device (and its float dtype) is fixed before any tensor exists.
    let device = kindling::init_device(cfg.run.device, cfg.run.dtype, cfg.run.seed)?;
    let train_device = device.clone().autodiff();

    let data_dir = match &cfg.classify.data {
        Some(dir) => dir.clone(),
        None => {
            eprintln!(
                "generating the synthetic shapes dataset in {}",
                paths.synthetic_data.display()
            );
            synth::write_image_folder(
                &paths.synthetic_data,
                cfg.run.seed,
                cfg.classify.synthetic_per_class,
                cfg.classify.image_size,
            )
            .with_context(|| format!("writing {}", paths.synthetic_data.display()))?
        }
    };
    let dataset = Dataset::load(
        &data_dir,
        &LoadOptions {
            image_size: cfg.classify.image_size,
            val_fraction: cfg.classify.val_fraction,
            seed: cfg.run.seed,
            workers: cfg.run.workers,
            on_bad_image: cfg.classify.on_bad_image,
        },
    )?;
    eprintln!(
        "data: {} classes {:?}, {} train / {} val images from {}{}",
        dataset.classes.len(),
        dataset.classes,
        dataset.train.len(),
        dataset.val.len(),
        data_dir.display(),
        match dataset.skipped.len() {
            0 => String::new(),
            n => format!(", {n} undecodable image(s) skipped"),
        }
    );

    let augment = match &cfg.classify.augment {
        Some(path) => {
            let pipeline = Pipeline::from_file(path)
                .with_context(|| format!("loading the augmentation pipeline {}", path.display()))?;
            eprintln!("augment: {} (seed {})", path.display(), pipeline.seed());
            Some(pipeline)
        }
        None => None,
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.run.workers.max(1))
        .build()
        .context("starting the augmentation workers")?;

    // What is saved is what replays: the resolved config, without the one-off resume switch.
    let mut replay = cfg.clone();
    replay.run.resume = false;
    kindling::save_config(&replay, &paths.config)
        .with_context(|| format!("writing {}", paths.config.display()))?;
    let config_tree = serde_json::to_value(&replay)?;

    let model_config =
        SmallCnnConfig::new(dataset.classes.len()).with_widths(cfg.classify.widths.clone());
    let mut model = model_config.init(&train_device);
    let mut optimizer = cfg.run.optimizer.init();
    // The schedule steps after the optimizer update (per epoch or per step) and always gets a
    // metric: ReduceLROnPlateau uses it (validation loss per epoch, batch loss per step), the
    // other policies ignore it.
    let mut schedule: Option<(Interval, Scheduler)> = match &cfg.run.scheduler {
        Some(s) => Some((s.interval, s.build(cfg.run.optimizer.lr)?)),
        None => None,
    };
    let mut history: Vec<EpochMetrics> = Vec::new();
    let mut train_seconds = 0.0;

    if cfg.run.resume {
        let ckpt = Checkpoint::load(&paths.checkpoint).with_context(|| {
            format!(
                "--resume: no usable checkpoint in {} (run once without --resume first)",
                out.display()
            )
        })?;
        check_resumable(&ckpt.state, &config_tree, &dataset)?;
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(ckpt.model))
            .context("reading the checkpoint's model")?;
        model = model
            .try_load_record(record)
            .context("applying the checkpoint's model weights")?;
        optimizer = optimizer
            .from_bytes(Bytes::from_bytes_vec(ckpt.optimizer))
            .context("reading the checkpoint's optimizer state")?;
        history = ckpt.state.metrics;
        if let (Some((_, schedule)), Some(bytes)) = (schedule.as_mut(), ckpt.state.scheduler) {
            let record = LrSchedulerRecord::from_bytes(Bytes::from_bytes_vec(bytes))
                .context("reading the checkpoint's scheduler state")?;
            schedule.load(&record);
        }
        train_seconds = ckpt.state.train_seconds;
        eprintln!(
            "resuming from {} after epoch {}",
            paths.checkpoint.display(),
            ckpt.state.epoch
        );
    }
    let resumed_from = history.len();

    let loss_fn = classification_loss(&cfg.run.loss, dataset.classes.len(), &train_device)?;
    let eval_loss = classification_loss(&cfg.run.loss, dataset.classes.len(), &device)?;
    let current_lr = |s: &Option<(Interval, Scheduler)>| {
        s.as_ref().map_or(cfg.run.optimizer.lr, |(_, s)| s.lr())
    };
    let batch_size = cfg.run.batch_size;
    let size = dataset.image_size;
    let hang_after: Option<usize> = std::env::var(HANG_AFTER_EPOCH_ENV)
        .ok()
        .and_then(|v| v.parse().ok());

    for epoch in resumed_from + 1..=cfg.run.epochs {
        let epoch_start = Instant::now();
        // Every RNG stream is keyed by (seed, epoch): resuming at epoch e needs nothing else.
        device.seed(mix(cfg.run.seed, epoch as u64));
        let order = shuffled(dataset.train.len(), cfg.run.seed, epoch as u64);
        let batches: Vec<&[usize]> = order.chunks(batch_size).collect();
        let bar = progress_bar(batches.len(), epoch, cfg.run.epochs);

        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut lr = current_lr(&schedule);
        for (step, indices) in batches.iter().enumerate() {
            let samples: Vec<&Sample> = indices.iter().map(|&i| &dataset.train[i]).collect();
            let (images, labels) = match &augment {
                Some(pipeline) => pool.install(|| {
                    augmented_batch(
                        pipeline,
                        &samples,
                        indices,
                        size,
                        epoch as u64,
                        &train_device,
                    )
                })?,
                None => data::batch(&samples, size, &train_device),
            };
            let logits = model.forward(images);
            let batch_correct = count_correct(&logits, &labels);
            let loss = loss_fn.try_forward(logits, labels).with_context(|| {
                format!("computing the loss at epoch {epoch}, step {}", step + 1)
            })?;
            let loss_value: f64 = loss.clone().into_scalar::<f32>().into();
            if !loss_value.is_finite() {
                bail!(
                    "training diverged: the loss is {loss_value} at epoch {epoch}, step {} \
                     (lr {lr}, dtype {}); try a lower --lr or --dtype f32",
                    step + 1,
                    cfg.run.dtype
                );
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lr = current_lr(&schedule);
            model = optimizer.step(lr, model, grads);
            if let Some((Interval::Step, s)) = schedule.as_mut() {
                s.step_with_metric(loss_value)
                    .with_context(|| format!("stepping the scheduler at epoch {epoch}"))?;
            }

            loss_sum += loss_value * samples.len() as f64;
            correct += batch_correct;
            seen += samples.len();
            let rate = seen as f64 / epoch_start.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "loss {:.4} acc {:.1}% lr {lr:.3e} {rate:.0} img/s",
                loss_sum / seen as f64,
                100.0 * correct as f64 / seen as f64
            ));
            bar.inc(1);
        }
        let epoch_train_seconds = epoch_start.elapsed().as_secs_f64();
        train_seconds += epoch_train_seconds;
        bar.finish_and_clear();

        let (val_loss, val_accuracy) =
            evaluate(&model, &dataset.val, size, batch_size, &eval_loss, &device)?;
        if let Some((Interval::Epoch, s)) = schedule.as_mut() {
            s.step_with_metric(val_loss)
                .with_context(|| format!("stepping the scheduler after epoch {epoch}"))?;
        }
        let row = EpochMetrics {
            epoch,
            train_loss: loss_sum / seen as f64,
            train_accuracy: correct as f64 / seen as f64,
            val_loss,
            val_accuracy,
            lr,
            seconds: epoch_start.elapsed().as_secs_f64(),
            images_per_sec: seen as f64 / epoch_train_seconds.max(1e-9),
        };
        eprintln!(
            "epoch {epoch}/{}: train loss {:.4} acc {:.2}% | val loss {:.4} acc {:.2}% | lr {lr:.3e} | {:.1}s, {:.0} img/s",
            cfg.run.epochs,
            row.train_loss,
            100.0 * row.train_accuracy,
            row.val_loss,
            100.0 * row.val_accuracy,
            row.seconds,
            row.images_per_sec
        );
        history.push(row);

        let checkpoint = Checkpoint {
            state: CheckpointState {
                epoch,
                config: config_tree.clone(),
                classes: dataset.classes.clone(),
                metrics: history.clone(),
                rng_seed: cfg.run.seed,
                train_seconds,
                scheduler: match &schedule {
                    Some((_, s)) => Some(s.record().into_bytes()?.to_vec()),
                    None => None,
                },
            },
            model: model.clone().into_record().into_bytes()?.to_vec(),
            optimizer: optimizer.into_bytes()?.to_vec(),
        };
        checkpoint.save(&paths.checkpoint)?;
        metrics::write_csv(&history, &paths.metrics)
            .with_context(|| format!("writing {}", paths.metrics.display()))?;
        if let Err(e) = metrics::plot_curves(&history, &paths.curves) {
            eprintln!("warning: could not draw {}: {e}", paths.curves.display());
        }
        if hang_after == Some(epoch) {
            eprintln!("{HANG_AFTER_EPOCH_ENV}={epoch}: waiting to be killed");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }

    let trained: usize = dataset.train.len() * history.len();
    Ok(Outcome {
        best_val_accuracy: history.iter().map(|r| r.val_accuracy).fold(0.0, f64::max),
        images_per_sec: trained as f64 / train_seconds.max(1e-9),
        metrics: history,
        wall_seconds: started.elapsed().as_secs_f64(),
        checkpoint: paths.checkpoint,
        skipped_images: dataset.skipped.len(),
        resumed_from,
    })
}

/// Refuses to resume a checkpoint made by a different run.
fn check_resumable(
    state: &CheckpointState,
    config: &serde_json::Value,
    dataset: &Dataset,
) -> Result<()> {
    // Epochs may be raised to train longer, and workers never change results.
    let comparable = |v: &serde_json::Value| {
        let mut v = v.clone();
        if let Some(map) = v.as_object_mut() {
            map.remove("epochs");
            map.remove("workers");
        }
        v
    };
    if comparable(&state.config) != comparable(config) {
        bail!(
            "--resume: the checkpoint was made with a different configuration; resume with \
             --config {}/config.toml (only epochs and workers may change)",
            config
                .get("out")
                .and_then(|v| v.as_str())
                .unwrap_or("<out>")
        );
    }
    if state.classes != dataset.classes {
        bail!(
            "--resume: the checkpoint's classes {:?} differ from the data's {:?}",
            state.classes,
            dataset.classes
        );
    }
    Ok(())
}

/// Augments the training images of a batch (in parallel; sample `i` of the dataset gets the
/// generator of `(pipeline seed, epoch, i)`, so neither batch composition nor the number of
/// workers changes it) and stacks them like [`data::batch`].
fn augmented_batch(
    pipeline: &Pipeline,
    samples: &[&Sample],
    indices: &[usize],
    size: u32,
    epoch: u64,
    device: &Device,
) -> Result<(Tensor<4>, Tensor<1, Int>)> {
    use rayon::prelude::*;
    let s = size as usize;
    let images = samples
        .par_iter()
        .zip(indices.par_iter())
        .map(|(sample, &index)| {
            let image = Image::U8(ImageBuf::new(s, s, 3, sample.pixels.clone())?);
            let out = pipeline.augment_image(image, epoch, index as u64)?;
            if (out.width(), out.height(), out.channels()) != (s, s, 3) {
                anyhow::bail!(
                    "the augmentation pipeline turned a {s}×{s} RGB image into {}×{}×{}; \
                     end it with a resize or crop to the image size",
                    out.width(),
                    out.height(),
                    out.channels()
                );
            }
            Ok(out)
        })
        .collect::<Result<Vec<_>>>()?;
    let images = to_tensor(&images, &data::MEAN, &data::STD, device)?;
    let labels: Vec<i64> = samples.iter().map(|s| s.label as i64).collect();
    let labels = Tensor::from_data(
        burn::tensor::TensorData::new(labels, [samples.len()]),
        device,
    );
    Ok((images, labels))
}

/// The configured loss, checked once on a two-sample batch so that a loss that does not fit
/// classification (`[N, C]` logits, `[N]` class indices) fails before training, naming why.
fn classification_loss(config: &LossConfig, classes: usize, device: &Device) -> Result<AnyLoss> {
    let loss = config.init(device).context("building the loss")?;
    let logits = Tensor::<2>::zeros([2, classes], device);
    let labels = Tensor::<1, Int>::from_ints([0, (classes > 1) as i32], device);
    loss.try_forward(logits, labels).with_context(|| {
        format!(
            "loss `{}` does not fit classification ([N, C] logits, [N] class indices); \
             try cross_entropy, focal (mode = \"multiclass\") or softmax_focal",
            config.name()
        )
    })?;
    Ok(loss)
}

/// Mean loss and accuracy over `samples`, on the plain (non-autodiff) device, in eval mode.
fn evaluate(
    model: &SmallCnn,
    samples: &[Sample],
    size: u32,
    batch_size: usize,
    loss_fn: &AnyLoss,
    device: &Device,
) -> Result<(f64, f64)> {
    let model = model.valid();
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    for chunk in samples.chunks(batch_size) {
        let refs: Vec<&Sample> = chunk.iter().collect();
        let (images, labels) = data::batch(&refs, size, device);
        let logits = model.forward(images);
        correct += count_correct(&logits, &labels);
        let loss: f64 = loss_fn
            .try_forward(logits, labels)
            .context("computing the validation loss")?
            .into_scalar::<f32>()
            .into();
        loss_sum += loss * chunk.len() as f64;
    }
    let n = samples.len().max(1) as f64;
    Ok((loss_sum / n, correct as f64 / n))
}

fn count_correct(logits: &Tensor<2>, labels: &Tensor<1, Int>) -> usize {
    let predicted = logits.clone().argmax(1).squeeze_dim::<1>(1);
    predicted
        .equal(labels.clone())
        .int()
        .sum()
        .into_scalar::<i64>() as usize
}

/// The training order of `epoch`: a pure function of (seed, epoch).
fn shuffled(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, epoch));
    order.shuffle(&mut rng);
    order
}

/// Derives an independent 64-bit seed from (seed, stream) (SplitMix64 finaliser).
pub fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
