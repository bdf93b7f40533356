//! A deterministic synthetic image-classification dataset: coloured shapes on noisy backgrounds.
//!
//! Each class is a shape (circle, square, triangle, plus, ring) drawn with a random colour,
//! position, size and rotation over a noisy random background. Every image is a pure function
//! of `(seed, class, index)`, so the dataset is identical whatever the thread count.
//!
//! The rasteriser is hand-written (a signed-distance test per pixel with 4x4 supersampling):
//! it is twenty lines, and the drawing crates (`imageproc`) would add a large dependency tree
//! for what is only test data.

use std::path::{Path, PathBuf};

use image::RgbImage;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

/// The classes, in label order.
pub const SHAPES: [&str; 5] = ["circle", "square", "triangle", "plus", "ring"];

/// Five more shapes, drawn the same way, for a task the first five do not contain (the
/// finetune task's target): shape ids 5–9 of [`render`].
pub const OTHER_SHAPES: [&str; 5] = ["star", "crescent", "bar", "frame", "tee"];

/// The name of shape id `shape` (0–4: [`SHAPES`], 5–9: [`OTHER_SHAPES`]).
pub fn shape_name(shape: usize) -> &'static str {
    SHAPES
        .iter()
        .chain(&OTHER_SHAPES)
        .nth(shape)
        .copied()
        .unwrap_or("shape")
}

/// An RNG for one item, independent of every other item (and so of scheduling).
pub fn item_rng(seed: u64, stream: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng.set_word_pos(u128::from(index) << 20);
    rng
}

/// Renders image `index` of shape id `class` (an index into [`SHAPES`], then
/// [`OTHER_SHAPES`]) at `size`×`size`.
pub fn render(seed: u64, class: usize, index: u64, size: u32) -> RgbImage {
    let mut rng = item_rng(seed, 1 + class as u64, index);
    let s = size as f32;
    // Background: a random dull base colour plus per-pixel noise.
    let base: [f32; 3] = std::array::from_fn(|_| rng.random_range(20.0..140.0));
    let noise = rng.random_range(10.0..40.0f32);
    // Foreground: a saturated random colour, kept away from the background's brightness.
    let hue = rng.random_range(0.0..6.0f32);
    let fg = hue_to_rgb(hue).map(|c| 110.0 + 145.0 * c);
    let radius = rng.random_range(0.22..0.38) * s;
    let cx = rng.random_range(radius..s - radius);
    let cy = rng.random_range(radius..s - radius);
    let angle = rng.random_range(0.0..std::f32::consts::TAU);
    let (sin, cos) = angle.sin_cos();

    let mut img = RgbImage::new(size, size);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let mut cover = 0.0;
        for sy in 0..4 {
            for sx in 0..4 {
                // Sample point relative to the centre, rotated into the shape's frame.
                let dx = x as f32 + (sx as f32 + 0.5) / 4.0 - cx;
                let dy = y as f32 + (sy as f32 + 0.5) / 4.0 - cy;
                let u = (cos * dx + sin * dy) / radius;
                let v = (-sin * dx + cos * dy) / radius;
                if inside(class, u, v) {
                    cover += 1.0 / 16.0;
                }
            }
        }
        let mut rgb = [0u8; 3];
        for c in 0..3 {
            let bg = base[c] + rng.random_range(-noise..noise);
            rgb[c] = (bg * (1.0 - cover) + fg[c] * cover).clamp(0.0, 255.0) as u8;
        }
        *px = image::Rgb(rgb);
    }
    img
}

