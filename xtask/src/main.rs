//! `cargo xtask`: Kindling's training jobs and checks.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use kindling::{RUN_FLAG_KEYS, document_defaults};
use kindling_train::tasks::classify::{self, CLASSIFY_FLAG_KEYS, ClassifyArgs, ClassifyRun};
use kindling_train::tasks::finetune::{self, FINETUNE_FLAG_KEYS, FinetuneArgs, FinetuneRun};
use kindling_train::tasks::segment::{self, SEGMENT_FLAG_KEYS, SegmentArgs, SegmentRun};
use xtask::augment_grid::{self, GridArgs};
use xtask::bench::amp::{self as amp_bench, AmpBenchArgs};
use xtask::bench::augment::{self as augment_bench, AugmentBenchArgs};
use xtask::bench::losses::{self, LossBenchArgs};
use xtask::bench::step::{self as step_bench, StepBenchArgs};
use xtask::bench::zoo::{self as zoo_bench, ZooBenchArgs};
use xtask::check_losses::{self, CheckLossesArgs};
use xtask::checks::{self, TestArgs};
use xtask::finetune_onnx;
use xtask::gpu::{self, CheckGpuArgs, GpuBundleArgs};
use xtask::import_onnx::{self, ImportOnnxArgs};
use xtask::lr::{self, LrArgs};
use xtask::smoke::{self, SmokeArgs};
use xtask::train_cli::{self, TestHooks, describe, print_summary};
use xtask::zoo::{self, ZooCmd};

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
    /// Build check-gpu's binaries with GPU features into a folder a GPU machine without Rust
    /// runs them from
    GpuBundle(GpuBundleArgs),
    /// Install torch 2.9.0 in a venv under target/ and run the smoke test on libtorch
    CheckTch,
    /// The losses' PyTorch fixture cases on one device and dtype
    CheckLosses(CheckLossesArgs),
    /// A grid of augmented versions of one image (boxes and keypoints drawn)
    AugmentGrid(GridArgs),
    /// The model zoo: list models, describe one, classify an image
    Zoo {
        #[command(subcommand)]
        what: ZooCmd,
    },
    /// Import an ONNX model as a Burn module (source, weights, README)
    ImportOnnx(ImportOnnxArgs),
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
    /// Zoo models' forward and training step on Flex vs torchvision on CPU; peak RSS
    Zoo(ZooBenchArgs),
    /// One training step's peak heap and time in f32, under autocast and in pure f16
    Amp(AmpBenchArgs),
    /// Training-step time, img/s and GFLOP/s of Kindling's models on Flex vs PyTorch on CPU
    Step(StepBenchArgs),
}

#[derive(Subcommand)]
enum Task {
    /// Image classification on an ImageFolder tree (default: generated shapes)
    Classify {
        #[command(flatten)]
        args: Box<ClassifyArgs>,
        #[command(flatten)]
        test: TestHooks,
    },
    /// Semantic segmentation on a segmentation folder (default: generated shapes)
    Segment {
        #[command(flatten)]
        args: Box<SegmentArgs>,
        #[command(flatten)]
        test: TestHooks,
    },
    /// Fine-tune a zoo model on an ImageFolder tree (default: synthetic source → target,
    /// against training from scratch)
    Finetune {
        #[command(flatten)]
        args: Box<FinetuneArgs>,
        #[command(flatten)]
        test: TestHooks,
    },
}

