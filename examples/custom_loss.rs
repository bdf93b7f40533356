//! Custom losses (the tutorial's section 6.1), both ways: a plain function, and a Burn module
//! from a `#[derive(Config)]` configuration. Training code takes either through the `Loss`
//! trait.
//!
//! ```text
//! cargo run -p kindling --example custom_loss
//! ```

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Distribution, Tensor};
use kindling::losses::{
    DiceLossConfig, FocalLossConfig, Loss, LossConfig, Mode, TutorialDiceLossConfig,
};

/// The tutorial's first custom loss, `torch.mean((output - target)**2)`: any function of this
/// shape is a `Loss`.
fn my_loss(output: Tensor<4>, target: Tensor<4>) -> Tensor<1> {
    (output - target).powi_scalar(2).mean()
}

/// The tutorial's `DiceLoss.forward`, written as a function: sigmoid, flatten, smooth = 1.
fn dice_loss(inputs: Tensor<4>, targets: Tensor<4>) -> Tensor<1> {
    let smooth = 1.0;
    let inputs = sigmoid(inputs).flatten::<1>(0, 3);
    let targets = targets.flatten::<1>(0, 3);
    let intersection = (inputs.clone() * targets.clone()).sum();
    let dice = (intersection * 2.0 + smooth) / (inputs.sum() + targets.sum() + smooth);
    dice.neg() + 1.0
}

/// One 3×3 conv that should learn to segment the bright pixels of a noisy image.
#[derive(Module, Debug)]
struct TinySegmenter {
    conv: Conv2d,
}

/// Trains with any loss — a closure, a function or a module — and returns the first and last
/// loss values.
fn train(loss_fn: &impl Loss<Tensor<4>, Tensor<4>>, device: &Device) -> anyhow::Result<(f32, f32)> {
    device.seed(7);
    let mut model = TinySegmenter {
        conv: Conv2dConfig::new([1, 1], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .init(device),
    };
    let mut optimizer = AdamConfig::new().init();
    let image = Tensor::<4>::random([8, 1, 16, 16], Distribution::Uniform(0.0, 1.0), device);
    let mask = image.clone().greater_elem(0.6).float();
    let (mut first, mut last) = (f32::NAN, f32::NAN);
    for step in 0..60 {
        // `try_loss` checks shapes and ranges at the loss's entry and says what is wrong.
        let loss = loss_fn.try_loss(model.conv.forward(image.clone()), mask.clone())?;
        last = loss.clone().into_scalar::<f32>();
        if step == 0 {
            first = last;
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(0.05, model, grads);
    }
    Ok((first, last))
}

/// One training run: builds its loss on the device and trains with it.
type TrainRun = dyn Fn(&Device) -> anyhow::Result<(f32, f32)>;

fn main() -> anyhow::Result<()> {
    let device =
        kindling::init_device(kindling::DeviceSpec::Flex, kindling::Precision::F32, 0)?.autodiff();

    // The tutorial's DiceLoss both ways gives the same number.
    let logits = Tensor::<4>::random([2, 1, 8, 8], Distribution::Normal(0.0, 2.0), &device);
    let mask = Tensor::<4>::random([2, 1, 8, 8], Distribution::Uniform(0.0, 1.0), &device)
        .greater_elem(0.5)
        .float();
    let as_function = dice_loss(logits.clone(), mask.clone()).into_scalar::<f32>();
    let module = TutorialDiceLossConfig::new().init(&device);
    let as_module = module.forward(logits, mask).into_scalar::<f32>();
    println!("tutorial DiceLoss: function {as_function:.6}, module {as_module:.6}");
    anyhow::ensure!(
        (as_function - as_module).abs() < 1e-6,
        "the two DiceLoss forms differ"
    );

    // Training takes a function, a closure or a module alike.
    let runs: [(&str, Box<TrainRun>); 5] = [
        ("my_loss (fn)", Box::new(|d| train(&my_loss, d))),
        (
            "dice (closure)",
            Box::new(|d| train(&|x: Tensor<4>, y: Tensor<4>| dice_loss(x, y), d)),
        ),
        (
            "smp DiceLoss",
            Box::new(|d| train(&DiceLossConfig::new(Mode::Binary).init(d), d)),
        ),
        (
            "smp FocalLoss",
            Box::new(|d| train(&FocalLossConfig::new(Mode::Binary).init(d), d)),
        ),
        (
            "by name",
            Box::new(|d| {
                let config = LossConfig::from_json(serde_json::json!(
                    {"name": "bce_dice", "mode": "binary", "dice_weight": 0.5}
                ))?;
                train(&config.init(d)?, d)
            }),
        ),
    ];
    for (label, run) in runs {
        let (first, last) = run(&device)?;
        println!("{label:>15}: loss {first:.4} -> {last:.4}");
        anyhow::ensure!(last < first, "{label}: the loss did not decrease");
    }

    // Bad input is an error naming what was expected, not a kernel panic.
    let dice = DiceLossConfig::new(Mode::Binary).init(&device);
    let err = dice
        .try_forward(
            Tensor::<4>::zeros([2, 1, 8, 8], &device),
            Tensor::<4>::zeros([2, 1, 8, 9], &device),
        )
        .unwrap_err();
    println!("mismatched mask: {err}");
    Ok(())
}