/// Whether the point `(u, v)` (in units of the shape's radius) lies inside shape `class`.
fn inside(class: usize, u: f32, v: f32) -> bool {
    match class {
        0 => u * u + v * v <= 1.0,
        1 => u.abs() <= 0.8 && v.abs() <= 0.8,
        // Equilateral triangle with circumradius 1: vertices at (0, 1) and (±0.866, -0.5).
        2 => v >= -0.5 && v <= 1.0 - 3f32.sqrt() * u.abs(),
        3 => (u.abs() <= 0.3 && v.abs() <= 1.0) || (v.abs() <= 0.3 && u.abs() <= 1.0),
        4 => {
            let r2 = u * u + v * v;
            (0.36..=1.0).contains(&r2)
        }
        // Five-pointed star: the radius limit runs from 0.45 between the points to 1 at them.
        5 => {
            let sector = std::f32::consts::TAU / 5.0;
            let f = (v.atan2(u).rem_euclid(sector) / sector - 0.5).abs() * 2.0;
            (u * u + v * v).sqrt() <= 0.45 + 0.55 * f
        }
        6 => u * u + v * v <= 1.0 && (u - 0.5) * (u - 0.5) + v * v > 0.64,
        7 => u.abs() <= 1.0 && v.abs() <= 0.3,
        8 => (0.5..=0.9).contains(&u.abs().max(v.abs())),
        _ => ((0.5..=1.0).contains(&v) && u.abs() <= 0.9) || (u.abs() <= 0.25 && v.abs() <= 1.0),
    }
}

/// A fully saturated colour for hue `h` in [0, 6).
pub fn hue_to_rgb(h: f32) -> [f32; 3] {
    let x = 1.0 - ((h % 2.0) - 1.0).abs();
    match h as u32 {
        0 => [1.0, x, 0.0],
        1 => [x, 1.0, 0.0],
        2 => [0.0, 1.0, x],
        3 => [0.0, x, 1.0],
        4 => [x, 0.0, 1.0],
        _ => [1.0, 0.0, x],
    }
}

/// Writes the dataset as an ImageFolder tree `dir/<class>/<index>.png`, unless a complete copy
/// made with the same parameters is already there. Returns `dir`.
pub fn write_image_folder(
    dir: &Path,
    seed: u64,
    per_class: usize,
    size: u32,
) -> std::io::Result<PathBuf> {
    write_shapes(dir, seed, &[0, 1, 2, 3, 4], 0..per_class, size)
}

/// Writes images `indices` of each shape id in `shapes` as `dir/<name>/<index>.png`, unless a
/// complete copy made with the same parameters is already there. Returns `dir`.
pub fn write_shapes(
    dir: &Path,
    seed: u64,
    shapes: &[usize],
    indices: std::ops::Range<usize>,
    size: u32,
) -> std::io::Result<PathBuf> {
    let stamp = dir.join("DATASET.txt");
    let description = format!(
        "kindling synthetic shapes: seed={seed} shapes={shapes:?} indices={indices:?} \
         size={size}\n"
    );
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == description) {
        return Ok(dir.to_path_buf());
    }
    let jobs: Vec<(usize, usize)> = shapes
        .iter()
        .flat_map(|&c| indices.clone().map(move |i| (c, i)))
        .collect();
    for &shape in shapes {
        std::fs::create_dir_all(dir.join(shape_name(shape)))?;
    }
    jobs.par_iter().try_for_each(|&(class, index)| {
        let img = render(seed, class, index as u64, size);
        let path = dir.join(shape_name(class)).join(format!("{index:05}.png"));
        img.save(&path).map_err(std::io::Error::other)
    })?;
    // The stamp is written last: an interrupted generation is redone, never half-used.
    kindling_run::write_atomic(&stamp, description.as_bytes())?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_a_pure_function_of_seed_class_and_index() {
        let a = render(7, 2, 11, 24);
        let b = render(7, 2, 11, 24);
        assert_eq!(a.as_raw(), b.as_raw());
        assert_ne!(a.as_raw(), render(7, 2, 12, 24).as_raw());
        assert_ne!(a.as_raw(), render(8, 2, 11, 24).as_raw());
    }

    #[test]
    fn every_shape_covers_a_reasonable_area() {
        for (class, name) in SHAPES.iter().chain(&OTHER_SHAPES).enumerate() {
            let n = 64;
            let inside_count = (0..n * n)
                .filter(|i| {
                    let u = (i % n) as f32 / n as f32 * 2.0 - 1.0;
                    let v = (i / n) as f32 / n as f32 * 2.0 - 1.0;
                    inside(class, u, v)
                })
                .count() as f32
                / (n * n) as f32;
            assert!((0.2..0.9).contains(&inside_count), "{name}: {inside_count}");
        }
    }
}
