//! The bad inputs a lake holds, each with its documented policy and a message that names what to
//! fix: files that are not Parquet, mistyped columns, integers and decimals widened to f32, null
//! ids under `fail`, an empty file among others, schema drift across files, and identifiers that
//! try to be SQL. The date's previous rows stay whenever a run refuses.

use std::sync::Arc;

use arrow::array::{ArrayRef, Decimal128Array, Float32Array, Float64Array, Int32Array, Int64Array};
use arrow::array::{StringArray, UInt16Array};
use arrow::record_batch::RecordBatch;
use sqlx::sqlite::SqlitePool;

use crate::common::{DATE, ModelOpts, Project, assert_ok, text};

const ROWS: usize = 1_000;

fn dir(p: &Project, set: &str) -> std::path::PathBuf {
    let d = p.path().join("data").join(set).join(format!("dt={DATE}"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes `name` under `set` with these columns.
fn write(p: &Project, set: &str, name: &str, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(dir(p, set).join(name)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Ids `start..start + n` and features f0..f7 as f32, values exact in every numeric type used
/// below (multiples of 0.25 under 100).
fn good_columns(start: i64, n: usize) -> Vec<(&'static str, ArrayRef)> {
    let names = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"];
    let mut cols: Vec<(&str, ArrayRef)> = vec![(
        "id",
        Arc::new(Int64Array::from_iter_values(start..start + n as i64)),
    )];
    for (f, name) in names.iter().enumerate() {
        let v: Vec<f32> = (0..n).map(|r| ((r + f) % 97) as f32 * 0.25).collect();
        cols.push((name, Arc::new(Float32Array::from(v))));
    }
    cols
}

fn project() -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p
}

/// A job over `set` into `table`, with `extra` [input] lines.
fn job(p: &Project, name: &str, set: &str, table: &str, extra: &str) {
    p.add_job(name, set, "m", table, extra);
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `job`, expecting `code` and every one of `needles` in stderr.
fn refused(p: &Project, job: &str, code: i32, needles: &[&str]) {
    let out = p.run(job, None);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    let err = stderr(&out);
    for n in needles {
        assert!(err.contains(n), "`{n}` missing from:\n{err}");
    }
}

async fn scores(p: &Project, table: &str) -> Vec<(i64, f64)> {
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, score FROM {table} WHERE ds = '{DATE}' ORDER BY id"
    )))
    .fetch_all(&pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn files_that_are_not_parquet_and_mistyped_columns_are_named() {
    let p = project();
    write(&p, "ok", "part-0.parquet", good_columns(0, ROWS));
    job(&p, "daily", "ok", "daily", "");
    assert_ok(&p.run("daily", None));
    let before = scores(&p, "daily").await;

    // A CSV someone dropped into the directory.
    std::fs::write(dir(&p, "ok").join("extra.parquet"), "id,f0\n1,2\n").unwrap();
    refused(
        &p,
        "daily",
        3,
        &["extra.parquet", "not a readable Parquet file"],
    );
    std::fs::remove_file(dir(&p, "ok").join("extra.parquet")).unwrap();

    // A feature stored as text.
    let mut cols = good_columns(0, ROWS);
    cols[4].1 = Arc::new(StringArray::from_iter_values(
        (0..ROWS).map(|r| r.to_string()),
    ));
    write(&p, "ok", "part-1.parquet", cols);
    refused(&p, "daily", 3, &["part-1.parquet", "f3"]);
    assert_eq!(scores(&p, "daily").await, before, "the date keeps its rows");
}

#[tokio::test]
async fn integers_and_decimals_widen_to_f32_exactly() {
    let p = project();
    let plain = good_columns(0, ROWS);
    let values = |i: usize| -> Vec<f64> {
        let a = plain[i].1.as_any().downcast_ref::<Float32Array>().unwrap();
        a.values().iter().map(|v| f64::from(*v)).collect()
    };
    // The same values as f64 and decimal(9,2); whole numbers as int32 and uint16 beside f32.
    let mut typed = good_columns(0, ROWS);
    typed[1].1 = Arc::new(Float64Array::from(values(1)));
    typed[2].1 = Arc::new(
        Decimal128Array::from_iter_values(values(2).iter().map(|v| (v * 100.0) as i128))
            .with_precision_and_scale(9, 2)
            .unwrap(),
    );
    let whole = |i: usize| -> Vec<u16> { values(i).iter().map(|v| v.floor() as u16).collect() };
    typed[3].1 = Arc::new(Int32Array::from_iter_values(
        whole(3).iter().map(|&v| i32::from(v)),
    ));
    typed[4].1 = Arc::new(UInt16Array::from(whole(4)));
    let mut reference = good_columns(0, ROWS);
    reference[3].1 = Arc::new(Float32Array::from_iter_values(
        whole(3).iter().map(|&v| f32::from(v)),
    ));
    reference[4].1 = Arc::new(Float32Array::from_iter_values(
        whole(4).iter().map(|&v| f32::from(v)),
    ));
    write(&p, "typed", "part-0.parquet", typed);
    write(&p, "reference", "part-0.parquet", reference);
    job(&p, "typed", "typed", "typed", "");
    job(&p, "reference", "reference", "reference", "");
    assert_ok(&p.run("typed", None));
    assert_ok(&p.run("reference", None));
    let got = scores(&p, "typed").await;
    assert_eq!(got.len(), ROWS);
    assert_eq!(
        got,
        scores(&p, "reference").await,
        "every type widens exactly"
    );
}

#[tokio::test]
async fn null_ids_under_fail_and_an_empty_file_among_others() {
    let p = project();
    let mut cols = good_columns(0, ROWS);
    cols[0].1 = Arc::new(Int64Array::from_iter(
        (0..ROWS as i64).map(|i| (i != 17).then_some(i)),
    ));
    write(&p, "nullid", "part-0.parquet", cols);
    job(&p, "strict", "nullid", "strict", "on_null = \"fail\"");
    refused(
        &p,
        "strict",
        3,
        &["part-0.parquet", "null id at row 17", "`id`"],
    );

    // A file with the schema and no rows is simply empty; the others are scored.
    write(&p, "withempty", "part-0.parquet", good_columns(0, 0));
    write(&p, "withempty", "part-1.parquet", good_columns(0, ROWS));
    job(&p, "mixed", "withempty", "mixed", "");
    assert_ok(&p.run("mixed", None));
    assert_eq!(scores(&p, "mixed").await.len(), ROWS);
}

#[tokio::test]
async fn schema_drift_across_files_is_reported_file_by_file() {
    let p = project();
    write(&p, "drift", "part-0.parquet", good_columns(0, ROWS));
    let mut cols = good_columns(ROWS as i64, ROWS);
    cols[0].1 = Arc::new(StringArray::from_iter_values(
        (ROWS..2 * ROWS).map(|i| format!("c{i}")),
    ));
    write(&p, "drift", "part-1.parquet", cols);
    let mut cols = good_columns(2 * ROWS as i64, ROWS);
    cols.retain(|(name, _)| *name != "f5");
    write(&p, "drift", "part-2.parquet", cols);
    job(&p, "drift", "drift", "drift", "");
    // Both problems at once, each naming its file.
    refused(
        &p,
        "drift",
        3,
        &["part-1.parquet", "different type", "part-2.parquet", "f5"],
    );
}

#[tokio::test]
async fn identifiers_that_try_to_be_sql_are_refused_before_anything_runs() {
    let p = project();
    write(&p, "ok", "part-0.parquet", good_columns(0, ROWS));
    for (name, table, extra, needle) in [
        (
            "table",
            "scores; drop table scorer_runs",
            "",
            "not a valid name",
        ),
        ("quote", "a\\\"b", "", "not a valid name"),
        ("upper", "Scores", "", "not a valid name"),
        ("three", "a.b.c", "", "more than one"),
    ] {
        job(&p, name, "ok", table, extra);
        refused(&p, name, 2, &["output.table", needle]);
    }
    // An id column and an output column name that would be SQL.
    let path = p.add_job("cols", "ok", "m", "cols", "");
    let text_of = std::fs::read_to_string(&path).unwrap().replace(
        "id_column = \"id\"",
        "id_column = \"id\\\"; drop table x; --\"",
    ) + "columns = { score = \"s; drop\" }\n";
    std::fs::write(&path, text_of).unwrap();
    let out = p.run("cols", None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("not a valid name"), "{}", text(&out));
    // Refused while reading the job file: not even the database was opened.
    assert!(!p.path().join("scorer.db").exists());
}

/// A file whose writer recorded page checksums (pyarrow's `write_page_checksum`; the fixture is
/// scripts/fixtures/make_checksums.py's), with 64 bytes in the middle of a data page flipped, is
/// refused (exit 3) naming the file, row group and column, where the intact file scores: an
/// uncompressed plain page would otherwise decode the flipped bytes as wrong feature values.
#[tokio::test]
async fn a_page_that_fails_its_recorded_checksum_is_refused() {
    let p = project();
    let fixture = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checksums/pages_with_crc.parquet");
    std::fs::copy(&fixture, dir(&p, "intact").join("part-0.parquet")).unwrap();
    let mut bytes = std::fs::read(&fixture).unwrap();
    let meta = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(bytes.clone()))
        .unwrap();
    // f0 (column 1): one plain, uncompressed page; its middle is page data, not its header
    let chunk = meta.row_group(0).column(1);
    assert_eq!(chunk.column_path().string(), "f0");
    let start = usize::try_from(chunk.data_page_offset() + chunk.compressed_size() / 2).unwrap();
    for b in &mut bytes[start..start + 64] {
        *b ^= 0xff;
    }
    std::fs::write(dir(&p, "flipped").join("part-0.parquet"), &bytes).unwrap();
    job(&p, "intact", "intact", "intact_scores", "");
    job(&p, "flipped", "flipped", "flipped_scores", "");
    assert_ok(&p.run("jobs/intact.toml", None));
    assert_eq!(scores(&p, "intact_scores").await.len(), 5_000);
    refused(
        &p,
        "jobs/flipped.toml",
        3,
        &["part-0.parquet", "row group 0", "column `f0`", "checksum"],
    );
}

/// A dictionary-encoded float feature (`Dictionary(Int32, Float32)`, as pandas categoricals of
/// numbers give) is a number column: it scores exactly as the same values stored plainly.
#[tokio::test]
async fn a_dictionary_encoded_number_column_scores_as_its_values() {
    use arrow::array::{DictionaryArray, Int32Array as Keys};
    use arrow::datatypes::Int32Type;
    let p = project();
    let plain = good_columns(0, ROWS);
    write(&p, "plain", "part-0.parquet", plain.clone());
    let mut coded = plain;
    // f0 as codes into its 97 distinct values
    let values: Vec<f32> = (0..97).map(|v| v as f32 * 0.25).collect();
    let keys = Keys::from_iter_values((0..ROWS).map(|r| (r % 97) as i32));
    let dict =
        DictionaryArray::<Int32Type>::try_new(keys, Arc::new(Float32Array::from(values))).unwrap();
    coded[1] = ("f0", Arc::new(dict) as ArrayRef);
    write(&p, "coded", "part-0.parquet", coded);
    job(&p, "plain", "plain", "plain_scores", "");
    job(&p, "coded", "coded", "coded_scores", "");
    assert_ok(&p.run("jobs/plain.toml", None));
    assert_ok(&p.run("jobs/coded.toml", None));
    let (plain, coded) = (
        scores(&p, "plain_scores").await,
        scores(&p, "coded_scores").await,
    );
    assert_eq!(plain.len(), ROWS);
    assert_eq!(coded, plain);
}
