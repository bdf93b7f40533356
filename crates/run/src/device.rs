//! Device and float-dtype selection from strings (`--device`, `--dtype`, `BURN_DEVICE`).
//!
//! Burn 0.22 runs one code path on every backend: the backend is the [`Device`]. This module is
//! the only place that knows which backends were compiled in (the facade's cargo features);
//! training code receives a ready [`Device`] and never branches on the backend.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, FloatDType};
use serde::{Deserialize, Serialize};

use crate::error::DeviceError;

/// Environment variable that picks the default device when neither a config file nor a flag
/// names one (the same variable Burn's `Device::default()` reads).
pub const DEVICE_ENV: &str = "BURN_DEVICE";

/// A device named by a string such as `flex`, `wgpu`, `cuda:1` or `tch-cuda`.
///
/// Parsing never fails because a backend is missing from the build: that is reported later,
/// by [`DeviceSpec::device`], with the cargo feature to enable.
///
/// ```
/// use kindling_run::DeviceSpec;
/// let spec: DeviceSpec = "cuda:1".parse().unwrap();
/// assert_eq!(spec, DeviceSpec::Cuda(1));
/// assert_eq!(spec.to_string(), "cuda:1");
/// assert!("tpu".parse::<DeviceSpec>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeviceSpec {
    /// Burn's pure-Rust CPU backend (the embedded default).
    #[default]
    Flex,
    /// CubeCL on wgpu, the graphics API picked by wgpu (WGSL shaders where needed).
    Wgpu,
    /// CubeCL on wgpu pinned to Vulkan (SPIR-V).
    Vulkan,
    /// CubeCL on wgpu pinned to Metal (MSL).
    Metal,
    /// CubeCL on CUDA, with the GPU index.
    Cuda(usize),
    /// LibTorch on the CPU (deprecated upstream; opt-in).
    Tch,
    /// LibTorch on a CUDA GPU, with the GPU index.
    TchCuda(usize),
}

/// The device strings the parser accepts, for error messages and `--help`.
pub const DEVICE_SYNTAX: &str = "flex, wgpu, vulkan, metal, cuda[:N], tch, tch-cuda[:N]";

impl DeviceSpec {
    /// The cargo feature (of `kindling` and `xtask`) that compiles this device in.
    pub fn feature(&self) -> &'static str {
        match self {
            DeviceSpec::Flex => "flex",
            DeviceSpec::Wgpu => "wgpu",
            DeviceSpec::Vulkan => "vulkan",
            DeviceSpec::Metal => "metal",
            DeviceSpec::Cuda(_) => "cuda",
            DeviceSpec::Tch | DeviceSpec::TchCuda(_) => "tch",
        }
    }

    /// Burn's own name for this device's backend, as its `BURN_DEVICE` override accepts it
    /// (no index: Burn's `Device::default()` takes the backend's default device).
    pub fn burn_backend_name(&self) -> &'static str {
        match self {
            DeviceSpec::Tch | DeviceSpec::TchCuda(_) => "tch",
            other => other.feature(),
        }
    }

    /// Whether this build can create the device (its feature was enabled at compile time).
    pub fn is_compiled_in(&self) -> bool {
        compiled_features().contains(&self.feature())
    }

    /// Creates the Burn device. Fails, naming the cargo feature, if it was not compiled in.
    #[allow(deprecated)] // `Device::libtorch*` are deprecated upstream; `tch` stays opt-in here.
    pub fn device(&self) -> Result<Device, DeviceError> {
        let not_compiled = || DeviceError::NotCompiled {
            device: self.to_string(),
            feature: self.feature(),
        };
        match *self {
            #[cfg(feature = "flex")]
            DeviceSpec::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            DeviceSpec::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "vulkan")]
            DeviceSpec::Vulkan => Ok(Device::vulkan(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "metal")]
            DeviceSpec::Metal => Ok(Device::metal(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            DeviceSpec::Cuda(index) => Ok(Device::cuda(index)),
            #[cfg(feature = "tch")]
            DeviceSpec::Tch => Ok(Device::libtorch()),
            #[cfg(feature = "tch")]
            DeviceSpec::TchCuda(index) => Ok(Device::libtorch_cuda(index)),
            #[allow(unreachable_patterns)] // reachable exactly when a feature is off
            _ => Err(not_compiled()),
        }
    }
}

