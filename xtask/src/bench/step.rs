//! `cargo xtask bench step`: milliseconds per training step (forward, cross-entropy, backward,
//! SGD update) of Kindling's models on Flex and, in the same run, of the same models in PyTorch
//! on CPU with the same threads and shapes (`benches/step/bench_torch.py`).
//!
//! Besides the time it prints img/s, GFLOP/s and the share of this CPU's peak. A step's FLOPs
//! are counted the usual way, 3 × 2 × the forward pass's multiply-accumulates (forward, data
//! gradient and weight gradient each cost about one forward); the peak is cores × f32 lanes ×
//! 2 FMA units × 2 FLOPs per FMA × clock, read from `lscpu` and `/proc/cpuinfo`.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};
use kindling::finetune::{ModelOptions, create_model};
use kindling::losses::CrossEntropyLossConfig;
use kindling::nn::flops::count_macs;
use kindling::train::tasks::classify::SmallCnnConfig;
use kindling::train::tasks::segment::UNetConfig;
use serde_json::Value;

use super::{median, run_torch_script};

/// The benchmarked models: name, batch, image side, classes. `benches/step/bench_torch.py`
/// builds the same ones under the same names.
const MODELS: &[(&str, usize, usize, usize)] = &[
    // The classify task's defaults: widths 16/32/64 at 32², batches of 32.
    ("classify", 32, 32, 5),
    // Four conv blocks (32/64/128/256) at 64², the size the issue names.
    ("cnn4", 32, 64, 10),
    // The segment task's U-Net (16/32/64, bottleneck 128) at its default 48², batches of 8.
    ("segment", 8, 48, 3),
    ("resnet18", 8, 224, 1000),
    ("mobilenet_v3_small", 8, 224, 1000),
];

/// Flags of `cargo xtask bench step`.
#[derive(Debug, Clone, clap::Args)]
pub struct StepBenchArgs {
    /// Threads for both sides (rayon for Flex, torch.set_num_threads for PyTorch)
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Timed steps per model (median reported) after two warm-up steps
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Models to time (classify, cnn4, segment, resnet18, mobilenet_v3_small)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "classify,cnn4,segment,resnet18,mobilenet_v3_small"
    )]
    pub models: Vec<String>,
    /// Skip the PyTorch side
    #[arg(long)]
    pub no_reference: bool,
}

/// One model's result on Flex.
struct Row {
    name: String,
    batch: usize,
    ms: f64,
    macs: u64,
}

