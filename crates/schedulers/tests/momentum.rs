//! OneCycleLR / CyclicLR momentum cycling against PyTorch (tests/fixtures/schedulers/
//! torch_momentum.json, written by generate_momentum.py with torch 2.9.0): row k of
//! `Scheduler::momentum()` is `param_group['momentum']` (SGD) or `betas[0]` (Adam/AdamW) after
//! k `scheduler.step()` calls, to 1e-12 relative, also inside SequentialLR/ChainedScheduler and
//! across a checkpoint.

use burn::lr_scheduler::LrScheduler;
use kindling_schedulers::*;
use serde_json::Value;

struct Case {
    name: String,
    /// The optimizer's configured momentum (SGD) or beta1 (Adam/AdamW), and its lr.
    configured: f64,
    base_lr: f64,
    scheduler: SchedulerConfig,
    lr: Vec<f64>,
    momentum: Vec<f64>,
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn fixture() -> Value {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR").into());
    let path = format!("{root}/../../tests/fixtures/schedulers/torch_momentum.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(fixture["torch"].as_str().unwrap().starts_with("2.9.0"));
    fixture
}

/// The cases with a scheduler.
fn cases() -> Vec<Case> {
    fixture()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| !c["scheduler"].is_null())
        .map(|c| {
            let opt = &c["optimizer"];
            let configured = match opt["name"].as_str().unwrap() {
                "sgd" => opt["momentum"].as_f64().unwrap(),
                _ => opt["betas"][0].as_f64().unwrap(),
            };
            let name = c["name"].as_str().unwrap().to_string();
            Case {
                scheduler: serde_json::from_value(c["scheduler"].clone())
                    .unwrap_or_else(|e| panic!("{name}: {e}")),
                name,
                configured,
                base_lr: opt["lr"].as_f64().unwrap(),
                lr: floats(&c["lr"]),
                momentum: floats(&c["momentum"]),
            }
        })
        .collect()
}

fn assert_close(what: &str, k: usize, got: f64, want: f64) {
    let rel = (got - want).abs() / want.abs().max(f64::MIN_POSITIVE);
    assert!(
        rel <= 1e-12 || got == want,
        "{what}: row {k}: {got} vs torch {want} (rel {rel:e})"
    );
}

impl Case {
    fn scheduler(&self) -> Scheduler {
        self.scheduler.build(self.base_lr).unwrap()
    }

    /// What the optimizer's momentum is: the schedule's, or the configured one.
    fn momentum(&self, s: &Scheduler) -> f64 {
        s.momentum().unwrap_or(self.configured)
    }

    fn check_row(&self, s: &Scheduler, k: usize) {
        assert_close(&format!("{} lr", self.name), k, s.lr(), self.lr[k]);
        assert_close(
            &format!("{} momentum", self.name),
            k,
            self.momentum(s),
            self.momentum[k],
        );
    }
}

#[test]
fn momentum_matches_torch_row_for_row() {
    let cases = cases();
    assert!(cases.len() >= 18);
    for case in &cases {
        let mut s = case.scheduler();
        case.check_row(&s, 0);
        for k in 1..case.lr.len() {
            s.step().unwrap();
            case.check_row(&s, k);
        }
    }
}

#[test]
fn cycling_policies_report_momentum_and_others_do_not() {
    for case in cases() {
        let cycles = !matches!(
            &case.scheduler,
            SchedulerConfig::OneCycleLr {
                cycle_momentum: false,
                ..
            } | SchedulerConfig::CyclicLr {
                cycle_momentum: false,
                ..
            }
        );
        assert_eq!(
            case.scheduler().momentum().is_some(),
            cycles,
            "{}",
            case.name
        );
    }
    let step: SchedulerConfig =
        serde_json::from_str(r#"{"name": "step_lr", "step_size": 3}"#).unwrap();
    assert_eq!(step.build(0.1).unwrap().momentum(), None);
}

#[test]
fn a_record_taken_mid_schedule_resumes_the_momentum() {
    for case in cases() {
        for half in [1, case.lr.len() / 3, case.lr.len() / 2, case.lr.len() - 2] {
            let mut s = case.scheduler();
            for _ in 0..half {
                s.step().unwrap();
            }
            let mut resumed = case.scheduler();
            resumed.load(&s.record());
            case.check_row(&resumed, half);
            for k in half + 1..case.lr.len() {
                resumed.step().unwrap();
                case.check_row(&resumed, k);
            }
        }
    }
}

#[test]
fn burn_step_gives_the_momentum_of_each_update() {
    for case in cases() {
        // Burn calls `step()` before each update: after call k (1-based), row k-1.
        let mut s = case.scheduler();
        for k in 0..case.lr.len() {
            LrScheduler::step(&mut s);
            case.check_row(&s, k);
        }
    }
}

#[test]
fn pytorch_defaults_and_builders() {
    let cfg: SchedulerConfig =
        serde_json::from_str(r#"{"name": "one_cycle_lr", "max_lr": 0.1, "total_steps": 10}"#)
            .unwrap();
    assert_eq!(cfg.build(0.1).unwrap().momentum(), Some(0.95));
    let cfg: SchedulerConfig =
        serde_json::from_str(r#"{"name": "cyclic_lr", "base_lr": 0.01, "max_lr": 0.1}"#).unwrap();
    assert_eq!(cfg.build(0.1).unwrap().momentum(), Some(0.9));
    let off: SchedulerConfig = serde_json::from_str(
        r#"{"name": "cyclic_lr", "base_lr": 0.01, "max_lr": 0.1, "cycle_momentum": false}"#,
    )
    .unwrap();
    assert_eq!(off.build(0.1).unwrap().momentum(), None);

    // The policy structs: the same defaults, and the builders.
    let one_cycle = Scheduler::new(OneCycleLr::new(0.1, 10).with_momentum(0.5, 0.6), 0.1);
    assert_eq!(one_cycle.momentum(), Some(0.6));
    let cyclic = CyclicLr::new(0.01, 0.1, 2, None, CyclicMode::Triangular);
    let mut s = Scheduler::new(cyclic.clone(), 0.1);
    s.step().unwrap();
    s.step().unwrap();
    assert_eq!(s.momentum(), Some(0.8)); // the peak
    assert_eq!(
        Scheduler::new(cyclic.with_cycle_momentum(false), 0.1).momentum(),
        None
    );
}

#[test]
fn bad_momentum_arguments_are_named() {
    let err = |json: &str| {
        serde_json::from_str::<SchedulerConfig>(json)
            .unwrap()
            .build(0.1)
            .err()
            .expect(json)
            .to_string()
    };
    let msg =
        err(r#"{"name": "one_cycle_lr", "max_lr": 0.1, "total_steps": 10, "max_momentum": 1.5}"#);
    assert!(
        msg.contains("one_cycle_lr") && msg.contains("`max_momentum` = 1.5"),
        "{msg}"
    );
    let msg =
        err(r#"{"name": "cyclic_lr", "base_lr": 0.01, "max_lr": 0.1, "base_momentum": -0.1}"#);
    assert!(msg.contains("base_momentum"), "{msg}");
    // Unchecked when momentum does not cycle, as PyTorch ignores them then.
    let cfg: SchedulerConfig = serde_json::from_str(
        r#"{"name": "cyclic_lr", "base_lr": 0.01, "max_lr": 0.1, "cycle_momentum": false, "base_momentum": -0.1}"#,
    )
    .unwrap();
    assert!(cfg.build(0.1).is_ok());
}
