//! `cargo xtask bench losses`: forward + backward of every loss on `[16, 4, 256, 256]` logits,
//! on Flex and — in the same run — PyTorch on CPU with the same thread count.
//!
//! Both sides use the same options (`tests/fixtures/losses/bench_torch.py` lists them):
//! multiclass mode with class-index targets for the segmentation losses, 0/1 masks for the
//! binary ones, and report the median of `--repeats` runs after one warm-up.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::tensor::{Distribution, Int, Tensor};
use kindling::losses::LossConfig;

use super::{median, run_torch_script, set_threads};

/// Flags of `cargo xtask bench losses`.
#[derive(Debug, Clone, clap::Args)]
pub struct LossBenchArgs {
    /// Threads for both sides (rayon for Flex, torch.set_num_threads for PyTorch)
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Timed runs per loss (median reported) after one warm-up
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Logits shape N,C,H,W
    #[arg(long, default_value = "16,4,256,256", value_parser = parse_shape)]
    pub shape: [usize; 4],
    /// Comma-separated subset of the losses
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Skip the PyTorch side
    #[arg(long)]
    pub no_reference: bool,
}

fn parse_shape(s: &str) -> Result<[usize; 4], String> {
    let dims: Vec<usize> = s
        .split(',')
        .map(|d| {
            d.trim()
                .parse()
                .map_err(|_| format!("`{d}` is not a dimension"))
        })
        .collect::<Result<_, _>>()?;
    dims.try_into()
        .map_err(|_| format!("expected N,C,H,W, got `{s}`"))
}

/// The losses and their options, as in `bench_torch.py`; `true` = class-index targets.
const LOSSES: &[(&str, &str, bool)] = &[
    ("dice", r#"{"name": "dice", "mode": "multiclass"}"#, true),
    (
        "jaccard",
        r#"{"name": "jaccard", "mode": "multiclass"}"#,
        true,
    ),
    (
        "tversky",
        r#"{"name": "tversky", "mode": "multiclass"}"#,
        true,
    ),
    ("focal", r#"{"name": "focal", "mode": "multiclass"}"#, true),
    (
        "lovasz",
        r#"{"name": "lovasz", "mode": "multiclass"}"#,
        true,
    ),
    ("soft_bce", r#"{"name": "soft_bce"}"#, false),
    (
        "bce_dice",
        r#"{"name": "bce_dice", "mode": "multilabel"}"#,
        false,
    ),
    ("cross_entropy", r#"{"name": "cross_entropy"}"#, true),
    ("softmax_focal", r#"{"name": "softmax_focal"}"#, true),
    ("sigmoid_focal", r#"{"name": "sigmoid_focal"}"#, false),
    ("tutorial_dice", r#"{"name": "tutorial_dice"}"#, false),
    (
        "tutorial_dice_bce",
        r#"{"name": "tutorial_dice_bce"}"#,
        false,
    ),
    ("tutorial_iou", r#"{"name": "tutorial_iou"}"#, false),
    ("tutorial_focal", r#"{"name": "tutorial_focal"}"#, false),
];

/// Runs the benchmark and prints the table; returns `{loss: (ours_ms, torch_ms)}`.
pub fn run(args: &LossBenchArgs) -> Result<BTreeMap<String, (f64, Option<f64>)>> {
    ensure!(args.repeats >= 1, "--repeats must be at least 1");
    for name in &args.only {
        ensure!(
            LOSSES.iter().any(|(n, ..)| n == name),
            "unknown loss `{name}` in --only; valid: {}",
            LOSSES
                .iter()
                .map(|(n, ..)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let selected: Vec<_> = LOSSES
        .iter()
        .filter(|(n, ..)| args.only.is_empty() || args.only.iter().any(|o| o == n))
        .collect();

    // PyTorch first, in its own process, so the two never share the cores.
    let reference = if args.no_reference {
        None
    } else {
        Some(torch_times(args, &selected)?)
    };

    set_threads(args.threads)?;
    let device =
        kindling::init_device(kindling::DeviceSpec::Flex, kindling::Precision::F32, 0)?.autodiff();
    let [n, c, h, w] = args.shape;
    let x = Tensor::<4>::random([n, c, h, w], Distribution::Normal(0.0, 2.0), &device);
    let y_int = Tensor::<3, Int>::random([n, h, w], Distribution::Uniform(0.0, c as f64), &device);
    let y_float = Tensor::<4>::random([n, c, h, w], Distribution::Uniform(0.0, 1.0), &device)
        .lower_elem(0.5)
        .float();

    let mut results = BTreeMap::new();
    println!(
        "losses: forward + backward on [{n}, {c}, {h}, {w}] f32 logits, {} threads, median of {}",
        args.threads, args.repeats
    );
    println!(
        "{:<18} {:>12} {:>12} {:>14}",
        "loss", "Flex ms", "PyTorch ms", "Flex/PyTorch"
    );
    for (name, spec, int_targets) in selected {
        let config = LossConfig::from_json(serde_json::from_str(spec)?)?;
        let loss = config.init(&device)?;
        let mut samples = Vec::with_capacity(args.repeats);
        for k in 0..=args.repeats {
            let input = x.clone().require_grad();
            let start = Instant::now();
            let out = if *int_targets {
                loss.try_forward(input.clone(), y_int.clone())?
            } else {
                loss.try_forward(input.clone(), y_float.clone())?
            };
            let grads = out.sum().backward();
            let grad = input.grad(&grads).context("no gradient")?;
            // Flex is eager; reading one element makes sure nothing is left pending.
            let _ = grad.slice([0..1, 0..1, 0..1, 0..1]).into_scalar::<f32>();
            if k > 0 {
                samples.push(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        let ours = median(samples);
        let theirs = reference.as_ref().and_then(|r| r.get(*name).copied());
        let ratio = theirs.map_or("-".into(), |t| format!("{:.2}×", ours / t));
        println!(
            "{name:<18} {ours:>12.1} {:>12} {ratio:>14}",
            theirs.map_or("-".into(), |t| format!("{t:.1}"))
        );
        results.insert(name.to_string(), (ours, theirs));
    }
    Ok(results)
}

/// Runs `bench_torch.py` and returns its milliseconds per loss.
fn torch_times(
    args: &LossBenchArgs,
    selected: &[&(&str, &str, bool)],
) -> Result<BTreeMap<String, f64>> {
    let [n, c, h, w] = args.shape;
    let names: Vec<&str> = selected.iter().map(|(n, ..)| *n).collect();
    eprintln!("bench: timing PyTorch");
    let report = run_torch_script(
        "tests/fixtures/losses/bench_torch.py",
        &[
            "--threads".into(),
            args.threads.to_string(),
            "--repeats".into(),
            args.repeats.to_string(),
            "--shape".into(),
            format!("{n},{c},{h},{w}"),
            "--only".into(),
            names.join(","),
            "--json".into(),
        ],
    )?;
    let ms = report["ms"]
        .as_object()
        .context("bench_torch.py printed no `ms`")?;
    Ok(ms
        .iter()
        .filter_map(|(k, v)| v.as_f64().map(|v| (k.clone(), v)))
        .collect())
}
