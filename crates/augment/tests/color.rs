//! Fidelity of the colour, contrast and intensity ops against the OpenCV / Albumentations /
//! imgaug fixtures in `tests/fixtures/augment` (made by `generate.py` there): each case's op,
//! built from a pipeline file, must land within 1 intensity level of the reference on at least
//! 99 % of the values. `jpeg_q50` is informational only (libjpeg there, `jpeg-encoder` here):
//! its difference is printed, not required.

use kindling_augment::{ChannelShuffle, Image, JpegCompression, Op, Sample};

mod common;

use common::{case, compare};

/// Runs `op` (a pipeline op object) on the case's input and compares with its output.
fn run_op(name: &str, op: serde_json::Value) -> (u8, f64) {
    let (input, expected, _) = case(name);
    compare(name, &common::run_op(input, &op), &expected)
}

/// Runs the case with its fixture op object, which is a valid pipeline op here.
fn run(name: &str) -> (u8, f64) {
    let (_, _, op) = case(name);
    run_op(name, op)
}

fn assert_close(name: &str, (max, within): (u8, f64)) {
    assert!(
        within >= 0.99,
        "{name}: only {:.2} % of values within 1 level (max diff {max})",
        within * 100.0
    );
}

#[test]
fn multiply_brightness_matches_albucore_truncation() {
    assert_close("multiply_brightness_1.3", run("multiply_brightness_1.3"));
}

#[test]
fn add_matches_opencv_saturating_add() {
    assert_close("add_25", run("add_25"));
}

#[test]
fn invert_matches_albumentations() {
    assert_close("invert", run("invert"));
}

#[test]
fn solarize_at_128_matches_albumentations() {
    assert_close("solarize_128", run("solarize_128"));
}

#[test]
fn posterize_to_3_bits_matches_albumentations() {
    let op = serde_json::json!({ "op": "posterize", "nb_bits": 3 });
    assert_close("posterize_3", run_op("posterize_3", op));
}

#[test]
fn grayscale_matches_opencv_rgb2gray() {
    assert_close("grayscale", run("grayscale"));
}

#[test]
fn gamma_contrast_matches_albumentations_random_gamma() {
    assert_close("gamma_contrast_1.5", run("gamma_contrast_1.5"));
}

#[test]
fn linear_contrast_matches_imgaug() {
    assert_close("linear_contrast_1.4", run("linear_contrast_1.4"));
}

#[test]
fn histogram_equalization_matches_opencv_per_channel() {
    assert_close("histogram_equalization", run("histogram_equalization"));
}

#[test]
fn clahe_matches_opencv_on_lab_lightness() {
    let op = serde_json::json!({ "op": "clahe", "clip_limit": 2.0, "tile_grid_size": [8, 8] });
    assert_close("clahe_2_8x8", run_op("clahe_2_8x8", op));
}

#[test]
fn channel_shuffle_with_order_2_0_1_matches_numpy_fancy_indexing() {
    let (input, expected, op) = case("channel_shuffle_201");
    let order: Vec<usize> = serde_json::from_value(op["order"].clone()).unwrap();
    let shuffle = ChannelShuffle {
        p: 1.0,
        channels: None,
    };
    let got = shuffle
        .apply(&Some(order), Sample::new(input))
        .unwrap()
        .image;
    let (max, within) = compare("channel_shuffle_201", &got, &expected);
    assert_eq!((max, within), (0, 1.0));
}

fn mean_abs_diff(a: &Image, b: &Image) -> f64 {
    let (Image::U8(a), Image::U8(b)) = (a, b) else {
        panic!("expected u8 images");
    };
    a.data()
        .iter()
        .zip(b.data())
        .map(|(x, y)| x.abs_diff(*y) as f64)
        .sum::<f64>()
        / a.data().len() as f64
}

/// Informational: a different JPEG encoder (the `image` crate's, 4:2:2, vs libjpeg's 4:2:0 on
/// channels swapped by cv2), so the difference is printed, not required. On this noisy input
/// even libjpeg at quality 50 in the right channel order is 7.9 levels from the fixture on
/// average. The sanity check: our artefacts are as strong as the reference's.
#[test]
fn jpeg_quality_50_is_informational() {
    // imgaug's compression 51 is quality 50.
    assert_eq!(JpegCompression::quality(51.0), 50);
    let (input, expected, _) = case("jpeg_q50");
    let op = JpegCompression {
        compression: 51.0.into(),
    };
    let params = op.sample(
        &mut kindling_augment::sample_rng(0, 0, 0),
        &Sample::new(input.clone()),
    );
    assert_eq!(params.quality, 50);
    let got = op.apply(&params, Sample::new(input.clone())).unwrap().image;
    compare("jpeg_q50 (informational)", &got, &expected);
    let (ours, theirs) = (
        mean_abs_diff(&got, &input),
        mean_abs_diff(&expected, &input),
    );
    println!("jpeg_q50: mean abs diff to the input: ours {ours:.2}, libjpeg {theirs:.2}");
    assert!(
        (0.5..2.0).contains(&(ours / theirs)),
        "ours {ours}, libjpeg {theirs}"
    );
}
