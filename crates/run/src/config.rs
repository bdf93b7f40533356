//! Typed run configuration: built-in defaults < config file < command-line flags.
//!
//! The configuration is one serde struct per run (the common [`RunConfig`] plus a task
//! section). Layering happens on a JSON tree so that every source is checked the same way:
//! unknown keys are reported with the closest valid key, wrongly typed values name their key,
//! and [`Validate`] rejects out-of-range values naming the field.

use std::path::{Path, PathBuf};

use kindling_losses::LossConfig;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value};

use crate::amp::{Amp, GradScalerSettings};
use crate::device::{DeviceSpec, Precision};
use crate::error::ConfigError;
use crate::schedule::ScheduleConfig;

/// Range checks that run after all sources are merged.
pub trait Validate {
    /// Returns the first out-of-range or missing value, naming its field.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// The settings every training run has, whatever the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Seeds the device, every RNG Kindling owns and the data shuffling.
    pub seed: u64,
    /// Number of passes over the training set.
    pub epochs: usize,
    /// Images per optimizer step.
    pub batch_size: usize,
    /// Drop each epoch's last, incomplete training batch (PyTorch's `DataLoader(drop_last=True)`,
    /// timm's training default): a batch of one or two gives BatchNorm a degenerate variance.
    pub drop_last: bool,
    /// Threads that decode and prepare data. Results do not depend on it.
    pub workers: usize,
    /// Where to compute: flex, wgpu, vulkan, metal, cuda[:N], tch, tch-cuda[:N].
    pub device: DeviceSpec,
    /// Float precision: f32, f16 or bf16.
    pub dtype: Precision,
    /// Mixed precision: `off`, or `f16`/`bf16` autocast around the forward pass with f32
    /// parameters (the master weights) and optimizer state; needs `dtype = "f32"`.
    pub amp: Amp,
    /// Loss scaling under `amp` (`torch.amp.GradScaler`'s arguments).
    pub grad_scaler: GradScalerSettings,
    /// Output directory (config, metrics, plots, checkpoints).
    pub out: PathBuf,
    /// Continue from the last checkpoint in `out`.
    pub resume: bool,
    /// The optimizer and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule (`[scheduler]`); unset = constant `optimizer.lr`.
    pub scheduler: Option<ScheduleConfig>,
    /// The loss, by name with its options: `loss = { name = "focal", mode = "multiclass" }`.
    pub loss: LossConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            epochs: 10,
            batch_size: 32,
            drop_last: false,
            workers: 2,
            device: DeviceSpec::Flex,
            dtype: Precision::F32,
            amp: Amp::Off,
            grad_scaler: GradScalerSettings::default(),
            out: PathBuf::from("runs/default"),
            resume: false,
            optimizer: OptimizerConfig::default(),
            scheduler: None,
            loss: LossConfig::default(),
        }
    }
}

impl Validate for RunConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.epochs == 0 {
            return Err(out_of_range("epochs", self.epochs, "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(out_of_range(
                "batch_size",
                self.batch_size,
                "must be at least 1",
            ));
        }
        if self.out.as_os_str().is_empty() {
            return Err(ConfigError::Missing {
                field: "out",
                hint: "give an output directory with --out DIR",
            });
        }
        self.optimizer.validate()?;
        if self.amp != Amp::Off && self.dtype != Precision::F32 {
            return Err(ConfigError::InvalidValue {
                key: "amp".into(),
                message: format!(
                    "amp = \"{}\" keeps f32 master weights and needs dtype = \"f32\", not \
                     \"{}\" (--amp {} with --dtype f32, or --dtype {} alone for pure {} \
                     training)",
                    self.amp, self.dtype, self.amp, self.dtype, self.dtype
                ),
                source_name: "the configuration".into(),
            });
        }
        self.grad_scaler.validate()?;
        if let Some(schedule) = &self.scheduler {
            schedule.policy.policy().map_err(ConfigError::Scheduler)?;
        }
        self.loss.check().map_err(ConfigError::Loss)?;
        Ok(())
    }
}

