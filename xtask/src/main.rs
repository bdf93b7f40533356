//! `cargo xtask`: Kindling's training jobs and checks.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use kindling::{RUN_FLAG_KEYS, document_defaults};
use xtask::augment_grid::{self, GridArgs};
use xtask::bench::augment::{self as augment_bench, AugmentBenchArgs};
use xtask::bench::losses::{self, LossBenchArgs};
use xtask::check_losses::{self, CheckLossesArgs};
use xtask::checks::{self, CheckGpuArgs, TestArgs};
use xtask::classify::{self, CLASSIFY_FLAG_KEYS, ClassifyArgs, ClassifyRun};
use xtask::lr::{self, LrArgs};
use xtask::smoke::{self, SmokeArgs};

/// Kindling's task runner.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a training job end to end
    Train {
        #[command(subcommand)]
        task: Task,
    },
    /// Write (and plot) the learning-rate schedule of a run configuration
    Lr(LrArgs),
    /// A few training steps on one device and dtype, checked against Flex f32
    Smoke(SmokeArgs),
    /// Build with GPU features and run the smoke test on each GPU device
    CheckGpu(CheckGpuArgs),
    /// Install torch 2.9.0 in a venv under target/ and run the smoke test on libtorch
    CheckTch,
    /// The losses' PyTorch fixture cases on one device and dtype
    CheckLosses(CheckLossesArgs),
    /// A grid of augmented versions of one image (boxes and keypoints drawn)
    AugmentGrid(GridArgs),
    /// The project's tests: cargo fmt --check, clippy -D warnings, all tests, examples
    Test(TestArgs),
    /// Benchmarks against the Python references, side by side in one run
    Bench {
        #[command(subcommand)]
        what: Bench,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Forward + backward of every loss on Flex and in PyTorch (CPU, same threads)
    Losses(LossBenchArgs),
    /// Our augmenters vs Albumentations 2.0.8 and imgaug 0.4.0, per op and pipeline
    Augment(AugmentBenchArgs),
}

#[derive(Subcommand)]
enum Task {
    /// Image classification on an ImageFolder tree (default: generated shapes)
    Classify(Box<ClassifyArgs>),
}

fn main() -> ExitCode {
    let defaults = ClassifyRun::default();
    let cmd = Cli::command().mut_subcommand("train", |train| {
        train.mut_subcommand("classify", |c| {
            let c = document_defaults(c, &defaults, RUN_FLAG_KEYS);
            document_defaults(c, &defaults, CLASSIFY_FLAG_KEYS)
        })
    });
    let cli = match Cli::from_arg_matches(&cmd.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Train {
            task: Task::Classify(args),
        } => {
            let cfg = args.resolve()?;
            if args.run.print_config {
                print!("{}", kindling::to_toml_string(&cfg)?);
                return Ok(());
            }
            // SAFETY: still single-threaded: no worker or Burn thread has started yet.
            unsafe { kindling::set_burn_default_device(cfg.run.device) };
            let outcome = classify::run(&cfg)?;
            let last = outcome.metrics.last();
            eprintln!();
            eprintln!("summary");
            eprintln!(
                "  best val accuracy: {:.2}%",
                100.0 * outcome.best_val_accuracy
            );
            if let Some(last) = last {
                eprintln!(
                    "  final: train loss {:.4}, val loss {:.4}, val accuracy {:.2}%",
                    last.train_loss,
                    last.val_loss,
                    100.0 * last.val_accuracy
                );
            }
            eprintln!(
                "  wall time: {:.1}s{}",
                outcome.wall_seconds,
                match outcome.resumed_from {
                    0 => String::new(),
                    e => format!(" (resumed after epoch {e})"),
                }
            );
            eprintln!("  throughput: {:.0} train images/s", outcome.images_per_sec);
            eprintln!("  undecodable images skipped: {}", outcome.skipped_images);
            eprintln!("  checkpoint: {}", outcome.checkpoint.display());
            eprintln!("  metrics: {}", cfg.run.out.join("metrics.csv").display());
            Ok(())
        }
        Cmd::Smoke(args) => {
            // SAFETY: still single-threaded, as above.
            unsafe { kindling::set_burn_default_device(args.device) };
            let report = smoke::run(&args)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Cmd::Lr(args) => {
            let rows = lr::run(&args)?;
            eprintln!("wrote {} rows to {}", rows.len(), args.csv.display());
            Ok(())
        }
        Cmd::CheckGpu(args) => checks::check_gpu(&args),
        Cmd::CheckTch => checks::check_tch(),
        Cmd::AugmentGrid(args) => {
            let (w, h) = augment_grid::run(&args)?;
            eprintln!(
                "wrote {} ({w}×{h}, {} versions)",
                args.out.display(),
                args.n
            );
            Ok(())
        }
        Cmd::CheckLosses(args) => {
            // SAFETY: still single-threaded, as above.
            unsafe { kindling::set_burn_default_device(args.device) };
            let n = check_losses::run(&args)?;
            eprintln!(
                "check-losses: all {n} cases agree on {} {}",
                args.device, args.dtype
            );
            Ok(())
        }
        Cmd::Test(args) => checks::test_all(&args),
        Cmd::Bench {
            what: Bench::Losses(args),
        } => losses::run(&args).map(|_| ()),
        Cmd::Bench {
            what: Bench::Augment(args),
        } => augment_bench::run(&args),
    }
}
