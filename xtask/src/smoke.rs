//! The device smoke test: a few training steps of the classify model on any device and dtype,
//! from the same initial weights as a Flex f32 reference run.
//!
//! It checks what must hold on every device: the loss is finite, it falls over the steps, and
//! the first step's loss (same weights, same batch) agrees with Flex f32 within a tolerance
//! set by the dtype. The same code runs on every device: only the `Device` differs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use kindling::{DeviceSpec, OptimizerConfig, OptimizerKind, Precision};
use serde::{Deserialize, Serialize};

use crate::classify::data::{self, Sample};
use crate::classify::model::{SmallCnn, SmallCnnConfig};
use crate::classify::synth;

const IMAGE_SIZE: u32 = 16;
const BATCH: usize = 16;
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
    /// Loss before each optimizer step.
    pub losses: Vec<f64>,
    /// The reference run's first loss, when compared against one.
    pub reference_first_loss: Option<f64>,
    /// Seconds per step (the first step includes kernel compilation on GPUs).
    pub step_seconds: Vec<f64>,
}

/// Relative tolerance on the first-step loss against Flex f32.
pub fn tolerance(dtype: Precision) -> f64 {
    match dtype {
        Precision::F32 => 1e-4,
        Precision::F16 => 1e-2,
        Precision::Bf16 => 3e-2,
    }
}

/// The fixed smoke batch: 16 synthetic images, all five classes.
fn smoke_samples() -> Vec<Sample> {
    (0..BATCH)
        .map(|i| {
            let class = i % synth::SHAPES.len();
            Sample {
                pixels: synth::render(SEED, class, i as u64, IMAGE_SIZE).into_raw(),
                label: class,
            }
        })
        .collect()
}

fn model_config() -> SmallCnnConfig {
    SmallCnnConfig::new(synth::SHAPES.len()).with_widths(vec![8, 16])
}

/// Runs the smoke test described by `args` and checks its invariants.
pub fn run(args: &SmokeArgs) -> Result<SmokeReport> {
    // Fail on a device missing from this build before spending time on the reference run.
    args.device.device()?;
    let scratch;
    let reference = match (&args.reference, args.device, args.dtype) {
        (Some(dir), _, _) => Some(dir.clone()),
        // The reference itself needs none.
        (None, DeviceSpec::Flex, Precision::F32) => None,
        (None, _, _) => {
            scratch = tempfile::tempdir().context("creating a scratch directory")?;
            let dir = scratch.path().join("reference");
            write_reference_in_child(&dir, args.steps)?;
            Some(dir)
        }
    };

    let device = kindling::init_device(args.device, args.dtype, SEED)?;
    let train_device = device.clone().autodiff();
    let fresh = model_config().init(&train_device);
    let (model, reference_losses): (SmallCnn, Option<Vec<f64>>) = match &reference {
        Some(dir) => {
            let bytes = std::fs::read(dir.join("weights.bpk"))
                .with_context(|| format!("reading the reference weights in {}", dir.display()))?;
            let record =
                ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))?.cast_to_module_dtype();
            let losses: Vec<f64> =
                serde_json::from_slice(&std::fs::read(dir.join("losses.json"))?)?;
            (fresh.try_load_record(record)?, Some(losses))
        }
        None => (fresh, None),
    };
    if let Some(dir) = &args.write_reference {
        std::fs::create_dir_all(dir)?;
        let bytes = model.clone().into_record().into_bytes()?;
        kindling::write_atomic(&dir.join("weights.bpk"), &bytes)?;
    }

    let samples = smoke_samples();
    let refs: Vec<&Sample> = samples.iter().collect();
    let loss_fn = CrossEntropyLossConfig::new().init(&train_device);
    let mut optimizer = OptimizerConfig {
        name: OptimizerKind::Sgd,
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.0,
        ..OptimizerConfig::default()
    }
    .init();
    let mut model = model;
    let (mut losses, mut step_seconds) = (Vec::new(), Vec::new());
    for step in 0..args.steps {
        let t = std::time::Instant::now();
        let (images, labels) = data::batch(&refs, IMAGE_SIZE, &train_device);
        let loss = loss_fn.forward(model.forward(images), labels);
        let value: f64 = loss.clone().into_scalar::<f32>().into();
        ensure!(value.is_finite(), "step {}: loss is {value}", step + 1);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(0.05, model, grads);
        losses.push(value);
        step_seconds.push(t.elapsed().as_secs_f64());
        eprintln!(
            "smoke {} {}: step {} loss {value:.6} ({:.2}s)",
            args.device,
            args.dtype,
            step + 1,
            t.elapsed().as_secs_f64()
        );
    }
    if let Some(dir) = &args.write_reference {
        kindling::write_atomic(&dir.join("losses.json"), &serde_json::to_vec(&losses)?)?;
    }

    let report = SmokeReport {
        device: args.device.to_string(),
        dtype: args.dtype.to_string(),
        reference_first_loss: reference_losses.as_ref().and_then(|l| l.first().copied()),
        losses,
        step_seconds,
    };
    check(&report, args.dtype)?;
    Ok(report)
}

/// The smoke invariants: the loss falls, and starts where Flex f32 starts.
pub fn check(report: &SmokeReport, dtype: Precision) -> Result<()> {
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
            rel <= tolerance(dtype),
            "{} {}: first-step loss {first} differs from Flex f32's {reference} by {rel:.2e} \
             (tolerance {:.0e})",
            report.device,
            report.dtype,
            tolerance(dtype)
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
