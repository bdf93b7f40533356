//! The Burn side of a data pipeline: a batcher that augments each item with its own
//! `(seed, epoch, index)` stream — in whatever worker thread calls it — and stacks the result
//! into tensors. Burn's `DataLoader` gives batchers no RNG and no index; carrying the index in
//! the item ([`IndexedDataset`]) is what makes the result independent of the number of workers
//! and of the shuffle.
//!
//! ```
//! use std::sync::Arc;
//! use burn::data::dataloader::DataLoaderBuilder;
//! use burn::data::dataset::InMemDataset;
//! use burn::tensor::Device;
//! use kindling_augment::{AugmentBatcher, Fliplr, ImageBuf, IndexedDataset, Pipeline, Sample};
//!
//! let samples: Vec<Sample> = (0..8u8)
//!     .map(|i| Sample::new(ImageBuf::filled(16, 12, 3, i * 30).unwrap()))
//!     .collect();
//! let pipeline = Arc::new(Pipeline::new(Fliplr { p: 0.5 }, 42)?);
//! let batcher = AugmentBatcher::new(pipeline, &[0.5], &[0.25]);
//! let loader = DataLoaderBuilder::new(batcher.clone())
//!     .batch_size(4)
//!     .shuffle(7)
//!     .num_workers(2) // augmentation runs in the workers
//!     .set_device(Device::default())
//!     .build(IndexedDataset::new(InMemDataset::new(samples)));
//! for epoch in 0..2 {
//!     batcher.set_epoch(epoch);
//!     for batch in loader.iter() {
//!         let batch = batch.expect("dataset item").expect("augmented");
//!         assert_eq!(batch.images.dims(), [4, 3, 12, 16]);
//!     }
//! }
//! # Ok::<(), kindling_augment::AugmentError>(())
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Int, Tensor, TensorData};
use rayon::prelude::*;

use crate::{AugmentError, BBox, Image, Keypoint, Pipeline, Result, Sample, to_tensor, with_image};

/// One dataset item: the sample and its index in the dataset.
#[derive(Debug, Clone)]
pub struct Item {
    /// The sample (image and targets).
    pub sample: Sample,
    /// The sample's index in its dataset (not in the batch): it keys the random stream.
    pub index: u64,
}

/// Wraps a dataset of samples so that each item carries its index: the key of its random
/// stream. Give this (not a shuffled view of it) to Burn's `DataLoaderBuilder::build`; the
/// loader's shuffle then reorders items without changing their augmentation.
#[derive(Debug, Clone)]
pub struct IndexedDataset<D> {
    inner: D,
}

impl<D> IndexedDataset<D> {
    /// Wraps `inner`.
    pub fn new(inner: D) -> Self {
        Self { inner }
    }
}

