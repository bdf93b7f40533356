//! The local weights cache: `pretrained = true` never touches the network.
//!
//! Layout: `<root>/hub/<architecture>.<tag>/<file name of the hub id>`, where `<root>` is
//! `$KINDLING_HOME` or else `~/.cache/kindling`; e.g.
//! `~/.cache/kindling/hub/resnet18.tv_in1k/resnet18-f37072fd.pth`.
//!
//! With the `download` feature, a missing file is fetched from its hub id first ([`download`]).

use std::path::{Path, PathBuf};

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

/// The cached file (downloaded first with the `download` feature), or an error naming the
/// expected path and the download address.
pub fn resolve(architecture: &str, weights: &Weights) -> Result<PathBuf, FinetuneError> {
    let path = cached_path(architecture, weights);
    if path.is_file() {
        return Ok(path);
    }
    #[cfg(feature = "download")]
    {
        download(weights.url, &path)?;
        return Ok(path);
    }
    #[cfg(not(feature = "download"))]
    Err(FinetuneError::NotCached {
        model: format!("{architecture}.{}", weights.tag),
        path,
        url: weights.url.to_string(),
    })
}

/// torch.hub's `check_hash` convention: a file named `name-<hex>.ext` carries the first hex
/// digits of its SHA-256.
pub fn expected_hash_prefix(path: &Path) -> Option<String> {
    let stem = path.file_stem()?.to_str()?;
    let (_, hash) = stem.rsplit_once('-')?;
    (hash.len() >= 6 && hash.chars().all(|c| c.is_ascii_hexdigit())).then(|| hash.to_lowercase())
}

/// Downloads `url` to `path` (temporary file, SHA-256 prefix check, then rename).
#[cfg(feature = "download")]
pub fn download(url: &str, path: &Path) -> Result<(), FinetuneError> {
    use sha2::{Digest, Sha256};
    use std::io::{Read, Write};

    let fail = |message: String| FinetuneError::Download {
        url: url.to_string(),
        path: path.to_path_buf(),
        message,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    let response = ureq::get(url).call().map_err(|e| fail(e.to_string()))?;
    let mut reader = response.into_body().into_reader();
    let tmp = path.with_extension("part");
    let mut file = std::fs::File::create(&tmp).map_err(|e| fail(e.to_string()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).map_err(|e| fail(e.to_string()))?;
    }
    file.sync_all().map_err(|e| fail(e.to_string()))?;
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(prefix) = expected_hash_prefix(path)
        && !digest.starts_with(&prefix)
    {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(format!(
            "SHA-256 {digest} does not start with {prefix}"
        )));
    }
    std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_prefix_follows_torch_hub_names() {
        let p = Path::new("/x/resnet18-f37072fd.pth");
        assert_eq!(expected_hash_prefix(p).as_deref(), Some("f37072fd"));
        assert_eq!(
            expected_hash_prefix(Path::new("/x/model.safetensors")),
            None
        );
        assert_eq!(
            expected_hash_prefix(Path::new("/x/wide_resnet50_2-zz.pth")),
            None
        );
    }
}
