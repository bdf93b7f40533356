//! Weights files: save/load round trips, timm's head and input rules through a real file, and
//! every bad input the loader must refuse with a clear error.

use burn::tensor::{Device, Tensor};
use kindling_finetune::{
    FinetuneError, ModelOptions, create_model, load_file, save_burnpack, save_safetensors,
};

fn logits(model: &kindling_finetune::ZooModel, device: &Device, chans: usize) -> Vec<f32> {
    let x = Tensor::<4>::ones([1, chans, 32, 32], device);
    model.forward(x).into_data().try_to_vec().expect("f32")
}

#[test]
fn safetensors_and_burnpack_round_trip_exactly() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let model = create_model("resnet18", ModelOptions::default().num_classes(7), &device).unwrap();
    let want = logits(&model, &device, 3);
    for file in ["m.safetensors", "m.bpk"] {
        let path = dir.path().join(file);
        if file.ends_with("bpk") {
            save_burnpack(&model, &path).unwrap();
        } else {
            save_safetensors(&model, &path).unwrap();
        }
        let loaded = create_model(
            "resnet18",
            ModelOptions::default()
                .num_classes(7)
                .pretrained_file(&path),
            &device,
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(logits(&loaded, &device, 3), want, "{file}");
    }
}

#[test]
fn a_different_head_is_reinitialised_and_one_channel_adapted() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r18.safetensors");
    let source = create_model("resnet18", ModelOptions::default(), &device).unwrap();
    save_safetensors(&source, &path).unwrap();
    let mut model = create_model(
        "resnet18",
        ModelOptions::default().num_classes(4).in_chans(1),
        &device,
    )
    .unwrap();
    let report = load_file(&mut model, &path, true).unwrap();
    assert_eq!(report.reinitialized, ["fc.bias", "fc.weight"]);
    assert_eq!(report.adapted, ["conv1.weight"]);
    // A grey image through the adapted conv equals the RGB image (r = g = b) through the original.
    let grey = logits(&model.clone(), &device, 1);
    assert_eq!(grey.len(), 4);
    let x3 = Tensor::<4>::ones([1, 3, 32, 32], &device);
    let x1 = Tensor::<4>::ones([1, 1, 32, 32], &device);
    let (f3, f1) = (source.forward_features(x3), model.forward_features(x1));
    let (f3, f1) = (f3.into_map(), f1.into_map());
    let diff: f32 = (f3 - f1).abs().max().into_scalar();
    assert!(diff < 1e-4, "adapted conv differs by {diff}");
}

#[test]
fn weights_of_another_architecture_get_one_report() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r18.safetensors");
    save_safetensors(
        &create_model("resnet18", ModelOptions::default(), &device).unwrap(),
        &path,
    )
    .unwrap();
    let err = create_model(
        "resnet50",
        ModelOptions::default().pretrained_file(&path),
        &device,
    )
    .unwrap_err();
    let FinetuneError::WeightsMismatch { report, .. } = &err else {
        panic!("expected a mismatch report, got {err}");
    };
    assert!(
        !report.missing.is_empty() && !report.mismatched.is_empty(),
        "{report}"
    );
    let text = err.to_string();
    assert!(
        text.contains("layer1.0.conv3.weight") && text.contains("mis-shaped"),
        "{text}"
    );
    // Non-strict loading returns the same report instead of failing.
    let mut model = create_model("resnet50", ModelOptions::default(), &device).unwrap();
    let loose = load_file(&mut model, &path, false).unwrap();
    assert_eq!(&loose, report.as_ref());
}

