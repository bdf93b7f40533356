//! `cargo xtask bench zoo`: forward and training-step throughput of zoo models on Flex and,
//! in the same run, of the same torchvision models in PyTorch on CPU with the same threads and
//! shapes (`tests/fixtures/zoo/bench_torch.py`); and the peak RSS of one training step of a
//! model on both sides, each in a fresh process.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};
use kindling::finetune::{ModelOptions, ZooModel, create_model};
use serde_json::Value;

use super::{median, run_torch_script, set_threads};

/// Flags of `cargo xtask bench zoo`.
#[derive(Debug, Clone, clap::Args)]
pub struct ZooBenchArgs {
    /// Threads for both sides
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Batch size
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Image side
    #[arg(long, default_value_t = 224)]
    pub size: usize,
    /// Timed runs per measurement (median) after one warm-up
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Models to time
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "resnet18,resnet50,mobilenet_v3_small,efficientnet_b0,convnext_tiny"
    )]
    pub models: Vec<String>,
    /// Model whose training-step peak RSS is measured on both sides ("" to skip)
    #[arg(long, default_value = "resnet50")]
    pub rss_model: String,
    /// Skip the PyTorch side
    #[arg(long)]
    pub no_reference: bool,
    /// Internal: run one training step of this model and print the peak RSS
    #[arg(long, hide = true)]
    pub rss_probe: Option<String>,
}

fn timed(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    median(
        (0..repeats)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect(),
    )
}

fn train_step(model: ZooModel, x: &Tensor<4>, y: &Tensor<1, Int>, device: &Device) -> ZooModel {
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(model.forward(x.clone()), y.clone());
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    SgdConfig::new().init().step(0.01, model, grads)
}

fn inputs(args: &ZooBenchArgs, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let x = Tensor::<4>::random(
        [args.batch, 3, args.size, args.size],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let y = Tensor::<1, Int>::arange(0..args.batch as i64, device);
    (x, y)
}

fn peak_rss_kib() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}

/// Runs `bench_torch.py` with the shared shape flags plus `extra`; its JSON output.
fn run_torch(args: &ZooBenchArgs, extra: &[&str]) -> Result<Value> {
    let mut all: Vec<String> = [
        ("--threads", args.threads),
        ("--batch", args.batch),
        ("--size", args.size),
    ]
    .iter()
    .flat_map(|(flag, v)| [flag.to_string(), v.to_string()])
    .collect();
    all.extend(extra.iter().map(|e| e.to_string()));
    run_torch_script("tests/fixtures/zoo/bench_torch.py", &all)
}

/// Runs the bench (or, with `--rss-probe`, one measured training step).
pub fn run(args: &ZooBenchArgs) -> Result<()> {
    set_threads(args.threads)?;
    let device = Device::flex().autodiff();
    if let Some(name) = &args.rss_probe {
        let model = create_model(name, ModelOptions::default(), &device)?;
        let (x, y) = inputs(args, &device);
        let _ = train_step(model, &x, &y, &device);
        println!("{}", peak_rss_kib()?);
        return Ok(());
    }
    let mut rows = Vec::new();
    for name in &args.models {
        eprintln!("bench zoo: {name} on Flex");
        let mut model = Some(create_model(name, ModelOptions::default(), &device)?);
        let (x, y) = inputs(args, &device);
        let eval = model.as_ref().context("model")?.valid();
        let xv = x.clone().inner();
        let fwd = timed(args.repeats, || {
            let _ = eval.forward(xv.clone()).into_data();
        });
        let train = timed(args.repeats, || {
            let m = model.take().expect("model between steps");
            model = Some(train_step(m, &x, &y, &device));
        });
        rows.push((name.clone(), fwd, train));
    }
    let reference: Option<Value> = if args.no_reference {
        None
    } else {
        eprintln!("bench zoo: timing PyTorch");
        Some(run_torch(
            args,
            &[
                "--repeats",
                &args.repeats.to_string(),
                "--models",
                &args.models.join(","),
            ],
        )?)
    };
    let b = args.batch as f64;
    println!(
        "batch {} × 3 × {}², {} threads, median of {} (ms; img/s; ratio = PyTorch time / Flex time)",
        args.batch, args.size, args.threads, args.repeats
    );
    println!(
        "{:<20} {:>10} {:>8} {:>10} {:>7} | {:>10} {:>8} {:>10} {:>7}",
        "model",
        "fwd Flex",
        "img/s",
        "fwd torch",
        "ratio",
        "step Flex",
        "img/s",
        "step torch",
        "ratio"
    );
    for (name, fwd, train) in &rows {
        let r = |what: &str| reference.as_ref().and_then(|v| v[what][name].as_f64());
        let (tf, tt) = (r("forward_ms"), r("train_ms"));
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        let ratio =
            |t: Option<f64>, ours: f64| t.map_or("-".to_string(), |t| format!("{:.2}", t / ours));
        println!(
            "{name:<20} {fwd:>10.1} {:>8.1} {:>10} {:>7} | {train:>10.1} {:>8.1} {:>10} {:>7}",
            b / fwd * 1000.0,
            show(tf),
            ratio(tf, *fwd),
            b / train * 1000.0,
            show(tt),
            ratio(tt, *train),
        );
    }
    if !args.rss_model.is_empty() {
        let exe = std::env::current_exe().context("own executable")?;
        let out = Command::new(exe)
            .args(["bench", "zoo", "--rss-probe", &args.rss_model])
            .args(["--threads", &args.threads.to_string()])
            .args([
                "--batch",
                &args.batch.to_string(),
                "--size",
                &args.size.to_string(),
            ])
            .output()
            .context("running the RSS probe")?;
        ensure!(
            out.status.success(),
            "RSS probe failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ours: f64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .context("probe output")?;
        let theirs = if args.no_reference {
            None
        } else {
            let v = run_torch(args, &["--rss-model", &args.rss_model])?;
            v["peak_rss_kib"].as_f64()
        };
        println!(
            "peak RSS of one {} training step: Flex {:.0} MiB, PyTorch {} (ratio Flex / PyTorch {})",
            args.rss_model,
            ours / 1024.0,
            theirs.map_or("-".into(), |t| format!("{:.0} MiB", t / 1024.0)),
            theirs.map_or("-".into(), |t| format!("{:.2}", ours / t)),
        );
    }
    Ok(())
}
