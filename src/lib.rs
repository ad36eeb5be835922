//! scorer: a batch scoring job runner. A job file names Parquet input, a model and a result table;
//! `scorer run JOB --date D` streams the input through the model into one atomic, idempotent
//! partition per job and date, and records the run in a ledger.
//!
//! The binary is a thin layer over this library; the integration tests drive the same functions.
//! This crate is the run and the command line; the stages (`scorer-stages`) and the shared types
//! (`scorer-core`) are crates below it, re-exported here under their usual names.

pub use scorer_core::{
    buffer_pool, calendar, config_keys, contract, error, hashing, histogram, ids, large_alloc,
    progress, quarantine, redact, sql_ident, stats, template,
};
pub use scorer_stages::{
    db, delta, drift, features, job, metrics, model, preprocess, sink, source, stop_point,
};

pub mod cli;
pub mod commands;
pub mod datagen;
pub mod failure;
pub mod guards;
pub mod ledger;
pub mod pipeline;
pub mod plan;
pub mod promote;
pub mod report;
pub mod resume;
pub mod run;
pub mod schedule;
pub mod score;
pub mod shard;
pub mod summary;
pub mod telemetry;
pub mod validate;
