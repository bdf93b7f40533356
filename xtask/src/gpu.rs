//! `cargo xtask check-gpu`: the smoke test on real accelerators (and, with `--amp`, a timed
//! resnet50 step in f32 and under autocast), and `cargo xtask gpu-bundle`: the same check as
//! prebuilt binaries for a GPU machine that has no Rust toolchain and no network.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kindling::{DeviceSpec, Precision};
use serde_json::Value;

use crate::checks::{target_dir, workspace_root};

/// Options of `check-gpu`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckGpuArgs {
    /// Devices to test (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "wgpu,cuda")]
    pub devices: Vec<DeviceSpec>,
    /// Dtypes to test on each device (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "f32,f16")]
    pub dtypes: Vec<Precision>,
    /// Smoke steps per run
    #[arg(long, default_value_t = 6)]
    pub steps: usize,
    /// Also the smoke test under f16 autocast, and a training step of `--model` in f32 and
    /// under f16 and bf16 autocast on each device: its time and the GPU memory it held
    #[arg(long)]
    pub amp: bool,
    /// The zoo model `--amp` times
    #[arg(long, default_value = "resnet50")]
    pub model: String,
    /// The batch `--amp` times
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// The image side `--amp` times
    #[arg(long, default_value_t = 224)]
    pub image_size: usize,
    /// Timed steps per mode (after two warm-up steps that compile the kernels)
    #[arg(long, default_value_t = 5)]
    pub timed_steps: usize,
    /// With `--amp`: the same step in PyTorch on CUDA (torchvision's model,
    /// `torch.autocast("cuda")`, `GradScaler`) in the same run, timed and measured the same way
    #[arg(long)]
    pub reference: bool,
    /// Python with torch and torchvision for `--reference`
    #[arg(long, env = "KINDLING_TORCH_PYTHON", default_value = "python3")]
    pub python: PathBuf,
    /// Run the binaries beside this one (from `cargo xtask gpu-bundle`) instead of building
    /// with cargo: for a GPU machine without Rust
    #[arg(long)]
    pub prebuilt: bool,
}

/// How the smoke test and the `amp_memory` probe are started.
enum Binaries {
    /// `cargo run --release` with these features.
    Cargo(String),
    /// This executable and the `amp_memory` beside it.
    Prebuilt(PathBuf),
}

impl Binaries {
    fn xtask(&self) -> Result<Command> {
        Ok(match self {
            Binaries::Cargo(features) => {
                let mut cmd = cargo();
                cmd.args([
                    "run",
                    "--release",
                    "-p",
                    "xtask",
                    "--features",
                    features,
                    "--",
                ]);
                cmd
            }
            Binaries::Prebuilt(_) => {
                Command::new(std::env::current_exe().context("locating the xtask binary")?)
            }
        })
    }

    fn amp_memory(&self) -> Result<PathBuf> {
        match self {
            Binaries::Cargo(features) => {
                let status = cargo()
                    .args(["build", "--release", "-p", "xtask", "--bin", "amp_memory"])
                    .args(["--features", features])
                    .status()
                    .context("running cargo")?;
                ensure!(status.success(), "building amp_memory failed");
                Ok(target_dir().join("release").join("amp_memory"))
            }
            Binaries::Prebuilt(dir) => {
                let exe = dir.join("amp_memory");
                ensure!(
                    exe.is_file(),
                    "{} is missing: make the bundle with `cargo xtask gpu-bundle`",
                    exe.display()
                );
                Ok(exe)
            }
        }
    }
}

/// Runs the smoke test on each device and dtype (and with `--amp`, the timed steps).
pub fn check_gpu(args: &CheckGpuArgs) -> Result<()> {
    let binaries = if args.prebuilt {
        let exe = std::env::current_exe().context("locating the xtask binary")?;
        Binaries::Prebuilt(exe.parent().map(Path::to_path_buf).unwrap_or_default())
    } else {
        Binaries::Cargo(features(&args.devices))
    };
    let mut failures = Vec::new();
    let mut runs: Vec<(String, &str)> =
        args.dtypes.iter().map(|d| (d.to_string(), "off")).collect();
    if args.amp {
        runs.push(("f32".into(), "f16"));
    }
    for device in &args.devices {
        for (dtype, amp) in &runs {
            let status = binaries
                .xtask()?
                .args(["smoke", "--device", &device.to_string()])
                .args(["--dtype", dtype, "--amp", amp, "--steps"])
                .arg(args.steps.to_string())
                .status()
                .context("running the smoke test")?;
            // A crash in the driver leaves no message of the run's own: say how it ended.
            let verdict = if status.success() {
                "ok".to_string()
            } else {
                format!("FAILED ({status})")
            };
            eprintln!("check-gpu: {device} {dtype} amp {amp}: {verdict}");
            if !status.success() {
                failures.push(format!("{device} {dtype} amp {amp}"));
            }
        }
        if args.amp {
            amp_step_times(args, &binaries.amp_memory()?, device)?;
        }
    }
    ensure!(
        failures.is_empty(),
        "smoke test failed on: {}",
        failures.join(", ")
    );
    Ok(())
}

