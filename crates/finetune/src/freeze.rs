//! Freezing and parameter groups by name pattern, for any Burn module.
//!
//! Paths are PyTorch's `state_dict` keys: enum variants are not segments and norm layers'
//! `gamma`/`beta` read `weight`/`bias`, so `"layer1.*"`, `"features.[0-3].*"` or
//! `"*.bn*.weight"` mean what they mean for the torchvision model. A pattern is a shell glob
//! (`*`, `?`, `[..]`) matched against a parameter's path or any module path above it
//! (`"layer1"` covers `layer1.0.conv1.weight`); `re:` makes it a regex searched in the path.
//!
//! Freezing a BatchNorm's weights also freezes its statistics (the layer normalises with its
//! running mean and variance, as in `model.eval()`); [`freeze_batchnorm`] does that for every
//! BatchNorm (timm's `freeze_bn`) while leaving their affine parameters trainable.

use burn::module::{Flag, Module, ModuleMapper, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::tensor::Tensor;
use regex::Regex;

use crate::FinetuneError;
use crate::registry::wildcard_match;

/// A parameter as [`parameters`] lists it.
#[derive(Debug, Clone)]
pub struct ParamInfo {
    /// PyTorch-style path (`layer1.0.bn1.weight`).
    pub path: String,
    /// Burn's parameter id (what optimizers and [`ParamGroup`]s key on).
    pub id: ParamId,
    /// Number of values.
    pub numel: usize,
    /// Its shape (`[out, in]` for Burn's `Linear` weight, `[out, in, kh, kw]` for a conv).
    pub shape: Vec<usize>,
    /// The layer type it belongs to (`Linear`, `Conv2d`, `BatchNorm`), when it is a struct's.
    pub layer: Option<String>,
    /// Whether it receives gradients (meaningful on an autodiff device).
    pub trainable: bool,
    /// A buffer (BatchNorm's running statistics), not a parameter.
    pub buffer: bool,
}

/// Trainable vs frozen counts of a module (values, not tensors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ParamCounts {
    /// Values that receive gradients.
    pub trainable: usize,
    /// Values that do not.
    pub frozen: usize,
}

impl std::fmt::Display for ParamCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} trainable, {} frozen parameters",
            self.trainable, self.frozen
        )
    }
}

/// Module path tracking shared by the visitor and the mapper: enum variants are skipped and
/// Burn's norm names read as PyTorch's.
#[derive(Default)]
pub(crate) struct PathStack {
    names: Vec<String>,
    containers: Vec<String>,
}

impl PathStack {
    pub(crate) fn enter(&mut self, name: &str, container: &str) {
        self.containers.push(container.to_string());
        if !container.starts_with("Enum:") {
            self.names.push(name.to_string());
        }
    }

    pub(crate) fn exit(&mut self, container: &str) {
        self.containers.pop();
        if !container.starts_with("Enum:") {
            self.names.pop();
        }
    }

    fn in_norm(&self) -> bool {
        matches!(
            self.container(),
            Some("Struct:BatchNorm" | "Struct:LayerNorm")
        )
    }

    /// The current path in PyTorch's naming.
    pub(crate) fn path(&self) -> String {
        let mut names = self.names.clone();
        if self.in_norm()
            && let Some(last) = names.last_mut()
        {
            match last.as_str() {
                "gamma" => *last = "weight".into(),
                "beta" => *last = "bias".into(),
                _ => {}
            }
        }
        names.join(".")
    }

    /// The innermost struct being visited (`Struct:Linear`): the parameter's own layer.
    pub(crate) fn container(&self) -> Option<&str> {
        self.containers
            .iter()
            .rev()
            .find(|c| c.starts_with("Struct:"))
            .map(String::as_str)
    }

    fn in_batchnorm(&self) -> bool {
        self.container() == Some("Struct:BatchNorm")
    }
}

struct Lister {
    stack: PathStack,
    params: Vec<ParamInfo>,
}

