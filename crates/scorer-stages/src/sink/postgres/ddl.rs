//! DDL for result tables, assembled only from identifiers that `sql_ident` validated and quotes.

use chrono::NaiveDate;
use sqlx::postgres::PgPool;

use crate::contract::OutputType;
use crate::sink::VectorType;
use crate::sink::columns::SqlColumnType;
use crate::sink::{DATE_COLUMN, OutputLayout, RUN_ID_COLUMN, SinkError};
use crate::source::IdKind;
use crate::sql_ident::quote;

/// The columns a result table must have, with PostgreSQL's names for their types (vectors as
/// pgvector's `vector(n)` when the layout asks for it).
pub fn expected_columns(layout: &OutputLayout) -> Vec<(String, String)> {
    let id_type = match layout.id_kind {
        IdKind::Int => "bigint",
        IdKind::Text => "text",
    };
    let mut cols = vec![
        (layout.id_column.clone(), id_type.to_string()),
        (DATE_COLUMN.to_string(), "date".to_string()),
    ];
    cols.extend(layout.score_columns.iter().map(|c| {
        let ty = match c.ty {
            OutputType::Float32Vector(n) if layout.vectors == VectorType::Pgvector => {
                format!("vector({n})")
            }
            other => other.pg_type().to_string(),
        };
        (c.name.clone(), ty)
    }));
    cols.push((RUN_ID_COLUMN.to_string(), "uuid".to_string()));
    cols
}

/// Checks the pgvector extension is installed in the database, for `output.vector_type =
/// "pgvector"`; a clear error naming the fix when it is not.
pub async fn require_pgvector(pool: &PgPool, layout: &OutputLayout) -> Result<(), SinkError> {
    let t = &layout.table;
    let version: Option<String> =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
            .fetch_optional(pool)
            .await
            .map_err(SinkError::db(t, "looking for the pgvector extension"))?;
    match version {
        Some(_) => Ok(()),
        None => Err(SinkError::Mismatch {
            table: t.to_string(),
            message:
                "output.vector_type = \"pgvector\" needs the pgvector extension, which is not \
                      installed in this database: run `CREATE EXTENSION vector` (as its owner or \
                      a superuser; the server needs pgvector's files), or set \
                      vector_type = \"real[]\""
                    .to_string(),
        }),
    }
}

/// The bound clause of a date's partition, in the form `pg_get_expr` prints it.
pub fn partition_bound(date: NaiveDate) -> String {
    format!("FOR VALUES IN ('{}')", date.format("%Y-%m-%d"))
}

/// Name of the CHECK that a shard's staging table holds only its run's rows.
const RUN_CHECK: &str = "run_is_shard_run";

/// `CREATE TABLE` for a staging table shaped like the result table, constrained to the run's date
/// (so ATTACH PARTITION can skip its validation scan), with the run's date and id as the defaults
/// of `ds` and `run_id` so COPY does not have to carry them on every row. A shard's staging
/// (`run_check`) is also constrained to the run's id, so the publishing shard attaches it under
/// the date's partition (listed by run id) without a scan.
pub fn create_staging(layout: &OutputLayout, staging: &str, run_check: bool) -> String {
    let table = layout.table.pg_sibling(staging);
    let date = layout.date.format("%Y-%m-%d");
    let run = quote(RUN_ID_COLUMN);
    let run_constraint = if run_check {
        format!(
            ", CONSTRAINT {} CHECK ({run} = '{}'::uuid)",
            quote(RUN_CHECK),
            layout.run_id
        )
    } else {
        String::new()
    };
    format!(
        "CREATE TABLE {table} (LIKE {} INCLUDING DEFAULTS, CONSTRAINT {} CHECK ({ds} = DATE '{date}'){run_constraint});\n\
         ALTER TABLE {table} ALTER COLUMN {ds} SET DEFAULT DATE '{date}', \
         ALTER COLUMN {run} SET DEFAULT '{}'::uuid",
        layout.table.pg_quoted(),
        quote("ds_is_partition_date"),
        layout.run_id,
        ds = quote(DATE_COLUMN),
    )
}

/// Points an adopted staging table's `run_id` default at the resuming run (`crate::resume`); a
/// shard's run-id CHECK goes, since the table now holds two runs' rows.
pub fn set_staging_run(layout: &OutputLayout, staging: &str) -> String {
    format!(
        "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check};\n\
         ALTER TABLE {table} ALTER COLUMN {} SET DEFAULT '{}'::uuid",
        quote(RUN_ID_COLUMN),
        layout.run_id,
        table = layout.table.pg_sibling(staging),
        check = quote(RUN_CHECK),
    )
}

/// Removes the run's defaults from the staging table before it becomes the date's partition: rows
/// added to the partition by other means must not silently get this run's date and id.
pub fn drop_staging_defaults(layout: &OutputLayout, staging: &str) -> String {
    format!(
        "ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT, ALTER COLUMN {} DROP DEFAULT",
        layout.table.pg_sibling(staging),
        quote(DATE_COLUMN),
        quote(RUN_ID_COLUMN),
    )
}

/// Creates the schema and the partitioned result table if absent, and checks that an existing one
/// has the columns this job writes.
pub async fn ensure_table(pool: &PgPool, layout: &OutputLayout) -> Result<(), SinkError> {
    let t = &layout.table;
    let expected = expected_columns(layout);
    let columns: Vec<String> = expected
        .iter()
        .map(|(name, ty)| {
            // The id, date and run are always there; result columns stay nullable, as they were.
            let key = [layout.id_column.as_str(), DATE_COLUMN, RUN_ID_COLUMN];
            let not_null = if key.contains(&name.as_str()) {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {ty}{not_null}", quote(name))
        })
        .collect();
    let mut sql = String::new();
    if let Some(schema) = &t.schema {
        sql.push_str(&format!("CREATE SCHEMA IF NOT EXISTS {};\n", quote(schema)));
    }
    sql.push_str(&format!(
        "CREATE TABLE IF NOT EXISTS {} ({}) PARTITION BY LIST ({})",
        t.pg_quoted(),
        columns.join(", "),
        quote(DATE_COLUMN)
    ));
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .map_err(SinkError::db(t, "creating the result table"))?;

    let actual: Vec<(String, String)> = sqlx::query_as(include_str!(
        "../../../../../sql/postgres/queries/table_columns.sql"
    ))
    .bind(t.pg_quoted())
    .fetch_all(pool)
    .await
    .map_err(SinkError::db(t, "reading the result table's columns"))?;
    let partitioned: bool = sqlx::query_scalar(include_str!(
        "../../../../../sql/postgres/queries/is_partitioned.sql"
    ))
    .bind(t.pg_quoted())
    .fetch_one(pool)
    .await
    .map_err(SinkError::db(t, "reading the result table's partitioning"))?;
    let want = expected;
    if actual != want || !partitioned {
        let show = |cols: &[(String, String)]| {
            cols.iter()
                .map(|(n, ty)| format!("{n} {ty}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(SinkError::Mismatch {
            table: t.to_string(),
            message: format!(
                "exists with columns ({}){}, but this job writes ({}) partitioned by {DATE_COLUMN}; \
                 rename or drop the old table, or write to another one",
                show(&actual),
                if partitioned {
                    ""
                } else {
                    " and is not partitioned"
                },
                show(&want)
            ),
        });
    }
    Ok(())
}
