//! `cargo xtask check-tch` (the smoke test on libtorch, built with its feature) and `cargo
//! xtask test`; `check-gpu` is in [`crate::gpu`].

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// Creates `target/tch-venv` with PyPI's torch 2.9.0 (what tch 0.22 links against) and runs
/// the smoke test on `Device::libtorch()`.
pub fn check_tch() -> Result<()> {
    let python = ensure_torch_venv()?;
    let venv = target_dir().join("tch-venv");
    let has_torch = Command::new(&python)
        .args([
            "-c",
            "import torch; assert torch.__version__.startswith('2.9.0')",
        ])
        .status()
        .is_ok_and(|s| s.success());
    ensure!(has_torch, "torch 2.9.0 is missing from {}", venv.display());
    let out = Command::new(&python)
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))",
        ])
        .output()
        .context("asking torch for its library directory")?;
    ensure!(out.status.success(), "python could not import torch");
    let torch_lib = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ld = match std::env::var("LD_LIBRARY_PATH") {
        Ok(old) if !old.is_empty() => format!("{torch_lib}:{old}"),
        _ => torch_lib,
    };
    run(cargo()
        .args(["run", "--release", "-p", "xtask", "--features", "tch", "--"])
        .args(["smoke", "--device", "tch", "--dtype", "f32"])
        .env("LIBTORCH_USE_PYTORCH", "1")
        .env("PATH", path)
        .env("LD_LIBRARY_PATH", ld))
}

/// `$CARGO_TARGET_DIR/tch-venv` with PyPI's torch 2.9.0, created on first use; returns its
/// `python3`.
pub fn ensure_torch_venv() -> Result<PathBuf> {
    let venv = target_dir().join("tch-venv");
    let python = venv.join("bin").join("python3");
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let has_torch = Command::new(&python)
        .args([
            "-c",
            "import torch; assert torch.__version__.startswith('2.9.0')",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !has_torch {
        eprintln!("installing torch==2.9.0 into {} (~3 GB)", venv.display());
        run(Command::new(&python).args(["-m", "pip", "install", "--quiet", "torch==2.9.0"]))?;
    }
    Ok(python)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The shared cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    // Cargo sets the variable at run time too; preferring it keeps a binary that another
    // checkout sharing the target dir built pointing at this checkout's files.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    if !status.success() {
        bail!("{:?} failed ({status})", cmd.get_program());
    }
    Ok(())
}

/// Options of `cargo xtask test`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// Skip `cargo fmt --check` and `cargo clippy`
    #[arg(long)]
    pub no_lint: bool,
}

/// Examples run by `cargo xtask test`, with their arguments (relative to the workspace root).
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "hyperparameters",
        &["--config", "examples/hyperparameters.toml", "--lr", "0.1"],
    ),
    ("schedulers", &[]),
    ("custom_loss", &[]),
    ("augment", &[]),
    ("train_custom", &[]),
    ("finetune", &[]),
    ("own_architecture", &[]),
    ("mixed_precision", &[]),
];

/// The project's test command: formatting, lints, every test on Flex, and the examples.
pub fn test_all(args: &TestArgs) -> Result<()> {
    let root = workspace_root();
    let mut steps: Vec<Vec<&str>> = Vec::new();
    if !args.no_lint {
        steps.push(vec!["fmt", "--all", "--", "--check"]);
        steps.push(vec![
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]);
    }
    // `cargo test` also builds the examples, with the workspace's unified features; running
    // those binaries (rather than `cargo run -p kindling --example`, which resolves features
    // for one package) avoids compiling Burn a second time.
    steps.push(vec!["test", "--workspace"]);
    for step in steps {
        let started = std::time::Instant::now();
        eprintln!("xtask test: cargo {}", step.join(" "));
        run(cargo().args(&step).current_dir(&root))?;
        eprintln!(
            "xtask test: cargo {} passed in {:.0}s",
            step[0],
            started.elapsed().as_secs_f64()
        );
    }
    for (example, args) in EXAMPLES {
        let exe = target_dir().join("debug").join("examples").join(example);
        eprintln!("xtask test: example {example} {}", args.join(" "));
        run(Command::new(&exe).args(*args).current_dir(&root))?;
    }
    Ok(())
}
