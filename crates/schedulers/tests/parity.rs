//! Every policy against the sequences PyTorch produced (tests/fixtures/schedulers, written by
//! generate.py with torch 2.9.0): identical to 1e-12 relative, and resumable mid-schedule.
//! Policies are built from the fixture's arguments through [`SchedulerConfig`], the same path
//! a run configuration takes.

use burn::lr_scheduler::LrScheduler;
use kindling_schedulers::*;
use serde_json::Value;

struct Case {
    name: String,
    policy: String,
    base_lr: f64,
    args: Value,
    metrics: Option<Vec<f64>>,
    rows: Vec<f64>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn cases() -> Vec<Case> {
    // The run-time variable (set by cargo test), so a binary built from another checkout
    // sharing the target dir reads this checkout's fixture.
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{root}/../../tests/fixtures/schedulers/torch_sequences.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(fixture["torch"].as_str().unwrap().starts_with("2.9"));
    fixture["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().into(),
            policy: c["policy"].as_str().unwrap().into(),
            base_lr: c["base_lr"].as_f64().unwrap(),
            args: c["args"].clone(),
            metrics: c.get("metrics").map(floats),
            rows: floats(&c["rows"]),
        })
        .collect()
}

impl Case {
    fn scheduler(&self) -> Scheduler {
        if self.policy == "lambda_lr" {
            // A closure cannot come from a file: the tutorial's adjust_learning_rate in code.
            let every = self.args["every"].as_i64().unwrap();
            let gamma = self.args["gamma"].as_f64().unwrap();
            return Scheduler::new(
                LambdaLr::new(move |e| gamma.powf(e.div_euclid(every) as f64)),
                self.base_lr,
            );
        }
        if self.policy == "cyclic_lr_custom" {
            // Custom scale functions are closures too: 0.9^x by iteration, 0.5^x by cycle.
            let a = &self.args;
            let f = |k: &str| a[k].as_f64().unwrap();
            let decay = f("decay");
            let scale: std::sync::Arc<dyn Fn(f64) -> f64 + Send + Sync> =
                std::sync::Arc::new(move |x| decay.powf(x));
            let mode = match a["scale_mode"].as_str().unwrap() {
                "iterations" => CyclicMode::CustomByIteration(scale),
                _ => CyclicMode::CustomByCycle(scale),
            };
            let down = a
                .get("step_size_down")
                .map(|v| v.as_u64().unwrap() as usize);
            let up = a["step_size_up"].as_u64().unwrap() as usize;
            return Scheduler::new(
                CyclicLr::new(f("base_lr"), f("max_lr"), up, down, mode),
                self.base_lr,
            );
        }
        let mut tagged = self.args.clone();
        tagged["name"] = Value::from(self.policy.clone());
        let config: SchedulerConfig =
            serde_json::from_value(tagged).unwrap_or_else(|e| panic!("{}: {e}", self.name));
        config.build(self.base_lr).unwrap()
    }

    /// Row k+1, stepping with the k-th metric where the policy monitors one.
    fn step(&self, s: &mut Scheduler, k: usize) -> f64 {
        match &self.metrics {
            Some(m) => s.step_with_metric(m[k]).unwrap(),
            None => s.step().unwrap(),
        }
    }
}

fn assert_close(name: &str, k: usize, got: f64, want: f64) {
    let rel = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
    assert!(
        rel <= 1e-12 || got == want,
        "{name}: row {k}: {got} vs torch {want} (rel {rel:e})"
    );
}

#[test]
fn every_policy_matches_torch_row_for_row() {
    let cases = cases();
    assert!(cases.len() >= 28);
    for case in &cases {
        let mut s = case.scheduler();
        assert_close(&case.name, 0, s.lr(), case.rows[0]);
        for k in 1..case.rows.len() {
            assert_close(&case.name, k, case.step(&mut s, k - 1), case.rows[k]);
        }
    }
}

