//! Geometric augmenters: fidelity against the OpenCV/Albumentations fixtures, and properties
//! every geometric op must keep (keypoints stay on their pixel, boxes enclose their pixels,
//! masks and heatmaps follow the image), over several random parameter draws each.

use kindling_augment::{AugmenterSpec, BBox, Image, ImageBuf, Keypoint, Sample, sample_rng};
use serde_json::{Value, json};

mod common;

use common::compare;

fn build(spec: &Value) -> Box<dyn kindling_augment::Augmenter> {
    serde_json::from_value::<AugmenterSpec>(spec.clone())
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
        .build()
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

fn augment(spec: &Value, sample: Sample, seed: u64) -> Sample {
    let mut rng = sample_rng(seed, 0, 0);
    build(spec)
        .augment(sample, &mut rng)
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
        .0
}

fn u8_buf(img: &Image) -> &ImageBuf<u8> {
    match img {
        Image::U8(b) => b,
        other => panic!("expected u8, got {}", other.pixel_type()),
    }
}

/// The fixture's op as one of ours (pipeline JSON).
fn our_spec(op: &Value) -> Value {
    let name = op["op"].as_str().unwrap();
    let (w, h) = (64, 48);
    match name {
        "fliplr" | "flipud" => json!({"op": name, "p": 1.0}),
        "rot90" => json!({"op": "rot90", "k": op["k"]}),
        "rotate" => {
            json!({"op": "rotate", "rotate": op["angle"], "interpolation": op["interpolation"],
                           "mode": op["fill"], "cval": op["cval"]})
        }
        "affine" => json!({"op": "affine", "scale": op["scale"],
                           "translate_px": {"x": op["translate_px"][0], "y": op["translate_px"][1]},
                           "rotate": op["rotate"], "shear": op["shear"],
                           "interpolation": op["interpolation"], "mode": op["fill"], "cval": op["cval"]}),
        "crop" => {
            let (x, y) = (op["x"].as_i64().unwrap(), op["y"].as_i64().unwrap());
            let (cw, ch) = (
                op["width"].as_i64().unwrap(),
                op["height"].as_i64().unwrap(),
            );
            json!({"op": "crop", "px": {"top": y, "left": x, "right": w - x - cw, "bottom": h - y - ch}})
        }
        "center_crop" => json!({"op": "center_crop", "width": op["width"], "height": op["height"]}),
        "pad" => {
            json!({"op": "pad", "px": {"top": op["top"], "right": op["right"], "bottom": op["bottom"],
                        "left": op["left"]}, "pad_mode": op["mode"], "pad_cval": op["cval"]})
        }
        "resize" => json!({"op": "resize", "width": op["width"], "height": op["height"],
                           "interpolation": op["interpolation"]}),
        other => panic!("no mapping for fixture op {other}"),
    }
}

const FIDELITY_CASES: &[&str] = &[
    "fliplr",
    "fliplr_gray",
    "flipud",
    "rot90_k1",
    "rotate30_bilinear_constant",
    "rotate30_bilinear_reflect",
    "rotate30_bilinear_edge",
    "rotate30_nearest_constant",
    "rotate30_bilinear_constant_gray",
    "affine_s1.2_t5m3_r15",
    "crop_5_3_40x30",
    "center_crop_32x32",
    "pad_constant",
    "pad_reflect",
    "pad_edge",
    "resize_40x30_bilinear",
    "resize_40x30_nearest",
    "resize_40x30_area",
    "resize_40x30_bicubic",
    "resize_96x72_bilinear",
    "resize_40x30_bilinear_gray",
];

#[test]
fn geometric_ops_match_the_opencv_fixtures_within_one_level() {
    let mut failures = Vec::new();
    for name in FIDELITY_CASES {
        let (input, want, op) = common::case(name);
        let got = augment(&our_spec(&op), Sample::new(input), 0).image;
        let (max, within) = compare(name, &got, &want);
        if within < 0.99 {
            failures.push(format!("{name}: {within:.4} within 1 (max {max})"));
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// An op to check, and what holds exactly for it.
struct Case {
    spec: Value,
    /// Nearest, no rotation or shrinking: the marked pixel lands exactly under the keypoint.
    exact_point: bool,
    /// Integer moves only: the box is exactly the marked pixels' extent.
    exact_box: bool,
    /// Box tolerance in pixels (approximate inverse maps need more).
    tol: f32,
}

fn case(spec: Value, exact_point: bool, exact_box: bool, tol: f32) -> Case {
    Case {
        spec,
        exact_point,
        exact_box,
        tol,
    }
}

fn geometric_cases() -> Vec<Case> {
    vec![
        case(json!({"op": "fliplr", "p": 1.0}), true, true, 0.0),
        case(json!({"op": "flipud", "p": 1.0}), true, true, 0.0),
        case(json!({"op": "rot90", "k": [0, 3]}), true, true, 0.0),
        case(
            json!({"op": "rot90", "k": [1, 3], "keep_size": true}),
            false,
            false,
            0.6,
        ),
        case(json!({"op": "crop", "px": [0, 10]}), true, true, 0.0),
        case(
            json!({"op": "crop", "percent": [0, 0.2], "keep_size": true}),
            false,
            false,
            0.6,
        ),
        case(
            json!({"op": "pad", "px": [0, 8], "pad_mode": "reflect"}),
            true,
            true,
            0.0,
        ),
        case(
            json!({"op": "crop_and_pad", "percent": [-0.2, 0.2], "pad_mode": "edge"}),
            true,
            true,
            0.0,
        ),
        case(
            json!({"op": "center_crop", "width": 32, "height": 30}),
            true,
            true,
            0.0,
        ),
        case(
            json!({"op": "random_crop", "width": 36, "height": 30}),
            true,
            true,
            0.0,
        ),
        // cv2's INTER_NEAREST reads floor(x * in / out), half an output pixel off the centres
        // the targets scale with, so neither exact check holds.
        case(
            json!({"op": "resize", "scale": [1.0, 2.0], "interpolation": "nearest"}),
            false,
            false,
            0.55,
        ),
        case(
            json!({"op": "resize", "width": [20, 90], "height": [20, 90], "interpolation": "bilinear"}),
            false,
            false,
            0.2,
        ),
        case(
            json!({"op": "resize", "scale": [0.5, 0.9], "interpolation": "area"}),
            false,
            false,
            0.2,
        ),
        case(
            json!({"op": "resize", "scale": [0.7, 1.6], "interpolation": "bicubic"}),
            false,
            false,
            0.2,
        ),
        case(
            json!({"op": "random_resized_crop", "width": 40, "height": 40, "scale": [0.5, 1.0]}),
            false,
            false,
            0.2,
        ),
        case(
            json!({"op": "rotate", "rotate": [-180, 180]}),
            false,
            false,
            0.15,
        ),
        case(
            json!({"op": "rotate", "rotate": [-45, 45], "interpolation": "nearest", "mode": "reflect"}),
            false,
            false,
            0.15,
        ),
        case(
            json!({"op": "rotate", "rotate": [-30, 30], "interpolation": "bicubic", "mode": "edge"}),
            false,
            false,
            0.15,
        ),
        case(
            json!({"op": "affine", "scale": [1.0, 1.5], "translate_px": {"x": [-5, 5], "y": [-5, 5]},
                    "interpolation": "nearest"}),
            true,
            false,
            0.05,
        ),
        case(
            json!({"op": "affine", "scale": [0.8, 1.2], "translate_percent": {"x": [-0.1, 0.1], "y": [-0.1, 0.1]},
                    "rotate": [-25, 25], "shear": {"x": [-8, 8], "y": [-8, 8]}}),
            false,
            false,
            0.15,
        ),
        case(
            json!({"op": "perspective_transform", "scale": [0.02, 0.1]}),
            false,
            false,
            0.2,
        ),
        case(
            json!({"op": "perspective_transform", "scale": [0.02, 0.1], "keep_size": false,
                    "interpolation": "nearest"}),
            false,
            false,
            0.2,
        ),
        case(
            json!({"op": "elastic_transformation", "alpha": [0, 40], "sigma": [4, 8]}),
            false,
            false,
            0.75,
        ),
        case(
            json!({"op": "elastic_transformation", "alpha": [0, 30], "sigma": [5, 8],
                    "interpolation": "nearest"}),
            false,
            false,
            0.75,
        ),
        case(json!({"op": "grid_distortion"}), false, false, 0.2),
        case(
            json!({"op": "grid_distortion", "num_steps": 4, "distort_limit": [-0.5, 0.5],
                    "interpolation": "nearest"}),
            false,
            false,
            0.2,
        ),
    ]
}

const W: usize = 48;
const H: usize = 40;
const DRAWS: u64 = 12;

fn is_nearest(spec: &Value) -> bool {
    spec["interpolation"] == "nearest"
        || [
            "fliplr",
            "flipud",
            "rot90",
            "crop",
            "pad",
            "crop_and_pad",
            "center_crop",
            "random_crop",
        ]
        .contains(&spec["op"].as_str().unwrap_or(""))
            && spec["keep_size"] != true
}

#[test]
fn every_geometric_op_keeps_a_keypoint_on_its_marked_pixel() {
    for c in geometric_cases() {
        let mut dropped = 0;
        for seed in 0..DRAWS {
            let (mx, my) = (14 + (seed as usize * 7) % 20, 12 + (seed as usize * 5) % 16);
            let mut img = ImageBuf::<u8>::filled(W, H, 1, 0).unwrap();
            img.data_mut()[my * W + mx] = 255;
            let kp = Keypoint {
                x: mx as f32 + 0.5,
                y: my as f32 + 0.5,
            };
            let out = augment(&c.spec, Sample::new(img).with_keypoints([kp]), seed);
            let b = u8_buf(&out.image);
            let k = out.keypoints[0];
            let (kx, ky) = (k.x.floor() as i64, k.y.floor() as i64);
            if kx < 0 || ky < 0 || kx >= b.width() as i64 || ky >= b.height() as i64 {
                continue; // cropped out
            }
            let max = b.data().iter().copied().max().unwrap_or(0);
            if c.exact_point {
                assert_eq!(
                    b.pixel(kx as usize, ky as usize),
                    [255],
                    "{} seed {seed}: {k:?}",
                    c.spec
                );
                continue;
            }
            if max == 0 && is_nearest(&c.spec) {
                dropped += 1; // nearest sampling skipped the single pixel
                continue;
            }
            let mut near = 0;
            for y in (ky - 1).max(0)..(ky + 2).min(b.height() as i64) {
                for x in (kx - 1).max(0)..(kx + 2).min(b.width() as i64) {
                    near = near.max(b.pixel(x as usize, y as usize)[0]);
                }
            }
            assert!(
                max > 0 && near == max,
                "{} seed {seed}: keypoint {k:?}, 3×3 max {near}, image max {max}",
                c.spec
            );
        }
        // Nearest sampling that shrinks may skip the pixel; the check must still bite.
        assert!(
            dropped * 2 <= DRAWS,
            "{}: the marked pixel vanished {dropped} times",
            c.spec
        );
    }
}

#[test]
fn every_geometric_box_encloses_its_marked_pixels() {
    for c in geometric_cases() {
        for seed in 0..DRAWS {
            let (x0, y0) = (14 + (seed as usize * 3) % 14, 12 + (seed as usize * 5) % 12);
            let (bw, bh) = (6, 4);
            let mut img = ImageBuf::<u8>::filled(W, H, 1, 0).unwrap();
            for y in y0..y0 + bh {
                img.data_mut()[y * W + x0..y * W + x0 + bw].fill(255);
            }
            let b0 = BBox {
                x1: x0 as f32,
                y1: y0 as f32,
                x2: (x0 + bw) as f32,
                y2: (y0 + bh) as f32,
                label: 1,
            };
            let out = augment(&c.spec, Sample::new(img).with_boxes([b0]), seed);
            let img = u8_buf(&out.image);
            let bx = out.boxes[0];
            let (mut lo, mut hi) = ((f32::MAX, f32::MAX), (f32::MIN, f32::MIN));
            for y in 0..img.height() {
                for x in 0..img.width() {
                    if img.pixel(x, y)[0] >= 128 {
                        let (cx, cy) = (x as f32 + 0.5, y as f32 + 0.5);
                        assert!(
                            cx >= bx.x1 - c.tol
                                && cx <= bx.x2 + c.tol
                                && cy >= bx.y1 - c.tol
                                && cy <= bx.y2 + c.tol,
                            "{} seed {seed}: pixel ({x}, {y}) outside {bx:?}",
                            c.spec
                        );
                        lo = (lo.0.min(x as f32), lo.1.min(y as f32));
                        hi = (hi.0.max(x as f32 + 1.0), hi.1.max(y as f32 + 1.0));
                    }
                }
            }
            let fully_inside = bx.x1 >= 0.0
                && bx.y1 >= 0.0
                && bx.x2 <= img.width() as f32
                && bx.y2 <= img.height() as f32;
            if c.exact_box && fully_inside {
                assert_eq!(
                    (bx.x1, bx.y1, bx.x2, bx.y2),
                    (lo.0, lo.1, hi.0, hi.1),
                    "{} seed {seed}",
                    c.spec
                );
            }
        }
    }
}

/// A blocky 3-channel image whose first channel is 0 or 200 and its mask / heatmap.
fn blocks(seed: u64) -> (ImageBuf<u8>, ImageBuf<u8>, ImageBuf<f32>) {
    let mut data = Vec::with_capacity(W * H * 3);
    let mut mask = Vec::with_capacity(W * H);
    for y in 0..H {
        for x in 0..W {
            let on = ((x / 5 + y / 4) as u64 + seed).is_multiple_of(3);
            let v = if on { 200 } else { 0 };
            data.extend_from_slice(&[v, (x * 5) as u8, (y * 6) as u8]);
            mask.push(on as u8);
        }
    }
    let heat = data.chunks(3).map(|p| p[0] as f32 / 255.0).collect();
    (
        ImageBuf::new(W, H, 3, data).unwrap(),
        ImageBuf::new(W, H, 1, mask).unwrap(),
        ImageBuf::new(W, H, 1, heat).unwrap(),
    )
}

#[test]
fn masks_and_heatmaps_follow_the_image() {
    for c in geometric_cases() {
        let spec = &c.spec;
        // Pads and warps fill the image with 0 here (the targets' fill), except reflect/edge modes.
        let fills_zero = !["reflect", "edge"]
            .iter()
            .any(|m| spec["mode"] == *m || spec["pad_mode"] == *m);
        for seed in 0..4 {
            let (img, mask, heat) = blocks(seed);
            let out = augment(
                spec,
                Sample::new(img).with_mask(mask).with_heatmap(heat),
                seed,
            );
            let img = u8_buf(&out.image);
            let mask = u8_buf(&out.masks[0]);
            let heat = &out.heatmaps[0];
            assert_eq!(
                (mask.width(), mask.height()),
                (img.width(), img.height()),
                "{spec}"
            );
            assert_eq!(
                (heat.width(), heat.height()),
                (img.width(), img.height()),
                "{spec}"
            );
            if !fills_zero {
                continue;
            }
            if is_nearest(spec) {
                for (i, p) in img.data().chunks(3).enumerate() {
                    assert_eq!(
                        mask.data()[i],
                        (p[0] > 100) as u8,
                        "{spec} seed {seed} pixel {i}"
                    );
                }
            } else if spec["interpolation"] != "bicubic"
                && spec["interpolation"] != "area"
                && spec["keep_size"] != true
            {
                for (i, p) in img.data().chunks(3).enumerate() {
                    let d = (heat.data()[i] * 255.0 - p[0] as f32).abs();
                    assert!(
                        d <= 1.5,
                        "{spec} seed {seed} pixel {i}: heatmap {} vs image {}",
                        heat.data()[i] * 255.0,
                        p[0]
                    );
                }
            }
        }
    }
}

#[test]
fn geometric_ops_accept_every_pixel_type_and_channel_count() {
    for c in geometric_cases() {
        for channels in [1, 3, 4] {
            let n = W * H * channels;
            let images = [
                Image::U8(
                    ImageBuf::new(W, H, channels, (0..n).map(|v| (v % 251) as u8).collect())
                        .unwrap(),
                ),
                Image::U16(
                    ImageBuf::new(
                        W,
                        H,
                        channels,
                        (0..n).map(|v| (v * 37 % 65521) as u16).collect(),
                    )
                    .unwrap(),
                ),
                Image::F32(
                    ImageBuf::new(
                        W,
                        H,
                        channels,
                        (0..n).map(|v| (v % 97) as f32 / 96.0).collect(),
                    )
                    .unwrap(),
                ),
            ];
            for img in images {
                let ty = img.pixel_type();
                let out = augment(&c.spec, Sample::new(img), 3);
                assert_eq!(out.image.pixel_type(), ty, "{}", c.spec);
                assert_eq!(out.image.channels(), channels, "{}", c.spec);
                if let Image::F32(b) = &out.image {
                    assert!(
                        b.data().iter().all(|v| (0.0..=1.0).contains(v)),
                        "{}: f32 out of [0, 1]",
                        c.spec
                    );
                }
            }
        }
    }
}

#[test]
fn records_replay_to_the_same_result() {
    for c in geometric_cases() {
        let (img, mask, _) = blocks(1);
        let s = Sample::new(img)
            .with_mask(mask)
            .with_keypoints([Keypoint { x: 20.5, y: 15.5 }]);
        let aug = build(&c.spec);
        let mut rng = sample_rng(9, 1, 2);
        let (once, record) = aug.augment(s.clone(), &mut rng).unwrap();
        let json = serde_json::to_string(&record).unwrap();
        let again = aug
            .replay(s, &serde_json::from_str(&json).unwrap())
            .unwrap();
        assert_eq!(once, again, "{}", c.spec);
    }
}

#[test]
fn invalid_geometric_options_are_refused_by_name() {
    for (spec, needle) in [
        (json!({"op": "rot90", "k": 5}), "`k` = 5"),
        (json!({"op": "rotate", "rotate": [30, -30]}), "a ≤ b"),
        (json!({"op": "affine", "scale": 0}), "`scale` = 0"),
        (
            json!({"op": "resize", "width": -3, "height": 4}),
            "`width` = -3",
        ),
        (json!({"op": "resize", "scale": 0}), "`scale` = 0"),
        (
            json!({"op": "center_crop", "width": 0, "height": 3}),
            "`width` = 0",
        ),
        (
            json!({"op": "random_resized_crop", "width": 8, "height": 8, "ratio": [2, 1]}),
            "`ratio`",
        ),
        (json!({"op": "crop", "percent": [0.3, 0.1]}), "a ≤ b"),
        (
            json!({"op": "perspective_transform", "scale": -0.1}),
            "`scale` = -0.1",
        ),
        (
            json!({"op": "grid_distortion", "num_steps": 0}),
            "`num_steps` = 0",
        ),
        (
            json!({"op": "elastic_transformation", "sigma": [8, 4]}),
            "a ≤ b",
        ),
        (
            json!({"op": "pad", "px": 2, "pad_cval": 300}),
            "`pad_cval` = 300",
        ),
    ] {
        let err = serde_json::from_value::<AugmenterSpec>(spec.clone())
            .unwrap()
            .build()
            .map(|_| ())
            .expect_err(&spec.to_string())
            .to_string();
        assert!(err.contains(needle), "{spec}: {err}");
    }
    // Windows larger than the image are errors at run time, naming the size.
    let small = Sample::new(ImageBuf::<u8>::filled(10, 10, 1, 0).unwrap());
    for spec in [
        json!({"op": "center_crop", "width": 11, "height": 5}),
        json!({"op": "random_crop", "width": 5, "height": 12}),
    ] {
        let err = build(&spec)
            .augment(small.clone(), &mut sample_rng(0, 0, 0))
            .unwrap_err()
            .to_string();
        assert!(err.contains("10×10 image"), "{spec}: {err}");
    }
}
