//! Weights in and out: `torch.save` files (zip and legacy), safetensors and Burn's `.bpk`,
//! applied by module path through `burn-store`, with timm's rules for a different head or
//! input and one report of everything that does not fit.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{DType, TensorData};
use burn_store::burn_pack::Tensor as PackTensor;
use burn_store::{
    ApplyError, BurnToPyTorchAdapter, BurnpackStore, KeyRemapper, ModuleSnapshot, ModuleStore,
    PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};

use crate::{FinetuneError, ModelEntry, ZooModel};

/// The naming and layout convention of a weights file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// PyTorch's: `Linear` weights `[out, in]`, norms `weight`/`bias` (`.pth`, `.safetensors`).
    PyTorch,
    /// Burn's record layout (`.bpk`).
    Burn,
}

/// The tensors of a weights file, by key.
pub struct StateDict {
    tensors: Vec<PackTensor>,
    layout: Layout,
}

impl StateDict {
    /// A state dict from in-memory tensors with PyTorch keys and layout (what
    /// `model.state_dict()` holds).
    pub fn from_pytorch(tensors: impl IntoIterator<Item = (String, TensorData)>) -> Self {
        Self {
            tensors: tensors
                .into_iter()
                .map(|(name, data)| burn_store::bridge::from_data(data, name, None))
                .collect(),
            layout: Layout::PyTorch,
        }
    }

    /// Keys and shapes, in file order.
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        self.tensors
            .iter()
            .map(|t| (t.name.clone(), t.shape.to_vec()))
            .collect()
    }

    /// The convention of the file.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Every tensor's key and values, in file order (`state_dict.items()`).
    pub fn into_tensors(self) -> Result<Vec<(String, TensorData)>, FinetuneError> {
        self.tensors
            .iter()
            .map(|t| {
                burn_store::bridge::to_data(t)
                    .map(|data| (t.name.clone(), data))
                    .map_err(|e| FinetuneError::ReadWeights {
                        path: t.name.clone().into(),
                        message: e.to_string(),
                    })
            })
            .collect()
    }
}

/// Reads a weights file by its extension: `.pth`/`.pt`/`.bin` (torch.save, zip or legacy),
/// `.safetensors` (PyTorch layout) or `.bpk` (Burn). A `state_dict`/`model` wrapper and a
/// `module.` prefix (DataParallel) are unwrapped.
pub fn read_file(path: &Path) -> Result<StateDict, FinetuneError> {
    let fail = |message: String| FinetuneError::ReadWeights {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(fail("no such file".into()));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let (map, layout): (BTreeMap<String, PackTensor>, Layout) = match ext.as_str() {
        "pth" | "pt" | "bin" | "ckpt" => {
            let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
            let map = store.get_all_tensors().map_err(|e| fail(e.to_string()))?;
            (map.clone(), Layout::PyTorch)
        }
        "safetensors" => {
            let mut store = SafetensorsStore::from_file(path);
            let map = store.get_all_tensors().map_err(|e| fail(e.to_string()))?;
            (map.clone(), Layout::PyTorch)
        }
        "bpk" => {
            let mut store = BurnpackStore::from_file(path).auto_extension(false);
            let map = store.get_all_tensors().map_err(|e| fail(e.to_string()))?;
            (map.clone(), Layout::Burn)
        }
        _ => {
            return Err(fail(format!(
                "unknown extension '.{ext}': expected .pth, .pt, .bin, .safetensors or .bpk"
            )));
        }
    };
    if map.is_empty() {
        return Err(fail("the file holds no tensors".into()));
    }
    let mut tensors: Vec<PackTensor> = map.into_values().collect();
    for prefix in ["state_dict.", "model.", "module."] {
        if tensors.iter().all(|t| t.name.starts_with(prefix)) {
            for t in &mut tensors {
                t.name = t.name[prefix.len()..].to_string();
            }
        }
    }
    Ok(StateDict { tensors, layout })
}

/// How [`load_into`] treats a file that does not fit.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Refuse any missing, unexpected or mis-shaped key (default).
    pub strict: bool,
    /// Named in the report (the file path).
    pub source_name: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            strict: true,
            source_name: "state dict".into(),
        }
    }
}

