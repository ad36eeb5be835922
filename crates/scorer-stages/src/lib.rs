//! scorer's stages and the infrastructure under them: the database and its locks, object-store
//! input, Delta tables, the feature stage and preprocessing, the model kinds, the sinks, drift, and
//! the job file that configures them. Nothing here knows a run (`scorer::run`); the compiler keeps
//! it so. The bottom layer's modules are re-exported, so `crate::contract` means the same here as
//! in the crates above. See ARCHITECTURE.md for the layers.

pub use scorer_core::{
    buffer_pool, calendar, config_keys, contract, error, hashing, histogram, ids, large_alloc,
    progress, quarantine, redact, sql_ident, stats, template,
};

pub mod db;
pub mod delta;
pub mod drift;
pub mod features;
pub mod job;
pub mod metrics;
pub mod model;
pub mod preprocess;
pub mod sink;
pub mod source;
pub mod stop_point;
