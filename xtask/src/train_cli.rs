//! What the training commands share: the integration tests' hooks and the end-of-run
//! summaries (also printed by the ONNX fine-tuning runner, `xtask/onnx-runner`).

use kindling_train::tasks::finetune::{self, FinetuneOutcome, FinetuneRun, ModelSource};
use kindling_train::{Control, Summary, Trainer};

/// Hooks for the integration tests, hidden from `--help`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TestHooks {
    /// After writing this epoch's checkpoint, stop making progress (sleep) so that a test
    /// can kill the process at a known point
    #[arg(long, hide = true, value_name = "EPOCH")]
    pub hang_after_epoch: Option<usize>,
}

impl TestHooks {
    /// A trainer for `run` with these hooks installed as callbacks.
    pub fn trainer<'a>(&self, run: kindling::RunConfig) -> Trainer<'a> {
        let hang = self.hang_after_epoch;
        Trainer::new(run).on_epoch_end(move |info| {
            if hang == Some(info.epoch) {
                eprintln!("--hang-after-epoch {}: waiting to be killed", info.epoch);
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            }
            Control::Continue
        })
    }
}

/// The end-of-run summary every task prints.
pub fn print_summary(summary: &Summary) {
    eprintln!();
    eprintln!("summary");
    if let Some(best) = &summary.best {
        eprintln!(
            "  best {}: {:.4} (epoch {})",
            best.metric, best.value, best.epoch
        );
    }
    if let Some(last) = summary.history.rows.last() {
        let values: Vec<String> = summary
            .history
            .columns
            .iter()
            .zip(&last.values)
            .map(|(name, v)| format!("{name} {v:.4}"))
            .collect();
        eprintln!("  final: {}", values.join(", "));
    }
    eprintln!(
        "  wall time: {:.1}s{}{}",
        summary.wall_seconds,
        match summary.resumed_from {
            0 => String::new(),
            e => format!(" (resumed after epoch {e})"),
        },
        if summary.stopped_early {
            " (stopped early)"
        } else {
            ""
        }
    );
    eprintln!("  throughput: {:.0} train images/s", summary.images_per_sec);
    eprintln!("  checkpoint: {}", summary.checkpoint.display());
    eprintln!("  best checkpoint: {}", summary.best_checkpoint.display());
}

/// `train finetune`'s summary: the run's, parameter counts, the demonstration's phases and
/// how to use the weights.
pub fn print_finetune<S: ModelSource>(cfg: &FinetuneRun, outcome: &FinetuneOutcome<S>) {
    print_summary(&outcome.summary);
    if let Some(counts) = outcome.task.counts() {
        eprintln!("  parameters: {counts}");
    }
    let best = |s: &Summary| s.best.as_ref().map_or(f64::NAN, |b| b.value);
    if let Some(source) = &outcome.source {
        eprintln!(
            "  source pretraining: best val_accuracy {:.4} ({:.1}s)",
            best(source),
            source.wall_seconds
        );
    }
    if let Some(scratch) = &outcome.scratch {
        eprintln!(
            "  target, fine-tuned: best val_accuracy {:.4} ({:.1}s)",
            best(&outcome.summary),
            outcome.summary.wall_seconds
        );
        eprintln!(
            "  target, from scratch: best val_accuracy {:.4} ({:.1}s)",
            best(scratch),
            scratch.wall_seconds
        );
    }
    let c = &cfg.finetune;
    let weights = outcome.weights.display();
    eprintln!("  weights: {weights}");
    match &c.onnx {
        None => eprintln!(
            "  predict: cargo xtask zoo predict {} --weights {weights} --labels {} --image-size \
             {} --image IMAGE",
            c.model,
            cfg.run.out.join(finetune::CLASSES_FILE).display(),
            c.image_size
        ),
        Some(dir) => eprintln!(
            "  continue: cargo xtask train finetune --onnx {} --pretrained {weights}",
            dir.display()
        ),
    }
    eprintln!("  metrics: {}", cfg.run.out.join("metrics.csv").display());
}

/// The error and its causes on one line, leaving out a cause whose text its parent already
/// shows (library errors often print their source: "cannot read X: No such file").
pub fn describe(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}
