//! A real third-party ONNX model through the importer: PaddleOCR's text-direction classifier
//! as the PyPI package rapidocr-onnxruntime 1.4.4 ships it (`tests/fixtures/onnx/`). The
//! module in `models/` is what `cargo xtask import-onnx` wrote; its outputs equal
//! onnxruntime 1.32.0's, and it fine-tunes with Kindling's trainer and surgery.

#[allow(clippy::all, unused, dead_code)]
mod ppocr_cls {
    include!("models/ppocr_cls.rs");
}

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use burn_store::ModuleSnapshot;
use kindling_augment::Batch;
use kindling_finetune::{freeze, surgery, testing::fill};
use kindling_onnx::{ImportOptions, Imported, OnnxError, import, load_weights};
use kindling_train::tasks::classifier::Classifier;
use kindling_train::tasks::classify::data::{Dataset, RgbSamples, Sample};
use kindling_train::tasks::classify::synth;
use kindling_train::{Goal, History, Result as TrainResult, StepOutput, Task, TaskData, Trainer};
use ppocr_cls::Model;

fn fixtures() -> PathBuf {
    std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
    .join("../../tests/fixtures/onnx")
}

fn imported(dir: &Path) -> Imported {
    let options = ImportOptions {
        name: Some("ppocr_cls".into()),
        logits: true,
    };
    import(
        &fixtures().join("ch_ppocr_mobile_v2.0_cls_infer.onnx"),
        dir,
        &options,
    )
    .unwrap()
}

#[test]
fn the_committed_module_is_what_the_importer_writes() {
    let dir = tempfile::tempdir().unwrap();
    let done = imported(dir.path());
    let fresh = std::fs::read_to_string(&done.source).unwrap();
    let committed = include_str!("models/ppocr_cls.rs");
    assert!(
        fresh == committed,
        "regenerate crates/onnx/tests/models with import-onnx"
    );
    assert_eq!(done.removed_softmax.as_deref(), Some("Softmax@0"));
    assert_eq!(done.signature.inputs[0].dims, ["?", "3", "?", "?"]);
}

#[test]
fn logits_and_probabilities_equal_onnxruntime() {
    let dir = tempfile::tempdir().unwrap();
    let done = imported(dir.path());
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("ppocr_cls_expected.json")).unwrap(),
    )
    .unwrap();
    let device = Device::flex();
    let mut model = Model::new(&device);
    load_weights(&mut model, &done.weights).unwrap();
    let run = |shape: [usize; 4]| {
        let x = Tensor::<4>::from_data(TensorData::new(fill("input", &shape), shape), &device);
        model.forward(x)
    };
    let logits = run([2, 3, 48, 192]);
    let probs = softmax(logits.clone(), 1);
    // Square images, as `train finetune --onnx` feeds them.
    let square = run([2, 3, 48, 48]);
    for (name, got) in [
        ("logits", logits),
        ("probs", probs),
        ("logits_square", square),
    ] {
        let got: Vec<f32> = got.into_data().try_to_vec().unwrap();
        let want: Vec<f64> = expected[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), want.len());
        let worst = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (*g as f64 - w).abs())
            .fold(0.0, f64::max);
        eprintln!("{name}: max |diff| vs onnxruntime {worst:.1e}");
        assert!(worst <= 1e-4, "{name}: max |diff| {worst:e}");
    }
}

