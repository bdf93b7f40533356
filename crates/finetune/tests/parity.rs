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
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../tests/fixtures/zoo")
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
    mobilenet_v2, mobilenet_v3_small, mobilenet_v3_large,
    efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3, regnet_y_400mf,
    convnext_tiny, convnext_small, vit_b_16,
    vgg11, vgg13, vgg16, vgg11_bn, vgg16_bn, squeezenet1_0, squeezenet1_1, densenet121,
    shufflenet_v2_x0_5, shufflenet_v2_x1_0,
}

/// torchvision's pre-0.4 DenseNet keys (`denselayer1.norm.1.weight`, still those of the
/// download links) load through the family's key rule, to the same logits.
#[test]
fn densenet121_loads_old_keys() {
    let path = fixture_dir().join("densenet121.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let fixture: Value = serde_json::from_str(&text).expect("fixture JSON");
    let device = Device::flex();
    let mut model = create_model("densenet121", ModelOptions::default(), &device).expect("builds");
    let mut renamed = 0;
    let tensors: Vec<(String, TensorData)> = fixture["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k[2].as_str() != Some("i64"))
        .map(|k| {
            let key = k[0].as_str().expect("key").to_string();
            let shape = dims(&k[1]);
            let data = TensorData::new(fill(&key, &shape), shape);
            let name = old_densenet_key(&key);
            renamed += usize::from(name != key);
            (name, data)
        })
        .collect();
    assert!(renamed > 400, "only {renamed} keys in the old form");
    let report = load_into(
        &mut model,
        model_entry("densenet121").expect("registered"),
        StateDict::from_pytorch(tensors),
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.is_exact(), "{report}");
    let shape: [usize; 4] = dims(&fixture["input_shape"]).try_into().expect("4-D input");
    let input = Tensor::<4>::from_data(TensorData::new(fill("input", &shape), shape), &device);
    let got: Vec<f32> = model.forward(input).into_data().try_to_vec().expect("f32");
    let worst = got
        .iter()
        .zip(fixture["logits"].as_array().expect("logits"))
        .map(|(g, w)| (*g as f64 - w.as_f64().expect("number")).abs())
        .fold(0.0, f64::max);
    assert!(worst <= 1e-4, "old keys: logits differ by {worst:e}");
}

/// `denselayer3.norm1.weight` → `denselayer3.norm.1.weight` (torchvision's old naming).
fn old_densenet_key(key: &str) -> String {
    if !key.contains(".denselayer") {
        return key.to_string();
    }
    for part in ["norm1", "norm2", "conv1", "conv2"] {
        let new = format!(".{part}.");
        if let Some(i) = key.rfind(&new) {
            let old = format!(".{}.{}.", &part[..4], &part[4..]);
            return format!("{}{old}{}", &key[..i], &key[i + new.len()..]);
        }
    }
    key.to_string()
}

/// VGG, SqueezeNet, DenseNet and ShuffleNet honour `num_classes` (0: features out, the last
/// classifier layer absent), `in_chans`, `global_pool` and `reset_classifier`.
#[test]
fn classic_cnn_heads_follow_the_options() {
    use kindling_finetune::GlobalPool;
    let device = Device::flex();
    let x = |c| Tensor::<4>::zeros([1, c, 64, 64], &device);
    for (name, features) in [
        ("vgg11", 4096),
        ("squeezenet1_1", 512),
        ("densenet121", 1024),
        ("shufflenet_v2_x0_5", 1024),
    ] {
        let opts = ModelOptions::default().num_classes(0);
        let mut model = create_model(name, opts, &device).expect("builds");
        assert_eq!(model.num_classes(), 0, "{name}");
        assert_eq!(model.num_features(), features, "{name}");
        assert_eq!(model.forward(x(3)).dims(), [1, features], "{name}");
        model.reset_classifier(7, &device);
        assert_eq!(model.num_classes(), 7, "{name}");
        assert_eq!(model.forward(x(3)).dims(), [1, 7], "{name}");
        let f = model.forward_features(x(3));
        assert_eq!(model.forward_head(f, true).dims(), [1, features], "{name}");

        let opts = ModelOptions::default().num_classes(10).in_chans(1);
        let model = create_model(name, opts, &device).expect("builds");
        assert_eq!(model.forward(x(1)).dims(), [1, 10], "{name}");

        let opts = ModelOptions::default().global_pool(GlobalPool::CatAvgMax);
        let pooled = create_model(name, opts, &device);
        if name.starts_with("vgg") || name.starts_with("squeezenet") {
            assert!(pooled.is_err(), "{name}: its head does not pool globally");
        } else {
            let model = pooled.expect("builds");
            assert_eq!(model.num_features(), 2 * features, "{name}");
            assert_eq!(model.forward(x(3)).dims(), [1, 1000], "{name}");
        }
        let opts = ModelOptions::default().drop_path_rate(0.1);
        assert!(create_model(name, opts, &device).is_err(), "{name}");
    }
}
