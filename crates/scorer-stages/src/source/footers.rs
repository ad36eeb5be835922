//! The input's footers, checked before the read: every input object's footer is fetched and
//! checked for the id and feature columns before any scoring starts, and every problem in every
//! file is reported at once (the run's plan, `scorer::plan`, holds the result).
//!
//! The checked input keeps only what the run needs of each footer (row counts and the projection), not the
//! decoded footer itself: a footer costs ~150 KB in memory (W1's: metadata plus the prefetched
//! bytes it points into), so keeping them all would make memory grow with the number of input
//! files. The source reads each object's footer again when it gets to it; reads are pinned to the
//! listed etag, so it is the same footer.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use futures::StreamExt;
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::AsyncFileReader;

use super::reader::ObjectReader;
use super::{InputLocation, SourceError, list};
use crate::buffer_pool::BufferPool;
use crate::contract::{ColumnKind, RawColumn};
use crate::error::{ErrorClass, parquet_class};

/// Footers fetched concurrently while checking.
const FOOTERS_IN_FLIGHT: usize = 8;

/// How the id column is stored in the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// Signed or small unsigned integers: `bigint`.
    Int,
    /// Strings: `text`.
    Text,
}

/// One input object, its footer checked and its projection chosen.
#[derive(Debug, Clone)]
pub struct CheckedObject {
    pub url: String,
    pub meta: ObjectMeta,
    /// Row groups in the file.
    pub row_groups: usize,
    /// Rows in the file, from its footer.
    pub rows: u64,
    /// Rows in each row group.
    pub row_group_rows: Vec<u64>,
    /// Compressed bytes of the projected column chunks of each row group, from the footer: what
    /// the source holds of a row group while it decodes it (the memory budget's unit).
    pub row_group_bytes: Vec<u64>,
    pub projection: ProjectionMask,
    /// The id column alone (a resumed run reads the ids of the rows it adopted).
    pub id_projection: ProjectionMask,
    /// The row groups to read, when a sharded run reads only some (`crate::shard`); all when
    /// `None`. `rows` counts only these.
    pub selected: Option<Vec<usize>>,
    /// The logical name of each column whose name in the file is a physical one (a Delta
    /// table with column mapping): the source stage renames them as it reads.
    pub logical_names: Option<Arc<BTreeMap<String, String>>>,
    /// Rows deleted from the file without rewriting it (a Delta deletion vector): indexes in
    /// the file, ascending. The source stage leaves them out; `rows` does not count them.
    pub deleted_rows: Option<Arc<Vec<u64>>>,
}

impl CheckedObject {
    /// The row groups this run reads, in file order.
    pub fn row_group_indexes(&self) -> Vec<usize> {
        match &self.selected {
            Some(s) => s.clone(),
            None => (0..self.row_groups).collect(),
        }
    }

    /// The same object, reading only `row_groups` (indexes into the file's row groups).
    pub fn with_row_groups(&self, row_groups: Vec<usize>) -> Self {
        let rows = row_groups.iter().map(|&rg| self.live_rows(rg)).sum();
        Self {
            url: self.url.clone(),
            meta: self.meta.clone(),
            row_groups: self.row_groups,
            rows,
            row_group_rows: self.row_group_rows.clone(),
            row_group_bytes: self.row_group_bytes.clone(),
            projection: self.projection.clone(),
            id_projection: self.id_projection.clone(),
            selected: Some(row_groups),
            logical_names: self.logical_names.clone(),
            deleted_rows: self.deleted_rows.clone(),
        }
    }

    /// This object with `deleted` rows (indexes in the file, ascending) left out, and `rows`
    /// counting only the rest of the row groups it reads.
    pub fn with_deleted_rows(mut self, deleted: Arc<Vec<u64>>) -> Self {
        self.deleted_rows = Some(deleted);
        self.rows = self
            .row_group_indexes()
            .iter()
            .map(|&rg| self.live_rows(rg))
            .sum();
        self
    }

    /// The index in the file of row group `rg`'s first row.
    fn row_group_start(&self, rg: usize) -> u64 {
        self.row_group_rows.iter().take(rg).sum()
    }

    /// The deleted rows in `[start, end)` (indexes in the file).
    fn deleted_between(&self, start: u64, end: u64) -> &[u64] {
        let Some(deleted) = &self.deleted_rows else {
            return &[];
        };
        let from = deleted.partition_point(|&r| r < start);
        let to = deleted.partition_point(|&r| r < end);
        &deleted[from..to]
    }

