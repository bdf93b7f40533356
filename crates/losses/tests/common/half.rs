//! Half-precision inputs must give the f32 answer: each fixture case runs once with f16/bf16
//! input and target tensors (the device's dtype) and once with the same, already rounded,
//! values as f32 tensors; the losses compute in f32 either way.

use burn::tensor::{DType, Device, Tensor, TensorData};

use super::parity::{Outcome, compare, evaluate, load_cases};

/// `values` rounded through the device's default float dtype.
fn rounded(values: &[f64], device: &Device) -> Vec<f64> {
    Tensor::<1>::from_data(TensorData::new(values.to_vec(), [values.len()]), device)
        .into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("f64 data")
}

/// The gradient comes back in the input's half dtype, whose smallest f16 step is 2⁻²⁴ ≈ 6e-8
/// (subnormals): a component is compared relatively, plus that absolute step.
fn grad_mismatch(name: &str, half: &[f64], full: &[f64], rtol: f64) -> Option<String> {
    let step = 2f64.powi(-24);
    let scale = full.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    half.iter().zip(full).enumerate().find_map(|(i, (a, b))| {
        let bound = rtol * b.abs().max(scale * 1e-3) + step;
        ((a - b).abs() > bound).then(|| format!("{name}: grad[{i}] {a} vs {b} (bound {bound:e})"))
    })
}

/// Runs every case on `device` (configured f16 or bf16) and returns the cases whose value
/// differs from the f32 computation by more than `rtol`, or whose gradient is not finite or
/// differs by more than `grad_rtol`.
pub fn check_half(device: &Device, rtol: f64, grad_rtol: f64) -> Vec<String> {
    let device = device.clone().autodiff();
    load_cases()
        .iter()
        .filter_map(|case| {
            let input = rounded(&case.input, &device);
            let target = if case.target_int {
                case.target.clone()
            } else {
                rounded(&case.target, &device)
            };
            let half = evaluate(case, &device, None, &input, &target);
            let full = evaluate(case, &device, Some(DType::F32), &input, &target);
            match (half, full) {
                (Ok(half), Ok(full)) => {
                    if half.grad.iter().chain(&half.value).any(|v| !v.is_finite()) {
                        return Some(format!("{}: non-finite value or gradient", case.name));
                    }
                    compare(
                        &case.name,
                        &Outcome {
                            value: half.value,
                            grad: vec![],
                        },
                        &full.value,
                        &[],
                        rtol,
                    )
                    .or_else(|| grad_mismatch(&case.name, &half.grad, &full.grad, grad_rtol))
                }
                (Err(e), _) | (_, Err(e)) => Some(format!("{}: {e}", case.name)),
            }
        })
        .collect()
}