fn main() -> ExitCode {
    let classify = ClassifyRun::default();
    let segment = SegmentRun::default();
    let finetune = FinetuneRun::default();
    let cmd = Cli::command().mut_subcommand("train", |train| {
        train
            .mut_subcommand("classify", |c| {
                let c = document_defaults(c, &classify, RUN_FLAG_KEYS);
                document_defaults(c, &classify, CLASSIFY_FLAG_KEYS)
            })
            .mut_subcommand("segment", |c| {
                let c = document_defaults(c, &segment, RUN_FLAG_KEYS);
                document_defaults(c, &segment, SEGMENT_FLAG_KEYS)
            })
            .mut_subcommand("finetune", |c| {
                let c = document_defaults(c, &finetune, RUN_FLAG_KEYS);
                document_defaults(c, &finetune, FINETUNE_FLAG_KEYS)
            })
    });
    let cli = match Cli::from_arg_matches(&cmd.get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Train {
            task: Task::Classify { args, test },
        } => {
            let cfg = args.resolve()?;
            if args.run.print_config {
                print!("{}", kindling::to_toml_string(&cfg)?);
                return Ok(());
            }
            let (summary, task) = classify::run(&cfg, test.trainer(cfg.run.clone()))?;
            print_summary(&summary);
            let skipped = task.dataset().map_or(0, |d| d.skipped.len());
            eprintln!("  undecodable images skipped: {skipped}");
            eprintln!("  metrics: {}", cfg.run.out.join("metrics.csv").display());
            Ok(())
        }
        Cmd::Train {
            task: Task::Segment { args, test },
        } => {
            let cfg = args.resolve()?;
            if args.run.print_config {
                print!("{}", kindling::to_toml_string(&cfg)?);
                return Ok(());
            }
            let (summary, task) = segment::run(&cfg, test.trainer(cfg.run.clone()))?;
            print_summary(&summary);
            if let Some(data) = task.dataset() {
                let iou: Vec<String> = data
                    .classes
                    .iter()
                    .zip(task.last_per_class_iou())
                    .map(|(name, iou)| match iou {
                        Some(v) => format!("{name} {v:.3}"),
                        None => format!("{name} -"),
                    })
                    .collect();
                eprintln!("  per-class IoU (last epoch): {}", iou.join(", "));
                eprintln!("  bad pairs skipped: {}", data.skipped.len());
            }
            eprintln!(
                "  predictions: {}",
                cfg.run.out.join("predictions.png").display()
            );
            eprintln!("  metrics: {}", cfg.run.out.join("metrics.csv").display());
            Ok(())
        }
        Cmd::Train {
            task: Task::Finetune { args, test },
        } => {
            let cfg = args.resolve()?;
            if args.run.print_config {
                print!("{}", kindling::to_toml_string(&cfg)?);
                return Ok(());
            }
            if cfg.finetune.onnx.is_some() {
                let status = finetune_onnx::delegate(&cfg)?;
                if !status.success() {
                    // The runner printed its error.
                    std::process::exit(status.code().unwrap_or(1));
                }
                return Ok(());
            }
            let outcome = finetune::run(&cfg, |run| test.trainer(run))?;
            train_cli::print_finetune(&cfg, &outcome);
            Ok(())
        }
        Cmd::Smoke(args) => {
            let report = smoke::run(&args)?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Cmd::Lr(args) => {
            let rows = lr::run(&args)?;
            eprintln!("wrote {} rows to {}", rows.len(), args.csv.display());
            Ok(())
        }
        Cmd::CheckGpu(args) => gpu::check_gpu(&args),
        Cmd::GpuBundle(args) => gpu::gpu_bundle(&args),
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
            // SAFETY: still single-threaded: no worker or Burn thread has started yet.
            unsafe { kindling::set_burn_default_device(args.device) };
            let n = check_losses::run(&args)?;
            eprintln!(
                "check-losses: all {n} cases agree on {} {}",
                args.device, args.dtype
            );
            Ok(())
        }
        Cmd::Test(args) => checks::test_all(&args),
        Cmd::ImportOnnx(args) => import_onnx::run(&args),
        Cmd::Zoo { what } => zoo::run(&what),
        Cmd::Bench {
            what: Bench::Losses(args),
        } => losses::run(&args).map(|_| ()),
        Cmd::Bench {
            what: Bench::Augment(args),
        } => augment_bench::run(&args),
        Cmd::Bench {
            what: Bench::Zoo(args),
        } => zoo_bench::run(&args),
        Cmd::Bench {
            what: Bench::Amp(args),
        } => amp_bench::run(&args).map(|_| ()),
        Cmd::Bench {
            what: Bench::Step(args),
        } => step_bench::run(&args),
    }
}
