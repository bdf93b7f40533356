//! Behaviour of the colour, contrast and intensity ops: option checks, per-channel draws,
//! targets left alone, alpha kept, u16/f32 images, unsupported inputs and replay.

use kindling_augment::{
    AugmentError, BBox, Image, ImageBuf, Keypoint, Op, Pipeline, PipelineConfig, Posterize, Sample,
    sample_rng,
};
use serde_json::json;

fn pipeline(op: serde_json::Value) -> Result<Pipeline, AugmentError> {
    let config = json!({ "seed": 3, "pipeline": op });
    Pipeline::from_config(PipelineConfig::parse(&config.to_string(), "json").unwrap())
}

fn build_error(op: serde_json::Value) -> String {
    pipeline(op.clone())
        .err()
        .unwrap_or_else(|| panic!("{op} was accepted"))
        .to_string()
}

fn gradient(w: usize, h: usize, c: usize) -> ImageBuf<u8> {
    let data = (0..w * h * c)
        .map(|i| ((i * 37 + i / 7) % 256) as u8)
        .collect();
    ImageBuf::new(w, h, c, data).unwrap()
}

/// Every op of this family with options that change a typical image.
fn all_ops() -> Vec<serde_json::Value> {
    vec![
        json!({ "op": "add", "value": [-40, 40], "per_channel": 0.5 }),
        json!({ "op": "multiply", "mul": [0.5, 1.5] }),
        json!({ "op": "multiply_brightness", "mul": 1.3, "to_colorspace": ["rgb", "hsv", "lab"] }),
        json!({ "op": "linear_contrast", "alpha": 1.5 }),
        json!({ "op": "gamma_contrast", "gamma": 1.7 }),
        json!({ "op": "invert" }),
        json!({ "op": "solarize", "threshold": 100 }),
        json!({ "op": "posterize", "nb_bits": 2 }),
        json!({ "op": "grayscale", "alpha": [0.5, 1.0] }),
        json!({ "op": "add_to_hue_and_saturation", "value": [-50, 50] }),
        json!({ "op": "histogram_equalization" }),
        json!({ "op": "clahe", "clip_limit": 3.0, "tile_grid_size": [4, 3] }),
        json!({ "op": "jpeg_compression", "compression": 80 }),
        json!({ "op": "channel_shuffle" }),
    ]
}

#[test]
fn invalid_options_are_refused_naming_field_and_value() {
    for (op, needles) in [
        (
            json!({ "op": "posterize", "nb_bits": 0 }),
            vec!["nb_bits", "0", "[1, 8]"],
        ),
        (
            json!({ "op": "posterize", "nb_bits": [1, 9] }),
            vec!["nb_bits", "[1, 9]"],
        ),
        (
            json!({ "op": "gamma_contrast", "gamma": -0.5 }),
            vec!["gamma", "-0.5"],
        ),
        (
            json!({ "op": "gamma_contrast", "gamma": 0 }),
            vec!["gamma", "> 0"],
        ),
        (
            json!({ "op": "clahe", "clip_limit": 0 }),
            vec!["clip_limit", "> 0"],
        ),
        (
            json!({ "op": "clahe", "clip_limit": -1 }),
            vec!["clip_limit", "-1"],
        ),
        (
            json!({ "op": "clahe", "tile_grid_size": [0, 8] }),
            vec!["tile_grid_size", "[0, 8]"],
        ),
        (
            json!({ "op": "invert", "p": 1.5 }),
            vec!["invert", "`p`", "1.5", "probability"],
        ),
        (
            json!({ "op": "add", "per_channel": -0.1 }),
            vec!["per_channel", "-0.1"],
        ),
        (json!({ "op": "solarize", "p": 2 }), vec!["solarize", "`p`"]),
        (
            json!({ "op": "channel_shuffle", "p": -1 }),
            vec!["channel_shuffle", "`p`"],
        ),
        (
            json!({ "op": "multiply", "mul": [1.2, 0.8] }),
            vec!["mul", "[1.2, 0.8]", "a ≤ b"],
        ),
        (
            json!({ "op": "linear_contrast", "alpha": [2, 1] }),
            vec!["alpha", "a ≤ b"],
        ),
        (json!({ "op": "add", "value": 300 }), vec!["value", "300"]),
        (
            json!({ "op": "grayscale", "alpha": 1.5 }),
            vec!["alpha", "1.5"],
        ),
        (
            json!({ "op": "add_to_hue_and_saturation", "value": 5, "value_hue": 3 }),
            vec!["value", "not both"],
        ),
        (
            json!({ "op": "channel_shuffle", "channels": [0, 0] }),
            vec!["channels", "[0, 0]"],
        ),
        (
            json!({ "op": "multiply_brightness", "to_colorspace": [] }),
            vec!["to_colorspace"],
        ),
        (
            json!({ "op": "jpeg_compression", "compression": 101 }),
            vec!["compression", "101"],
        ),
    ] {
        let err = build_error(op.clone());
        for n in needles {
            assert!(err.contains(n), "{op}: `{err}` lacks `{n}`");
        }
    }
    // Unknown options are errors too.
    let config = json!({ "pipeline": { "op": "posterize", "bits": 3 } }).to_string();
    assert!(
        PipelineConfig::parse(&config, "json")
            .unwrap_err()
            .contains("unknown field `bits`")
    );
}

