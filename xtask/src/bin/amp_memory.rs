//! The heap one training step allocates, counted by a global allocator: its own binary, so
//! that no other command pays for the counting. `cargo xtask bench amp` runs it once per
//! model and precision and prints the ratios; it prints one JSON line.
//!
//! `amp_memory MODEL BATCH SIZE MODE [DEVICE [STEPS]]` with MODEL `classify` or a zoo name,
//! MODE `f32`, `amp-f16`, `amp-bf16`, `f16` or `bf16` (the last two: the whole model in that
//! dtype), DEVICE `flex` (default) or a GPU (`check-gpu --amp`: the step time; the counted
//! heap is the host's, not the GPU's). One warm-up step creates the optimizer state; with
//! STEPS > 1 (a GPU: its first steps compile kernels) two warm up and the reported time is the
//! mean of STEPS steps.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Distribution, FloatDType, Int, Tensor};
use kindling::finetune::{ModelOptions, create_model, param_counts};
use kindling::losses::CrossEntropyLossConfig;
use kindling::precision::{AutocastGuard, GradScaler, GradScalerConfig};
use kindling::{DeviceSpec, Precision, init_device};
use kindling_train::tasks::classify::SmallCnnConfig;

/// `System` plus the bytes live now and the most live since the last [`reset_peak`].
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to `System` with the caller's layout; the counters are plain
// atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                    - layout.size();
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn reset_peak() -> usize {
    let live = LIVE.load(Ordering::Relaxed);
    PEAK.store(live, Ordering::Relaxed);
    live
}

/// One model, type-erased over the two kinds measured.
enum Net {
    Classify(kindling_train::tasks::classify::SmallCnn),
    Zoo(Box<kindling::finetune::ZooModel>),
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (model, batch, size, mode, spec, steps) = match args.as_slice() {
        [m, b, s, mode] => (m, b, s, mode, "flex", "1"),
        [m, b, s, mode, d] => (m, b, s, mode, d.as_str(), "1"),
        [m, b, s, mode, d, n] => (m, b, s, mode, d.as_str(), n.as_str()),
        _ => {
            eprintln!(
                "usage: amp_memory MODEL BATCH SIZE f32|amp-f16|amp-bf16|f16|bf16 [DEVICE [STEPS]]"
            );
            std::process::exit(2);
        }
    };
    let (batch, size, steps): (usize, usize, usize) =
        match (batch.parse(), size.parse(), steps.parse()) {
            (Ok(b), Ok(s), Ok(n)) if n > 0 => (b, s, n),
            _ => {
                eprintln!("BATCH, SIZE and STEPS are numbers (STEPS at least 1)");
                std::process::exit(2);
            }
        };
    let (precision, amp) = match mode.as_str() {
        "f32" => (Precision::F32, None),
        "amp-f16" => (Precision::F32, Some(FloatDType::F16)),
        "amp-bf16" => (Precision::F32, Some(FloatDType::BF16)),
        "f16" => (Precision::F16, None),
        "bf16" => (Precision::Bf16, None),
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    };
    let device = match spec
        .parse::<DeviceSpec>()
        .map_err(|e| e.to_string())
        .and_then(|spec| init_device(spec, precision, 0).map_err(|e| e.to_string()))
    {
        Ok(device) => device,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if let Some(dtype) = amp.filter(|&d| !device.supports_dtype(d)) {
        eprintln!("{spec} cannot compute {dtype:?}: no autocast to it there");
        std::process::exit(1);
    }
    let device = device.autodiff();
    let classes = 10;
    let mut net = if model == "classify" {
        Net::Classify(SmallCnnConfig::new(classes).init(&device))
    } else {
        let options = ModelOptions::default().num_classes(classes);
        match create_model(model, options, &device) {
            Ok(m) => Net::Zoo(Box::new(m)),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    };
    let params = match &net {
        Net::Classify(m) => param_counts(m),
        Net::Zoo(m) => param_counts(&**m),
    };
    let numel = params.trainable + params.frozen;
    let mut optimizer = SgdConfig::new()
        .with_momentum(Some(
            burn::optim::momentum::MomentumConfig::new().with_dampening(0.0),
        ))
        .init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut scaler =
        GradScaler::new(GradScalerConfig::new().with_enabled(amp == Some(FloatDType::F16)))
            .expect("default scaler");
    let x = Tensor::<4>::random([batch, 3, size, size], Distribution::Default, &device);
    let labels: Vec<i64> = (0..batch as i64).map(|i| i % classes as i64).collect();
    let y = Tensor::<1, Int>::from_ints(labels.as_slice(), &device);

    let mut step = |net: Net| -> Net {
        let loss = {
            let _scope = AutocastGuard::enter(amp);
            let logits = match &net {
                Net::Classify(m) => m.forward(x.clone()),
                Net::Zoo(m) => m.forward(x.clone()),
            };
            loss_fn.forward(logits, y.clone())
        };
        let grads = scaler.scale(loss).backward();
        let lr = 0.01;
        let out = match net {
            Net::Classify(m) => {
                let g = GradientsParams::from_grads(grads, &m);
                Net::Classify(
                    scaler
                        .step(m, g, |m, g| optimizer.step(lr, m, g))
                        .expect("step")
                        .0,
                )
            }
            Net::Zoo(m) => {
                let g = GradientsParams::from_grads(grads, &*m);
                Net::Zoo(Box::new(
                    scaler
                        .step(*m, g, |m, g| optimizer.step(lr, m, g))
                        .expect("step")
                        .0,
                ))
            }
        };
        scaler.update().expect("scale");
        out
    };
    // GPUs run asynchronously: a step's time includes its completion.
    let sync = || {
        if let Err(e) = device.sync() {
            eprintln!("device sync: {e:?}");
            std::process::exit(1);
        }
    };
    // The first step creates the optimizer's momentum buffers; then the measured steps.
    for _ in 0..if steps > 1 { 2 } else { 1 } {
        net = step(net);
    }
    sync();
    let before = reset_peak();
    let t = Instant::now();
    for _ in 0..steps {
        net = step(net);
    }
    sync();
    let seconds = t.elapsed().as_secs_f64() / steps as f64;
    let peak = PEAK.load(Ordering::Relaxed);
    drop(net);
    println!(
        "{{\"model\":\"{model}\",\"batch\":{batch},\"size\":{size},\"mode\":\"{mode}\",\
         \"params\":{numel},\"resident_bytes\":{before},\"step_peak_bytes\":{},\
         \"step_seconds\":{seconds},\"steps\":{steps}}}",
        peak - before
    );
}
