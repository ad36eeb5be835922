//! Derived columns: polars SQL expressions evaluated over each batch. Only the columns the
//! expressions reference go to polars (handed over without copying); the results come back as
//! arrow arrays.

use std::collections::BTreeSet;

use arrow::array::ArrayRef;
use arrow::record_batch::RecordBatch;
use polars::prelude::{Expr, IntoLazy};

use super::bridge;
use super::{DeriveSpec, PreprocessError};

/// The compiled `[[preprocess.derive]]` entries.
#[derive(Debug)]
pub struct Derived {
    exprs: Vec<(String, Expr)>,
    roots: Vec<String>,
}

impl Derived {
    /// Parses every expression and collects the input columns they read.
    pub fn compile(specs: &[DeriveSpec]) -> Result<Self, String> {
        let mut exprs = Vec::new();
        let mut names = BTreeSet::new();
        let mut roots = BTreeSet::new();
        for d in specs {
            let at = format!("preprocess.derive.{}", d.name);
            if d.name.is_empty() || !names.insert(d.name.clone()) {
                return Err(format!("{at}: names must be non-empty and distinct"));
            }
            let expr = polars::sql::sql_expr(&d.sql)
                .map_err(|e| format!("{at}: `{}` is not a polars SQL expression: {e}", d.sql))?;
            let refs = expr.clone().meta().root_names();
            if refs.is_empty() {
                return Err(format!(
                    "{at}: `{}` reads no column (a constant is not a feature)",
                    d.sql
                ));
            }
            for r in refs {
                roots.insert(r.to_string());
            }
            exprs.push((d.name.clone(), expr.alias(d.name.as_str())));
        }
        // An expression reads the file's columns, not other derived ones.
        if let Some(name) = roots.iter().find(|r| names.contains(*r)) {
            return Err(format!(
                "preprocess.derive: `{name}` is derived and also read by an expression; expressions read input columns only"
            ));
        }
        Ok(Self {
            exprs,
            roots: roots.into_iter().collect(),
        })
    }

    /// The derived column names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.exprs.iter().map(|(n, _)| n.as_str())
    }

    /// The input columns the expressions read.
    pub fn roots(&self) -> impl Iterator<Item = &str> {
        self.roots.iter().map(String::as_str)
    }

    /// Evaluates every expression over `batch`.
    pub fn apply(&self, batch: &RecordBatch) -> Result<Vec<(String, ArrayRef)>, PreprocessError> {
        let first = || {
            self.exprs
                .first()
                .map(|(n, _)| n.clone())
                .unwrap_or_default()
        };
        let mut inputs = Vec::with_capacity(self.roots.len());
        for r in &self.roots {
            let array = batch.column_by_name(r).ok_or_else(|| PreprocessError {
                column: r.clone(),
                message: "column is missing from the decoded batch".into(),
            })?;
            inputs.push((r.as_str(), array));
        }
        let frame =
            bridge::frame(batch.num_rows(), &inputs).map_err(|message| PreprocessError {
                column: first(),
                message,
            })?;
        let out = frame
            .lazy()
            .select(
                self.exprs
                    .iter()
                    .map(|(_, e)| e.clone())
                    .collect::<Vec<_>>(),
            )
            .collect()
            .map_err(|e| PreprocessError {
                column: first(),
                message: format!("derived columns failed: {e}"),
            })?;
        let mut arrays = Vec::with_capacity(self.exprs.len());
        for (name, _) in &self.exprs {
            let column = out.column(name).map_err(|e| PreprocessError {
                column: name.clone(),
                message: e.to_string(),
            })?;
            if column.len() != batch.num_rows() {
                return Err(PreprocessError {
                    column: name.clone(),
                    message: format!(
                        "the expression gave {} values for {} rows (aggregations are not features)",
                        column.len(),
                        batch.num_rows()
                    ),
                });
            }
            let array = bridge::to_arrow(column).map_err(|message| PreprocessError {
                column: name.clone(),
                message,
            })?;
            arrays.push((name.clone(), array));
        }
        Ok(arrays)
    }
}
