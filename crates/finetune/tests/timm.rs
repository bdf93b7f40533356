//! timm 1.0.22 semantics: `list_models`, `adapt_input_conv`, and the eval transform on real
//! photos (within 1 grey level of timm + Pillow). Fixtures: `tests/fixtures/zoo/generate_timm.py`.

use std::path::PathBuf;

use burn::tensor::TensorData;
use kindling_augment::ImageBuf;
use kindling_finetune::weights::adapt_input_conv;
use kindling_finetune::{EvalTransform, IMAGENET_MEAN, IMAGENET_STD, Interpolation, list_models};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()),
    )
    .join("../../tests/fixtures/zoo")
}

fn fixture() -> Value {
    let text = std::fs::read_to_string(fixtures().join("timm.json")).expect("timm.json");
    serde_json::from_str(&text).expect("JSON")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

#[test]
fn list_models_matches_timm_on_the_shared_names() {
    let f = fixture();
    let shared = strings(&f["shared_names"]);
    for case in f["list_models"].as_array().expect("cases") {
        let filters = strings(&case["filters"]);
        let exclude = strings(&case["exclude"]);
        let f_refs: Vec<&str> = filters.iter().map(String::as_str).collect();
        let x_refs: Vec<&str> = exclude.iter().map(String::as_str).collect();
        let got: Vec<String> = list_models(&f_refs, &x_refs, false)
            .into_iter()
            .filter(|n| shared.contains(n))
            .collect();
        assert_eq!(
            got,
            strings(&case["names"]),
            "filters {filters:?} exclude {exclude:?}"
        );
    }
}

#[test]
fn adapt_input_conv_matches_timm() {
    let f = fixture();
    let a = &f["adapt_input_conv"];
    let values = |v: &Value| -> Vec<f32> {
        v.as_array()
            .expect("values")
            .iter()
            .map(|x| x.as_f64().expect("f") as f32)
            .collect()
    };
    let weight = TensorData::new(values(&a["weight"]), [4, 3, 3, 3]);
    for (c, want) in a["out"].as_object().expect("outputs") {
        let c: usize = c.parse().expect("channels");
        let got: Vec<f32> = adapt_input_conv(c, &weight)
            .expect("adapts")
            .try_to_vec()
            .expect("f32");
        let want = values(want);
        assert_eq!(got.len(), want.len(), "in_chans {c}");
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                "in_chans {c}: {g} vs {w}"
            );
        }
    }
}

fn load_png(name: &str) -> ImageBuf<u8> {
    let img = image::open(fixtures().join("transforms").join(name))
        .expect("png")
        .to_rgb8();
    let (w, h) = img.dimensions();
    ImageBuf::new(w as usize, h as usize, 3, img.into_raw()).expect("image")
}

#[test]
fn eval_transform_is_within_one_grey_level_of_timm() {
    let f = fixture();
    for case in f["transforms"].as_array().expect("cases") {
        let interpolation = match case["interpolation"].as_str() {
            Some("bicubic") => Interpolation::Bicubic,
            _ => Interpolation::Bilinear,
        };
        let t = EvalTransform::new(
            case["size"].as_u64().expect("size") as usize,
            case["crop_pct"].as_f64().expect("crop_pct"),
            interpolation,
            IMAGENET_MEAN,
            IMAGENET_STD,
        );
        let got = t
            .resize_and_crop(&load_png(case["input"].as_str().expect("input")))
            .expect("transform");
        let want = load_png(case["expected"].as_str().expect("expected"));
        assert_eq!((got.width(), got.height()), (want.width(), want.height()));
        let worst = got
            .data()
            .iter()
            .zip(want.data())
            .map(|(a, b)| (*a as i32 - *b as i32).abs())
            .max()
            .unwrap_or(0);
        let exact = got
            .data()
            .iter()
            .zip(want.data())
            .filter(|(a, b)| a == b)
            .count();
        eprintln!(
            "{case}: max diff {worst}, {exact}/{} exact",
            got.data().len()
        );
        assert!(worst <= 1, "{case}: {worst} grey levels off");
    }
}
