//! `cargo xtask import-onnx`: an ONNX file to a Burn module (source, weights, README).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use kindling_onnx::{ImportOptions, import};

/// `import-onnx` flags.
#[derive(Debug, Args)]
pub struct ImportOnnxArgs {
    /// The ONNX model
    pub model: PathBuf,
    /// Output directory (gets NAME.rs, NAME.bpk and README.md)
    #[arg(long)]
    pub out: PathBuf,
    /// Module file name (default: the model's file stem as an identifier)
    #[arg(long)]
    pub name: Option<String>,
    /// Keep a final Softmax (default: removed, so forward returns logits)
    #[arg(long)]
    pub keep_softmax: bool,
}

/// Runs the import and prints what was written.
pub fn run(args: &ImportOnnxArgs) -> Result<()> {
    let options = ImportOptions {
        name: args.name.clone(),
        logits: !args.keep_softmax,
    };
    let done = import(&args.model, &args.out, &options)?;
    for input in &done.signature.inputs {
        eprintln!("input  {input}");
    }
    for output in &done.signature.outputs {
        eprintln!("output {output}");
    }
    if let Some(node) = &done.removed_softmax {
        eprintln!("removed the final `{node}`: forward returns logits");
    }
    for path in [&done.source, &done.weights, &done.readme] {
        eprintln!("wrote  {}", path.display());
    }
    Ok(())
}
