#!/usr/bin/env bash
# A program outside the workspace that depends on `kindling` by path: examples/train_custom.rs
# as its main.rs, built and run. Proves that the public API (the facade alone) is enough to
# train your own model with the Trainer.
#
# It starts from the workspace's Cargo.lock (same versions) and dev-profile settings, so with the shared
# CARGO_TARGET_DIR cargo reuses the dependencies the tests already built.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/src"
cp "$root/examples/train_custom.rs" "$dir/src/main.rs"
cp "$root/Cargo.lock" "$dir/Cargo.lock"
burn_version=$(grep -E '^burn = ' "$root/Cargo.toml" | sed -E 's/.*version = "([^"]+)".*/\1/')
cat > "$dir/Cargo.toml" <<TOML
[package]
name = "my-trainer"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
kindling = { path = "$root/crates/kindling" }
burn = { version = "$burn_version", default-features = false, features = ["std", "autodiff", "optim", "rayon", "simd"] }
anyhow = "1"
serde_json = { version = "1", features = ["preserve_order", "float_roundtrip"] }

$(sed -n '/^\[profile/,$p' "$root/Cargo.toml")
TOML
cd "$dir"
cargo build --quiet --offline 2>/dev/null || cargo build --quiet
"${CARGO_TARGET_DIR:-$dir/target}/debug/my-trainer"
echo "external project: trained with kindling from a path dependency"