/// What loading did: one list per kind of mismatch, plus timm's deliberate changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Tensors loaded.
    pub applied: usize,
    /// Model keys the file lacks (they keep their initial values).
    pub missing: Vec<String>,
    /// File keys the model lacks.
    pub unexpected: Vec<String>,
    /// Keys whose shapes differ: (key, model shape, file shape), in Burn's layout (`Linear`
    /// weights `[in, out]`).
    pub mismatched: Vec<(String, Vec<usize>, Vec<usize>)>,
    /// Other per-key failures (dtype, decoding).
    pub failed: Vec<String>,
    /// Classifier keys dropped because `num_classes` differs (a fresh head was initialised).
    pub reinitialized: Vec<String>,
    /// First-convolution weights adapted to `in_chans` (timm `adapt_input_conv`).
    pub adapted: Vec<String>,
}

impl LoadReport {
    /// Nothing missing, unexpected, mis-shaped or failed.
    pub fn is_exact(&self) -> bool {
        self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.mismatched.is_empty()
            && self.failed.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, what: &str, keys: &[String]| {
            if keys.is_empty() {
                return Ok(());
            }
            writeln!(f, "  {what} ({}):", keys.len())?;
            for k in keys.iter().take(20) {
                writeln!(f, "    {k}")?;
            }
            if keys.len() > 20 {
                writeln!(f, "    … and {} more", keys.len() - 20)?;
            }
            Ok(())
        };
        list(f, "missing in the file", &self.missing)?;
        list(f, "unexpected in the file", &self.unexpected)?;
        let shaped: Vec<String> = self
            .mismatched
            .iter()
            .map(|(k, m, s)| format!("{k}: model {m:?}, file {s:?}"))
            .collect();
        list(f, "mis-shaped", &shaped)?;
        list(f, "failed", &self.failed)?;
        list(
            f,
            "re-initialised (num_classes differs)",
            &self.reinitialized,
        )?;
        list(f, "adapted to in_chans", &self.adapted)?;
        write!(f, "  loaded: {} tensors", self.applied)
    }
}

/// timm's `adapt_input_conv`: a 3-channel first-convolution weight `[O, I, kh, kw]` made to
/// take `in_chans` channels: summed over the channels for 1, else the RGB filters repeated
/// and scaled by `3 / in_chans`. Computed in f32 like timm.
pub fn adapt_input_conv(in_chans: usize, weight: &TensorData) -> Result<TensorData, String> {
    let shape = weight.shape().to_vec();
    let [o, i, kh, kw] = shape[..] else {
        return Err(format!(
            "first conv weight has shape {shape:?}, expected 4 dimensions"
        ));
    };
    let w: Vec<f32> = weight
        .clone()
        .convert::<f32>()
        .try_to_vec()
        .map_err(|e| format!("{e:?}"))?;
    let k = kh * kw;
    let at = |oo: usize, ii: usize, kk: usize| w[(oo * i + ii) * k + kk];
    let mut out = Vec::with_capacity(o * in_chans * k);
    if in_chans == 1 {
        // timm sums groups of 3 for space-to-depth stems (I a multiple of 3) as well.
        if i > 3 && !i.is_multiple_of(3) {
            return Err(format!(
                "cannot adapt a {i}-channel first conv to 1 channel"
            ));
        }
        let groups = if i > 3 { i / 3 } else { 1 };
        let per = if i > 3 { 3 } else { i };
        for oo in 0..o {
            for g in 0..groups {
                for kk in 0..k {
                    let mut s = 0f32;
                    for c in 0..per {
                        s += at(oo, g * per + c, kk);
                    }
                    out.push(s);
                }
            }
        }
        return Ok(TensorData::new(out, [o, groups, kh, kw]).convert_dtype(weight.dtype()));
    }
    if i != 3 {
        return Err(format!(
            "cannot adapt a {i}-channel first conv to {in_chans} channels (timm supports 3)"
        ));
    }
    let scale = 3.0f32 / in_chans as f32;
    for oo in 0..o {
        for c in 0..in_chans {
            for kk in 0..k {
                out.push(at(oo, c % 3, kk) * scale);
            }
        }
    }
    Ok(TensorData::new(out, [o, in_chans, kh, kw]).convert_dtype(weight.dtype()))
}

