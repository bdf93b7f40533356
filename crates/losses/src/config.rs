//! Losses selected by name from a configuration: `loss = { name = "focal", mode =
//! "multiclass", gamma = 2.0 }`. Names are snake_case; options are the PyTorch / smp /
//! torchvision argument names, with their defaults.
//!
//! ```
//! use kindling_losses::LossConfig;
//!
//! let cfg = LossConfig::from_json(serde_json::json!({"name": "focal", "mode": "multiclass", "gamma": 1.5})).unwrap();
//! assert_eq!(cfg.name(), "focal");
//! let err = LossConfig::from_json(serde_json::json!({"name": "focal", "mode": "binary", "gama": 1.5})).unwrap_err();
//! assert!(err.to_string().contains("did you mean `gamma`"));
//! ```

use burn::tensor::{Device, Float, Int, Tensor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::suggestion;
use crate::*;

macro_rules! registry {
    ($($name:literal => $variant:ident($config:ident, $loss:ident) = $default:expr, $required:expr;)*) => {
        /// A loss chosen by name, with its options (see the crate docs for the table).
        #[derive(Debug, Clone)]
        pub enum LossConfig {
            $(
                #[doc = concat!("`", $name, "`: [`", stringify!($config), "`].")]
                $variant($config),
            )*
        }

        /// A loss module built from a [`LossConfig`]: one type for training code that picks its
        /// loss at run time.
        // Built once per run; boxing the larger variants would buy nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone)]
        pub enum AnyLoss {
            $(
                #[doc = concat!("A [`", stringify!($loss), "`].")]
                $variant($loss),
            )*
        }

        /// Every valid loss name.
        pub(crate) const NAMES: &[&str] = &[$($name),*];

        impl LossConfig {
            /// The loss's snake_case name.
            pub fn name(&self) -> &'static str {
                match self {
                    $(LossConfig::$variant(_) => $name,)*
                }
            }

            /// The defaults of the named loss, and the options that have none.
            fn defaults(name: &str) -> Option<(Value, &'static [&'static str])> {
                match name {
                    $($name => Some((
                        serde_json::to_value($default).expect("configs serialize"),
                        $required,
                    )),)*
                    _ => None,
                }
            }

            fn parse(name: &str, options: Value) -> Result<Self, serde_json::Error> {
                Ok(match name {
                    $($name => LossConfig::$variant(serde_json::from_value(options)?),)*
                    _ => unreachable!("names are checked first"),
                })
            }

            fn options(&self) -> Value {
                match self {
                    $(LossConfig::$variant(c) => serde_json::to_value(c),)*
                }
                .expect("configs serialize")
            }

            /// Checks every option without touching a device (no tensor is created, so a
            /// device can still be configured afterwards).
            pub fn check(&self) -> Result<(), LossError> {
                match self {
                    $(LossConfig::$variant(c) => c.check(),)*
                }
            }

            /// Builds the loss module, or names the invalid option.
            pub fn init(&self, device: &Device) -> Result<AnyLoss, LossError> {
                Ok(match self {
                    $(LossConfig::$variant(c) => AnyLoss::$variant(c.try_init(device)?),)*
                })
            }
        }

        impl AnyLoss {
            /// The loss, or why the inputs do not fit it.
            pub fn try_forward<const D: usize, const T: usize>(
                &self,
                input: Tensor<D>,
                target: impl LossTarget<T>,
            ) -> Result<Tensor<1>, LossError> {
                match self {
                    $(AnyLoss::$variant(l) => l.try_forward(input, target),)*
                }
            }
        }
    };
}