#[test]
fn a_record_taken_mid_schedule_resumes_the_same_sequence() {
    for case in cases() {
        let half = case.rows.len() / 2;
        let mut s = case.scheduler();
        for k in 0..half {
            case.step(&mut s, k);
        }
        let mut resumed = case.scheduler();
        resumed.load(&s.record());
        for k in half..case.rows.len() - 1 {
            assert_close(
                &case.name,
                k + 1,
                case.step(&mut resumed, k),
                case.rows[k + 1],
            );
        }
    }
}

#[test]
fn burn_step_returns_the_rate_of_each_update() {
    for case in cases().into_iter().filter(|c| c.metrics.is_none()) {
        // Burn calls `step()` before each optimizer update: call k (1-based) gives row k-1.
        let mut s = case.scheduler();
        for (k, want) in case.rows.iter().enumerate() {
            assert_close(&case.name, k, LrScheduler::step(&mut s), *want);
        }
    }
}

#[test]
fn one_cycle_refuses_to_step_past_total_steps() {
    // PyTorch: `if step_num > self.total_steps: raise ValueError`.
    let cfg: SchedulerConfig =
        serde_json::from_str(r#"{"name": "one_cycle_lr", "max_lr": 0.1, "total_steps": 10}"#)
            .unwrap();
    let mut s = cfg.build(0.01).unwrap();
    for _ in 0..10 {
        s.step().unwrap();
    }
    let err = s.step().unwrap_err();
    assert_eq!(
        err,
        ScheduleError::PastTotalSteps {
            step: 11,
            total_steps: 10
        }
    );
    assert!(err.to_string().contains("total_steps = 10"));
}

#[test]
fn plateau_needs_its_metric() {
    let cfg: SchedulerConfig = serde_json::from_str(r#"{"name": "reduce_lr_on_plateau"}"#).unwrap();
    let mut s = cfg.build(0.1).unwrap();
    assert_eq!(s.step().unwrap_err(), ScheduleError::MetricRequired);
    assert!(matches!(
        s.step_with_metric(f64::NAN),
        Err(ScheduleError::BadMetric(_))
    ));
}

#[test]
fn bad_configurations_name_the_policy_and_field() {
    let err = |json: &str| -> String {
        match serde_json::from_str::<SchedulerConfig>(json) {
            Err(e) => e.to_string(),
            Ok(cfg) => cfg.build(0.1).err().expect(json).to_string(),
        }
    };
    let msg = err(r#"{"name": "step_lr", "step_size": 0}"#);
    assert!(
        msg.contains("step_lr") && msg.contains("`step_size` = 0"),
        "{msg}"
    );
    let msg = err(r#"{"name": "multi_step_lr", "milestones": [5, 3]}"#);
    assert!(
        msg.contains("milestones") && msg.contains("increasing"),
        "{msg}"
    );
    let msg = err(r#"{"name": "one_cycle_lr", "max_lr": 0.1, "total_steps": 0}"#);
    assert!(msg.contains("total_steps"), "{msg}");
    let msg = err(r#"{"name": "exponential_lr", "gamma": -0.5}"#);
    assert!(msg.contains("gamma"), "{msg}");
    let msg = err(r#"{"name": "cyclic_lr", "base_lr": -1.0, "max_lr": 0.1}"#);
    assert!(msg.contains("base_lr"), "{msg}");
    // Unknown names and arguments list the valid ones.
    let msg = err(r#"{"name": "step_lrr", "step_size": 3}"#);
    assert!(
        msg.contains("step_lrr") && msg.contains("cosine_annealing_lr"),
        "{msg}"
    );
    let msg = err(r#"{"name": "step_lr", "step_size": 3, "gama": 0.5}"#);
    assert!(msg.contains("gama") && msg.contains("gamma"), "{msg}");
    let msg = err(r#"{"name": "sequential_lr", "milestones": [3],
            "schedulers": [{"name": "reduce_lr_on_plateau"}, {"name": "step_lr", "step_size": 2}]}"#);
    assert!(msg.contains("ReduceLROnPlateau cannot be part of"), "{msg}");
}
