//! Copies the module named by `KINDLING_ONNX_MODULE` (set by `cargo xtask train finetune
//! --onnx DIR`) into `OUT_DIR` and turns on `imported_module`; without it the binary only
//! explains how it is meant to be built.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(imported_module)");
    println!("cargo::rerun-if-env-changed=KINDLING_ONNX_MODULE");
    let Some(module) = std::env::var_os("KINDLING_ONNX_MODULE") else {
        return;
    };
    let module = Path::new(&module);
    println!("cargo::rerun-if-changed={}", module.display());
    let out =
        Path::new(&std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("imported.rs");
    if let Err(e) = std::fs::copy(module, &out) {
        panic!("cannot copy the imported module {}: {e}", module.display());
    }
    println!("cargo::rustc-cfg=imported_module");
    println!("cargo::rustc-env=KINDLING_ONNX_MODULE={}", module.display());
}
