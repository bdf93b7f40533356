//! Batches for one epoch through Burn's `DataLoader`, identical for any number of workers.
//!
//! Burn's multi-threaded loader splits the (already ordered) dataset into one contiguous run
//! of whole batches per worker and hands batches over in arrival order, so with two workers
//! the order of batches depends on thread timing. The training order must not: this module
//! gives the loader an epoch's permutation as the dataset itself (no loader shuffle), lets
//! `AugmentBatcher` augment each item with its `(seed, epoch, dataset index)` stream in the
//! workers, and puts the batches back in permutation order before the trainer sees them.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::Device;
use kindling_augment::{AugmentBatcher, Batch, Item, Sample};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, TrainError};
use crate::task::SampleDataset;

/// The dataset in one epoch's order; each item keeps its index in the underlying dataset.
struct EpochView {
    inner: SampleDataset,
    order: Arc<Vec<usize>>,
}

impl Dataset<Item> for EpochView {
    fn get(&self, position: usize) -> Result<Item, DatasetError> {
        let index = self.order[position];
        self.inner.get(index).map(|sample: Sample| Item {
            sample,
            index: index as u64,
        })
    }
    fn len(&self) -> usize {
        self.order.len()
    }
}

/// One epoch of `dataset` in a given order, as batches on a device, augmented in the workers
/// of Burn's `DataLoader`.
pub struct EpochLoader {
    loader: Arc<dyn DataLoader<kindling_augment::Result<Batch>>>,
    position_of: Vec<usize>,
    batch_size: usize,
}

impl EpochLoader {
    /// Loads `dataset` in `order` as batches of `batch_size` on `device`, augmenting in
    /// `workers` threads (0 = in the caller's thread).
    pub fn new(
        dataset: &SampleDataset,
        order: Vec<usize>,
        batcher: &AugmentBatcher,
        batch_size: usize,
        workers: usize,
        device: &Device,
    ) -> Self {
        let mut position_of = vec![0usize; dataset.len()];
        for (position, &index) in order.iter().enumerate() {
            position_of[index] = position;
        }
        let view = EpochView {
            inner: dataset.clone(),
            order: Arc::new(order),
        };
        let loader = DataLoaderBuilder::new(batcher.clone())
            .batch_size(batch_size)
            .num_workers(workers)
            .set_device(device.clone())
            .build(view);
        Self {
            loader,
            position_of,
            batch_size,
        }
    }

    /// The batches, in the order given to [`EpochLoader::new`], whatever the workers' timing.
    pub fn iter(&self) -> impl Iterator<Item = Result<Batch>> + '_ {
        let inner = self.loader.iter().map(|item| match item {
            Ok(Ok(batch)) => Ok(batch),
            Ok(Err(e)) => Err(TrainError::Augment(e)),
            Err(e) => Err(TrainError::Data(format!("reading a sample: {e}"))),
        });
        Ordered {
            inner,
            pending: BTreeMap::new(),
            next: 0,
            batch_size: self.batch_size,
            position_of: &self.position_of,
            failed: false,
        }
    }
}

/// Re-orders batches by the position of their first item.
struct Ordered<'a, I> {
    inner: I,
    /// Batches that arrived early, by their first position.
    pending: BTreeMap<usize, Batch>,
    /// The first position of the batch to yield next.
    next: usize,
    batch_size: usize,
    position_of: &'a [usize],
    failed: bool,
}

impl<I: Iterator<Item = Result<Batch>>> Iterator for Ordered<'_, I> {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(batch) = self.pending.remove(&self.next) {
                self.next += self.batch_size;
                return Some(Ok(batch));
            }
            match self.inner.next() {
                // Only reached with a gap, which a complete epoch never has.
                None => return self.pending.pop_first().map(|(_, batch)| Ok(batch)),
                Some(Err(e)) => {
                    self.failed = true;
                    return Some(Err(e));
                }
                Some(Ok(batch)) => {
                    let first = batch
                        .indices
                        .first()
                        .map_or(usize::MAX, |&i| self.position_of[i as usize]);
                    self.pending.insert(first, batch);
                }
            }
        }
    }
}

/// The training order of `epoch`: a pure function of (seed, epoch).
pub fn shuffled(n: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(mix(seed, epoch));
    order.shuffle(&mut rng);
    order
}

/// Derives an independent 64-bit seed from (seed, stream) (SplitMix64 finaliser).
pub fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
