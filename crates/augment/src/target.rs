//! What an augmenter transforms together: the image and its targets. Geometric augmenters move
//! every target with the same sampled parameters; pixel augmenters touch the image only.

use serde::{Deserialize, Serialize};

use crate::{AugmentError, Image, ImageBuf, Result};

/// A bounding box in absolute pixel coordinates, `x1 ≤ x2`, `y1 ≤ y2` (pascal_voc), with the
/// label that stays with it when boxes are filtered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
    /// Class label.
    pub label: i64,
}

impl BBox {
    /// Area (0 for degenerate boxes).
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }
}

/// How box coordinates are written, as Albumentations' `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxFormat {
    /// `[x_min, y_min, x_max, y_max]` in pixels.
    PascalVoc,
    /// `[x_min, y_min, width, height]` in pixels.
    Coco,
    /// `[x_center, y_center, width, height]` normalised by the image size.
    Yolo,
}

impl BoxFormat {
    /// A box from coordinates in this format, on an image of `width × height`. A box with
    /// x2 < x1 or y2 < y1 (or negative size) is an error naming it.
    pub fn to_bbox(self, c: [f32; 4], label: i64, width: usize, height: usize) -> Result<BBox> {
        let (w, h) = (width as f32, height as f32);
        let [x1, y1, x2, y2] = match self {
            BoxFormat::PascalVoc => c,
            BoxFormat::Coco => [c[0], c[1], c[0] + c[2], c[1] + c[3]],
            BoxFormat::Yolo => [
                (c[0] - c[2] / 2.0) * w,
                (c[1] - c[3] / 2.0) * h,
                (c[0] + c[2] / 2.0) * w,
                (c[1] + c[3] / 2.0) * h,
            ],
        };
        if !(x2 >= x1 && y2 >= y1) || c.iter().any(|v| !v.is_finite()) {
            return Err(AugmentError::Target(format!(
                "box {c:?} ({self:?}) has x2 < x1 or y2 < y1 (or a non-finite value)"
            )));
        }
        Ok(BBox {
            x1,
            y1,
            x2,
            y2,
            label,
        })
    }

    /// The coordinates of `b` in this format, on an image of `width × height`.
    pub fn from_bbox(self, b: &BBox, width: usize, height: usize) -> [f32; 4] {
        let (w, h) = (width as f32, height as f32);
        match self {
            BoxFormat::PascalVoc => [b.x1, b.y1, b.x2, b.y2],
            BoxFormat::Coco => [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
            BoxFormat::Yolo => [
                (b.x1 + b.x2) / 2.0 / w,
                (b.y1 + b.y2) / 2.0 / h,
                (b.x2 - b.x1) / w,
                (b.y2 - b.y1) / h,
            ],
        }
    }
}

/// A keypoint in pixel coordinates (pixel centres at `x + 0.5`, as imgaug and Albumentations).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Keypoint {
    /// Horizontal position.
    pub x: f32,
    /// Vertical position.
    pub y: f32,
}

/// An image and its targets. Masks are label maps (nearest-neighbour only, never pixel
/// ops); heatmaps are float maps (interpolated like the image); boxes and keypoints move with
/// every geometric augmenter.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The image.
    pub image: Image,
    /// Segmentation masks, each the image's width and height.
    pub masks: Vec<Image>,
    /// Heatmaps, each the image's width and height.
    pub heatmaps: Vec<ImageBuf<f32>>,
    /// Bounding boxes (pascal_voc, pixels).
    pub boxes: Vec<BBox>,
    /// Keypoints (pixels).
    pub keypoints: Vec<Keypoint>,
}

impl Sample {
    /// A sample with only an image.
    pub fn new(image: impl Into<Image>) -> Self {
        Self {
            image: image.into(),
            masks: Vec::new(),
            heatmaps: Vec::new(),
            boxes: Vec::new(),
            keypoints: Vec::new(),
        }
    }

    /// Adds a segmentation mask.
    pub fn with_mask(mut self, mask: impl Into<Image>) -> Self {
        self.masks.push(mask.into());
        self
    }

    /// Adds a heatmap.
    pub fn with_heatmap(mut self, heatmap: ImageBuf<f32>) -> Self {
        self.heatmaps.push(heatmap);
        self
    }

    /// Adds bounding boxes.
    pub fn with_boxes(mut self, boxes: impl IntoIterator<Item = BBox>) -> Self {
        self.boxes.extend(boxes);
        self
    }

    /// Adds keypoints.
    pub fn with_keypoints(mut self, keypoints: impl IntoIterator<Item = Keypoint>) -> Self {
        self.keypoints.extend(keypoints);
        self
    }

