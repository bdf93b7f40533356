//! What every image-classification task shares, whatever its model: the loaded ImageFolder
//! dataset, the run's loss over `[N, C]` logits, the training step and the validation loop
//! (loss and accuracy). `classify` (a [`SmallCnn`](super::classify::SmallCnn)) and `finetune`
//! (a zoo model) are this plus their model.

use std::sync::OnceLock;

use burn::tensor::{Device, Int, Tensor, TensorData};
use kindling_augment::Batch;
use kindling_losses::{AnyLoss, LossConfig};

use crate::error::{Result, TrainError};
use crate::task::StepOutput;
use crate::tasks::classify::data::{Dataset, Sample};

/// The loss and data half of a classification task.
pub struct Classifier {
    task: &'static str,
    loss: LossConfig,
    /// The loss on the training device, built once by [`Classifier::init_loss`].
    train_loss: OnceLock<AnyLoss>,
    data: OnceLock<Dataset>,
}

impl Classifier {
    /// For the task named `task`, training with `loss`.
    pub fn new(task: &'static str, loss: LossConfig) -> Self {
        Self {
            task,
            loss,
            train_loss: OnceLock::new(),
            data: OnceLock::new(),
        }
    }

    /// Keeps the loaded dataset (once).
    pub fn set_data(&self, data: Dataset) {
        let _ = self.data.set(data);
    }

    /// The loaded dataset, if [`Classifier::set_data`] ran.
    pub fn dataset(&self) -> Option<&Dataset> {
        self.data.get()
    }

    /// The loaded dataset, or an error saying it is not loaded yet.
    pub fn loaded(&self) -> Result<&Dataset> {
        self.data
            .get()
            .ok_or_else(|| TrainError::Task(format!("{}: the data is not loaded yet", self.task)))
    }

    /// Builds the training loss on `device` and checks on a two-sample batch that it fits
    /// classification (`[N, C]` logits, `[N]` class indices), so a loss that does not fails
    /// before training, naming why.
    pub fn init_loss(&self, device: &Device, classes: usize) -> Result<()> {
        let loss = self.build_loss(device)?;
        let logits = Tensor::<2>::zeros([2, classes], device);
        let labels = Tensor::<1, Int>::from_ints([0, (classes > 1) as i32], device);
        loss.try_forward(logits, labels).map_err(|e| {
            TrainError::Loss(format!(
                "loss `{}` does not fit classification ([N, C] logits, [N] class indices): {e}; \
                 try cross_entropy, focal (mode = \"multiclass\") or softmax_focal",
                self.loss.name()
            ))
        })?;
        let _ = self.train_loss.set(loss);
        Ok(())
    }

    fn build_loss(&self, device: &Device) -> Result<AnyLoss> {
        self.loss
            .init(device)
            .map_err(|e| TrainError::Loss(format!("building the loss: {e}")))
    }

    /// Logits, labels and the number of correct predictions of a batch.
    fn forward(
        forward: impl FnOnce(Tensor<4>) -> Tensor<2>,
        batch: &Batch,
        samples: &[Sample],
    ) -> (Tensor<2>, Tensor<1, Int>, usize) {
        let device = batch.images.device();
        let labels: Vec<i64> = batch
            .indices
            .iter()
            .map(|&i| samples[i as usize].label as i64)
            .collect();
        let labels = Tensor::from_data(TensorData::new(labels, [batch.indices.len()]), &device);
        let logits = forward(batch.images.clone());
        let correct = crate::metrics::correct(&logits, &labels);
        (logits, labels, correct)
    }

    /// The loss and accuracy of a training batch.
    pub fn train_step(
        &self,
        forward: impl FnOnce(Tensor<4>) -> Tensor<2>,
        batch: &Batch,
    ) -> Result<StepOutput> {
        let data = self.loaded()?;
        let (logits, labels, correct) = Self::forward(forward, batch, &data.train);
        let built;
        let loss_fn = match self.train_loss.get() {
            Some(loss) => loss,
            None => {
                built = self.build_loss(&logits.device())?;
                &built
            }
        };
        let loss = loss_fn
            .try_forward(logits, labels)
            .map_err(|e| TrainError::Loss(format!("computing the loss: {e}")))?;
        Ok(StepOutput {
            loss,
            metrics: vec![correct as f64 / batch.indices.len().max(1) as f64],
        })
    }

    /// `[val_loss, val_accuracy]` over the validation batches.
    pub fn evaluate(
        &self,
        forward: impl Fn(Tensor<4>) -> Tensor<2>,
        batches: &mut dyn Iterator<Item = Result<Batch>>,
    ) -> Result<Vec<f64>> {
        let data = self.loaded()?;
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut loss_fn = None;
        for batch in batches {
            let batch = batch?;
            let (logits, labels, batch_correct) = Self::forward(&forward, &batch, &data.val);
            if loss_fn.is_none() {
                loss_fn = Some(self.build_loss(&logits.device())?);
            }
            let loss: f64 = loss_fn
                .as_ref()
                .map(|l| l.try_forward(logits, labels))
                .transpose()
                .map_err(|e| TrainError::Loss(format!("computing the validation loss: {e}")))?
                .map_or(0.0, |t| t.into_scalar::<f32>().into());
            let n = batch.indices.len();
            loss_sum += loss * n as f64;
            correct += batch_correct;
            seen += n;
        }
        let n = seen.max(1) as f64;
        Ok(vec![loss_sum / n, correct as f64 / n])
    }

    /// The task state saved in checkpoints: the class names.
    pub fn state(&self) -> serde_json::Value {
        match self.data.get() {
            Some(d) => serde_json::json!({ "classes": d.classes }),
            None => serde_json::Value::Null,
        }
    }
}
