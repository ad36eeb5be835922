//! Publishing a sharded run's parts as one date: every shard's staging table becomes a partition
//! (by `run_id`) of a new table, which replaces the date's partition in the same transaction as
//! the usual swap. No row is copied; readers see the old rows or all shards' rows.

use sqlx::postgres::PgPool;

use super::ddl;
use crate::db::lock::OutputLock;
use crate::quarantine::RejectedRow;
use crate::sink::parts::PublishRecord;
use crate::sink::{OutputLayout, RUN_ID_COLUMN, SinkError};
use crate::sql_ident::quote;

/// One shard's staging table and the run ids its rows carry.
#[derive(Debug, Clone)]
pub struct StagedTable {
    pub staging: String,
    pub run_ids: Vec<uuid::Uuid>,
}

/// One transaction: the shards' staging tables attached under a table partitioned by `run_id`
/// (a staging's run-id CHECK spares the attach its scan; a resumed shard's is scanned, outside
/// the readers' window), the ids checked unique across shards (unless `ids_checked`: their
/// digests were), then the date's quarantine replaced, the result table locked, `lock` verified,
/// the old partition dropped and the new one attached and renamed, and `publication` recorded.
/// `layout.run_id` is the publishing run's. On failure nothing changes: the staging tables stay
/// as they were, for a retry.
pub async fn publish_parts(
    pool: &PgPool,
    layout: &OutputLayout,
    parts: &[StagedTable],
    lock: &mut dyn OutputLock,
    rejected: &[RejectedRow],
    publication: &dyn PublishRecord,
    ids_checked: bool,
) -> Result<(), SinkError> {
    let t = &layout.table;
    let parent = t.pg_quoted();
    let date_table = {
        let hex = layout.run_id.simple().to_string();
        format!("{}__shd_{}", t.table, &hex[hex.len() - 12..])
    };
    let date_q = t.pg_sibling(&date_table);
    let mut tx = pool
        .begin()
        .await
        .map_err(SinkError::db(t, "starting the shards' publication"))?;
    let mut statements = vec![format!(
        "CREATE TABLE {date_q} (LIKE {parent}) PARTITION BY LIST ({})",
        quote(RUN_ID_COLUMN)
    )];
    for part in parts {
        statements.push(ddl::drop_staging_defaults(layout, &part.staging));
        let ids: Vec<String> = part.run_ids.iter().map(|id| format!("'{id}'")).collect();
        statements.push(format!(
            "ALTER TABLE {date_q} ATTACH PARTITION {} FOR VALUES IN ({})",
            t.pg_sibling(&part.staging),
            ids.join(", ")
        ));
    }
    for s in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(s))
            .execute(&mut *tx)
            .await
            .map_err(SinkError::db(t, "gathering the shards' staging tables"))?;
    }
    let duplicate: Option<String> = if ids_checked {
        None
    } else {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {id}::text FROM {date_q} GROUP BY {id} HAVING count(*) > 1 LIMIT 1",
            id = quote(&layout.id_column)
        )))
        .fetch_optional(&mut *tx)
        .await
        .map_err(SinkError::db(t, "checking ids are unique across shards"))?
    };
    if let Some(id) = duplicate {
        return Err(SinkError::DuplicateId {
            output: t.to_string(),
            id,
        });
    }
    super::swap_partition(&mut tx, layout, &date_table, lock, rejected).await?;
    // The shards' tables are the date's now: named after it, not after runs (a staging name
    // is what clean-up code removes).
    let partition = t.partition_name(layout.date);
    for (i, part) in parts.iter().enumerate() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "ALTER TABLE {} RENAME TO {}",
            t.pg_sibling(&part.staging),
            quote(&format!("{partition}_s{i}"))
        )))
        .execute(&mut *tx)
        .await
        .map_err(SinkError::db(t, "naming the shards' tables after the date"))?;
    }
    publication
        .in_pg(&mut tx)
        .await
        .map_err(SinkError::db(t, "recording the attempt's publication"))?;
    crate::stop_point::reach(crate::stop_point::SHARD_IN_TRANSACTION);
    tx.commit()
        .await
        .map_err(SinkError::db(t, "committing the shards' publication"))
}
