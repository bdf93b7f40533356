//! Every policy against the sequences PyTorch produced (tests/fixtures/schedulers, written by
//! generate.py with torch 2.9.0): identical to 1e-12 relative, resumable mid-schedule.

use burn::lr_scheduler::LrScheduler;
use kindling_schedulers::*;
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/schedulers/torch_sequences.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn f(args: &Value, key: &str) -> f64 {
    args[key]
        .as_f64()
        .unwrap_or_else(|| panic!("missing {key}"))
}

fn u(args: &Value, key: &str) -> usize {
    args[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing {key}")) as usize
}

fn scheduler(policy: &str, args: &Value, base_lr: f64) -> Scheduler {
    match policy {
        "lambda_lr" => {
            let (every, gamma) = (u(args, "every") as i64, f(args, "gamma"));
            Scheduler::new(
                LambdaLr::new(move |e| gamma.powf(e.div_euclid(every) as f64)),
                base_lr,
            )
        }
        "multiplicative_lr" => {
            let factor = f(args, "factor");
            Scheduler::new(MultiplicativeLr::new(move |_| factor), base_lr)
        }
        "step_lr" => Scheduler::new(StepLr::new(u(args, "step_size"), f(args, "gamma")), base_lr),
        "multi_step_lr" => {
            let milestones = args["milestones"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap() as usize);
            Scheduler::new(MultiStepLr::new(milestones, f(args, "gamma")), base_lr)
        }
        "constant_lr" => Scheduler::new(
            ConstantLr::new(f(args, "factor"), u(args, "total_iters")),
            base_lr,
        ),
        "linear_lr" => Scheduler::new(
            LinearLr::new(
                f(args, "start_factor"),
                f(args, "end_factor"),
                u(args, "total_iters"),
            ),
            base_lr,
        ),
        "exponential_lr" => Scheduler::new(ExponentialLr::new(f(args, "gamma")), base_lr),
        "polynomial_lr" => Scheduler::new(
            PolynomialLr::new(u(args, "total_iters"), f(args, "power")),
            base_lr,
        ),
        "cosine_annealing_lr" => Scheduler::new(
            CosineAnnealingLr::new(u(args, "t_max"), f(args, "eta_min")),
            base_lr,
        ),
        other => panic!("fixture names unknown policy {other}"),
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
    let fixture = fixture();
    let cases = fixture["cases"].as_array().unwrap();
    assert!(cases.len() >= 12);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let want: Vec<f64> = case["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let s = scheduler(
            case["policy"].as_str().unwrap(),
            &case["args"],
            case["base_lr"].as_f64().unwrap(),
        );
        let got = s.rows(want.len() - 1);
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_close(name, k, *g, *w);
        }
    }
}

#[test]
fn burn_step_returns_the_rate_of_each_update_and_resumes_from_a_record() {
    let fixture = fixture();
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let want: Vec<f64> = case["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let make = || {
            scheduler(
                case["policy"].as_str().unwrap(),
                &case["args"],
                case["base_lr"].as_f64().unwrap(),
            )
        };
        // Burn calls `step()` before each optimizer update: call k (1-based) gives row k-1.
        let mut s = make();
        let half = want.len() / 2;
        for (k, w) in want.iter().enumerate().take(half) {
            assert_close(name, k, LrScheduler::step(&mut s), *w);
        }
        // A fresh scheduler loaded from the record continues the same sequence.
        let mut resumed = make();
        LrScheduler::load_record(&mut resumed, LrScheduler::to_record(&s));
        for (k, w) in want.iter().enumerate().skip(half) {
            assert_close(name, k, LrScheduler::step(&mut resumed), *w);
        }
    }
}
