//! [`Named`]: a sequence of child modules visited under torchvision's own names.

use burn::module::{
    Content, Devices, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor,
};
use burn::tensor::Device;

/// A `Sequential` whose children have names a derived `Vec` field cannot produce:
/// `OrderedDict` keys that are not Rust identifiers (RegNet's `block1-0`) or numbered from 1
/// with a prefix (DenseNet's `denselayer1`, ViT's `encoder_layer_0`). Each entry is visited
/// under its own name, so the module paths are torchvision's keys both ways: loading needs no
/// renaming and saved files load in PyTorch.
#[derive(Debug, Clone)]
pub struct Named<T> {
    entries: Vec<(String, T)>,
}

impl<T> Named<T> {
    /// A sequence of named children.
    pub fn new(entries: Vec<(String, T)>) -> Self {
        Self { entries }
    }

    /// Children numbered `prefix{first}`, `prefix{first + 1}`, …
    pub fn numbered(prefix: &str, first: usize, modules: Vec<T>) -> Self {
        let entries = modules
            .into_iter()
            .enumerate()
            .map(|(i, m)| (format!("{prefix}{}", first + i), m))
            .collect();
        Self { entries }
    }

    /// The children in order.
    pub fn modules(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(_, m)| m)
    }

    fn map_each(self, mut f: impl FnMut(&str, T) -> T) -> Self {
        let entries = self
            .entries
            .into_iter()
            .map(|(n, m)| {
                let m = f(&n, m);
                (n, m)
            })
            .collect();
        Self { entries }
    }
}

impl<T: Module> Module for Named<T> {
    fn collect_devices(&self, devices: Devices) -> Devices {
        self.modules().fold(devices, |d, m| m.collect_devices(d))
    }

    fn fork(self, device: &Device) -> Self {
        self.map_each(|_, m| m.fork(device))
    }

    fn to_device(self, device: &Device) -> Self {
        self.map_each(|_, m| m.to_device(device))
    }

    fn train(self) -> Self {
        self.map_each(|_, m| m.train())
    }

    fn valid(&self) -> Self {
        let entries = self
            .entries
            .iter()
            .map(|(n, m)| (n.clone(), m.valid()))
            .collect();
        Self { entries }
    }

    fn materialize(self) -> Self {
        self.map_each(|_, m| m.materialize())
    }

    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        for (name, m) in &self.entries {
            visitor.enter_module(name, "Vec");
            m.visit(visitor);
            visitor.exit_module(name, "Vec");
        }
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        self.map_each(|name, m| {
            mapper.enter_module(name, "Vec");
            let m = m.map(mapper);
            mapper.exit_module(name, "Vec");
            m
        })
    }
}

impl<T: Module + ModuleDisplay> ModuleDisplayDefault for Named<T> {
    fn content(&self, content: Content) -> Option<Content> {
        self.entries
            .iter()
            .fold(content, |acc, (n, m)| acc.add(n, m))
            .set_top_level_type("Sequential")
            .optional()
    }

    fn num_params(&self) -> usize {
        Module::num_params(self)
    }
}

impl<T: Module + ModuleDisplay> ModuleDisplay for Named<T> {}