impl ModuleVisitor for Lister {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.stack.exit(container_type);
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.stack.path();
        let shape = param.lazy_shape();
        let layer = self
            .stack
            .container()
            .and_then(|c| c.strip_prefix("Struct:"));
        self.params.push(ParamInfo {
            buffer: path.ends_with("running_mean") || path.ends_with("running_var"),
            path,
            id: param.id,
            numel: shape.num_elements(),
            shape: shape.to_vec(),
            layer: layer.map(str::to_string),
            trainable: param.val().is_require_grad(),
        });
    }
}

/// Every float parameter of `module`, in module order, with its PyTorch-style path.
pub fn parameters<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut lister = Lister {
        stack: PathStack::default(),
        params: Vec::new(),
    };
    module.visit(&mut lister);
    lister.params
}

/// Trainable vs frozen parameter values of `module`, buffers left out (on an autodiff
/// device; without autodiff no parameter tracks gradients).
pub fn param_counts<M: Module>(module: &M) -> ParamCounts {
    parameters(module)
        .iter()
        .filter(|p| !p.buffer)
        .fold(ParamCounts::default(), |mut c, p| {
            if p.trainable {
                c.trainable += p.numel;
            } else {
                c.frozen += p.numel;
            }
            c
        })
}

/// A compiled freeze pattern (glob, or `re:` regex).
#[derive(Debug, Clone)]
pub struct PathPattern {
    source: String,
    kind: PatternKind,
}

#[derive(Debug, Clone)]
enum PatternKind {
    Glob(String),
    Regex(Regex),
}

impl PathPattern {
    /// Parses `pattern`: a glob, or a regex after `re:`.
    pub fn new(pattern: &str) -> Result<Self, FinetuneError> {
        let kind = match pattern.strip_prefix("re:") {
            Some(re) => PatternKind::Regex(Regex::new(re).map_err(|e| {
                FinetuneError::Pattern(format!("invalid regex in pattern '{pattern}': {e}"))
            })?),
            None => PatternKind::Glob(pattern.to_string()),
        };
        Ok(Self {
            source: pattern.to_string(),
            kind,
        })
    }

    /// Whether the parameter `path` (or a module above it) matches.
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            PatternKind::Regex(re) => re.is_match(path),
            PatternKind::Glob(glob) => {
                wildcard_match(glob, path)
                    || path
                        .match_indices('.')
                        .any(|(i, _)| wildcard_match(glob, &path[..i]))
            }
        }
    }
}

fn compile(patterns: &[&str]) -> Result<Vec<PathPattern>, FinetuneError> {
    patterns.iter().map(|p| PathPattern::new(p)).collect()
}

/// Paths of `params` matched by `patterns`; a pattern that matches nothing is an error that
/// shows a few real paths.
fn select(params: &[ParamInfo], patterns: &[PathPattern]) -> Result<Vec<ParamId>, FinetuneError> {
    for p in patterns {
        if !params.iter().any(|i| p.matches(&i.path)) {
            let examples: Vec<&str> = params
                .iter()
                .map(|i| i.path.as_str())
                .step_by((params.len() / 6).max(1))
                .take(6)
                .collect();
            return Err(FinetuneError::Pattern(format!(
                "pattern '{}' matches no parameter; paths look like: {}",
                p.source,
                examples.join(", ")
            )));
        }
    }
    Ok(params
        .iter()
        .filter(|i| patterns.iter().any(|p| p.matches(&i.path)))
        .map(|i| i.id)
        .collect())
}

struct Setter {
    stack: PathStack,
    ids: Vec<ParamId>,
    patterns: Vec<PathPattern>,
    require_grad: bool,
    all_batchnorm_flags: bool,
    /// BatchNorm module paths whose weight is selected (their statistics follow).
    norm_paths: Vec<String>,
}

