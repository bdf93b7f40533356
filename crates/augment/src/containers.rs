//! Containers: `Sequential` (optionally in random order), `Sometimes`, `OneOf`, `SomeOf`,
//! `Identity` and a closure augmenter.

use std::sync::Arc;

use rand::RngExt;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::param::check_probability;
use crate::{AugRng, AugmentError, Augmenter, Record, Result, Sample};

fn replay_children(
    name: &str,
    children: &[Box<dyn Augmenter>],
    mut sample: Sample,
    record: &Record,
) -> Result<Sample> {
    if record.op != name {
        return Err(AugmentError::Replay(format!(
            "record of `{}` given to `{name}`",
            record.op
        )));
    }
    for (i, child) in &record.children {
        let aug = children.get(*i).ok_or_else(|| {
            AugmentError::Replay(format!(
                "`{name}` has no child {i} ({} children)",
                children.len()
            ))
        })?;
        sample = aug.replay(sample, child)?;
    }
    Ok(sample)
}

fn run_children_unrecorded(
    children: &[Box<dyn Augmenter>],
    order: impl IntoIterator<Item = usize>,
    mut sample: Sample,
    rng: &mut AugRng,
) -> Result<Sample> {
    for i in order {
        sample = children[i].run(sample, rng)?;
    }
    Ok(sample)
}

fn run_children(
    name: &str,
    children: &[Box<dyn Augmenter>],
    order: impl IntoIterator<Item = usize>,
    mut sample: Sample,
    rng: &mut AugRng,
) -> Result<(Sample, Record)> {
    let mut records = Vec::new();
    for i in order {
        let (s, r) = children[i].augment(sample, rng)?;
        sample = s;
        records.push((i, r));
    }
    Ok((
        sample,
        Record {
            op: name.into(),
            params: serde_json::Value::Null,
            children: records,
        },
    ))
}

/// Applies every child in order (or in a random order per sample).
#[derive(Debug)]
pub struct Sequential {
    /// The children.
    pub children: Vec<Box<dyn Augmenter>>,
    /// Shuffle the order per sample.
    pub random_order: bool,
}

impl Augmenter for Sequential {
    fn name(&self) -> &'static str {
        "sequential"
    }
    fn validate(&self) -> Result<()> {
        self.children.iter().try_for_each(|c| c.validate())
    }
    fn augment(&self, sample: Sample, rng: &mut AugRng) -> Result<(Sample, Record)> {
        let mut order: Vec<usize> = (0..self.children.len()).collect();
        if self.random_order {
            order.shuffle(rng);
        }
        run_children(self.name(), &self.children, order, sample, rng)
    }
    fn run(&self, sample: Sample, rng: &mut AugRng) -> Result<Sample> {
        let mut order: Vec<usize> = (0..self.children.len()).collect();
        if self.random_order {
            order.shuffle(rng);
        }
        run_children_unrecorded(&self.children, order, sample, rng)
    }
    fn replay(&self, sample: Sample, record: &Record) -> Result<Sample> {
        replay_children(self.name(), &self.children, sample, record)
    }
}

/// With probability `p` applies `then`, otherwise `otherwise` (imgaug's `Sometimes`).
#[derive(Debug)]
pub struct Sometimes {
    /// Probability of `then`.
    pub p: f64,
    /// Applied with probability `p`.
    pub then: Box<dyn Augmenter>,
    /// Applied otherwise (nothing when unset).
    pub otherwise: Option<Box<dyn Augmenter>>,
}

impl Augmenter for Sometimes {
    fn name(&self) -> &'static str {
        "sometimes"
    }
    fn validate(&self) -> Result<()> {
        check_probability("sometimes", "p", self.p)?;
        self.then.validate()?;
        self.otherwise.as_ref().map_or(Ok(()), |o| o.validate())
    }
    fn run(&self, sample: Sample, rng: &mut AugRng) -> Result<Sample> {
        if rng.random_bool(self.p) {
            self.then.run(sample, rng)
        } else if let Some(o) = &self.otherwise {
            o.run(sample, rng)
        } else {
            Ok(sample)
        }
    }
    fn augment(&self, sample: Sample, rng: &mut AugRng) -> Result<(Sample, Record)> {
        let hit = rng.random_bool(self.p);
        let record = |children| Record {
            op: "sometimes".into(),
            params: serde_json::Value::Null,
            children,
        };
        if hit {
            let (s, r) = self.then.augment(sample, rng)?;
            Ok((s, record(vec![(0, r)])))
        } else if let Some(o) = &self.otherwise {
            let (s, r) = o.augment(sample, rng)?;
            Ok((s, record(vec![(1, r)])))
        } else {
            Ok((sample, record(vec![])))
        }
    }
    fn replay(&self, sample: Sample, record: &Record) -> Result<Sample> {
        match record.children.first() {
            None => Ok(sample),
            Some((0, r)) => self.then.replay(sample, r),
            Some((1, r)) => match &self.otherwise {
                Some(o) => o.replay(sample, r),
                None => Err(AugmentError::Replay(
                    "`sometimes` has no else branch".into(),
                )),
            },
            Some((i, _)) => Err(AugmentError::Replay(format!(
                "`sometimes` has no branch {i}"
            ))),
        }
    }
}

/// Applies exactly one child, chosen uniformly.
#[derive(Debug)]
pub struct OneOf {
    /// The candidates.
    pub children: Vec<Box<dyn Augmenter>>,
}