#[test]
fn per_channel_draws_one_value_per_channel_and_otherwise_one_for_all() {
    let image = Image::U8(gradient(8, 6, 3));
    for (per_channel, distinct) in [(1.0, true), (0.0, false)] {
        let p = pipeline(json!({ "op": "add", "value": [-100, 100], "per_channel": per_channel }))
            .unwrap();
        let (_, record) = p
            .augment_recorded(Sample::new(image.clone()), 0, 1)
            .unwrap();
        let values: Vec<f64> = serde_json::from_value(record.params).unwrap();
        assert_eq!(values.len(), 3);
        assert_eq!(values[0] != values[1] || values[1] != values[2], distinct);
    }
}

#[test]
fn per_channel_gamma_changes_channels_differently() {
    let image = Image::U8(ImageBuf::filled(4, 4, 3, 100).unwrap());
    let p = pipeline(json!({ "op": "gamma_contrast", "gamma": [0.3, 3.0], "per_channel": 1.0 }))
        .unwrap();
    let Image::U8(out) = p.augment_image(image, 0, 0).unwrap() else {
        panic!()
    };
    let px = out.pixel(0, 0);
    assert!(px[0] != px[1] || px[1] != px[2], "{px:?}");
}

#[test]
fn targets_are_left_untouched_by_every_op() {
    let mask = Image::U8(gradient(20, 16, 1));
    let heatmap = ImageBuf::new(20, 16, 1, (0..320).map(|i| i as f32 / 320.0).collect()).unwrap();
    let boxes = [BBox {
        x1: 1.0,
        y1: 2.0,
        x2: 9.0,
        y2: 12.0,
        label: 4,
    }];
    let keypoints = [Keypoint { x: 3.5, y: 7.25 }];
    let sample = Sample::new(gradient(20, 16, 3))
        .with_mask(mask)
        .with_heatmap(heatmap)
        .with_boxes(boxes)
        .with_keypoints(keypoints);
    for op in all_ops() {
        let out = pipeline(op.clone())
            .unwrap()
            .augment(sample.clone(), 0, 2)
            .unwrap();
        assert_eq!(out.masks, sample.masks, "{op}");
        assert_eq!(out.heatmaps, sample.heatmaps, "{op}");
        assert_eq!(out.boxes, sample.boxes, "{op}");
        assert_eq!(out.keypoints, sample.keypoints, "{op}");
        assert_ne!(out.image, sample.image, "{op} changed nothing");
    }
}

