//! `cargo xtask train finetune --onnx DIR`: fine-tuning a module that `cargo xtask
//! import-onnx` generated.
//!
//! The module is Rust source, so it has to be compiled into a binary before it can train:
//! [`delegate`] builds the workspace's runner crate (`xtask/onnx-runner`) with DIR's module
//! compiled in and runs it with the same flags. The runner is a workspace member, so its
//! build reuses the workspace's compiled Burn and Kindling and only compiles the module and
//! links (about a minute on 2 cores the first time per module); its `main` is
//! [`runner_main`], which trains exactly as `train finetune --model` does, through
//! [`kindling_train::tasks::finetune::Imported`].

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor};
use clap::Parser;
use kindling_train::tasks::finetune::{self, FinetuneArgs, FinetuneRun, Imported, ModelSource};

use crate::train_cli::{TestHooks, describe, print_finetune};

/// The environment variable through which the runner's build script receives the module.
pub const MODULE_ENV: &str = "KINDLING_ONNX_MODULE";

/// The runner crate's package name.
const RUNNER: &str = "xtask-onnx-runner";

/// An import-onnx output directory: `<name>.rs` (defining `Model`) and `<name>.bpk`.
#[derive(Debug, Clone)]
pub struct ImportedDir {
    /// The module's name (its file stem).
    pub name: String,
    /// The generated source.
    pub source: PathBuf,
    /// The importer's weights.
    pub weights: PathBuf,
    /// Its BatchNorms are Kindling's (kept f32 under `--amp`).
    pub kindling_batchnorm: bool,
}

impl ImportedDir {
    /// Finds the generated module in `dir` and checks that it is an image classifier: one
    /// `[N, C, H, W]` input, one `[N, classes]` output.
    pub fn open(dir: &Path) -> Result<Self> {
        let entries = std::fs::read_dir(dir).with_context(|| {
            format!(
                "--onnx {}: cannot read the directory (write one with `cargo xtask import-onnx \
                 MODEL.onnx --out DIR`)",
                dir.display()
            )
        })?;
        let mut modules = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if text.contains("pub struct Model {") {
                    modules.push((path, text));
                }
            }
        }
        let (source, text) = match modules.len() {
            1 => modules.remove(0),
            0 => bail!(
                "--onnx {}: no generated module (a .rs file defining `pub struct Model`) in it; \
                 write one with `cargo xtask import-onnx MODEL.onnx --out {}`",
                dir.display(),
                dir.display()
            ),
            _ => bail!(
                "--onnx {}: {} generated modules ({}); give a directory with one",
                dir.display(),
                modules.len(),
                modules
                    .iter()
                    .map(|(p, _)| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let name = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let weights = source.with_extension("bpk");
        if !weights.is_file() {
            bail!(
                "--onnx {}: {} has no weights file {} beside it",
                dir.display(),
                source.display(),
                weights.display()
            );
        }
        let signature = forward_signature(&text).unwrap_or_default();
        let (args, ret) = signature.split_once("->").unwrap_or((&signature, ""));
        if args.matches("Tensor<").count() != 1 || !args.contains("Tensor<4>") || ret != "Tensor<2>"
        {
            bail!(
                "--onnx {}: `{name}` is not an image classifier: train finetune needs one \
                 [N, C, H, W] input and one [N, classes] output, and its forward is `{}`",
                dir.display(),
                if signature.is_empty() {
                    "missing"
                } else {
                    &signature
                }
            );
        }
        Ok(Self {
            name,
            source,
            weights,
            kindling_batchnorm: kindling_onnx::has_kindling_batchnorm(&text),
        })
    }
}

/// `Model::forward`'s signature in the generated source, without whitespace or a trailing
/// comma: `(&self,x:Tensor<4>)->Tensor<2>`.
fn forward_signature(text: &str) -> Option<String> {
    let imp = text.rfind("impl Model {")?;
    let rest = &text[imp..];
    let start = rest.find("pub fn forward")? + "pub fn forward".len();
    let end = rest[start..].find('{')? + start;
    let compact: String = rest[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some(compact.replace(",)", ")"))
}

/// `finetune.onnx` and the import in it.
fn imported_dir(cfg: &FinetuneRun) -> Result<(&Path, ImportedDir)> {
    let dir = cfg
        .finetune
        .onnx
        .as_deref()
        .ok_or_else(|| anyhow!("fine-tuning an import needs --onnx DIR"))?;
    Ok((dir, ImportedDir::open(dir)?))
}

/// Runs `train finetune` on the import in `cfg.finetune.onnx`: builds the runner with that
/// module and runs it with this process's own `train finetune` flags. Returns its status.
pub fn delegate(cfg: &FinetuneRun) -> Result<ExitStatus> {
    let (_, imported) = imported_dir(cfg)?;
    let source = std::path::absolute(&imported.source)?;
    // `cargo run` (and `cargo test`) set the manifest directory at run time too; the
    // compile-time one is the fallback for a binary started by hand.
    let xtask_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|d| d.join("onnx-runner").is_dir())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let workspace = xtask_dir
        .parent()
        .map(|p| p.join("Cargo.toml"))
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!(
                "--onnx compiles the module with the Kindling workspace this xtask was built \
                 from ({}), which is gone",
                xtask_dir.display()
            )
        })?;
    let args: Vec<_> = std::env::args_os()
        .skip_while(|a| a != "finetune")
        .skip(1)
        .collect();
    eprintln!(
        "compiling `{}` ({}) into the fine-tuning runner ({RUNNER}; the first time per module \
         takes about a minute)",
        imported.name,
        imported.source.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args(["run", "--quiet", "--package", RUNNER, "--manifest-path"])
        .arg(&workspace)
        .arg("--")
        .args(args)
        .env(MODULE_ENV, source)
        .status()
        .context("cannot run cargo to build the fine-tuning runner")
}