impl<D, E> Dataset<Item, E> for IndexedDataset<D>
where
    D: Dataset<Sample, E>,
    E: std::error::Error + Send + Sync + 'static,
{
    fn get(&self, index: usize) -> std::result::Result<Item, E> {
        self.inner.get(index).map(|sample| Item {
            sample,
            index: index as u64,
        })
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

/// An augmented batch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The dataset index of every item, in batch order.
    pub indices: Vec<u64>,
    /// `[N, C, H, W]`, normalised.
    pub images: Tensor<4>,
    /// The first mask of every item as class indices `[N, H, W]`, when every item has one.
    pub masks: Option<Tensor<3, Int>>,
    /// Boxes per item, after clipping and filtering (labels inside).
    pub boxes: Vec<Vec<BBox>>,
    /// Keypoints per item.
    pub keypoints: Vec<Vec<Keypoint>>,
}

/// Augments items and stacks them: the `Batcher` of a Burn data pipeline.
#[derive(Debug, Clone)]
pub struct AugmentBatcher {
    pipeline: Arc<Pipeline>,
    mean: Vec<f32>,
    std: Vec<f32>,
    epoch: Arc<AtomicU64>,
}

impl AugmentBatcher {
    /// A batcher normalising with `mean` and `std` (per channel, or one value).
    pub fn new(pipeline: Arc<Pipeline>, mean: &[f32], std: &[f32]) -> Self {
        Self {
            pipeline,
            mean: mean.to_vec(),
            std: std.to_vec(),
            epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Sets the epoch whose streams the next batches use (shared by every clone, so the
    /// training loop sets it once for all workers).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// Augments every item (in parallel on the current rayon pool) and stacks the batch on
    /// `device`. Items must come out of the pipeline at one size.
    pub fn batch(&self, items: Vec<Item>, device: &Device) -> Result<Batch> {
        let epoch = self.epoch.load(Ordering::Relaxed);
        let indices: Vec<u64> = items.iter().map(|item| item.index).collect();
        let samples: Vec<Sample> = items
            .into_par_iter()
            .map(|item| self.pipeline.augment(item.sample, epoch, item.index))
            .collect::<Result<_>>()?;
        let images: Vec<Image> = samples.iter().map(|s| s.image.clone()).collect();
        let tensor = to_tensor(&images, &self.mean, &self.std, device)?;
        let masks = if !samples.is_empty() && samples.iter().all(|s| !s.masks.is_empty()) {
            let (w, h) = (images[0].width(), images[0].height());
            let mut ids = Vec::with_capacity(samples.len() * w * h);
            for s in &samples {
                with_image!(&s.masks[0], m => {
                    let c = m.channels();
                    ids.extend(m.data().chunks_exact(c).map(|px| crate::Pixel::to_f32(px[0]) as i64));
                });
            }
            if ids.len() != samples.len() * w * h {
                return Err(AugmentError::Target(
                    "masks of different sizes in one batch".into(),
                ));
            }
            Some(Tensor::from_data(
                TensorData::new(ids, [samples.len(), h, w]),
                device,
            ))
        } else {
            None
        };
        Ok(Batch {
            indices,
            images: tensor,
            masks,
            boxes: samples.iter().map(|s| s.boxes.clone()).collect(),
            keypoints: samples.iter().map(|s| s.keypoints.clone()).collect(),
        })
    }
}

/// Burn's batcher: a bad sample becomes an `Err` batch for the training loop to report, never
/// a panic inside a worker thread.
impl Batcher<Item, Result<Batch>> for AugmentBatcher {
    fn batch(&self, items: Vec<Item>, device: &Device) -> Result<Batch> {
        AugmentBatcher::batch(self, items, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Fliplr, ImageBuf};

    #[test]
    fn batches_do_not_depend_on_how_items_are_grouped() {
        let pipeline = Arc::new(Pipeline::new(Fliplr { p: 0.5 }, 3).unwrap());
        let batcher = AugmentBatcher::new(pipeline, &[0.5], &[0.25]);
        batcher.set_epoch(2);
        let items: Vec<Item> = (0..6u8)
            .map(|i| {
                let data = (0..8 * 4 * 3)
                    .map(|v| (v as u8).wrapping_mul(i + 1))
                    .collect();
                let img = ImageBuf::new(8, 4, 3, data).unwrap();
                let mask =
                    ImageBuf::new(8, 4, 1, (0..32).map(|v| (v % 3) as u8).collect()).unwrap();
                Item {
                    sample: Sample::new(img).with_mask(mask),
                    index: 10 + i as u64,
                }
            })
            .collect();
        let device = Device::default();
        let whole = batcher.batch(items.clone(), &device).unwrap();
        let first = batcher.batch(items[..2].to_vec(), &device).unwrap();
        let rest = batcher.batch(items[2..].to_vec(), &device).unwrap();
        let joined = Tensor::cat(vec![first.images, rest.images], 0);
        assert_eq!(whole.images.into_data(), joined.into_data());
        assert_eq!(whole.masks.unwrap().dims(), [6, 4, 8]);
    }
}