#[test]
fn the_alpha_channel_of_rgba_is_kept_by_every_op() {
    let image = gradient(20, 16, 4);
    let alpha: Vec<u8> = image.data().iter().skip(3).step_by(4).copied().collect();
    for op in all_ops() {
        let out = pipeline(op.clone())
            .unwrap()
            .augment_image(Image::U8(image.clone()), 0, 5)
            .unwrap();
        let Image::U8(out) = out else {
            panic!("{op}: type changed")
        };
        assert_eq!(out.channels(), 4, "{op}");
        let kept: Vec<u8> = out.data().iter().skip(3).step_by(4).copied().collect();
        assert_eq!(kept, alpha, "{op}");
    }
}

#[test]
fn records_replay_to_the_same_image() {
    let sample = Sample::new(gradient(24, 18, 3));
    for op in all_ops() {
        let p = pipeline(op.clone()).unwrap();
        for index in 0..4 {
            let (out, record) = p.augment_recorded(sample.clone(), 1, index).unwrap();
            let record = serde_json::from_str(&serde_json::to_string(&record).unwrap()).unwrap();
            assert_eq!(p.replay(sample.clone(), &record).unwrap(), out, "{op}");
        }
    }
}

#[test]
fn u16_and_f32_images_follow_the_u8_formulas_in_their_units() {
    let u16_img =
        Image::U16(ImageBuf::new(2, 1, 3, vec![0, 1000, 30000, 60000, 65535, 257]).unwrap());
    let f32_img = Image::F32(ImageBuf::new(2, 1, 1, vec![0.2, 0.9]).unwrap());
    let run = |op: serde_json::Value, img: &Image| {
        pipeline(op)
            .unwrap()
            .augment_image(img.clone(), 0, 0)
            .unwrap()
    };

    let Image::U16(b) = run(json!({ "op": "add", "value": 25 }), &u16_img) else {
        panic!()
    };
    assert_eq!(b.data(), &[6425, 7425, 36425, 65535, 65535, 6682]);
    let Image::U16(b) = run(json!({ "op": "invert" }), &u16_img) else {
        panic!()
    };
    assert_eq!(b.data(), &[65535, 64535, 35535, 5535, 0, 65278]);
    let Image::U16(b) = run(json!({ "op": "posterize", "nb_bits": 2 }), &u16_img) else {
        panic!()
    };
    assert_eq!(b.data(), &[0, 0, 16384, 49152, 49152, 0]);
    let Image::U16(b) = run(json!({ "op": "multiply", "mul": 2 }), &u16_img) else {
        panic!()
    };
    assert_eq!(b.data(), &[0, 2000, 60000, 65535, 65535, 514]);
    let Image::U16(b) = run(json!({ "op": "grayscale" }), &u16_img) else {
        panic!()
    };
    assert!(b.data()[..3].iter().all(|&v| v == b.data()[0]));

    let Image::F32(b) = run(json!({ "op": "add", "value": 51 }), &f32_img) else {
        panic!()
    };
    assert!(
        (b.data()[0] - 0.4).abs() < 1e-6 && b.data()[1] == 1.0,
        "{:?}",
        b.data()
    );
    let Image::F32(b) = run(json!({ "op": "invert" }), &f32_img) else {
        panic!()
    };
    assert!((b.data()[0] - 0.8).abs() < 1e-6 && (b.data()[1] - 0.1).abs() < 1e-6);
    // Linear contrast turns around 0.5 on f32.
    let Image::F32(b) = run(json!({ "op": "linear_contrast", "alpha": 0.5 }), &f32_img) else {
        panic!()
    };
    assert!((b.data()[0] - 0.35).abs() < 1e-6 && (b.data()[1] - 0.7).abs() < 1e-6);
    let Image::F32(b) = run(json!({ "op": "gamma_contrast", "gamma": 2 }), &f32_img) else {
        panic!()
    };
    assert!((b.data()[0] - 0.04).abs() < 1e-6 && (b.data()[1] - 0.81).abs() < 1e-6);
    let Image::F32(b) = run(json!({ "op": "solarize", "threshold": 128 }), &f32_img) else {
        panic!()
    };
    assert!((b.data()[0] - 0.2).abs() < 1e-6 && (b.data()[1] - 0.1).abs() < 1e-6);
}

