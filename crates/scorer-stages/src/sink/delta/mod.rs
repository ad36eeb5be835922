//! A Delta table output (`[output] delta = "s3://lake/scores/churn_daily"`): the run's Parquet
//! files under `ds=<date>/` (written as the Parquet output writes them), published by one Delta
//! commit (`commit::commit_date`); a sharded run's publishing shard commits every shard's files at
//! once (`publish_parts`). The table's log is read through `crate::delta` (shared with Delta
//! input); what a run commits, and the table's columns for it, are here (`commit`, `schema`).
//! The job file's keys ([`section`]) are parsed whether or not the binary has the `delta` feature,
//! so a job naming a Delta output is validated, and refused as not built, by every binary.

#[cfg(feature = "delta")]
pub mod commit;
#[cfg(feature = "delta")]
pub mod output;
#[cfg(feature = "delta")]
pub mod schema;
pub mod section;
#[cfg(feature = "delta")]
mod writer;

pub use section::DeltaSection;
#[cfg(feature = "delta")]
pub use writer::{DeltaPartitionWriter, publish_parts, remove_leftovers};
