//! `cargo xtask lr`: see a learning-rate schedule before training with it.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use kindling::{Interval, Overrides};
use plotters::prelude::*;

use kindling_train::tasks::classify::ClassifyRun;

/// Options of `cargo xtask lr`.
#[derive(Debug, Clone, clap::Args)]
pub struct LrArgs {
    /// The run configuration (as for `train`): its [optimizer] lr and [scheduler] table
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Number of optimizer updates to show (default: the run's epochs, for epoch schedules)
    #[arg(long)]
    pub steps: Option<usize>,
    /// Write `step,lr` rows here (row k = the rate of the k-th update)
    #[arg(long, value_name = "OUT.csv")]
    pub csv: PathBuf,
    /// Also draw the schedule as a PNG line plot
    #[arg(long, value_name = "OUT.png")]
    pub plot: Option<PathBuf>,
}

/// Writes the schedule's rows (and plot); returns them.
pub fn run(args: &LrArgs) -> Result<Vec<f64>> {
    let cfg: ClassifyRun = kindling::resolve_config(
        &ClassifyRun::default(),
        Some(&args.config),
        &Overrides::default(),
    )?;
    let Some(schedule) = &cfg.run.scheduler else {
        bail!(
            "{} has no [scheduler] table: the rate is constant at {}",
            args.config.display(),
            cfg.run.optimizer.lr
        );
    };
    if schedule.policy.name() == "reduce_lr_on_plateau" {
        bail!(
            "reduce_lr_on_plateau follows the validation metric: its schedule exists only \
             during training"
        );
    }
    let steps = match (args.steps, schedule.interval) {
        (Some(n), _) => n,
        (None, Interval::Epoch) => cfg.run.epochs,
        (None, Interval::Step) => bail!(
            "the schedule steps per update (interval = \"step\"): give --steps N (updates \
             per epoch x epochs)"
        ),
    };
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    let rows = schedule
        .build(cfg.run.optimizer.lr)?
        .rows(steps - 1)
        .context("computing the schedule")?;
    let mut csv = String::from("step,lr\n");
    for (k, lr) in rows.iter().enumerate() {
        let _ = writeln!(csv, "{k},{lr}");
    }
    kindling::write_atomic(&args.csv, csv.as_bytes())
        .with_context(|| format!("writing {}", args.csv.display()))?;
    if let Some(plot) = &args.plot {
        draw(&rows, schedule.policy.name(), plot)
            .map_err(|e| anyhow::anyhow!("drawing {}: {e}", plot.display()))?;
    }
    Ok(rows)
}

fn draw(rows: &[f64], title: &str, path: &std::path::Path) -> Result<(), String> {
    kindling_train::metrics::register_font();
    let root = BitMapBackend::new(path, (800, 400)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let max = rows.iter().copied().fold(0.0f64, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..(rows.len().max(2) - 1) as f64, 0f64..max.max(1e-12))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("update")
        .y_desc("lr")
        .draw()
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(LineSeries::new(
            rows.iter().enumerate().map(|(k, lr)| (k as f64, *lr)),
            BLUE.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}
