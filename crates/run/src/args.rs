//! Command-line flags for the common run settings (the argparse chapter, with clap).
//!
//! Every flag is optional on the command line: a flag that is not given leaves the value from
//! the config file or the built-in default in place (see [`crate::resolve_config`]).
//! `--help` still shows each flag's built-in default, filled in by [`document_defaults`] from
//! the same default configuration the run uses, so help text and behaviour cannot drift.

use std::path::PathBuf;

use clap::Command;
use serde::Serialize;
use serde_json::Value;

use crate::config::{OptimizerKind, Overrides};
use crate::device::{DeviceSpec, Precision};

/// Flags shared by every training task.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RunArgs {
    /// Configuration file (.toml, .json, .yaml) layered over the defaults; flags override it
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the resolved configuration as TOML and exit
    #[arg(long)]
    pub print_config: bool,
    /// Seed for the device, data shuffling and every Kindling RNG
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of epochs
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per optimizer step
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Data-loading threads (results do not depend on it)
    #[arg(long)]
    pub workers: Option<usize>,
    /// Device: flex, wgpu, vulkan, metal, cuda[:N], tch, tch-cuda[:N]
    #[arg(long, env = crate::device::DEVICE_ENV)]
    pub device: Option<DeviceSpec>,
    /// Float dtype: f32, f16, bf16
    #[arg(long)]
    pub dtype: Option<Precision>,
    /// Mixed precision: off, or f16/bf16 autocast with f32 master weights (and loss scaling
    /// for f16)
    #[arg(long, value_name = "off|f16|bf16")]
    pub amp: Option<crate::Amp>,
    /// Output directory for config, metrics, plots and checkpoints
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Resume from the last checkpoint in the output directory
    #[arg(long)]
    pub resume: bool,
    /// Drop each epoch's last, incomplete training batch
    #[arg(long)]
    pub drop_last: bool,
    /// Optimizer
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerKind>,
    /// Learning rate
    #[arg(long, allow_negative_numbers = true, value_parser = parse_number)]
    pub lr: Option<f64>,
    /// SGD momentum
    #[arg(long, allow_negative_numbers = true, value_parser = parse_number)]
    pub momentum: Option<f64>,
    /// SGD dampening
    #[arg(long, allow_negative_numbers = true, value_parser = parse_number)]
    pub dampening: Option<f64>,
    /// Use Nesterov momentum (SGD)
    #[arg(long)]
    pub nesterov: bool,
    /// Weight decay
    #[arg(long, allow_negative_numbers = true, value_parser = parse_number)]
    pub weight_decay: Option<f64>,
    /// Adam/AdamW betas, as two comma-separated numbers
    #[arg(long, value_parser = parse_numbers::<2>, value_name = "B1,B2")]
    pub betas: Option<[f64; 2]>,
    /// Adam/AdamW epsilon
    #[arg(long, allow_negative_numbers = true, value_parser = parse_number)]
    pub eps: Option<f64>,
    /// Loss: a name (`focal`) or an inline TOML table (`{ name = "focal", mode = "multiclass", gamma = 1.5 }`)
    #[arg(long, value_parser = parse_loss, value_name = "NAME|TABLE")]
    pub loss: Option<Value>,
}

/// Which configuration key each [`RunArgs`] flag sets (clap argument id, dotted key).
pub const RUN_FLAG_KEYS: &[(&str, &str)] = &[
    ("seed", "seed"),
    ("epochs", "epochs"),
    ("batch_size", "batch_size"),
    ("workers", "workers"),
    ("device", "device"),
    ("dtype", "dtype"),
    ("amp", "amp"),
    ("out", "out"),
    ("resume", "resume"),
    ("drop_last", "drop_last"),
    ("optimizer", "optimizer.name"),
    ("lr", "optimizer.lr"),
    ("momentum", "optimizer.momentum"),
    ("dampening", "optimizer.dampening"),
    ("nesterov", "optimizer.nesterov"),
    ("weight_decay", "optimizer.weight_decay"),
    ("betas", "optimizer.betas"),
    ("eps", "optimizer.eps"),
    ("loss", "loss"),
];

