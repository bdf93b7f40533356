//! One training step (forward in training mode, cross-entropy, backward, SGD lr 0.1) equals
//! PyTorch's: loss, every parameter and buffer after the step (BatchNorm's batch statistics
//! and unbiased running variance included). Fixtures: `generate_train_step.py` (float64 in
//! torch; float32 here).

use std::path::PathBuf;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot};
use kindling_finetune::testing::fill;
use kindling_finetune::weights::load_into;
use kindling_finetune::{
    LoadOptions, ModelOptions, StateDict, ZooModel, create_model, model_entry,
};
use serde_json::Value;

fn state(model: &ZooModel) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let _ = model.valid(); // synchronise the running statistics
    model
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| {
            let data = burn_store::bridge::to_data(&t).expect("data");
            (
                t.name.clone(),
                t.shape.to_vec(),
                data.convert::<f32>().try_to_vec().expect("f32"),
            )
        })
        .collect()
}

fn train_step(name: &str) {
    let path = PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join(format!("../../tests/fixtures/zoo/train_step_{name}.json"));
    let f: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON");
    let (batch, size) = (
        f["batch"].as_u64().unwrap() as usize,
        f["size"].as_u64().unwrap() as usize,
    );
    let classes = f["num_classes"].as_u64().unwrap() as usize;

    let device = Device::flex().autodiff();
    let options = ModelOptions::default().num_classes(classes).drop_rate(0.0);
    let mut model = create_model(name, options, &device).expect("builds");
    let weights = state(&model).into_iter().map(|(k, shape, _)| {
        let data = TensorData::new(fill(&k, &shape), shape);
        (k, data)
    });
    let entry = model_entry(name).expect("registered");
    load_into(
        &mut model,
        entry,
        StateDict::from_pytorch(weights),
        &LoadOptions::default(),
    )
    .expect("loads");

    let shape = [batch, 3, size, size];
    let x = Tensor::<4>::from_data(TensorData::new(fill("input", &shape), shape), &device);
    let targets: Vec<i64> = f["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    let targets = Tensor::<1, Int>::from_data(TensorData::new(targets, [batch]), &device);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(model.forward(x), targets);
    let loss_value: f32 = loss.clone().into_scalar();
    let want_loss = f["loss"].as_f64().unwrap();
    assert!(
        (loss_value as f64 - want_loss).abs() <= 1e-4,
        "{name}: loss {loss_value} vs {want_loss}"
    );

    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut sgd = SgdConfig::new().init();
    let model = sgd.step(f["lr"].as_f64().unwrap(), model, grads);

    let mut worst: (f64, String) = (0.0, String::new());
    for (key, _, values) in state(&model) {
        let Some(sums) = f["sums"].get(&key) else {
            panic!("{name}: {key} not in the fixture");
        };
        let sum: f64 = values.iter().map(|&v| v as f64).sum();
        let abs: f64 = values.iter().map(|&v| (v as f64).abs()).sum();
        for (got, want) in [
            (sum, sums[0].as_f64().unwrap()),
            (abs, sums[1].as_f64().unwrap()),
        ] {
            // Sums over many values: compare relative to their magnitude (and the count).
            let scale = want.abs().max(values.len() as f64 * 1e-2).max(1.0);
            let err = (got - want).abs() / scale;
            if err > worst.0 {
                worst = (err, key.clone());
            }
            assert!(err <= 1e-4, "{name}: {key} sum {got} vs {want}");
        }
        if let Some(want) = f["values"].get(&key) {
            for (i, (g, w)) in values.iter().zip(want.as_array().unwrap()).enumerate() {
                let w = w.as_f64().unwrap();
                assert!(
                    (*g as f64 - w).abs() <= 1e-4,
                    "{name}: {key}[{i}] {g} vs {w}"
                );
            }
        }
    }
    eprintln!(
        "{name}: loss {loss_value} (torch {want_loss}); worst relative sum error {:.1e} at {}",
        worst.0, worst.1
    );
}

#[test]
fn resnet18_training_step_matches_pytorch() {
    train_step("resnet18");
}

#[test]
fn mobilenet_v3_small_training_step_matches_pytorch() {
    train_step("mobilenet_v3_small");
}
