//! The command line as a user meets it: help, configuration layering, and the errors that
//! bad input must produce.

mod common;

use common::{run, run_ok, xtask};

#[test]
fn help_lists_every_flag_with_its_default() {
    let (out, _) = run_ok(xtask().args(["train", "classify", "--help"]));
    for needle in [
        "--seed",
        "[default: 42]",
        "--lr",
        "[default: 0.02]",
        "--optimizer",
        "--val-fraction",
        "[default: 0.2]",
        "--image-size",
        "[default: 32]",
        "--device",
        "[default: flex]",
        "--dtype",
        "[default: f32]",
        "--config",
        "--print-config",
        "--resume",
        "--on-bad-image",
    ] {
        assert!(out.contains(needle), "`{needle}` missing from help:\n{out}");
    }
}

#[test]
fn a_task_is_required() {
    let (ok, _, err) = run(xtask().arg("train"));
    assert!(!ok);
    assert!(err.contains("classify") && err.contains("segment"), "{err}");
    // A mistyped task gets the closest one.
    let (ok, _, err) = run(xtask().args(["train", "segmnet"]));
    assert!(!ok);
    assert!(err.contains("'segment'"), "{err}");
}

#[test]
fn print_config_shows_defaults_then_file_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.yaml");
    std::fs::write(
        &file,
        "epochs: 7\nbatch_size: 16\noptimizer:\n  lr: 0.2\nclassify:\n  image_size: 24\n",
    )
    .unwrap();
    let (out, _) = run_ok(
        xtask()
            .args(["train", "classify", "--print-config", "--epochs", "3"])
            .arg("--config")
            .arg(&file),
    );
    let cfg: toml::Table = toml::from_str(&out).unwrap();
    assert_eq!(cfg["epochs"].as_integer(), Some(3), "flag beats file");
    assert_eq!(
        cfg["batch_size"].as_integer(),
        Some(16),
        "file beats default"
    );
    assert_eq!(cfg["optimizer"]["lr"].as_float(), Some(0.2));
    assert_eq!(cfg["classify"]["image_size"].as_integer(), Some(24));
    assert_eq!(cfg["seed"].as_integer(), Some(42), "default kept");
    assert_eq!(cfg["optimizer"]["name"].as_str(), Some("sgd"));
}

#[test]
fn unknown_config_key_names_the_key_and_the_closest_valid_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.toml");
    std::fs::write(&file, "epochs = 2\n[optimizer]\nmomentun = 0.8\n").unwrap();
    let (ok, _, err) = run(xtask()
        .args(["train", "classify", "--print-config", "--config"])
        .arg(&file));
    assert!(!ok);
    assert!(err.contains("unknown key `optimizer.momentun`"), "{err}");
    assert!(err.contains("did you mean `optimizer.momentum`"), "{err}");
}

#[test]
fn out_of_range_values_name_the_field() {
    let cases: [(&[&str], &str); 4] = [
        (&["--lr", "0"], "optimizer.lr"),
        (&["--batch-size", "0"], "batch_size"),
        (&["--epochs", "0"], "epochs"),
        (&["--val-fraction", "1.0"], "classify.val_fraction"),
    ];
    for (flags, field) in cases {
        let (ok, _, err) = run(xtask()
            .args(["train", "classify", "--print-config"])
            .args(flags));
        assert!(!ok, "{flags:?} accepted");
        assert!(
            err.contains(&format!("`{field}`")) && err.contains("out of range"),
            "{err}"
        );
    }
}

#[test]
fn unknown_device_and_dtype_strings_are_rejected() {
    let (ok, _, err) = run(xtask().args(["train", "classify", "--device", "tpu:0"]));
    assert!(!ok);
    assert!(err.contains("tpu:0") && err.contains("cuda[:N]"), "{err}");
    let (ok, _, err) = run(xtask().args(["train", "classify", "--dtype", "fp8"]));
    assert!(!ok);
    assert!(err.contains("fp8") && err.contains("bf16"), "{err}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn a_device_not_compiled_in_names_its_cargo_feature() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(xtask()
        .args(["train", "classify", "--device", "cuda:1", "--out"])
        .arg(dir.path()));
    assert!(!ok);
    assert!(
        err.contains("`cuda:1`") && err.contains("--features cuda"),
        "{err}"
    );
}

#[test]
fn burn_device_variable_selects_the_device() {
    let (out, _) = run_ok(
        xtask()
            .args(["train", "classify", "--print-config"])
            .env("BURN_DEVICE", "cuda:2"),
    );
    assert!(out.contains("device = \"cuda:2\""), "{out}");
    let (out, _) = run_ok(
        xtask()
            .args(["train", "classify", "--print-config", "--device", "flex"])
            .env("BURN_DEVICE", "cuda:2"),
    );
    assert!(out.contains("device = \"flex\""), "the flag wins: {out}");
}

