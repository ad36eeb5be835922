//! Integration tests: the scorer binary against real Parquet files, real model files, a real
//! PostgreSQL server (started by scripts/test.sh) and SQLite.

mod cli;
mod common;
mod postgres;
mod reference;
mod sqlite;