    /// Row group `rg`'s rows, less its deleted ones.
    fn live_rows(&self, rg: usize) -> u64 {
        let rows = self.row_group_rows.get(rg).copied().unwrap_or(0);
        let start = self.row_group_start(rg);
        rows - self.deleted_between(start, start + rows).len() as u64
    }

    /// `parts` ((offset, length) in a batch of row group `rg` that starts at its row
    /// `first_row`) with the deleted rows cut out.
    pub fn without_deleted(
        &self,
        rg: usize,
        first_row: usize,
        parts: Vec<(usize, usize)>,
    ) -> Vec<(usize, usize)> {
        if self.deleted_rows.is_none() {
            return parts;
        }
        let batch_start = self.row_group_start(rg) + first_row as u64;
        let mut kept = Vec::with_capacity(parts.len());
        for (offset, len) in parts {
            let mut at = offset;
            let end = offset + len;
            let from = batch_start + offset as u64;
            for &row in self.deleted_between(from, batch_start + end as u64) {
                let row = (row - batch_start) as usize;
                if row > at {
                    kept.push((at, row - at));
                }
                at = row + 1;
            }
            if end > at {
                kept.push((at, end - at));
            }
        }
        kept
    }

    /// `batch` with its physical column names replaced by logical ones (column mapping).
    pub fn rename_columns(&self, batch: arrow::array::RecordBatch) -> arrow::array::RecordBatch {
        let Some(names) = &self.logical_names else {
            return batch;
        };
        let schema = rename_fields(batch.schema_ref(), names);
        // Same columns, same types: only the names changed, so this cannot fail.
        arrow::array::RecordBatch::try_new(schema, batch.columns().to_vec()).unwrap_or(batch)
    }
}