impl ModuleMapper for Setter {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.stack.exit(container_type);
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.ids.contains(&param.id) {
            if self.stack.in_batchnorm() {
                let path = self.stack.path();
                if let Some((module, _)) = path.rsplit_once('.') {
                    self.norm_paths.push(module.to_string());
                }
            }
            param.set_require_grad(self.require_grad)
        } else {
            param
        }
    }
    fn map_flag(&mut self, flag: Param<Flag>) -> Param<Flag> {
        let path = self.stack.path();
        let module = path.rsplit_once('.').map_or("", |(m, _)| m);
        let hit = (self.all_batchnorm_flags && self.stack.in_batchnorm())
            || self.norm_paths.iter().any(|p| p == module)
            || (!self.all_batchnorm_flags && self.patterns.iter().any(|p| p.matches(&path)));
        if hit {
            flag.with_value(self.require_grad)
        } else {
            flag
        }
    }
}

fn set<M: Module>(module: M, patterns: &[&str], require_grad: bool) -> Result<M, FinetuneError> {
    let patterns = compile(patterns)?;
    let ids = select(&parameters(&module), &patterns)?;
    let mut setter = Setter {
        stack: PathStack::default(),
        ids,
        patterns,
        require_grad,
        all_batchnorm_flags: false,
        norm_paths: Vec::new(),
    };
    Ok(module.map(&mut setter))
}

/// Freezes the parameters matching any of `patterns` (no gradients, no optimizer updates;
/// matched BatchNorms also stop updating their statistics). A pattern that matches nothing is
/// an error listing real paths.
///
/// ```
/// use burn::tensor::Device;
/// use kindling_finetune::{ModelOptions, create_model, freeze, param_counts};
///
/// let device = Device::flex().autodiff();
/// let model = create_model("resnet18", ModelOptions::default().num_classes(5), &device)?;
/// let model = freeze::freeze(model, &["*"])?;
/// let model = freeze::unfreeze(model, &["fc"])?;
/// assert_eq!(param_counts(&model).trainable, 512 * 5 + 5);
/// # Ok::<(), kindling_finetune::FinetuneError>(())
/// ```
pub fn freeze<M: Module>(module: M, patterns: &[&str]) -> Result<M, FinetuneError> {
    set(module, patterns, false)
}

/// Makes the parameters matching any of `patterns` trainable again (and their BatchNorms
/// update statistics again).
pub fn unfreeze<M: Module>(module: M, patterns: &[&str]) -> Result<M, FinetuneError> {
    set(module, patterns, true)
}

/// timm's `freeze_bn`: every BatchNorm normalises with (and keeps) its running statistics;
/// its `weight`/`bias` stay trainable unless frozen otherwise.
pub fn freeze_batchnorm<M: Module>(module: M) -> M {
    let mut setter = Setter {
        stack: PathStack::default(),
        ids: Vec::new(),
        patterns: Vec::new(),
        require_grad: false,
        all_batchnorm_flags: true,
        norm_paths: Vec::new(),
    };
    module.map(&mut setter)
}

/// A Burn [`ParamGroup`] of the parameters matching any of `patterns` (for a group learning
/// rate through `kindling_schedulers::GroupScheduler` / Burn's `ModuleOptimizer`).
pub fn param_group<M: Module>(module: &M, patterns: &[&str]) -> Result<ParamGroup, FinetuneError> {
    let patterns = compile(patterns)?;
    Ok(ParamGroup::from_ids(select(
        &parameters(module),
        &patterns,
    )?))
}

