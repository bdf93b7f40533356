//! The fidelity fixtures shared by the test binaries (`tests/fixtures/augment`, written by
//! `generate.py` there).
#![allow(dead_code)] // each test binary uses part of these helpers

use std::path::PathBuf;

use kindling_augment::{Image, Pipeline, PipelineConfig};

/// The fixture folder. Cargo's run-time variable, so a binary built from another checkout
/// sharing the target dir reads this checkout's files.
pub fn fixtures() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("../../tests/fixtures/augment")
}

/// The fixture case `name`: its input, its expected output and its op object.
pub fn case(name: &str) -> (Image, Image, serde_json::Value) {
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

/// Runs `op` (a pipeline op object) on `input` with seed 0, epoch 0, index 0.
pub fn run_op(input: Image, op: &serde_json::Value) -> Image {
    let config = serde_json::json!({ "seed": 0, "pipeline": op });
    let config = PipelineConfig::parse(&config.to_string(), "json").unwrap();
    Pipeline::from_config(config)
        .unwrap()
        .augment_image(input, 0, 0)
        .unwrap()
}

/// Compares two `u8` images of one shape: prints the largest difference, the shares within 1
/// level and exact, and the mean difference; returns the largest difference and the share
/// within 1 level.
pub fn compare(name: &str, got: &Image, expected: &Image) -> (u8, f64) {
    let (Image::U8(got), Image::U8(want)) = (got, expected) else {
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
    let n = diffs.len() as f64;
    let max = diffs.iter().copied().max().unwrap_or(0);
    let within = diffs.iter().filter(|d| **d <= 1).count() as f64 / n;
    let exact = diffs.iter().filter(|d| **d == 0).count() as f64 / n;
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / n;
    println!(
        "{name:<34} max diff {max:>3}, {:6.2} % within 1 level, {:6.2} % exact, mean abs diff {mean:.3}",
        within * 100.0,
        exact * 100.0
    );
    (max, within)
}
