//! `cargo xtask bench amp`: the heap one training step allocates (a counting global allocator
//! in its own binary, `amp_memory`, one process per case) and its time, in f32, under
//! autocast to f16 and bf16, and with the whole model in f16; ratios to f32.
//!
//! The PyTorch reference (`tests/fixtures/precision/bench_amp_torch.py`: the same model, batch,
//! size and mode under `torch.autocast("cpu")`, same threads) is timed in the same run. On Flex
//! (CPU) the low dtypes are not faster — f16 arithmetic is emulated — so the speed ratios are
//! reported, not goals; `cargo xtask check-gpu --amp` times the same on a GPU.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use super::torch_python;
use crate::checks::{target_dir, workspace_root};

/// PyTorch's step time for one case and mode (`None` for a mode it has no CPU equivalent of).
fn torch_step_seconds(case: [&str; 3], mode: &str, threads: usize) -> Result<Option<f64>> {
    if !matches!(mode, "f32" | "amp-f16" | "amp-bf16") {
        return Ok(None);
    }
    let script = workspace_root().join("tests/fixtures/precision/bench_amp_torch.py");
    let out = Command::new(torch_python()?)
        .arg(&script)
        .args(case)
        .args([mode, &threads.to_string()])
        .output()
        .context("running bench_amp_torch.py")?;
    ensure!(
        out.status.success(),
        "bench_amp_torch.py {case:?} {mode}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).context("reading bench_amp_torch.py")?;
    Ok(v["step_seconds"].as_f64())
}

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
    /// Threads for both sides
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Skip the PyTorch side
    #[arg(long)]
    pub no_reference: bool,
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
        "{:<10} {:>5} {:>4} {:<9} {:>11} {:>10} {:>12} {:>8} {:>9} {:>7} {:>9} {:>7}",
        "model",
        "batch",
        "size",
        "mode",
        "params MB",
        "resident",
        "step peak",
        "× f32",
        "step s",
        "× f32",
        "torch s",
        "× f32"
    );
    for case in &args.cases {
        let parts: Vec<&str> = case.split(':').collect();
        let [model, batch, size] = parts[..] else {
            anyhow::bail!("case `{case}`: expected MODEL:BATCH:SIZE");
        };
        let mut f32_row: Option<(u64, f64)> = None;
        let mut torch_f32: Option<f64> = None;
        for mode in &args.modes {
            let out = Command::new(&exe)
                .args([model, batch, size, mode])
                // Flex computes on rayon's global pool: the same threads as PyTorch.
                .env("RAYON_NUM_THREADS", args.threads.to_string())
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
            let torch = match args.no_reference {
                true => None,
                false => torch_step_seconds([model, batch, size], mode, args.threads)?,
            };
            if mode == "f32" {
                torch_f32 = torch;
            }
            let (torch_s, torch_ratio) = match (torch, torch_f32) {
                (Some(t), Some(base)) => (format!("{t:.3}"), format!("{:.2}", t / base)),
                (Some(t), None) => (format!("{t:.3}"), "-".into()),
                _ => ("-".into(), "-".into()),
            };
            println!(
                "{:<10} {:>5} {:>4} {:<9} {:>11.1} {:>9.1}M {:>11.1}M {:>8} {:>9.3} {:>7} {:>9} {:>7}",
                model,
                batch,
                size,
                mode,
                mb(param_bytes),
                mb(m.resident_bytes),
                mb(m.step_peak_bytes),
                peak_ratio,
                m.step_seconds,
                time_ratio,
                torch_s,
                torch_ratio
            );
            rows.push(m);
        }
    }
    Ok(rows)
}
