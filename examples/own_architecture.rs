//! Your own architecture with a PyTorch `state_dict`: write the module in Burn, load the file
//! with a key-mapping table, get the zoo's mismatch report if anything does not fit.
//!
//! The model is MTCNN's PNet as facenet-pytorch 2.6.0 ships it (`data/pnet.pt`, a
//! legacy-format `torch.save` with PReLU layers, copied to `tests/fixtures/zoo/files/`); the
//! program checks its outputs against PyTorch's (`tests/fixtures/zoo/generate_pnet.py`).
//!
//! `cargo run -p kindling --example own_architecture`

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor, TensorData};
use kindling::finetune::{LoadOptions, load_with_key_map, testing::fill, weights::read_file};
use kindling::nn::{Conv2d, Conv2dConfig, Prelu};

/// PNet, with our own names for the two heads.
#[derive(Module, Debug)]
struct PNet {
    conv1: Conv2d,
    prelu1: Prelu,
    conv2: Conv2d,
    prelu2: Prelu,
    conv3: Conv2d,
    prelu3: Prelu,
    face_prob: Conv2d,
    box_reg: Conv2d,
}

impl PNet {
    fn new(device: &Device) -> Self {
        let conv = |i, o, k| Conv2dConfig::new(i, o, [k, k]).init(device);
        Self {
            conv1: conv(3, 10, 3),
            prelu1: Prelu::new(10, 0.25, device),
            conv2: conv(10, 16, 3),
            prelu2: Prelu::new(16, 0.25, device),
            conv3: conv(16, 32, 3),
            prelu3: Prelu::new(32, 0.25, device),
            face_prob: conv(32, 2, 1),
            box_reg: conv(32, 4, 1),
        }
    }

    /// (box regression, face probabilities), as PyTorch's `forward` returns them.
    fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let x = self.prelu1.forward(self.conv1.forward(x));
        let x = max_pool2d(x, MaxPoolOptions::new([2, 2]).with_ceil_mode(true));
        let x = self.prelu2.forward(self.conv2.forward(x));
        let x = self.prelu3.forward(self.conv3.forward(x));
        (
            self.box_reg.forward(x.clone()),
            softmax(self.face_prob.forward(x), 1),
        )
    }
}

fn main() -> anyhow::Result<()> {
    let device = Device::flex();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/zoo/files");
    let path = dir.join("pnet.pt");

    let mut net = PNet::new(&device);
    // facenet-pytorch's names → ours; every other key already matches.
    let key_map = [(r"^conv4_1\.", "face_prob."), (r"^conv4_2\.", "box_reg.")];
    let options = LoadOptions {
        strict: true,
        source_name: path.display().to_string(),
    };
    let report = load_with_key_map(&mut net, read_file(&path)?, &key_map, &options)?;
    println!("loaded {} tensors from {}", report.applied, path.display());

    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pnet_expected.json"))?)?;
    let shape = [2, 3, 20, 26];
    let x = Tensor::<4>::from_data(TensorData::new(fill("input", &shape), shape), &device);
    let (boxes, probs) = net.forward(x);
    for (name, got) in [("boxes", boxes), ("probs", probs)] {
        let got: Vec<f32> = got.into_data().try_to_vec()?;
        let want = expected[name]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("no {name}"))?;
        let worst = got
            .iter()
            .zip(want)
            .map(|(g, w)| (*g as f64 - w.as_f64().unwrap_or(f64::NAN)).abs())
            .fold(0.0, f64::max);
        println!("{name}: max |Δ| vs PyTorch {worst:.1e}");
        anyhow::ensure!(
            got.len() == want.len() && worst <= 1e-4,
            "{name} differ from PyTorch by {worst}"
        );
    }

    // A table that leaves a key unmatched gets the report, not a silently untrained layer.
    let err = load_with_key_map(
        &mut PNet::new(&device),
        read_file(&path)?,
        &key_map[..1],
        &options,
    )
    .unwrap_err();
    println!("with one rule missing:\n{err}");
    Ok(())
}
