//! Your own architecture with a PyTorch `state_dict`: write the module in Burn, load the file
//! with a key-mapping table, get the zoo's mismatch report if anything does not fit.
//!
//! The model is MTCNN's PNet as facenet-pytorch 2.6.0 ships it (`data/pnet.pt`, a
//! legacy-format `torch.save` with PReLU layers, copied to `tests/fixtures/zoo/files/`); the
//! program checks its outputs against PyTorch's (`tests/fixtures/zoo/generate_pnet.py`).
//!
//! Then it fine-tunes the network as PyTorch users do: the face head replaced by a fresh
//! 2-class layer (circles against squares on 12×12 patches, PNet's input size; 200 per class),
//! the first block frozen, trained by Kindling's `Trainer` for 6 epochs (measured: training
//! loss 0.72 → 0.49, validation accuracy 0.67–0.75, chance 0.5).
//!
//! `cargo run -p kindling --example own_architecture`

use burn::module::Module;
use burn::tensor::activation::softmax;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor, TensorData};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use kindling::augment::Batch;
use kindling::finetune::{
    LoadOptions, freeze, load_with_key_map, surgery, testing::fill, weights::read_file,
};
use kindling::nn::{Conv2d, Conv2dConfig, Prelu};
use kindling::train::tasks::classifier::Classifier;
use kindling::train::tasks::classify::data::{Dataset, RgbSamples, Sample};
use kindling::train::tasks::classify::synth;
use kindling::train::{History, StepOutput, Task, TaskData, Trainer};

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

    fn features(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.prelu1.forward(self.conv1.forward(x));
        let x = max_pool2d(x, MaxPoolOptions::new([2, 2]).with_ceil_mode(true));
        let x = self.prelu2.forward(self.conv2.forward(x));
        self.prelu3.forward(self.conv3.forward(x))
    }

    /// (box regression, face probabilities), as PyTorch's `forward` returns them.
    fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let x = self.features(x);
        (
            self.box_reg.forward(x.clone()),
            softmax(self.face_prob.forward(x), 1),
        )
    }

    /// The face head's logits `[N, classes]` of 12×12 patches (a 1×1 output map).
    fn head_logits(&self, x: Tensor<4>) -> Tensor<2> {
        self.face_prob.forward(self.features(x)).flatten(1, 3)
    }
}

/// The key map from facenet-pytorch's names to ours; every other key already matches.
const KEY_MAP: [(&str, &str); 2] = [(r"^conv4_1\.", "face_prob."), (r"^conv4_2\.", "box_reg.")];

/// PNet's head fine-tuned to tell circles from squares on 12×12 patches.
struct PatchTask {
    weights: PathBuf,
    core: Classifier,
    /// (conv1 weights, head weights) after each epoch.
    seen: Mutex<Vec<(Vec<f32>, Vec<f32>)>>,
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec()
        .unwrap_or_default()
}

impl Task for PatchTask {
    type Model = PNet;

    fn name(&self) -> &str {
        "pnet_patches"
    }

    fn data(&self) -> kindling::train::Result<TaskData> {
        let samples = |range: std::ops::Range<u64>| {
            let patches = (0..2).flat_map(|class| {
                range.clone().map(move |i| Sample {
                    pixels: synth::render(11, class, i, 12).into_raw(),
                    label: class,
                })
            });
            Arc::new(patches.collect::<Vec<_>>())
        };
        let (train, val) = (samples(0..200), samples(200..250));
        self.core.set_data(Dataset {
            classes: vec!["circle".into(), "square".into()],
            train: train.clone(),
            val: val.clone(),
            skipped: Vec::new(),
            image_size: 12,
        });
        Ok(TaskData {
            train: Arc::new(RgbSamples::new(train, 12)),
            val: Arc::new(RgbSamples::new(val, 12)),
            // facenet-pytorch's MTCNN normalisation: (x - 127.5) / 128.
            mean: vec![0.5; 3],
            std: vec![128.0 / 255.0; 3],
            input_size: Some((12, 12, 3)),
        })
    }