#[test]
fn corrupt_truncated_and_unknown_files_name_themselves() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("r18.safetensors");
    save_safetensors(
        &create_model("resnet18", ModelOptions::default(), &device).unwrap(),
        &good,
    )
    .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cases = [
        ("truncated.safetensors", bytes[..bytes.len() / 3].to_vec()),
        ("garbage.pth", b"this is not a torch file".to_vec()),
        ("empty.bpk", Vec::new()),
        ("weights.onnx", b"x".to_vec()),
    ];
    for (name, content) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = create_model(
            "resnet18",
            ModelOptions::default().pretrained_file(&path),
            &device,
        )
        .unwrap_err();
        assert!(
            matches!(err, FinetuneError::ReadWeights { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    let missing = dir.path().join("nope.pth");
    let err = create_model(
        "resnet18",
        ModelOptions::default().pretrained_file(&missing),
        &device,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("nope.pth") && err.to_string().contains("no such file"),
        "{err}"
    );
}

#[test]
fn bad_names_tags_and_options_are_refused() {
    let device = Device::flex();
    let err = create_model("resnet19", ModelOptions::default(), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean 'resnet18'"), "{err}");
    let err = create_model("resnet18.in22k", ModelOptions::default(), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("in22k") && err.contains("tv_in1k"), "{err}");
    let err = create_model("resnet18", ModelOptions::default().in_chans(0), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("in_chans = 0"), "{err}");
    let err = create_model("resnet18", ModelOptions::default().drop_rate(1.5), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("drop_rate = 1.5"), "{err}");
}

#[test]
fn pretrained_without_a_cached_file_names_the_expected_path() {
    let home = tempfile::tempdir().unwrap();
    // SAFETY: this test binary's other tests do not read KINDLING_HOME.
    unsafe { std::env::set_var("KINDLING_HOME", home.path()) };
    let device = Device::flex();
    let err = create_model(
        "resnet18",
        ModelOptions::default().pretrained(true),
        &device,
    )
    .unwrap_err();
    let text = err.to_string();
    let expected = home
        .path()
        .join("hub/resnet18.tv_in1k/resnet18-f37072fd.pth");
    assert!(text.contains(&expected.display().to_string()), "{text}");
    assert!(
        text.contains("https://download.pytorch.org/models/resnet18-f37072fd.pth"),
        "{text}"
    );
}

#[test]
fn an_identity_head_returns_pooled_features() {
    let device = Device::flex();
    let mut model =
        create_model("resnet18", ModelOptions::default().num_classes(0), &device).unwrap();
    assert_eq!(model.num_classes(), 0);
    assert_eq!(logits(&model, &device, 3).len(), 512);
    model.reset_classifier(3, &device);
    assert_eq!(logits(&model, &device, 3).len(), 3);
}

/// Real `torch.save` files of torchvision's shufflenet_v2_x0_5 (10 classes): zip, legacy
/// (f16, wrapped in a checkpoint dict) and safetensors (`generate_files.py`).
#[test]
fn real_torch_files_give_torchvisions_logits() {
    use burn::tensor::TensorData;
    let dir = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../tests/fixtures/zoo/files");
    let f: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let device = Device::flex();
    let shape = [2, 3, 64, 64];
    let x = Tensor::<4>::from_data(
        TensorData::new(kindling_finetune::testing::fill("input", &shape), shape),
        &device,
    );
    for (file, key) in [
        ("shufflenet_zip.pth", "logits_f32"),
        ("shufflenet_legacy.pt", "logits_f16"),
        ("shufflenet.safetensors", "logits_f32"),
    ] {
        let options = ModelOptions::default()
            .num_classes(10)
            .pretrained_file(dir.join(file));
        let model = create_model("shufflenet_v2_x0_5", options, &device)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let got: Vec<f32> = model.forward(x.clone()).into_data().try_to_vec().unwrap();
        let want = f[key].as_array().unwrap();
        let worst = got
            .iter()
            .zip(want)
            .map(|(g, w)| (*g as f64 - w.as_f64().unwrap()).abs())
            .fold(0.0, f64::max);
        eprintln!("{file}: max |Δ logits| {worst:.1e}");
        assert!(worst <= 1e-4, "{file}: {worst}");
    }
}
