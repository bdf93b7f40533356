//! Training end to end through the `xtask` binary on Flex: the dtype smoke tests,
//! determinism across worker counts, and resume after a kill.
//!
//! Each run is its own process: a process's Flex device has one float dtype and one RNG.

mod common;

use std::time::{Duration, Instant};

use common::{metric_columns, run_ok, write_tiny_config, xtask};

#[test]
fn smoke_trains_in_f32_f16_bf16_and_amp_from_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref");
    let (out, _) = run_ok(
        xtask()
            .args([
                "smoke",
                "--device",
                "flex",
                "--dtype",
                "f32",
                "--write-reference",
            ])
            .arg(&reference),
    );
    let f32_report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let f32_first = f32_report["losses"][0].as_f64().unwrap();
    // Pure f16 and bf16, then autocast (f32 master weights) to each.
    for (dtype, amp) in [
        ("f16", "off"),
        ("bf16", "off"),
        ("f32", "f16"),
        ("f32", "bf16"),
    ] {
        let (out, _) = run_ok(
            xtask()
                .args(["smoke", "--device", "flex", "--dtype", dtype, "--amp", amp])
                .arg("--reference")
                .arg(&reference),
        );
        let dtype = format!("{dtype} amp {amp}");
        let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        let losses: Vec<f64> = report["losses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        // The binary already checked these; assert them here too so the test states them.
        assert!(losses.last() < losses.first(), "{dtype}: {losses:?}");
        assert_eq!(report["reference_first_loss"].as_f64(), Some(f32_first));
        let rel = (losses[0] - f32_first).abs() / f32_first;
        assert!(
            rel < 3e-2,
            "{dtype}: first loss {} vs f32 {f32_first}",
            losses[0]
        );
        assert_ne!(
            losses[0], f32_first,
            "{dtype} must not silently compute in f32"
        );
    }
}

#[test]
fn same_seed_gives_identical_metrics_whatever_the_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    write_tiny_config(&config, 2);
    let mut csvs = Vec::new();
    for workers in ["1", "2"] {
        let out = dir.path().join(format!("w{workers}"));
        run_ok(
            xtask()
                .args(["train", "classify", "--workers", workers, "--config"])
                .arg(&config)
                .arg("--out")
                .arg(&out),
        );
        csvs.push(metric_columns(&out.join("metrics.csv")));
        assert!(out.join("curves.png").is_file());
        assert!(out.join("checkpoints/last.ckpt").is_file());
    }
    assert_eq!(csvs[0].len(), 3, "header + 2 epochs");
    assert_eq!(csvs[0], csvs[1]);
}

/// The metrics without the timing columns (`seconds`, `images_per_sec`).
fn untimed(csv: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            fields[..fields.len() - 2].join(",")
        })
        .collect()
}