/// The configuration key that the flag with clap id `id` sets, from a flag table.
///
/// # Panics
/// If `id` is not in `table`: a programming error caught by the flag-table tests.
pub fn flag_key(table: &[(&'static str, &'static str)], id: &str) -> &'static str {
    table
        .iter()
        .find(|(flag, _)| *flag == id)
        .map(|(_, key)| *key)
        .unwrap_or_else(|| panic!("flag `{id}` missing from its flag table"))
}

impl RunArgs {
    /// The flags that were given, as configuration overrides.
    pub fn overrides(&self, out: &mut Overrides) {
        let k = |id| flag_key(RUN_FLAG_KEYS, id);
        out.set(k("seed"), self.seed)
            .set(k("epochs"), self.epochs)
            .set(k("batch_size"), self.batch_size)
            .set(k("workers"), self.workers)
            .set(k("device"), self.device)
            .set(k("dtype"), self.dtype)
            .set(k("amp"), self.amp)
            .set(k("out"), self.out.clone())
            .switch(k("resume"), self.resume)
            .switch(k("drop_last"), self.drop_last)
            .set(k("optimizer"), self.optimizer)
            .set(k("lr"), self.lr)
            .set(k("momentum"), self.momentum)
            .set(k("dampening"), self.dampening)
            .switch(k("nesterov"), self.nesterov)
            .set(k("weight_decay"), self.weight_decay)
            .set(k("betas"), self.betas)
            .set(k("eps"), self.eps)
            .set(k("loss"), self.loss.clone());
    }
}

/// `focal` → `{"name": "focal"}`; `{ name = "focal", gamma = 1.5 }` → that table. The loss's
/// own options are checked when the configuration is resolved.
fn parse_loss(s: &str) -> Result<Value, String> {
    let s = s.trim();
    if s.starts_with('{') {
        let table: toml::Table = toml::from_str(&format!("loss = {s}"))
            .map_err(|e| format!("not a TOML inline table: {e}"))?;
        serde_json::to_value(&table["loss"]).map_err(|e| e.to_string())
    } else if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(serde_json::json!({ "name": s }))
    } else {
        Err(format!(
            "expected a loss name or an inline table `{{ name = \"...\", ... }}`, got `{s}`"
        ))
    }
}

/// A finite number. Negative values parse (so that `--lr -1` is refused by the range check,
/// naming the field, rather than taken for an unknown flag); NaN and infinities are refused
/// here, since a configuration cannot hold them.
pub fn parse_number(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("`{s}` is not a finite number")),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

/// Parses `N` comma-separated finite numbers (`0.9,0.999`, `0.5,0.5,0.5`), for flags whose
/// value is a fixed-size list.
pub fn parse_numbers<const N: usize>(s: &str) -> Result<[f64; N], String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    if parts.len() != N {
        return Err(format!("expected {N} comma-separated numbers, got `{s}`"));
    }
    let mut out = [0.0; N];
    for (slot, part) in out.iter_mut().zip(parts) {
        *slot = parse_number(part).map_err(|e| format!("`{s}`: {e}"))?;
    }
    Ok(out)
}

/// Appends `[default: …]` to the help of every flag in `table`, read from `defaults`.
///
/// Flags whose default is unset (`None`) are left as they are.
pub fn document_defaults<C: Serialize>(
    cmd: Command,
    defaults: &C,
    table: &[(&'static str, &'static str)],
) -> Command {
    let tree = serde_json::to_value(defaults).unwrap_or(Value::Null);
    table.iter().fold(cmd, |cmd, (id, key)| {
        let Some(value) = lookup(&tree, key) else {
            return cmd;
        };
        let shown = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
            Value::Null => return cmd,
            Value::Object(table) if table.contains_key("name") => {
                table["name"].as_str().unwrap_or_default().to_string()
            }
            other => other.to_string(),
        };
        cmd.mut_arg(*id, |arg| {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            arg.help(format!("{help} [default: {shown}]"))
        })
    })
}

/// The value at a dotted `key` in a JSON tree.
pub fn lookup<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(tree, |node, part| node.get(part))
}