/// `schema` with each field named in `names` (physical -> logical) renamed.
pub fn rename_fields(
    schema: &arrow::datatypes::Schema,
    names: &BTreeMap<String, String>,
) -> arrow::datatypes::SchemaRef {
    let fields: Vec<arrow::datatypes::Field> = schema
        .fields()
        .iter()
        .map(|f| match names.get(f.name()) {
            Some(logical) => f.as_ref().clone().with_name(logical),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(arrow::datatypes::Schema::new_with_metadata(
        fields,
        schema.metadata().clone(),
    ))
}

/// What checking learns from one footer.
struct CheckedFooter {
    row_groups: usize,
    rows: u64,
    row_group_rows: Vec<u64>,
    row_group_bytes: Vec<u64>,
    projection: ProjectionMask,
    id_projection: ProjectionMask,
    id_kind: Option<IdKind>,
    schema: arrow::datatypes::SchemaRef,
    problems: Vec<String>,
}

/// Checks one footer's schema for the id and feature columns; the footer is dropped afterwards.
fn check_footer(
    arrow_meta: &ArrowReaderMetadata,
    url: &str,
    id_column: &str,
    columns: &[RawColumn],
) -> CheckedFooter {
    let schema = arrow_meta.schema();
    let mut problems = Vec::new();
    let mut roots = Vec::with_capacity(columns.len() + 1);
    let mut id_kind = None;
    match check_id(schema, id_column) {
        Ok((idx, kind)) => {
            roots.push(idx);
            id_kind = Some(kind);
        }
        Err(p) => problems.push(format!("{url}: {p}")),
    }
    for c in columns {
        match check_column(schema, c) {
            Ok(idx) => roots.push(idx),
            Err(p) => problems.push(format!("{url}: {p}")),
        }
    }
    let metadata = arrow_meta.metadata();
    let descr = metadata.file_metadata().schema_descr();
    let projection = ProjectionMask::roots(descr, roots.iter().copied());
    let row_group_bytes = metadata
        .row_groups()
        .iter()
        .map(|rg| {
            rg.columns()
                .iter()
                .enumerate()
                .filter(|(leaf, _)| projection.leaf_included(*leaf))
                .map(|(_, c)| u64::try_from(c.compressed_size()).unwrap_or(0))
                .sum()
        })
        .collect();
    CheckedFooter {
        row_groups: metadata.num_row_groups(),
        rows: u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0),
        row_group_rows: metadata
            .row_groups()
            .iter()
            .map(|rg| u64::try_from(rg.num_rows()).unwrap_or(0))
            .collect(),
        row_group_bytes,
        id_projection: ProjectionMask::roots(descr, roots.iter().take(1).copied()),
        projection,
        id_kind,
        schema: Arc::clone(schema),
        problems,
    }
}

/// Everything the source stage needs to stream a run's input; cheap to clone (shared parts).
#[derive(Debug, Clone)]
pub struct CheckedInput {
    pub store: Arc<dyn ObjectStore>,
    pub objects: Vec<Arc<CheckedObject>>,
    pub id_kind: IdKind,
    pub total_rows: u64,
    /// The first object's arrow schema: the types of the columns a run passes through.
    pub schema: Option<arrow::datatypes::SchemaRef>,
    /// The store's request counts, which the run's ledger row reports.
    pub counters: Arc<super::store_metrics::StoreCounters>,
    /// The version of the Delta table read, when the input is one (`crate::delta::input`).
    pub delta_version: Option<i64>,
}

/// Lists the input and checks every footer for `id_column` and the numeric `features`.
pub async fn check(
    location: &InputLocation,
    id_column: &str,
    features: &[String],
) -> Result<CheckedInput, SourceError> {
    let columns: Vec<RawColumn> = features.iter().map(|f| RawColumn::number(f)).collect();
    check_columns(location, id_column, &columns).await
}

/// Lists the input and checks every footer for `id_column` and `columns` (each of its kind).
pub async fn check_columns(
    location: &InputLocation,
    id_column: &str,
    columns: &[RawColumn],
) -> Result<CheckedInput, SourceError> {
    let metas = list(location).await?;
    check_objects(location, metas, id_column, columns).await
}

/// Checks the footers of `metas` (objects of `location`'s store, listed or named by a Delta
/// log) for `id_column` and `columns`.
pub async fn check_objects(
    location: &InputLocation,
    metas: Vec<ObjectMeta>,
    id_column: &str,
    columns: &[RawColumn],
) -> Result<CheckedInput, SourceError> {
    // Footer reads are small; the pool only saves their allocations.
    let buffers = BufferPool::new(0, FOOTERS_IN_FLIGHT);
    let footers: Vec<_> = futures::stream::iter(metas)
        .map(|meta| async {
            let url = location.object_url(&meta.location);
            let mut reader = ObjectReader::new(
                Arc::clone(&location.store),
                meta.location.clone(),
                meta.size,
                meta.e_tag.clone(),
                Arc::clone(&buffers),
            );
            let footer = match reader.get_metadata(None).await {
                Ok(m) => ArrowReaderMetadata::try_new(m, ArrowReaderOptions::new())
                    .map(|m| check_footer(&m, &url, id_column, columns)),
                Err(e) => Err(e),
            };
            (url, meta, footer)
        })
        .buffered(FOOTERS_IN_FLIGHT)
        .collect()
        .await;

    let mut problems = Vec::new();
    let mut objects = Vec::new();
    let mut id_kinds = Vec::new();
    let mut schema = None;
    for (url, meta, footer) in footers {
        let checked = match footer {
            Ok(c) => c,
            // The store failed or the object changed: not the file's fault, so not one of the
            // data problems (a run that meets it is worth retrying at once).
            Err(source) if parquet_class(&source) != ErrorClass::Data => {
                return Err(SourceError::Footer {
                    object: url,
                    source,
                });
            }
            Err(e) => {
                problems.push(format!("{url}: not a readable Parquet file: {e}"));
                continue;
            }
        };
        problems.extend(checked.problems);
        schema.get_or_insert(checked.schema);
        if let Some(kind) = checked.id_kind {
            id_kinds.push((url.clone(), kind));
        }
        objects.push(Arc::new(CheckedObject {
            url,
            meta,
            row_groups: checked.row_groups,
            rows: checked.rows,
            row_group_rows: checked.row_group_rows,
            row_group_bytes: checked.row_group_bytes,
            projection: checked.projection,
            id_projection: checked.id_projection,
            selected: None,
            logical_names: None,
            deleted_rows: None,
        }));
    }
    let id_kind = id_kinds.first().map(|(_, k)| *k).unwrap_or(IdKind::Int);
    if let Some((url, _)) = id_kinds.iter().find(|(_, k)| *k != id_kind) {
        problems.push(format!(
            "{url}: column `{id_column}` has a different type ({}) than in {} ({})",
            kind_name(id_kinds.iter().find(|(u, _)| u == url).map(|(_, k)| *k)),
            id_kinds[0].0,
            kind_name(Some(id_kind)),
        ));
    }
    if !problems.is_empty() {
        return Err(SourceError::Schema { problems });
    }
    let total_rows = objects.iter().map(|o| o.rows).sum();
    Ok(CheckedInput {
        store: Arc::clone(&location.store),
        objects,
        id_kind,
        total_rows,
        schema,
        counters: Arc::clone(&location.counters),
        delta_version: None,
    })
}

fn kind_name(kind: Option<IdKind>) -> &'static str {
    match kind {
        Some(IdKind::Int) => "integer",
        Some(IdKind::Text) => "string",
        None => "unknown",
    }
}

