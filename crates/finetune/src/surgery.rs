//! Head and stem surgery for **any** Burn module, by parameter path: a new classifier of
//! another size, a first convolution adapted to other input channels. The zoo does the same
//! through [`crate::ZooModel::reset_classifier`] and `in_chans`; these reach a user's own
//! model or an ONNX import, whose layers are Burn's `Linear`/`Conv2d` or Kindling's.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Distribution, Tensor, TensorData};

use crate::FinetuneError;
use crate::freeze::{PathStack, parameters};
use crate::weights::adapt_input_conv;

/// What to do with one parameter of the target layer.
enum Edit {
    Keep,
    /// New values (same rank).
    Values(TensorData),
    /// A fresh parameter of this shape, uniform in ±bound (drawn on the parameter's device, so
    /// `device.seed` makes it reproducible).
    Fresh(Vec<usize>, f64),
}

type EditFn<'a> = dyn FnMut(&str, &str, Vec<usize>, TensorData) -> Edit + 'a;

struct Surgeon<'a, 'b> {
    stack: PathStack,
    target: &'a str,
    edit: &'a mut EditFn<'b>,
    changed: Vec<String>,
}

impl ModuleMapper for Surgeon<'_, '_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, container_type: &str) {
        self.stack.exit(container_type);
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let path = self.stack.path();
        let Some(field) = path
            .strip_prefix(self.target)
            .and_then(|rest| rest.strip_prefix('.'))
        else {
            return param;
        };
        let container = self.stack.container().unwrap_or("").to_string();
        let value = param.val();
        let device = value.device();
        let shape = value.dims().to_vec();
        let tensor = match (self.edit)(field, &container, shape, value.into_data()) {
            Edit::Keep => return param,
            Edit::Values(data) => Tensor::<D>::from_data(data, &device),
            Edit::Fresh(shape, bound) => {
                let shape: [usize; D] = match shape.try_into() {
                    Ok(s) => s,
                    Err(_) => return param,
                };
                Tensor::<D>::random(shape, Distribution::Uniform(-bound, bound), &device)
            }
        };
        self.changed.push(path);
        // A new parameter (new id): optimizer state for the old shape must not follow.
        Param::from_tensor(tensor)
    }
}

fn operate<M: Module>(
    module: M,
    target: &str,
    edit: &mut EditFn<'_>,
) -> Result<(M, Vec<String>), FinetuneError> {
    let paths: Vec<String> = parameters(&module).into_iter().map(|p| p.path).collect();
    if !paths.iter().any(|p| p.starts_with(&format!("{target}."))) {
        let examples: Vec<&str> = paths
            .iter()
            .map(String::as_str)
            .step_by((paths.len() / 6).max(1))
            .take(6)
            .collect();
        return Err(FinetuneError::Pattern(format!(
            "no layer at '{target}'; parameter paths look like: {}",
            examples.join(", ")
        )));
    }
    let mut surgeon = Surgeon {
        stack: PathStack::default(),
        target,
        edit,
        changed: Vec::new(),
    };
    let module = module.map(&mut surgeon);
    Ok((module, surgeon.changed))
}

/// Replaces the classifier layer at `path` (`"fc"`, `"classifier.3"`, `"head"`) — a `Linear`
/// (Burn's or Kindling's) or a 1×1 `Conv2d` — by a fresh one with `num_classes` outputs,
/// initialised as PyTorch initialises a new layer (uniform in ±1/sqrt(fan_in)). Returns the
/// module and the replaced parameter paths.
pub fn replace_classifier<M: Module>(
    module: M,
    path: &str,
    num_classes: usize,
) -> Result<(M, Vec<String>), FinetuneError> {
    if num_classes == 0 {
        return Err(FinetuneError::Pattern(
            "replace_classifier needs num_classes ≥ 1 (a generic module cannot drop a layer; \
             zoo models take reset_classifier(0))"
                .into(),
        ));
    }
    let mut fan_in = None;
    let mut edit = |field: &str, container: &str, shape: Vec<usize>, _old: TensorData| {
        let linear = container == "Struct:Linear";
        match (field, shape.len()) {
            ("weight", 2) if linear => {
                fan_in = Some(shape[0]);
                Edit::Fresh(vec![shape[0], num_classes], 1.0 / (shape[0] as f64).sqrt())
            }
            ("weight", 4) => {
                let f = shape[1] * shape[2] * shape[3];
                fan_in = Some(f);
                let new = vec![num_classes, shape[1], shape[2], shape[3]];
                Edit::Fresh(new, 1.0 / (f as f64).sqrt())
            }
            // Parameters come in order (weight, then bias), so the fan-in is known here.
            ("bias", 1) => Edit::Fresh(
                vec![num_classes],
                1.0 / (fan_in.unwrap_or(shape[0]) as f64).sqrt(),
            ),
            _ => Edit::Keep,
        }
    };
    operate(module, path, &mut edit)
}