impl clap::ValueEnum for OptimizerKind {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            OptimizerKind::Sgd,
            OptimizerKind::Adam,
            OptimizerKind::Adamw,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            OptimizerKind::Sgd => "sgd",
            OptimizerKind::Adam => "adam",
            OptimizerKind::Adamw => "adamw",
        }))
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;
    use crate::config::{RunConfig, resolve_config};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn every_flag_maps_to_an_existing_key() {
        let tree = serde_json::to_value(RunConfig::default()).unwrap();
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "config" | "print_config" | "help") {
                continue;
            }
            let key = flag_key(RUN_FLAG_KEYS, id);
            assert!(lookup(&tree, key).is_some(), "{id} -> {key}");
        }
    }

    #[test]
    fn help_lists_every_default() {
        let cmd = document_defaults(Cli::command(), &RunConfig::default(), RUN_FLAG_KEYS);
        let help = cmd.clone().render_help().to_string();
        for needle in [
            "[default: 42]",
            "[default: sgd]",
            "[default: 0.05]",
            "[default: flex]",
            "[default: f32]",
            "[default: 0.9,0.999]",
        ] {
            assert!(help.contains(needle), "missing {needle} in\n{help}");
        }
    }

    #[test]
    fn parsed_flags_override_defaults() {
        let cli = Cli::try_parse_from([
            "x",
            "--lr",
            "0.3",
            "--optimizer",
            "adamw",
            "--betas",
            "0.8,0.99",
            "--device",
            "cuda:2",
            "--dtype",
            "bf16",
            "--nesterov",
        ])
        .unwrap();
        let mut o = Overrides::default();
        cli.run.overrides(&mut o);
        let cfg = resolve_config(&RunConfig::default(), None, &o).unwrap();
        assert_eq!(cfg.optimizer.lr, 0.3);
        assert_eq!(cfg.optimizer.name, OptimizerKind::Adamw);
        assert_eq!(cfg.optimizer.betas, [0.8, 0.99]);
        assert_eq!(cfg.device, DeviceSpec::Cuda(2));
        assert_eq!(cfg.dtype, Precision::Bf16);
        assert!(cfg.optimizer.nesterov);
    }

    #[test]
    fn a_negative_rate_reaches_the_range_check_naming_its_field() {
        let cli = Cli::try_parse_from(["x", "--lr", "-1"]).unwrap();
        let mut o = Overrides::default();
        cli.run.overrides(&mut o);
        let err = resolve_config(&RunConfig::default(), None, &o).unwrap_err();
        assert!(err.to_string().contains("optimizer.lr"), "{err}");
    }

    #[test]
    fn bad_flag_values_are_rejected_by_the_parser() {
        for args in [
            ["x", "--device", "tpu"],
            ["x", "--dtype", "f8"],
            ["x", "--lr", "fast"],
            ["x", "--lr", "nan"],
            ["x", "--amp", "fp8"],
        ] {
            let err = Cli::try_parse_from(args).err().unwrap().to_string();
            assert!(err.contains(args[2]), "{err}");
        }
    }

    #[test]
    fn amp_needs_f32_master_weights_and_sane_scaler_factors() {
        let resolve = |args: &[&str], file: Option<&str>| {
            let cli = Cli::try_parse_from(args).unwrap();
            let mut o = Overrides::default();
            cli.run.overrides(&mut o);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("run.toml");
            if let Some(text) = file {
                std::fs::write(&path, text).unwrap();
            }
            resolve_config(&RunConfig::default(), file.map(|_| path.as_path()), &o)
        };
        let cfg = resolve(&["x", "--amp", "bf16"], None).unwrap();
        assert_eq!(cfg.amp, crate::Amp::Bf16);
        assert!(!cfg.grad_scaler.enabled_for(cfg.amp));
        let cfg = resolve(&["x", "--amp", "f16"], None).unwrap();
        assert!(cfg.grad_scaler.enabled_for(cfg.amp));
        let err = resolve(&["x", "--amp", "f16", "--dtype", "f16"], None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("amp") && err.contains("dtype = \"f32\""),
            "{err}"
        );
        for (text, field) in [
            (
                "[grad_scaler]\ngrowth_factor = 1.0\n",
                "grad_scaler.growth_factor",
            ),
            (
                "[grad_scaler]\nbackoff_factor = 1.0\n",
                "grad_scaler.backoff_factor",
            ),
            (
                "[grad_scaler]\ngrowth_interval = 0\n",
                "grad_scaler.growth_interval",
            ),
        ] {
            let err = resolve(&["x", "--amp", "f16"], Some(text))
                .unwrap_err()
                .to_string();
            assert!(err.contains(field), "{field}: {err}");
        }
        let err = resolve(&["x"], Some("amp = \"f61\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("f16"), "{err}");
    }
}