#[test]
fn posterize_on_f32_matches_u8_steps() {
    let u8_img = gradient(16, 16, 1);
    let f32_img = ImageBuf::new(
        16,
        16,
        1,
        u8_img.data().iter().map(|&v| v as f32 / 255.0).collect(),
    )
    .unwrap();
    for bits in 1..=8u32 {
        let op = Posterize {
            nb_bits: (bits as f64).into(),
        };
        let Image::U8(a) = op.apply(&bits, Sample::new(u8_img.clone())).unwrap().image else {
            panic!()
        };
        let Image::F32(b) = op.apply(&bits, Sample::new(f32_img.clone())).unwrap().image else {
            panic!()
        };
        for (x, y) in a.data().iter().zip(b.data()) {
            assert!(
                (*x as f32 - y * 255.0).abs() < 1e-3,
                "{bits} bits: {x} vs {y}"
            );
        }
    }
}

#[test]
fn posterize_draws_every_bit_count_of_its_range() {
    let op = Posterize {
        nb_bits: (1.0, 8.0).into(),
    };
    let sample = Sample::new(gradient(2, 2, 1));
    let mut seen = [false; 9];
    let mut rng = sample_rng(1, 0, 0);
    for _ in 0..400 {
        seen[op.sample(&mut rng, &sample) as usize] = true;
    }
    assert_eq!(
        seen,
        [false, true, true, true, true, true, true, true, true]
    );
}

#[test]
fn unsupported_inputs_are_errors_not_panics() {
    let gray = Image::U8(gradient(8, 8, 1));
    let f32_rgb = Image::F32(ImageBuf::filled(8, 8, 3, 0.5).unwrap());
    let u16_rgb = Image::U16(ImageBuf::filled(8, 8, 3, 500).unwrap());
    for (op, img, needle) in [
        (
            json!({ "op": "add_to_hue_and_saturation", "value": 10 }),
            &gray,
            "1-channel",
        ),
        (
            json!({ "op": "add_to_hue_and_saturation", "value": 10 }),
            &f32_rgb,
            "f32",
        ),
        (
            json!({ "op": "multiply_brightness", "to_colorspace": ["hsv"] }),
            &u16_rgb,
            "u16",
        ),
        (json!({ "op": "clahe" }), &u16_rgb, "u16"),
        (json!({ "op": "jpeg_compression" }), &f32_rgb, "f32"),
        (json!({ "op": "histogram_equalization" }), &f32_rgb, "f32"),
    ] {
        let err = pipeline(op.clone())
            .unwrap()
            .augment_image(img.clone(), 0, 0)
            .unwrap_err();
        assert!(
            matches!(err, AugmentError::Unsupported { .. }),
            "{op}: {err}"
        );
        assert!(err.to_string().contains(needle), "{op}: {err}");
    }
}

#[test]
fn gray_images_work_where_colour_is_not_needed() {
    let gray = Image::U8(gradient(37, 29, 1));
    // Grayscale and channel shuffle leave a gray image as it is.
    for op in [
        json!({ "op": "grayscale" }),
        json!({ "op": "channel_shuffle" }),
    ] {
        assert_eq!(
            pipeline(op)
                .unwrap()
                .augment_image(gray.clone(), 0, 0)
                .unwrap(),
            gray
        );
    }
    // CLAHE (on a size the grid does not divide), equalization and JPEG run on gray.
    for op in [
        json!({ "op": "clahe", "tile_grid_size": [8, 8] }),
        json!({ "op": "histogram_equalization" }),
        json!({ "op": "jpeg_compression", "compression": 60 }),
        json!({ "op": "multiply_brightness" }),
    ] {
        let out = pipeline(op.clone())
            .unwrap()
            .augment_image(gray.clone(), 0, 0)
            .unwrap();
        assert_eq!(
            (out.width(), out.height(), out.channels()),
            (37, 29, 1),
            "{op}"
        );
        assert_ne!(out, gray, "{op}");
    }
}

