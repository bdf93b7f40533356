//! `train segment` end to end through the `xtask` binary on Flex: outputs, determinism, and
//! the errors bad data and bad settings must produce.

mod common;

use std::path::Path;

use common::{run, run_ok, xtask};

/// A tiny segment configuration: seconds per run on Flex.
fn tiny(path: &Path, epochs: usize, extra: &str) {
    std::fs::write(
        path,
        format!(
            "epochs = {epochs}\nbatch_size = 4\n\n[segment]\nimage_size = 16\n\
             synthetic_count = 12\nwidths = [4, 8]\npreview = 2\n{extra}"
        ),
    )
    .unwrap();
}

/// A segmentation folder with `n` 8×8 pairs (classes 0 and 1; mask value 255 on one row).
fn folder(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("images")).unwrap();
    std::fs::create_dir_all(dir.join("masks")).unwrap();
    for i in 0..n {
        let img = image::RgbImage::from_fn(8, 8, |x, _| image::Rgb([(x * 30) as u8, i as u8, 9]));
        img.save(dir.join(format!("images/{i:02}.png"))).unwrap();
        let mask = image::GrayImage::from_fn(8, 8, |x, y| {
            image::Luma([if y == 0 { 255 } else { (x >= 4) as u8 }])
        });
        mask.save(dir.join(format!("masks/{i:02}.png"))).unwrap();
    }
}

#[test]
fn segment_writes_its_columns_checkpoints_and_predictions_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    tiny(&config, 2, "");
    let mut csvs = Vec::new();
    for workers in ["0", "2"] {
        let out = dir.path().join(format!("w{workers}"));
        let (_, err) = run_ok(
            xtask()
                .args(["train", "segment", "--workers", workers, "--config"])
                .arg(&config)
                .arg("--out")
                .arg(&out),
        );
        assert!(err.contains("per-class IoU"), "{err}");
        for file in [
            "curves.png",
            "predictions.png",
            "checkpoints/last.ckpt",
            "checkpoints/best.ckpt",
        ] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        // Every column up to lr (the timing columns differ between runs).
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        csvs.push(
            csv.lines()
                .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
                .collect::<Vec<_>>(),
        );
    }
    assert!(
        csvs[0][0].starts_with("epoch,train_loss,val_loss,val_miou,val_dice,val_pixel_accuracy,lr"),
        "{}",
        csvs[0][0]
    );
    assert_eq!(csvs[0].len(), 3, "header + 2 epochs");
    assert_eq!(csvs[0], csvs[1], "workers must not change results");
}

#[test]
fn bad_masks_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    tiny(&config, 1, "");
    let train = |data: &Path| {
        let mut cmd = xtask();
        cmd.args(["train", "segment", "--config"])
            .arg(&config)
            .arg("--data")
            .arg(data)
            .arg("--out")
            .arg(dir.path().join("out"));
        run(&mut cmd)
    };

    let missing = dir.path().join("missing");
    folder(&missing, 4);
    std::fs::remove_file(missing.join("masks/02.png")).unwrap();
    let (ok, _, err) = train(&missing);
    assert!(!ok);
    assert!(
        err.contains("images/02.png") && err.contains("has no mask"),
        "{err}"
    );

    let sized = dir.path().join("sized");
    folder(&sized, 4);
    image::GrayImage::new(5, 8)
        .save(sized.join("masks/01.png"))
        .unwrap();
    let (ok, _, err) = train(&sized);
    assert!(!ok);
    assert!(err.contains("masks/01.png") && err.contains("5×8"), "{err}");

    let valued = dir.path().join("valued");
    folder(&valued, 4);
    std::fs::write(valued.join("classes.txt"), "bg\nfg\n").unwrap();
    image::GrayImage::from_pixel(8, 8, image::Luma([7]))
        .save(valued.join("masks/03.png"))
        .unwrap();
    let (ok, _, err) = train(&valued);
    assert!(!ok);
    assert!(
        err.contains("masks/03.png") && err.contains("mask value 7"),
        "{err}"
    );
}

#[test]
fn a_loss_that_does_not_fit_and_a_foreign_checkpoint_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    tiny(&config, 1, "");
    let scratch = dir.path().join("scratch");
    let (ok, _, err) = run(xtask()
        .args([
            "train",
            "segment",
            "--loss",
            "{ name = \"dice\", mode = \"binary\" }",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&scratch));
    assert!(!ok);
    assert!(err.contains("does not fit 4-class segmentation"), "{err}");

    let (ok, _, err) = run(xtask()
        .args([
            "train",
            "segment",
            "--loss",
            "{ name = \"cross_entropy\", ignore_index = 0 }",
        ])
        .arg("--config")
        .arg(&config)
        .arg("--out")
        .arg(&scratch));
    assert!(!ok);
    assert!(err.contains("ignore_index"), "{err}");

    // A classify run's checkpoint cannot be resumed by segment.
    let out = dir.path().join("out");
    let classify = dir.path().join("classify.toml");
    common::write_tiny_config(&classify, 1);
    run_ok(
        xtask()
            .args(["train", "classify", "--config"])
            .arg(&classify)
            .arg("--out")
            .arg(&out),
    );
    let (ok, _, err) = run(xtask()
        .args(["train", "segment", "--resume", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&out));
    assert!(!ok);
    assert!(err.contains("written by the `classify` task"), "{err}");
    assert!(
        !out.join("data/images").exists(),
        "nothing generated before the check"
    );
}
