//! Stochastic parameters the imgaug way: a fixed value, a `[a, b]` uniform range, a list to
//! choose from, or a `rand_distr` distribution — sampled per image (and per channel where an
//! augmenter has `per_channel`).
//!
//! In a pipeline file: `1.5`, `[0.5, 2.0]`, `{ "choice": [90, 180, 270] }`,
//! `{ "dist": "normal", "mean": 0.0, "std": 1.0 }`.

use rand::RngExt;
use rand_distr::Distribution;
use serde::{Deserialize, Serialize};

use crate::{AugRng, AugmentError, Result};

/// A value drawn per image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Param {
    /// Always this value.
    Fixed(f64),
    /// Uniform in `[a, b]` (imgaug's tuple).
    Range([f64; 2]),
    /// One of these values, uniformly (imgaug's list).
    Choice {
        /// The values.
        choice: Vec<f64>,
    },
    /// A distribution.
    Dist(Dist),
}

/// Distributions a [`Param`] can draw from (via `rand_distr`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Normal(mean, std).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Normal(mean, std) redrawn until inside `[low, high]`.
    TruncatedNormal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// Beta(alpha, beta) scaled to `[low, high]`.
    Beta {
        /// Shape α.
        alpha: f64,
        /// Shape β.
        beta: f64,
        /// Lower end (default 0).
        #[serde(default)]
        low: f64,
        /// Upper end (default 1).
        #[serde(default = "one")]
        high: f64,
    },
    /// Laplace(loc, scale).
    Laplace {
        /// Location.
        loc: f64,
        /// Scale.
        scale: f64,
    },
}

fn one() -> f64 {
    1.0
}

impl From<f64> for Param {
    fn from(v: f64) -> Self {
        Param::Fixed(v)
    }
}

impl From<(f64, f64)> for Param {
    fn from((a, b): (f64, f64)) -> Self {
        Param::Range([a, b])
    }
}

impl Param {
    /// Checks the parameter (a > b ranges, empty choices, negative std, …) and that every value
    /// it can take lies in `[lo, hi]`; errors name `op` and `field`.
    pub fn validate(&self, op: &'static str, field: &'static str, lo: f64, hi: f64) -> Result<()> {
        let bad = |value: String, expected: String| {
            Err(AugmentError::Invalid {
                op,
                field,
                value,
                expected,
            })
        };
        let in_range = |v: f64| v.is_finite() && (lo..=hi).contains(&v);
        let range_text = format!("expected values in [{lo}, {hi}]");
        match self {
            Param::Fixed(v) if !in_range(*v) => bad(v.to_string(), range_text),
            Param::Range([a, b]) if a > b => {
                bad(format!("[{a}, {b}]"), "a range needs a ≤ b".into())
            }
            Param::Range([a, b]) if !in_range(*a) || !in_range(*b) => {
                bad(format!("[{a}, {b}]"), range_text)
            }
            Param::Choice { choice } if choice.is_empty() => {
                bad("[]".into(), "a non-empty list".into())
            }
            Param::Choice { choice } if !choice.iter().all(|v| in_range(*v)) => {
                bad(format!("{choice:?}"), range_text)
            }
            Param::Dist(Dist::Normal { std, .. } | Dist::Laplace { scale: std, .. })
                if std.is_nan() || *std < 0.0 =>
            {
                bad(std.to_string(), "a scale ≥ 0".into())
            }
            Param::Dist(Dist::TruncatedNormal { std, low, high, .. })
                if std.is_nan()
                    || *std <= 0.0
                    || low > high
                    || !in_range(*low)
                    || !in_range(*high) =>
            {
                bad(
                    format!("std {std}, [{low}, {high}]"),
                    format!("std > 0 and bounds ordered; {range_text}"),
                )
            }
            Param::Dist(Dist::Beta {
                alpha,
                beta,
                low,
                high,
            }) if alpha.is_nan()
                || *alpha <= 0.0
                || beta.is_nan()
                || *beta <= 0.0
                || low > high
                || !in_range(*low)
                || !in_range(*high) =>
            {
                bad(
                    format!("alpha {alpha}, beta {beta}, [{low}, {high}]"),
                    format!("alpha, beta > 0; {range_text}"),
                )
            }
            _ => Ok(()),
        }
    }

    /// Draws one value.
    pub fn sample(&self, rng: &mut AugRng) -> f64 {
        match self {
            Param::Fixed(v) => *v,
            Param::Range([a, b]) => {
                if a == b {
                    *a
                } else {
                    rng.random_range(*a..=*b)
                }
            }
            Param::Choice { choice } => choice[rng.random_range(0..choice.len())],
            Param::Dist(d) => match d {
                Dist::Normal { mean, std } => {
                    rand_distr::Normal::new(*mean, *std).map_or(*mean, |n| n.sample(rng))
                }
                Dist::TruncatedNormal {
                    mean,
                    std,
                    low,
                    high,
                } => {
                    let n = rand_distr::Normal::new(*mean, *std).expect("validated std");
                    // Rejection sampling; bounded so a far-off window cannot spin forever.
                    (0..1000)
                        .map(|_| n.sample(rng))
                        .find(|v| (*low..=*high).contains(v))
                        .unwrap_or_else(|| mean.clamp(*low, *high))
                }
                Dist::Beta {
                    alpha,
                    beta,
                    low,
                    high,
                } => {
                    let b = rand_distr::Beta::new(*alpha, *beta).expect("validated shapes");
                    low + (high - low) * b.sample(rng)
                }
                Dist::Laplace { loc, scale } => {
                    // Inverse CDF: rand_distr 0.6 has no Laplace.
                    let u: f64 = rng.random_range(-0.5..0.5);
                    loc - scale * u.signum() * (1.0 - 2.0 * u.abs()).ln()
                }
            },
        }
    }

    /// Draws `n` values (one per channel) or one value repeated.
    pub fn sample_n(&self, rng: &mut AugRng, n: usize, per_channel: bool) -> Vec<f64> {
        if per_channel {
            (0..n).map(|_| self.sample(rng)).collect()
        } else {
            vec![self.sample(rng); n]
        }
    }
}

/// A probability in `[0, 1]`, or an error naming `op` and `field`.
pub fn check_probability(op: &'static str, field: &'static str, p: f64) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(AugmentError::Invalid {
            op,
            field,
            value: p.to_string(),
            expected: "a probability in [0, 1]".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_four_forms_parse_and_sample_inside_their_support() {
        let forms: Vec<Param> =
            serde_json::from_str(r#"[1.5, [0.5, 2.0], {"choice": [1, 2]}, {"dist": "truncated_normal", "mean": 0, "std": 1, "low": -1, "high": 1}]"#)
                .unwrap();
        let mut rng = AugRng::seed_from_u64(1);
        assert_eq!(forms[0].sample(&mut rng), 1.5);
        for _ in 0..100 {
            assert!((0.5..=2.0).contains(&forms[1].sample(&mut rng)));
            assert!([1.0, 2.0].contains(&forms[2].sample(&mut rng)));
            assert!((-1.0..=1.0).contains(&forms[3].sample(&mut rng)));
        }
    }

    #[test]
    fn ranges_with_a_greater_than_b_are_refused() {
        let err = Param::Range([2.0, 1.0])
            .validate("multiply", "mul", 0.0, 10.0)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "multiply: `mul` = [2, 1] is invalid: a range needs a ≤ b"
        );
        assert!(check_probability("sometimes", "p", 1.5).is_err());
    }
}
