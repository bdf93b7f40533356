//! Every PyTorch fixture case on Flex in f32: values and input gradients within 1e-4 relative
//! of PyTorch's own f32 run of the case.

mod common;

use burn::tensor::Device;

#[test]
fn every_loss_matches_pytorch_in_f32() {
    let device = Device::flex();
    let failures =
        common::parity::check_all(&device.autodiff(), common::parity::Reference::F32, 1e-4);
    let total = common::parity::load_cases().len();
    assert!(
        failures.is_empty(),
        "{} of {total} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
