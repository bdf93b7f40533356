//! Runs the PyTorch fixture cases (`tests/fixtures/losses/cases.json`, written by
//! `generate.py` next to it) through [`LossConfig`] on one device and compares values and
//! input gradients. Shared by the f64/f32/half test binaries and `cargo xtask check-losses`.

use std::path::PathBuf;

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use kindling_losses::{AnyLoss, LossConfig};
use serde_json::Value;

/// One fixture case.
pub struct Case {
    pub name: String,
    pub loss: Value,
    pub input_shape: Vec<usize>,
    pub input: Vec<f64>,
    pub target_int: bool,
    pub target_shape: Vec<usize>,
    pub target: Vec<f64>,
    pub value: Vec<f64>,
    pub grad: Vec<f64>,
    pub value_f32: Vec<f64>,
    pub grad_f32: Vec<f64>,
}

/// Which of PyTorch's runs a device is compared with.
#[derive(Clone, Copy)]
pub enum Reference {
    /// PyTorch in float64.
    F64,
    /// PyTorch in float32, on the input rounded to float32.
    F32,
}

/// The fixture file, found above the package's folder (this module is shared by the losses
/// crate's tests and by xtask).
pub fn fixture_path() -> PathBuf {
    const FIXTURE: &str = "tests/fixtures/losses/cases.json";
    // The run-time variable (set by cargo), so a binary built from another checkout sharing
    // the target dir reads this checkout's fixture.
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    start
        .ancestors()
        .map(|dir| dir.join(FIXTURE))
        .find(|path| path.exists())
        .unwrap_or_else(|| start.join(FIXTURE))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn shape(v: &Value) -> Vec<usize> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("dim") as usize)
        .collect()
}

/// Every case of the fixture file.
pub fn load_cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixture_path()).expect("fixture file");
    let root: Value = serde_json::from_str(&text).expect("fixture JSON");
    root["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().expect("name").to_string(),
            loss: c["loss"].clone(),
            input_shape: shape(&c["input"]["shape"]),
            input: floats(&c["input"]["data"]),
            target_int: c["target"]["kind"] == "int",
            target_shape: shape(&c["target"]["shape"]),
            target: floats(&c["target"]["data"]),
            value: floats(&c["value"]),
            grad: floats(&c["grad"]),
            value_f32: floats(&c["value_f32"]),
            grad_f32: floats(&c["grad_f32"]),
        })
        .collect()
}

/// Values read back from one evaluation.
pub struct Outcome {
    pub value: Vec<f64>,
    pub grad: Vec<f64>,
}

fn read(t: Tensor<1>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_into_vec::<f64>()
        .expect("f64 data")
}

fn eval<const D: usize, const T: usize>(
    loss: &AnyLoss,
    device: &Device,
    input_dtype: Option<DType>,
    case: &Case,
    input: &[f64],
    target: &[f64],
) -> Result<Outcome, String> {
    let data = TensorData::new(input.to_vec(), case.input_shape.clone());
    let x = match input_dtype {
        Some(dtype) => Tensor::<D>::from_data(data, (device, dtype)),
        None => Tensor::<D>::from_data(data, device),
    }
    .require_grad();
    let out = if case.target_int {
        let ids: Vec<i64> = target.iter().map(|&v| v as i64).collect();
        let t =
            Tensor::<T, Int>::from_data(TensorData::new(ids, case.target_shape.clone()), device);
        loss.try_forward(x.clone(), t)
    } else {
        let data = TensorData::new(target.to_vec(), case.target_shape.clone());
        let t = match input_dtype {
            Some(dtype) => Tensor::<T>::from_data(data, (device, dtype)),
            None => Tensor::<T>::from_data(data, device),
        };
        loss.try_forward(x.clone(), t)
    }
    .map_err(|e| e.to_string())?;
    let grads = out.clone().sum().backward();
    let grad = x
        .grad(&grads)
        .ok_or("no gradient reached the input")?
        .flatten::<1>(0, D - 1);
    Ok(Outcome {
        value: read(out),
        grad: read(grad),
    })
}

/// Evaluates `case` on `device` (an autodiff device) with the given input and target data
/// (the case's own, or rounded copies); `input_dtype` overrides the device's float dtype.
pub fn evaluate(
    case: &Case,
    device: &Device,
    input_dtype: Option<DType>,
    input: &[f64],
    target: &[f64],
) -> Result<Outcome, String> {
    let config = LossConfig::from_json(case.loss.clone()).map_err(|e| e.to_string())?;
    let loss = config.init(device).map_err(|e| e.to_string())?;
    macro_rules! ranks {
        ($($d:literal, $t:literal);*) => {
            match (case.input_shape.len(), case.target_shape.len()) {
                $(($d, $t) => eval::<$d, $t>(&loss, device, input_dtype, case, input, target),)*
                other => Err(format!("unsupported ranks {other:?}")),
            }
        };
    }
    ranks!(2, 1; 2, 2; 3, 2; 3, 3; 4, 3; 4, 4; 5, 4; 5, 5)
}

