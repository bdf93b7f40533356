//! Master weights for a module of Burn's own layers (which ignore autocast): the working copy
//! computes in f16, the master's parameters get f32 gradients and stay f32 after the step,
//! BatchNorm's statistics are stored back in f32, and the loss is the f32 model's within f16
//! rounding.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{DType, Device, Distribution, FloatDType, Tensor};
use kindling_precision::{GradScaler, GradScalerConfig, MasterWeights};

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

struct Dtypes<'a>(Option<&'a GradientsParams>, Vec<(DType, Option<DType>)>);

impl ModuleVisitor for Dtypes<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let grad = self.0.and_then(|g| g.get::<D>(param.id)).map(|g| g.dtype());
        self.1.push((param.val().dtype(), grad));
    }
}

#[test]
fn a_burn_module_steps_on_f32_masters_through_an_f16_working_copy() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let mut master = Net {
        conv: Conv2dConfig::new([3, 4], [3, 3]).init(&device),
        bn: BatchNormConfig::new(4).init(&device),
        fc: LinearConfig::new(4, 2).init(&device),
    };
    let x = Tensor::<4>::random([4, 3, 8, 8], Distribution::Default, &device);
    let o2 = MasterWeights::new(FloatDType::F16);
    let mut optimizer = AdamConfig::new().init();
    let mut scaler = GradScaler::new(GradScalerConfig::new()).unwrap();
    let f32_loss: f32 = master
        .forward(x.clone())
        .powi_scalar(2)
        .mean()
        .into_scalar();

    let working = o2.working(&master);
    let logits = working.forward(o2.input(x));
    assert_eq!(
        logits.dtype(),
        DType::F16,
        "the working copy computes in f16"
    );
    let loss = logits.cast(FloatDType::F32).powi_scalar(2).mean();
    let value: f32 = loss.clone().into_scalar();
    assert!(
        ((value - f32_loss) / f32_loss).abs() < 1e-2,
        "{value} vs f32 {f32_loss}"
    );
    let grads = GradientsParams::from_grads(scaler.scale(loss).backward(), &master);
    let mut seen = Dtypes(Some(&grads), Vec::new());
    master.visit(&mut seen);
    let with_grads: Vec<_> = seen.1.iter().filter_map(|(_, g)| *g).collect();
    assert_eq!(
        with_grads.len(),
        6,
        "conv, BatchNorm and linear weights and biases"
    );
    assert!(with_grads.iter().all(|g| *g == DType::F32), "{:?}", seen.1);

    let (stepped, took) = scaler
        .step(master, grads, |m, g| optimizer.step(1e-3, m, g))
        .unwrap();
    assert!(took);
    scaler.update().unwrap();
    master = o2.restore(stepped);
    let mut after = Dtypes(None, Vec::new());
    master.visit(&mut after);
    assert!(
        after.1.iter().all(|(d, _)| *d == DType::F32),
        "{:?}",
        after.1
    );
    // BatchNorm's statistics moved (updated during the f16 step) and are f32 again.
    let var: Vec<f32> = master
        .bn
        .running_var
        .value()
        .to_data()
        .try_to_vec()
        .unwrap();
    assert!(var.iter().all(|v| (v - 1.0).abs() > 1e-4), "{var:?}");
}
