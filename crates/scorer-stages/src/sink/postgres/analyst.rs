//! What analysts query besides the table: a `<table>_latest` view of the newest published date,
//! comments on the table and its columns saying what they hold and which model produced them, and
//! (with `output.index`) an index on the id within each date's partition.

use sqlx::postgres::PgPool;

use crate::sink::{DATE_COLUMN, OutputLayout, RUN_ID_COLUMN, SinkError};
use crate::sql_ident::{literal, quote};

/// The view's name: `<table>_latest` beside the table.
pub fn latest_view(layout: &OutputLayout) -> String {
    layout
        .table
        .pg_sibling(&format!("{}_latest", layout.table.table))
}

/// Creates `<table>_latest` if it is missing: the rows of the newest logical date a run of this
/// output published, found in the ledger, so the partition is picked at run time. An existing
/// view is left alone (replacing it would wait for every query reading it).
pub async fn ensure_latest_view(pool: &PgPool, layout: &OutputLayout) -> Result<(), SinkError> {
    let t = &layout.table;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(latest_view(layout))
        .fetch_one(pool)
        .await
        .map_err(SinkError::db(t, "looking for the _latest view"))?;
    if exists {
        return Ok(());
    }
    let sql = format!(
        "CREATE OR REPLACE VIEW {view} AS SELECT * FROM {table} WHERE {ds} = (\
         SELECT max(logical_date) FROM scorer.runs \
         WHERE output_table = {output} AND status = 'succeeded')",
        view = latest_view(layout),
        table = t.pg_quoted(),
        ds = quote(DATE_COLUMN),
        output = literal(&t.to_string()),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(pool)
        .await
        .map_err(SinkError::db(t, "creating the _latest view"))?;
    Ok(())
}

/// `GRANT SELECT` on the table and its `_latest` view to each of `output.readers`: every run,
/// so a reader added to the job is granted at its next run. Only the parent: queries through it
/// need no grant on its partitions, and the staging tables that become partitions get none.
pub async fn grant_readers(pool: &PgPool, layout: &OutputLayout) -> Result<(), SinkError> {
    for role in &layout.readers {
        let sql = format!(
            "GRANT SELECT ON {}, {} TO {}",
            layout.table.pg_quoted(),
            latest_view(layout),
            quote(role)
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .map_err(SinkError::db(
                &layout.table,
                "granting SELECT to output.readers",
            ))?;
    }
    Ok(())
}

/// `COMMENT ON` the table and each column: what it holds and, on the table, which job and model
/// wrote the newest date (`produced_by`). Run inside the swap, which holds the table's lock.
pub fn comments(layout: &OutputLayout, produced_by: &str) -> Vec<String> {
    let t = &layout.table;
    let parent = t.pg_quoted();
    let column = |name: &str, text: String| {
        format!(
            "COMMENT ON COLUMN {parent}.{} IS {}",
            quote(name),
            literal(&text)
        )
    };
    let mut out = vec![
        format!(
            "COMMENT ON TABLE {parent} IS {}",
            literal(&format!(
                "Scores written by scorer, one partition per logical date ({DATE_COLUMN}), each \
                 replaced whole by a run. Last published by {produced_by}, for date {}, run {}. \
                 {}_latest holds the newest date; scorer.runs has every run.",
                layout.date, layout.run_id, layout.table,
            ))
        ),
        column(
            &layout.id_column,
            format!(
                "The input's id column `{}`: one row per id and date",
                layout.id_column
            ),
        ),
        column(
            DATE_COLUMN,
            "The logical date the row was scored for (the partition key)".to_string(),
        ),
        column(
            RUN_ID_COLUMN,
            "The run that wrote the row: scorer.runs.run_id (model, inputs, statistics)"
                .to_string(),
        ),
    ];
    for c in &layout.score_columns {
        let text = if layout.passthrough.contains(&c.name) {
            format!("The input column `{}`, passed through", c.name)
        } else {
            format!("A model output of {produced_by}")
        };
        out.push(column(&c.name, text));
    }
    out
}

/// `CREATE INDEX` on the staging table's id column: built before the swap, so the swap stays a
/// catalog change, and the date's partition answers "this id on this date" by index.
pub fn id_index(layout: &OutputLayout, staging: &str) -> String {
    format!(
        "CREATE INDEX ON {} ({})",
        layout.table.pg_sibling(staging),
        quote(&layout.id_column)
    )
}