#[test]
fn bad_files_and_unsupported_ops_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let mut model = Model::new(&device);
    let missing = dir.path().join("none.bpk");
    let err = load_weights(&mut model, &missing).unwrap_err().to_string();
    assert!(err.contains("none.bpk"), "{err}");

    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, b"\x08\x07garbage").unwrap();
    let err = import(&corrupt, dir.path(), &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("corrupt.onnx"), "{err}");

    // The same model with one op renamed to one no importer has.
    use onnx_ir::Message;
    let bytes = std::fs::read(fixtures().join("ch_ppocr_mobile_v2.0_cls_infer.onnx")).unwrap();
    let mut proto = onnx_ir::ModelProto::parse_from_bytes(&bytes).unwrap();
    let graph = proto.graph.mut_or_insert_default();
    let hs = graph
        .node
        .iter_mut()
        .find(|n| n.op_type == "HardSigmoid")
        .unwrap();
    hs.op_type = "FancyActivation".into();
    let node = hs.name.clone();
    let edited = dir.path().join("edited.onnx");
    std::fs::write(&edited, proto.write_to_bytes().unwrap()).unwrap();
    match import(&edited, dir.path(), &ImportOptions::default()) {
        Err(e @ OnnxError::UnsupportedOps { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("FancyActivation") && msg.contains(&node),
                "{msg}"
            );
        }
        other => panic!("expected UnsupportedOps, got {other:?}"),
    }
}

/// The imported classifier fine-tuned on three shapes: a fresh 3-class head, its first two
/// blocks frozen.
struct OnnxTask {
    weights: PathBuf,
    core: Classifier,
    /// (first conv weights, head weights) after each epoch.
    seen: Mutex<Vec<(Vec<f32>, Vec<f32>)>>,
}

const FIRST_CONV: &str = "submodule1.conv2d1.weight";
const HEAD: &str = "submodule4.linear1";

fn values(model: &Model, path: &str) -> Vec<f32> {
    let t = model
        .collect(None, None, false)
        .into_iter()
        .find(|t| t.name == path)
        .unwrap_or_else(|| panic!("no {path}"));
    burn_store::bridge::to_data(&t)
        .unwrap()
        .convert::<f32>()
        .try_to_vec()
        .unwrap()
}

impl Task for OnnxTask {
    type Model = Model;

    fn name(&self) -> &str {
        "onnx"
    }

    fn data(&self) -> TrainResult<TaskData> {
        let samples = |range: std::ops::Range<u64>| {
            let mut out = Vec::new();
            for class in 0..3 {
                for i in range.clone() {
                    let pixels = synth::render(3, class, i, 48).into_raw();
                    out.push(Sample {
                        pixels,
                        label: class,
                    });
                }
            }
            Arc::new(out)
        };
        let (train, val) = (samples(0..8), samples(8..12));
        self.core.set_data(Dataset {
            classes: vec!["circle".into(), "square".into(), "triangle".into()],
            train: train.clone(),
            val: val.clone(),
            skipped: Vec::new(),
            image_size: 48,
        });
        Ok(TaskData {
            train: Arc::new(RgbSamples::new(train, 48)),
            val: Arc::new(RgbSamples::new(val, 48)),
            mean: vec![0.5; 3],
            std: vec![0.5; 3],
            input_size: Some((48, 48, 3)),
        })
    }

    fn init_model(&self, device: &Device) -> TrainResult<Model> {
        self.core.init_loss(device, 3)?;
        let mut model = Model::new(device);
        load_weights(&mut model, &self.weights).unwrap();
        let (model, replaced) = surgery::replace_classifier(model, HEAD, 3).unwrap();
        assert_eq!(replaced, [format!("{HEAD}.weight"), format!("{HEAD}.bias")]);
        Ok(freeze::freeze(model, &["submodule1", "submodule2"]).unwrap())
    }

    fn train_columns(&self) -> Vec<String> {
        vec!["train_accuracy".into()]
    }

    fn best_metric(&self) -> (String, Goal) {
        ("val_accuracy".into(), Goal::Max)
    }

    fn train_step(&self, model: &Model, batch: &Batch) -> TrainResult<StepOutput> {
        self.core.train_step(|x| model.forward(x), batch)
    }

    fn evaluate(
        &self,
        model: &Model,
        batches: &mut dyn Iterator<Item = TrainResult<Batch>>,
    ) -> TrainResult<Vec<f64>> {
        self.core.evaluate(|x| model.forward(x), batches)
    }

    fn after_epoch(&self, model: &Model, _: &History, _: &Path) -> TrainResult<()> {
        let head = values(model, &format!("{HEAD}.weight"));
        self.seen
            .lock()
            .unwrap()
            .push((values(model, FIRST_CONV), head));
        Ok(())
    }
}