/// `train finetune`'s flags, as the runner reads them.
#[derive(Parser)]
#[command(name = "cargo xtask train finetune")]
struct RunnerCli {
    #[command(flatten)]
    args: FinetuneArgs,
    #[command(flatten)]
    test: TestHooks,
}

/// The runner's `main`: `train finetune` on the module compiled in from `module` (the
/// source path the build script saw), built by `new` and run by `forward`.
pub fn runner_main<M: Module + 'static>(
    module: &str,
    new: fn(&Device) -> M,
    forward: fn(&M, Tensor<4>) -> Tensor<2>,
) -> ExitCode {
    let cli = RunnerCli::parse();
    match run_imported(&cli, Path::new(module), new, forward) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

fn run_imported<M: Module + 'static>(
    cli: &RunnerCli,
    module: &Path,
    new: fn(&Device) -> M,
    forward: fn(&M, Tensor<4>) -> Tensor<2>,
) -> Result<()> {
    let cfg = cli.args.resolve()?;
    let (dir, imported) = imported_dir(&cfg)?;
    if std::path::absolute(&imported.source)? != module {
        bail!(
            "this runner was compiled with {}, not {}'s module: run it through `cargo xtask \
             train finetune --onnx {}`",
            module.display(),
            dir.display(),
            dir.display()
        );
    }
    let source = Imported::new(&imported.name, imported.weights, new, forward)?
        .keep_batchnorm_f32(imported.kindling_batchnorm);
    eprintln!(
        "{}: classifier `{}` (its last Linear), weights {}",
        source.name(),
        source.classifier(),
        source.weights().display()
    );
    let outcome = finetune::run_with(&cfg, Arc::new(source), |run| cli.test.trainer(run))?;
    print_finetune(&cfg, &outcome);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forward_signature_is_read_from_the_generated_source() {
        let text = "pub struct Model {}\nimpl Model {\n    pub fn forward(\n        &self,\n        \
                    x: Tensor<4>,\n    ) -> Tensor<2> {\n        todo\n    }\n}";
        assert_eq!(
            forward_signature(text).as_deref(),
            Some("(&self,x:Tensor<4>)->Tensor<2>")
        );
    }

    #[test]
    fn a_directory_without_a_classifier_module_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = ImportedDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("import-onnx"), "{err}");
        std::fs::write(
            dir.path().join("seg.rs"),
            "pub struct Model {}\nimpl Model {\n    pub fn forward(&self, x: Tensor<4>) -> \
             Tensor<4> {\n    }\n}",
        )
        .unwrap();
        let err = ImportedDir::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no weights file"), "{err}");
        std::fs::write(dir.path().join("seg.bpk"), b"").unwrap();
        let err = ImportedDir::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("not an image classifier") && err.contains("Tensor<4>)->Tensor<4>"),
            "{err}"
        );
    }

    #[test]
    fn an_import_with_kindling_batchnorm_keeps_it_f32_under_amp() {
        let classifier = "pub struct Model {}\nimpl Model {\n    pub fn forward(&self, x: \
                          Tensor<4>) -> Tensor<2> {\n    }\n}";
        for (uses, kindling) in [("kindling_nn", true), ("burn::nn", false)] {
            let dir = tempfile::tempdir().unwrap();
            let text = format!("use {uses}::BatchNorm;\n{classifier}");
            std::fs::write(dir.path().join("cls.rs"), text).unwrap();
            std::fs::write(dir.path().join("cls.bpk"), b"").unwrap();
            let imported = ImportedDir::open(dir.path()).unwrap();
            assert_eq!(imported.kindling_batchnorm, kindling, "{uses}");
        }
    }
}
