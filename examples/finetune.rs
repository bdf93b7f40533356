//! Tutorial sections 6.3/6.4 in Rust: take a model trained on a big dataset, swap its head for
//! your classes (and its first convolution for your channels), freeze what should not move,
//! give the head its own learning rate, train.
//!
//! The "pretrained" file here is a freshly saved ImageNet-shaped resnet18 so that the example
//! runs without a download; with torchvision's weights in the cache it is
//! `ModelOptions::default().pretrained(true)` (see `cargo xtask zoo info resnet18`).
//!
//! `cargo run -p kindling --example finetune`

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{Device, Distribution, Int, Tensor};
use kindling::finetune::{self, EvalTransform, ModelOptions, create_model, freeze};
use kindling::schedulers::{CosineAnnealingLr, GroupScheduler};

fn main() -> anyhow::Result<()> {
    let device = Device::flex().autodiff();
    let dir = tempfile::tempdir()?;
    let weights = dir.path().join("resnet18.safetensors");
    finetune::save_safetensors(
        &create_model("resnet18", ModelOptions::default(), &device)?,
        &weights,
    )?;

    // timm.create_model("resnet18", pretrained=True, num_classes=3, in_chans=1)
    let options = ModelOptions::default()
        .pretrained_file(&weights)
        .num_classes(3)
        .in_chans(1);
    let model = create_model("resnet18", options, &device)?;

    // for p in model.parameters(): p.requires_grad = False; then unfreeze layer4 and fc
    let model = freeze::freeze(model, &["*"])?;
    let model = freeze::unfreeze(model, &["layer4", "fc"])?;
    println!("{}", finetune::param_counts(&model));

    // optim.SGD([{"params": backbone, "lr": 1e-3}, {"params": model.fc.parameters(), "lr": 1e-2}])
    let head = freeze::param_group(&model, &["fc"])?;
    let mut schedule = GroupScheduler::new(
        Box::new(CosineAnnealingLr::new(4, 0.0)),
        1e-3,
        vec![(head, 1e-2)],
    );
    let mut optimizer = SgdConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);

    let mut model = model;
    for step in 0..4 {
        let x = Tensor::<4>::random([8, 1, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        let y = Tensor::<1, Int>::from_ints([0, 1, 2, 0, 1, 2, 0, 1], &device);
        let loss = loss_fn.forward(model.forward(x), y);
        println!(
            "step {step}: loss {:.4}, lrs {:?}",
            loss.clone().into_scalar::<f32>(),
            schedule.lrs()
        );
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(schedule.rates(), model, grads);
        schedule.step()?;
    }

    // timm.data.create_transform(**resolve_data_config({}, model=model)): resize 256, crop 224
    let eval = EvalTransform::from_cfg(&finetune::pretrained_cfg("resnet18")?);
    println!(
        "eval transform: resize {} (bilinear), centre crop {}",
        eval.resize_size, eval.input_size
    );
    Ok(())
}