/// Loads `state` into `model` (built from `entry`), applying timm's rules: the classifier is
/// dropped (the model keeps its fresh head) when its size differs from the model's, and the
/// first convolution is adapted when the model's input channels differ. `num_batches_tracked`
/// is ignored; tensors take the model's float dtype.
///
/// With `strict`, any missing, unexpected or mis-shaped key is an error listing all of them
/// (the model is then partly loaded: discard it). Without, the report says what was skipped.
pub fn load_into(
    model: &mut ZooModel,
    entry: &ModelEntry,
    state: StateDict,
    options: &LoadOptions,
) -> Result<LoadReport, FinetuneError> {
    let mut report = LoadReport::default();
    let StateDict {
        mut tensors,
        layout,
    } = state;
    tensors.retain(|t| !t.name.ends_with("num_batches_tracked"));
    if layout == Layout::PyTorch && !entry.key_rules.is_empty() {
        let rules = KeyRemapper::from_patterns(entry.key_rules.to_vec()).map_err(|e| {
            FinetuneError::InvalidOption {
                model: entry.name.into(),
                message: format!("bad key rule: {e}"),
            }
        })?;
        tensors = rules.remap(tensors).0;
    }
    let model_tensors = module_tensors(model);

    // timm: a different number of classes drops the classifier and keeps the fresh head.
    let (cls_w, cls_b) = (
        format!("{}.weight", entry.classifier),
        format!("{}.bias", entry.classifier),
    );
    let file_classes = tensors
        .iter()
        .find(|t| t.name == cls_w)
        .map(|t| match layout {
            Layout::PyTorch => t.shape[0],
            Layout::Burn => t.shape[t.shape.len() - 1],
        });
    if let Some(n) = file_classes
        && n != model.num_classes()
    {
        tensors.retain(|t| {
            let drop = t.name == cls_w || t.name == cls_b;
            if drop {
                report.reinitialized.push(t.name.clone());
            }
            !drop
        });
    }

    // timm: a 3-channel first convolution adapted to the model's input channels.
    let conv_w = format!("{}.weight", entry.first_conv);
    if let Some((want, _)) = model_tensors.get(&conv_w)
        && let Some(pos) = tensors.iter().position(|t| t.name == conv_w)
        && tensors[pos].shape.len() == 4
        && tensors[pos].shape[1] != want[1]
    {
        let data =
            burn_store::bridge::to_data(&tensors[pos]).map_err(|e| FinetuneError::ReadWeights {
                path: PathBuf::from(&options.source_name),
                message: format!("{conv_w}: {e}"),
            })?;
        let adapted =
            adapt_input_conv(want[1], &data).map_err(|message| FinetuneError::InvalidOption {
                model: entry.name.into(),
                message,
            })?;
        tensors[pos] = burn_store::bridge::from_data(adapted, conv_w.clone(), None);
        report.adapted.push(conv_w);
    }

    apply_state(
        model,
        tensors,
        layout,
        &model_tensors,
        entry.name,
        options,
        report,
    )
}

