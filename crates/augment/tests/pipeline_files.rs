//! The ready-made pipelines of `examples/pipelines/`: each file loads, runs on the fixture
//! image with the targets it is meant for, and does what its comment says.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use kindling_augment::{BBox, Image, ImageBuf, Keypoint, Pipeline, Sample};

fn pipelines_dir() -> PathBuf {
    common::fixtures().join("../../../examples/pipelines")
}

fn load(name: &str) -> Pipeline {
    let path = pipelines_dir().join(name);
    Pipeline::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn input() -> Image {
    Image::open(common::fixtures().join("input.png")).unwrap()
}

fn bytes(image: &Image) -> &[u8] {
    match image {
        Image::U8(b) => b.data(),
        other => panic!("expected u8, got {}", other.pixel_type()),
    }
}

/// A label mask for the 64×48 input: three classes in blocks.
fn mask() -> Image {
    let data = (0..48)
        .flat_map(|y| {
            (0..64).map(move |x| {
                if y < 16 {
                    0
                } else if x < 32 {
                    1
                } else {
                    2
                }
            })
        })
        .collect();
    Image::U8(ImageBuf::new(64, 48, 1, data).unwrap())
}

/// Every file in the folder is one of these (so a new file gets a test).
const FILES: &[&str] = &[
    "detection.yaml",
    "detection_targets.json",
    "imagenet_classification.yaml",
    "segmentation.yaml",
    "tutorial_flips.yaml",
    "tutorial_random_order.yaml",
    "tutorial_rotate.yaml",
    "tutorial_sequential.yaml",
];

#[test]
fn every_file_in_the_folder_is_covered() {
    let found: BTreeSet<String> = std::fs::read_dir(pipelines_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let known: BTreeSet<String> = FILES.iter().map(|s| s.to_string()).collect();
    assert_eq!(found, known);
}

#[test]
fn the_tutorial_pipelines_change_the_image_and_keep_its_type() {
    let original = input();
    for name in [
        "tutorial_rotate.yaml",
        "tutorial_sequential.yaml",
        "tutorial_flips.yaml",
        "tutorial_random_order.yaml",
    ] {
        let p = load(name);
        let outs: Vec<Image> = (0..8)
            .map(|i| p.augment_image(original.clone(), 0, i).unwrap())
            .collect();
        assert!(outs.iter().all(|o| o.channels() == 3), "{name}");
        assert!(
            outs.iter().any(|o| *o != original),
            "{name} changes the image"
        );
        assert!(
            outs.windows(2).any(|w| w[0] != w[1]),
            "{name}: per-image parameters"
        );
    }
}

#[test]
fn the_imagenet_pipeline_ends_at_224_with_per_image_crops() {
    let p = load("imagenet_classification.yaml");
    let outs: Vec<Image> = (0..16)
        .map(|i| p.augment_image(input(), 0, i).unwrap())
        .collect();
    for out in &outs {
        assert_eq!((out.width(), out.height(), out.channels()), (224, 224, 3));
    }
    assert!(
        outs.windows(2).all(|w| w[0] != w[1]),
        "each image its own crop and jitter"
    );
}

#[test]
fn the_segmentation_pipeline_moves_the_mask_with_the_image_and_keeps_its_labels() {
    let p = load("segmentation.yaml");
    let labels: BTreeSet<u8> = bytes(&mask()).iter().copied().collect();
    let mut changed = false;
    for i in 0..16 {
        let out = p
            .augment(Sample::new(input()).with_mask(mask()), 0, i)
            .unwrap();
        let m = &out.masks[0];
        assert_eq!(
            (m.width(), m.height()),
            (out.image.width(), out.image.height())
        );
        // Nearest neighbour: no value between classes appears.
        let seen: BTreeSet<u8> = bytes(m).iter().copied().collect();
        assert!(seen.is_subset(&labels), "sample {i}: labels {seen:?}");
        changed |= *m != mask();
    }
    assert!(changed, "the geometry reaches the mask");
    // A horizontal flip alone (the first op) on a left/right-split mask swaps its halves, with
    // the image: replaying a recorded flip shows the pair stays aligned.
    let flip = Pipeline::from_config(
        kindling_augment::PipelineConfig::parse(
            r#"{"pipeline": {"op": "fliplr", "p": 1.0}}"#,
            "json",
        )
        .unwrap(),
    )
    .unwrap();
    let out = flip
        .augment(Sample::new(input()).with_mask(mask()), 0, 0)
        .unwrap();
    assert_eq!(
        bytes(&out.masks[0])[16 * 64],
        2,
        "bottom-left is class 2 after the flip"
    );
}

#[test]
fn the_detection_pipeline_keeps_boxes_in_the_image_and_every_keypoint() {
    let text = std::fs::read_to_string(pipelines_dir().join("detection_targets.json")).unwrap();
    let targets: serde_json::Value = serde_json::from_str(&text).unwrap();
    let boxes: Vec<BBox> = targets["boxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let v: Vec<f32> = b
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            BBox {
                x1: v[0],
                y1: v[1],
                x2: v[2],
                y2: v[3],
                label: v[4] as i64,
            }
        })
        .collect();
    let keypoints: Vec<Keypoint> = targets["keypoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| Keypoint {
            x: k[0].as_f64().unwrap() as f32,
            y: k[1].as_f64().unwrap() as f32,
        })
        .collect();
    let p = load("detection.yaml");
    let mut moved = false;
    for i in 0..16 {
        let sample = Sample::new(input())
            .with_boxes(boxes.clone())
            .with_keypoints(keypoints.clone());
        let out = p.augment(sample, 0, i).unwrap();
        let (w, h) = (out.image.width() as f32, out.image.height() as f32);
        assert_eq!(
            out.keypoints.len(),
            keypoints.len(),
            "keypoints are kept, even outside"
        );
        for b in &out.boxes {
            assert!(
                b.x1 >= 0.0 && b.y1 >= 0.0 && b.x2 <= w && b.y2 <= h,
                "{b:?} clipped"
            );
            assert!((b.x2 - b.x1) * (b.y2 - b.y1) >= 4.0, "{b:?}: min_area");
        }
        moved |= out
            .boxes
            .first()
            .is_some_and(|b| b.x1 != boxes[b.label as usize].x1);
    }
    assert!(moved, "the affine moves the boxes");
}
