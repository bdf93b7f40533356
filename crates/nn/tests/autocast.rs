//! Kindling's layers under autocast: convolutions and linear layers compute (and return) the
//! low dtype, BatchNorm and LayerNorm compute in f32 (BatchNorm's statistics stay f32), and
//! after an optimizer step every parameter and gradient is still f32 (the master weights).

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{DType, Device, Distribution, FloatDType, Tensor};
use kindling_nn::{
    BatchNorm, BatchNormConfig, Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig,
    LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use kindling_precision::{autocast, full};

#[derive(Module, Debug)]
struct Net {
    conv: Conv2d,
    bn: BatchNorm,
    up: ConvTranspose2d,
    ln: LayerNorm,
    fc: Linear,
}

/// Every float tensor's dtype (parameters and BatchNorm's running statistics).
struct Dtypes(Vec<DType>);

impl ModuleVisitor for Dtypes {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0.push(param.val().dtype());
    }
}

#[test]
fn autocast_ops_are_low_norms_are_f32_and_master_weights_stay_f32() {
    let device = Device::flex().autodiff();
    let net = Net {
        conv: Conv2dConfig::new(3, 4, [3, 3])
            .with_padding([1, 1])
            .init(&device),
        bn: BatchNormConfig::new(4).init(&device),
        up: ConvTranspose2dConfig::new(4, 4, [2, 2])
            .with_stride([2, 2])
            .init(&device),
        ln: LayerNormConfig::new(16).init(&device),
        fc: LinearConfig::new(16, 2).init(&device),
    };
    let mut optimizer = AdamConfig::new().init();
    let mut net = net;
    for dtype in [FloatDType::F16, FloatDType::BF16] {
        let low = DType::from(dtype);
        let x = Tensor::<4>::random([2, 3, 8, 8], Distribution::Default, &device);
        let loss = autocast(dtype, || {
            let h = net.conv.forward(x);
            assert_eq!(h.dtype(), low, "conv");
            let h = net.bn.forward(h);
            assert_eq!(h.dtype(), low, "BatchNorm returns its input's dtype");
            let h = net.up.forward(h);
            assert_eq!(h.dtype(), low, "transposed conv");
            let h = net.ln.forward(h.reshape([2, 4 * 16 * 16 / 16, 16]));
            assert_eq!(h.dtype(), DType::F32, "LayerNorm runs in f32");
            let y = net.fc.forward(h);
            assert_eq!(y.dtype(), low, "linear");
            full(y).powi_scalar(2).mean()
        });
        assert_eq!(loss.dtype(), DType::F32);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optimizer.step(1e-3, net, grads);
        let mut dtypes = Dtypes(Vec::new());
        net.visit(&mut dtypes);
        assert!(
            dtypes.0.iter().all(|d| *d == DType::F32),
            "{dtype:?}: {:?}",
            dtypes.0
        );
    }
    let stats = [net.bn.running_mean.value(), net.bn.running_var.value()];
    assert!(stats.iter().all(|s| s.dtype() == DType::F32));
    // The statistics moved: BatchNorm trained under autocast.
    let var: Vec<f32> = stats[1].to_data().try_to_vec().unwrap();
    assert!(var.iter().all(|v| (v - 1.0).abs() > 1e-6), "{var:?}");
}
