//! `scorer validate`: every check a run would make before touching the output, reported at once.

use chrono::NaiveDate;

use crate::contract::RawColumn;
use crate::error::exit;
use crate::failure::{Failure, RunError};
use crate::job::Job;
use crate::model::registry::Registry;
use crate::plan::sample::{SAMPLE_ROWS, score_sample};
use crate::plan::{RunPlan, bind_model, check_input};
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
    /// With a date: the rows of the input's first row group scored as a run would, and the
    /// object they came from (`plan::sample`).
    pub sample: Option<(usize, String)>,
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
        if let Some((rows, object)) = &self.sample {
            lines.push(format!(
                "  sample: the first {rows} rows of {object} scored as a run would"
            ));
        }
        lines
    }
}

/// The problems found so far, and the exit code they call for (a configuration problem wins).
struct Found {
    problems: Vec<String>,
    code: u8,
}

impl Found {
    fn add(&mut self, e: Failure) {
        let (p, c) = problems_of(e);
        self.problems.extend(p);
        if self.code == exit::OK || c == exit::CONFIG {
            self.code = c;
        }
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

/// Checks the job, its model, and with a date its input objects' footers and a sample of its rows
/// through the feature stage and the model.
pub async fn validate(
    job: &Job,
    models: &Registry,
    date: Option<NaiveDate>,
) -> Result<Validation, RunError> {
    let mut found = Found {
        problems: Vec::new(),
        code: exit::OK,
    };
    let prepared = match bind_model(job, models, None) {
        Ok(p) => Some(p),
        Err(e) => {
            found.add(e);
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
    let columns: Vec<RawColumn> = match &prepared {
        Some(p) => p.columns.clone(),
        None => job
            .input
            .features
            .iter()
            .flatten()
            .map(|f| RawColumn::number(f))
            .collect(),
    };
    let mut input = None;
    let mut sample = None;
    if let Some(date) = date {
        match check_input(job, date, &columns, Default::default()).await {
            Ok(checked) => {
                input = Some((checked.objects.len(), checked.total_rows));
                match prepared {
                    // Everything else holds: the first rows go through the run's stages.
                    Some(binding) if found.problems.is_empty() => {
                        match RunPlan::assemble(job, date, binding, checked) {
                            Ok(plan) => match score_sample(&plan, SAMPLE_ROWS).await {
                                Ok(s) => sample = s.map(|s| (s.rows, s.object)),
                                Err(e) => found.add(e),
                            },
                            Err(e) => found.add(e),
                        }
                    }
                    _ => {
                        if let Err(e) = crate::plan::passed_columns(job, &checked, |name| {
                            std::env::var(name).ok()
                        }) {
                            found.add(e);
                        }
                    }
                }
            }
            Err(e) => found.add(e),
        }
    }
    if found.problems.is_empty() {
        Ok(Validation {
            job: job.name.clone(),
            model,
            reads: columns.into_iter().map(|c| c.name).collect(),
            input,
            sample,
        })
    } else {
        Err(Failure::Many {
            problems: found.problems,
            code: found.code,
        }
        .in_job(&job.name))
    }
}
