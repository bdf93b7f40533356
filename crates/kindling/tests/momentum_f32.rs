//! Kindling's SGD/Adam/AdamW with OneCycleLR/CyclicLR momentum cycling (and without a
//! schedule) on Flex in f32 against torch's f64 parameter trajectories: within 1e-5.

mod optim_common;

use burn::tensor::Device;

#[test]
fn trajectories_match_torch_in_f32() {
    let device = Device::flex();
    let fx = optim_common::fixture();
    let mut failures = Vec::new();
    for case in &fx.cases {
        let rows = optim_common::trajectory(&fx, case, &device, None);
        failures.extend(optim_common::compare(case, &rows, 1e-5));
        let rows = optim_common::trajectory(&fx, case, &device, Some(case.steps / 2));
        failures.extend(
            optim_common::compare(case, &rows, 1e-5)
                .into_iter()
                .map(|f| format!("resumed: {f}")),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
