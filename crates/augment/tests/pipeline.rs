//! Pipelines: per-sample determinism under any thread count, record/replay, serde round trips
//! and the errors a bad file gets.

use kindling_augment::{
    AugmentError, BBox, Fliplr, Flipud, Image, ImageBuf, Keypoint, Lambda, Pipeline,
    PipelineConfig, Sample, Sequential, SomeOf, Sometimes,
};

fn gradient(w: usize, h: usize) -> Image {
    let data = (0..h)
        .flat_map(|y| {
            (0..w).flat_map(move |x| {
                [
                    (x * 7 % 256) as u8,
                    (y * 5 % 256) as u8,
                    ((x + y) % 256) as u8,
                ]
            })
        })
        .collect();
    Image::U8(ImageBuf::new(w, h, 3, data).unwrap())
}

fn flips() -> Pipeline {
    Pipeline::new(
        Sequential {
            children: vec![Box::new(Fliplr { p: 0.5 }), Box::new(Flipud { p: 0.5 })],
            random_order: true,
        },
        7,
    )
    .unwrap()
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let pipeline = flips();
    let images: Vec<Image> = (0..64).map(|i| gradient(16 + i % 5, 12 + i % 3)).collect();
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| pipeline.augment_images(images.clone(), 3, 100).unwrap())
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
    // And sample i equals augmenting it alone with its index.
    assert_eq!(
        one[5],
        pipeline.augment_image(images[5].clone(), 3, 105).unwrap()
    );
    // Different epochs differ somewhere.
    assert_ne!(one, pipeline.augment_images(images, 4, 100).unwrap());
}

#[test]
fn a_record_replays_the_same_result_on_another_sample() {
    let pipeline = flips();
    let sample = Sample::new(gradient(20, 10))
        .with_keypoints([Keypoint { x: 3.5, y: 2.5 }])
        .with_boxes([BBox {
            x1: 2.0,
            y1: 1.0,
            x2: 6.0,
            y2: 4.0,
            label: 9,
        }]);
    for index in 0..16 {
        let (out, record) = pipeline.augment_recorded(sample.clone(), 0, index).unwrap();
        // Recording changes nothing about the draws.
        assert_eq!(pipeline.augment(sample.clone(), 0, index).unwrap(), out);
        assert_eq!(pipeline.replay(sample.clone(), &record).unwrap(), out);
        // The record is plain JSON: save it, load it, replay it.
        let text = serde_json::to_string(&record).unwrap();
        let back = serde_json::from_str(&text).unwrap();
        assert_eq!(pipeline.replay(sample.clone(), &back).unwrap(), out);
    }
}

#[test]
fn pipelines_round_trip_through_json_yaml_and_toml() {
    let json = r#"{"seed": 3, "pipeline": {"op": "sequential", "random_order": true, "children": [
        {"op": "sometimes", "p": 0.5, "then": {"op": "fliplr"}, "else": {"op": "flipud", "p": 1.0}},
        {"op": "some_of", "n": [0, 2], "children": [{"op": "fliplr"}, {"op": "identity"}]}
    ]}}"#;
    let config: PipelineConfig = PipelineConfig::parse(json, "json").unwrap();
    let yaml = serde_yaml_ng::to_string(&config).unwrap();
    let toml_text = toml::to_string(&config).unwrap();
    assert_eq!(PipelineConfig::parse(&yaml, "yaml").unwrap(), config);
    assert_eq!(PipelineConfig::parse(&toml_text, "toml").unwrap(), config);
    let a = Pipeline::from_config(config.clone()).unwrap();
    let b = Pipeline::from_config(PipelineConfig::parse(&yaml, "yaml").unwrap()).unwrap();
    for i in 0..8 {
        assert_eq!(
            a.augment_image(gradient(9, 7), 1, i).unwrap(),
            b.augment_image(gradient(9, 7), 1, i).unwrap()
        );
    }
}

#[test]
fn bad_pipelines_name_the_problem() {
    let err = PipelineConfig::parse(r#"{"pipeline": {"op": "flplr"}}"#, "json").unwrap_err();
    assert!(err.contains("unknown variant `flplr`"), "{err}");
    let err = PipelineConfig::parse(r#"{"pipeline": {"op": "fliplr", "prob": 0.5}}"#, "json")
        .unwrap_err();
    assert!(err.contains("unknown field `prob`"), "{err}");
    let config =
        PipelineConfig::parse(r#"{"pipeline": {"op": "fliplr", "p": 1.5}}"#, "json").unwrap();
    let err = Pipeline::from_config(config).unwrap_err();
    assert_eq!(
        err.to_string(),
        "fliplr: `p` = 1.5 is invalid: a probability in [0, 1]"
    );
    let err = Pipeline::new(
        Sometimes {
            p: -0.1,
            then: Box::new(Fliplr { p: 1.0 }),
            otherwise: None,
        },
        0,
    )
    .unwrap_err();
    assert!(
        matches!(err, AugmentError::Invalid { field: "p", .. }),
        "{err}"
    );
    let err = Pipeline::new(
        SomeOf {
            n: kindling_augment::Count::Between([3, 1]),
            children: vec![],
            random_order: false,
        },
        0,
    )
    .unwrap_err();
    assert!(err.to_string().contains("a ≤ b"), "{err}");
}

#[test]
fn a_mask_of_the_wrong_size_is_refused_before_augmenting() {
    let sample = Sample::new(gradient(8, 8)).with_mask(ImageBuf::<u8>::filled(8, 9, 1, 0).unwrap());
    let err = flips().augment(sample, 0, 0).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid target: mask 0 is 8×9, its image 8×8"
    );
}

#[test]
fn flips_move_boxes_and_keypoints_with_the_pixels() {
    let mut img = ImageBuf::<u8>::filled(10, 6, 1, 0).unwrap();
    img.data_mut()[2 * 10 + 3] = 255; // pixel (3, 2)
    let sample = Sample::new(img)
        .with_keypoints([Keypoint { x: 3.5, y: 2.5 }])
        .with_boxes([BBox {
            x1: 3.0,
            y1: 2.0,
            x2: 4.0,
            y2: 3.0,
            label: 1,
        }]);
    let pipeline = Pipeline::new(
        Sequential {
            children: vec![Box::new(Fliplr { p: 1.0 }), Box::new(Flipud { p: 1.0 })],
            random_order: false,
        },
        0,
    )
    .unwrap();
    let out = pipeline.augment(sample, 0, 0).unwrap();
    let Image::U8(img) = &out.image else { panic!() };
    let k = out.keypoints[0];
    assert_eq!(img.pixel(k.x as usize, k.y as usize), [255]);
    let b = out.boxes[0];
    assert_eq!((b.x1, b.y1, b.x2, b.y2, b.label), (6.0, 3.0, 7.0, 4.0, 1));
    assert_eq!(img.pixel(6, 3), [255]);
}

#[test]
fn a_closure_augmenter_replays_with_its_recorded_seed() {
    use rand::RngExt;
    let noise = Lambda::new("brighten", |mut s: Sample, rng| {
        let add: u8 = rng.random_range(0..50);
        if let Image::U8(b) = &mut s.image {
            b.data_mut()
                .iter_mut()
                .for_each(|v| *v = v.saturating_add(add));
        }
        Ok(s)
    });
    let pipeline = Pipeline::new(noise, 1).unwrap();
    let (out, record) = pipeline
        .augment_recorded(Sample::new(gradient(4, 4)), 0, 3)
        .unwrap();
    assert_eq!(
        pipeline
            .replay(Sample::new(gradient(4, 4)), &record)
            .unwrap(),
        out
    );
}