#[test]
fn solarize_inverts_exactly_the_values_at_or_above_the_threshold() {
    let img = Image::U8(ImageBuf::new(256, 1, 1, (0..=255).collect()).unwrap());
    let out = pipeline(json!({ "op": "solarize", "threshold": 128.7 }))
        .unwrap()
        .augment_image(img, 0, 0)
        .unwrap();
    let Image::U8(out) = out else { panic!() };
    for (v, &o) in out.data().iter().enumerate() {
        assert_eq!(o as usize, if v >= 128 { 255 - v } else { v });
    }
}

#[test]
fn hue_shift_of_a_full_circle_is_the_identity_shift() {
    let img = Image::U8(gradient(16, 8, 3));
    let run = |hue: i32| {
        pipeline(
            json!({ "op": "add_to_hue_and_saturation", "value_hue": hue, "value_saturation": 0 }),
        )
        .unwrap()
        .augment_image(img.clone(), 0, 0)
        .unwrap()
    };
    assert_eq!(run(255), run(0));
    assert_eq!(run(-255), run(0));
    assert_ne!(run(60), run(0));
    // OpenCV's HSV round trip itself moves a colour by at most one level or so.
    let (Image::U8(a), Image::U8(b)) = (run(0), &img) else {
        panic!()
    };
    assert!(
        a.data()
            .iter()
            .zip(b.data())
            .all(|(x, y)| x.abs_diff(*y) <= 3)
    );
}

#[test]
fn channel_shuffle_permutes_only_the_chosen_channels() {
    let img = gradient(6, 5, 3);
    let p = pipeline(json!({ "op": "channel_shuffle", "channels": [0, 1] })).unwrap();
    for index in 0..8 {
        let (out, record) = p
            .augment_recorded(Sample::new(img.clone()), 0, index)
            .unwrap();
        let order: Vec<usize> = serde_json::from_value(record.params).unwrap();
        assert_eq!(order[2], 2);
        let Image::U8(out) = out.image else { panic!() };
        for (a, b) in out.data().chunks(3).zip(img.data().chunks(3)) {
            assert_eq!(a, [b[order[0]], b[order[1]], b[order[2]]]);
        }
    }
    let never = pipeline(json!({ "op": "channel_shuffle", "p": 0 })).unwrap();
    assert_eq!(
        never.augment_image(Image::U8(img.clone()), 0, 0).unwrap(),
        Image::U8(img)
    );
}

#[test]
fn equalization_leaves_a_constant_channel_alone() {
    let img = Image::U8(ImageBuf::filled(5, 5, 3, 77).unwrap());
    let p = pipeline(json!({ "op": "histogram_equalization" })).unwrap();
    assert_eq!(p.augment_image(img.clone(), 0, 0).unwrap(), img);
    // u16 equalizes over 65536 bins: two values go to the ends.
    let two = Image::U16(ImageBuf::new(2, 1, 1, vec![100, 200]).unwrap());
    let Image::U16(out) = p.augment_image(two, 0, 0).unwrap() else {
        panic!()
    };
    assert_eq!(out.data(), &[0, 65535]);
}

#[test]
fn jpeg_quality_follows_imgaugs_mapping() {
    use kindling_augment::JpegCompression;
    assert_eq!(JpegCompression::quality(0.0), 100);
    assert_eq!(JpegCompression::quality(50.0), 51);
    assert_eq!(JpegCompression::quality(51.0), 50);
    assert_eq!(JpegCompression::quality(100.0), 2);
}
