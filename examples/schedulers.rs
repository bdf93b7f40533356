//! Learning-rate schedules (the tutorial's section 6.2), in the tutorial's loop: an optimizer
//! step with the current rate, then a scheduler step.
//!
//! ```text
//! cargo run -p kindling --example schedulers
//! ```

use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Tensor};
use kindling::schedulers::{LambdaLr, Scheduler, SchedulerConfig, StepLr};

/// Fits y = 3x - 1 with one linear layer, under `schedule`; returns the final loss.
fn fit(mut schedule: Scheduler, device: &Device, label: &str) -> anyhow::Result<f32> {
    let mut model: Linear = LinearConfig::new(1, 1).init(device);
    let mut optimizer = SgdConfig::new().init();
    let x = Tensor::<2>::random([64, 1], Distribution::Uniform(-1.0, 1.0), device);
    let y = x.clone() * 3.0 - 1.0;
    let mut loss_value = f32::NAN;
    for epoch in 0..12 {
        let lr = schedule.lr();
        let loss = (model.forward(x.clone()) - y.clone()).powi_scalar(2).mean();
        loss_value = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(lr, model, grads); // 1. optimizer step
        schedule.step()?; //                          2. then the scheduler
        println!("{label:>13} epoch {epoch:2}: lr {lr:.5} loss {loss_value:.5}");
    }
    Ok(loss_value)
}

fn main() -> anyhow::Result<()> {
    let device =
        kindling::init_device(kindling::DeviceSpec::Flex, kindling::Precision::F32, 0)?.autodiff();

    // A built-in policy, as in torch.optim.lr_scheduler.StepLR(optimizer, 4, gamma=0.5).
    fit(Scheduler::new(StepLr::new(4, 0.5), 0.5), &device, "StepLR")?;

    // The tutorial's adjust_learning_rate (lr * 0.1 ** (epoch // 30)), here every 5 epochs.
    let custom = LambdaLr::new(|epoch| 0.1f64.powi((epoch / 5) as i32));
    fit(Scheduler::new(custom, 0.5), &device, "LambdaLR")?;

    // The same policies from a configuration file's [scheduler] table.
    let warmup_cosine: SchedulerConfig = toml::from_str(
        r#"
        name = "sequential_lr"
        milestones = [3]
        [[schedulers]]
        name = "linear_lr"
        start_factor = 0.2
        total_iters = 3
        [[schedulers]]
        name = "cosine_annealing_lr"
        t_max = 9
        "#,
    )?;
    let loss = fit(warmup_cosine.build(0.5)?, &device, "warmup+cosine")?;
    anyhow::ensure!(
        loss < 0.05,
        "the warm-up + cosine fit did not converge: {loss}"
    );
    Ok(())
}
