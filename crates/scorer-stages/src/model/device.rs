//! Where a model runs. The device is chosen once per run and recorded in the ledger (with the GPU's
//! name). Asking for CUDA in a binary built without it, or on a machine where no GPU is visible, is
//! an error that says what to do; only `auto` falls back to the CPU, and it logs why.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A device as written in a job file (`model.device`) or given with `scorer run --device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    /// `cuda` (ordinal 0) or `cuda:N`.
    Cuda(usize),
    /// The first GPU when this binary has CUDA and a GPU is visible, else the CPU.
    Auto,
}

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "auto" => Ok(Self::Auto),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(Self::Cuda)
                    .map_err(|_| format!("`{s}`: `{n}` is not a GPU number")),
                None => Err(format!("`{s}` is not one of: cpu, cuda, cuda:N, auto")),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Auto => f.write_str("auto"),
        }
    }
}

/// Why the requested device cannot be used. Each message ends with what to do about it.
#[derive(Debug, Error)]
pub enum DeviceError {
    #[error(
        "device {requested} requested, but this scorer was built without CUDA; rebuild with \
         `cargo build --release --features cuda` (see scripts/cuda-check.sh), or set \
         model.device = \"cpu\" or \"auto\" (or pass --device cpu)"
    )]
    NotBuiltWithCuda { requested: DeviceSpec },
    #[error(
        "device {requested} requested, but no CUDA GPU is visible ({detail}); check `nvidia-smi`, \
         the NVIDIA driver and CUDA_VISIBLE_DEVICES, or set model.device = \"cpu\" or \"auto\""
    )]
    NoGpu {
        requested: DeviceSpec,
        detail: String,
    },
    #[error(
        "device {requested} requested, but only {visible} CUDA GPU(s) are visible (cuda:0 to \
         cuda:{last}); pick one of those or check CUDA_VISIBLE_DEVICES",
        last = visible.saturating_sub(1)
    )]
    NoSuchGpu {
        requested: DeviceSpec,
        visible: usize,
    },
    #[error("device {requested} could not be opened: {message}")]
    Open {
        requested: DeviceSpec,
        message: String,
    },
}

/// A device that is open and ready, with what the ledger records about it.
#[derive(Debug, Clone)]
pub struct OpenedDevice {
    /// What the model actually runs on: never `auto`.
    pub spec: DeviceSpec,
    /// The GPU's name (`NVIDIA H100 80GB HBM3`); `None` on the CPU.
    pub gpu_name: Option<String>,
    pub device: candle_core::Device,
}

impl DeviceSpec {
    /// Opens the device. `auto` resolves to `cuda:0` when this binary has CUDA and a GPU is
    /// visible, and to the CPU otherwise.
    pub fn open(self) -> Result<OpenedDevice, DeviceError> {
        match self {
            Self::Cpu => Ok(cpu()),
            Self::Cuda(n) => open_cuda(self, n),
            Self::Auto => {
                if !candle_core::utils::cuda_is_available() {
                    tracing::info!("device auto: this binary has no CUDA; scoring on the CPU");
                    return Ok(cpu());
                }
                match open_cuda(self, 0) {
                    Ok(opened) => Ok(opened),
                    Err(e @ (DeviceError::NoGpu { .. } | DeviceError::NoSuchGpu { .. })) => {
                        tracing::info!(reason = %e, "device auto: scoring on the CPU");
                        Ok(cpu())
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }
}

fn cpu() -> OpenedDevice {
    OpenedDevice {
        spec: DeviceSpec::Cpu,
        gpu_name: None,
        device: candle_core::Device::Cpu,
    }
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(requested: DeviceSpec, _ordinal: usize) -> Result<OpenedDevice, DeviceError> {
    Err(DeviceError::NotBuiltWithCuda { requested })
}

#[cfg(feature = "cuda")]
fn open_cuda(requested: DeviceSpec, ordinal: usize) -> Result<OpenedDevice, DeviceError> {
    use candle_core::cuda_backend::cudarc::driver::CudaContext;

    let visible = CudaContext::device_count().map_err(|e| DeviceError::NoGpu {
        requested,
        detail: e.to_string(),
    })?;
    let visible = usize::try_from(visible).unwrap_or(0);
    if visible == 0 {
        return Err(DeviceError::NoGpu {
            requested,
            detail: "the driver reports 0 devices".into(),
        });
    }
    if ordinal >= visible {
        return Err(DeviceError::NoSuchGpu { requested, visible });
    }
    let open_err = |e: &dyn fmt::Display| DeviceError::Open {
        requested,
        message: e.to_string(),
    };
    let device = candle_core::Device::new_cuda(ordinal).map_err(|e| open_err(&e))?;
    let gpu_name = device
        .as_cuda_device()
        .map_err(|e| open_err(&e))?
        .cuda_stream()
        .context()
        .name()
        .map_err(|e| open_err(&e))?;
    tracing::info!(device = %DeviceSpec::Cuda(ordinal), gpu = %gpu_name, "GPU opened");
    Ok(OpenedDevice {
        spec: DeviceSpec::Cuda(ordinal),
        gpu_name: Some(gpu_name),
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:2".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(2));
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        let err = "gpu".parse::<DeviceSpec>().unwrap_err();
        assert!(err.contains("cpu, cuda, cuda:N, auto"), "{err}");
        let err = "cuda:x".parse::<DeviceSpec>().unwrap_err();
        assert!(err.contains("`x` is not a GPU number"), "{err}");
    }

    #[test]
    fn cpu_opens_without_a_gpu_name() {
        let opened = DeviceSpec::Cpu.open().unwrap();
        assert_eq!(opened.spec, DeviceSpec::Cpu);
        assert!(opened.gpu_name.is_none());
        assert!(opened.device.is_cpu());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_fix_it() {
        for requested in [DeviceSpec::Cuda(0), DeviceSpec::Cuda(3)] {
            let err = requested.open().unwrap_err();
            assert!(
                matches!(err, DeviceError::NotBuiltWithCuda { .. }),
                "{err:?}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("device {requested} requested")),
                "{msg}"
            );
            assert!(msg.contains("--features cuda"), "{msg}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn auto_without_the_feature_is_the_cpu() {
        let opened = DeviceSpec::Auto.open().unwrap();
        assert_eq!(opened.spec, DeviceSpec::Cpu);
        assert!(opened.device.is_cpu());
    }

    #[test]
    fn gpu_errors_name_the_device_and_the_way_out() {
        let msg = DeviceError::NoSuchGpu {
            requested: DeviceSpec::Cuda(2),
            visible: 1,
        }
        .to_string();
        assert!(msg.contains("cuda:2 requested"), "{msg}");
        assert!(
            msg.contains("only 1 CUDA GPU(s) are visible (cuda:0 to cuda:0)"),
            "{msg}"
        );
        let msg = DeviceError::NoGpu {
            requested: DeviceSpec::Cuda(0),
            detail: "CUDA_ERROR_NO_DEVICE".into(),
        }
        .to_string();
        assert!(msg.contains("CUDA_ERROR_NO_DEVICE"), "{msg}");
        assert!(msg.contains("device = \"cpu\" or \"auto\""), "{msg}");
    }
}
