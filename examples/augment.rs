//! Image augmentation (the tutorial's section 6.5) with `kindling-augment`: the tutorial's four
//! imgaug pipelines, written as pipeline files, on one image, on a batch of different sizes,
//! with boxes and keypoints, then batched into a normalised `Tensor<4>`.
//!
//! ```text
//! cargo run -p kindling --example augment
//! ```

use anyhow::{Context, ensure};
use kindling::augment::{
    BBox, IMAGENET_MEAN, IMAGENET_STD, Image, ImageBuf, Keypoint, Pipeline, PipelineConfig, Sample,
    to_tensor,
};

/// A 96×64 test card: gradients, a bright square, a dark bar.
fn test_card(w: usize, h: usize) -> Image {
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let square = (w / 3..w / 3 + w / 5).contains(&x) && (h / 3..h / 3 + h / 4).contains(&y);
            let bar = (h * 3 / 4..h * 3 / 4 + 4).contains(&y);
            let px = if square {
                [250, 240, 40]
            } else if bar {
                [20, 20, 20]
            } else {
                [(x * 255 / w) as u8, (y * 255 / h) as u8, 128]
            };
            data.extend_from_slice(&px);
        }
    }
    Image::U8(ImageBuf::new(w, h, 3, data).expect("valid size"))
}

fn pipeline(json: &str) -> anyhow::Result<Pipeline> {
    let config = PipelineConfig::parse(json, "json").map_err(anyhow::Error::msg)?;
    Ok(Pipeline::from_config(config)?)
}

fn main() -> anyhow::Result<()> {
    let out_dir = std::env::temp_dir().join("kindling-augment-example");
    std::fs::create_dir_all(&out_dir)?;
    let image = test_card(96, 64);

    // 1. `iaa.Affine(rotate=(-4, 45))` on one image: `augment_image` takes an `Image`…
    let rotate = pipeline(r#"{"seed": 1, "pipeline": {"op": "affine", "rotate": [-4, 45]}}"#)?;
    let rotated = rotate.augment_image(image.clone(), 0, 0)?;
    rotated.save(out_dir.join("rotated.png"))?;

    // 2. The README's Sequential: Affine(±25), AdditiveGaussianNoise(10–60), Crop(0–20 %).
    let seq = pipeline(
        r#"{"seed": 2, "pipeline": {"op": "sequential", "children": [
            {"op": "affine", "rotate": [-25, 25]},
            {"op": "additive_gaussian_noise", "scale": [10, 60]},
            {"op": "crop", "percent": [0, 0.2]}]}}"#,
    )?;
    // …and `augment_images` a `Vec<Image>`: two types, so the tutorial's image/images mix-up
    // is a compile error, not a silently wrong batch.
    let batch = seq.augment_images(vec![image.clone(); 8], 0, 0)?;
    ensure!(
        batch.windows(2).any(|w| w[0] != w[1]),
        "every image gets its own parameters"
    );

    // 3. Flips, blur and brightness.
    let flips = pipeline(
        r#"{"seed": 3, "pipeline": {"op": "sequential", "children": [
            {"op": "fliplr", "p": 0.5},
            {"op": "flipud", "p": 0.2},
            {"op": "gaussian_blur", "sigma": [0, 3.0]},
            {"op": "multiply_brightness", "mul": [0.65, 1.35]}]}}"#,
    )?;

    // 4. A batch of different sizes, random order: CropAndPad, AddToHueAndSaturation,
    //    ElasticTransformation, Cutout.
    let mixed = pipeline(
        r#"{"seed": 4, "pipeline": {"op": "sequential", "random_order": true, "children": [
            {"op": "crop_and_pad", "percent": [-0.2, 0.2], "pad_mode": "edge"},
            {"op": "add_to_hue_and_saturation", "value_hue": [-60, 60], "value_saturation": [-60, 60]},
            {"op": "elastic_transformation", "alpha": 90, "sigma": 9},
            {"op": "cutout"}]}}"#,
    )?;
    let sizes = [(96, 64), (64, 96), (120, 80), (50, 50)];
    let different: Vec<Image> = sizes.iter().map(|&(w, h)| test_card(w, h)).collect();
    for (i, img) in mixed.augment_images(different, 0, 0)?.iter().enumerate() {
        img.save(out_dir.join(format!("mixed_{i}.png")))?;
    }

    // Boxes and keypoints share the sampled parameters: the square's box and its centre.
    let square = BBox {
        x1: 32.0,
        y1: 21.0,
        x2: 51.0,
        y2: 37.0,
        label: 1,
    };
    let centre = Keypoint { x: 41.5, y: 29.0 };
    let sample = Sample::new(image.clone())
        .with_boxes([square])
        .with_keypoints([centre]);
    let (out, record) = flips.augment_recorded(sample.clone(), 0, 5)?;
    println!(
        "sample 5: box {:?} → {:?}, keypoint → {:?}",
        square, out.boxes, out.keypoints
    );
    println!("recorded parameters: {}", serde_json::to_string(&record)?);
    // ReplayCompose: the same parameters on the same (or another) sample.
    ensure!(
        flips.replay(sample, &record)? == out,
        "a record replays exactly"
    );

    // Into Burn: crop/resize to one size, then a normalised NCHW batch.
    let train = pipeline(
        r#"{"seed": 5, "pipeline": {"op": "sequential", "children": [
            {"op": "random_resized_crop", "width": 48, "height": 48},
            {"op": "fliplr", "p": 0.5}]}}"#,
    )?;
    let images = train.augment_images(vec![image; 16], 0, 0)?;
    let device = kindling::init_device(kindling::DeviceSpec::Flex, kindling::Precision::F32, 0)?;
    let tensor = to_tensor(&images, &IMAGENET_MEAN, &IMAGENET_STD, &device)?;
    println!("batch tensor {:?}", tensor.dims());
    ensure!(tensor.dims() == [16, 3, 48, 48], "NCHW batch");

    // Pipelines are plain data: save one as YAML, load it back.
    let yaml = serde_yaml_ng::to_string(seq.config().context("built from a config")?)?;
    println!("the README pipeline as YAML:\n{yaml}");
    println!("wrote pictures to {}", out_dir.display());
    Ok(())
}
