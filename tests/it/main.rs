//! Integration tests: the scorer binary against real Parquet files, real model files, a real
//! PostgreSQL server (started by scripts/test.sh) and SQLite.

mod analyst;
mod bad_inputs;
mod browse;
mod cli;
mod cloud;
mod common;
mod delta;
mod deploy;
mod device;
mod drift;
mod exit_codes;
mod faults;
mod gbdt;
#[cfg(feature = "cuda")]
mod gpu;
mod inputs;
mod library;
mod lifecycle;
mod logs;
mod manifest_faults;
mod metrics;
mod mlflow;
mod objects;
mod onnx;
mod postgres;
mod privacy;
mod props;
mod pushdown;
mod quarantine;
mod recovery;
mod reference;
mod registry;
mod report;
mod resume;
mod retention;
mod roles;
mod schedule;
mod secrets;
mod shards;
mod sqlite;
mod text_embedding;
mod tls;
mod upgrade;
mod vectors;
mod writers;