impl Augmenter for OneOf {
    fn name(&self) -> &'static str {
        "one_of"
    }
    fn validate(&self) -> Result<()> {
        if self.children.is_empty() {
            return Err(AugmentError::Config(
                "`one_of` needs at least one child".into(),
            ));
        }
        self.children.iter().try_for_each(|c| c.validate())
    }
    fn augment(&self, sample: Sample, rng: &mut AugRng) -> Result<(Sample, Record)> {
        let i = rng.random_range(0..self.children.len());
        run_children(self.name(), &self.children, [i], sample, rng)
    }
    fn run(&self, sample: Sample, rng: &mut AugRng) -> Result<Sample> {
        let i = rng.random_range(0..self.children.len());
        self.children[i].run(sample, rng)
    }
    fn replay(&self, sample: Sample, record: &Record) -> Result<Sample> {
        replay_children(self.name(), &self.children, sample, record)
    }
}

/// How many children `SomeOf` applies: exactly `n`, or uniformly in `[a, b]` (imgaug's
/// `SomeOf(n)` / `SomeOf((a, b))`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Count {
    /// Exactly this many.
    Exactly(usize),
    /// Uniformly between the two, inclusive.
    Between([usize; 2]),
}

/// Applies a random subset of its children, in their order (or shuffled with `random_order`).
#[derive(Debug)]
pub struct SomeOf {
    /// How many to apply.
    pub n: Count,
    /// The candidates.
    pub children: Vec<Box<dyn Augmenter>>,
    /// Apply the chosen ones in a random order.
    pub random_order: bool,
}

impl Augmenter for SomeOf {
    fn name(&self) -> &'static str {
        "some_of"
    }
    fn validate(&self) -> Result<()> {
        if let Count::Between([a, b]) = self.n
            && a > b
        {
            return Err(AugmentError::Invalid {
                op: "some_of",
                field: "n",
                value: format!("[{a}, {b}]"),
                expected: "a range needs a ≤ b".into(),
            });
        }
        self.children.iter().try_for_each(|c| c.validate())
    }
    fn run(&self, sample: Sample, rng: &mut AugRng) -> Result<Sample> {
        let picked = self.pick(rng);
        run_children_unrecorded(&self.children, picked, sample, rng)
    }
    fn augment(&self, sample: Sample, rng: &mut AugRng) -> Result<(Sample, Record)> {
        let picked = self.pick(rng);
        run_children(self.name(), &self.children, picked, sample, rng)
    }
    fn replay(&self, sample: Sample, record: &Record) -> Result<Sample> {
        replay_children(self.name(), &self.children, sample, record)
    }
}

impl SomeOf {
    /// The children to apply, in application order.
    fn pick(&self, rng: &mut AugRng) -> Vec<usize> {
        let len = self.children.len();
        let n = match self.n {
            Count::Exactly(n) => n,
            Count::Between([a, b]) => rng.random_range(a..=b),
        }
        .min(len);
        let mut picked: Vec<usize> = (0..len).collect();
        picked.shuffle(rng);
        picked.truncate(n);
        if !self.random_order {
            picked.sort_unstable();
        }
        picked
    }
}

/// Does nothing (imgaug's `Identity` / `Noop`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity;

impl crate::Op for Identity {
    const NAME: &'static str = "identity";
    type Params = ();
    fn sample(&self, _: &mut AugRng, _: &Sample) {}
    fn apply(&self, _: &(), sample: Sample) -> Result<Sample> {
        Ok(sample)
    }
}

/// The signature of a [`Lambda`]'s function.
pub type LambdaFn = dyn Fn(Sample, &mut AugRng) -> Result<Sample> + Send + Sync;

/// A closure augmenter (imgaug's `Lambda`): code, so it lives in Rust pipelines only and
/// replays by running the closure with the recorded seed.
pub struct Lambda {
    /// Name shown in records.
    pub label: String,
    /// The function.
    pub func: Arc<LambdaFn>,
}

impl std::fmt::Debug for Lambda {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Lambda({})", self.label)
    }
}

impl Lambda {
    /// A closure augmenter.
    pub fn new(
        label: impl Into<String>,
        func: impl Fn(Sample, &mut AugRng) -> Result<Sample> + Send + Sync + 'static,
    ) -> Self {
        Self {
            label: label.into(),
            func: Arc::new(func),
        }
    }
}

impl Augmenter for Lambda {
    fn name(&self) -> &'static str {
        "lambda"
    }
    fn validate(&self) -> Result<()> {
        Ok(())
    }
    fn augment(&self, sample: Sample, rng: &mut AugRng) -> Result<(Sample, Record)> {
        use rand::{Rng, SeedableRng};
        let seed = rng.next_u64();
        let mut own = AugRng::seed_from_u64(seed);
        let out = (self.func)(sample, &mut own)?;
        Ok((
            out,
            Record {
                op: "lambda".into(),
                params: serde_json::json!({ "label": self.label, "seed": seed }),
                children: vec![],
            },
        ))
    }
    fn replay(&self, sample: Sample, record: &Record) -> Result<Sample> {
        use rand::SeedableRng;
        let seed = record.params["seed"]
            .as_u64()
            .ok_or_else(|| AugmentError::Replay("lambda record without a seed".into()))?;
        (self.func)(sample, &mut AugRng::seed_from_u64(seed))
    }
}