/// Which optimizer to train with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Stochastic gradient descent, optionally with (Nesterov) momentum.
    Sgd,
    /// Adam (L2 weight decay added to the gradient, as in PyTorch's `Adam`).
    Adam,
    /// AdamW (decoupled weight decay).
    Adamw,
}

/// Optimizer hyper-parameters, named as in `torch.optim`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerConfig {
    /// sgd, adam or adamw.
    pub name: OptimizerKind,
    /// Base learning rate.
    pub lr: f64,
    /// SGD momentum factor (0 disables momentum).
    pub momentum: f64,
    /// SGD dampening for momentum.
    pub dampening: f64,
    /// SGD: use Nesterov momentum (needs momentum > 0 and dampening = 0).
    pub nesterov: bool,
    /// Weight decay (L2 penalty for sgd/adam, decoupled for adamw).
    pub weight_decay: f64,
    /// Adam/AdamW coefficients for the running averages of gradient and its square.
    pub betas: [f64; 2],
    /// Adam/AdamW term added to the denominator for numerical stability.
    pub eps: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            name: OptimizerKind::Sgd,
            lr: 0.05,
            momentum: 0.9,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 5e-4,
            betas: [0.9, 0.999],
            eps: 1e-8,
        }
    }
}

impl Validate for OptimizerConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(out_of_range("optimizer.lr", self.lr, "must be > 0"));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(out_of_range(
                "optimizer.momentum",
                self.momentum,
                "must be in [0, 1)",
            ));
        }
        if !(0.0..=1.0).contains(&self.dampening) {
            return Err(out_of_range(
                "optimizer.dampening",
                self.dampening,
                "must be in [0, 1]",
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(out_of_range(
                "optimizer.nesterov",
                self.nesterov,
                "nesterov needs momentum > 0 and dampening = 0 (as in torch.optim.SGD)",
            ));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(out_of_range(
                "optimizer.weight_decay",
                self.weight_decay,
                "must be >= 0",
            ));
        }
        for beta in self.betas {
            if !(0.0..1.0).contains(&beta) {
                return Err(out_of_range(
                    "optimizer.betas",
                    format!("{:?}", self.betas),
                    "each beta must be in [0, 1)",
                ));
            }
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(out_of_range("optimizer.eps", self.eps, "must be > 0"));
        }
        Ok(())
    }
}

/// Builds an [`ConfigError::OutOfRange`] for `field`.
pub fn out_of_range(
    field: &'static str,
    value: impl std::fmt::Display,
    expected: &'static str,
) -> ConfigError {
    ConfigError::OutOfRange {
        field,
        value: value.to_string(),
        expected,
    }
}

/// Values given on the command line, keyed by their dotted path in the configuration.
#[derive(Debug, Default, Clone)]
pub struct Overrides(Vec<(String, Value)>);

impl Overrides {
    /// Records `value` for the dotted `key` when the flag was given.
    pub fn set<T: Serialize>(&mut self, key: &str, value: Option<T>) -> &mut Self {
        if let Some(v) = value {
            // Serializing plain flag values (numbers, strings, paths) cannot fail.
            let v = serde_json::to_value(v).unwrap_or(Value::Null);
            self.0.push((key.to_string(), v));
        }
        self
    }

    /// Records `true` for the dotted `key` when a switch flag was given.
    pub fn switch(&mut self, key: &str, on: bool) -> &mut Self {
        if on {
            self.0.push((key.to_string(), Value::Bool(true)));
        }
        self
    }

    /// The recorded `(key, value)` pairs in the order given.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.0
    }
}