#[test]
fn a_corrupt_image_is_named_or_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for class in ["red", "blue"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..4u8 {
            let colour = if class == "red" {
                [200, i, 0]
            } else {
                [0, i, 200]
            };
            image::RgbImage::from_pixel(12, 12, image::Rgb(colour))
                .save(data.join(class).join(format!("{i}.png")))
                .unwrap();
        }
    }
    let bad = data.join("blue").join("truncated.jpg");
    std::fs::write(&bad, [0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]).unwrap();
    let base = |out: &str| {
        let mut cmd = xtask();
        cmd.args(["train", "classify", "--epochs", "1", "--batch-size", "4"])
            .args(["--image-size", "8", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join(out));
        cmd
    };
    let (ok, _, err) = run(&mut base("strict"));
    assert!(!ok);
    assert!(err.contains(&bad.display().to_string()), "{err}");
    let (_, err) = run_ok(base("lenient").args(["--on-bad-image", "skip"]));
    assert!(err.contains("undecodable images skipped: 1"), "{err}");
}

#[test]
fn a_diverging_loss_stops_the_run_naming_epoch_and_step() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    common::write_tiny_config(&config, 2);
    let (ok, _, err) = run(xtask()
        .args(["train", "classify", "--lr", "1e30", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(dir.path().join("out")));
    assert!(!ok, "a run with lr 1e30 finished: {err}");
    assert!(
        err.contains("training diverged") && err.contains("step"),
        "{err}"
    );
}

#[test]
fn lr_writes_the_configured_schedule_as_torch_computes_it() {
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../tests/fixtures/schedulers/torch_sequences.json",
            std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into())
        ))
        .unwrap(),
    )
    .unwrap();
    let case = fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sequential_warmup_cosine")
        .unwrap();
    let want: Vec<f64> = case["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("run.toml");
    std::fs::write(
        &config,
        format!(
            "epochs = {}\n[optimizer]\nlr = {}\n[scheduler]\nname = \"sequential_lr\"\n\
             milestones = [5]\n[[scheduler.schedulers]]\nname = \"linear_lr\"\n\
             start_factor = 0.1\nend_factor = 1.0\ntotal_iters = 5\n\
             [[scheduler.schedulers]]\nname = \"cosine_annealing_lr\"\nt_max = 20\n",
            want.len(),
            case["base_lr"]
        ),
    )
    .unwrap();
    let csv = dir.path().join("lr.csv");
    let png = dir.path().join("lr.png");
    run_ok(
        xtask()
            .args(["lr", "--config"])
            .arg(&config)
            .arg("--csv")
            .arg(&csv)
            .arg("--plot")
            .arg(&png),
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("step,lr"));
    let got: Vec<f64> = lines
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(got.len(), want.len());
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * w.abs(),
            "row {k}: {g} vs torch {w}"
        );
    }
    assert!(image::open(&png).is_ok());

    // A per-step schedule needs the number of updates.
    std::fs::write(
        &config,
        "[scheduler]\nname = \"step_lr\"\nstep_size = 3\ninterval = \"step\"\n",
    )
    .unwrap();
    let (ok, _, err) = run(xtask()
        .args(["lr", "--config"])
        .arg(&config)
        .arg("--csv")
        .arg(&csv));
    assert!(!ok);
    assert!(err.contains("--steps"), "{err}");
}

#[test]
fn bad_numbers_name_their_field_and_errors_print_once() {
    let (ok, _, err) = run(xtask().args(["train", "classify", "--print-config", "--lr", "-1"]));
    assert!(!ok);
    assert!(
        err.contains("`optimizer.lr`") && err.contains("must be > 0"),
        "{err}"
    );
    let (ok, _, err) = run(xtask().args(["train", "classify", "--lr", "nan"]));
    assert!(!ok);
    assert!(err.contains("not a finite number"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.json");
    std::fs::write(&file, r#"{"epochs": "ten"}"#).unwrap();
    let (ok, _, err) = run(xtask()
        .args(["train", "classify", "--print-config", "--config"])
        .arg(&file));
    assert!(!ok);
    assert!(err.contains("`epochs`"), "{err}");

    let (ok, _, err) = run(xtask()
        .args(["train", "classify", "--config"])
        .arg(dir.path().join("absent.toml")));
    assert!(!ok);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

#[test]
fn a_bad_augment_file_fails_before_any_data_is_generated() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let (ok, _, err) = run(xtask()
        .args(["train", "segment", "--augment"])
        .arg(dir.path().join("missing.json"))
        .arg("--out")
        .arg(&out));
    assert!(!ok);
    assert!(err.contains("missing.json"), "{err}");
    assert!(
        !out.join("data").exists(),
        "the synthetic set must not be generated first"
    );
}
