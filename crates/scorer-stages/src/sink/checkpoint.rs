//! The sink's resume checkpoints: a table-writing sink commits its staged rows in checkpoints,
//! each one transaction holding the rows and this record of the input rows they came from, so a
//! later run can adopt them (`crate::resume`). The record and its SQL belong to the sink, which
//! writes them inside its own transactions.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::quarantine::RejectedRow;
use crate::sink::BatchOrigin;
use crate::source::StagedRange;
use crate::stats::ScoreStats;

/// The record committed with one checkpoint's staged rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub ranges: Vec<StagedRange>,
    pub rejected: Vec<RejectedRow>,
    /// One per result column, over the checkpoint's scored rows.
    pub stats: Vec<ScoreStats>,
}

impl Checkpoint {
    /// Adds a written batch that came from `origin` with `scored` rows.
    pub fn add(&mut self, origin: &BatchOrigin, scored: usize) {
        self.ranges.push(StagedRange {
            object: origin.object.to_string(),
            row_group: origin.row_group,
            first_row: origin.first_row,
            rows: origin.source_rows,
            scored,
        });
        self.rejected.extend(origin.rejected.iter().cloned());
        merge_stats(&mut self.stats, &origin.stats);
    }

    /// Adds another checkpoint's record (chunks gathered into one commit).
    pub fn absorb(&mut self, other: Checkpoint) {
        self.ranges.extend(other.ranges);
        self.rejected.extend(other.rejected);
        merge_stats(&mut self.stats, &other.stats);
    }

    /// Whether it records nothing.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The record as stored.
    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

fn merge_stats(into: &mut Vec<ScoreStats>, from: &[ScoreStats]) {
    if into.len() < from.len() {
        into.resize(from.len(), ScoreStats::default());
    }
    for (a, b) in into.iter_mut().zip(from) {
        a.merge(b);
    }
}

/// Where a sink commits its checkpoints: the run and a sequence shared by its writers.
#[derive(Debug, Clone)]
pub struct CheckpointTarget {
    pub run_id: Uuid,
    pub seq: Arc<std::sync::atomic::AtomicI64>,
}

impl CheckpointTarget {
    /// A target for run `run_id`, numbering from `first` (after the checkpoints it adopted).
    pub fn new(run_id: Uuid, first: i64) -> Self {
        Self {
            run_id,
            seq: Arc::new(std::sync::atomic::AtomicI64::new(first)),
        }
    }

    fn next(&self) -> i64 {
        self.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Inserts `checkpoint` on `conn`, inside the transaction that staged its rows (PostgreSQL).
    pub async fn save_pg(
        &self,
        conn: &mut sqlx::PgConnection,
        checkpoint: &Checkpoint,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(include_str!(
            "../../../../sql/postgres/queries/resume_checkpoint.sql"
        ))
        .bind(self.run_id.to_string())
        .bind(self.next())
        .bind(checkpoint.body())
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Inserts `checkpoint` on `conn`, inside the transaction that staged its rows (SQLite).
    pub async fn save_sqlite(
        &self,
        conn: &mut sqlx::SqliteConnection,
        checkpoint: &Checkpoint,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(include_str!(
            "../../../../sql/sqlite/queries/resume_checkpoint.sql"
        ))
        .bind(self.run_id.to_string())
        .bind(self.next())
        .bind(checkpoint.body())
        .execute(conn)
        .await
        .map(|_| ())
    }
}