/// Resolves a configuration from `defaults`, an optional config file and flag overrides.
///
/// Precedence, lowest to highest: `defaults` < `file` < `overrides`. The file format follows
/// its extension (`.toml`, `.json`, `.yaml`/`.yml`).
///
/// ```
/// use kindling_run::{RunConfig, Overrides, resolve_config};
/// let mut flags = Overrides::default();
/// flags.set("optimizer.lr", Some(0.1)).set("epochs", Some(3));
/// let cfg = resolve_config(&RunConfig::default(), None, &flags).unwrap();
/// assert_eq!((cfg.optimizer.lr, cfg.epochs), (0.1, 3));
/// ```
pub fn resolve_config<C>(
    defaults: &C,
    file: Option<&Path>,
    overrides: &Overrides,
) -> Result<C, ConfigError>
where
    C: Serialize + DeserializeOwned + Validate,
{
    let mut tree = serde_json::to_value(defaults).map_err(|e| ConfigError::InvalidValue {
        key: String::new(),
        message: e.to_string(),
        source_name: "built-in defaults".into(),
    })?;
    let schema = tree.clone();
    if let Some(path) = file {
        let layer = read_config_file(path)?;
        let source_name = path.display().to_string();
        check_keys(&layer, &schema, "", &source_name)?;
        merge(&mut tree, layer, "");
    }
    for (key, value) in overrides.entries() {
        set_path(&mut tree, &schema, key, value.clone())?;
    }
    let typed = tree.clone();
    let config: C = serde_path_to_error::deserialize(tree).map_err(|e| {
        // serde loses the path inside `#[serde(flatten)]` sections (every task's run
        // settings): find the value whose JSON type differs from its default's instead.
        let key = match e.path().to_string() {
            path if path.is_empty() || path == "." || path == "?" => {
                type_mismatch(&typed, &schema, "").unwrap_or_default()
            }
            path => path,
        };
        let message = e.into_inner().to_string();
        ConfigError::InvalidValue {
            key,
            message: format!("{message}{}", did_you_mean(&message)),
            source_name: match file {
                Some(p) => format!("{} or command line", p.display()),
                None => "command line".into(),
            },
        }
    })?;
    config.validate()?;
    Ok(config)
}

/// `"; did you mean `x`?"` for serde's "unknown variant `y`, expected one of `x`, …" and
/// "unknown field `y`, expected `x` …" messages (a mistyped scheduler policy, augmenter or
/// option), or nothing: the same hint the configuration keys and loss names get.
pub fn did_you_mean(message: &str) -> String {
    let given = ["unknown variant `", "unknown field `"]
        .iter()
        .find_map(|p| message.split_once(p))
        .and_then(|(_, rest)| rest.split_once('`'));
    let Some((given, rest)) = given else {
        return String::new();
    };
    let Some((_, expected)) = rest.split_once("expected") else {
        return String::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// The first key whose value has another JSON type than its (non-null) default.
fn type_mismatch(tree: &Value, schema: &Value, prefix: &str) -> Option<String> {
    let (Value::Object(tree), Value::Object(schema)) = (tree, schema) else {
        return None;
    };
    for (key, value) in tree {
        let path = join(prefix, key);
        let Some(default) = schema.get(key) else {
            continue;
        };
        if TAGGED_TABLES.contains(&path.as_str()) || default.is_null() || value.is_null() {
            continue;
        }
        let kind = |v: &Value| std::mem::discriminant(v);
        if kind(value) != kind(default) {
            return Some(path);
        }
        if let Some(found) = type_mismatch(value, default, &path) {
            return Some(found);
        }
    }
    None
}

/// Parses a config file into a JSON tree, by extension.
pub fn read_config_file(path: &Path) -> Result<Value, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_err = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("toml") => {
            let table: toml::Table = toml::from_str(&text).map_err(|e| parse_err(e.to_string()))?;
            serde_json::to_value(table).map_err(|e| parse_err(e.to_string()))
        }
        Some("json") => serde_json::from_str(&text).map_err(|e| parse_err(e.to_string())),
        Some("yaml" | "yml") => {
            serde_yaml_ng::from_str(&text).map_err(|e| parse_err(e.to_string()))
        }
        _ => Err(ConfigError::Format {
            path: path.to_path_buf(),
        }),
    }
}

