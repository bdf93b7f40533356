//! Mixed precision, tutorial section 6.4, in Rust: PyTorch's
//!
//! ```python
//! scaler = torch.amp.GradScaler()
//! for x, y in batches:
//!     optimizer.zero_grad()
//!     with torch.autocast("cuda", dtype=torch.float16):
//!         loss = loss_fn(model(x), y)
//!     scaler.scale(loss).backward()
//!     scaler.step(optimizer)
//!     scaler.update()
//! ```
//!
//! with a model built from `kindling::nn` layers (they follow autocast: convolutions and the
//! linear layer in f16, BatchNorm and the loss in f32, parameters f32). The `Trainer` does the
//! same for any task with `amp = "f16"` (`--amp f16`), shown last.
//!
//! Run: `cargo run -p kindling --example mixed_precision`
use burn::module::Module;
use burn::optim::{GradientsParams, SgdConfig};
use burn::tensor::{DType, Device, Distribution, FloatDType, Int, Tensor};
use kindling::losses::CrossEntropyLossConfig;
use kindling::nn::{BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, Linear, LinearConfig};
use kindling::precision::{GradScaler, GradScalerConfig, autocast};

#[derive(Module, Debug)]
struct Net {
    conv: Conv2d,
    bn: BatchNorm,
    fc: Linear,
}

impl Net {
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = burn::tensor::activation::relu(self.bn.forward(self.conv.forward(x)));
        let [n, c, _, _] = x.dims();
        self.fc.forward(x.mean_dim(3).mean_dim(2).reshape([n, c]))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = Device::flex().autodiff();
    device.seed(0);
    let mut model = Net {
        conv: Conv2dConfig::new(3, 8, [3, 3])
            .with_padding([1, 1])
            .init(&device),
        bn: BatchNormConfig::new(8).init(&device),
        fc: LinearConfig::new(8, 2).init(&device),
    };
    let mut optimizer = SgdConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut scaler = GradScaler::new(GradScalerConfig::new())?; // init_scale 2^16, growth 2, backoff 0.5, interval 2000

    // Two classes: bright images and dark ones.
    let x = Tensor::<4>::random([16, 3, 8, 8], Distribution::Default, &device);
    let labels: Vec<i64> = (0..16).map(|i| i % 2).collect();
    let shift = Tensor::<1, Int>::from_ints(labels.as_slice(), &device)
        .float()
        .reshape([16, 1, 1, 1]);
    let x = x + shift;
    let y = Tensor::<1, Int>::from_ints(labels.as_slice(), &device);

    let mut losses = Vec::new();
    for _ in 0..20 {
        let loss = autocast(FloatDType::F16, || {
            let logits = model.forward(x.clone());
            assert_eq!(logits.dtype(), DType::F16); // the linear layer ran in f16
            loss_fn.forward(logits, y.clone()) // losses compute in f32
        });
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(scaler.scale(loss).backward(), &model);
        let (stepped, _) = scaler.step(model, grads, |m, g| optimizer.step(0.1, m, g))?;
        model = stepped;
        scaler.update()?;
    }
    assert_eq!(model.fc.weight.val().dtype(), DType::F32); // master weights stay f32
    println!(
        "loss {:.4} → {:.4}; scale {}, {} skipped steps",
        losses[0],
        losses[19],
        scaler.scale_factor(),
        scaler.state().skipped_steps
    );
    assert!(losses[19] < losses[0]);

    // The Trainer: `--amp f16` on `cargo xtask train classify|segment|finetune`, or in code:
    let run = kindling::RunConfig {
        amp: kindling::Amp::F16,
        ..Default::default()
    };
    println!(
        "RunConfig {{ amp: {}, .. }}: loss scaling {}",
        run.amp,
        if run.grad_scaler.enabled_for(run.amp) {
            "on"
        } else {
            "off"
        }
    );
    Ok(())
}
