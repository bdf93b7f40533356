//! [`import`]: an ONNX file to a Burn module's source, weights and README.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use burn_onnx::ModelGen;
use onnx_ir::Message;

use crate::OnnxError;
use crate::graph::{self, Signature};

/// How [`import`] treats the graph.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The module's file stem (`<name>.rs`, `<name>.bpk`); default: the ONNX file's stem made
    /// an identifier.
    pub name: Option<String>,
    /// Remove a Softmax/LogSoftmax that produces the output, so `forward` returns logits
    /// (default `true`: training needs them; the probabilities are a `softmax` away).
    pub logits: bool,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            name: None,
            logits: true,
        }
    }
}

/// What [`import`] wrote.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The module's name.
    pub name: String,
    /// `<out>/<name>.rs`: the generated `Model`.
    pub source: PathBuf,
    /// `<out>/<name>.bpk`: its weights (Burn's burnpack).
    pub weights: PathBuf,
    /// `<out>/README.md`: where it came from, its inputs and outputs.
    pub readme: PathBuf,
    /// The signature of the imported graph (after the logits edit).
    pub signature: Signature,
    /// The Softmax node removed for logits, if any.
    pub removed_softmax: Option<String>,
}

/// Imports the ONNX model at `model` into `out`.
///
/// The graph is checked first: an operator burn-onnx does not implement is an error naming
/// the operator and its first node, before any code is generated; a generator failure is an
/// error with burn-onnx's message (its panics are caught, and its panic output is silenced
/// for the duration of the call).
///
/// ```no_run
/// use kindling_onnx::{ImportOptions, import};
/// let done = import("model.onnx".as_ref(), "src/model".as_ref(), &ImportOptions::default())?;
/// println!("wrote {} ({} inputs)", done.source.display(), done.signature.inputs.len());
/// # Ok::<(), kindling_onnx::OnnxError>(())
/// ```
pub fn import(model: &Path, out: &Path, options: &ImportOptions) -> Result<Imported, OnnxError> {
    let mut proto = graph::read(model)?;
    let unsupported = graph::unsupported_ops(&proto);
    if !unsupported.is_empty() {
        return Err(OnnxError::UnsupportedOps {
            path: model.to_path_buf(),
            ops: unsupported,
        });
    }
    let name = match &options.name {
        Some(n) => n.clone(),
        None => identifier(
            &model
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
    };
    if !is_identifier(&name) {
        return Err(OnnxError::BadName(name));
    }
    let removed_softmax = if options.logits {
        graph::strip_trailing_softmax(&mut proto)
    } else {
        None
    };
    let signature = graph::signature(&proto);

    // burn-onnx names its outputs after the input file: the (edited) graph goes to
    // `<tmp>/<name>.onnx`.
    let tmp = tempfile::tempdir().map_err(write(out))?;
    let staged = tmp.path().join(format!("{name}.onnx"));
    let bytes = proto.write_to_bytes().map_err(|e| OnnxError::Corrupt {
        path: model.to_path_buf(),
        message: e.to_string(),
    })?;
    std::fs::write(&staged, bytes).map_err(write(&staged))?;
    std::fs::create_dir_all(out).map_err(write(out))?;
    generate(&staged, out).map_err(|message| OnnxError::Import {
        path: model.to_path_buf(),
        message,
    })?;
    let source = out.join(format!("{name}.rs"));
    let code = std::fs::read_to_string(&source).map_err(write(&source))?;
    let file_name = model
        .file_name()
        .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let weights = out.join(format!("{name}.bpk"));
    let code = fix_generated(&code, &file_name, &weights.to_string_lossy(), &name);
    std::fs::write(&source, code).map_err(write(&source))?;

    let readme = out.join("README.md");
    std::fs::write(
        &readme,
        readme_text(model, &name, &signature, &removed_softmax),
    )
    .map_err(write(&readme))?;
    Ok(Imported {
        source,
        weights,
        readme,
        name,
        signature,
        removed_softmax,
    })
}

/// Corrections to burn-onnx 0.22.0's output:
/// - the header names the staged temporary file, and `Default` loads the weights from the
///   absolute output path: the header names the model's file and `Default` loads
///   `<name>.bpk` from the working directory, so the output is the same wherever it is
///   written;
/// - BatchNorm's `momentum` is copied from ONNX, where the running mean keeps `momentum` of
///   itself, into Burn's config, where it takes `momentum` of the batch (PyTorch's meaning):
///   the ONNX default 0.9 would make fine-tuning replace the statistics almost every step.
///   `1 - momentum` is written instead (inference does not use it);
/// - BatchNorm is Kindling's (`kindling_nn::BatchNorm`, the same fields and weights keys):
///   PyTorch's unbiased running variance for fine-tuning, and an f16/bf16 input normalised in
///   f32, so that under mixed precision (a master-weights working copy, which is how `train
///   finetune --onnx --amp` runs an import) the statistics are not computed in f16.
fn fix_generated(code: &str, file_name: &str, weights: &str, name: &str) -> String {
    let mut lines = code.lines();
    let _ = lines.next();
    let rest: Vec<&str> = lines.collect();
    let body = rest
        .join("\n")
        .replace(&format!("{weights:?}"), &format!("\"{name}.bpk\""));
    let momentum = regex::Regex::new(r"\.with_momentum\(([0-9.eE+-]+)f64\)").expect("valid regex");
    let body = momentum.replace_all(&body, |c: &regex::Captures<'_>| {
        let onnx: f64 = c[1].parse().unwrap_or(0.9);
        format!(".with_momentum({:?}f64)", 1.0 - onnx)
    });
    let body = body
        .replace("use burn::nn::BatchNorm;\n", KINDLING_BATCHNORM)
        .replace(
            "use burn::nn::BatchNormConfig;\n",
            "use kindling_nn::BatchNormConfig;\n",
        );
    format!(
        "// Generated from ONNX `{file_name}` by burn-onnx 0.22.0 through kindling-onnx (BatchNorm \
         momentum converted to PyTorch's convention; BatchNorm is kindling_nn's).\n{body}\n"
    )
}

