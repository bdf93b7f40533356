//! `cargo xtask zoo` as a user meets it: listing, describing, predicting, and its errors.

mod common;

use common::{run, run_ok, xtask};

#[test]
fn list_follows_timm_filters_and_tags() {
    let (out, _) = run_ok(xtask().args(["zoo", "list", "resnet1*", "vgg1?"]));
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(
        names,
        [
            "resnet18",
            "resnet101",
            "resnet152",
            "vgg11",
            "vgg13",
            "vgg16"
        ]
    );
    let (out, _) = run_ok(xtask().args(["zoo", "list", "resnet50", "--pretrained"]));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["resnet50.tv2_in1k", "resnet50.tv_in1k"]
    );
    let (out, _) = run_ok(xtask().args(["zoo", "list", "vgg*", "--exclude", "*_bn"]));
    assert_eq!(out.lines().collect::<Vec<_>>(), ["vgg11", "vgg13", "vgg16"]);
}

#[test]
fn info_shows_the_pretrained_cfg_and_size() {
    let (out, _) = run_ok(xtask().args(["zoo", "info", "resnet18"]));
    for needle in [
        "parameters   11689512",
        "GMACs        1.8",
        "default      resnet18.tv_in1k",
        "crop_pct     0.8750 (resize 256)",
        "hub_id       https://download.pytorch.org/models/resnet18-f37072fd.pth",
    ] {
        assert!(out.contains(needle), "`{needle}` missing:\n{out}");
    }
}

#[test]
fn bad_names_and_missing_weights_are_clear_errors() {
    let (ok, _, err) = run(xtask().args(["zoo", "info", "resnt18"]));
    assert!(!ok && err.contains("did you mean 'resnet18'"), "{err}");
    let home = tempfile::tempdir().unwrap();
    let img = home.path().join("x.png");
    image::RgbImage::new(40, 30).save(&img).unwrap();
    let (ok, _, err) = run(xtask()
        .env("KINDLING_HOME", home.path())
        .args(["zoo", "predict", "resnet18", "--image"])
        .arg(&img));
    assert!(!ok, "{err}");
    assert!(
        err.contains("hub/resnet18.tv_in1k/resnet18-f37072fd.pth"),
        "{err}"
    );
}

#[test]
fn import_onnx_writes_the_module_weights_and_readme() {
    let dir = tempfile::tempdir().unwrap();
    let model = format!(
        "{}/../tests/fixtures/onnx/ch_ppocr_mobile_v2.0_cls_infer.onnx",
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
    );
    let (_, err) = run_ok(
        xtask()
            .args(["import-onnx", &model, "--name", "cls", "--out"])
            .arg(dir.path()),
    );
    assert!(err.contains("input  `x` float32 [?, 3, ?, ?]"), "{err}");
    assert!(err.contains("removed the final `Softmax@0`"), "{err}");
    for file in ["cls.rs", "cls.bpk", "README.md"] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    let (ok, _, err) = run(xtask()
        .args(["import-onnx", "no/such.onnx", "--out"])
        .arg(dir.path()));
    assert!(
        !ok && err.contains("no/such.onnx") && !err.contains("panicked"),
        "{err}"
    );
}