/// What every load does once the tensors carry the module's keys: cast them to the module's
/// float dtype, apply them through burn-store (PyTorch layout adapted), and report.
fn apply_state<M: Module>(
    module: &mut M,
    mut tensors: Vec<PackTensor>,
    layout: Layout,
    model_tensors: &BTreeMap<String, (Vec<usize>, DType)>,
    model_name: &str,
    options: &LoadOptions,
    mut report: LoadReport,
) -> Result<LoadReport, FinetuneError> {
    // Weights follow the model's float dtype (the run's), not the file's.
    for t in &mut tensors {
        let target = model_tensors
            .get(&t.name)
            .map(|(_, d)| *d)
            .unwrap_or(DType::F32);
        if t.dtype != target && t.dtype.is_float() && target.is_float() {
            let name = t.name.clone();
            if let Ok(data) = burn_store::bridge::to_data(t) {
                *t = burn_store::bridge::from_data(data.convert_dtype(target), name, None);
            }
        }
    }

    let adapter: Option<Box<dyn burn_store::ModuleAdapter>> = match layout {
        Layout::PyTorch => Some(Box::new(PyTorchToBurnAdapter)),
        Layout::Burn => None,
    };
    let result = module.apply(tensors, None, adapter, true);
    report.applied = result.applied.len();
    report.missing = result
        .missing
        .iter()
        .map(|(path, _)| pytorch_name(path))
        .filter(|k| !report.reinitialized.contains(k))
        .collect();
    report.unexpected = result.unused.clone();
    for e in &result.errors {
        match e {
            ApplyError::ShapeMismatch {
                path,
                expected,
                found,
            } => report
                .mismatched
                .push((pytorch_name(path), expected.to_vec(), found.to_vec())),
            other => report.failed.push(other.to_string()),
        }
    }
    if options.strict && !report.is_exact() {
        return Err(FinetuneError::WeightsMismatch {
            model: model_name.into(),
            source_name: options.source_name.clone(),
            report: Box::new(report),
        });
    }
    Ok(report)
}

/// The keys, shapes and float dtypes of `module` in PyTorch's naming and layout.
fn module_tensors<M: Module>(module: &M) -> BTreeMap<String, (Vec<usize>, DType)> {
    module
        .collect(None, Some(Box::new(BurnToPyTorchAdapter)), true)
        .into_iter()
        .map(|t| (t.name.clone(), (t.shape.to_vec(), t.dtype)))
        .collect()
}

/// Loads a PyTorch `state_dict` into **any** Burn module (your own architecture, an ONNX
/// import): `key_map` is a table of regex rules applied in order to the file's keys
/// (`("^conv4_1\\.", "face_prob.")`) before they are matched to the module's paths
/// (PyTorch-style: `Linear` weights transposed and norms' `weight`/`bias` mapped by the
/// adapter, enum variants not counted). A rule that matches no key is an error, and the
/// result is the zoo's [`LoadReport`] (strict by default).
pub fn load_with_key_map<M: Module>(
    module: &mut M,
    state: StateDict,
    key_map: &[(&str, &str)],
    options: &LoadOptions,
) -> Result<LoadReport, FinetuneError> {
    let model_name = std::any::type_name::<M>()
        .rsplit("::")
        .next()
        .unwrap_or("module");
    let StateDict {
        mut tensors,
        layout,
    } = state;
    tensors.retain(|t| !t.name.ends_with("num_batches_tracked"));
    for (from, _) in key_map {
        let re = regex::Regex::new(from)
            .map_err(|e| FinetuneError::Pattern(format!("key rule '{from}': {e}")))?;
        if !tensors.iter().any(|t| re.is_match(&t.name)) {
            let keys: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).take(8).collect();
            return Err(FinetuneError::Pattern(format!(
                "key rule '{from}' matches no key of {}; its keys: {}",
                options.source_name,
                keys.join(", ")
            )));
        }
    }
    if !key_map.is_empty() {
        let rules = KeyRemapper::from_patterns(key_map.to_vec())
            .map_err(|e| FinetuneError::Pattern(format!("bad key rule: {e}")))?;
        tensors = rules.remap(tensors).0;
    }
    let model_tensors = module_tensors(module);
    apply_state(
        module,
        tensors,
        layout,
        &model_tensors,
        model_name,
        options,
        LoadReport::default(),
    )
}

