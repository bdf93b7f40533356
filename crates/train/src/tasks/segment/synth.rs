//! A deterministic synthetic segmentation set: several shapes (circle, square, triangle) on
//! textured, noisy backgrounds, overlapping, with per-pixel class masks, written as real PNGs
//! in the segmentation-folder layout (`images/`, `masks/`, `classes.txt`).
//!
//! Each image and its mask are a pure function of `(seed, index)`, so the set is identical
//! whatever the thread count. Shapes are drawn in order, so a later shape covers an earlier
//! one in the image and in the mask alike. The rasteriser is hand-written for the reason given
//! in the classify task's `synth` module.

use std::path::{Path, PathBuf};

use image::{GrayImage, RgbImage};
use rand::RngExt;
use rayon::prelude::*;

use crate::tasks::classify::synth::item_rng;

/// Class names in label order (0 is the background).
pub const CLASSES: [&str; 4] = ["background", "circle", "square", "triangle"];

/// Renders image `index` and its mask (pixel value = class index) at `size`×`size`.
pub fn render(seed: u64, index: u64, size: u32) -> (RgbImage, GrayImage) {
    let mut rng = item_rng(seed, 101, index);
    let s = size as f32;
    // Background: a dull base colour, a diagonal stripe texture and per-pixel noise.
    let base: [f32; 3] = std::array::from_fn(|_| rng.random_range(30.0..130.0));
    let stripe = rng.random_range(10.0..35.0f32);
    let period = rng.random_range(4.0..12.0f32);
    let tilt = rng.random_range(0.0..std::f32::consts::PI);
    let noise = rng.random_range(8.0..25.0f32);
    let mut img = RgbImage::new(size, size);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let t = (x as f32 * tilt.cos() + y as f32 * tilt.sin()) / period;
        let texture = stripe * (t * std::f32::consts::TAU).sin();
        *px = image::Rgb(std::array::from_fn(|c| {
            (base[c] + texture + rng.random_range(-noise..noise)).clamp(0.0, 255.0) as u8
        }));
    }
    let mut mask = GrayImage::new(size, size);
    let shapes = rng.random_range(2..=4);
    for _ in 0..shapes {
        let class = rng.random_range(1..CLASSES.len());
        let hue = rng.random_range(0.0..6.0f32);
        let fg = crate::tasks::classify::synth::hue_to_rgb(hue).map(|c| 120.0 + 135.0 * c);
        let radius = rng.random_range(0.12..0.26) * s;
        let cx = rng.random_range(radius * 0.5..s - radius * 0.5);
        let cy = rng.random_range(radius * 0.5..s - radius * 0.5);
        let angle = rng.random_range(0.0..std::f32::consts::TAU);
        let (sin, cos) = angle.sin_cos();
        for y in 0..size {
            for x in 0..size {
                let dx = x as f32 + 0.5 - cx;
                let dy = y as f32 + 0.5 - cy;
                let u = (cos * dx + sin * dy) / radius;
                let v = (-sin * dx + cos * dy) / radius;
                if inside(class, u, v) {
                    let shade = rng.random_range(-12.0..12.0f32);
                    img.put_pixel(
                        x,
                        y,
                        image::Rgb(fg.map(|c| (c + shade).clamp(0.0, 255.0) as u8)),
                    );
                    mask.put_pixel(x, y, image::Luma([class as u8]));
                }
            }
        }
    }
    (img, mask)
}

/// Whether `(u, v)` (in units of the shape's radius) lies inside shape `class` (1-based).
fn inside(class: usize, u: f32, v: f32) -> bool {
    match class {
        1 => u * u + v * v <= 1.0,
        2 => u.abs() <= 0.8 && v.abs() <= 0.8,
        // Equilateral triangle with circumradius 1.
        _ => v >= -0.5 && v <= 1.0 - 3f32.sqrt() * u.abs(),
    }
}

/// Writes `count` images to `dir/images/NNNNN.png`, their masks to `dir/masks/NNNNN.png` and
/// the class names to `dir/classes.txt`, unless a complete copy made with the same parameters
/// is already there. Returns `dir`.
pub fn write_folder(dir: &Path, seed: u64, count: usize, size: u32) -> std::io::Result<PathBuf> {
    let stamp = dir.join("DATASET.txt");
    let description =
        format!("kindling synthetic segmentation: seed={seed} count={count} size={size}\n");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == description) {
        return Ok(dir.to_path_buf());
    }
    let (images, masks) = (dir.join("images"), dir.join("masks"));
    std::fs::create_dir_all(&images)?;
    std::fs::create_dir_all(&masks)?;
    (0..count).into_par_iter().try_for_each(|i| {
        let (img, mask) = render(seed, i as u64, size);
        let name = format!("{i:05}.png");
        img.save(images.join(&name))
            .map_err(std::io::Error::other)?;
        mask.save(masks.join(&name)).map_err(std::io::Error::other)
    })?;
    kindling_run::write_atomic(
        &dir.join("classes.txt"),
        (CLASSES.join("\n") + "\n").as_bytes(),
    )?;
    // The stamp is written last: an interrupted generation is redone, never half-used.
    kindling_run::write_atomic(&stamp, description.as_bytes())?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_masks_are_a_pure_function_of_seed_and_index() {
        let (a, ma) = render(3, 5, 32);
        let (b, mb) = render(3, 5, 32);
        assert_eq!((a.as_raw(), ma.as_raw()), (b.as_raw(), mb.as_raw()));
        assert_ne!(a.as_raw(), render(3, 6, 32).0.as_raw());
    }

    #[test]
    fn masks_hold_every_class_over_a_few_images() {
        let mut seen = [0usize; CLASSES.len()];
        for i in 0..20 {
            for &v in render(1, i, 48).1.as_raw() {
                seen[v as usize] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n > 0), "{seen:?}");
        // The background stays the largest class but far from all pixels.
        let total: usize = seen.iter().sum();
        assert!(seen[0] * 10 < total * 9, "{seen:?}");
    }
}
