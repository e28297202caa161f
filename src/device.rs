//! Choosing the burn device by name (what `--device` takes).
//!
//! `cpu` is burn's pure-Rust `flex` backend (SIMD and threads on). `wgpu` and `vulkan[:N]` are
//! burn's GPU backends, compiled in with the `gpu` cargo feature; `N` picks the N-th discrete GPU.
//! This is the only place that maps names to devices.

use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use burn::tensor::Device;

/// A device by name: `cpu`, `wgpu[:N]` or `vulkan[:N]` (its [`FromStr`] and [`fmt::Display`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// burn `flex`, the CPU backend.
    Cpu,
    /// burn `wgpu` on the best adapter (or discrete GPU `N`).
    Wgpu(Option<usize>),
    /// burn `wgpu` pinned to Vulkan (on discrete GPU `N` if given).
    Vulkan(Option<usize>),
}

impl FromStr for DeviceChoice {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let (name, index) = match s.split_once(':') {
            Some((name, index)) => match index.parse::<usize>() {
                Ok(i) => (name, Some(i)),
                Err(_) => bail!("device index in '{s}' is not a number"),
            },
            None => (s, None),
        };
        match (name.to_ascii_lowercase().as_str(), index) {
            ("cpu" | "flex", None) => Ok(DeviceChoice::Cpu),
            ("wgpu", i) => Ok(DeviceChoice::Wgpu(i)),
            ("vulkan", i) => Ok(DeviceChoice::Vulkan(i)),
            _ => bail!("unknown device '{s}' (expected cpu, wgpu, wgpu:N, vulkan or vulkan:N)"),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Wgpu(None) => write!(f, "wgpu"),
            DeviceChoice::Wgpu(Some(i)) => write!(f, "wgpu:{i}"),
            DeviceChoice::Vulkan(None) => write!(f, "vulkan"),
            DeviceChoice::Vulkan(Some(i)) => write!(f, "vulkan:{i}"),
        }
    }
}

impl DeviceChoice {
    /// The burn device, or an error saying how to get GPU support.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::flex()),
            #[cfg(feature = "gpu")]
            DeviceChoice::Wgpu(index) => Ok(Device::wgpu(kind(index))),
            #[cfg(feature = "gpu")]
            DeviceChoice::Vulkan(index) => Ok(Device::vulkan(kind(index))),
            #[cfg(not(feature = "gpu"))]
            DeviceChoice::Wgpu(_) | DeviceChoice::Vulkan(_) => bail!(
                "device '{self}' needs a build with GPU support: cargo build --release --features gpu"
            ),
        }
    }
}

/// A tensor's values copied back to the host as `E`, in row-major order.
pub fn host_values<E: burn::tensor::Element, const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<E> {
    t.into_data()
        .convert::<E>()
        .try_to_vec::<E>()
        .expect("converted tensor data has the requested element type")
}

#[cfg(feature = "gpu")]
fn kind(index: Option<usize>) -> burn::tensor::DeviceKind {
    match index {
        Some(i) => burn::tensor::DeviceKind::DiscreteGpu(i),
        None => burn::tensor::DeviceKind::DefaultDevice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_device_names() {
        for name in ["cpu", "wgpu", "wgpu:1", "vulkan", "vulkan:0"] {
            assert_eq!(name.parse::<DeviceChoice>().unwrap().to_string(), name);
        }
        assert!(
            "tpu"
                .parse::<DeviceChoice>()
                .unwrap_err()
                .to_string()
                .contains("unknown device")
        );
        assert!("vulkan:x".parse::<DeviceChoice>().is_err());
        assert!("cpu:1".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn cpu_device_computes() {
        let device = DeviceChoice::Cpu.device().unwrap();
        let t = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        assert_eq!(t.sum().into_scalar::<f32>(), 6.0);
    }
}