/// Our norm layers' Burn names (`gamma`/`beta`) as the PyTorch key a user looks for.
fn pytorch_name(path: &str) -> String {
    if let Some(p) = path.strip_suffix(".gamma") {
        format!("{p}.weight")
    } else if let Some(p) = path.strip_suffix(".beta") {
        format!("{p}.bias")
    } else {
        path.to_string()
    }
}

fn write_atomic(
    path: &Path,
    save: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), FinetuneError> {
    let fail = |message: String| FinetuneError::WriteWeights {
        path: path.to_path_buf(),
        message,
    };
    let tmp = path.with_extension("tmp-write");
    save(&tmp).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
}

/// Saves `model` as safetensors in PyTorch's layout and torchvision's keys, so both
/// [`read_file`] and PyTorch's `load_state_dict(safetensors.torch.load_file(..))` read it.
/// Written to a temporary file, then renamed.
pub fn save_safetensors(model: &ZooModel, path: &Path) -> Result<(), FinetuneError> {
    // BatchNorm's running statistics are per-thread until synchronised; `valid` does it.
    let _ = model.valid();
    write_atomic(path, |tmp| {
        let mut store = SafetensorsStore::from_file(tmp)
            .with_to_adapter(BurnToPyTorchAdapter)
            .skip_enum_variants(true)
            .overwrite(true);
        model.save_into(&mut store).map_err(|e| e.to_string())
    })
}

/// Saves `model` (a zoo model, an ONNX import, any module) in Burn's native `.bpk` format
/// (atomically), keyed by module path without enum variants (as [`read_file`] expects).
pub fn save_burnpack<M: Module>(model: &M, path: &Path) -> Result<(), FinetuneError> {
    let _ = model.valid();
    write_atomic(path, |tmp| {
        // `BurnpackStore` has no option to leave enum variants out of the keys; its writer does.
        burn_store::burn_pack::Writer::new(model.collect(None, None, true))
            .auto_extension(false)
            .overwrite(true)
            .write_to_file(tmp)
            .map_err(|e| e.to_string())
    })
}

/// Loads a `.bpk` written by [`save_burnpack`] or by burn-onnx's importer into `model` (any
/// module), strictly: a missing or corrupt file, missing tensors and mis-shaped ones are an
/// error naming the file and the first ten problems.
pub fn load_burnpack<M: Module>(model: &mut M, path: &Path) -> Result<(), FinetuneError> {
    let fail = |message: String| FinetuneError::ReadWeights {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(fail("no such file".into()));
    }
    let mut store = BurnpackStore::from_file(path);
    let result = model
        .load_from(&mut store)
        .map_err(|e| fail(e.to_string()))?;
    let mut problems: Vec<String> = result.errors.iter().map(|e| e.to_string()).collect();
    problems.extend(
        result
            .missing
            .iter()
            .map(|(key, _)| format!("missing {key}")),
    );
    if problems.is_empty() {
        return Ok(());
    }
    let total = problems.len();
    problems.truncate(10);
    if total > 10 {
        problems.push(format!("… {} more", total - 10));
    }
    Err(fail(problems.join("; ")))
}

/// Loads a weights file into an existing model (strict unless `options` say otherwise).
pub fn load_file(
    model: &mut ZooModel,
    path: &Path,
    strict: bool,
) -> Result<LoadReport, FinetuneError> {
    let entry = crate::model_entry(model.arch())?;
    let state = read_file(path)?;
    let options = LoadOptions {
        strict,
        source_name: path.display().to_string(),
    };
    load_into(model, entry, state, &options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapt_input_conv_sums_for_one_channel_and_scales_otherwise() {
        // w[o=0, c, 0, 0] = c + 1 for c in 0..3.
        let w = TensorData::new(vec![1f32, 2., 3.], [1, 3, 1, 1]);
        let one: Vec<f32> = adapt_input_conv(1, &w).unwrap().try_to_vec().unwrap();
        assert_eq!(one, [6.0]);
        let four: Vec<f32> = adapt_input_conv(4, &w).unwrap().try_to_vec().unwrap();
        assert_eq!(four, [0.75, 1.5, 2.25, 0.75]);
    }
}
