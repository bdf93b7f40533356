//! `GradScaler` against torch 2.9's on committed step sequences
//! (`tests/fixtures/precision/generate_grad_scaler.py`), and the guarantees of a skipped step.

use burn::module::{Module, Param};
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Tensor, TensorData};
use kindling_precision::{GradScaler, GradScalerConfig, PrecisionError};
use serde_json::Value;

#[derive(Module, Debug)]
struct OneParam {
    w: Param<Tensor<1>>,
}

fn model(device: &Device) -> OneParam {
    OneParam {
        w: Param::from_tensor(Tensor::ones([4], device)),
    }
}

fn values(t: Tensor<1>) -> Vec<f32> {
    t.into_data().try_to_vec().unwrap()
}

/// Scaled backward of `sum(w · coef)`, with an inf or NaN put into the gradient for 'i'/'n'.
fn grads(
    scaler: &GradScaler,
    m: &OneParam,
    coef: &[f32],
    step: char,
    device: &Device,
) -> GradientsParams {
    let coef = Tensor::<1>::from_data(TensorData::new(coef.to_vec(), [4]), device);
    let loss = (m.w.val() * coef).sum();
    let mut grads = GradientsParams::from_grads(scaler.scale(loss).backward(), m);
    if step != 'f' {
        let g: Tensor<1> = grads.remove(m.w.id).unwrap();
        let mut v = values(g.clone());
        if step == 'i' {
            v[1] = f32::INFINITY;
        } else {
            v[2] = f32::NAN;
        }
        grads.register(
            m.w.id,
            Tensor::<1>::from_data(TensorData::new(v, [4]), &g.device()),
        );
    }
    grads
}