/// The cargo features that compile in `devices`.
fn features(devices: &[DeviceSpec]) -> String {
    let mut features: Vec<&str> = devices.iter().map(|d| d.feature()).collect();
    features.sort();
    features.dedup();
    features.join(",")
}

/// One timed mode: seconds per step and the GPU memory the process held at its peak.
#[derive(Debug, Clone, Copy)]
struct Timed {
    seconds: f64,
    gpu_peak_mib: Option<f64>,
}

/// `--model` at `--batch` and `--image-size`, in f32 and under f16 and bf16 autocast on `device`, and with
/// `--reference` the same in PyTorch: step time and peak GPU memory, with the ratios to f32
/// the issue's GPU goal is stated in (≥ 1.8× f32 speed, ≤ 0.6× memory).
fn amp_step_times(args: &CheckGpuArgs, probe: &Path, device: &DeviceSpec) -> Result<()> {
    let (model, steps) = (&args.model, args.timed_steps);
    let (batch, size) = (args.batch.to_string(), args.image_size.to_string());
    let script = workspace_root().join("tests/fixtures/precision/bench_amp_torch.py");
    // PyTorch on this machine's GPU: the same card wgpu and vulkan run on, on NVIDIA.
    let torch = args.reference && !matches!(device, DeviceSpec::Flex | DeviceSpec::Tch);
    let mut base: [Option<Timed>; 2] = [None, None];
    for mode in ["f32", "amp-f16", "amp-bf16"] {
        let mut sides = vec![("kindling", {
            let mut cmd = Command::new(probe);
            cmd.args([model, &batch, &size, mode, &device.to_string()])
                .arg(steps.to_string());
            cmd
        })];
        if torch {
            let mut cmd = Command::new(&args.python);
            cmd.arg(&script)
                .args([model, &batch, &size, mode, "16", "cuda"])
                .arg(steps.to_string());
            sides.push(("torch", cmd));
        }
        for (side, (name, cmd)) in sides.into_iter().enumerate() {
            let label = format!("check-gpu: {device} {model} batch {batch} {size}² {mode} {name}");
            let timed = match timed_run(cmd) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("{label}: {e:#}");
                    continue;
                }
            };
            let f32_run = base[side].get_or_insert(timed);
            let memory = match (timed.gpu_peak_mib, f32_run.gpu_peak_mib) {
                (Some(m), Some(b)) => format!("{m:.0} MiB GPU ({:.2}× f32)", m / b),
                (Some(m), None) => format!("{m:.0} MiB GPU"),
                _ => "GPU memory not read (no nvidia-smi)".into(),
            };
            eprintln!(
                "{label}: {:.4} s/step ({:.2}× f32 speed), {memory}",
                timed.seconds,
                f32_run.seconds / timed.seconds
            );
        }
    }
    Ok(())
}