    /// Checks that every mask and heatmap has the image's size and every box is ordered.
    pub fn validate(&self) -> Result<()> {
        let (w, h) = (self.image.width(), self.image.height());
        for (i, m) in self.masks.iter().enumerate() {
            if (m.width(), m.height()) != (w, h) {
                return Err(AugmentError::Target(format!(
                    "mask {i} is {}×{}, its image {w}×{h}",
                    m.width(),
                    m.height()
                )));
            }
        }
        for (i, m) in self.heatmaps.iter().enumerate() {
            if (m.width(), m.height()) != (w, h) {
                return Err(AugmentError::Target(format!(
                    "heatmap {i} is {}×{}, its image {w}×{h}",
                    m.width(),
                    m.height()
                )));
            }
        }
        for b in &self.boxes {
            if !(b.x2 >= b.x1 && b.y2 >= b.y1) {
                return Err(AugmentError::Target(format!(
                    "box {b:?} has x2 < x1 or y2 < y1"
                )));
            }
        }
        Ok(())
    }
}

/// Albumentations' `BboxParams`: after the pipeline, boxes are clipped to the image and those
/// whose area (pixels) or kept fraction fall below the limits are dropped, with their labels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoxParams {
    /// Minimum area in pixels after clipping.
    pub min_area: f32,
    /// Minimum fraction of the (transformed, unclipped) box still inside the image.
    pub min_visibility: f32,
}

impl Default for BoxParams {
    fn default() -> Self {
        Self {
            min_area: 0.0,
            min_visibility: 0.0,
        }
    }
}

impl BoxParams {
    /// Clips `boxes` to `width × height` and drops the ones below the limits. A box that
    /// leaves the image entirely is always dropped.
    pub fn filter(&self, boxes: Vec<BBox>, width: usize, height: usize) -> Vec<BBox> {
        let (w, h) = (width as f32, height as f32);
        boxes
            .into_iter()
            .filter_map(|b| {
                let area = b.area();
                let c = BBox {
                    x1: b.x1.clamp(0.0, w),
                    y1: b.y1.clamp(0.0, h),
                    x2: b.x2.clamp(0.0, w),
                    y2: b.y2.clamp(0.0, h),
                    label: b.label,
                };
                let kept = c.area();
                let visible = if area > 0.0 { kept / area } else { 0.0 };
                (kept > 0.0 && kept >= self.min_area && visible >= self.min_visibility).then_some(c)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_formats_round_trip() {
        for f in [BoxFormat::PascalVoc, BoxFormat::Coco, BoxFormat::Yolo] {
            let b = BBox {
                x1: 10.0,
                y1: 20.0,
                x2: 50.0,
                y2: 40.0,
                label: 3,
            };
            let c = f.from_bbox(&b, 100, 80);
            let back = f.to_bbox(c, 3, 100, 80).unwrap();
            assert!(
                (back.x1 - b.x1).abs() < 1e-4 && (back.y2 - b.y2).abs() < 1e-4,
                "{f:?}"
            );
        }
    }

    #[test]
    fn inverted_boxes_and_wrong_mask_sizes_are_errors() {
        let err = BoxFormat::PascalVoc
            .to_bbox([30.0, 0.0, 10.0, 5.0], 0, 64, 64)
            .unwrap_err();
        assert!(err.to_string().contains("x2 < x1"), "{err}");
        let s = Sample::new(ImageBuf::<u8>::filled(4, 4, 3, 0).unwrap())
            .with_mask(ImageBuf::<u8>::filled(4, 5, 1, 0).unwrap());
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("mask 0 is 4×5, its image 4×4")
        );
    }

    #[test]
    fn filtering_keeps_labels_in_step() {
        let boxes = vec![
            BBox {
                x1: -10.0,
                y1: 0.0,
                x2: 10.0,
                y2: 10.0,
                label: 1,
            }, // half visible
            BBox {
                x1: 90.0,
                y1: 0.0,
                x2: 120.0,
                y2: 10.0,
                label: 2,
            }, // a third visible
            BBox {
                x1: 200.0,
                y1: 0.0,
                x2: 210.0,
                y2: 10.0,
                label: 3,
            }, // outside
        ];
        let kept = BoxParams {
            min_area: 0.0,
            min_visibility: 0.4,
        }
        .filter(boxes, 100, 100);
        assert_eq!(kept.iter().map(|b| b.label).collect::<Vec<_>>(), [1]);
        assert_eq!(kept[0].x1, 0.0);
    }
}