/// Trains 3 epochs straight and again killed (SIGKILL) after epoch 1 then resumed; the
/// metrics must be identical. `extra` (tables) is appended to the tiny configuration and
/// `flags` given to both runs.
fn killed_and_resumed_runs_agree(extra: &str, flags: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    // A per-step schedule: a resume that lost its position would show in the lr column.
    common::write_tiny_config_with(
        &config,
        3,
        &format!(
            "\n[scheduler]\nname = \"exponential_lr\"\ngamma = 0.97\ninterval = \"step\"\n{extra}"
        ),
    );

    let straight = dir.path().join("straight");
    run_ok(
        xtask()
            .args(["train", "classify", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&straight)
            .args(flags),
    );

    let killed = dir.path().join("killed");
    let mut child = xtask()
        .args(["train", "classify", "--config"])
        .arg(&config)
        .arg("--out")
        .arg(&killed)
        .args(["--hang-after-epoch", "1"])
        .args(flags)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let csv = killed.join("metrics.csv");
    let deadline = Instant::now() + Duration::from_secs(600);
    while !csv.is_file() {
        assert!(Instant::now() < deadline, "epoch 1 never finished");
        assert!(child.try_wait().unwrap().is_none(), "run exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup runs
    child.wait().unwrap();
    assert_eq!(
        metric_columns(&csv).len(),
        2,
        "killed after exactly one epoch"
    );

    // Resume from the run's own saved configuration, as a user would.
    let (_, err) = run_ok(
        xtask()
            .args(["train", "classify", "--resume", "--config"])
            .arg(killed.join("config.toml")),
    );
    assert!(err.contains("resuming from"), "{err}");
    let metrics = untimed(&straight.join("metrics.csv"));
    assert_eq!(untimed(&csv), metrics);
    metrics
}

#[test]
fn a_run_killed_after_epoch_one_resumes_to_the_same_metrics() {
    killed_and_resumed_runs_agree("", &[]);
}

/// The same with f16 autocast and a loss scale that overflows and grows within the run: the
/// scaler's state (scale, growth tracker, skipped steps) resumes exactly too.
#[test]
fn an_amp_run_resumes_with_its_loss_scale() {
    let metrics = killed_and_resumed_runs_agree(
        "[grad_scaler]\ninit_scale = 16777216.0\ngrowth_interval = 2\n",
        &["--amp", "f16"],
    );
    assert!(
        metrics[0].contains("amp_scale,skipped_steps"),
        "{metrics:?}"
    );
    let skipped = |row: &str| -> f64 { row.split(',').nth(6).unwrap().parse().unwrap() };
    let scale = |row: &str| -> f64 { row.split(',').nth(5).unwrap().parse().unwrap() };
    assert!(
        skipped(&metrics[1]) > 0.0,
        "the scale never overflowed: {metrics:?}"
    );
    assert!(
        skipped(&metrics[3]) > skipped(&metrics[1]) && scale(&metrics[1]) < 16777216.0,
        "{metrics:?}"
    );
    // A skipped step does not advance the per-step schedule: by the end of epoch k it has
    // advanced k · steps − skipped times, and the lr column (the last step's lr) shows all of
    // them or all but the last step's. Epoch 1 skipped every step (lr 0.02): `steps` is its
    // skipped count.
    let lr = |row: &str| -> f64 { row.split(',').nth(7).unwrap().parse().unwrap() };
    assert_eq!(lr(&metrics[1]), 0.02, "{metrics:?}");
    let steps = skipped(&metrics[1]);
    for (k, row) in metrics[1..].iter().enumerate() {
        let advanced = (k + 1) as f64 * steps - skipped(row);
        let fits = [advanced, advanced - 1.0]
            .iter()
            .any(|&n| (lr(row) - 0.02 * 0.97f64.powf(n)).abs() < 1e-12);
        assert!(fits, "epoch {}: {advanced} advances; {metrics:?}", k + 1);
    }
}

#[test]
fn resume_refuses_a_missing_or_foreign_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    write_tiny_config(&config, 1);
    let out = dir.path().join("out");
    let train = |extra: &[&str]| {
        let mut cmd = xtask();
        cmd.args(["train", "classify", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&out)
            .args(extra);
        cmd
    };
    let (ok, _, err) = common::run(&mut train(&["--resume"]));
    assert!(!ok);
    assert!(err.contains("no usable checkpoint"), "{err}");

    run_ok(&mut train(&[]));
    let (ok, _, err) = common::run(&mut train(&["--resume", "--seed", "5"]));
    assert!(!ok);
    assert!(err.contains("different configuration"), "{err}");
    // More epochs is allowed: training continues where it stopped.
    let (_, err) = run_ok(&mut train(&["--resume", "--epochs", "2"]));
    assert!(
        err.contains("resuming from") && err.contains("epoch 2/2"),
        "{err}"
    );
    assert_eq!(metric_columns(&out.join("metrics.csv")).len(), 3);
}

#[test]
fn plateau_schedule_follows_the_validation_loss_and_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tiny.toml");
    common::write_tiny_config_with(
        &config,
        3,
        "\n[scheduler]\nname = \"reduce_lr_on_plateau\"\npatience = 0\nfactor = 0.5\n\
         threshold = 10.0\n",
    );
    let out = dir.path().join("out");
    run_ok(
        xtask()
            .args(["train", "classify", "--config"])
            .arg(&config)
            .arg("--out")
            .arg(&out),
    );
    // threshold = 10 (relative, mode min): a value counts as better only below
    // best * (1 - 10), which never happens (PyTorch: `a < inf * -9` is false too), so with
    // patience 0 every epoch is bad and the rate halves after each one.
    let lrs: Vec<f64> = metric_columns(&out.join("metrics.csv"))
        .iter()
        .skip(1)
        .map(|row| row.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let base = 0.02;
    assert_eq!(lrs, [base, base * 0.5, base * 0.25]);
}
