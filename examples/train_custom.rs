//! Your own model on your own data with Kindling's `Trainer`: a Burn module, a Burn
//! `Dataset`, a Kindling loss, an augmentation pipeline, a schedule, and a resume.
//!
//! Run: `cargo run -p kindling --example train_custom`
use std::sync::Arc;

use burn::data::dataset::{Dataset, DatasetError};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData, activation::relu};
use kindling::augment::{Batch, Flipud, Image, ImageBuf, Pipeline, Sample};
use kindling::losses::CrossEntropyLossConfig;
use kindling::train::{Goal, Result, StepOutput, Task, TaskData, Trainer, accuracy};

/// 8×8 grey images of a dim and a lit half; the label says which half is lit (sample `i`
/// has label `i % 2`). A vertical flip keeps the label, so it is a valid augmentation.
struct Halves(usize);

#[rustfmt::skip] // kept compact: the whole program fits on one screen
impl Dataset<Sample> for Halves {
    fn get(&self, i: usize) -> std::result::Result<Sample, DatasetError> {
        let (dim, lit) = (20 + (i * 37 % 60) as u8, 150 + (i * 53 % 100) as u8);
        let px = (0..64).map(|p| if (p % 8 >= 4) == (i % 2 == 1) { lit } else { dim });
        let image = ImageBuf::new(8, 8, 1, px.collect()).map_err(DatasetError::new)?;
        Ok(Sample::new(Image::U8(image)))
    }
    fn len(&self) -> usize { self.0 }
}

#[derive(Module, Debug)]
struct Net {
    hidden: Linear,
    out: Linear,
}

struct Halving;

#[rustfmt::skip]
impl Task for Halving {
    type Model = Net;
    fn name(&self) -> &str { "halves" }
    fn data(&self) -> Result<TaskData> {
        let (train, val) = (Arc::new(Halves(64)), Arc::new(Halves(32)));
        Ok(TaskData { train, val, mean: vec![0.5], std: vec![0.25], input_size: Some((8, 8, 1)) })
    }
    fn init_model(&self, device: &Device) -> Result<Net> {
        Ok(Net { hidden: LinearConfig::new(64, 16).init(device), out: LinearConfig::new(16, 2).init(device) })
    }
    // Validation gets `val_loss` and `val_accuracy` from `train_step` by default.
    fn train_columns(&self) -> Vec<String> { vec!["train_accuracy".into()] }
    fn best_metric(&self) -> (String, Goal) { ("val_accuracy".into(), Goal::Max) }
    fn train_step(&self, net: &Net, batch: &Batch) -> Result<StepOutput> {
        let device = batch.images.device();
        let labels: Vec<i64> = batch.indices.iter().map(|&i| (i % 2) as i64).collect();
        let labels = Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [labels.len()]), &device);
        let logits = net.out.forward(relu(net.hidden.forward(batch.images.clone().flatten::<2>(1, 3))));
        let metrics = vec![accuracy(&logits, &labels)];
        let ce = CrossEntropyLossConfig::new().with_label_smoothing(0.05).init(&device);
        Ok(StepOutput { loss: ce.forward(logits, labels), metrics })
    }
}

#[rustfmt::skip]
fn main() -> anyhow::Result<()> {
    let out = std::env::temp_dir().join("kindling-train-custom");
    let _ = std::fs::remove_dir_all(&out);
    let scheduler = Some(serde_json::from_value(serde_json::json!({ "name": "cosine_annealing_lr", "t_max": 6 }))?);
    let run = kindling::RunConfig { epochs: 3, batch_size: 16, out, scheduler, ..Default::default() };
    let pipeline = Some(Arc::new(Pipeline::new(Flipud { p: 0.5 }, 7)?));
    Trainer::new(run.clone()).augment(pipeline.clone()).fit(&Halving)?;
    // Later (or after a crash): three more epochs from the last checkpoint.
    let resumed = kindling::RunConfig { epochs: 6, resume: true, ..run };
    let summary = Trainer::new(resumed).augment(pipeline).fit(&Halving)?;
    let best = summary.best.expect("six epochs ran");
    println!("best {} {:.3} at epoch {}", best.metric, best.value, best.epoch);
    anyhow::ensure!(best.value > 0.9 && summary.resumed_from == 3, "trains and resumes");
    Ok(())
}
