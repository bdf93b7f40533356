//! timm's registry: each family file lists its builders with their pretrained configurations
//! ([`ModelEntry`]), and `list_models` / `create_model` / `pretrained_cfg` read those lists.

use std::path::PathBuf;

use burn::tensor::Device;

use crate::model::{BuildOptions, GlobalPool, ZooModel};
use crate::{FinetuneError, hub, weights};

/// The families: one line each. A family's file owns its names and configurations.
const FAMILIES: &[&[ModelEntry]] = &[
    crate::models::resnet::MODELS,
    crate::models::mobilenet::MODELS,
    crate::models::efficientnet::MODELS,
    crate::models::regnet::MODELS,
    crate::models::convnext::MODELS,
    crate::models::vit::MODELS,
    crate::models::vgg::MODELS,
    crate::models::squeezenet::MODELS,
    crate::models::densenet::MODELS,
    crate::models::shufflenet::MODELS,
];

/// ImageNet's channel means (timm `IMAGENET_DEFAULT_MEAN`).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet's channel standard deviations (timm `IMAGENET_DEFAULT_STD`).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// Resampling of the eval transform's resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// PIL bilinear (torchvision's default).
    Bilinear,
    /// PIL bicubic.
    Bicubic,
}

/// One builder of the registry.
#[derive(Debug)]
pub struct ModelEntry {
    /// The builder name (`resnet18`), torchvision's.
    pub name: &'static str,
    /// Builds the architecture (no weights).
    pub build: Builder,
    /// `state_dict` prefix of the first convolution (timm `first_conv`).
    pub first_conv: &'static str,
    /// `state_dict` prefix of the classifier (timm `classifier`).
    pub classifier: &'static str,
    /// Its pretrained weights, the default first.
    pub weights: &'static [Weights],
    /// Regex rules mapping older `state_dict` keys of the family onto the current ones
    /// (DenseNet's `norm.1` → `norm1`); applied before loading.
    pub key_rules: &'static [(&'static str, &'static str)],
}

/// A builder function of the registry.
pub type Builder = fn(&BuildOptions, &Device) -> Result<ZooModel, FinetuneError>;

/// What a family's entries share: the key prefixes of the first convolution and of the
/// classifier, and the key rules. Each family file holds one and makes its entries with
/// [`Family::entry`].
#[derive(Debug, Clone, Copy)]
pub struct Family {
    first_conv: &'static str,
    classifier: &'static str,
    key_rules: &'static [(&'static str, &'static str)],
}

impl Family {
    /// A family whose `state_dict` keys need no rules.
    pub const fn new(first_conv: &'static str, classifier: &'static str) -> Self {
        Self {
            first_conv,
            classifier,
            key_rules: &[],
        }
    }

    /// The same with regex rules for older keys.
    pub const fn with_key_rules(self, key_rules: &'static [(&'static str, &'static str)]) -> Self {
        Self { key_rules, ..self }
    }

    /// One builder of the family with its pretrained weights (the default first).
    pub const fn entry(
        &self,
        name: &'static str,
        build: Builder,
        weights: &'static [Weights],
    ) -> ModelEntry {
        ModelEntry {
            name,
            build,
            first_conv: self.first_conv,
            classifier: self.classifier,
            weights,
            key_rules: self.key_rules,
        }
    }
}

/// One pretrained tag of a model: where the file comes from and how its inputs were prepared.
#[derive(Debug, Clone, Copy)]
pub struct Weights {
    /// timm-style tag (`tv_in1k` for torchvision's `IMAGENET1K_V1`, `tv2_in1k` for `V2`).
    pub tag: &'static str,
    /// Download address (the hub id).
    pub url: &'static str,
    /// Eval crop size.
    pub input_size: usize,
    /// `input_size / resize size` of the eval transform.
    pub crop_pct: f64,
    /// Resize interpolation.
    pub interpolation: Interpolation,
    /// Classes the weights were trained on.
    pub num_classes: usize,
    /// Licence of the weights.
    pub license: &'static str,
}

impl Weights {
    /// torchvision's `IMAGENET1K_V1` with its most common transform: crop 224 after a
    /// bilinear resize to 256.
    pub const fn tv_in1k(url: &'static str) -> Self {
        Self::torchvision("tv_in1k", url, 224, 256, Interpolation::Bilinear)
    }

