//! A weighted sum of losses on the same input and target — cross-entropy + Dice is the usual
//! segmentation objective: `loss = { name = "sum", terms = [{ weight = 1.0, loss = { name =
//! "cross_entropy" } }, { weight = 0.5, loss = { name = "dice", mode = "multiclass" } }] }`.

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::loss::{LossTarget, check_range, impl_loss, or_panic};
use crate::{AnyLoss, LossConfig, LossError};

/// One term of a [`SumLossConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumTerm {
    /// The term's weight (≥ 0).
    #[serde(default = "one")]
    pub weight: f64,
    /// The loss, by name with its options.
    pub loss: LossConfig,
}

fn one() -> f64 {
    1.0
}

/// Configuration of a [`SumLoss`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SumLossConfig {
    /// The weighted terms (at least one).
    pub terms: Vec<SumTerm>,
}

impl SumLossConfig {
    /// A sum of `terms`.
    pub fn new(terms: Vec<SumTerm>) -> Self {
        Self { terms }
    }

    /// Initializes a [`SumLoss`]; panics on an invalid option.
    pub fn init(&self, device: &Device) -> SumLoss {
        or_panic(self.try_init(device))
    }

    /// Initializes a [`SumLoss`], or names the invalid option.
    pub fn try_init(&self, device: &Device) -> Result<SumLoss, LossError> {
        self.check()?;
        let terms = self
            .terms
            .iter()
            .map(|t| Ok((t.weight, t.loss.init(device)?)))
            .collect::<Result<_, LossError>>()?;
        Ok(SumLoss { terms })
    }

    /// Checks every option without touching a device.
    pub fn check(&self) -> Result<(), LossError> {
        if self.terms.is_empty() {
            return Err(LossError::Invalid {
                loss: "sum",
                field: "terms",
                value: "[]".into(),
                expected: "expected at least one `{ weight, loss }` term".into(),
            });
        }
        for term in &self.terms {
            check_range("sum", "weight", term.weight, 0.0, f64::INFINITY)?;
            term.loss.check()?;
        }
        Ok(())
    }
}

/// `Σ weight_k · loss_k(input, target)`.
///
/// # Shapes
/// As its terms: each must accept the same input and target.
///
/// ```
/// use burn::tensor::{Device, Int, Tensor};
/// use kindling_losses::LossConfig;
///
/// let device = Device::default();
/// let cfg = LossConfig::from_json(serde_json::json!({"name": "sum", "terms": [
///     {"weight": 1.0, "loss": {"name": "cross_entropy"}},
///     {"weight": 0.5, "loss": {"name": "dice", "mode": "multiclass"}}]})).unwrap();
/// let loss = cfg.init(&device).unwrap();
/// let logits = Tensor::<4>::zeros([1, 3, 2, 2], &device);
/// let mask = Tensor::<3, Int>::zeros([1, 2, 2], &device);
/// assert!(loss.try_forward(logits, mask).unwrap().into_scalar::<f32>() > 0.0);
/// ```
#[derive(Debug, Clone)]
pub struct SumLoss {
    terms: Vec<(f64, AnyLoss)>,
}

impl SumLoss {
    /// The loss, or why the inputs do not fit one of its terms.
    pub fn try_forward<const D: usize, const T: usize>(
        &self,
        input: Tensor<D>,
        target: impl LossTarget<T>,
    ) -> Result<Tensor<1>, LossError> {
        // Every loss reads its target as floats of the compute dtype, so converting once
        // gives each term the same target.
        let target = target.into_float(crate::loss::compute_dtype(input.dtype()));
        let mut total: Option<Tensor<1>> = None;
        for (weight, loss) in &self.terms {
            let term = loss
                .try_forward(input.clone(), target.clone())?
                .mul_scalar(*weight);
            total = Some(match total {
                Some(t) => t + term,
                None => term,
            });
        }
        total.ok_or_else(|| LossError::Invalid {
            loss: "sum",
            field: "terms",
            value: "[]".into(),
            expected: "expected at least one term".into(),
        })
    }
}

impl_loss!(SumLoss);

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Int, Tensor};

    use super::*;

    #[test]
    fn sum_equals_the_weighted_terms() {
        let device = Device::default();
        let logits = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let mask = Tensor::<3, Int>::random([2, 4, 4], Distribution::Uniform(0.0, 3.0), &device);
        let ce = LossConfig::from_json(serde_json::json!({"name": "cross_entropy"})).unwrap();
        let dice = LossConfig::from_json(serde_json::json!({"name": "dice", "mode": "multiclass"}))
            .unwrap();
        let sum = SumLossConfig::new(vec![
            SumTerm {
                weight: 1.0,
                loss: ce.clone(),
            },
            SumTerm {
                weight: 0.5,
                loss: dice.clone(),
            },
        ])
        .init(&device);
        let value = |l: Tensor<1>| l.into_scalar::<f32>() as f64;
        let expected = value(
            ce.init(&device)
                .unwrap()
                .try_forward(logits.clone(), mask.clone())
                .unwrap(),
        ) + 0.5
            * value(
                dice.init(&device)
                    .unwrap()
                    .try_forward(logits.clone(), mask.clone())
                    .unwrap(),
            );
        let got = value(sum.try_forward(logits, mask).unwrap());
        assert!((got - expected).abs() < 1e-6, "{got} vs {expected}");
    }

    #[test]
    fn empty_and_negative_terms_are_refused() {
        let err = LossConfig::from_json(serde_json::json!({"name": "sum", "terms": []}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("terms"), "{err}");
        let err = LossConfig::from_json(serde_json::json!({"name": "sum", "terms": [
            {"weight": -1.0, "loss": {"name": "cross_entropy"}}]}))
        .unwrap_err()
        .to_string();
        assert!(err.contains("weight"), "{err}");
        let err = LossConfig::from_json(serde_json::json!({"name": "sum", "terms": [
            {"loss": {"name": "dicee"}}]}))
        .unwrap_err()
        .to_string();
        assert!(err.contains("did you mean `dice`"), "{err}");
    }
}
