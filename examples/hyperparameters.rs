//! Hyper-parameters the Rust way (the tutorial's argparse chapter).
//!
//! PyTorch scripts reach for `argparse` (and often a YAML file on top). Here one typed struct
//! is filled from built-in defaults, then a config file (`--config run.toml|json|yaml`), then
//! command-line flags — each layer overriding the one before — and checked once: an unknown
//! key names the closest valid one, an out-of-range value names its field.
//!
//! ```text
//! cargo run -p kindling --example hyperparameters -- --config examples/hyperparameters.toml --lr 0.1
//! ```

use clap::Parser;
use kindling::{Overrides, RunArgs, RunConfig, resolve_config, to_toml_string};

/// Prints the run configuration resolved from defaults < --config file < flags.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    run: RunArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut flags = Overrides::default();
    cli.run.overrides(&mut flags);
    let config: RunConfig =
        resolve_config(&RunConfig::default(), cli.run.config.as_deref(), &flags)?;

    // Typed access: no string lookups, no casts.
    let steps_per_epoch = 50_000usize.div_ceil(config.batch_size);
    println!(
        "# {} epochs x {steps_per_epoch} steps of {:?} at lr {}",
        config.epochs, config.optimizer.name, config.optimizer.lr
    );
    print!("{}", to_toml_string(&config)?);
    Ok(())
}
