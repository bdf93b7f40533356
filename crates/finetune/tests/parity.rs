//! Every zoo builder against torchvision 0.24: the same deterministic weights (a function of
//! each `state_dict` key, see `kindling_finetune::testing`) loaded through the PyTorch-key
//! path, eval mode, logits within 1e-4 absolute of torchvision's (computed in float64).
//! Fixtures: `tests/fixtures/zoo/generate_zoo.py`.

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use kindling_finetune::testing::fill;
use kindling_finetune::weights::load_into;
use kindling_finetune::{
    LoadOptions, ModelOptions, StateDict, create_model, list_models, model_entry,
};
use serde_json::Value;

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/zoo")
}

fn dims(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("shape array")
        .iter()
        .map(|d| d.as_u64().expect("dimension") as usize)
        .collect()
}

fn parity(name: &str) {
    let path = fixture_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fixture: Value = serde_json::from_str(&text).expect("fixture JSON");
    let device = Device::flex();
    let mut model = create_model(name, ModelOptions::default(), &device).expect("builds");
    let tensors = fixture["keys"].as_array().expect("keys").iter().map(|k| {
        let key = k[0].as_str().expect("key").to_string();
        let shape = dims(&k[1]);
        let n: usize = shape.iter().product();
        let data = match k[2].as_str() {
            Some("i64") => TensorData::new(vec![0i64; n], shape),
            _ => TensorData::new(fill(&key, &shape), shape),
        };
        (key, data)
    });
    let report = load_into(
        &mut model,
        model_entry(name).expect("registered"),
        StateDict::from_pytorch(tensors),
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_exact(), "{report}");

    let shape: [usize; 4] = dims(&fixture["input_shape"]).try_into().expect("4-D input");
    let input = Tensor::<4>::from_data(TensorData::new(fill("input", &shape), shape), &device);
    let got: Vec<f32> = model
        .forward(input)
        .into_data()
        .try_to_vec()
        .expect("f32 logits");
    let want: Vec<f64> = fixture["logits"]
        .as_array()
        .expect("logits")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect();
    assert_eq!(got.len(), want.len(), "{name}: logit count");
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (*g as f64 - w).abs())
        .fold(0.0, f64::max);
    eprintln!("{name}: max |Δ logits| = {worst:.2e}");
    assert!(
        worst <= 1e-4,
        "{name}: logits differ from torchvision by {worst:e}"
    );
}

macro_rules! parity_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                parity(stringify!($name));
            }
        )*

        #[test]
        fn every_registered_builder_has_a_parity_test() {
            let tested: Vec<&str> = vec![$(stringify!($name)),*];
            for name in list_models(&[], &[], false) {
                assert!(tested.contains(&name.as_str()), "{name} has no parity test");
            }
        }
    };
}

parity_tests! {
    resnet18, resnet34, resnet50, resnet101, resnet152, resnext50_32x4d, resnext101_32x8d,
    wide_resnet50_2, wide_resnet101_2,
}
