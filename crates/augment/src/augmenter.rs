//! The augmenter abstraction: an [`Op`] samples its parameters, then applies them (the split
//! Albumentations makes between `get_params` and `apply`), which is what makes replay,
//! serialisation and joint targets simple. Containers implement [`Augmenter`] directly.

use rand::SeedableRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{AugmentError, Result, Sample};

/// The random number generator of one sample: ChaCha8, seeded from `(seed, epoch, index)`
/// only, so results never depend on threads or workers.
pub type AugRng = rand_chacha::ChaCha8Rng;

/// SplitMix64's finaliser: a strong mix of a 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for sample `index` of epoch `epoch` of a pipeline seeded `seed`.
pub fn sample_rng(seed: u64, epoch: u64, index: u64) -> AugRng {
    AugRng::seed_from_u64(mix(mix(mix(seed) ^ epoch) ^ index))
}

/// What an augmenter sampled for one sample: enough to apply it again exactly
/// (Albumentations' ReplayCompose).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The augmenter's name.
    pub op: String,
    /// Its sampled parameters (`null` for containers).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub params: serde_json::Value,
    /// Containers: `(child index, child record)` in the order applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<(usize, Record)>,
}

/// Anything that augments a [`Sample`]: an op or a container.
pub trait Augmenter: Send + Sync + std::fmt::Debug {
    /// The name in pipeline files (snake_case).
    fn name(&self) -> &'static str;
    /// Checks the options once (ranges, probabilities).
    fn validate(&self) -> Result<()>;
    /// Samples parameters with `rng`, applies them, and records them.
    fn augment(&self, sample: Sample, rng: &mut AugRng) -> Result<(Sample, Record)>;
    /// As [`Augmenter::augment`] without building the record (the training path: same draws,
    /// same result, no serialisation).
    fn run(&self, sample: Sample, rng: &mut AugRng) -> Result<Sample> {
        self.augment(sample, rng).map(|(s, _)| s)
    }
    /// Applies recorded parameters.
    fn replay(&self, sample: Sample, record: &Record) -> Result<Sample>;
}

/// An augmenter with explicit parameters: `sample` draws them (it may look at the image size),
/// `apply` uses them on the image and every target.
pub trait Op: Send + Sync + std::fmt::Debug {
    /// The name in pipeline files (snake_case).
    const NAME: &'static str;
    /// Everything random about one application.
    type Params: Serialize + DeserializeOwned + std::fmt::Debug;
    /// Checks the options once.
    fn check(&self) -> Result<()> {
        Ok(())
    }
    /// Draws the parameters for `sample`.
    fn sample(&self, rng: &mut AugRng, sample: &Sample) -> Self::Params;
    /// Applies `params` to the image and its targets.
    fn apply(&self, params: &Self::Params, sample: Sample) -> Result<Sample>;
}

impl<T: Op> Augmenter for T {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn validate(&self) -> Result<()> {
        self.check()
    }
    fn run(&self, sample: Sample, rng: &mut AugRng) -> Result<Sample> {
        let params = self.sample(rng, &sample);
        self.apply(&params, sample)
    }
    fn augment(&self, sample: Sample, rng: &mut AugRng) -> Result<(Sample, Record)> {
        let params = self.sample(rng, &sample);
        let record = Record {
            op: T::NAME.into(),
            params: serde_json::to_value(&params)
                .map_err(|e| AugmentError::Replay(e.to_string()))?,
            children: Vec::new(),
        };
        Ok((self.apply(&params, sample)?, record))
    }
    fn replay(&self, sample: Sample, record: &Record) -> Result<Sample> {
        if record.op != T::NAME {
            return Err(AugmentError::Replay(format!(
                "record of `{}` given to `{}`",
                record.op,
                T::NAME
            )));
        }
        let params: T::Params = serde_json::from_value(record.params.clone())
            .map_err(|e| AugmentError::Replay(format!("{}: {e}", T::NAME)))?;
        self.apply(&params, sample)
    }
}