/// Times `repeats` SGD steps of `model` (after two warm-up steps); the median in ms and the
/// forward pass's multiply-accumulates.
fn time_steps<M, const D: usize, const T: usize>(
    model: M,
    forward: impl Fn(&M, Tensor<4>) -> Tensor<D>,
    x: Tensor<4>,
    y: Tensor<T, Int>,
    repeats: usize,
    device: &Device,
) -> Result<(f64, u64)>
where
    M: Module,
{
    let loss = CrossEntropyLossConfig::new().try_init(device)?;
    let mut optim = SgdConfig::new().init();
    let mut model = Some(model);
    let mut macs = 0;
    let mut samples = Vec::with_capacity(repeats);
    for i in 0..repeats + 2 {
        let m = model.take().context("model between steps")?;
        let start = Instant::now();
        let (logits, counted) = count_macs(|| forward(&m, x.clone()));
        let value = loss.try_forward(logits, y.clone())?;
        let grads = GradientsParams::from_grads(value.backward(), &m);
        let m = optim.step(0.01, m, grads);
        // Wait for the step's results, as PyTorch's eager step does.
        let _ = value.into_scalar::<f32>();
        if i >= 2 {
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        macs = counted;
        model = Some(m);
    }
    Ok((median(samples), macs))
}

fn bench_model(name: &str, repeats: usize, device: &Device) -> Result<Row> {
    let Some(&(_, batch, size, classes)) = MODELS.iter().find(|m| m.0 == name) else {
        let names: Vec<&str> = MODELS.iter().map(|m| m.0).collect();
        bail!(
            "unknown model `{name}` for bench step; known: {}",
            names.join(", ")
        );
    };
    let x = Tensor::<4>::random(
        [batch, 3, size, size],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let labels = |shape: &[usize]| {
        let n: usize = shape.iter().product();
        Tensor::<1, Int>::arange(0..n as i64, device).remainder_scalar(classes as i64)
    };
    let (ms, macs) = match name {
        "classify" | "cnn4" => {
            let widths = if name == "classify" {
                vec![16, 32, 64]
            } else {
                vec![32, 64, 128, 256]
            };
            let model = SmallCnnConfig::new(classes)
                .with_widths(widths)
                .init(device);
            time_steps(
                model,
                |m, x| m.forward(x),
                x,
                labels(&[batch]),
                repeats,
                device,
            )?
        }
        "segment" => {
            let model = UNetConfig::new(classes).init(device);
            let y = labels(&[batch, size, size]).reshape([batch, size, size]);
            time_steps(model, |m, x| m.forward(x), x, y, repeats, device)?
        }
        zoo => {
            let model = create_model(zoo, ModelOptions::default(), device)?;
            time_steps(
                model,
                |m, x| m.forward(x),
                x,
                labels(&[batch]),
                repeats,
                device,
            )?
        }
    };
    Ok(Row {
        name: name.to_string(),
        batch,
        ms,
        macs,
    })
}

/// This CPU's f32 peak in GFLOP/s and how it was derived.
fn cpu_peak(threads: usize) -> (Option<f64>, String) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .unwrap_or_default();
    let lanes = if flags.split_whitespace().any(|f| f == "avx512f") {
        16.0
    } else if flags.split_whitespace().any(|f| f == "avx2") {
        8.0
    } else {
        4.0
    };
    // The base clock: lscpu's "CPU max MHz", else the model name's "@ x.xGHz", else cpuinfo's
    // current "cpu MHz" (a VM often reports only this one).
    let lscpu = Command::new("lscpu")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let field = |text: &str, key: &str| -> Option<f64> {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .and_then(|l| l.split(':').nth(1))
            .and_then(|v| v.trim().parse().ok())
    };
    let mhz = field(&lscpu, "CPU max MHz").or_else(|| field(&cpuinfo, "cpu MHz"));
    let cores = threads.min(std::thread::available_parallelism().map_or(1, |n| n.get()));
    match mhz {
        Some(mhz) => {
            let peak = cores as f64 * lanes * 2.0 * 2.0 * mhz / 1000.0;
            (
                Some(peak),
                format!(
                    "peak {peak:.0} GFLOP/s = {cores} cores × {lanes} f32 lanes × 2 FMA units × 2 × {:.2} GHz",
                    mhz / 1000.0
                ),
            )
        }
        None => (
            None,
            "peak unknown (no clock in lscpu or /proc/cpuinfo)".into(),
        ),
    }
}

fn run_torch(args: &StepBenchArgs) -> Result<Value> {
    run_torch_script(
        "benches/step/bench_torch.py",
        &[
            "--threads".into(),
            args.threads.to_string(),
            "--repeats".into(),
            args.repeats.to_string(),
            "--models".into(),
            args.models.join(","),
        ],
    )
}

/// Runs the bench and prints one row per model.
pub fn run(args: &StepBenchArgs) -> Result<()> {
    // The calling thread is one of the pool's threads, as in PyTorch's intra-op pool; it also
    // lets a profile see which operation each kernel ran for (a worker's stack stops at rayon).
    rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .use_current_thread()
        .build_global()
        .context("sizing the rayon thread pool (it was already started)")?;
    kindling::keep_freed_memory();
    let device = Device::flex().autodiff();
    let mut rows = Vec::new();
    for name in &args.models {
        eprintln!("bench step: {name} on Flex");
        rows.push(bench_model(name, args.repeats, &device)?);
    }
    let reference = if args.no_reference {
        None
    } else {
        eprintln!("bench step: timing PyTorch");
        Some(run_torch(args)?)
    };
    let (peak, peak_note) = cpu_peak(args.threads);
    if let Some(v) = &reference {
        println!("PyTorch {}", v["torch"].as_str().unwrap_or("?"));
    }
    println!(
        "training step, {} threads, median of {} after 2 warm-ups; {peak_note}",
        args.threads, args.repeats
    );
    println!("ratio = Flex time / PyTorch time (lower is better; 1 = parity)");
    println!(
        "{:<20} {:>10} {:>8} {:>8} {:>6} | {:>10} {:>8} {:>8} {:>6} | {:>6}",
        "model",
        "Flex ms",
        "img/s",
        "GFLOP/s",
        "%peak",
        "torch ms",
        "img/s",
        "GFLOP/s",
        "%peak",
        "ratio"
    );
    for row in &rows {
        let gflop = 6.0 * row.macs as f64 / 1e9;
        let cells = |ms: f64| {
            let gflops = gflop / (ms / 1000.0);
            let share = peak.map_or("-".to_string(), |p| format!("{:.1}", 100.0 * gflops / p));
            format!(
                "{ms:>10.1} {:>8.1} {gflops:>8.1} {share:>6}",
                row.batch as f64 / ms * 1000.0
            )
        };
        let torch = reference
            .as_ref()
            .and_then(|v| v["train_ms"][&row.name].as_f64());
        println!(
            "{:<20} {} | {} | {:>6}",
            row.name,
            cells(row.ms),
            torch.map_or(
                format!("{:>10} {:>8} {:>8} {:>6}", "-", "-", "-", "-"),
                cells
            ),
            torch.map_or("-".to_string(), |t| format!("{:.2}", row.ms / t)),
        );
    }
    Ok(())
}
