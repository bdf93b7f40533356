//! Burn's own `DataLoader` driving the augmentation: per-item results must not depend on the
//! number of workers or on the shuffle, and must change with the epoch.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::tensor::Device;
use kindling_augment::{
    AugmentBatcher, AugmentError, ImageBuf, IndexedDataset, Pipeline, PipelineConfig, Sample,
};

fn samples() -> Vec<Sample> {
    (0..23u32)
        .map(|i| {
            let data = (0..20 * 14 * 3)
                .map(|v| ((v * 7 + i * 31) % 256) as u8)
                .collect();
            Sample::new(ImageBuf::new(20, 14, 3, data).unwrap())
        })
        .collect()
}

fn batcher() -> AugmentBatcher {
    let config = PipelineConfig::parse(
        r#"{"seed": 5, "pipeline": {"op": "sequential", "children": [
            {"op": "fliplr", "p": 0.5},
            {"op": "affine", "rotate": [-20, 20], "scale": [0.9, 1.1]},
            {"op": "additive_gaussian_noise", "scale": [0, 20]}]}}"#,
        "json",
    )
    .unwrap();
    let pipeline = Arc::new(Pipeline::from_config(config).unwrap());
    AugmentBatcher::new(pipeline, &[0.5], &[0.25])
}

/// Every item's augmented image (as values), keyed by its dataset index.
fn per_item(workers: usize, shuffle: u64, epoch: u64) -> BTreeMap<u64, Vec<f32>> {
    let batcher = batcher();
    batcher.set_epoch(epoch);
    let loader = DataLoaderBuilder::new(batcher)
        .batch_size(4)
        .shuffle(shuffle)
        .num_workers(workers)
        .set_device(Device::default())
        .build(IndexedDataset::new(InMemDataset::new(samples())));
    let mut out = BTreeMap::new();
    for batch in loader.iter() {
        let batch = batch.expect("dataset item").expect("augmented batch");
        let n = batch.indices.len();
        let values = batch.images.into_data().try_to_vec::<f32>().unwrap();
        let per = values.len() / n;
        for (k, index) in batch.indices.iter().enumerate() {
            out.insert(*index, values[k * per..(k + 1) * per].to_vec());
        }
    }
    out
}

#[test]
fn burn_dataloader_results_do_not_depend_on_workers_or_shuffle() {
    let one = per_item(0, 1, 3);
    assert_eq!(one.len(), 23);
    assert_eq!(one, per_item(3, 1, 3), "3 workers vs the main thread");
    assert_eq!(one, per_item(2, 99, 3), "another shuffle and 2 workers");
    assert_ne!(one, per_item(2, 1, 4), "a new epoch draws new parameters");
}

#[test]
fn a_bad_sample_is_an_error_batch_not_a_panic() {
    let mut items = samples();
    // A mask whose size differs from its image.
    items[2] = items[2]
        .clone()
        .with_mask(ImageBuf::new(3, 3, 1, vec![0u8; 9]).unwrap());
    let loader = DataLoaderBuilder::new(batcher())
        .batch_size(4)
        .num_workers(2)
        .build(IndexedDataset::new(InMemDataset::new(items)));
    let errors: Vec<AugmentError> = loader
        .iter()
        .filter_map(|b| b.expect("dataset item").err())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].to_string().contains("mask"), "{}", errors[0]);
}
