//! Rejected rows reach a quarantine beside the result, replaced with the date like the results,
//! for each sink: SQLite and PostgreSQL tables, and a Parquet file named by the output manifest.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float32Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use scorer::sink::objects::Manifest;
use sqlx::sqlite::SqlitePool;

use crate::common::{DATE, ModelOpts, Project, assert_ok, fresh_pg, text};

/// A quarantined row as the tests compare it: id, reason, column, object file name, row group, row.
type Quarantined = (Option<String>, String, String, String, i64, i64);

/// Writes `data/events/dt=DATE/part-0.parquet`: 100 rows, ids 0..100 and features f0..f7, with
/// `nulls` (rows whose id is null), and `odd` (row, feature, value) cells, a `None` value a null.
fn write_events(p: &Project, null_ids: &[usize], odd: &[(usize, usize, Option<f32>)]) {
    let dir = p.path().join("data/events").join(format!("dt={DATE}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ids: Vec<Option<i64>> = (0..100)
        .map(|r| (!null_ids.contains(&r)).then_some(r as i64))
        .collect();
    let mut cols: Vec<(String, ArrayRef)> =
        vec![("id".into(), Arc::new(Int64Array::from(ids)) as ArrayRef)];
    for f in 0..8 {
        let values: Vec<Option<f32>> = (0..100)
            .map(|r| {
                odd.iter()
                    .find(|(row, feat, _)| *row == r && *feat == f)
                    .map_or(Some(r as f32 * 0.01 + f as f32), |(_, _, v)| *v)
            })
            .collect();
        cols.push((format!("f{f}"), Arc::new(Float32Array::from(values))));
    }
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let file = std::fs::File::create(dir.join("part-0.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// Four rejected rows, one of each kind: NaN, infinity, a null id, a null feature.
fn write_four_bad_rows(p: &Project) {
    write_events(
        p,
        &[7],
        &[
            (3, 2, Some(f32::NAN)),
            (5, 4, Some(f32::INFINITY)),
            (9, 1, None),
        ],
    );
}

fn four_bad_rows() -> Vec<Quarantined> {
    let row = |id: Option<&str>, reason: &str, column: &str, r: i64| {
        (
            id.map(str::to_string),
            reason.to_string(),
            column.to_string(),
            "part-0.parquet".to_string(),
            0,
            r,
        )
    };
    vec![
        row(Some("3"), "NaN or infinite feature", "f2", 3),
        row(Some("5"), "NaN or infinite feature", "f4", 5),
        row(None, "null id", "id", 7),
        row(Some("9"), "null feature", "f1", 9),
    ]
}

fn project() -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_job(
        "daily",
        "events",
        "m",
        "daily",
        "on_null = \"skip\"\non_nan = \"skip\"",
    );
    p
}

/// The object column holds the input's URL; the tests compare its file name.
fn file_name(object: &str) -> String {
    object.rsplit('/').next().unwrap_or(object).to_string()
}

async fn sqlite_quarantine(p: &Project) -> Vec<Quarantined> {
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let rows: Vec<(Option<String>, String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, reason, column_name, object, row_group, row_number FROM daily_quarantine \
         WHERE ds = ? ORDER BY row_number",
    )
    .bind(DATE)
    .fetch_all(&pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, reason, col, object, rg, row)| (id, reason, col, file_name(&object), rg, row))
        .collect()
}

#[tokio::test]
async fn sqlite_rejected_rows_are_quarantined_and_replaced_with_the_date() {
    let p = project();
    write_four_bad_rows(&p);
    assert_ok(&p.run("daily", None));
    assert_eq!(sqlite_quarantine(&p).await, four_bad_rows());
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let (scored, run_ids): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM daily WHERE ds = ?1), \
                (SELECT count(DISTINCT q.run_id) FROM daily_quarantine q JOIN scorer_runs r \
                 ON r.run_id = q.run_id AND r.status = 'succeeded' WHERE q.ds = ?1)",
    )
    .bind(DATE)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((scored, run_ids), (96, 1));

    // A rerun of the date on clean input leaves an empty quarantine for it.
    write_events(&p, &[], &[]);
    assert_ok(&p.run("daily", None));
    assert_eq!(sqlite_quarantine(&p).await, vec![]);

    // A run that fails publishes neither results nor quarantine.
    write_four_bad_rows(&p);
    let job = p.path().join("jobs/daily.toml");
    let strict = std::fs::read_to_string(&job).unwrap().replace(
        "on_nan = \"skip\"",
        "on_nan = \"skip\"\nmax_rejected_fraction = 0.01",
    );
    std::fs::write(&job, strict).unwrap();
    let out = p.run("daily", None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_eq!(sqlite_quarantine(&p).await, vec![]);
}

#[tokio::test]
async fn postgres_rejected_rows_are_quarantined_in_the_swap() {
    let (url, pool) = fresh_pg("quarantine").await;
    let p = project();
    write_four_bad_rows(&p);
    assert_ok(&p.run("daily", Some(&url)));
    let quarantined = || async {
        let rows: Vec<(Option<String>, String, String, String, i32, i64)> = sqlx::query_as(
            "SELECT id, reason, column_name, object, row_group, row_number \
             FROM public.daily_quarantine WHERE ds = $1::date ORDER BY row_number",
        )
        .bind(DATE)
        .fetch_all(&pool)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(id, reason, col, object, rg, row)| {
                (id, reason, col, file_name(&object), i64::from(rg), row)
            })
            .collect::<Vec<Quarantined>>()
    };
    assert_eq!(quarantined().await, four_bad_rows());
    let same_run: bool = sqlx::query_scalar(
        "SELECT (SELECT array_agg(DISTINCT run_id) FROM public.daily_quarantine) = \
                (SELECT array_agg(DISTINCT run_id) FROM public.daily)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        same_run,
        "the quarantine belongs to the run whose rows are published"
    );

    // Rerun with one bad row: the date's quarantine is exactly that row.
    write_events(&p, &[42], &[]);
    assert_ok(&p.run("daily", Some(&url)));
    let q = quarantined().await;
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(
        (q[0].0.as_deref(), q[0].2.as_str(), q[0].5),
        (None, "id", 42)
    );
}

#[tokio::test]
async fn parquet_output_names_its_quarantine_file_in_the_manifest() {
    let out = tempfile::tempdir().unwrap();
    let p = project();
    let job = p.path().join("jobs/daily.toml");
    let text_of_job = std::fs::read_to_string(&job).unwrap().replace(
        "table = \"daily\"",
        &format!("url = \"file://{}/dt={{{{ ds }}}}/\"", out.path().display()),
    );
    std::fs::write(&job, text_of_job).unwrap();
    write_four_bad_rows(&p);
    assert_ok(&p.run("daily", None));
    let day = out.path().join(format!("dt={DATE}"));
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(day.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.rows, 96);
    let q = manifest
        .quarantine
        .expect("the manifest names the quarantine");
    assert_eq!(q.rows, 4);
    let file = std::fs::File::open(day.join(&q.path)).unwrap();
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(file, 1024).unwrap();
    let mut got: Vec<Quarantined> = Vec::new();
    for batch in reader {
        let b = batch.unwrap();
        let s = |name: &str| {
            b.column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        let i = |name: &str| {
            b.column_by_name(name)
                .unwrap()
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone()
        };
        let (id, reason, col, object) = (s("id"), s("reason"), s("column_name"), s("object"));
        let (rg, row) = (i("row_group"), i("row_number"));
        for r in 0..b.num_rows() {
            got.push((
                id.is_valid(r).then(|| id.value(r).to_string()),
                reason.value(r).to_string(),
                col.value(r).to_string(),
                file_name(object.value(r)),
                rg.value(r),
                row.value(r),
            ));
        }
    }
    assert_eq!(got, four_bad_rows());

    // A clean rerun: the new manifest has no quarantine.
    write_events(&p, &[], &[]);
    assert_ok(&p.run("daily", None));
    let manifest: Manifest =
        serde_json::from_slice(&std::fs::read(day.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!((manifest.rows, manifest.quarantine), (100, None));
}
