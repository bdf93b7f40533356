//! Every zoo model trains under autocast: a forward pass in training mode (dropout and
//! stochastic depth on) under `autocast(bf16)` gives low-precision logits, the loss runs in
//! f32, and every parameter gets an f32 gradient (the f32 master weights); BatchNorm's running
//! statistics stay f32.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{DType, Device, FloatDType, Int, Tensor};
use kindling_finetune::{ModelOptions, create_model, list_models};
use kindling_precision::{autocast, full};

/// Collects every float parameter's (id, dtype) and the dtype of its gradient.
struct Dtypes<'a> {
    grads: &'a GradientsParams,
    found: Vec<(DType, Option<DType>)>,
}

impl ModuleVisitor for Dtypes<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = self.grads.get::<D>(param.id).map(|g| g.dtype());
        self.found.push((param.val().dtype(), grad));
    }
}

fn step_under_autocast(name: &str, dtype: FloatDType) {
    let device = Device::flex().autodiff();
    let options = ModelOptions::default().num_classes(3).drop_rate(0.2);
    // Stochastic depth where the architecture has it.
    let model = create_model(name, options.clone().drop_path_rate(0.2), &device)
        .or_else(|_| create_model(name, options, &device))
        .expect("builds");
    let size = if name.starts_with("vit") { 224 } else { 32 };
    let batch = if name.starts_with("vit") { 1 } else { 2 };
    let x = Tensor::<4>::random(
        [batch, 3, size, size],
        burn::tensor::Distribution::Default,
        &device,
    );
    let targets = Tensor::<1, Int>::from_ints([0, 2][..batch].to_vec().as_slice(), &device);
    let (logits_dtype, loss) = autocast(dtype, || {
        let logits = model.forward(x);
        let dt = logits.dtype();
        let loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(full(logits), targets);
        (dt, loss)
    });
    assert_eq!(logits_dtype, DType::from(dtype), "{name}: logits");
    assert_eq!(loss.dtype(), DType::F32, "{name}: loss");
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut dtypes = Dtypes {
        grads: &grads,
        found: Vec::new(),
    };
    model.visit(&mut dtypes);
    for (i, (param, grad)) in dtypes.found.iter().enumerate() {
        assert_eq!(*param, DType::F32, "{name}: parameter {i}");
        if let Some(grad) = grad {
            assert_eq!(*grad, DType::F32, "{name}: gradient of parameter {i}");
        }
    }
    let with_grad = dtypes.found.iter().filter(|(_, g)| g.is_some()).count();
    assert!(with_grad > 0, "{name}: no gradients");
}

#[test]
fn every_zoo_model_steps_under_autocast() {
    for name in list_models(&[], &[], false) {
        eprintln!("{name}");
        step_under_autocast(&name, FloatDType::BF16);
    }
}
