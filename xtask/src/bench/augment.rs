//! `cargo xtask bench augment`: our augmenters and — in the same run, on the same decoded
//! images — Albumentations 2.0.8 and imgaug 0.4.0, per op and for three pipelines, with one and
//! two threads. Prints img/s and ratios; checks that 1 and 2 threads give identical output.
//!
//! The image sets follow `benches/augment/README.md` bit for bit (integer SplitMix64 recipe),
//! and every op mirrors the reference's parameter ranges (the table there).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use kindling::augment::{BBox, Image, ImageBuf, Keypoint, Pipeline, PipelineConfig, Sample};
use rayon::prelude::*;
use serde_json::Value;

use super::median;

/// Flags of `cargo xtask bench augment`.
#[derive(Debug, Clone, clap::Args)]
pub struct AugmentBenchArgs {
    /// Image sets: 224, 512, mixed (comma-separated)
    #[arg(long, default_value = "224", value_delimiter = ',')]
    pub images: Vec<String>,
    /// Thread counts to time (rayon threads here, worker processes for the references)
    #[arg(long, default_value = "1,2", value_delimiter = ',')]
    pub threads: Vec<usize>,
    /// Timed passes per op (median reported) after one warm-up
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Rounds of (references, ours) per image set: per op the median img/s of each side and
    /// the median of the rounds' ratios are reported (this VM's speed drifts by up to 2× within
    /// minutes, and each side's passes run minutes apart)
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Comma-separated subset of the ops and pipelines
    #[arg(long, value_delimiter = ',')]
    pub ops: Vec<String>,
    /// Skip the Python references
    #[arg(long)]
    pub no_reference: bool,
    /// Seed of the image sets and the pipelines
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Instead of timing: augment a stream of this many images and report resident memory
    #[arg(long)]
    pub stream: Option<usize>,
}