/// Runs a probe that prints one JSON object with `step_seconds`, sampling the GPU's used
/// memory meanwhile: the peak above what was used before it started (Burn's and PyTorch's
/// caching allocators both keep what they reserved, so this is the reserved peak, context
/// included, measured the same way for both sides).
fn timed_run(mut cmd: Command) -> Result<Timed> {
    let idle = gpu_memory_used_mib();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let (out, peak) = sample_while(child, gpu_memory_used_mib)?;
    if !out.status.success() {
        // A panic's first line says where and why; the backtrace that follows does not. A
        // Python traceback says why on its last line.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr
            .lines()
            .skip_while(|l| !l.contains("panicked at"))
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        let why = if why.is_empty() {
            last.unwrap_or_default().trim()
        } else {
            &why
        };
        match why {
            "" => anyhow::bail!("exited with {}", out.status),
            why => anyhow::bail!("{why} ({})", out.status),
        }
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("reading the probe's JSON")?;
    let seconds = v["step_seconds"]
        .as_f64()
        .context("the probe printed no step_seconds")?;
    Ok(Timed {
        seconds,
        gpu_peak_mib: peak.zip(idle).map(|(p, i)| (p - i).max(0.0)),
    })
}

/// Waits for `child`, calling `sample` every 50 ms meanwhile; returns its output and the
/// largest sample.
fn sample_while(
    child: Child,
    sample: fn() -> Option<f64>,
) -> Result<(std::process::Output, Option<f64>)> {
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(Mutex::new(None::<f64>));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(v) = sample() {
                    let mut p = peak.lock().unwrap_or_else(|e| e.into_inner());
                    *p = Some(p.map_or(v, |p: f64| p.max(v)));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let out = child.wait_with_output().context("waiting for the probe");
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let peak = *peak.lock().unwrap_or_else(|e| e.into_inner());
    Ok((out?, peak))
}

/// GPU 0's used memory in MiB from `nvidia-smi`, `None` where there is none.
fn gpu_memory_used_mib() -> Option<f64> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.used",
            "--format=csv,noheader,nounits",
            "-i",
            "0",
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(())?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Options of `gpu-bundle`.
#[derive(Debug, Clone, clap::Args)]
pub struct GpuBundleArgs {
    /// Devices compiled in (their cargo features). Not `cuda` by default: Burn 0.22.1's CUDA
    /// backend (cubecl-cuda → cubecl-llvm) downloads an LLVM bundle from GitHub while it
    /// builds, which fails on a machine that reaches only the crate registry. Not `vulkan` by
    /// default: Burn's `vulkan` feature sends the `wgpu` device through cubecl's SPIR-V compiler
    /// too, so a `wgpu,vulkan` bundle (30 MiB) has no WGSL path left, and lavapipe crashes
    /// compiling its kernels (measured with Mesa 25.0.7): nothing here can check it
    #[arg(long, value_delimiter = ',', default_value = "wgpu")]
    pub devices: Vec<DeviceSpec>,
    /// Folder to write `xtask.xz`, `amp_memory.xz`, the Vulkan loader (`gl/`) and `run.sh` into (relative to the workspace;
    /// `.gpu` is ignored by git, so a device run can carry it)
    #[arg(long, default_value = ".gpu")]
    pub out: PathBuf,
}

/// The most a device run carries (the working tree included).
const CARRY_LIMIT: u64 = 64 << 20;

/// Builds `xtask` and `amp_memory` with the devices' features (the dev profile: dependencies
/// optimised, no second Burn build for a release profile), strips and compresses them into
/// `--out`, with the Vulkan loader package and `run.sh`: the script that unpacks them and runs
/// the check there.
pub fn gpu_bundle(args: &GpuBundleArgs) -> Result<()> {
    let root = workspace_root();
    let features = features(&args.devices);
    let status = cargo()
        .args(["build", "-p", "xtask", "--bins", "--features", &features])
        .current_dir(&root)
        .status()
        .context("running cargo")?;
    ensure!(status.success(), "building the bundle failed");
    let out = root.join(&args.out);
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut total = 0;
    for bin in ["xtask", "amp_memory"] {
        let from = target_dir().join("debug").join(bin);
        let stripped = out.join(bin);
        // `strip` and `xz` rather than a profile with `strip = true`: another profile would
        // build Burn a second time. Stripped, the two are ~170 MB; xz makes them ~30.
        run_tool(
            Command::new("strip")
                .arg("--strip-all")
                .arg(&from)
                .arg("-o")
                .arg(&stripped),
        )?;
        run_tool(Command::new("xz").args(["-T2", "-6", "-f"]).arg(&stripped))?;
        total += std::fs::metadata(out.join(format!("{bin}.xz")))?.len();
    }
    let loaders = match vulkan_loaders(&out.join("gl")) {
        Ok(n) => n,
        Err(e) => {
            eprintln!(
                "gpu-bundle: no Vulkan loader packages ({e:#}); bring libvulkan1 where the GPU \
                 machine has none (`ldconfig -p | grep libvulkan`)"
            );
            0
        }
    };
    let devices: Vec<String> = args.devices.iter().map(ToString::to_string).collect();
    let script = run_script(&git_head(&root), &features, &devices.join(","), &args.out);
    let run = out.join("run.sh");
    std::fs::write(&run, script).with_context(|| format!("writing {}", run.display()))?;
    eprintln!(
        "gpu-bundle: {} ({:.1} MiB, {loaders} loader packages; a device run carries at most {} \
         MiB with the tree); on the GPU machine, from the repository root: bash {}",
        out.display(),
        total as f64 / (1 << 20) as f64,
        CARRY_LIMIT >> 20,
        run.display()
    );
    ensure!(
        total < CARRY_LIMIT,
        "the bundle is over the carry limit: build fewer devices"
    );
    Ok(())
}

/// The script the GPU machine runs from the repository root: unpacks the binaries (Python's
/// `lzma`: the image may have no `xz`), puts the carried Vulkan loader in place where the
/// image has none and points it at the NVIDIA driver's ICD (the device notes' recipe), prints
/// the GPU, and runs the check, its log under `$OUT` when the device run has one.
fn run_script(commit: &str, features: &str, devices: &str, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"#!/usr/bin/env bash
# GPU check bundle ({features}), built by `cargo xtask gpu-bundle` at commit {commit}.
# Run it on the GPU machine in the repository root of that commit, with {dir}/ carried:
#   bash {dir}/run.sh [more check-gpu options, e.g. --batch 32]
# It needs python3 with torch and torchvision for the PyTorch reference (or set
# KINDLING_TORCH_PYTHON); wgpu needs a Vulkan loader and the driver's ICD.
set -euo pipefail
for f in {dir}/*.xz; do
  python3 -c 'import lzma, sys; open(sys.argv[1][:-3], "wb").write(lzma.open(sys.argv[1]).read())' "$f"
done
chmod +x {dir}/xtask {dir}/amp_memory
if ! ldconfig -p | grep -q libvulkan && ls {dir}/gl/*.deb >/dev/null 2>&1; then
  for f in {dir}/gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${{VK_DRIVER_FILES:-}}" ] && [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
log="${{OUT:-{dir}}}/check-gpu.log"
CARGO_MANIFEST_DIR="$PWD/xtask" {dir}/xtask check-gpu --prebuilt --devices {devices} --amp \
  --reference "$@" 2>&1 | tee "$log"
"#
    )
}

/// Downloads the Vulkan loader packages the device notes name into `dir` (amd64, with a
/// package list of their own so the host's is untouched); the number downloaded.
fn vulkan_loaders(dir: &Path) -> Result<usize> {
    let lists = std::env::temp_dir().join("kindling-apt-amd64");
    std::fs::create_dir_all(lists.join("partial"))?;
    std::fs::create_dir_all(dir)?;
    let options = [
        "-qq".to_string(),
        "-oAPT::Architecture=amd64".into(),
        "-oAPT::Architectures=amd64".into(),
        format!("-oDir::State::Lists={}", lists.display()),
    ];
    let quiet = |cmd: &mut Command| -> Result<()> {
        let out = cmd
            .output()
            .with_context(|| format!("running {:?}", cmd.get_program()))?;
        ensure!(
            out.status.success(),
            "{:?}: {}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    };
    quiet(Command::new("apt-get").args(&options).arg("update"))?;
    quiet(
        Command::new("apt-get")
            .args(&options)
            .args(["download", "libvulkan1"])
            .current_dir(dir),
    )?;
    Ok(std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "deb"))
        .count())
}

fn run_tool(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    ensure!(status.success(), "{cmd:?} failed ({status})");
    Ok(())
}

fn git_head(root: &Path) -> String {
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".into(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_string(),
        )
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_deduplicated_per_backend() {
        let devices = [DeviceSpec::Cuda(1), DeviceSpec::Wgpu, DeviceSpec::Cuda(0)];
        assert_eq!(features(&devices), "cuda,wgpu");
    }

    #[test]
    fn the_sampler_keeps_the_largest_value_while_the_child_runs() {
        // A child that runs long enough for several samples.
        let child = Command::new("sleep")
            .arg("0.3")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        fn rising() -> Option<f64> {
            Some(CALLS.fetch_add(1, Ordering::Relaxed) as f64)
        }
        let (out, peak) = sample_while(child, rising).unwrap();
        assert!(out.status.success());
        let calls = CALLS.load(Ordering::Relaxed);
        assert!(calls >= 2, "sampled {calls} times");
        assert_eq!(peak, Some((calls - 1) as f64));
    }

    #[test]
    fn the_run_script_unpacks_the_bundle_and_passes_its_options_on() {
        // A bundle of two stand-ins that print their arguments, compressed as the real ones.
        let root = std::env::temp_dir().join(format!("kindling-run-sh-{}", std::process::id()));
        let dir = root.join(".gpu");
        std::fs::create_dir_all(&dir).unwrap();
        for bin in ["xtask", "amp_memory"] {
            let packed = format!(
                "import lzma; lzma.open('{bin}.xz', 'wb').write(b'#!/bin/sh\\necho {bin} \"$@\"\\n')"
            );
            let done = Command::new("python3")
                .args(["-c", &packed])
                .current_dir(&dir)
                .status()
                .unwrap();
            assert!(done.success());
        }
        let script = run_script("abc1234", "wgpu", "wgpu", Path::new(".gpu"));
        std::fs::write(dir.join("run.sh"), script).unwrap();
        let out = Command::new("bash")
            .args([".gpu/run.sh", "--batch", "8"])
            .current_dir(&root)
            .env("OUT", &root)
            .env_remove("VK_DRIVER_FILES")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::read_to_string(root.join("check-gpu.log")).unwrap();
        assert_eq!(
            log.trim(),
            "xtask check-gpu --prebuilt --devices wgpu --amp --reference --batch 8"
        );
        assert!(dir.join("amp_memory").is_file());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
