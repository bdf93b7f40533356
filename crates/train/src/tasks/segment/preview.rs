//! `<out>/predictions.png`: validation images with their ground-truth and predicted masks
//! overlaid in a fixed palette, one row per image (image | ground truth | prediction).

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use image::{Rgb, RgbImage};
use kindling_augment::{Image, ImageBuf, to_tensor};

use super::data::SegSample;
use super::model::UNet;
use super::{MEAN, STD};
use crate::error::{Result, TrainError};

/// Class colours (class 0, the background, is left uncoloured); cycles past 12 classes.
const PALETTE: [[u8; 3]; 12] = [
    [0, 0, 0],
    [230, 25, 75],
    [60, 180, 75],
    [255, 225, 25],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [210, 245, 60],
    [250, 190, 212],
    [0, 128, 128],
];

/// Writes the grid for the first `count` samples of `val` (atomically: temp file + rename).
pub fn write_predictions(
    model: &UNet,
    val: &[SegSample],
    count: usize,
    size: u32,
    ignore: u8,
    path: &Path,
) -> Result<()> {
    let n = count.min(val.len());
    if n == 0 {
        return Ok(());
    }
    let s = size as usize;
    let device = model.devices().into_iter().next().unwrap_or_default();
    let predicted = predict(model, &val[..n], s, &device)?;
    let gap = 2u32;
    let (w, h) = (3 * size + 4 * gap, n as u32 * (size + gap) + gap);
    let mut grid = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    for (row, (sample, pred)) in val[..n].iter().zip(&predicted).enumerate() {
        let y0 = gap + row as u32 * (size + gap);
        for (col, mask) in [None, Some(&sample.mask), Some(pred)]
            .into_iter()
            .enumerate()
        {
            let x0 = gap + col as u32 * (size + gap);
            for p in 0..s * s {
                let rgb = &sample.image[3 * p..3 * p + 3];
                let mut px = [rgb[0], rgb[1], rgb[2]];
                if let Some(mask) = mask {
                    let class = mask[p];
                    if class == ignore {
                        px = [255, 255, 255];
                    } else if class != 0 {
                        let c = PALETTE[class as usize % PALETTE.len()];
                        // 60 % class colour over the image.
                        for k in 0..3 {
                            px[k] = ((u16::from(px[k]) * 2 + u16::from(c[k]) * 3) / 5) as u8;
                        }
                    }
                }
                grid.put_pixel(x0 + (p % s) as u32, y0 + (p / s) as u32, Rgb(px));
            }
        }
    }
    let tmp = path.with_extension("png.tmp.png");
    grid.save(&tmp)
        .map_err(|e| TrainError::Task(format!("writing {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(TrainError::io(path))
}

/// The model's class per pixel for each sample.
fn predict(model: &UNet, samples: &[SegSample], s: usize, device: &Device) -> Result<Vec<Vec<u8>>> {
    let images: Vec<Image> = samples
        .iter()
        .map(|x| ImageBuf::new(s, s, 3, x.image.clone()).map(Image::U8))
        .collect::<std::result::Result<_, _>>()?;
    let x = to_tensor(&images, &MEAN, &STD, device)?;
    let classes = model.forward(x).argmax(1);
    let flat: Vec<i64> = classes
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| TrainError::Task(format!("reading predictions: {e:?}")))?;
    Ok(flat
        .chunks(s * s)
        .map(|c| c.iter().map(|&v| v as u8).collect())
        .collect())
}
