//! Fidelity of the blur and convolution ops against the OpenCV/imgaug fixtures in
//! `tests/fixtures/augment` (made by `generate.py` there): each case's op, built from a pipeline
//! file, must land within 1 intensity level of the reference on at least 99 % of the values.
//! All cases here are exact references (OpenCV 4.11 through Albumentations 2.0.8 / imgaug 0.4.0).

use kindling_augment::{Image, ImageBuf, Pipeline, PipelineConfig, Sample};

mod common;

use common::{case, compare, run_op};

/// Runs the case's op (its fixture object is a valid pipeline op here) and returns the
/// largest difference and the fraction of values within 1 level.
fn run(name: &str) -> (u8, f64) {
    let (input, expected, op) = case(name);
    compare(name, &run_op(input, &op), &expected)
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

/// Every op of this family by name, with its defaults and with options in every accepted form.
const PIPELINE: &str = r#"{
  "seed": 3,
  "pipeline": { "op": "sequential", "children": [
    { "op": "additive_gaussian_noise", "scale": [10, 50], "per_channel": true },
    { "op": "additive_laplace_noise", "per_channel": 0.5 },
    { "op": "salt_and_pepper", "p": 0.05 },
    { "op": "dropout", "p": { "choice": [0.01, 0.02] } },
    { "op": "coarse_dropout", "size_percent": 0.1 },
    { "op": "cutout", "nb_iterations": [1, 3], "fill_mode": "gaussian", "squared": 0.5 },
    { "op": "gaussian_blur", "sigma": [0.5, 2.0] },
    { "op": "average_blur" },
    { "op": "median_blur", "k": [3, 7] },
    { "op": "motion_blur", "k": [3, 7] },
    { "op": "sharpen" },
    { "op": "emboss", "alpha": [0, 1], "strength": [0.5, 1.5] }
  ] }
}"#;

#[test]
fn the_family_runs_by_name_on_every_pixel_type_and_replays() {
    let config = PipelineConfig::parse(PIPELINE, "json").unwrap();
    let text = serde_json::to_string(&config).unwrap();
    assert_eq!(
        PipelineConfig::parse(&text, "json").unwrap(),
        config,
        "round trip"
    );
    let pipeline = Pipeline::from_config(config).unwrap();
    for c in [1, 3, 4] {
        let images = [
            Image::U8(ImageBuf::filled(40, 30, c, 100).unwrap()),
            Image::U16(ImageBuf::filled(40, 30, c, 30000).unwrap()),
            Image::F32(ImageBuf::filled(40, 30, c, 0.4).unwrap()),
        ];
        for image in images {
            let sample = Sample::new(image.clone());
            let (out, record) = pipeline
                .augment_recorded(sample.clone(), 0, c as u64)
                .unwrap();
            assert_eq!(
                (out.image.width(), out.image.height(), out.image.channels()),
                (40, 30, c)
            );
            assert_eq!(out.image.pixel_type(), image.pixel_type());
            assert_ne!(out.image, image, "{} × {c}", image.pixel_type());
            assert_eq!(pipeline.replay(sample, &record).unwrap(), out);
        }
    }
}

#[test]
fn bad_options_name_the_op_and_the_value() {
    let bad = [
        (
            r#"{ "op": "gaussian_blur", "sigma": -1 }"#,
            "gaussian_blur: `sigma` = -1",
        ),
        (r#"{ "op": "median_blur", "k": 4 }"#, "median_blur: `k` = 4"),
        (r#"{ "op": "average_blur", "k": [7, 3] }"#, "a ≤ b"),
        (r#"{ "op": "dropout", "p": 2 }"#, "dropout: `p` = 2"),
        (
            r#"{ "op": "sharpen", "alpha": 1.5 }"#,
            "sharpen: `alpha` = 1.5",
        ),
    ];
    for (op, message) in bad {
        let text = format!(r#"{{ "pipeline": {op} }}"#);
        let config = PipelineConfig::parse(&text, "json").unwrap();
        let err = Pipeline::from_config(config).unwrap_err().to_string();
        assert!(err.contains(message), "{op}: {err}");
    }
    let unknown = r#"{ "pipeline": { "op": "motion_blur", "size": 3 } }"#;
    assert!(PipelineConfig::parse(unknown, "json").is_err());
}
