//! `cargo xtask train finetune --onnx DIR` compiles DIR's generated module into this binary
//! (see `xtask::finetune_onnx`) and runs it with the same flags.

use std::process::ExitCode;

#[cfg(imported_module)]
#[allow(clippy::all, unused, dead_code)]
mod imported {
    include!(concat!(env!("OUT_DIR"), "/imported.rs"));
}

#[cfg(imported_module)]
fn main() -> ExitCode {
    xtask::finetune_onnx::runner_main(
        env!("KINDLING_ONNX_MODULE"),
        imported::Model::new,
        |model, images| model.forward(images),
    )
}

#[cfg(not(imported_module))]
fn main() -> ExitCode {
    eprintln!(
        "xtask-onnx-runner was built without a module: run `cargo xtask train finetune --onnx \
         DIR`, which builds it with DIR's"
    );
    ExitCode::from(2)
}