/// Largest violation of `|a − b| ≤ rtol · max(|b|, floor)` as a ratio (≤ 1 passes), and where.
pub fn worst(actual: &[f64], expected: &[f64], rtol: f64, floor: f64) -> (f64, usize) {
    if actual.len() != expected.len() {
        return (f64::INFINITY, usize::MAX);
    }
    actual
        .iter()
        .zip(expected)
        .enumerate()
        .map(|(i, (a, b))| {
            let bound = rtol * b.abs().max(floor);
            let ratio = if a.is_finite() {
                (a - b).abs() / bound
            } else {
                f64::INFINITY
            };
            (ratio, i)
        })
        .fold((0.0, 0), |acc, x| if x.0 > acc.0 { x } else { acc })
}

/// Compares one outcome with the expected value and gradient. Values are compared
/// relatively (floor 1e-12 for exact zeros); a gradient component relatively to itself, with a
/// floor of [`GRAD_FLOOR`] × the gradient's largest component, since a component that is tiny
/// next to the others carries no relative precision in float arithmetic.
pub fn compare(
    name: &str,
    got: &Outcome,
    value: &[f64],
    grad: &[f64],
    rtol: f64,
) -> Option<String> {
    compare_with_floor(name, got, value, grad, rtol, GRAD_FLOOR)
}

/// The gradient floor of [`compare`], relative to the largest component.
pub const GRAD_FLOOR: f64 = 1e-3;

/// [`compare`] with another gradient floor (GPUs sum in other orders than Flex and PyTorch).
pub fn compare_with_floor(
    name: &str,
    got: &Outcome,
    value: &[f64],
    grad: &[f64],
    rtol: f64,
    grad_floor: f64,
) -> Option<String> {
    let (v, vi) = worst(&got.value, value, rtol, 1e-12);
    let scale = grad.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    let (g, gi) = worst(&got.grad, grad, rtol, (scale * grad_floor).max(1e-300));
    if v <= 1.0 && g <= 1.0 {
        return None;
    }
    let mut msg = format!("{name}:");
    if v > 1.0 {
        msg += &format!(
            " value[{vi}] {} vs {} ({v:.1}× tolerance);",
            got.value.get(vi).copied().unwrap_or(f64::NAN),
            value.get(vi).copied().unwrap_or(f64::NAN)
        );
    }
    if g > 1.0 {
        msg += &format!(
            " grad[{gi}] {} vs {} ({g:.1}× tolerance)",
            got.grad.get(gi).copied().unwrap_or(f64::NAN),
            grad.get(gi).copied().unwrap_or(f64::NAN)
        );
    }
    Some(msg)
}

/// Runs every case on `device` in its configured dtype against PyTorch's numbers.
///
/// With [`Reference::F32`] a case passes when it matches PyTorch's float32 run *or* its
/// float64 run at `rtol`: PyTorch's f32 numbers are one sample of f32 rounding, and where a
/// component sits at the edge of f32 precision (a softmax backward cancelling to 1e-5 of its
/// terms) a kernel that computes in wider precision lands on the f64 answer, which the f32
/// run itself misses by about the tolerance (`dice_multiclass_extreme`, grad[7]: PyTorch f32
/// is 6.0e-10 from the f64 value, the bound is 5.9e-10).
pub fn check_all(device: &Device, reference: Reference, rtol: f64) -> Vec<String> {
    check_all_with_floor(device, reference, rtol, GRAD_FLOOR)
}

/// [`check_all`] with another gradient floor.
pub fn check_all_with_floor(
    device: &Device,
    reference: Reference,
    rtol: f64,
    grad_floor: f64,
) -> Vec<String> {
    load_cases()
        .iter()
        .filter_map(|case| {
            let (value, grad) = match reference {
                Reference::F64 => (&case.value, &case.grad),
                Reference::F32 => (&case.value_f32, &case.grad_f32),
            };
            match evaluate(case, device, None, &case.input, &case.target) {
                Ok(got) => compare_with_floor(&case.name, &got, value, grad, rtol, grad_floor)
                    .filter(|_| {
                        matches!(reference, Reference::F64)
                            || compare_with_floor(
                                &case.name,
                                &got,
                                &case.value,
                                &case.grad,
                                rtol,
                                grad_floor,
                            )
                            .is_some()
                    }),
                Err(e) => Some(format!("{}: {e}", case.name)),
            }
        })
        .collect()
}
