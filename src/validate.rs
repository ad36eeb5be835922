//! `scorer validate`: every check a run would make before touching the output, reported at once.

use chrono::NaiveDate;

use crate::contract::RawColumn;
use crate::error::exit;
use crate::failure::{Failure, RunError};
use crate::job::Job;
use crate::model::registry::Registry;
use crate::plan::{bind_model, check_input};
use crate::source::SourceError;

/// What a successful validation found.
#[derive(Debug, Clone)]
pub struct Validation {
    pub job: String,
    pub model: String,
    /// The input columns a run reads besides the id (the features, or what the model's
    /// preprocessing reads).
    pub reads: Vec<String>,
    /// `(objects, rows)` when a date was given.
    pub input: Option<(usize, u64)>,
}

impl Validation {
    /// The lines `scorer validate` prints.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!("job {}: OK", self.job),
            format!("  model: {}", self.model),
            format!("  reads: {}", self.reads.join(", ")),
        ];
        if let Some((objects, rows)) = self.input {
            lines.push(format!(
                "  input: {objects} Parquet objects, {rows} rows, all footers match"
            ));
        }
        lines
    }
}

fn problems_of(f: Failure) -> (Vec<String>, u8) {
    let code = f.exit_code();
    match f {
        Failure::Many { problems, .. } => (problems, code),
        Failure::Source(SourceError::Schema { problems }) => (problems, code),
        other => (vec![other.to_string()], code),
    }
}

/// Checks the job, its model, and with a date its input objects' footers.
pub async fn validate(
    job: &Job,
    models: &Registry,
    date: Option<NaiveDate>,
) -> Result<Validation, RunError> {
    let mut problems = Vec::new();
    let mut code = exit::OK;
    let mut add = |e: Failure| {
        let (p, c) = problems_of(e);
        problems.extend(p);
        if code == exit::OK || c == exit::CONFIG {
            code = c;
        }
    };
    let prepared = match bind_model(job, models, None) {
        Ok(p) => Some(p),
        Err(e) => {
            add(e);
            None
        }
    };
    let model = prepared
        .as_ref()
        .map(|p| {
            format!(
                "{} version {} ({})",
                p.model.name, p.model.version, p.model.sha256
            )
        })
        .unwrap_or_default();
    let columns: Vec<RawColumn> = match prepared {
        Some(p) => p.columns,
        None => job
            .input
            .features
            .iter()
            .flatten()
            .map(|f| RawColumn::number(f))
            .collect(),
    };
    let mut input = None;
    if let Some(date) = date {
        match check_input(job, date, &columns, Default::default()).await {
            Ok(plan) => {
                if let Err(e) =
                    crate::plan::passed_columns(job, &plan, |name| std::env::var(name).ok())
                {
                    add(e);
                }
                input = Some((plan.objects.len(), plan.total_rows));
            }
            Err(e) => add(e),
        }
    }
    if problems.is_empty() {
        Ok(Validation {
            job: job.name.clone(),
            model,
            reads: columns.into_iter().map(|c| c.name).collect(),
            input,
        })
    } else {
        Err(Failure::Many { problems, code }.in_job(&job.name))
    }
}
