//! The local weights cache: `pretrained = true` never touches the network.
//!
//! Layout: `<root>/hub/<architecture>.<tag>/<file name of the hub id>`, where `<root>` is
//! `$KINDLING_HOME` or else `~/.cache/kindling`; e.g.
//! `~/.cache/kindling/hub/resnet18.tv_in1k/resnet18-f37072fd.pth`.

use std::path::PathBuf;

use crate::{FinetuneError, Weights};

/// `$KINDLING_HOME/hub`, else `~/.cache/kindling/hub`.
pub fn cache_dir() -> PathBuf {
    let root = match std::env::var_os("KINDLING_HOME") {
        Some(home) => PathBuf::from(home),
        None => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".cache")
            .join("kindling"),
    };
    root.join("hub")
}

/// Where the file of `architecture.tag` is looked for.
pub fn cached_path(architecture: &str, weights: &Weights) -> PathBuf {
    let file = weights.url.rsplit('/').next().unwrap_or(weights.url);
    cache_dir()
        .join(format!("{architecture}.{}", weights.tag))
        .join(file)
}

/// The cached file, or an error naming the expected path and the download address.
pub fn resolve(architecture: &str, weights: &Weights) -> Result<PathBuf, FinetuneError> {
    let path = cached_path(architecture, weights);
    if path.is_file() {
        return Ok(path);
    }
    Err(FinetuneError::NotCached {
        model: format!("{architecture}.{}", weights.tag),
        path,
        url: weights.url.to_string(),
    })
}
