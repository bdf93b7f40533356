//! The fidelity fixtures shared by the test binaries (`tests/fixtures/augment`, written by
//! `generate.py` there).
#![allow(dead_code)] // each test binary uses part of these helpers

use std::path::PathBuf;

use kindling_augment::Image;

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
