//! Every fixture case with bf16 inputs on Flex: the value within 1e-3 relative of the same
//! loss on the same (rounded) values in f32, and finite gradients close to f32's.

mod common;

use burn::tensor::{Device, FloatDType};

#[test]
fn bf16_inputs_give_the_f32_answer() {
    let mut device = Device::flex();
    device
        .configure(FloatDType::BF16)
        .expect("bf16 before any tensor");
    let failures = common::half::check_half(&device, 1e-3, 2e-2);
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
