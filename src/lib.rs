//! scorer: a batch scoring job runner. A job file names Parquet input, a model and a result table;
//! `scorer run JOB --date D` streams the input through the model into one atomic, idempotent
//! partition per job and date, and records the run in a ledger.
//!
//! The binary is a thin layer over this library; the integration tests drive the same functions.

pub mod buffer_pool;
pub mod calendar;
pub mod cli;
pub mod commands;
pub mod contract;
pub mod datagen;
pub mod db;
pub mod delta;
pub mod drift;
pub mod error;
pub mod failure;
pub mod features;
pub mod guards;
pub mod hashing;
pub mod histogram;
pub mod ids;
pub mod job;
pub mod large_alloc;
pub mod ledger;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod plan;
pub mod preprocess;
pub mod progress;
pub mod quarantine;
pub mod redact;
pub mod report;
pub mod resume;
pub mod run;
pub mod schedule;
pub mod score;
pub mod shard;
pub mod sink;
pub mod source;
pub mod sql_ident;
pub mod stats;
pub mod summary;
pub mod telemetry;
pub mod template;
pub mod validate;
