//! Fidelity of the colour, contrast and intensity ops against the OpenCV / Albumentations /
//! imgaug fixtures in `tests/fixtures/augment` (made by `generate.py` there): each case's op,
//! built from a pipeline file, must land within 1 intensity level of the reference on at least
//! 99 % of the values; JPEG must be bit-exact.

use kindling_augment::{ChannelShuffle, JpegCompression, Op, Sample};

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

/// JPEG equals imgaug's `compress_jpeg` (Pillow's libjpeg-turbo) bit for bit: RGB and gray,
/// qualities 100 to 2, odd sides and even sides that are not whole MCUs.
#[test]
fn jpeg_equals_imgaug_bit_for_bit() {
    // imgaug's compression 51 is quality 50, 0 is 100, 99 is 3.
    assert_eq!(JpegCompression::quality(51.0), 50);
    assert_eq!(JpegCompression::quality(0.0), 100);
    assert_eq!(JpegCompression::quality(99.0), 3);
    for name in [
        "jpeg_c51",
        "jpeg_c0",
        "jpeg_c90_gray",
        "jpeg_c20_45x61",
        "jpeg_c70_46x58",
        "jpeg_c99_45x61",
    ] {
        let (max, _) = run(name);
        assert_eq!(max, 0, "{name}: not bit-exact");
    }
}