/// How a module this crate generated imports Kindling's BatchNorm.
const KINDLING_BATCHNORM: &str = "use kindling_nn::BatchNorm;\n";

/// Whether a generated module's BatchNorms are Kindling's, which normalise an f16/bf16 input
/// with f32 parameters, so a master-weights working copy can keep them in f32
/// (`MasterWeights::keep_batchnorm_f32`). A module imported before kindling-onnx wrote them
/// has Burn's, which cannot.
pub fn has_kindling_batchnorm(source: &str) -> bool {
    source.contains(KINDLING_BATCHNORM)
}

/// Runs burn-onnx's generator on `model` into `out`, its panics turned into the message.
fn generate(model: &Path, out: &Path) -> Result<(), String> {
    // burn-onnx's `ModelGen::new` installs a DEBUG-level global logger unless one is set: a
    // program without one gets a silent one instead of pages of generator traces.
    if !tracing::dispatcher::has_been_set() {
        let _ =
            tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut generator = ModelGen::new();
        generator
            .input(&model.to_string_lossy())
            .out_dir(&out.to_string_lossy())
            .run_from_cli();
    }));
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the generator panicked".into())
    })
}

/// An I/O error writing `path`.
fn write(path: &Path) -> impl FnOnce(std::io::Error) -> OnnxError + '_ {
    move |source| OnnxError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn readme_text(model: &Path, name: &str, sig: &Signature, removed: &Option<String>) -> String {
    let list = |values: &[crate::TensorInfo]| {
        values
            .iter()
            .map(|v| format!("- {v}\n"))
            .collect::<String>()
    };
    format!(
        "# `{name}`: imported from ONNX\n\n\
         Generated by `kindling-onnx` (burn-onnx 0.22.0) from `{}` (opset {}, {} nodes).\n\n\
         ## Inputs\n\n{}\n## Outputs\n\n{}\n{}\n\
         ## Use\n\n\
         `{name}.rs` defines `Model` (a Burn `Module`): `Model::new(&device)` builds it, \
         `kindling::onnx::load_weights(&mut model, \"{name}.bpk\")` loads the weights (a typed \
         error where the generated `from_file` panics), `forward` runs it. Include the file in a \
         crate that depends on `burn`, `burn-store` and `kindling-nn` (its BatchNorm); `kindling::finetune::freeze::parameters\
         (&model)` lists the parameter paths that `surgery::replace_classifier`, \
         `adapt_first_conv` and `freeze::freeze` take.\n\n\
         ## Fine-tune\n\n\
         For an image classifier (one `[N, C, H, W]` input, one `[N, classes]` output): \
         `cargo xtask train finetune --onnx DIR --data IMAGES`, with every flag of `--model`. \
         The last `Linear` is the classifier (fresh for the data's classes). ONNX files do not \
         record their preprocessing: give `--image-size`, `--mean` and `--std` as the model \
         was trained.\n",
        model.display(),
        sig.opset,
        sig.nodes,
        list(&sig.inputs),
        list(&sig.outputs),
        match removed {
            Some(node) => format!(
                "The graph's final `{node}` was removed: `forward` returns logits (apply \
                 `softmax` over the last dimension for the original output).\n"
            ),
            None => String::new(),
        }
    )
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `ch_ppocr_mobile_v2.0_cls_infer` → `ch_ppocr_mobile_v2_0_cls_infer`.
fn identifier(stem: &str) -> String {
    let mut s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        s.insert(0, '_');
    }
    s
}
