//! Per-epoch metrics under the task's named columns: the CSV log and the curves.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One epoch's results: the task's metric columns plus the rate and timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    /// 1-based epoch number.
    pub epoch: usize,
    /// One value per [`History::columns`] entry.
    pub values: Vec<f64>,
    /// Learning rate used during the epoch (its last step).
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training + validation).
    pub seconds: f64,
    /// Training images per second.
    pub images_per_sec: f64,
}

/// Every epoch's metrics under named columns (`train_loss`, the task's training metrics,
/// `val_loss`, the task's validation metrics).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct History {
    /// Metric column names, in CSV order.
    pub columns: Vec<String>,
    /// One row per completed epoch.
    pub rows: Vec<EpochRow>,
}

impl History {
    /// An empty history with these metric columns.
    pub fn new(columns: Vec<String>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
        }
    }

    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// Column `name` of every row.
    pub fn series(&self, name: &str) -> Vec<f64> {
        match self.column(name) {
            Some(i) => self.rows.iter().map(|r| r.values[i]).collect(),
            None => Vec::new(),
        }
    }

    /// The last row's value of column `name`.
    pub fn last(&self, name: &str) -> Option<f64> {
        let i = self.column(name)?;
        self.rows.last().map(|r| r.values[i])
    }

    /// The CSV header: `epoch`, the metric columns, then `lr,seconds,images_per_sec`.
    pub fn csv_header(&self) -> String {
        let mut h = String::from("epoch");
        for c in &self.columns {
            h.push(',');
            h.push_str(c);
        }
        h.push_str(",lr,seconds,images_per_sec");
        h
    }

    /// Renders all rows as CSV. Metric values use Rust's shortest round-trip formatting, so
    /// two runs have equal CSV metric columns exactly when their metrics are bit-identical.
    pub fn to_csv(&self) -> String {
        let mut out = self.csv_header();
        out.push('\n');
        for r in &self.rows {
            let _ = write!(out, "{}", r.epoch);
            for v in &r.values {
                let _ = write!(out, ",{v}");
            }
            let _ = writeln!(out, ",{},{:.3},{:.1}", r.lr, r.seconds, r.images_per_sec);
        }
        out
    }

    /// Writes the CSV to `path`, atomically.
    pub fn write_csv(&self, path: &Path) -> std::io::Result<()> {
        kindling_run::write_atomic(path, self.to_csv().as_bytes())
    }

    /// Draws the curves as a PNG: losses on the left, the other metrics (in [0, 1]) on the
    /// right, one line per column.
    pub fn plot_curves(&self, path: &Path) -> Result<(), String> {
        register_font();
        let tmp = path.with_extension("png.tmp.png");
        let losses: Vec<usize> = (0..self.columns.len())
            .filter(|&i| self.columns[i].ends_with("loss"))
            .collect();
        let others: Vec<usize> = (0..self.columns.len())
            .filter(|i| !losses.contains(i))
            .collect();
        {
            let root = BitMapBackend::new(&tmp, (1000, 400)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let (left, right) = root.split_horizontally(500);
            let epochs = self.rows.len().max(2) as f64;
            let max_loss = losses
                .iter()
                .flat_map(|&i| self.rows.iter().map(move |r| r.values[i]))
                .filter(|v| v.is_finite())
                .fold(0.1f64, f64::max);
            let panels = [
                (&left, "loss", max_loss * 1.05, &losses),
                (&right, "metrics", 1.0, &others),
            ];
            const COLOURS: [RGBColor; 6] = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
            for (area, title, y_max, columns) in panels {
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
                for (k, &i) in columns.iter().enumerate() {
                    let color = COLOURS[k % COLOURS.len()];
                    chart
                        .draw_series(LineSeries::new(
                            self.rows.iter().map(|r| (r.epoch as f64, r.values[i])),
                            color.stroke_width(2),
                        ))
                        .map_err(|e| e.to_string())?
                        .label(self.columns[i].clone())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                        });
                }
                if !columns.is_empty() {
                    chart
                        .configure_series_labels()
                        .background_style(WHITE.mix(0.8))
                        .border_style(BLACK)
                        .draw()
                        .map_err(|e| e.to_string())?;
                }
            }
            root.present().map_err(|e| e.to_string())?;
        }
        std::fs::rename(&tmp, path).map_err(|e| e.to_string())
    }
}

/// How many rows of `[N, C]` logits have their largest value at the `[N]` label.
pub fn correct(
    logits: &burn::tensor::Tensor<2>,
    labels: &burn::tensor::Tensor<1, burn::tensor::Int>,
) -> usize {
    let predicted = logits.clone().argmax(1).squeeze_dim::<1>(1);
    predicted
        .equal(labels.clone())
        .int()
        .sum()
        .into_scalar::<i64>() as usize
}

/// The fraction of rows whose largest logit is at the label (see [`correct`]).
pub fn accuracy(
    logits: &burn::tensor::Tensor<2>,
    labels: &burn::tensor::Tensor<1, burn::tensor::Int>,
) -> f64 {
    correct(logits, labels) as f64 / labels.dims()[0].max(1) as f64
}

/// Plotters draws text with `ab_glyph` from fonts registered at run time; the Ubuntu font
/// shipped by `epaint_default_fonts` keeps the binary free of system font dependencies.
pub fn register_font() {
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

    fn history(epochs: usize) -> History {
        let mut h = History::new(vec![
            "train_loss".into(),
            "train_accuracy".into(),
            "val_loss".into(),
            "val_accuracy".into(),
        ]);
        for epoch in 1..=epochs {
            h.rows.push(EpochRow {
                epoch,
                values: vec![1.0 / epoch as f64, 0.5, 0.1 + 1.0 / 3.0, 0.75],
                lr: 0.05,
                seconds: 1.23456,
                images_per_sec: 99.99,
            });
        }
        h
    }

    #[test]
    fn csv_has_the_task_columns_and_exact_values() {
        let csv = history(3).to_csv();
        let lines: Vec<_> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,images_per_sec"
        );
        assert_eq!(
            lines[3],
            "3,0.3333333333333333,0.5,0.43333333333333335,0.75,0.05,1.235,100.0"
        );
    }

    #[test]
    fn columns_are_found_by_name() {
        let h = history(2);
        assert_eq!(h.series("train_loss"), [1.0, 0.5]);
        assert_eq!(h.last("val_accuracy"), Some(0.75));
        assert_eq!(h.last("val_miou"), None);
    }

    #[test]
    fn curves_are_written_as_png() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        history(3).plot_curves(&path).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!((img.width(), img.height()), (1000, 400));
    }
}