registry! {
    "dice" => Dice(DiceLossConfig, DiceLoss) = DiceLossConfig::new(Mode::Binary), &["mode"];
    "jaccard" => Jaccard(JaccardLossConfig, JaccardLoss) = JaccardLossConfig::new(Mode::Binary), &["mode"];
    "tversky" => Tversky(TverskyLossConfig, TverskyLoss) = TverskyLossConfig::new(Mode::Binary), &["mode"];
    "focal" => Focal(FocalLossConfig, FocalLoss) = FocalLossConfig::new(Mode::Binary), &["mode"];
    "softmax_focal" => SoftmaxFocal(SoftmaxFocalLossConfig, SoftmaxFocalLoss) = SoftmaxFocalLossConfig::new(), &[];
    "sigmoid_focal" => SigmoidFocal(SigmoidFocalLossConfig, SigmoidFocalLoss) = SigmoidFocalLossConfig::new(), &[];
    "lovasz" => Lovasz(LovaszLossConfig, LovaszLoss) = LovaszLossConfig::new(Mode::Binary), &["mode"];
    "soft_bce" => SoftBce(SoftBceWithLogitsLossConfig, SoftBceWithLogitsLoss) = SoftBceWithLogitsLossConfig::new(), &[];
    "bce_dice" => BceDice(BceDiceLossConfig, BceDiceLoss) = BceDiceLossConfig::new(Mode::Binary), &["mode"];
    "cross_entropy" => CrossEntropy(CrossEntropyLossConfig, CrossEntropyLoss) = CrossEntropyLossConfig::new(), &[];
    "tutorial_dice" => TutorialDice(TutorialDiceLossConfig, TutorialDiceLoss) = TutorialDiceLossConfig::new(), &[];
    "tutorial_dice_bce" => TutorialDiceBce(TutorialDiceBceLossConfig, TutorialDiceBceLoss) = TutorialDiceBceLossConfig::new(), &[];
    "tutorial_iou" => TutorialIou(TutorialIouLossConfig, TutorialIouLoss) = TutorialIouLossConfig::new(), &[];
    "tutorial_focal" => TutorialFocal(TutorialFocalLossConfig, TutorialFocalLoss) = TutorialFocalLossConfig::new(), &[];
    "sum" => Sum(SumLossConfig, SumLoss) = SumLossConfig::new(Vec::new()), &["terms"];
}

impl Default for LossConfig {
    /// `cross_entropy` with PyTorch's defaults.
    fn default() -> Self {
        LossConfig::CrossEntropy(CrossEntropyLossConfig::new())
    }
}

impl LossConfig {
    /// Parses `{ "name": ..., options... }`: unknown names and options are refused with the
    /// closest valid one, missing options take the reference's defaults, and the options are
    /// validated (the same checks as `try_init`).
    pub fn from_json(value: Value) -> Result<Self, LossError> {
        let Value::Object(mut table) = value else {
            return Err(LossError::Config {
                loss: "?".into(),
                message: format!("expected a table with a `name`, got {value}"),
            });
        };
        let name = match table.remove("name") {
            Some(Value::String(name)) => name,
            Some(other) => {
                return Err(LossError::Config {
                    loss: other.to_string(),
                    message: "`name` must be a string".into(),
                });
            }
            None => {
                return Err(LossError::Config {
                    loss: "?".into(),
                    message: format!("missing `name` (one of: {})", NAMES.join(", ")),
                });
            }
        };
        let Some((Value::Object(mut options), required)) = Self::defaults(&name) else {
            return Err(LossError::UnknownName {
                hint: suggestion(&name, NAMES.iter().copied()),
                name,
                valid: NAMES.join(", "),
            });
        };
        for key in required {
            if !table.contains_key(*key) {
                return Err(LossError::Config {
                    loss: name,
                    message: format!("missing required option `{key}`"),
                });
            }
        }
        for (key, value) in table {
            if !options.contains_key(&key) {
                let valid: Vec<&str> = options.keys().map(String::as_str).collect();
                return Err(LossError::UnknownOption {
                    hint: suggestion(&key, valid.iter().copied()),
                    valid: valid.join(", "),
                    loss: name,
                    key,
                });
            }
            options.insert(key, value);
        }
        let config = Self::parse(&name, Value::Object(options)).map_err(|e| LossError::Config {
            loss: name.clone(),
            message: e.to_string(),
        })?;
        // Validate now, so a bad value fails when the configuration is read.
        config.check()?;
        Ok(config)
    }