    fn init_model(&self, device: &Device) -> kindling::train::Result<PNet> {
        let fail =
            |e: kindling::finetune::FinetuneError| kindling::train::TrainError::Task(e.to_string());
        self.core.init_loss(device, 2)?;
        let mut net = PNet::new(device);
        let options = LoadOptions {
            strict: true,
            source_name: self.weights.display().to_string(),
        };
        load_with_key_map(
            &mut net,
            read_file(&self.weights).map_err(fail)?,
            &KEY_MAP,
            &options,
        )
        .map_err(fail)?;
        let (net, _) = surgery::replace_classifier(net, "face_prob", 2).map_err(fail)?;
        freeze::freeze(net, &["conv1", "prelu1"]).map_err(fail)
    }

    fn train_columns(&self) -> Vec<String> {
        vec!["train_accuracy".into()]
    }

    fn train_step(&self, model: &PNet, batch: &Batch) -> kindling::train::Result<StepOutput> {
        self.core.train_step(|x| model.head_logits(x), batch)
    }

    fn evaluate(
        &self,
        model: &PNet,
        batches: &mut dyn Iterator<Item = kindling::train::Result<Batch>>,
    ) -> kindling::train::Result<Vec<f64>> {
        self.core.evaluate(|x| model.head_logits(x), batches)
    }

    fn after_epoch(&self, model: &PNet, _: &History, _: &Path) -> kindling::train::Result<()> {
        let conv1 = values(model.conv1.weight.val());
        let head = values(model.face_prob.weight.val());
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((conv1, head));
        }
        Ok(())
    }
}

/// Fine-tunes PNet's head with its first block frozen; checks that it learns and that the
/// frozen block stays exactly as loaded.
fn fine_tune(weights: &Path) -> anyhow::Result<()> {
    let out =
        std::env::temp_dir().join(format!("kindling-own-architecture-{}", std::process::id()));
    let task = PatchTask {
        weights: weights.to_path_buf(),
        core: Classifier::new("pnet_patches", Default::default()),
        seen: Mutex::new(Vec::new()),
    };
    let run = kindling::RunConfig {
        epochs: 6,
        batch_size: 16,
        out: out.clone(),
        optimizer: kindling::OptimizerConfig {
            // PNet has no normalisation layers: 0.05 diverges within two epochs.
            lr: 0.01,
            ..Default::default()
        },
        ..Default::default()
    };
    let summary = Trainer::new(run).fit(&task)?;
    let _ = std::fs::remove_dir_all(&out);
    let loss = summary.history.series("train_loss");
    let accuracy = summary.history.series("val_accuracy");
    println!("fine-tuning: train loss {loss:.3?}, val accuracy {accuracy:.3?}");
    let last = loss[loss.len() - 1];
    anyhow::ensure!(
        last < 0.8 * loss[0],
        "the training loss did not fall: {loss:?}"
    );
    let mut loaded = PNet::new(&Device::flex());
    let options = LoadOptions {
        strict: true,
        source_name: weights.display().to_string(),
    };
    load_with_key_map(&mut loaded, read_file(weights)?, &KEY_MAP, &options)?;
    let first = values(loaded.conv1.weight.val());
    let seen = task.seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    for (epoch, (conv1, _)) in seen.iter().enumerate() {
        anyhow::ensure!(conv1 == &first, "frozen conv1 moved in epoch {}", epoch + 1);
    }
    anyhow::ensure!(
        seen[0].1 != seen[seen.len() - 1].1,
        "the new head did not train"
    );
    println!(
        "conv1 (frozen) unchanged over {} epochs; the head trained",
        seen.len()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let device = Device::flex();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/zoo/files");
    let path = dir.join("pnet.pt");

    let mut net = PNet::new(&device);
    let key_map = KEY_MAP;
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

    fine_tune(&path)
}
