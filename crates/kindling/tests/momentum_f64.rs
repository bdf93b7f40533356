//! Kindling's SGD/Adam/AdamW with OneCycleLR/CyclicLR momentum cycling (and without a
//! schedule) against torch's f64 parameter trajectories on Flex in f64: within 1e-10, also
//! after a checkpoint round trip of optimizer and scheduler mid-run.

mod optim_common;

use burn::tensor::{Device, FloatDType};

#[test]
fn trajectories_match_torch_in_f64_and_survive_a_checkpoint() {
    let mut device = Device::flex();
    device
        .configure(FloatDType::F64)
        .expect("f64 before any tensor");
    let fx = optim_common::fixture();
    assert!(fx.cases.len() >= 20);
    let mut failures = Vec::new();
    for case in &fx.cases {
        let rows = optim_common::trajectory(&fx, case, &device, None);
        failures.extend(optim_common::compare(case, &rows, 1e-10));
        for at in [1, case.steps / 2] {
            let rows = optim_common::trajectory(&fx, case, &device, Some(at));
            failures.extend(
                optim_common::compare(case, &rows, 1e-10)
                    .into_iter()
                    .map(|f| format!("resumed at {at}: {f}")),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
