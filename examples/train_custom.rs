//! Your own model on your own data with Kindling's `Trainer`: a Burn module, a Burn
//! `Dataset`, a Kindling loss, an augmentation pipeline, a schedule, and a resume.
//!
//! Run: `cargo run -p kindling --example train_custom`
use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use kindling::augment::{Batch, Flipud, Image, ImageBuf, Pipeline, Sample};
use kindling::losses::CrossEntropyLossConfig;
use kindling::train::{Goal, Result, StepOutput, Task, TaskData, Trainer};

/// 8×8 grey images; class 1 when the right half is brighter (a vertical flip keeps the class).
struct Halves(usize);

impl Halves {
    fn label(i: usize) -> i64 {
        (i % 2) as i64
    }
}

impl Dataset<Sample> for Halves {
    fn get(&self, i: usize) -> std::result::Result<Sample, DatasetError> {
        let (dim, lit) = (20 + (i * 37 % 60) as u8, 150 + (i * 53 % 100) as u8);
        let px = (0..64).map(|p| {
            if ((p % 8) >= 4) == (Self::label(i) == 1) {
                lit
            } else {
                dim
            }
        });
        let image = ImageBuf::new(8, 8, 1, px.collect()).map_err(DatasetError::new)?;
        Ok(Sample::new(Image::U8(image)))
    }
    fn len(&self) -> usize {
        self.0
    }
}

#[derive(Module, Debug)]
struct Net {
    hidden: Linear,
    out: Linear,
}

impl Net {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let [n, ..] = x.dims();
        self.out.forward(burn::tensor::activation::relu(
            self.hidden.forward(x.reshape([n, 64])),
        ))
    }
}

struct Halving;

impl Task for Halving {
    type Model = Net;
    fn name(&self) -> &str {
        "halves"
    }
    fn data(&self) -> Result<TaskData> {
        Ok(TaskData {
            train: Arc::new(Halves(64)),
            val: Arc::new(Halves(32)),
            mean: vec![0.5],
            std: vec![0.25],
            input_size: Some((8, 8, 1)),
        })
    }
    fn init_model(&self, device: &Device) -> Result<Net> {
        Ok(Net {
            hidden: LinearConfig::new(64, 16).init(device),
            out: LinearConfig::new(16, 2).init(device),
        })
    }
    fn val_columns(&self) -> Vec<String> {
        vec!["val_loss".into(), "val_accuracy".into()]
    }
    fn best_metric(&self) -> (String, Goal) {
        ("val_accuracy".into(), Goal::Max)
    }
    fn train_step(&self, model: &Net, batch: &Batch) -> Result<StepOutput> {
        let (loss, _) = loss_and_correct(model, batch);
        Ok(StepOutput {
            loss,
            metrics: vec![],
        })
    }
    fn evaluate(
        &self,
        model: &Net,
        batches: &mut dyn Iterator<Item = Result<Batch>>,
    ) -> Result<Vec<f64>> {
        let (mut loss, mut correct, mut n) = (0.0, 0.0, 0.0);
        for batch in batches {
            let batch = batch?;
            let (l, c) = loss_and_correct(model, &batch);
            let k = batch.indices.len() as f64;
            (loss, correct, n) = (loss + l.into_scalar::<f32>() as f64 * k, correct + c, n + k);
        }
        Ok(vec![loss / n, correct / n])
    }
}

fn loss_and_correct(model: &Net, batch: &Batch) -> (Tensor<1>, f64) {
    let device = batch.images.device();
    let labels: Vec<i64> = batch
        .indices
        .iter()
        .map(|&i| Halves::label(i as usize))
        .collect();
    let labels =
        Tensor::<1, Int>::from_data(TensorData::new(labels, [batch.indices.len()]), &device);
    let logits = model.forward(batch.images.clone());
    let correct = logits
        .clone()
        .argmax(1)
        .squeeze_dim::<1>(1)
        .equal(labels.clone())
        .int()
        .sum();
    let loss = CrossEntropyLossConfig::new()
        .with_label_smoothing(0.05)
        .init(&device)
        .forward(logits, labels);
    (loss, correct.into_scalar::<i64>() as f64)
}

fn main() -> anyhow::Result<()> {
    let out = std::env::temp_dir().join("kindling-train-custom");
    let _ = std::fs::remove_dir_all(&out);
    let schedule = serde_json::json!({ "name": "cosine_annealing_lr", "t_max": 6 });
    let mut run = kindling::RunConfig {
        epochs: 3,
        batch_size: 16,
        out,
        ..Default::default()
    };
    run.scheduler = Some(serde_json::from_value(schedule)?);
    let pipeline = Arc::new(Pipeline::new(Flipud { p: 0.5 }, 7)?);
    Trainer::new(run.clone())
        .augment(Some(pipeline.clone()))
        .fit(&Halving)?;
    // Later (or after a crash): three more epochs from the last checkpoint.
    let resumed = kindling::RunConfig {
        epochs: 6,
        resume: true,
        ..run
    };
    let summary = Trainer::new(resumed)
        .augment(Some(pipeline))
        .fit(&Halving)?;
    let best = summary.best.expect("six epochs ran");
    println!(
        "best {} {:.3} at epoch {} (resumed after {})",
        best.metric, best.value, best.epoch, summary.resumed_from
    );
    anyhow::ensure!(best.value > 0.9, "the model should separate the halves");
    Ok(())
}
