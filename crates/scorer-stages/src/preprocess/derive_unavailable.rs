//! `[[preprocess.derive]]` in a binary built without polars (`--no-default-features`): a model
//! that declares derived columns is refused when it is loaded, saying which feature to build in.
//! [`Derived`] has no values, so nothing can reach `apply` in such a build.

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;

use super::{DeriveSpec, PreprocessError};

/// The compiled `[[preprocess.derive]]` entries; none can exist without polars.
#[derive(Debug)]
pub enum Derived {}

impl Derived {
    /// Refuses: evaluating polars SQL needs the `polars` feature.
    pub fn compile(_specs: &[DeriveSpec]) -> Result<Self, String> {
        Err(crate::error::not_built(
            "preprocess.derive (polars SQL expressions)",
            "polars",
        ))
    }

    /// The derived column names.
    pub fn names(&self) -> std::iter::Empty<&str> {
        match *self {}
    }

    /// The input columns the expressions read.
    pub fn roots(&self) -> std::iter::Empty<&str> {
        match *self {}
    }

    /// Evaluates every expression over `batch`.
    pub fn apply(&self, _batch: &RecordBatch) -> Result<Vec<(String, ArrayRef)>, PreprocessError> {
        match *self {}
    }
}
