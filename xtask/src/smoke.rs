//! The device smoke test: a few steps of the real `Trainer` on the classify task (with
//! `kindling-losses`' cross-entropy) on any device and dtype, from the same initial weights
//! as a Flex f32 reference run.
//!
//! It checks what must hold on every device: the loss is finite, it falls over the steps, and
//! the first step's loss (same weights, same batch) agrees with Flex f32 within a tolerance
//! set by the dtype. The same code runs on every device: only the `Device` differs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device};
use kindling::augment::Batch;
use kindling::{Amp, DeviceSpec, OptimizerConfig, OptimizerKind, Precision, RunConfig};
use kindling_train::tasks::classify::{ClassifyConfig, ClassifyRun, ClassifyTask, SmallCnn};
use kindling_train::{Control, Goal, StepOutput, Task, TaskData, Trainer};
use serde::{Deserialize, Serialize};

const IMAGE_SIZE: u32 = 16;
const SEED: u64 = 7;

/// Options of one smoke run.
#[derive(Debug, Clone, clap::Args)]
pub struct SmokeArgs {
    /// Device to test: flex, wgpu, vulkan, metal, cuda[:N], tch, tch-cuda[:N]
    #[arg(long, default_value = "flex")]
    pub device: DeviceSpec,
    /// Float dtype: f32, f16, bf16
    #[arg(long, default_value = "f32")]
    pub dtype: Precision,
    /// Mixed precision: f16 or bf16 autocast with f32 master weights (needs --dtype f32)
    #[arg(long, default_value = "off", value_name = "off|f16|bf16")]
    pub amp: Amp,
    /// Optimizer steps on the fixed batch
    #[arg(long, default_value_t = 6)]
    pub steps: usize,
    /// Directory of a Flex f32 reference run to compare against (default: run one first, in a
    /// separate process, since a process's Flex device has one dtype)
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
    /// Write this run's initial weights and losses as a reference into DIR
    #[arg(long, value_name = "DIR")]
    pub write_reference: Option<PathBuf>,
}

/// What a smoke run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SmokeReport {
    /// Device string.
    pub device: String,
    /// Dtype.
    pub dtype: String,
    /// Autocast (`off`, `f16`, `bf16`).
    pub amp: String,
    /// Loss before each optimizer step.
    pub losses: Vec<f64>,
    /// The reference run's first loss, when compared against one.
    pub reference_first_loss: Option<f64>,
    /// Seconds per step (the first step includes kernel compilation on GPUs).
    pub step_seconds: Vec<f64>,
}

/// Relative tolerance on the first-step loss against Flex f32 (autocast computes the
/// convolutions in its dtype: that dtype's tolerance).
pub fn tolerance(dtype: Precision, amp: Amp) -> f64 {
    match (dtype, amp) {
        (Precision::F32, Amp::Off) => 1e-4,
        (Precision::F16, _) | (_, Amp::F16) => 1e-2,
        (Precision::Bf16, _) | (_, Amp::Bf16) => 3e-2,
    }
}

/// The smoke run's configuration: the classify task on 15 generated 16×16 images, one step
/// per epoch on the whole training set (batch 32), the default `kindling-losses`
/// cross-entropy, SGD with momentum.
fn smoke_config(args: &SmokeArgs, out: &Path) -> ClassifyRun {
    let defaults = ClassifyRun::default();
    ClassifyRun {
        run: RunConfig {
            seed: SEED,
            epochs: args.steps,
            batch_size: 32,
            workers: 0,
            device: args.device,
            dtype: args.dtype,
            amp: args.amp,
            out: out.to_path_buf(),
            optimizer: OptimizerConfig {
                name: OptimizerKind::Sgd,
                lr: 0.05,
                momentum: 0.9,
                weight_decay: 0.0,
                ..OptimizerConfig::default()
            },
            ..defaults.run
        },
        classify: ClassifyConfig {
            image_size: IMAGE_SIZE,
            synthetic_per_class: 4,
            widths: vec![8, 16],
            ..defaults.classify
        },
    }
}

/// The classify task with its initial weights taken from (or written to) a reference
/// directory, so that every device starts where Flex f32 started.
struct SmokeTask {
    inner: ClassifyTask,
    reference: Option<PathBuf>,
    write_reference: Option<PathBuf>,
}

