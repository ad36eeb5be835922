//! What a null or a NaN in a feature column does to its row (`input.on_null`, `input.on_nan`):
//! the feature stage applies them, the job file names them.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// What a null in a feature column does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum NullPolicy {
    /// The run fails, naming the file, row group and column.
    #[default]
    Fail,
    /// The row is left out and counted as rejected in the ledger.
    Skip,
    /// The null becomes this value (counted nowhere: it is a declared imputation).
    Fill(f32),
}

/// What a NaN or ±infinity in a feature does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NanPolicy {
    /// The run fails, naming the object, row group, column and row.
    #[default]
    Fail,
    /// The row is left out and counted as rejected.
    Skip,
    /// The model takes NaN as a missing value (set by the plan for such models, not a job key).
    #[serde(skip)]
    Pass,
}

impl fmt::Display for NanPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fail => "fail",
            Self::Skip => "skip",
            Self::Pass => "pass (the model handles NaN)",
        })
    }
}

impl FromStr for NullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail" => Ok(Self::Fail),
            "skip" => Ok(Self::Skip),
            _ => match s.strip_prefix("fill:") {
                Some(v) => v
                    .trim()
                    .parse::<f32>()
                    .map(Self::Fill)
                    .map_err(|_| format!("on_null `{s}`: `{v}` is not a number")),
                None => Err(format!(
                    "on_null `{s}` is not one of: fail, skip, fill:<number>"
                )),
            },
        }
    }
}

impl<'de> Deserialize<'de> for NullPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for NullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fail => f.write_str("fail"),
            Self::Skip => f.write_str("skip"),
            Self::Fill(v) => write!(f, "fill:{v}"),
        }
    }
}

/// The null and NaN policies a model's rows go through: the job's (`job`) for a model that
/// leaves missing values to the job; for one that handles them itself (trees), missing values
/// reach it as NaN, no row is dropped for them (a null id still is), and a NaN in the input is
/// a missing value too.
pub fn policies_for_model(
    missing: crate::contract::MissingValues,
    job: (NullPolicy, NanPolicy),
) -> (NullPolicy, NanPolicy) {
    match missing {
        crate::contract::MissingValues::JobPolicy => job,
        crate::contract::MissingValues::NaN => (NullPolicy::Fill(f32::NAN), NanPolicy::Pass),
    }
}
