//! `cargo xtask bench amp`: the heap one training step allocates (a counting global allocator
//! in its own binary, `amp_memory`, one process per case) and its time, in f32, under
//! autocast to f16 and bf16, and with the whole model in f16; ratios to f32.
//!
//! On Flex (CPU) the low dtypes are not faster — f16 arithmetic is emulated — so the speed
//! ratios here are reported, not goals; `cargo xtask check-gpu --amp` runs the same on a GPU.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::checks::{target_dir, workspace_root};

/// Flags of `cargo xtask bench amp`.
#[derive(Debug, Clone, clap::Args)]
pub struct AmpBenchArgs {
    /// Cases as MODEL:BATCH:SIZE (`classify` is the classify task's model; others are zoo names)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "classify:64:64,resnet18:16:224"
    )]
    pub cases: Vec<String>,
    /// Precisions: f32, amp-f16, amp-bf16, f16 (whole model), bf16 (whole model)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "f32,amp-f16,amp-bf16,f16"
    )]
    pub modes: Vec<String>,
}

/// One measured case.
#[derive(Debug, Clone)]
pub struct AmpMeasurement {
    /// Model, batch, size, mode.
    pub case: (String, usize, usize, String),
    /// Parameter count.
    pub params: u64,
    /// Heap live before the step (model, optimizer state, inputs).
    pub resident_bytes: u64,
    /// Peak heap the step added on top.
    pub step_peak_bytes: u64,
    /// Wall seconds of the step.
    pub step_seconds: f64,
}

fn probe() -> Result<std::path::PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--package",
            "xtask",
            "--bin",
            "amp_memory",
        ])
        .current_dir(workspace_root())
        .status()
        .context("building the amp_memory probe")?;
    ensure!(status.success(), "building amp_memory failed ({status})");
    Ok(target_dir().join("debug").join("amp_memory"))
}

/// Runs every case in every mode and prints the table; returns the measurements.
pub fn run(args: &AmpBenchArgs) -> Result<Vec<AmpMeasurement>> {
    let exe = probe()?;
    let mut rows = Vec::new();
    println!(
        "{:<10} {:>5} {:>4} {:<9} {:>11} {:>10} {:>12} {:>8} {:>9} {:>7}",
        "model",
        "batch",
        "size",
        "mode",
        "params MB",
        "resident",
        "step peak",
        "× f32",
        "step s",
        "× f32"
    );
    for case in &args.cases {
        let parts: Vec<&str> = case.split(':').collect();
        let [model, batch, size] = parts[..] else {
            anyhow::bail!("case `{case}`: expected MODEL:BATCH:SIZE");
        };
        let mut f32_row: Option<(u64, f64)> = None;
        for mode in &args.modes {
            let out = Command::new(&exe)
                .args([model, batch, size, mode])
                .output()
                .with_context(|| format!("running {}", exe.display()))?;
            ensure!(
                out.status.success(),
                "amp_memory {case} {mode}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&out.stdout)
                .with_context(|| format!("amp_memory {case} {mode}: not JSON"))?;
            let m = AmpMeasurement {
                case: (
                    model.to_string(),
                    batch.parse()?,
                    size.parse()?,
                    mode.clone(),
                ),
                params: v["params"].as_u64().unwrap_or(0),
                resident_bytes: v["resident_bytes"].as_u64().unwrap_or(0),
                step_peak_bytes: v["step_peak_bytes"].as_u64().unwrap_or(0),
                step_seconds: v["step_seconds"].as_f64().unwrap_or(f64::NAN),
            };
            if mode == "f32" {
                f32_row = Some((m.step_peak_bytes, m.step_seconds));
            }
            let mb = |b: u64| b as f64 / 1e6;
            let (peak_ratio, time_ratio) = match f32_row {
                Some((p, t)) => (
                    format!("{:.2}", m.step_peak_bytes as f64 / p as f64),
                    format!("{:.2}", m.step_seconds / t),
                ),
                None => ("-".into(), "-".into()),
            };
            // Parameters: f32 masters (4 bytes each) in every mode but the pure low ones;
            // autocast adds transient 2-byte casts of the weights inside the step.
            let param_bytes = if mode == "f16" || mode == "bf16" {
                2 * m.params
            } else {
                4 * m.params
            };
            println!(
                "{:<10} {:>5} {:>4} {:<9} {:>11.1} {:>9.1}M {:>11.1}M {:>8} {:>9.3} {:>7}",
                model,
                batch,
                size,
                mode,
                mb(param_bytes),
                mb(m.resident_bytes),
                mb(m.step_peak_bytes),
                peak_ratio,
                m.step_seconds,
                time_ratio
            );
            rows.push(m);
        }
    }
    Ok(rows)
}
