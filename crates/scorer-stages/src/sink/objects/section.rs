//! A Parquet files output (`[output] url = "s3://lake/scores/dt={{ ds }}/"`): its keys, and the
//! date's directory it resolves to.

use std::fmt::Display;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Deserialize;

use super::output::ParquetFiles;
use crate::db::Database;
use crate::sink::{Destination, Output, OutputSection, SinkError};
use crate::source::InputLocation;
use crate::source::storage::StorageOptions;
use crate::template;

/// `[output]` of a Parquet files output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesSection {
    /// The date's directory in an object store (or a local path), with date templating, e.g.
    /// `s3://lake/scores/dt={{ ds }}/`. Committed through a manifest.
    pub url: String,
    /// `[output.storage]`: as `[input.storage]`.
    #[serde(default)]
    pub storage: StorageOptions,
}

impl OutputSection for FilesSection {
    fn problems(&self) -> Vec<String> {
        let mut p = self.storage.problems("output.storage");
        // Glob characters are judged after templating: `{{ ds }}` is not a glob.
        match template::render(&self.url, NaiveDate::MIN) {
            Err(e) => p.push(format!("output.url: {e}")),
            Ok(rendered) if rendered.contains(['*', '?', '[', '{']) => {
                p.push("output.url: names one directory; globs are for input".into())
            }
            Ok(_) => {}
        }
        p
    }

    fn destination(&self, date: NaiveDate) -> Result<Box<dyn Destination>, String> {
        let rendered = template::render(&self.url, date).map_err(|e| format!("output.url: {e}"))?;
        self.written_destination(&rendered)
    }

    fn written_destination(&self, written: &str) -> Result<Box<dyn Destination>, String> {
        let location =
            crate::source::resolve_output(written, &self.storage).map_err(|e| e.to_string())?;
        Ok(Box::new(ObjectsTarget {
            location,
            url_template: self.url.clone(),
            storage: self.storage.clone(),
        }))
    }
}

/// A Parquet output: the date's directory, and the job's `output.url` template and storage
/// options, which retention renders for the older dates it drops.
#[derive(Debug, Clone)]
pub struct ObjectsTarget {
    pub location: InputLocation,
    pub url_template: String,
    pub storage: StorageOptions,
}

impl Display for ObjectsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location.url)
    }
}

impl Destination for ObjectsTarget {
    fn open(&self, db: &Database) -> Result<Arc<dyn Output>, SinkError> {
        Ok(Arc::new(ParquetFiles::new(self.clone(), db)))
    }
}
