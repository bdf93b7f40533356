//! `cargo xtask zoo`: list the model zoo, describe a model, classify an image.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor};
use clap::{Args, Subcommand};
use kindling::augment::ImageBuf;
use kindling::finetune::{self, EvalTransform, ModelOptions};
use kindling::nn::flops::count_macs;

/// What `cargo xtask zoo` does.
#[derive(Debug, Subcommand)]
pub enum ZooCmd {
    /// Model names (timm's list_models: shell wildcards, several filters unioned)
    List(ListArgs),
    /// A model's pretrained configuration, parameter count and multiply-accumulates
    Info {
        /// Model name, or name.tag
        name: String,
    },
    /// Top-5 classes of an image
    Predict(PredictArgs),
}

/// `zoo list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Wildcard filters (e.g. "resnet*" "vgg1?"); none lists every model
    filters: Vec<String>,
    /// Exclude names matching this filter (repeatable)
    #[arg(long)]
    exclude: Vec<String>,
    /// Only names with pretrained weights, as name.tag
    #[arg(long)]
    pretrained: bool,
}

/// `zoo predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model name, or name.tag (its eval transform is used)
    name: String,
    /// Weights file (.pth, .pt, .safetensors or .bpk); default: the cached pretrained file
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The image to classify
    #[arg(long)]
    image: PathBuf,
    /// Class names, one per line (a fine-tuned model's classes.txt); sets the classifier size
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Model input side (default: the pretrained configuration's); the eval resize follows
    #[arg(long)]
    image_size: Option<usize>,
}

/// Runs a `zoo` subcommand.
pub fn run(cmd: &ZooCmd) -> Result<()> {
    match cmd {
        ZooCmd::List(args) => {
            let f: Vec<&str> = args.filters.iter().map(String::as_str).collect();
            let x: Vec<&str> = args.exclude.iter().map(String::as_str).collect();
            for name in finetune::list_models(&f, &x, args.pretrained) {
                println!("{name}");
            }
            Ok(())
        }
        ZooCmd::Info { name } => info(name),
        ZooCmd::Predict(args) => predict(args),
    }
}

fn info(name: &str) -> Result<()> {
    let device = Device::flex();
    let entry = finetune::model_entry(name)?;
    let model = finetune::create_model(name, ModelOptions::default(), &device)?;
    println!("model        {}", entry.name);
    let params = finetune::freeze::parameters(&model);
    let count = |buffer: bool| -> usize {
        params
            .iter()
            .filter(|p| p.buffer == buffer)
            .map(|p| p.numel)
            .sum()
    };
    println!(
        "parameters   {} (+{} BatchNorm statistics)",
        count(false),
        count(true)
    );
    println!("first_conv   {}", entry.first_conv);
    println!("classifier   {}", entry.classifier);
    println!("num_features {}", model.num_features());
    match finetune::pretrained_cfg(name) {
        Ok(cfg) => {
            let size = cfg.input_size;
            let x = Tensor::<4>::zeros([1, size[0], size[1], size[2]], &device);
            let (_, macs) = count_macs(|| model.forward(x));
            println!(
                "GMACs        {:.3} at {}×{} (convolutions, linear layers, attention)",
                macs as f64 / 1e9,
                size[1],
                size[2]
            );
            println!(
                "tags         {}",
                entry
                    .weights
                    .iter()
                    .map(|w| w.tag)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            println!("default      {}", cfg.name);
            println!("input_size   {:?}", cfg.input_size);
            println!("interpolation {:?}", cfg.interpolation);
            println!(
                "crop_pct     {:.4} (resize {})",
                cfg.crop_pct,
                EvalTransform::from_cfg(&cfg).resize_size
            );
            println!("crop_mode    {}", cfg.crop_mode);
            println!("mean         {:?}", cfg.mean);
            println!("std          {:?}", cfg.std);
            println!("num_classes  {}", cfg.num_classes);
            println!("hub_id       {}", cfg.hub_id);
            println!("license      {}", cfg.license);
            let w = entry
                .weights
                .iter()
                .find(|w| w.tag == cfg.tag)
                .context("default tag")?;
            println!(
                "cache        {}",
                finetune::hub::cached_path(entry.name, w).display()
            );
        }
        Err(_) => println!("pretrained   none"),
    }
    Ok(())
}

fn predict(args: &PredictArgs) -> Result<()> {
    let device = Device::flex();
    let cfg = finetune::pretrained_cfg(&args.name)?;
    let labels: Option<Vec<String>> = match &args.labels {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read labels file {}", path.display()))?;
            let names: Vec<String> = text.lines().map(str::to_string).collect();
            if names.is_empty() {
                bail!("labels file {} lists no classes", path.display());
            }
            Some(names)
        }
        None => None,
    };
    let mut options = match &args.weights {
        Some(path) => ModelOptions::default().pretrained_file(path),
        None => ModelOptions::default().pretrained(true),
    };
    if let Some(names) = &labels {
        options = options.num_classes(names.len());
    }
    let model = finetune::create_model(&args.name, options, &device)?;
    let img = image::open(&args.image)
        .with_context(|| format!("cannot read image {}", args.image.display()))?
        .to_rgb8();
    let (w, h) = img.dimensions();
    let img = ImageBuf::new(w as usize, h as usize, 3, img.into_raw())?;
    let mut transform = EvalTransform::from_cfg(&cfg);
    if let Some(size) = args.image_size {
        transform = EvalTransform::new(size, cfg.crop_pct, cfg.interpolation, cfg.mean, cfg.std);
    }
    let x = transform.apply(&[img], &device)?;
    let probs: Vec<f32> = softmax(model.forward(x), 1).into_data().try_to_vec()?;
    if probs.is_empty() {
        bail!("the model has no classifier (num_classes = 0)");
    }
    let names: Option<Vec<&str>> = match &labels {
        Some(names) => Some(names.iter().map(String::as_str).collect()),
        None => cfg.label_names(),
    };
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    for &i in order.iter().take(5) {
        let label = names.as_ref().and_then(|n| n.get(i)).copied().unwrap_or("");
        println!("{:>6.2}%  {i:>4}  {label}", probs[i] * 100.0);
    }
    Ok(())
}