    /// `{ "name": ..., options... }` with every option, `None`s left out (TOML has no null).
    pub fn to_json(&self) -> Value {
        let mut table = Map::new();
        table.insert("name".into(), Value::String(self.name().into()));
        if let Value::Object(options) = self.options() {
            table.extend(options.into_iter().filter(|(_, v)| !v.is_null()));
        }
        Value::Object(table)
    }
}

impl Serialize for LossConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LossConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        LossConfig::from_json(value).map_err(serde::de::Error::custom)
    }
}

impl PartialEq for LossConfig {
    fn eq(&self, other: &Self) -> bool {
        self.to_json() == other.to_json()
    }
}

impl<const D: usize, const T: usize> Loss<Tensor<D>, Tensor<T, Float>> for AnyLoss {
    fn loss(&self, input: Tensor<D>, target: Tensor<T, Float>) -> Tensor<1> {
        crate::loss::or_panic(self.try_forward(input, target))
    }
    fn try_loss(&self, input: Tensor<D>, target: Tensor<T, Float>) -> Result<Tensor<1>, LossError> {
        self.try_forward(input, target)
    }
}

impl<const D: usize, const T: usize> Loss<Tensor<D>, Tensor<T, Int>> for AnyLoss {
    fn loss(&self, input: Tensor<D>, target: Tensor<T, Int>) -> Tensor<1> {
        crate::loss::or_panic(self.try_forward(input, target))
    }
    fn try_loss(&self, input: Tensor<D>, target: Tensor<T, Int>) -> Result<Tensor<1>, LossError> {
        self.try_forward(input, target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<LossConfig, LossError> {
        #[derive(Deserialize)]
        struct Run {
            loss: toml::Value,
        }
        let run: Run = toml::from_str(toml_text).expect("toml");
        LossConfig::from_json(serde_json::to_value(run.loss).expect("json"))
    }

    #[test]
    fn a_loss_is_selected_by_name_with_its_options() {
        let cfg = parse(r#"loss = { name = "focal", mode = "multiclass", gamma = 1.5 }"#).unwrap();
        let LossConfig::Focal(focal) = &cfg else {
            panic!("{cfg:?}")
        };
        assert_eq!(
            (focal.mode, focal.gamma, focal.alpha),
            (Mode::Multiclass, 1.5, None)
        );
        let cfg = parse(
            r#"loss = { name = "cross_entropy", label_smoothing = 0.1, ignore_index = 255 }"#,
        )
        .unwrap();
        let LossConfig::CrossEntropy(ce) = &cfg else {
            panic!("{cfg:?}")
        };
        assert_eq!(
            (ce.label_smoothing, ce.ignore_index, ce.reduction),
            (0.1, 255, Reduction::Mean)
        );
    }

    #[test]
    fn unknown_names_and_options_suggest_the_closest() {
        let err = parse(r#"loss = { name = "dise", mode = "binary" }"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown loss `dise`, did you mean `dice`"),
            "{err}"
        );
        let err =
            parse(r#"loss = { name = "tversky", mode = "binary", alhpa = 0.3 }"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown option `alhpa`, did you mean `alpha`"),
            "{err}"
        );
    }

    #[test]
    fn missing_mode_wrong_types_and_bad_values_are_named() {
        let err = parse(r#"loss = { name = "dice" }"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "loss `dice`: missing required option `mode`"
        );
        let err = parse(r#"loss = { name = "dice", mode = "multi" }"#).unwrap_err();
        assert!(err.to_string().contains("unknown variant `multi`"), "{err}");
        let err = parse(r#"loss = { name = "focal", mode = "binary", gamma = -1.0 }"#).unwrap_err();
        assert!(err.to_string().contains("`gamma` = -1 is invalid"), "{err}");
    }

    #[test]
    fn configs_round_trip_through_toml_without_nulls() {
        let cfg = parse(
            r#"loss = { name = "dice", mode = "multiclass", classes = [0, 2], smooth = 1.0 }"#,
        )
        .unwrap();
        let text = toml::to_string(&cfg).expect("toml has no null");
        assert!(text.contains("name = \"dice\""), "{text}");
        let back: LossConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, cfg);
    }
}