/// The backend features this build of `kindling` was compiled with.
pub fn compiled_features() -> &'static [&'static str] {
    &[
        #[cfg(feature = "flex")]
        "flex",
        #[cfg(feature = "wgpu")]
        "wgpu",
        #[cfg(feature = "vulkan")]
        "vulkan",
        #[cfg(feature = "metal")]
        "metal",
        #[cfg(feature = "cuda")]
        "cuda",
        #[cfg(feature = "tch")]
        "tch",
    ]
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Flex => f.write_str("flex"),
            DeviceSpec::Wgpu => f.write_str("wgpu"),
            DeviceSpec::Vulkan => f.write_str("vulkan"),
            DeviceSpec::Metal => f.write_str("metal"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceSpec::Tch => f.write_str("tch"),
            DeviceSpec::TchCuda(i) => write!(f, "tch-cuda:{i}"),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || DeviceError::UnknownDevice {
            given: s.to_string(),
            valid: DEVICE_SYNTAX,
        };
        let lower = s.trim().to_ascii_lowercase();
        let (name, index) = match lower.split_once(':') {
            Some((name, idx)) => {
                let idx = idx.parse::<usize>().map_err(|_| unknown())?;
                (name, Some(idx))
            }
            None => (lower.as_str(), None),
        };
        let spec = match (name, index) {
            ("flex", None) => DeviceSpec::Flex,
            ("wgpu", None) => DeviceSpec::Wgpu,
            ("vulkan", None) => DeviceSpec::Vulkan,
            ("metal", None) => DeviceSpec::Metal,
            ("cuda", i) => DeviceSpec::Cuda(i.unwrap_or(0)),
            ("tch", None) => DeviceSpec::Tch,
            ("tch-cuda", i) => DeviceSpec::TchCuda(i.unwrap_or(0)),
            _ => return Err(unknown()),
        };
        Ok(spec)
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The float precision a run computes in (`--dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit IEEE float (the default).
    #[default]
    F32,
    /// 16-bit IEEE half float.
    F16,
    /// bfloat16.
    Bf16,
}

impl Precision {
    /// Burn's dtype for this precision.
    pub fn float_dtype(&self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
            Precision::Bf16 => FloatDType::BF16,
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        })
    }
}

impl FromStr for Precision {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "float32" => Ok(Precision::F32),
            "f16" | "float16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            _ => Err(DeviceError::UnknownDtype {
                given: s.to_string(),
            }),
        }
    }
}

/// Points Burn's `Device::default()` at the backend of `spec`.
///
/// Burn creates a few tensors on `Device::default()` by itself (an optimizer's state when it is
/// loaded from a record, for one). With several backends compiled in, that default is the
/// first of CUDA, Metal, …, Flex — which may not be the device of the run, or may not exist.
/// Burn also panics on `BURN_DEVICE` values it does not know, such as Kindling's `cuda:1`.
/// So a binary calls this once, at start-up, with the device it resolved.
///
/// # Safety
/// As for [`std::env::set_var`]: no other thread may access the environment concurrently.
/// Call it before spawning threads.
pub unsafe fn set_burn_default_device(spec: DeviceSpec) {
    // SAFETY: the caller guarantees no concurrent environment access.
    unsafe { std::env::set_var(DEVICE_ENV, spec.burn_backend_name()) }
}

/// Creates the device named by `spec`, configured to compute floats in `precision` and seeded.
///
/// The dtype is configured before any tensor exists on the device, as Burn requires; a device
/// that cannot compute in `precision` is refused with an error naming both.
///
/// ```
/// use kindling_run::{DeviceSpec, Precision, init_device};
/// let device = init_device(DeviceSpec::Flex, Precision::F32, 42).unwrap();
/// let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device);
/// assert_eq!(x.sum().into_scalar::<f32>(), 3.0);
/// ```
pub fn init_device(
    spec: DeviceSpec,
    precision: Precision,
    seed: u64,
) -> Result<Device, DeviceError> {
    let mut device = spec.device()?;
    if spec == DeviceSpec::Flex {
        crate::keep_freed_memory();
    }
    let dtype = precision.float_dtype();
    if !device.supports_dtype(dtype) {
        return Err(DeviceError::UnsupportedDtype {
            device: spec.to_string(),
            dtype: precision,
        });
    }
    if precision != Precision::F32 {
        device
            .configure(dtype)
            .map_err(|e| DeviceError::Configure {
                device: spec.to_string(),
                dtype: precision,
                reason: e.to_string(),
            })?;
    }
    device.seed(seed);
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_round_trip() {
        for s in [
            "flex",
            "wgpu",
            "vulkan",
            "metal",
            "cuda:0",
            "cuda:3",
            "tch",
            "tch-cuda:1",
        ] {
            let spec: DeviceSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        assert_eq!("CUDA".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!(
            "tch-cuda".parse::<DeviceSpec>().unwrap(),
            DeviceSpec::TchCuda(0)
        );
    }

    #[test]
    fn unknown_device_lists_the_valid_strings() {
        for bad in ["tpu", "cuda:x", "flex:1", ""] {
            let msg = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(msg.contains(DEVICE_SYNTAX), "{msg}");
            assert!(msg.contains(&format!("`{bad}`")), "{msg}");
        }
    }

    #[test]
    fn missing_backend_names_the_cargo_feature() {
        for spec in [
            DeviceSpec::Wgpu,
            DeviceSpec::Vulkan,
            DeviceSpec::Metal,
            DeviceSpec::Cuda(0),
            DeviceSpec::Tch,
            DeviceSpec::TchCuda(0),
        ] {
            if spec.is_compiled_in() {
                continue;
            }
            let msg = spec.device().unwrap_err().to_string();
            assert!(
                msg.contains(&format!("--features {}", spec.feature())),
                "{msg}"
            );
            assert!(msg.contains(&spec.to_string()), "{msg}");
        }
    }

    #[test]
    fn dtype_strings_parse_and_reject() {
        assert_eq!("bf16".parse::<Precision>().unwrap(), Precision::Bf16);
        assert_eq!("F16".parse::<Precision>().unwrap(), Precision::F16);
        let msg = "f8".parse::<Precision>().unwrap_err().to_string();
        assert!(
            msg.contains("`f8`") && msg.contains("f32, f16, bf16"),
            "{msg}"
        );
    }
}
