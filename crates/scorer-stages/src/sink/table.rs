//! A table output (`[output] table = "schema.name"`): its keys, and the table it resolves to in
//! the run's database, written by the PostgreSQL or the SQLite kind as the database is.

use std::fmt::Display;
use std::sync::Arc;

use chrono::NaiveDate;
use serde::Deserialize;

use super::output::{Destination, Output, OutputSection, TableOptions};
use super::{SinkError, VectorType, postgres, sqlite};
use crate::db::{Database, MAX_COPY_STREAMS};
use crate::sql_ident::TableName;

/// `[output]` of a table output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSection {
    /// `table` or `schema.table` in the database, partitioned by the logical date.
    pub table: String,
    /// PostgreSQL only: concurrent COPY sessions into the staging table. Each is one server
    /// backend, i.e. one server core; more than one pays when the server has cores to spare and
    /// a single COPY is the bound (benches/README.md: not on a 2-core host shared with scorer).
    #[serde(default = "default_copy_streams")]
    pub copy_streams: usize,
    /// PostgreSQL: index the id column of each date's partition, built on the staging table
    /// before the swap (the swap stays short; the run takes longer by the index build).
    #[serde(default)]
    pub index: bool,
    /// How vector outputs (embeddings, class probabilities) are stored: `real[]` (default:
    /// PostgreSQL `real[]`, SQLite a JSON array), `pgvector` (PostgreSQL: the extension's
    /// `vector(n)`, searchable with its indexes) or `blob` (SQLite: little-endian f32 bytes).
    #[serde(default)]
    pub vector_type: VectorType,
    /// PostgreSQL: roles granted SELECT on the result table and its `_latest` view on every
    /// run (e.g. `["scorer_analyst"]` from sql/postgres/roles.sql). The date partitions, staging
    /// tables and the quarantine (raw input ids) get no grant: readers go through the table.
    #[serde(default)]
    pub readers: Vec<String>,
}

fn default_copy_streams() -> usize {
    TableOptions::default().copy_streams
}

impl TableSection {
    /// The result table; `problems` said when it is not a valid name.
    fn target(&self) -> Result<TableTarget, String> {
        TableName::parse(&self.table)
            .map(|table| TableTarget {
                table,
                copy_streams: self.copy_streams,
            })
            .map_err(|e| format!("output.table: {e}"))
    }
}

impl OutputSection for TableSection {
    fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        p.extend(self.target().err());
        if !(1..=MAX_COPY_STREAMS).contains(&self.copy_streams) {
            p.push(format!(
                "output.copy_streams must be between 1 and {MAX_COPY_STREAMS}, got {}",
                self.copy_streams
            ));
        }
        for role in &self.readers {
            if let Err(e) = crate::sql_ident::check_column(role) {
                p.push(format!("output.readers: {e}"));
            }
        }
        p
    }

    fn destination(&self, _date: NaiveDate) -> Result<Box<dyn Destination>, String> {
        Ok(Box::new(self.target()?))
    }

    fn written_destination(&self, written: &str) -> Result<Box<dyn Destination>, String> {
        TableTarget::written(written)
            .map(|t| Box::new(t) as Box<dyn Destination>)
            .ok_or_else(|| format!("{written} is not a table name"))
    }

    fn table_options(&self) -> TableOptions {
        TableOptions {
            copy_streams: self.copy_streams,
            index: self.index,
            readers: self.readers.clone(),
            vectors: self.vector_type,
        }
    }
}

/// A result table in the run's database.
#[derive(Debug, Clone)]
pub struct TableTarget {
    pub table: TableName,
    /// COPY sessions the sink opens.
    pub copy_streams: usize,
}

impl TableTarget {
    /// The table a run recorded as its output, when `written` names one: a table is found in
    /// the run's database by its name alone, with no job file.
    pub fn written(written: &str) -> Option<Self> {
        TableName::parse(written).ok().map(|table| Self {
            table,
            copy_streams: 0,
        })
    }
}

impl Display for TableTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.table)
    }
}

impl Destination for TableTarget {
    fn database_sessions(&self) -> usize {
        self.copy_streams
    }

    fn open(&self, db: &Database) -> Result<Arc<dyn Output>, SinkError> {
        Ok(match db {
            Database::Postgres { pool, .. } => Arc::new(postgres::output::PgTable::new(
                pool.clone(),
                self.table.clone(),
                db,
            )),
            Database::Sqlite { pool, .. } => Arc::new(sqlite::output::SqliteTable::new(
                pool.clone(),
                self.table.clone(),
                db,
            )),
        })
    }
}
