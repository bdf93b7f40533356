//! The `[scheduler]` table of a run configuration: a policy from `kindling-schedulers`
//! selected by name, plus when it steps.
//!
//! ```toml
//! [scheduler]
//! name = "step_lr"     # PyTorch's class name in snake_case
//! step_size = 30       # PyTorch's argument names
//! gamma = 0.1
//! interval = "epoch"   # or "step": once per optimizer update
//! ```

use kindling_schedulers::{Scheduler, SchedulerConfig, SchedulerConfigError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// When the scheduler steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// After each epoch (after validation; ReduceLROnPlateau gets the validation loss).
    #[default]
    Epoch,
    /// After each optimizer update (ReduceLROnPlateau gets the batch loss).
    Step,
}

/// A configured learning-rate schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleConfig {
    /// Epoch or step.
    pub interval: Interval,
    /// The policy and its arguments.
    pub policy: SchedulerConfig,
}

impl ScheduleConfig {
    /// The scheduler for an optimizer whose base rate is `lr`.
    pub fn build(&self, lr: f64) -> Result<Scheduler, SchedulerConfigError> {
        self.policy.build(lr)
    }
}

impl Serialize for ScheduleConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(&self.policy).map_err(serde::ser::Error::custom)?;
        if let Value::Object(map) = &mut value {
            map.insert(
                "interval".into(),
                serde_json::to_value(self.interval).map_err(serde::ser::Error::custom)?,
            );
        }
        value.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ScheduleConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut value = Value::deserialize(deserializer)?;
        let interval = match value.as_object_mut().and_then(|m| m.remove("interval")) {
            Some(v) => serde_json::from_value(v)
                .map_err(|_| D::Error::custom("`interval` must be \"epoch\" or \"step\""))?,
            None => Interval::default(),
        };
        let policy = serde_json::from_value(value).map_err(D::Error::custom)?;
        Ok(Self { interval, policy })
    }
}