    /// torchvision's `IMAGENET1K_V2` with its most common transform: crop 224 after a
    /// bilinear resize to 232.
    pub const fn tv2_in1k(url: &'static str) -> Self {
        Self::torchvision("tv2_in1k", url, 224, 232, Interpolation::Bilinear)
    }

    /// torchvision ImageNet-1k weights with their `ImageClassification(crop, resize, interp)`.
    pub const fn torchvision(
        tag: &'static str,
        url: &'static str,
        crop: usize,
        resize: usize,
        interpolation: Interpolation,
    ) -> Self {
        Self {
            tag,
            url,
            input_size: crop,
            crop_pct: crop as f64 / resize as f64,
            interpolation,
            num_classes: 1000,
            license: "bsd-3-clause",
        }
    }
}

/// timm's `pretrained_cfg`: everything needed to prepare inputs and place the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainedCfg {
    /// `name.tag`.
    pub name: String,
    /// Architecture.
    pub architecture: &'static str,
    /// Tag.
    pub tag: &'static str,
    /// `[channels, height, width]`.
    pub input_size: [usize; 3],
    /// Resize interpolation.
    pub interpolation: Interpolation,
    /// `input_size / resize size`.
    pub crop_pct: f64,
    /// Always `"center"` for the torchvision weights.
    pub crop_mode: &'static str,
    /// Channel means.
    pub mean: [f64; 3],
    /// Channel standard deviations.
    pub std: [f64; 3],
    /// Classes of the weights.
    pub num_classes: usize,
    /// First convolution's key prefix.
    pub first_conv: &'static str,
    /// Classifier's key prefix.
    pub classifier: &'static str,
    /// Hub id (download address).
    pub hub_id: &'static str,
    /// Licence.
    pub license: &'static str,
}

/// ImageNet-1k's class names in index order (torchvision's `_IMAGENET_CATEGORIES`).
const IMAGENET_CLASSES: &str = include_str!("imagenet_classes.txt");

impl PretrainedCfg {
    /// The class names of the weights' label set, when known (ImageNet-1k tags).
    pub fn label_names(&self) -> Option<Vec<&'static str>> {
        (self.num_classes == 1000 && self.tag.ends_with("in1k"))
            .then(|| IMAGENET_CLASSES.lines().collect())
    }
}

/// Which weights [`create_model`] loads.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Pretrained {
    /// Fresh initialisation.
    #[default]
    No,
    /// The model's default tag (or the tag of a `name.tag` name), from the local cache.
    Yes,
    /// This file (`.pth`/`.pt`, `.safetensors` or `.bpk`).
    File(PathBuf),
}

/// timm's `create_model` keyword arguments.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Weights to load.
    pub pretrained: Pretrained,
    /// Classifier outputs (`None`: the weights' classes, 1000 for ImageNet; 0: no classifier).
    pub num_classes: Option<usize>,
    /// Input channels; the first convolution of 3-channel weights is adapted as timm does.
    pub in_chans: usize,
    /// Dropout before the classifier (`None`: the architecture's default).
    pub drop_rate: Option<f64>,
    /// Stochastic depth (`None`: the architecture's default).
    pub drop_path_rate: Option<f64>,
    /// Pooling before the classifier.
    pub global_pool: GlobalPool,
    /// Refuse weights with missing, unexpected or mis-shaped keys (default `true`).
    pub strict: bool,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            pretrained: Pretrained::No,
            num_classes: None,
            in_chans: 3,
            drop_rate: None,
            drop_path_rate: None,
            global_pool: GlobalPool::Avg,
            strict: true,
        }
    }
}

impl ModelOptions {
    /// `pretrained = true`: the default (or named) tag from the local cache.
    pub fn pretrained(mut self, yes: bool) -> Self {
        self.pretrained = if yes { Pretrained::Yes } else { Pretrained::No };
        self
    }
    /// Loads weights from `path`.
    pub fn pretrained_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.pretrained = Pretrained::File(path.into());
        self
    }
    /// Sets the classifier outputs.
    pub fn num_classes(mut self, n: usize) -> Self {
        self.num_classes = Some(n);
        self
    }
    /// Sets the input channels.
    pub fn in_chans(mut self, n: usize) -> Self {
        self.in_chans = n;
        self
    }
    /// Sets the classifier dropout.
    pub fn drop_rate(mut self, p: f64) -> Self {
        self.drop_rate = Some(p);
        self
    }
    /// Sets the stochastic-depth rate.
    pub fn drop_path_rate(mut self, p: f64) -> Self {
        self.drop_path_rate = Some(p);
        self
    }
    /// Sets the pooling before the classifier.
    pub fn global_pool(mut self, pool: GlobalPool) -> Self {
        self.global_pool = pool;
        self
    }
    /// Sets strict loading.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }
}