#[test]
fn an_imported_model_fine_tunes_with_the_trainer() {
    let dir = tempfile::tempdir().unwrap();
    let done = imported(&dir.path().join("model"));
    let device = Device::flex();
    let mut pretrained = Model::new(&device);
    load_weights(&mut pretrained, &done.weights).unwrap();
    let task = OnnxTask {
        weights: done.weights.clone(),
        core: Classifier::new("onnx", Default::default()),
        seen: Mutex::new(Vec::new()),
    };
    let run = kindling_run::RunConfig {
        epochs: 4,
        batch_size: 8,
        workers: 1,
        out: dir.path().join("run"),
        optimizer: kindling_run::OptimizerConfig {
            lr: 0.05,
            ..Default::default()
        },
        ..Default::default()
    };
    let summary = Trainer::new(run).fit(&task).unwrap();
    let loss = summary.history.series("train_loss");
    assert!(loss[3] < 0.7 * loss[0], "training loss {loss:?}");
    let seen = task.seen.lock().unwrap();
    let first = values(&pretrained, FIRST_CONV);
    for (epoch, (conv, head)) in seen.iter().enumerate() {
        assert_eq!(
            conv,
            &first,
            "the frozen first conv moved in epoch {}",
            epoch + 1
        );
        assert_eq!(head.len(), 200 * 3);
    }
    assert_ne!(seen[0].1, seen[3].1, "the head trains");
}

/// What `train finetune --onnx` builds: the importer's weights, a fresh head found by walking
/// the module, a grayscale stem; a size at which the graph pools to nothing is refused; the
/// saved fine-tuned weights load back with their new head and stem.
#[test]
fn the_imported_source_builds_saves_and_reloads_a_fine_tuned_model() {
    use kindling_train::tasks::finetune::{FinetuneRun, Imported, ModelSource, PretrainedSpec};
    let dir = tempfile::tempdir().unwrap();
    let done = imported(dir.path());
    let source = Imported::new("ppocr_cls", done.weights.clone(), Model::new, |m, x| {
        m.forward(x)
    })
    .unwrap();
    assert_eq!(source.classifier(), HEAD);
    let device = Device::flex();
    let mut cfg = FinetuneRun::default().finetune;
    cfg.image_size = 32;
    let err = source.build(&cfg, 5, &device).err().unwrap().to_string();
    assert!(
        err.contains("32×32") && err.contains("--image-size"),
        "{err}"
    );
    cfg.image_size = 48;
    cfg.in_chans = 1;
    let model = source.build(&cfg, 5, &device).unwrap();
    let x = Tensor::<4>::ones([1, 1, 48, 48], &device);
    let logits = source.forward(&model, x.clone());
    assert_eq!(logits.dims(), [1, 5]);
    // The grey stem sees a grey image as the RGB stem saw it repeated over three channels.
    let mut rgb = Model::new(&device);
    load_weights(&mut rgb, &done.weights).unwrap();
    let first_conv = |m: &Model| values(m, FIRST_CONV);
    let summed: Vec<f32> = first_conv(&rgb)
        .chunks(9 * 3)
        .flat_map(|filter| {
            (0..9)
                .map(|k| filter[k] + filter[9 + k] + filter[18 + k])
                .collect::<Vec<_>>()
        })
        .collect();
    let grey = first_conv(&model);
    assert_eq!(grey.len(), summed.len());
    assert!(grey.iter().zip(&summed).all(|(a, b)| (a - b).abs() < 1e-6));

    let saved = dir.path().join("fine-tuned.bpk");
    source.save(&model, &saved).unwrap();
    cfg.pretrained = PretrainedSpec::File(saved);
    let again = source.build(&cfg, 5, &device).unwrap();
    let diff: f32 = (source.forward(&again, x.clone()) - logits)
        .abs()
        .max()
        .into_scalar();
    assert_eq!(diff, 0.0, "the reloaded model differs");
}