impl Task for SmokeTask {
    type Model = SmallCnn;
    fn name(&self) -> &str {
        "smoke"
    }
    fn data(&self) -> kindling_train::Result<TaskData> {
        self.inner.data()
    }
    fn init_model(&self, device: &Device) -> kindling_train::Result<SmallCnn> {
        let fresh = self.inner.init_model(device)?;
        let err = |e: String| kindling_train::TrainError::Task(format!("smoke weights: {e}"));
        let model = match &self.reference {
            Some(dir) => {
                let bytes = std::fs::read(dir.join("weights.bpk"))
                    .map_err(|e| err(format!("reading {}: {e}", dir.display())))?;
                let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
                    .map_err(|e| err(e.to_string()))?
                    .cast_to_module_dtype();
                fresh
                    .try_load_record(record)
                    .map_err(|e| err(e.to_string()))?
            }
            None => fresh,
        };
        if let Some(dir) = &self.write_reference {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            let bytes = model
                .clone()
                .into_record()
                .into_bytes()
                .map_err(|e| err(e.to_string()))?;
            kindling::write_atomic(&dir.join("weights.bpk"), &bytes)
                .map_err(|e| err(e.to_string()))?;
        }
        Ok(model)
    }
    fn train_columns(&self) -> Vec<String> {
        self.inner.train_columns()
    }
    fn val_columns(&self) -> Vec<String> {
        self.inner.val_columns()
    }
    fn best_metric(&self) -> (String, Goal) {
        self.inner.best_metric()
    }
    fn train_step(&self, model: &SmallCnn, batch: &Batch) -> kindling_train::Result<StepOutput> {
        self.inner.train_step(model, batch)
    }
    fn evaluate(
        &self,
        model: &SmallCnn,
        batches: &mut dyn Iterator<Item = kindling_train::Result<Batch>>,
    ) -> kindling_train::Result<Vec<f64>> {
        self.inner.evaluate(model, batches)
    }
}

/// Runs the smoke test described by `args` and checks its invariants.
pub fn run(args: &SmokeArgs) -> Result<SmokeReport> {
    // Fail on a device missing from this build before spending time on the reference run.
    args.device.device()?;
    let scratch = tempfile::tempdir().context("creating a scratch directory")?;
    let reference = match (&args.reference, args.device, args.dtype, args.amp) {
        (Some(dir), ..) => Some(dir.clone()),
        // The reference itself needs none.
        (None, DeviceSpec::Flex, Precision::F32, Amp::Off) => None,
        (None, ..) => {
            let dir = scratch.path().join("reference");
            write_reference_in_child(&dir, args.steps)?;
            Some(dir)
        }
    };
    let cfg = smoke_config(args, &scratch.path().join("run"));
    let task = SmokeTask {
        inner: ClassifyTask::new(cfg.clone()),
        reference: reference.clone(),
        write_reference: args.write_reference.clone(),
    };
    let reference_losses: Option<Vec<f64>> = match &reference {
        Some(dir) => Some(serde_json::from_slice(
            &std::fs::read(dir.join("losses.json"))
                .with_context(|| format!("reading the reference losses in {}", dir.display()))?,
        )?),
        None => None,
    };

    let (mut losses, mut step_seconds) = (Vec::new(), Vec::new());
    let mut last = std::time::Instant::now();
    let label = match args.amp {
        Amp::Off => format!("{} {}", args.device, args.dtype),
        amp => format!("{} {} amp {amp}", args.device, args.dtype),
    };
    Trainer::new(cfg.run.clone())
        .on_step(|info| {
            let seconds = last.elapsed().as_secs_f64();
            eprintln!(
                "smoke {label}: step {} loss {:.6} ({seconds:.2}s)",
                info.epoch, info.loss
            );
            losses.push(info.loss);
            step_seconds.push(seconds);
            last = std::time::Instant::now();
            Control::Continue
        })
        .fit(&task)?;
    if let Some(dir) = &args.write_reference {
        kindling::write_atomic(&dir.join("losses.json"), &serde_json::to_vec(&losses)?)?;
    }

    let report = SmokeReport {
        device: args.device.to_string(),
        dtype: args.dtype.to_string(),
        amp: args.amp.to_string(),
        reference_first_loss: reference_losses.as_ref().and_then(|l| l.first().copied()),
        losses,
        step_seconds,
    };
    check(&report, args.dtype, args.amp)?;
    Ok(report)
}

/// The smoke invariants: the loss falls, and starts where Flex f32 starts.
pub fn check(report: &SmokeReport, dtype: Precision, amp: Amp) -> Result<()> {
    let (Some(first), Some(last)) = (report.losses.first(), report.losses.last()) else {
        bail!("no steps were run");
    };
    ensure!(
        report.losses.len() < 2 || last < first,
        "{} {}: the loss did not fall: {:?}",
        report.device,
        report.dtype,
        report.losses
    );
    if let Some(reference) = report.reference_first_loss {
        let rel = (first - reference).abs() / reference.abs().max(1e-12);
        ensure!(
            rel <= tolerance(dtype, amp),
            "{} {}: first-step loss {first} differs from Flex f32's {reference} by {rel:.2e} \
             (tolerance {:.0e})",
            report.device,
            report.dtype,
            tolerance(dtype, amp)
        );
    }
    Ok(())
}

/// Runs the Flex f32 reference in a child process (this binary), writing it into `dir`.
fn write_reference_in_child(dir: &Path, steps: usize) -> Result<()> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let status = Command::new(exe)
        .args(["smoke", "--device", "flex", "--dtype", "f32", "--steps"])
        .arg(steps.to_string())
        .arg("--write-reference")
        .arg(dir)
        .env_remove(kindling::DEVICE_ENV)
        .status()
        .context("starting the Flex f32 reference run")?;
    ensure!(
        status.success(),
        "the Flex f32 reference run failed ({status})"
    );
    Ok(())
}