fn find(schema: &Schema, column: &str) -> Result<usize, String> {
    schema.index_of(column).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        format!(
            "column `{column}` is missing (the file has: {})",
            names.join(", ")
        )
    })
}

fn check_id(schema: &Schema, column: &str) -> Result<(usize, IdKind), String> {
    let idx = find(schema, column)?;
    let kind = match schema.field(idx).data_type() {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32 => IdKind::Int,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => IdKind::Text,
        other => {
            return Err(format!(
                "id column `{column}` is {other}, expected an integer (up to 64-bit signed) or a string"
            ));
        }
    };
    Ok((idx, kind))
}

fn check_column(schema: &Schema, column: &RawColumn) -> Result<usize, String> {
    let idx = find(schema, &column.name)?;
    let dt = schema.field(idx).data_type();
    let text = matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _)
    );
    let name = &column.name;
    match column.kind {
        ColumnKind::Number if crate::contract::is_numeric(dt) => Ok(idx),
        ColumnKind::Number => Err(format!("column `{name}` is {dt}, expected a number")),
        ColumnKind::Text if text => Ok(idx),
        ColumnKind::Text => Err(format!(
            "column `{name}` is {dt}, expected strings (it is a categorical input)"
        )),
        ColumnKind::Any if text || crate::contract::is_numeric(dt) => Ok(idx),
        ColumnKind::Any => Err(format!(
            "column `{name}` is {dt}, expected a number or strings"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(row_group_rows: Vec<u64>, deleted: Vec<u64>) -> CheckedObject {
        let base = CheckedObject {
            url: "file:///t/part-0.parquet".into(),
            meta: ObjectMeta {
                location: "part-0.parquet".into(),
                last_modified: chrono::Utc::now(),
                size: 1,
                e_tag: None,
                version: None,
            },
            row_groups: row_group_rows.len(),
            rows: row_group_rows.iter().sum(),
            row_group_bytes: vec![0; row_group_rows.len()],
            row_group_rows,
            projection: ProjectionMask::all(),
            id_projection: ProjectionMask::all(),
            selected: None,
            logical_names: None,
            deleted_rows: None,
        };
        base.with_deleted_rows(Arc::new(deleted))
    }

    #[test]
    fn deleted_rows_are_cut_out_of_the_batches_of_their_row_group() {
        // Row groups of 10 and 10 rows; rows 0, 3, 4, 9 (first group) and 10, 15, 19 deleted.
        let o = object(vec![10, 10], vec![0, 3, 4, 9, 10, 15, 19]);
        assert_eq!(o.rows, 13);
        // The first group read in one batch of 10.
        assert_eq!(o.without_deleted(0, 0, vec![(0, 10)]), [(1, 2), (5, 4)]);
        // The second group in batches of 4 rows: rows 10..14, 14..18, 18..20 of the file.
        assert_eq!(o.without_deleted(1, 0, vec![(0, 4)]), [(1, 3)]);
        assert_eq!(o.without_deleted(1, 4, vec![(0, 4)]), [(0, 1), (2, 2)]);
        assert_eq!(o.without_deleted(1, 8, vec![(0, 2)]), [(0, 1)]);
        // Parts a resumed run still needs are cut the same way.
        assert_eq!(
            o.without_deleted(0, 0, vec![(0, 2), (4, 6)]),
            [(1, 1), (5, 4)]
        );
        // A sharded run that reads only the second group counts its rows alone.
        assert_eq!(o.with_row_groups(vec![1]).rows, 7);
        // Without deletions nothing changes.
        assert_eq!(
            object(vec![10], vec![]).without_deleted(0, 3, vec![(0, 7)]),
            [(0, 7)]
        );
    }
}