fn entries() -> impl Iterator<Item = &'static ModelEntry> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// Splits `name.tag` (timm `split_model_name_tag`).
pub fn split_name_tag(name: &str) -> (&str, Option<&str>) {
    match name.split_once('.') {
        Some((n, t)) => (n, Some(t)),
        None => (name, None),
    }
}

/// The registry entry of an architecture name (`resnet18`, or `resnet18.tv_in1k`).
pub fn model_entry(name: &str) -> Result<&'static ModelEntry, FinetuneError> {
    let (arch, _) = split_name_tag(name);
    entries()
        .find(|e| e.name == arch)
        .ok_or_else(|| FinetuneError::UnknownModel {
            name: name.to_string(),
            suggestion: closest(arch, entries().map(|e| e.name)),
        })
}

fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

fn weights_of(
    name: &str,
) -> Result<(&'static ModelEntry, Option<&'static Weights>), FinetuneError> {
    let entry = model_entry(name)?;
    let (_, tag) = split_name_tag(name);
    match tag {
        None => Ok((entry, entry.weights.first())),
        Some(tag) => match entry.weights.iter().find(|w| w.tag == tag) {
            Some(w) => Ok((entry, Some(w))),
            None => Err(FinetuneError::UnknownTag {
                model: entry.name.to_string(),
                tag: tag.to_string(),
                available: entry.weights.iter().map(|w| w.tag.to_string()).collect(),
            }),
        },
    }
}

/// timm's `pretrained_cfg` of `name` or `name.tag` (the default tag when none is given).
///
/// ```
/// let cfg = kindling_finetune::pretrained_cfg("resnet18").unwrap();
/// assert_eq!(cfg.input_size, [3, 224, 224]);
/// assert_eq!(cfg.classifier, "fc");
/// ```
pub fn pretrained_cfg(name: &str) -> Result<PretrainedCfg, FinetuneError> {
    let (entry, weights) = weights_of(name)?;
    let w = weights.ok_or_else(|| FinetuneError::NoPretrained(entry.name.to_string()))?;
    Ok(PretrainedCfg {
        name: format!("{}.{}", entry.name, w.tag),
        architecture: entry.name,
        tag: w.tag,
        input_size: [3, w.input_size, w.input_size],
        interpolation: w.interpolation,
        crop_pct: w.crop_pct,
        crop_mode: "center",
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        num_classes: w.num_classes,
        first_conv: entry.first_conv,
        classifier: entry.classifier,
        hub_id: w.url,
        license: w.license,
    })
}

/// timm's `list_models`: names matching any of `filters` (shell wildcards `*`, `?`, `[..]`;
/// none = all) and none of `exclude`, in natural order. With `pretrained`, only names with
/// weights, listed as `name.tag` (a filter without a tag also matches every tag).
///
/// ```
/// let names = kindling_finetune::list_models(&["resnet1*"], &[], false);
/// assert_eq!(names, ["resnet18", "resnet101", "resnet152"]);
/// ```
pub fn list_models(filters: &[&str], exclude: &[&str], pretrained: bool) -> Vec<String> {
    let expand = |fs: &[&str]| -> Vec<String> {
        fs.iter()
            .flat_map(|f| {
                if pretrained && split_name_tag(f).1.is_none() {
                    vec![format!("{f}.*"), f.to_string()]
                } else {
                    vec![f.to_string()]
                }
            })
            .collect()
    };
    let (include, exclude) = (expand(filters), expand(exclude));
    let mut names: Vec<String> = if pretrained {
        entries()
            .flat_map(|e| {
                e.weights
                    .iter()
                    .map(move |w| format!("{}.{}", e.name, w.tag))
            })
            .collect()
    } else {
        entries().map(|e| e.name.to_string()).collect()
    };
    names.retain(|n| {
        (include.is_empty() || include.iter().any(|f| wildcard_match(f, n)))
            && !exclude.iter().any(|f| wildcard_match(f, n))
    });
    names.sort_by_key(|n| natural_key(n));
    names.dedup();
    names
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum KeyPart {
    Num(u128),
    Text(String),
}

/// timm's `_natural_key`: digit runs compare as numbers (`resnet18` < `resnet101`).
fn natural_key(s: &str) -> Vec<KeyPart> {
    let mut parts = Vec::new();
    let mut rest = s.to_lowercase();
    while !rest.is_empty() {
        let digits = rest.chars().next().is_some_and(|c| c.is_ascii_digit());
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digits)
            .unwrap_or(rest.len());
        let run: String = rest.drain(..end).collect();
        parts.push(match run.parse() {
            Ok(n) if digits => KeyPart::Num(n),
            _ => KeyPart::Text(run),
        });
    }
    parts
}