/// Renders a configuration as TOML (what `--print-config` prints and runs save).
pub fn to_toml_string<C: Serialize>(config: &C) -> Result<String, ConfigError> {
    let invalid = |message: String| ConfigError::InvalidValue {
        key: String::new(),
        message,
        source_name: "configuration".into(),
    };
    let mut tree = serde_json::to_value(config).map_err(|e| invalid(e.to_string()))?;
    // TOML has no null: an unset optional value is simply absent.
    strip_nulls(&mut tree);
    toml::to_string_pretty(&tree).map_err(|e| invalid(e.to_string()))
}

/// Writes `config` as TOML to `path` atomically (temp file + rename).
pub fn save_config<C: Serialize>(config: &C, path: &Path) -> std::io::Result<()> {
    let text = to_toml_string(config).map_err(std::io::Error::other)?;
    crate::fs::write_atomic(path, text.as_bytes())
}

fn strip_nulls(v: &mut Value) {
    if let Value::Object(map) = v {
        map.retain(|_, v| !v.is_null());
        map.values_mut().for_each(strip_nulls);
    }
}

/// Tables selected by their `name` (a tagged union): a layer that gives one replaces it whole,
/// since another name has other options, and the table's own type checks its keys.
const TAGGED_TABLES: &[&str] = &["loss"];

/// Rejects keys of `layer` that `schema` does not have, suggesting the closest one.
fn check_keys(
    layer: &Value,
    schema: &Value,
    prefix: &str,
    source: &str,
) -> Result<(), ConfigError> {
    let (Value::Object(layer), Value::Object(schema)) = (layer, schema) else {
        return Ok(());
    };
    for (key, value) in layer {
        let path = join(prefix, key);
        if TAGGED_TABLES.contains(&path.as_str()) {
            continue;
        }
        match schema.get(key) {
            Some(sub) => check_keys(value, sub, &path, source)?,
            None => {
                return Err(ConfigError::UnknownKey {
                    suggestion: closest(key, schema).map(|s| join(prefix, &s)),
                    key: path,
                    source_name: source.to_string(),
                });
            }
        }
    }
    Ok(())
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// The valid key closest to `key` (Jaro-Winkler), if any is reasonably close.
fn closest(key: &str, schema: &Map<String, Value>) -> Option<String> {
    schema
        .keys()
        .map(|k| (strsim::jaro_winkler(key, k), k))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone())
}

