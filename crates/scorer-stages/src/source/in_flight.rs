//! How many row groups a run fetches and decodes at once when its job does not say
//! (`input.row_groups_in_flight` left out): chosen from the footers and the cores, so a job
//! without tuning keys runs as small and as fast as a hand-tuned one.
//!
//! While a row group is decoded the source holds its projected column chunks (compressed, as the
//! footer sizes them) and streams decoded batches to the scoring stage. More row groups in flight
//! only pay where there are threads to decode them beside the scoring: about one per
//! [`THREADS_PER_ROW_GROUP`] scoring threads (on 2 cores, one: a second would only compete with
//! the model for the same cores). And the chunks held must fit [`BUDGET_BYTES`]: pyarrow's
//! default 1M-row groups of 32 f32 columns are ~128 MB each, scorer-datagen's 128k-row groups
//! ~16 MB. A job that sets the key gets exactly what it asks for.

use serde::Serialize;

use super::CheckedInput;

/// Most row groups a job may fetch and decode at once; each holds its column chunks in memory.
pub const MAX_ROW_GROUPS_IN_FLIGHT: usize = 64;

/// What the row groups in flight may hold at most, by default (their projected column chunks,
/// compressed); one row group larger than this still runs, alone.
pub const BUDGET_BYTES: u64 = 128 << 20;

/// Scoring threads per row group decoded at once, by default.
pub const THREADS_PER_ROW_GROUP: usize = 4;

/// Who chose the number of row groups in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChosenBy {
    /// `input.row_groups_in_flight` in the job file.
    Job,
    /// This module, from the footers and the cores.
    Auto,
}

/// The run's row groups in flight and what they were chosen from (recorded in the ledger's
/// `memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct InFlight {
    pub row_groups: usize,
    pub chosen_by: ChosenBy,
    /// The largest row group the run reads: its projected column chunks' compressed bytes.
    pub largest_row_group_bytes: u64,
    /// The scoring threads the choice assumed.
    pub threads: usize,
    pub budget_bytes: u64,
}

/// The row groups in flight for a run of `input` on `threads` scoring threads: the job's
/// `row_groups_in_flight` when set, else the rule in the module doc.
pub fn choose(job: Option<usize>, input: &CheckedInput, threads: usize) -> InFlight {
    let largest = largest_row_group_bytes(input);
    let (row_groups, chosen_by) = match job {
        Some(n) => (n, ChosenBy::Job),
        None => (auto(largest, threads), ChosenBy::Auto),
    };
    InFlight {
        row_groups,
        chosen_by,
        largest_row_group_bytes: largest,
        threads,
        budget_bytes: BUDGET_BYTES,
    }
}

/// The rule: one row group per [`THREADS_PER_ROW_GROUP`] threads, as many as fit the budget, at
/// least one.
pub fn auto(largest_row_group_bytes: u64, threads: usize) -> usize {
    let by_threads = (threads / THREADS_PER_ROW_GROUP).max(1);
    let by_budget = BUDGET_BYTES
        .checked_div(largest_row_group_bytes)
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
        .max(1);
    by_threads.min(by_budget).min(MAX_ROW_GROUPS_IN_FLIGHT)
}

/// The largest row group among those the run reads (a shard's selection only).
fn largest_row_group_bytes(input: &CheckedInput) -> u64 {
    input
        .objects
        .iter()
        .flat_map(|o| {
            o.row_group_indexes()
                .into_iter()
                .map(|rg| o.row_group_bytes.get(rg).copied().unwrap_or(0))
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn two_cores_decode_one_row_group_at_a_time() {
        assert_eq!(auto(16 * MB, 2), 1);
        assert_eq!(auto(128 * MB, 2), 1);
    }

    #[test]
    fn many_cores_decode_more_while_the_budget_allows() {
        // scorer-datagen's 128k-row groups on 16 cores: 4, the old fixed default.
        assert_eq!(auto(16 * MB, 16), 4);
        assert_eq!(auto(16 * MB, 64), 8);
        // pyarrow's 1M-row groups: the budget holds one.
        assert_eq!(auto(128 * MB, 16), 1);
        assert_eq!(auto(40 * MB, 16), 3);
        // Empty or unknown sizes (footers without sizes): the threads decide, within the cap.
        assert_eq!(auto(0, 16), 4);
        assert_eq!(auto(1, 1024), MAX_ROW_GROUPS_IN_FLIGHT);
    }

    #[test]
    fn one_row_group_larger_than_the_budget_still_runs() {
        assert_eq!(auto(4096 * MB, 16), 1);
    }
}
