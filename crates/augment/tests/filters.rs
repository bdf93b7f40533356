//! Fidelity of the blur and convolution ops against the OpenCV/imgaug fixtures in
//! `tests/fixtures/augment` (made by `generate.py` there): each case's op, built from a pipeline
//! file, must land within 1 intensity level of the reference on at least 99 % of the values.
//! All cases here are exact references (OpenCV 4.11 through Albumentations 2.0.8 / imgaug 0.4.0).

use std::path::PathBuf;

use kindling_augment::{Image, Pipeline, PipelineConfig};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/augment")
}

/// The fixture case `name`: its input, its expected output and its op object.
fn case(name: &str) -> (Image, Image, serde_json::Value) {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no fixture case {name}"));
    let input = Image::open(fixtures().join(case["input"].as_str().unwrap())).unwrap();
    let output = Image::open(fixtures().join(case["output"].as_str().unwrap())).unwrap();
    (input, output, case["op"].clone())
}

/// Runs the case's op (its fixture object is a valid pipeline op here) and returns the
/// largest difference and the fraction of values within 1 level.
fn run(name: &str) -> (u8, f64) {
    let (input, expected, op) = case(name);
    let config = serde_json::json!({ "seed": 0, "pipeline": op });
    let config = PipelineConfig::parse(&config.to_string(), "json").unwrap();
    let pipeline = Pipeline::from_config(config).unwrap();
    let got = pipeline.augment_image(input, 0, 0).unwrap();
    let (Image::U8(got), Image::U8(want)) = (&got, &expected) else {
        panic!("{name}: expected u8 images");
    };
    assert_eq!(
        (got.width(), got.height(), got.channels()),
        (want.width(), want.height(), want.channels()),
        "{name}: shape"
    );
    let diffs: Vec<u8> = got
        .data()
        .iter()
        .zip(want.data())
        .map(|(a, b)| a.abs_diff(*b))
        .collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let within = diffs.iter().filter(|d| **d <= 1).count() as f64 / diffs.len() as f64;
    println!(
        "{name}: max diff {max}, {:.2} % within 1 level",
        within * 100.0
    );
    (max, within)
}

fn assert_close(name: &str) {
    let (max, within) = run(name);
    assert!(
        within >= 0.99,
        "{name}: only {:.2} % of values within 1 level (max diff {max})",
        within * 100.0
    );
}

#[test]
fn gaussian_blur_sigma_1_5_matches_opencv() {
    assert_close("gaussian_blur_s1.5");
}

#[test]
fn gaussian_blur_sigma_0_8_matches_opencv() {
    assert_close("gaussian_blur_s0.8");
}

#[test]
fn gaussian_blur_on_gray_matches_opencv() {
    assert_close("gaussian_blur_s1.5_gray");
}

#[test]
fn average_blur_k5_matches_cv2_blur_exactly() {
    // A running-sum box filter is integer-exact: no difference at all.
    assert_eq!(run("average_blur_k5"), (0, 1.0));
}

#[test]
fn median_blur_k5_matches_cv2_median_blur_exactly() {
    assert_eq!(run("median_blur_k5"), (0, 1.0));
}

#[test]
fn sharpen_matches_imgaug() {
    assert_close("sharpen_a1_l1");
}

#[test]
fn emboss_matches_imgaug() {
    assert_close("emboss_a1_s1");
}
