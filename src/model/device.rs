//! Where a model runs. The device is chosen once per run and recorded in the ledger; asking for CUDA
//! in a binary built without it is an error, never a silent fall back to the CPU.

use std::fmt;
use std::str::FromStr;

/// A device as written in a job file or on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    /// `cuda` (ordinal 0) or `cuda:N`.
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(Self::Cuda)
                    .map_err(|_| format!("`{s}`: `{n}` is not a GPU number")),
                None => Err(format!("`{s}` is not one of: cpu, cuda, cuda:N")),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceSpec {
    /// Opens the device, with a message that says what to do when it is not available.
    pub fn open(self) -> Result<candle_core::Device, String> {
        match self {
            Self::Cpu => Ok(candle_core::Device::Cpu),
            Self::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(format!(
                        "device {self} requested, but this scorer was built without CUDA; \
                         rebuild with `cargo build --release --features cuda` or set device = \"cpu\""
                    ));
                }
                candle_core::Device::new_cuda(n)
                    .map_err(|e| format!("device {self} could not be opened: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:2".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(2));
        assert!("gpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_fix_it() {
        let err = DeviceSpec::Cuda(0).open().unwrap_err();
        assert!(err.contains("--features cuda"), "{err}");
    }
}
