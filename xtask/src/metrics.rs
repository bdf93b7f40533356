//! Per-epoch metrics: the CSV log and the loss/accuracy curves.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One epoch's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's samples.
    pub train_loss: f64,
    /// Training accuracy in [0, 1].
    pub train_accuracy: f64,
    /// Mean validation loss.
    pub val_loss: f64,
    /// Validation accuracy in [0, 1].
    pub val_accuracy: f64,
    /// Learning rate used during the epoch.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training + validation).
    pub seconds: f64,
    /// Training images per second.
    pub images_per_sec: f64,
}

/// The CSV header; the metric columns come first, timing columns last.
pub const CSV_HEADER: &str =
    "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,images_per_sec";

/// Renders all rows as CSV. Metric values use Rust's shortest round-trip formatting, so two
/// runs have equal CSV metric columns exactly when their metrics are bit-identical.
pub fn to_csv(rows: &[EpochMetrics]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{:.3},{:.1}",
            r.epoch,
            r.train_loss,
            r.train_accuracy,
            r.val_loss,
            r.val_accuracy,
            r.lr,
            r.seconds,
            r.images_per_sec
        );
    }
    out
}

/// Writes `rows` to `path` as CSV, atomically.
pub fn write_csv(rows: &[EpochMetrics], path: &Path) -> std::io::Result<()> {
    kindling::write_atomic(path, to_csv(rows).as_bytes())
}

/// Reads one curve's value from a row.
type Series = fn(&EpochMetrics) -> f64;

/// Draws loss (left) and accuracy (right) per epoch, train and validation, as a PNG.
pub fn plot_curves(rows: &[EpochMetrics], path: &Path) -> Result<(), String> {
    register_font();
    let tmp = path.with_extension("png.tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1000, 400)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (left, right) = root.split_horizontally(500);
        let epochs = rows.len().max(2) as f64;
        let max_loss = rows
            .iter()
            .flat_map(|r| [r.train_loss, r.val_loss])
            .filter(|v| v.is_finite())
            .fold(0.1f64, f64::max);
        let loss: [Series; 2] = [|r| r.train_loss, |r| r.val_loss];
        let accuracy: [Series; 2] = [|r| r.train_accuracy, |r| r.val_accuracy];
        let panels = [
            (&left, "loss", max_loss * 1.05, loss),
            (&right, "accuracy", 1.0, accuracy),
        ];
        for (area, title, y_max, series) in panels {
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(35)
                .y_label_area_size(50)
                .build_cartesian_2d(1f64..epochs, 0f64..y_max)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .draw()
                .map_err(|e| e.to_string())?;
            for (name, color, get) in [("train", BLUE, series[0]), ("val", RED, series[1])] {
                chart
                    .draw_series(LineSeries::new(
                        rows.iter().map(|r| (r.epoch as f64, get(r))),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())
}

/// Plotters draws text with `ab_glyph` from fonts registered at run time; the Ubuntu font
/// shipped by `epaint_default_fonts` keeps the binary free of system font dependencies.
pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 1.0 / epoch as f64,
            train_accuracy: 0.5,
            val_loss: 0.1 + 1.0 / 3.0,
            val_accuracy: 0.75,
            lr: 0.05,
            seconds: 1.23456,
            images_per_sec: 99.99,
        }
    }

    #[test]
    fn csv_has_the_documented_header_and_exact_values() {
        let csv = to_csv(&[row(1), row(3)]);
        let lines: Vec<_> = csv.lines().collect();
        assert!(lines[0].starts_with("epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr"));
        assert_eq!(
            lines[2],
            "3,0.3333333333333333,0.5,0.43333333333333335,0.75,0.05,1.235,100.0"
        );
    }

    #[test]
    fn curves_are_written_as_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        plot_curves(&[row(1), row(2), row(3)], &path).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), (1000, 400));
    }
}
