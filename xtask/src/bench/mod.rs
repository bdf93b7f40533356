//! `cargo xtask bench …`: our implementation and the Python reference, side by side in one
//! run, with the ratio printed.

pub mod amp;
pub mod augment;
pub mod losses;
pub mod step;
pub mod zoo;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use serde_json::Value;

/// Median of `samples` (milliseconds).
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// Sizes the global rayon pool, which Flex computes on; must run before any tensor op.
pub fn set_threads(threads: usize) -> Result<()> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .context("sizing the rayon thread pool (it was already started)")
}

/// The venv with torch 2.9.0, torchvision 0.24.0 and segmentation_models_pytorch 0.6.0 that
/// the loss fixtures were made with: `$CARGO_TARGET_DIR/tch-venv` (shared with `check-tch`),
/// created and filled on first use.
///
/// `KINDLING_TORCH_PYTHON` points at another interpreter with those packages instead.
pub fn torch_python() -> Result<PathBuf> {
    if let Some(python) = std::env::var_os("KINDLING_TORCH_PYTHON") {
        let python = PathBuf::from(python);
        ensure!(
            python.is_file(),
            "KINDLING_TORCH_PYTHON={} is not a file; unset it to let the bench build its own venv",
            python.display()
        );
        return Ok(python);
    }
    let python = crate::checks::ensure_torch_venv()?;
    let ok = Command::new(&python)
        .args([
            "-c",
            "import torchvision, segmentation_models_pytorch as smp; \
             assert torchvision.__version__.startswith('0.24.0') and smp.__version__ == '0.6.0'",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("bench: installing torchvision 0.24.0 and segmentation-models-pytorch 0.6.0");
        let status = Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(["torchvision==0.24.0", "segmentation-models-pytorch==0.6.0"])
            .status()
            .context("running pip")?;
        ensure!(
            status.success(),
            "pip could not install the reference packages"
        );
    }
    Ok(python)
}

/// Runs the PyTorch reference `script` (a path from the workspace root) with `args` in the
/// torch venv; its stdout parsed as one JSON object.
pub fn run_torch_script(script: &str, args: &[String]) -> Result<Value> {
    let python = torch_python()?;
    let script = crate::checks::workspace_root().join(script);
    let out = Command::new(&python)
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {} with {}", script.display(), python.display()))?;
    ensure!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading {}'s JSON", script.display()))
}
