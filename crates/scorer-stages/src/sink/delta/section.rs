//! A Delta table output's `[output]` keys, and the table they resolve to.

use std::fmt::Display;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Deserialize;

use crate::db::Database;
use crate::delta::DeltaTarget;
use crate::sink::{Destination, Output, OutputSection, SinkError};
use crate::source::storage::StorageOptions;

/// `[output]` of a Delta table output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaSection {
    /// The table (`s3://lake/scores/churn_daily`, `gs://…`, `az://…` or a local path),
    /// partitioned by `ds`: each run replaces its date's files in one Delta commit. Not
    /// templated: the table holds every date.
    pub delta: String,
    /// After each commit, delete the data files that Delta versions older than this removed
    /// (`"7d"`, `"168h"`): a Delta VACUUM in lite mode. Files of the current version, and files
    /// no commit names yet (another run still writing), are never deleted. Unset: never.
    #[serde(default)]
    pub delta_vacuum: Option<String>,
    /// `[output.storage]`: as `[input.storage]`.
    #[serde(default)]
    pub storage: StorageOptions,
}

impl DeltaSection {
    fn vacuum(&self) -> Result<Option<std::time::Duration>, String> {
        self.delta_vacuum
            .as_deref()
            .map(humantime::parse_duration)
            .transpose()
            .map_err(|e| format!("output.delta_vacuum: {e} (write e.g. \"7d\" or \"168h\")"))
    }
}

impl OutputSection for DeltaSection {
    fn problems(&self) -> Vec<String> {
        let mut p = self.storage.problems("output.storage");
        if self.delta.contains("{{") {
            p.push(
                "output.delta names the whole table, which holds every date as a `ds` \
                 partition: no date template"
                    .into(),
            );
        }
        p.extend(self.vacuum().err());
        p
    }

    fn destination(&self, _date: NaiveDate) -> Result<Box<dyn Destination>, String> {
        let vacuum = self.vacuum()?;
        let target = DeltaTarget::resolve(&self.delta, &self.storage)?;
        Ok(Box::new(DeltaTarget { vacuum, ..target }))
    }

    fn written_destination(&self, _written: &str) -> Result<Box<dyn Destination>, String> {
        // The table holds every date: a dead run of any date wrote into the one table.
        self.destination(NaiveDate::MIN)
    }
}

// The table's name as the ledger and the lock name it.
impl Display for DeltaTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.shown())
    }
}

impl Destination for DeltaTarget {
    #[cfg(feature = "delta")]
    fn open(&self, db: &Database) -> Result<Arc<dyn Output>, SinkError> {
        Ok(Arc::new(super::output::DeltaOutput::new(self.clone(), db)))
    }

    #[cfg(not(feature = "delta"))]
    fn open(&self, _db: &Database) -> Result<Arc<dyn Output>, SinkError> {
        Err(SinkError::NotBuilt {
            output: self.shown().to_string(),
            message: crate::error::not_built("a Delta table output (output.delta)", "delta"),
        })
    }
}
