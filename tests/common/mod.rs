//! Helpers shared by the integration tests: running the `xtask` binary.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Command, Output};

/// A command for the xtask binary built for this test run, with `BURN_DEVICE` cleared so the
/// tests run on the device they name.
pub fn xtask() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.env_remove("BURN_DEVICE");
    cmd
}

/// Runs `cmd`, returning (success, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("xtask binary starts");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Runs `cmd` and panics with its stderr unless it succeeds.
pub fn run_ok(cmd: &mut Command) -> (String, String) {
    let (ok, out, err) = run(cmd);
    assert!(
        ok,
        "command failed: {cmd:?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    (out, err)
}

/// A tiny classify configuration: seconds per run on Flex.
pub fn write_tiny_config(path: &Path, epochs: usize) {
    write_tiny_config_with(path, epochs, "");
}

/// [`write_tiny_config`] plus extra TOML tables.
pub fn write_tiny_config_with(path: &Path, epochs: usize, extra: &str) {
    std::fs::write(
        path,
        format!(
            "epochs = {epochs}\nbatch_size = 8\n\n[classify]\nimage_size = 16\n\
             synthetic_per_class = 12\nwidths = [8, 16]\n{extra}"
        ),
    )
    .unwrap();
}

/// The metric columns (epoch … lr) of a metrics.csv, without the timing columns.
pub fn metric_columns(csv_path: &Path) -> Vec<String> {
    std::fs::read_to_string(csv_path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').take(6).collect::<Vec<_>>().join(","))
        .collect()
}