#[test]
fn trajectories_match_torch() {
    let text = std::fs::read_to_string(format!(
        "{}/../../tests/fixtures/precision/grad_scaler.json",
        std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into())
    ))
    .unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let device = Device::flex().autodiff();
    for (name, case) in fixture["cases"].as_object().unwrap() {
        let k = &case["kwargs"];
        let mut config = GradScalerConfig::new()
            .with_min_scale(0.0)
            .with_max_consecutive_skips(0);
        if let Some(v) = k["init_scale"].as_f64() {
            config = config.with_init_scale(v);
        }
        if let Some(v) = k["growth_factor"].as_f64() {
            config = config.with_growth_factor(v);
        }
        if let Some(v) = k["backoff_factor"].as_f64() {
            config = config.with_backoff_factor(v);
        }
        if let Some(v) = k["growth_interval"].as_u64() {
            config = config.with_growth_interval(v as u32);
        }
        let mut scaler = config.init().unwrap();
        let coef: Vec<f32> = case["coef"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_f64().unwrap() as f32)
            .collect();
        let mut m = model(&device);
        let mut sgd = SgdConfig::new().init();
        let steps: Vec<char> = case["steps"].as_str().unwrap().chars().collect();
        for (i, (step, row)) in steps
            .iter()
            .zip(case["rows"].as_array().unwrap())
            .enumerate()
        {
            let g = grads(&scaler, &m, &coef, *step, &device);
            let (next, stepped) = scaler.step(m, g, |m, g| sgd.step(0.1, m, g)).unwrap();
            m = next;
            scaler.update().unwrap();
            let at = format!("{name} step {i} ('{step}')");
            assert_eq!(
                scaler.state().scale as f64,
                row["scale"].as_f64().unwrap(),
                "{at}: scale"
            );
            assert_eq!(
                scaler.state().growth_tracker as u64,
                row["growth_tracker"].as_u64().unwrap(),
                "{at}"
            );
            assert_eq!(!stepped, row["skipped"].as_bool().unwrap(), "{at}: skipped");
            for (got, want) in values(m.w.val())
                .iter()
                .zip(row["param"].as_array().unwrap())
            {
                let want = want.as_f64().unwrap() as f32;
                assert!(
                    (got - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{at}: param {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn a_skipped_step_leaves_parameters_and_optimizer_untouched() {
    let device = Device::flex().autodiff();
    let mut scaler = GradScalerConfig::new().init().unwrap();
    let m = model(&device);
    let before = m.w.val().into_data();
    let g = grads(&scaler, &m, &[1.0, 2.0, 3.0, 4.0], 'i', &device);
    let mut called = false;
    let (m, stepped) = scaler
        .step(m, g, |m, _| {
            called = true;
            m
        })
        .unwrap();
    assert!(!stepped && !called, "the optimizer must not run");
    assert_eq!(m.w.val().into_data(), before);
    scaler.update().unwrap();
    assert_eq!(scaler.state().scale, 32768.0);
    assert_eq!(scaler.state().skipped_steps, 1);
    // The next finite step proceeds.
    let g = grads(&scaler, &m, &[1.0, 2.0, 3.0, 4.0], 'f', &device);
    let (_, stepped) = scaler.step(m, g, |m, _| m).unwrap();
    assert!(stepped);
}

#[test]
fn unscaled_gradients_equal_the_unscaled_backward_exactly() {
    let device = Device::flex().autodiff();
    let m = model(&device);
    let x = Tensor::<1>::from_data(TensorData::new(vec![0.3f32, -1.7, 2.9, 1e-3], [4]), &device);
    let loss = || (m.w.val() * x.clone()).exp().sum().log();
    let plain = GradientsParams::from_grads(loss().backward(), &m);
    let mut scaler = GradScalerConfig::new().init().unwrap();
    let mut scaled = GradientsParams::from_grads(scaler.scale(loss()).backward(), &m);
    assert!(!scaler.unscale(&m, &mut scaled).unwrap());
    let a: Tensor<1> = plain.get(m.w.id).unwrap();
    let b: Tensor<1> = scaled.get(m.w.id).unwrap();
    assert_eq!(a.into_data(), b.into_data());
    // PyTorch refuses a second unscale in one iteration; so do we.
    assert_eq!(
        scaler.unscale(&m, &mut scaled),
        Err(PrecisionError::AlreadyUnscaled)
    );
}

#[test]
fn a_collapsing_scale_stops_the_run() {
    let device = Device::flex().autodiff();
    let mut scaler = GradScalerConfig::new()
        .with_max_consecutive_skips(3)
        .init()
        .unwrap();
    let mut m = model(&device);
    for i in 1..=3 {
        let g = grads(&scaler, &m, &[1.0; 4], 'n', &device);
        m = scaler.step(m, g, |m, _| m).unwrap().0;
        let r = scaler.update();
        if i < 3 {
            r.unwrap();
        } else {
            let err = r.unwrap_err().to_string();
            assert!(err.contains("3 consecutive skipped steps"), "{err}");
        }
    }
    let mut floor = GradScalerConfig::new().with_init_scale(1.0).init().unwrap();
    let g = grads(&floor, &m, &[1.0; 4], 'i', &device);
    let _ = floor.step(m, g, |m, _| m).unwrap();
    assert!(matches!(
        floor.update(),
        Err(PrecisionError::ScaleCollapsed { .. })
    ));
}

#[test]
fn state_round_trips_and_disabled_is_a_no_op() {
    let mut scaler = GradScalerConfig::new().init().unwrap();
    let mut state = scaler.state().clone();
    state.scale = 512.0;
    state.growth_tracker = 7;
    let json = serde_json::to_string(&state).unwrap();
    scaler.load_state(serde_json::from_str(&json).unwrap());
    assert_eq!(scaler.state(), &state);

    let device = Device::flex().autodiff();
    let mut off = GradScalerConfig::new().with_enabled(false).init().unwrap();
    let m = model(&device);
    let loss = m.w.val().sum();
    assert_eq!(
        off.scale(loss.clone()).into_data(),
        loss.clone().into_data()
    );
    let g = GradientsParams::from_grads(loss.backward(), &m);
    let (_, stepped) = off.step(m, g, |m, _| m).unwrap();
    assert!(stepped);
    off.update().unwrap();
    assert_eq!(off.scale_factor(), 1.0);
}

#[test]
fn invalid_factors_are_refused() {
    let err = GradScalerConfig::new()
        .with_backoff_factor(1.5)
        .init()
        .unwrap_err()
        .to_string();
    assert!(err.contains("backoff_factor = 1.5"), "{err}");
    let err = GradScalerConfig::new()
        .with_growth_factor(1.0)
        .init()
        .unwrap_err()
        .to_string();
    assert!(err.contains("growth_factor = 1"), "{err}");
}