/// The import under master weights (apex O2; its Burn layers do not follow autocast): the f16
/// working copy runs, its BatchNorms kept f32, and one step trains the f32 masters. Its logits
/// are 7.4e-2 from the f32 model's here: f16 activations through the graph's ~60 layers, not
/// its BatchNorms (6.9e-2 with their parameters cast to f16 as well, 7.1e-2 with Burn's
/// BatchNorm computing in f16). The bound is that measured gap plus margin.
#[test]
fn the_import_trains_on_f32_master_weights_through_an_f16_copy() {
    use burn::module::Module;
    use burn::optim::{GradientsParams, SgdConfig};
    use burn::tensor::{DType, FloatDType, Int};
    use kindling_precision::{GradScaler, GradScalerConfig, MasterWeights};
    let dir = tempfile::tempdir().unwrap();
    let done = imported(dir.path());
    let device = Device::flex().autodiff();
    let mut master = Model::new(&device);
    load_weights(&mut master, &done.weights).unwrap();
    let shape = [2, 3, 48, 192];
    let x = Tensor::<4>::from_data(TensorData::new(fill("input", &shape), shape), &device);
    let reference: Vec<f32> = master
        .valid()
        .forward(x.clone().inner())
        .into_data()
        .try_to_vec()
        .unwrap();

    // The importer writes Kindling's BatchNorm, which the copy keeps in f32 (apex's
    // keep_batchnorm_fp32), as `train finetune --onnx --amp` does.
    let source = include_str!("models/ppocr_cls.rs");
    assert!(kindling_onnx::has_kindling_batchnorm(source));
    let o2 = MasterWeights::new(FloatDType::F16).keep_batchnorm_f32(true);
    let working = o2.working(&master);
    let dtypes: std::collections::HashMap<String, DType> = working
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name, t.dtype))
        .collect();
    assert_eq!(dtypes["submodule1.batchnormalization1.gamma"], DType::F32);
    assert_eq!(
        dtypes["submodule1.batchnormalization1.running_var"],
        DType::F32
    );
    assert_eq!(dtypes["submodule1.conv2d1.weight"], DType::F16);
    let logits = working.valid().forward(o2.input(x.clone()).inner());
    assert_eq!(logits.dtype(), DType::F16);
    let got: Vec<f32> = logits
        .cast(FloatDType::F32)
        .into_data()
        .try_to_vec()
        .unwrap();
    let worst = got
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    eprintln!("f16 working copy vs f32 logits: max |diff| {worst:.1e}");
    assert!(worst < 0.1, "{got:?} vs {reference:?}");

    // f16 gradients overflow at the initial scale 2^16: the scaler skips and halves until a
    // step goes through, as in training.
    let mut scaler = GradScaler::new(GradScalerConfig::new()).unwrap();
    let labels = Tensor::<1, Int>::from_ints([0, 1], &device);
    let loss_fn = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
    let mut optimizer = SgdConfig::new().init();
    let before = values(&master, HEAD_WEIGHT);
    let mut master = master;
    let mut skipped = 0;
    loop {
        let working = o2.working(&master);
        let logits = working.forward(o2.input(x.clone())).cast(FloatDType::F32);
        let loss = loss_fn.forward(logits, labels.clone());
        let grads = GradientsParams::from_grads(scaler.scale(loss).backward(), &master);
        let (stepped, took) = scaler
            .step(master, grads, |m, g| optimizer.step(0.1, m, g))
            .unwrap();
        scaler.update().unwrap();
        master = o2.restore(stepped);
        if took {
            break;
        }
        skipped += 1;
        assert_eq!(
            values(&master, HEAD_WEIGHT),
            before,
            "a skipped step moved the head"
        );
    }
    eprintln!(
        "first step taken after {skipped} skipped, scale {}",
        scaler.scale_factor()
    );
    let after = values(&master, HEAD_WEIGHT);
    assert_ne!(before, after, "the f32 head trained");
    let t = master
        .collect(None, None, false)
        .into_iter()
        .find(|t| t.name == HEAD_WEIGHT)
        .unwrap();
    assert_eq!(t.dtype, DType::F32);
}

const HEAD_WEIGHT: &str = "submodule4.linear1.weight";
