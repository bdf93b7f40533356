//! Shared by momentum_f64.rs and momentum_f32.rs (separate binaries: Flex's default float dtype
//! is set once per process): Kindling's SGD/Adam/AdamW, their momentum driven by the scheduler
//! through the `MomentumHandle`, against torch's parameter trajectories
//! (tests/fixtures/schedulers/torch_momentum.json, generate_momentum.py, torch 2.9.0, f64).

use burn::module::Param;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use kindling::schedulers::{Scheduler, SchedulerConfig};
use kindling::{ModuleOptimizer, MomentumHandle, OptimizerConfig, OptimizerKind};
use serde_json::Value;

pub struct Case {
    pub name: String,
    pub optimizer: OptimizerConfig,
    pub scheduler: Option<SchedulerConfig>,
    pub steps: usize,
    /// Rows 0..=steps: the parameter after k optimizer steps.
    pub params: Vec<Vec<f64>>,
}

pub struct Fixture {
    pub initial: Vec<f64>,
    pub cases: Vec<Case>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

pub fn fixture() -> Fixture {
    // The run-time variable, so a binary built from another checkout reads this one's fixture.
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{root}/../../tests/fixtures/schedulers/torch_momentum.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(json["torch"].as_str().unwrap().starts_with("2.9.0"));
    let cases = json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let o = &c["optimizer"];
            let f = |k: &str| o[k].as_f64();
            let d = OptimizerConfig::default();
            let name = match o["name"].as_str().unwrap() {
                "sgd" => OptimizerKind::Sgd,
                "adam" => OptimizerKind::Adam,
                _ => OptimizerKind::Adamw,
            };
            let betas = o.get("betas").map(floats).unwrap_or(d.betas.to_vec());
            let optimizer = OptimizerConfig {
                name,
                lr: f("lr").unwrap(),
                momentum: f("momentum").unwrap_or(d.momentum),
                dampening: f("dampening").unwrap_or(d.dampening),
                nesterov: o["nesterov"].as_bool().unwrap_or(false),
                weight_decay: f("weight_decay").unwrap(),
                betas: [betas[0], betas[1]],
                eps: f("eps").unwrap_or(d.eps),
            };
            Case {
                name: c["name"].as_str().unwrap().into(),
                optimizer,
                scheduler: (!c["scheduler"].is_null())
                    .then(|| serde_json::from_value(c["scheduler"].clone()).unwrap()),
                steps: c["steps"].as_u64().unwrap() as usize,
                params: c["params"].as_array().unwrap().iter().map(floats).collect(),
            }
        })
        .collect();
    Fixture {
        initial: floats(&json["initial"]),
        cases,
    }
}

/// The fixture's gradient of step k: g_k[i] = sin(k + i + 1).
pub fn gradient(k: usize, n: usize) -> Vec<f64> {
    (0..n).map(|i| ((k + i + 1) as f64).sin()).collect()
}

pub fn values(p: &Param<Tensor<1>>) -> Vec<f64> {
    p.val().into_data().iter::<f64>().collect()
}

/// The loop of generate_momentum.py: the scheduler's momentum into the handle, an optimizer
/// step with the scheduler's rate, then the scheduler steps.
struct Run {
    optim: ModuleOptimizer,
    handle: MomentumHandle,
    sched: Option<Scheduler>,
    param: Param<Tensor<1>>,
}

impl Run {
    fn step(&mut self, case: &Case, k: usize, device: &Device) {
        let lr = match &self.sched {
            Some(s) => {
                self.handle.follow(s);
                s.lr()
            }
            None => case.optimizer.lr,
        };
        // The gradient of sum(p * g_k) is exactly g_k.
        let n = self.param.val().dims()[0];
        let g = Tensor::<1>::from_data(TensorData::new(gradient(k, n), [n]), device);
        let loss = (self.param.val() * g).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &self.param);
        self.param = self.optim.step(lr, self.param.clone(), grads);
        if let Some(s) = &mut self.sched {
            s.step().unwrap();
        }
    }
}

/// Parameter rows 0..=steps under Kindling's optimizer, on `device.autodiff()`. With `resume_at = Some(h)`, the
/// optimizer (`into_bytes`/`from_bytes`) and the scheduler (`record`/`load`) are rebuilt from a
/// checkpoint after h steps, as a resumed run would.
pub fn trajectory(
    fx: &Fixture,
    case: &Case,
    device: &Device,
    resume_at: Option<usize>,
) -> Vec<Vec<f64>> {
    let build = || {
        let (optim, handle) = case.optimizer.init_with_momentum();
        let sched = case
            .scheduler
            .as_ref()
            .map(|s| s.build(case.optimizer.lr).unwrap());
        (optim, handle, sched)
    };
    let (optim, handle, sched) = build();
    let device = &device.clone().autodiff();
    let n = fx.initial.len();
    let param = Param::from_tensor(Tensor::<1>::from_data(
        TensorData::new(fx.initial.clone(), [n]),
        device,
    ));
    let mut run = Run {
        optim,
        handle,
        sched,
        param,
    };
    let mut rows = vec![values(&run.param)];
    for k in 0..case.steps {
        if resume_at == Some(k) {
            let bytes = run.optim.into_bytes().unwrap();
            let record = run.sched.as_ref().map(Scheduler::record);
            let (optim, handle, mut sched) = build();
            if let (Some(s), Some(r)) = (&mut sched, &record) {
                s.load(r);
            }
            run.optim = optim.from_bytes(bytes).unwrap();
            run.handle = handle;
            run.sched = sched;
        }
        run.step(case, k, device);
        rows.push(values(&run.param));
    }
    rows
}

/// Failures of `got` vs torch's rows: |got - want| <= tol * max(|want|, 1) (parameters are
/// O(1); the floor keeps elements crossing zero from failing on an absolute 1e-17).
pub fn compare(case: &Case, got: &[Vec<f64>], tol: f64) -> Vec<String> {
    let mut failures = Vec::new();
    let mut worst = 0.0f64;
    for (k, (g, w)) in got.iter().zip(&case.params).enumerate() {
        for (i, (g, w)) in g.iter().zip(w).enumerate() {
            let err = (g - w).abs() / w.abs().max(1.0);
            worst = worst.max(err);
            if err > tol || err.is_nan() {
                failures.push(format!(
                    "{}: step {k} element {i}: {g} vs torch {w} (err {err:e})",
                    case.name
                ));
            }
        }
    }
    assert_eq!(got.len(), case.params.len(), "{}", case.name);
    if std::env::var("KINDLING_PRINT_ERR").is_ok() {
        eprintln!("{}: worst error {worst:e}", case.name);
    }
    failures.truncate(3);
    failures
}
