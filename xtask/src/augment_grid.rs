//! `cargo xtask augment-grid`: a grid of augmented versions of one image (as imgaug's
//! `ia.imshow(np.hstack(...))`), with boxes and keypoints drawn when given.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use image::{Rgb, RgbImage};
use kindling::augment::{BoxFormat, Image, Keypoint, Pipeline, Sample};
use serde::Deserialize;

/// Flags of `cargo xtask augment-grid`.
#[derive(Debug, Clone, clap::Args)]
pub struct GridArgs {
    /// Pipeline file (.json, .yaml, .toml)
    #[arg(long, value_name = "FILE")]
    pub pipeline: PathBuf,
    /// Image to augment
    #[arg(long, value_name = "IMG")]
    pub image: PathBuf,
    /// Number of augmented versions (sample indices 0..n)
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    /// Epoch whose parameters to draw
    #[arg(long, default_value_t = 0)]
    pub epoch: u64,
    /// Boxes and keypoints: JSON `{"format": "pascal_voc"|"coco"|"yolo", "boxes": [[x1, y1, x2, y2, label], ...], "keypoints": [[x, y], ...]}`
    #[arg(long, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// Output PNG
    #[arg(long, default_value = "grid.png")]
    pub out: PathBuf,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Targets {
    #[serde(default = "pascal_voc")]
    format: BoxFormat,
    #[serde(default)]
    boxes: Vec<[f32; 5]>,
    #[serde(default)]
    keypoints: Vec<[f32; 2]>,
}

fn pascal_voc() -> BoxFormat {
    BoxFormat::PascalVoc
}

const BOX_COLOURS: [[u8; 3]; 4] = [[255, 64, 64], [64, 255, 64], [64, 160, 255], [255, 220, 0]];

/// Writes the grid; returns its size.
pub fn run(args: &GridArgs) -> Result<(u32, u32)> {
    ensure!(args.n >= 1, "--n must be at least 1");
    let pipeline = Pipeline::from_file(&args.pipeline)?;
    let image = Image::open(&args.image)?;
    let mut sample = Sample::new(image);
    if let Some(path) = &args.targets {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let t: Targets =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let (w, h) = (sample.image.width(), sample.image.height());
        for b in t.boxes {
            sample.boxes.push(
                t.format
                    .to_bbox([b[0], b[1], b[2], b[3]], b[4] as i64, w, h)?,
            );
        }
        sample
            .keypoints
            .extend(t.keypoints.iter().map(|k| Keypoint { x: k[0], y: k[1] }));
    }
    let cells: Vec<RgbImage> = (0..args.n)
        .map(|i| -> Result<RgbImage> {
            let out = pipeline.augment(sample.clone(), args.epoch, i as u64)?;
            let mut rgb = out.image.to_dynamic().to_rgb8();
            for b in &out.boxes {
                let colour = Rgb(BOX_COLOURS[b.label.unsigned_abs() as usize % BOX_COLOURS.len()]);
                draw_rect(&mut rgb, b.x1, b.y1, b.x2, b.y2, colour);
            }
            for k in &out.keypoints {
                draw_cross(&mut rgb, k.x, k.y, Rgb([255, 0, 255]));
            }
            Ok(rgb)
        })
        .collect::<Result<_>>()?;
    let cols = (args.n as f64).sqrt().ceil() as u32;
    let rows = (args.n as u32).div_ceil(cols);
    let cw = cells.iter().map(|c| c.width()).max().unwrap_or(1);
    let ch = cells.iter().map(|c| c.height()).max().unwrap_or(1);
    let gap = 4;
    let mut grid = RgbImage::from_pixel(
        cols * (cw + gap) + gap,
        rows * (ch + gap) + gap,
        Rgb([32, 32, 32]),
    );
    for (i, cell) in cells.iter().enumerate() {
        let (cx, cy) = (i as u32 % cols, i as u32 / cols);
        image::imageops::overlay(
            &mut grid,
            cell,
            (gap + cx * (cw + gap)) as i64,
            (gap + cy * (ch + gap)) as i64,
        );
    }
    grid.save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    Ok((grid.width(), grid.height()))
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

fn draw_rect(img: &mut RgbImage, x1: f32, y1: f32, x2: f32, y2: f32, c: Rgb<u8>) {
    let (x1, y1) = (x1.floor() as i64, y1.floor() as i64);
    let (x2, y2) = (
        (x2.ceil() as i64 - 1).max(x1),
        (y2.ceil() as i64 - 1).max(y1),
    );
    for x in x1..=x2 {
        put(img, x, y1, c);
        put(img, x, y2, c);
    }
    for y in y1..=y2 {
        put(img, x1, y, c);
        put(img, x2, y, c);
    }
}

fn draw_cross(img: &mut RgbImage, x: f32, y: f32, c: Rgb<u8>) {
    let (x, y) = (x.floor() as i64, y.floor() as i64);
    for d in -2..=2 {
        put(img, x + d, y, c);
        put(img, x, y + d, c);
    }
}
