//! Every PyTorch fixture case on Flex in f64: values and input gradients within 1e-6 relative.

mod common;

use burn::tensor::{Device, FloatDType};

#[test]
fn every_loss_matches_pytorch_in_f64() {
    let mut device = Device::flex();
    device
        .configure(FloatDType::F64)
        .expect("f64 before any tensor");
    let failures =
        common::parity::check_all(&device.autodiff(), common::parity::Reference::F64, 1e-6);
    let total = common::parity::load_cases().len();
    assert!(
        failures.is_empty(),
        "{} of {total} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
