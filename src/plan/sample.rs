//! A plan tried on its first rows: `scorer validate --date` reads the first rows of the input and
//! runs them through the feature stage (preprocessing and the null and NaN policies) and the
//! model, as a run would, writing nothing. Footers say which columns exist; only data shows a
//! column the preprocessing reads that the projection left out, a category outside the
//! vocabulary, or a value the model refuses.

use std::sync::Arc;

use super::RunPlan;
use crate::failure::Failure;
use crate::source::{self, CheckedInput};

/// Rows of the input the sample runs through the model.
pub const SAMPLE_ROWS: usize = 1024;

/// What the sample found: the rows scored, and where they came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub rows: usize,
    pub object: String,
}

/// Reads up to `rows` rows of the plan's first non-empty row group and scores them as the run
/// would. `None` when the input holds no rows.
pub async fn score_sample(plan: &RunPlan, rows: usize) -> Result<Option<Sample>, Failure> {
    let Some((object, row_group)) = plan.input.objects.iter().find_map(|o| {
        o.row_group_indexes()
            .into_iter()
            .find(|&rg| o.row_group_rows.get(rg).is_some_and(|&n| n > 0))
            .map(|rg| (o, rg))
    }) else {
        return Ok(None);
    };
    let first = Arc::new(object.with_row_groups(vec![row_group]));
    let input = CheckedInput {
        total_rows: first.rows,
        objects: vec![first],
        ..plan.input.clone()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let reader =
        tokio::spawn(async move { source::send_batches(&input, 1, rows.max(1), tx, None).await });
    let batch = rx.recv().await;
    // The rest of the row group is not needed: the reader stops once nobody receives.
    drop(rx);
    let read = reader
        .await
        .map_err(|e| Failure::Internal(format!("the sample's reader failed: {e}")))?;
    let Some(batch) = batch else {
        read?;
        return Ok(None);
    };
    let features = plan.features.build(&batch)?;
    // A thousand rows: scored where we are, as the scoring stage would score one slice.
    plan.model.model.score(&features)?;
    Ok(Some(Sample {
        rows: batch.batch.num_rows(),
        object: batch.object.to_string(),
    }))
}
