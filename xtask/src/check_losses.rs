//! `cargo xtask check-losses --device D --dtype T`: the losses' PyTorch fixture cases on any
//! device. f32 compares with PyTorch's f32 run (1e-4 relative; gradient components under 1% of
//! the largest are held to 1e-4 of that 1%, since GPUs sum in other orders); f16/bf16 inputs
//! must give the same device's f32 answer within 1e-3 (the losses compute in f32 internally).
//!
//! The comparison code is the losses crate's own test harness, compiled in here.

#[path = "../../crates/losses/tests/common/parity.rs"]
#[allow(dead_code)]
mod parity;

#[path = "../../crates/losses/tests/common/half.rs"]
mod half;

use anyhow::{Result, ensure};
use kindling::{DeviceSpec, Precision};

/// Flags of `cargo xtask check-losses`.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckLossesArgs {
    /// Device: flex, wgpu, vulkan, metal, cuda[:N], tch, tch-cuda[:N]
    #[arg(long, default_value = "flex")]
    pub device: DeviceSpec,
    /// f32 (against PyTorch f32) or f16/bf16 (against the device's own f32)
    #[arg(long, default_value = "f32")]
    pub dtype: Precision,
}

/// Runs every case; fails listing the ones that differ.
pub fn run(args: &CheckLossesArgs) -> Result<usize> {
    let device = kindling::init_device(args.device, args.dtype, 0)?;
    let total = parity::load_cases().len();
    let failures = match args.dtype {
        Precision::F32 => {
            parity::check_all_with_floor(&device.autodiff(), parity::Reference::F32, 1e-4, 1e-2)
        }
        _ => half::check_half(&device, 1e-3, 2e-2),
    };
    ensure!(
        failures.is_empty(),
        "{} of {total} loss cases differ on {} {}:\n{}",
        failures.len(),
        args.device,
        args.dtype,
        failures.join("\n")
    );
    Ok(total)
}