/// Adapts the first convolution at `path` (`"conv1"`, `"features.0.0"`) to `in_chans`
/// input channels with timm's `adapt_input_conv`: its pretrained RGB filters summed for 1
/// channel, repeated and scaled by 3 / C otherwise.
pub fn adapt_first_conv<M: Module>(
    module: M,
    path: &str,
    in_chans: usize,
) -> Result<(M, Vec<String>), FinetuneError> {
    if in_chans == 0 {
        return Err(FinetuneError::Pattern(
            "in_chans = 0: a model needs an input channel".into(),
        ));
    }
    let mut failure = None;
    let mut edit = |field: &str, _container: &str, shape: Vec<usize>, old: TensorData| {
        if field != "weight" || shape.len() != 4 || shape[1] == in_chans {
            return Edit::Keep;
        }
        match adapt_input_conv(in_chans, &old) {
            Ok(data) => Edit::Values(data),
            Err(e) => {
                failure = Some(e);
                Edit::Keep
            }
        }
    };
    let out = operate(module, path, &mut edit)?;
    match failure {
        Some(message) => Err(FinetuneError::Pattern(format!("{path}: {message}"))),
        None => Ok(out),
    }
}

/// A layer of a module as [`linear_and_conv_layers`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Its module path (`submodule4.linear1`, `conv1`).
    pub path: String,
    /// `Linear` or `Conv2d`.
    pub kind: String,
    /// Its weight's shape (Burn's: `[in, out]` for `Linear`, `[out, in, kh, kw]` for a conv).
    pub weight: Vec<usize>,
}

impl Layer {
    /// Outputs (`Linear`) or output channels (conv).
    pub fn outputs(&self) -> usize {
        match self.kind.as_str() {
            "Linear" => self.weight.get(1).copied().unwrap_or(0),
            _ => self.weight.first().copied().unwrap_or(0),
        }
    }

    /// Inputs (`Linear`) or input channels per group (conv).
    pub fn inputs(&self) -> usize {
        match self.kind.as_str() {
            "Linear" => self.weight.first().copied().unwrap_or(0),
            _ => self.weight.get(1).copied().unwrap_or(0),
        }
    }
}

/// The `Linear` and `Conv2d` layers of `module` in module order: where a module that is not
/// in the zoo (an ONNX import, a user's own) has its classifier (usually the last) and its
/// stem (the first conv).
pub fn linear_and_conv_layers<M: Module>(module: &M) -> Vec<Layer> {
    parameters(module)
        .into_iter()
        .filter_map(|p| {
            let kind = p.layer?;
            let path = p.path.strip_suffix(".weight")?.to_string();
            let rank = if kind == "Linear" { 2 } else { 4 };
            (matches!(kind.as_str(), "Linear" | "Conv2d") && p.shape.len() == rank).then_some(
                Layer {
                    path,
                    kind,
                    weight: p.shape,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ModelOptions, create_model};
    use burn::tensor::Device;

    /// A user's model built from Burn's own layers, not the zoo's.
    #[derive(Module, Debug)]
    struct Net {
        stem: burn::nn::conv::Conv2d,
        head: burn::nn::Linear,
    }

    #[test]
    fn a_plain_burn_module_gets_a_new_head_and_stem() {
        let device = Device::flex();
        let net = Net {
            stem: burn::nn::conv::Conv2dConfig::new([3, 4], [3, 3]).init(&device),
            head: burn::nn::LinearConfig::new(4, 10).init(&device),
        };
        let (net, changed) = replace_classifier(net, "head", 3).unwrap();
        assert_eq!(changed, ["head.weight", "head.bias"]);
        assert_eq!(net.head.weight.dims(), [4, 3]);
        let (net, changed) = adapt_first_conv(net, "stem", 1).unwrap();
        assert_eq!(changed, ["stem.weight"]);
        assert_eq!(net.stem.weight.dims(), [4, 1, 3, 3]);
        let layers = linear_and_conv_layers(&net);
        let found: Vec<(&str, &str, usize, usize)> = layers
            .iter()
            .map(|l| (l.path.as_str(), l.kind.as_str(), l.inputs(), l.outputs()))
            .collect();
        assert_eq!(found, [("stem", "Conv2d", 1, 4), ("head", "Linear", 4, 3)]);
        let err = replace_classifier(net, "fc", 3).unwrap_err().to_string();
        assert!(
            err.contains("no layer at 'fc'") && err.contains("head.weight"),
            "{err}"
        );
    }

    #[test]
    fn an_adapted_zoo_stem_sees_grey_as_rgb() {
        let device = Device::flex();
        let model = create_model("resnet18", ModelOptions::default(), &device).unwrap();
        let (grey, _) = adapt_first_conv(model.clone(), "conv1", 1).unwrap();
        let (grey, _) = replace_classifier(grey, "fc", 5).unwrap();
        assert_eq!(
            grey.forward(Tensor::<4>::ones([1, 1, 32, 32], &device))
                .dims(),
            [1, 5]
        );
        let a = grey.forward_features(Tensor::<4>::ones([1, 1, 32, 32], &device));
        let b = model.forward_features(Tensor::<4>::ones([1, 3, 32, 32], &device));
        let (a, b) = (a.into_map(), b.into_map());
        let diff: f32 = (a - b).abs().max().into_scalar();
        assert!(diff < 1e-4, "{diff}");
    }
}