/// Layer-wise learning-rate decay (timm `param_groups_layer_decay`): `stages` are patterns
/// from input to output; stage `i` of `n` gets `lr × decay^(n - 1 - i)`, so the last (the
/// head) trains at `lr`. Parameters in no stage are an error, so nothing is left out silently.
pub fn layer_decay_groups<M: Module>(
    module: &M,
    stages: &[&str],
    lr: f64,
    decay: f64,
) -> Result<Vec<(ParamGroup, f64)>, FinetuneError> {
    let params = parameters(module);
    let patterns = compile(stages)?;
    let mut taken: Vec<ParamId> = Vec::new();
    let mut groups = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        let ids: Vec<ParamId> = select(&params, std::slice::from_ref(p))?
            .into_iter()
            .filter(|id| !taken.contains(id))
            .collect();
        taken.extend(ids.iter().copied());
        let rate = lr * decay.powi((patterns.len() - 1 - i) as i32);
        groups.push((ParamGroup::from_ids(ids), rate));
    }
    let left: Vec<&str> = params
        .iter()
        .filter(|p| !taken.contains(&p.id))
        .map(|p| p.path.as_str())
        .take(5)
        .collect();
    if !left.is_empty() {
        return Err(FinetuneError::Pattern(format!(
            "layer decay stages leave parameters out, e.g. {}",
            left.join(", ")
        )));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelOptions, create_model};
    use burn::tensor::Device;

    #[test]
    fn paths_read_like_the_torchvision_state_dict() {
        let device = Device::flex();
        let model = create_model("resnet18", ModelOptions::default(), &device).unwrap();
        let paths: Vec<String> = parameters(&model).into_iter().map(|p| p.path).collect();
        for want in [
            "conv1.weight",
            "bn1.weight",
            "layer1.0.downsample",
            "fc.bias",
        ] {
            if want == "layer1.0.downsample" {
                // resnet18's first stage keeps its width: no downsample there.
                assert!(!paths.iter().any(|p| p.starts_with(want)));
                continue;
            }
            assert!(
                paths.contains(&want.to_string()),
                "{want} missing in {paths:?}"
            );
        }
        assert!(paths.contains(&"layer2.0.downsample.1.weight".to_string()));
    }

    #[test]
    fn a_pattern_matching_nothing_lists_real_paths() {
        let device = Device::flex().autodiff();
        let model = create_model("resnet18", ModelOptions::default(), &device).unwrap();
        let err = freeze(model, &["layer9.*"]).unwrap_err().to_string();
        assert!(
            err.contains("layer9") && err.contains("conv1.weight"),
            "{err}"
        );
    }

    fn running_mean(model: &crate::ZooModel, path: &str) -> Vec<f32> {
        use burn_store::ModuleSnapshot;
        // Running statistics are per-thread until synchronised (as `valid()` does).
        let _ = model.valid();
        let t = model
            .collect(None, None, true)
            .into_iter()
            .find(|t| t.name == path)
            .unwrap();
        burn_store::bridge::to_data(&t)
            .unwrap()
            .try_to_vec()
            .unwrap()
    }

    #[test]
    fn frozen_layers_stop_their_batchnorm_statistics() {
        let device = Device::flex().autodiff();
        let model =
            create_model("resnet18", ModelOptions::default().num_classes(3), &device).unwrap();
        let model = freeze(model, &["layer[1-3]"]).unwrap();
        let counts = param_counts(&model);
        assert!(counts.frozen > 0 && counts.trainable > 0);
        let frozen_before = running_mean(&model, "layer1.0.bn1.running_mean");
        let free_before = running_mean(&model, "layer4.0.bn1.running_mean");
        let _ = model.forward(Tensor::<4>::ones([2, 3, 32, 32], &device));
        assert_eq!(
            frozen_before,
            running_mean(&model, "layer1.0.bn1.running_mean")
        );
        assert_ne!(
            free_before,
            running_mean(&model, "layer4.0.bn1.running_mean")
        );
    }

    #[test]
    fn groups_hold_exactly_the_matched_parameters() {
        let device = Device::flex();
        let model = create_model("resnet18", ModelOptions::default(), &device).unwrap();
        let params = parameters(&model);
        let head = param_group(&model, &["fc"]).unwrap();
        let in_head: Vec<&str> = params
            .iter()
            .filter(|p| head.matches(&p.id, None))
            .map(|p| p.path.as_str())
            .collect();
        assert_eq!(in_head, ["fc.weight", "fc.bias"]);

        let stages = ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"];
        let groups = layer_decay_groups(&model, &stages, 1.0, 0.5).unwrap();
        let rates: Vec<f64> = groups.iter().map(|(_, r)| *r).collect();
        assert_eq!(rates, [0.015625, 0.03125, 0.0625, 0.125, 0.25, 0.5, 1.0]);
        let err = layer_decay_groups(&model, &stages[1..], 1.0, 0.5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("conv1.weight"), "{err}");
    }
}