/// Our side of every benchmarked op: the pipeline, mirroring the reference's ranges.
const OPS: &[(&str, &str)] = &[
    ("hflip", r#"{"op": "fliplr", "p": 1.0}"#),
    ("vflip", r#"{"op": "flipud", "p": 1.0}"#),
    (
        "rotate",
        r#"{"op": "rotate", "rotate": [-30, 30], "interpolation": "bilinear", "mode": "constant"}"#,
    ),
    (
        "affine",
        r#"{"op": "affine", "scale": [0.9, 1.1], "translate_percent": {"x": [-0.1, 0.1], "y": [-0.1, 0.1]}, "rotate": [-25, 25], "shear": {"x": [-8, 8], "y": [-8, 8]}, "interpolation": "bilinear", "mode": "constant"}"#,
    ),
    ("rot90", r#"{"op": "rot90", "k": [1, 3]}"#),
    (
        "random_resized_crop",
        r#"{"op": "random_resized_crop", "width": 224, "height": 224}"#,
    ),
    (
        "resize",
        r#"{"op": "resize", "width": 256, "height": 256, "interpolation": "bilinear"}"#,
    ),
    ("crop", r#"{"op": "crop", "percent": [0, 0.2]}"#),
    ("pad", r#"{"op": "pad", "percent": 0.1}"#),
    (
        "crop_and_pad",
        r#"{"op": "crop_and_pad", "percent": [-0.2, 0.2]}"#,
    ),
    (
        "gaussian_blur",
        r#"{"op": "gaussian_blur", "sigma": [0.5, 2.0]}"#,
    ),
    ("average_blur", r#"{"op": "average_blur", "k": [3, 7]}"#),
    ("median_blur", r#"{"op": "median_blur", "k": [3, 7]}"#),
    ("motion_blur", r#"{"op": "motion_blur", "k": [3, 7]}"#),
    (
        "gaussian_noise",
        r#"{"op": "additive_gaussian_noise", "scale": [10, 50], "per_channel": 1.0}"#,
    ),
    ("salt_and_pepper", r#"{"op": "salt_and_pepper", "p": 0.05}"#),
    ("dropout", r#"{"op": "dropout", "p": 0.05}"#),
    (
        "coarse_dropout",
        r#"{"op": "coarse_dropout", "p": 0.05, "size_percent": 0.1}"#,
    ),
    (
        "brightness",
        r#"{"op": "multiply_brightness", "mul": [0.8, 1.2]}"#,
    ),
    (
        "contrast",
        r#"{"op": "linear_contrast", "alpha": [0.8, 1.2]}"#,
    ),
    ("multiply", r#"{"op": "multiply", "mul": [0.8, 1.2]}"#),
    (
        "hue_saturation",
        r#"{"op": "add_to_hue_and_saturation", "value_hue": [-20, 20], "value_saturation": [-20, 20]}"#,
    ),
    ("grayscale", r#"{"op": "grayscale", "alpha": 1.0}"#),
    ("gamma", r#"{"op": "gamma_contrast", "gamma": [0.5, 2.0]}"#),
    ("equalize", r#"{"op": "histogram_equalization"}"#),
    ("clahe", r#"{"op": "clahe", "clip_limit": [1, 4]}"#),
    ("invert", r#"{"op": "invert", "p": 1.0}"#),
    (
        "solarize",
        r#"{"op": "solarize", "p": 1.0, "threshold": 128}"#,
    ),
    ("posterize", r#"{"op": "posterize", "nb_bits": 4}"#),
    (
        "sharpen",
        r#"{"op": "sharpen", "alpha": [0, 1], "lightness": [0.75, 1.5]}"#,
    ),
    (
        "emboss",
        r#"{"op": "emboss", "alpha": [0, 1], "strength": [0.5, 1.5]}"#,
    ),
    ("channel_shuffle", r#"{"op": "channel_shuffle", "p": 1.0}"#),
    (
        "jpeg",
        r#"{"op": "jpeg_compression", "compression": [5, 50]}"#,
    ),
    (
        "elastic",
        r#"{"op": "elastic_transformation", "alpha": 50, "sigma": 5}"#,
    ),
    (
        "perspective",
        r#"{"op": "perspective_transform", "scale": [0.05, 0.1]}"#,
    ),
    ("grid_distortion", r#"{"op": "grid_distortion"}"#),
    (
        "piecewise_affine",
        r#"{"op": "piecewise_affine", "scale": [0.01, 0.05]}"#,
    ),
    ("normalize", r#"{"op": "normalize"}"#),
    (
        "classification",
        r#"{"op": "sequential", "children": [
        {"op": "random_resized_crop", "width": 224, "height": 224},
        {"op": "fliplr", "p": 0.5},
        {"op": "sometimes", "p": 0.5, "then": {"op": "sequential", "children": [
            {"op": "multiply_brightness", "mul": [0.8, 1.2]}, {"op": "linear_contrast", "alpha": [0.8, 1.2]}]}},
        {"op": "normalize"}]}"#,
    ),
    (
        "tutorial",
        r#"{"op": "sequential", "children": [
        {"op": "affine", "rotate": [-25, 25]},
        {"op": "additive_gaussian_noise", "scale": [10, 60]},
        {"op": "crop", "percent": [0, 0.2]}]}"#,
    ),
    (
        "detection",
        r#"{"op": "sequential", "children": [
        {"op": "affine", "scale": [0.8, 1.2], "rotate": [-15, 15], "translate_percent": {"x": [-0.1, 0.1], "y": [-0.1, 0.1]}},
        {"op": "fliplr", "p": 0.5},
        {"op": "pad_if_needed", "min_width": 512, "min_height": 512},
        {"op": "random_crop", "width": 512, "height": 512}]}"#,
    ),
];

/// SplitMix64, as the reference's image recipe.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Image `i` of a set, `h × w`, exactly as `bench_reference.py` makes it.
fn make_image(seed: u64, i: u64, h: usize, w: usize) -> Image {
    let mut data = Vec::with_capacity(h * w * 3);
    for y in 0..h as u64 {
        for x in 0..w as u64 {
            let r = splitmix64(seed ^ (i << 48) ^ (y << 24) ^ x);
            let gx = x * 255 / (w as u64 - 1);
            let gy = y * 255 / (h as u64 - 1);
            let check = ((x / 16 + y / 16 + i) % 2) * 128 + 64;
            let base = [(3 * gx + check) / 4, (3 * gy + check) / 4, (gx + gy) / 2];
            for (c, b) in base.iter().enumerate() {
                let noise = ((r >> (16 * c)) & 31) as i64 - 16;
                data.push((*b as i64 + noise).clamp(0, 255) as u8);
            }
        }
    }
    Image::U8(ImageBuf::new(w, h, 3, data).expect("valid size"))
}

fn image_set(name: &str, seed: u64) -> Result<Vec<Image>> {
    Ok(match name {
        "224" => (0..64).map(|i| make_image(seed, i, 224, 224)).collect(),
        "512" => (0..32).map(|i| make_image(seed, i, 512, 512)).collect(),
        "mixed" => (0..48u64)
            .map(|i| {
                let h = 300 + (splitmix64(seed ^ 0xA5A5_A5A5 ^ (2 * i)) % 341) as usize;
                let w = 300 + (splitmix64(seed ^ 0xA5A5_A5A5 ^ (2 * i + 1)) % 341) as usize;
                make_image(seed, i, h, w)
            })
            .collect(),
        other => bail!("unknown image set `{other}`; use 224, 512 or mixed"),
    })
}

/// 8 boxes and 16 keypoints per image for the detection pipeline (seeded; they need not match
/// the reference's bit for bit).
fn with_targets(image: Image, seed: u64, i: u64) -> Sample {
    let (w, h) = (image.width() as f32, image.height() as f32);
    let mut r = splitmix64(seed ^ i.wrapping_mul(0x1234_5678));
    let mut next = || {
        r = splitmix64(r);
        (r >> 11) as f32 / (1u64 << 53) as f32
    };
    let boxes: Vec<BBox> = (0..8)
        .map(|label| {
            let (bw, bh) = (w * (0.1 + 0.4 * next()), h * (0.1 + 0.4 * next()));
            let (x1, y1) = ((w - bw) * next(), (h - bh) * next());
            BBox {
                x1,
                y1,
                x2: x1 + bw,
                y2: y1 + bh,
                label,
            }
        })
        .collect();
    let keypoints: Vec<Keypoint> = (0..16)
        .map(|_| Keypoint {
            x: w * next(),
            y: h * next(),
        })
        .collect();
    Sample::new(image)
        .with_boxes(boxes)
        .with_keypoints(keypoints)
}

fn pipeline(spec: &str, seed: u64) -> Result<Pipeline> {
    let config: PipelineConfig = PipelineConfig::parse(
        &format!(r#"{{"seed": {seed}, "pipeline": {spec}}}"#),
        "json",
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    Ok(Pipeline::from_config(config)?)
}

fn fingerprint(samples: &[Sample]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for s in samples {
        match &s.image {
            Image::U8(b) => b.data().hash(&mut h),
            Image::U16(b) => b.data().hash(&mut h),
            Image::F32(b) => b.data().iter().for_each(|v| v.to_bits().hash(&mut h)),
        }
        s.boxes.iter().for_each(|b| {
            [b.x1, b.y1, b.x2, b.y2]
                .iter()
                .for_each(|v| v.to_bits().hash(&mut h))
        });
    }
    h.finish()
}

/// Times one op over `samples` with `threads` threads; returns (img/s, output fingerprint).
fn time_ours(
    p: &Pipeline,
    samples: &[Sample],
    threads: usize,
    repeats: usize,
) -> Result<(f64, u64)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut secs = Vec::new();
    let mut print = 0;
    for pass in 0..=repeats {
        // The inputs are moved into the pipeline, as a data loader does with decoded images;
        // copying them is not timed.
        let inputs = samples.to_vec();
        if pass == 0 {
            let out: Vec<Sample> = pool.install(|| {
                inputs
                    .into_par_iter()
                    .enumerate()
                    .map(|(i, s)| p.augment(s, 0, i as u64))
                    .collect::<kindling::augment::Result<_>>()
            })?;
            print = fingerprint(&out);
            continue;
        }
        // Each output is dropped as soon as it is made, as the reference discards its result.
        let start = Instant::now();
        pool.install(|| {
            inputs
                .into_par_iter()
                .enumerate()
                .try_for_each(|(i, s)| p.augment(s, 0, i as u64).map(drop))
        })?;
        secs.push(start.elapsed().as_secs_f64());
    }
    Ok((samples.len() as f64 / median(secs), print))
}

/// glibc's malloc settings for both sides of the benchmark: no `mmap` per buffer and no heap
/// trimming. By default glibc returns freed image-sized buffers (over 128 KiB) to the kernel and
/// faults fresh zeroed pages in for the next image; our ops consume their input, so every image
/// paid that, while the reference keeps its inputs and reuses one output buffer. Both processes
/// run with these values (ours via `mallopt`, Python's via `GLIBC_TUNABLES`): they do not change
/// the reference's numbers beyond noise (measured), and a data loader can set them the same way.
const MMAP_THRESHOLD: i32 = 32 << 20;
const TRIM_THRESHOLD: i32 = 1 << 30;

fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; called before the timed threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

fn glibc_tunables() -> String {
    format!(
        "glibc.malloc.mmap_threshold={MMAP_THRESHOLD}:glibc.malloc.trim_threshold={TRIM_THRESHOLD}"
    )
}

/// `setup_venv.sh` (idempotent) then `bench_reference.py`; returns `{lib: {op: img/s}}`.
fn reference(set: &str, threads: usize, repeats: usize, ops: &[&str], seed: u64) -> Result<Value> {
    let root = crate::checks::workspace_root();
    let setup = Command::new("bash")
        .arg(root.join("benches/augment/setup_venv.sh"))
        .output()
        .context("running benches/augment/setup_venv.sh")?;
    ensure!(
        setup.status.success(),
        "setup_venv.sh failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let python = String::from_utf8_lossy(&setup.stdout)
        .lines()
        .last()
        .unwrap_or("python3")
        .trim()
        .to_string();
    let out = Command::new(&python)
        .env("GLIBC_TUNABLES", glibc_tunables())
        .arg(root.join("benches/augment/bench_reference.py"))
        .args([
            "--images",
            set,
            "--threads",
            &threads.to_string(),
            "--repeats",
            &repeats.to_string(),
        ])
        .args([
            "--seed",
            &seed.to_string(),
            "--ops",
            &ops.join(","),
            "--json",
        ])
        .output()
        .context("running bench_reference.py")?;
    ensure!(
        out.status.success(),
        "bench_reference.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_slice(&out.stdout).context("reading bench_reference.py's JSON")?;
    Ok(report["img_per_s"].clone())
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.to_string())
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Augments a stream of `n` images (the tutorial pipeline, mixed sizes) and prints resident
/// memory along the way: it must stay flat.
fn stream(n: usize, seed: u64) -> Result<()> {
    let p = pipeline(
        OPS.iter()
            .find(|(k, _)| *k == "tutorial")
            .expect("tutorial")
            .1,
        seed,
    )?;
    let images = image_set("mixed", seed)?;
    let mut marks = Vec::new();
    for i in 0..n {
        let out = p.augment_image(images[i % images.len()].clone(), 0, i as u64)?;
        std::hint::black_box(&out);
        if (i + 1) % (n / 10).max(1) == 0 {
            marks.push((i + 1, resident_kib()));
        }
    }
    println!("resident memory while augmenting {n} images (tutorial pipeline, mixed sizes):");
    for (i, kib) in &marks {
        println!("  after {i:>6}: {:.1} MiB", *kib as f64 / 1024.0);
    }
    if let (Some(first), Some(last)) = (marks.first(), marks.last()) {
        println!(
            "  growth from the first mark: {:+.1} MiB",
            (last.1 as f64 - first.1 as f64) / 1024.0
        );
    }
    Ok(())
}

/// Runs the benchmark and prints one table per image set.
pub fn run(args: &AugmentBenchArgs) -> Result<()> {
    if let Some(n) = args.stream {
        return stream(n, args.seed);
    }
    tune_allocator();
    ensure!(args.repeats >= 1, "--repeats must be at least 1");
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    ensure!(
        !args.threads.is_empty() && args.threads.iter().all(|&t| t >= 1),
        "--threads needs counts ≥ 1"
    );
    for op in &args.ops {
        ensure!(
            OPS.iter().any(|(n, _)| n == op),
            "unknown op `{op}`; valid: {}",
            OPS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        );
    }
    let selected: Vec<(&str, Pipeline)> = OPS
        .iter()
        .filter(|(n, _)| args.ops.is_empty() || args.ops.iter().any(|o| o == n))
        .map(|(n, spec)| {
            pipeline(spec, args.seed)
                .with_context(|| format!("building `{n}`"))
                .map(|p| (*n, p))
        })
        .collect::<Result<_>>()?;
    let names: Vec<&str> = selected.iter().map(|(n, _)| *n).collect();
    for set in &args.images {
        let images = image_set(set, args.seed)?;
        let plain: Vec<Sample> = images.iter().cloned().map(Sample::new).collect();
        let targets: Vec<Sample> = images
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, img)| with_targets(img, args.seed, i as u64))
            .collect();
        // ours[op][thread] and refs[round][thread], one value per round.
        let mut ours: Vec<BTreeMap<usize, Vec<f64>>> = vec![BTreeMap::new(); selected.len()];
        let mut prints: Vec<Vec<u64>> = vec![Vec::new(); selected.len()];
        let mut refs: Vec<BTreeMap<usize, Value>> = Vec::new();
        for round in 0..args.rounds {
            let mut this_round = BTreeMap::new();
            if !args.no_reference {
                for &t in &args.threads {
                    eprintln!(
                        "bench: Albumentations and imgaug, set {set}, {t} thread(s), round {}/{}",
                        round + 1,
                        args.rounds
                    );
                    this_round.insert(t, reference(set, t, args.repeats, &names, args.seed)?);
                }
            }
            refs.push(this_round);
            eprintln!(
                "bench: ours, set {set}, round {}/{}",
                round + 1,
                args.rounds
            );
            for (i, (name, p)) in selected.iter().enumerate() {
                let input = if *name == "detection" {
                    &targets
                } else {
                    &plain
                };
                for &t in &args.threads {
                    let (v, fp) = time_ours(p, input, t, args.repeats)?;
                    ours[i].entry(t).or_default().push(v);
                    prints[i].push(fp);
                }
            }
        }
        println!();
        println!(
            "augment: image set {set} ({} images), img/s, median of {} passes{}",
            images.len(),
            args.repeats,
            if args.rounds > 1 {
                format!(
                    ", median of {} rounds (ratio: median of the rounds' ratios)",
                    args.rounds
                )
            } else {
                String::new()
            }
        );
        print!("{:<20}", "op");
        for &t in &args.threads {
            print!(
                " {:>9} {:>9} {:>9} {:>7} {:>7}",
                format!("ours {t}T"),
                format!("albu {t}T"),
                format!("imgaug {t}T"),
                "÷albu",
                "÷imgaug"
            );
        }
        println!(" {:>9} {:>16}", "same 1/2T", "output");
        let mut ratios: BTreeMap<usize, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for (i, (name, _)) in selected.iter().enumerate() {
            print!("{name:<20}");
            for &t in &args.threads {
                let mine = &ours[i][&t];
                // Per library: the median img/s over the rounds and the median per-round ratio.
                let side = |lib: &str| -> Option<(f64, f64)> {
                    let theirs: Option<Vec<f64>> = refs
                        .iter()
                        .map(|r| r.get(&t).and_then(|r| r[lib][name].as_f64()))
                        .collect();
                    let theirs = theirs?;
                    let ratio = median(mine.iter().zip(&theirs).map(|(o, r)| o / r).collect());
                    Some((median(theirs), ratio))
                };
                let (albu, ia) = (side("albumentations"), side("imgaug"));
                let fmt =
                    |v: Option<(f64, f64)>| v.map_or("-".to_string(), |v| format!("{:.0}", v.0));
                let ratio =
                    |v: Option<(f64, f64)>| v.map_or("-".to_string(), |v| format!("{:.2}", v.1));
                print!(
                    " {:>9.0} {:>9} {:>9} {:>7} {:>7}",
                    median(mine.clone()),
                    fmt(albu),
                    fmt(ia),
                    ratio(albu),
                    ratio(ia)
                );
                let entry = ratios.entry(t).or_default();
                if let Some((_, r)) = albu {
                    entry.0.push(r);
                }
                if let Some((_, r)) = ia {
                    entry.1.push(r);
                }
            }
            let same = prints[i].windows(2).all(|w| w[0] == w[1]);
            // The output's hash (images and boxes), to compare builds: an optimisation that keeps
            // an op's semantics keeps this value.
            println!(
                " {:>9} {:016x}",
                if same { "yes" } else { "NO" },
                prints[i][0]
            );
            ensure!(
                same,
                "`{name}`: output differs between thread counts or rounds"
            );
        }
        for (t, (albu, ia)) in &ratios {
            let gmean =
                |v: &[f64]| (v.iter().map(|r| r.ln()).sum::<f64>() / v.len().max(1) as f64).exp();
            let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
            println!(
                "{t} thread(s): geometric mean ÷albu {:.2} (min {:.2}, {} ops), ÷imgaug {:.2} (min {:.2}, {} ops)",
                gmean(albu),
                min(albu),
                albu.len(),
                gmean(ia),
                min(ia),
                ia.len()
            );
        }
    }
    Ok(())
}