fn merge(base: &mut Value, layer: Value, prefix: &str) {
    match (base, layer) {
        (Value::Object(base), Value::Object(layer)) if !TAGGED_TABLES.contains(&prefix) => {
            for (k, v) in layer {
                let path = join(prefix, &k);
                match base.get_mut(&k) {
                    Some(slot) => merge(slot, v, &path),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn set_path(tree: &mut Value, schema: &Value, key: &str, value: Value) -> Result<(), ConfigError> {
    let mut node = tree;
    let mut schema_node = schema;
    let parts: Vec<&str> = key.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let unknown = || ConfigError::UnknownKey {
            key: key.to_string(),
            suggestion: None,
            source_name: "command line".into(),
        };
        schema_node = schema_node.get(part).ok_or_else(unknown)?;
        let map = node.as_object_mut().ok_or_else(unknown)?;
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return Ok(());
        }
        node = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "run.toml",
            "epochs = 7\nbatch_size = 16\n[optimizer]\nlr = 0.2\nname = \"adam\"\n",
        );
        let mut flags = Overrides::default();
        flags.set("epochs", Some(3usize));
        let cfg = resolve_config(&RunConfig::default(), Some(&file), &flags).unwrap();
        assert_eq!(cfg.epochs, 3, "flag wins over file");
        assert_eq!(cfg.batch_size, 16, "file wins over default");
        assert_eq!(cfg.optimizer.lr, 0.2);
        assert_eq!(cfg.optimizer.name, OptimizerKind::Adam);
        assert_eq!(cfg.seed, RunConfig::default().seed, "default kept");
    }

    #[test]
    fn json_and_yaml_files_layer_like_toml() {
        let dir = tempfile::tempdir().unwrap();
        let json = write(&dir, "run.json", r#"{"seed": 7, "optimizer": {"lr": 0.3}}"#);
        let yaml = write(&dir, "run.yaml", "seed: 7\noptimizer:\n  lr: 0.3\n");
        for f in [json, yaml] {
            let cfg =
                resolve_config(&RunConfig::default(), Some(&f), &Overrides::default()).unwrap();
            assert_eq!((cfg.seed, cfg.optimizer.lr), (7, 0.3), "{}", f.display());
        }
    }

    #[test]
    fn unknown_key_names_it_and_the_closest_valid_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "run.toml", "[optimizer]\nlrr = 0.1\n");
        let err =
            resolve_config(&RunConfig::default(), Some(&file), &Overrides::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("`optimizer.lrr`"), "{msg}");
        assert!(msg.contains("did you mean `optimizer.lr`"), "{msg}");
        assert!(msg.contains("run.toml"), "{msg}");

        let file = write(&dir, "top.toml", "batchsize = 4\n");
        let msg = resolve_config(&RunConfig::default(), Some(&file), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("did you mean `batch_size`"), "{msg}");
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let cases: [(&str, Value, &str); 4] = [
            ("optimizer.lr", Value::from(0.0), "optimizer.lr"),
            ("optimizer.lr", Value::from(-1.0), "optimizer.lr"),
            ("batch_size", Value::from(0), "batch_size"),
            ("epochs", Value::from(0), "epochs"),
        ];
        for (key, value, field) in cases {
            let mut flags = Overrides::default();
            flags.set(key, Some(value.clone()));
            let err = resolve_config(&RunConfig::default(), None, &flags).unwrap_err();
            assert!(
                matches!(&err, ConfigError::OutOfRange { field: f, .. } if *f == field),
                "{key}={value}: {err}"
            );
            assert!(err.to_string().contains(field));
        }
    }

    #[test]
    fn wrongly_typed_value_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "run.toml", "[optimizer]\nname = \"lbfgs\"\n");
        let msg = resolve_config(&RunConfig::default(), Some(&file), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("optimizer.name") && msg.contains("lbfgs"),
            "{msg}"
        );

        let file = write(&dir, "dev.toml", "device = \"tpu\"\n");
        let msg = resolve_config(&RunConfig::default(), Some(&file), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("device") && msg.contains("tpu"), "{msg}");
    }

    #[test]
    fn a_wrongly_typed_value_in_a_flattened_section_names_its_key() {
        #[derive(Debug, Serialize, Deserialize)]
        struct TaskRun {
            #[serde(flatten)]
            run: RunConfig,
            task: Map<String, Value>,
        }
        impl Validate for TaskRun {
            fn validate(&self) -> Result<(), ConfigError> {
                Ok(())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let file = write(&dir, "run.toml", "epochs = \"ten\"\n");
        let defaults = TaskRun {
            run: RunConfig::default(),
            task: Map::new(),
        };
        let msg = resolve_config(&defaults, Some(&file), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`epochs`"), "{msg}");
    }

    #[test]
    fn unsupported_extension_and_bad_syntax_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let ini = write(&dir, "run.ini", "seed=1");
        let msg = resolve_config(&RunConfig::default(), Some(&ini), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains(".toml, .json, .yaml"), "{msg}");
        let bad = write(&dir, "bad.toml", "seed = = 1");
        let msg = resolve_config(&RunConfig::default(), Some(&bad), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("bad.toml"), "{msg}");
    }

    #[test]
    fn loss_table_is_replaced_whole_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "run.toml",
            "loss = { name = \"focal\", mode = \"multiclass\", gamma = 1.5 }\n",
        );
        let cfg =
            resolve_config(&RunConfig::default(), Some(&file), &Overrides::default()).unwrap();
        assert_eq!(cfg.loss.name(), "focal");
        // Saved and replayed, it is the same loss with every option spelled out.
        let saved = dir.path().join("saved.toml");
        save_config(&cfg, &saved).unwrap();
        let text = std::fs::read_to_string(&saved).unwrap();
        assert!(
            text.contains("[loss]") && text.contains("gamma = 1.5"),
            "{text}"
        );
        let back =
            resolve_config(&RunConfig::default(), Some(&saved), &Overrides::default()).unwrap();
        assert_eq!(back, cfg);
        // A flag replaces the file's table; options of the old loss do not leak into it.
        let mut flags = Overrides::default();
        flags.set(
            "loss",
            Some(serde_json::json!({"name": "cross_entropy", "label_smoothing": 0.1})),
        );
        let cfg = resolve_config(&RunConfig::default(), Some(&file), &flags).unwrap();
        assert_eq!(cfg.loss.to_json()["label_smoothing"], 0.1);
    }

    #[test]
    fn bad_loss_tables_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expected) in [
            ("loss = { name = \"focall\" }", "did you mean `focal`"),
            (
                "loss = { name = \"focal\", mode = \"binary\", gama = 2 }",
                "did you mean `gamma`",
            ),
            (
                "loss = { name = \"dice\" }",
                "missing required option `mode`",
            ),
            (
                "loss = { name = \"cross_entropy\", label_smoothing = 2.0 }",
                "`label_smoothing` = 2",
            ),
        ] {
            let file = write(&dir, "run.toml", text);
            let err = resolve_config(&RunConfig::default(), Some(&file), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn scheduler_table_selects_a_policy_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            &dir,
            "run.toml",
            "[scheduler]\nname = \"step_lr\"\nstep_size = 2\ninterval = \"step\"\n",
        );
        let cfg =
            resolve_config(&RunConfig::default(), Some(&file), &Overrides::default()).unwrap();
        let schedule = cfg.scheduler.clone().unwrap();
        assert_eq!(schedule.interval, crate::Interval::Step);
        let rows = schedule.build(1.0).unwrap().rows(2).unwrap();
        assert_eq!(rows, [1.0, 1.0, 0.1]);
        // And it survives the save/replay round trip.
        let saved = dir.path().join("saved.toml");
        save_config(&cfg, &saved).unwrap();
        let back =
            resolve_config(&RunConfig::default(), Some(&saved), &Overrides::default()).unwrap();
        assert_eq!(back, cfg);
    }

    #[test]
    fn bad_scheduler_tables_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        for (text, needles) in [
            (
                "name = \"step_lrr\"\n",
                &["step_lrr", "multi_step_lr", "did you mean `step_lr`"][..],
            ),
            (
                "name = \"step_lr\"\nstep_size = 0\n",
                &["step_size", "at least 1"][..],
            ),
            (
                "name = \"step_lr\"\nstep_size = 3\nstep = 1\n",
                &["`step`", "gamma"][..],
            ),
            (
                "name = \"step_lr\"\nstep_size = 3\ninterval = \"batch\"\n",
                &["interval"][..],
            ),
        ] {
            let file = write(&dir, "run.toml", &format!("[scheduler]\n{text}"));
            let msg = resolve_config(&RunConfig::default(), Some(&file), &Overrides::default())
                .unwrap_err()
                .to_string();
            for needle in needles {
                assert!(msg.contains(needle), "{text}: `{needle}` not in {msg}");
            }
        }
    }

    #[test]
    fn saved_toml_replays_to_the_same_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = RunConfig::default();
        cfg.optimizer.lr = 0.123456789;
        cfg.seed = u64::from(u32::MAX) + 5;
        cfg.device = DeviceSpec::Cuda(1);
        let path = dir.path().join("config.toml");
        save_config(&cfg, &path).unwrap();
        let back =
            resolve_config(&RunConfig::default(), Some(&path), &Overrides::default()).unwrap();
        assert_eq!(back, cfg);
    }
}
