//! Segmentation metrics from a confusion matrix accumulated over the whole validation set:
//! per-class IoU, mIoU, Dice and pixel accuracy, ignore pixels excluded.
//!
//! Dataset-level statistics, as torchmetrics' `MulticlassJaccardIndex(average="macro")` and
//! smp's metrics with `reduction="macro"` compute them from summed counts (not per-image
//! means): IoU_c = TP / (TP + FP + FN), Dice_c = 2TP / (2TP + FP + FN), averaged over the
//! classes that occur in the targets or the predictions — a class absent from both has no
//! defined score and is left out of the mean (our convention; not checked against a
//! torchmetrics fixture yet). Pixel accuracy is correct pixels over labelled pixels.

/// A `C × C` confusion matrix: `counts[target][predicted]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Confusion {
    classes: usize,
    counts: Vec<u64>,
}

impl Confusion {
    /// An empty matrix for `classes` classes.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Adds a batch of per-pixel `targets` and `predictions` (class indices); targets equal
    /// to `ignore` (or out of range) are skipped.
    pub fn add(&mut self, targets: &[i64], predictions: &[i64], ignore: i64) {
        let c = self.classes as i64;
        for (&t, &p) in targets.iter().zip(predictions) {
            if t == ignore || !(0..c).contains(&t) || !(0..c).contains(&p) {
                continue;
            }
            self.counts[(t * c + p) as usize] += 1;
        }
    }

    fn tp_fp_fn(&self, class: usize) -> (u64, u64, u64) {
        let c = self.classes;
        let tp = self.counts[class * c + class];
        let predicted: u64 = (0..c).map(|t| self.counts[t * c + class]).sum();
        let actual: u64 = (0..c).map(|p| self.counts[class * c + p]).sum();
        (tp, predicted - tp, actual - tp)
    }

    /// IoU of each class (`None` when the class is in neither targets nor predictions).
    pub fn per_class_iou(&self) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|k| {
                let (tp, fp, fn_) = self.tp_fp_fn(k);
                let union = tp + fp + fn_;
                (union > 0).then(|| tp as f64 / union as f64)
            })
            .collect()
    }

    /// Dice of each class (`None` as for IoU).
    pub fn per_class_dice(&self) -> Vec<Option<f64>> {
        (0..self.classes)
            .map(|k| {
                let (tp, fp, fn_) = self.tp_fp_fn(k);
                let denom = 2 * tp + fp + fn_;
                (denom > 0).then(|| 2.0 * tp as f64 / denom as f64)
            })
            .collect()
    }

    /// Mean IoU over the classes that have one.
    pub fn miou(&self) -> f64 {
        mean_defined(&self.per_class_iou())
    }

    /// Mean Dice over the classes that have one.
    pub fn dice(&self) -> f64 {
        mean_defined(&self.per_class_dice())
    }

    /// Correct pixels over labelled pixels.
    pub fn pixel_accuracy(&self) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let correct: u64 = (0..self.classes)
            .map(|k| self.counts[k * self.classes + k])
            .sum();
        if total == 0 {
            0.0
        } else {
            correct as f64 / total as f64
        }
    }
}

fn mean_defined(values: &[Option<f64>]) -> f64 {
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    if defined.is_empty() {
        0.0
    } else {
        defined.iter().sum::<f64>() / defined.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_counts_and_skip_ignored_pixels() {
        // targets / predictions over 8 pixels, 3 classes, 255 ignored.
        let t = [0, 0, 1, 1, 1, 2, 255, 255];
        let p = [0, 1, 1, 1, 0, 2, 2, 0];
        let mut m = Confusion::new(3);
        m.add(&t, &p, 255);
        // class 0: tp 1, fp 1 (pixel 4), fn 1 (pixel 1) -> IoU 1/3, Dice 2/4
        // class 1: tp 2, fp 1, fn 1 -> IoU 2/4, Dice 4/6
        // class 2: tp 1, fp 0, fn 0 -> IoU 1, Dice 1
        let iou = m.per_class_iou();
        assert_eq!(iou, [Some(1.0 / 3.0), Some(0.5), Some(1.0)]);
        assert!((m.miou() - (1.0 / 3.0 + 0.5 + 1.0) / 3.0).abs() < 1e-15);
        assert!((m.dice() - (0.5 + 4.0 / 6.0 + 1.0) / 3.0).abs() < 1e-15);
        assert_eq!(m.pixel_accuracy(), 4.0 / 6.0);
    }

    #[test]
    fn a_class_absent_from_targets_and_predictions_is_left_out_of_the_mean() {
        let mut m = Confusion::new(4);
        m.add(&[0, 1], &[0, 1], 255);
        assert_eq!(m.per_class_iou()[3], None);
        assert_eq!(m.miou(), 1.0);
    }
}