/// Python `fnmatch` (case-sensitive on POSIX): `*`, `?`, `[seq]`, `[!seq]`.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(close) = p.iter().skip(2).position(|&c| c == ']').map(|i| i + 2) else {
                    return n.first() == Some(&'[') && go(&p[1..], &n[1..]);
                };
                let Some(&c) = n.first() else { return false };
                let (negate, set) = match p[1] {
                    '!' => (true, &p[2..close]),
                    _ => (false, &p[1..close]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[close + 1..], &n[1..])
            }
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// timm's `create_model`: builds `name` (or `name.tag`) with `options`, then loads its
/// weights when asked: the classifier is re-initialised when `num_classes` differs from the
/// weights', and the first convolution is adapted when `in_chans` is not 3.
///
/// ```
/// use burn::tensor::{Device, Tensor};
/// use kindling_finetune::{ModelOptions, create_model};
///
/// let device = Device::flex();
/// let model = create_model("resnet18", ModelOptions::default().num_classes(10).in_chans(1), &device)?;
/// let logits = model.forward(Tensor::<4>::zeros([2, 1, 64, 64], &device));
/// assert_eq!(logits.dims(), [2, 10]);
/// # Ok::<(), kindling_finetune::FinetuneError>(())
/// ```
pub fn create_model(
    name: &str,
    options: ModelOptions,
    device: &Device,
) -> Result<ZooModel, FinetuneError> {
    let (entry, weights) = weights_of(name)?;
    let invalid = |message: String| FinetuneError::InvalidOption {
        model: entry.name.to_string(),
        message,
    };
    if options.in_chans == 0 {
        return Err(invalid(
            "in_chans = 0: a model needs at least one input channel".into(),
        ));
    }
    for (what, p) in [
        ("drop_rate", options.drop_rate),
        ("drop_path_rate", options.drop_path_rate),
    ] {
        if let Some(p) = p
            && !(0.0..1.0).contains(&p)
        {
            return Err(invalid(format!(
                "{what} = {p}: expected a probability in [0, 1)"
            )));
        }
    }
    let build = BuildOptions {
        num_classes: options
            .num_classes
            .unwrap_or(weights.map_or(1000, |w| w.num_classes)),
        in_chans: options.in_chans,
        drop_rate: options.drop_rate,
        drop_path_rate: options.drop_path_rate,
        global_pool: options.global_pool,
    };
    let mut model = (entry.build)(&build, device)?;
    let file = match &options.pretrained {
        Pretrained::No => return Ok(model),
        Pretrained::File(path) => path.clone(),
        Pretrained::Yes => {
            let w = weights.ok_or_else(|| FinetuneError::NoPretrained(entry.name.to_string()))?;
            hub::resolve(entry.name, w)?
        }
    };
    let tensors = weights::read_file(&file)?;
    let options = weights::LoadOptions {
        strict: options.strict,
        source_name: file.display().to_string(),
    };
    weights::load_into(&mut model, entry, tensors, &options)?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_sort_puts_18_before_101() {
        let mut v = vec!["resnet101", "resnet18", "resnet152", "resnet34"];
        v.sort_by_key(|n| natural_key(n));
        assert_eq!(v, ["resnet18", "resnet34", "resnet101", "resnet152"]);
    }

    #[test]
    fn wildcards_follow_fnmatch() {
        assert!(wildcard_match("resnet*", "resnet18"));
        assert!(wildcard_match("resnet?8", "resnet18"));
        assert!(wildcard_match("resnet[1-3]*", "resnet34"));
        assert!(!wildcard_match("resnet[!1-3]*", "resnet34"));
        assert!(!wildcard_match("resnet", "resnet18"));
    }

    #[test]
    fn unknown_model_suggests_the_closest() {
        let err = model_entry("resnet19").unwrap_err().to_string();
        assert!(err.contains("did you mean 'resnet18'"), "{err}");
    }
}
