//! Personal data in the input: `output.hash_columns` writes the id and a customer number only as
//! their keyed HMAC-SHA256 (checked against Python's `hmac`), `output.passthrough_columns` lets
//! exactly the declared input columns into the result, and no raw value of a hashed column
//! reaches the result table, the quarantine, the ledger or any log line, also when the run fails
//! on a duplicate id.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;

use crate::common::{DATE, ModelOpts, Project, dump_database, fresh_pg, text};

const KEY: &str = "privacy-test-key-0123456789";
const ROWS: usize = 300;
/// The result table's columns, in order: the id, the date, the score, the declared passthrough
/// columns and the run id; no feature.
const RESULT_COLUMNS: [&str; 7] = [
    "id",
    "ds",
    "score",
    "customer_no",
    "segment",
    "amount",
    "run_id",
];

fn email(i: usize) -> String {
    format!("person{i}@example.org")
}

/// Ten digits without runs of zeros, so no float's text in the ledger (`0.7300000000000001`)
/// looks like one.
fn customer_no(i: usize) -> i64 {
    9_731_864_251 + i as i64 * 1_000_003
}

/// One file of `rows` people starting at `start`: id = email, a customer number, a segment
/// (null for every 7th), an amount, and features f0..f7 with a NaN in every 50th row.
fn write_people(p: &Project, set: &str, file: &str, start: usize, rows: usize) {
    let dir = p.path().join("data").join(set).join(format!("dt={DATE}"));
    std::fs::create_dir_all(&dir).unwrap();
    let idx: Vec<usize> = (start..start + rows).collect();
    let mut cols: Vec<(&str, ArrayRef)> = vec![
        (
            "id",
            Arc::new(StringArray::from_iter_values(idx.iter().map(|&i| email(i)))),
        ),
        (
            "customer_no",
            Arc::new(Int64Array::from_iter_values(
                idx.iter().map(|&i| customer_no(i)),
            )),
        ),
        (
            "segment",
            Arc::new(StringArray::from_iter(idx.iter().map(|&i| {
                (!i.is_multiple_of(7)).then(|| format!("seg{}", i % 3))
            }))),
        ),
        (
            "amount",
            Arc::new(Float64Array::from_iter_values(
                idx.iter().map(|&i| i as f64 * 1.5),
            )),
        ),
    ];
    let names = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"];
    for (f, name) in names.iter().enumerate() {
        let v: Vec<f32> = idx
            .iter()
            .map(|&i| {
                if f == 0 && i.is_multiple_of(50) {
                    f32::NAN
                } else {
                    ((i + f) % 97) as f32 * 0.25
                }
            })
            .collect();
        cols.push((name, Arc::new(Float32Array::from(v))));
    }
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let out = std::fs::File::create(dir.join(file)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// `hex(HMAC-SHA256(KEY, value))` for each value, computed by Python's standard library.
fn python_hmac(values: &[String]) -> Vec<String> {
    let script = "import hmac, hashlib, sys\nkey = sys.argv[1].encode()\nfor line in sys.stdin.read().splitlines():\n    print(hmac.new(key, line.encode(), hashlib.sha256).hexdigest())\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, KEY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(values.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// id, customer_no, segment, amount of one result row.
type ResultRow = (String, Option<String>, Option<String>, Option<f64>);

fn job(p: &Project, name: &str, set: &str, table: &str) {
    let path = p.add_job(name, set, "m", table, "on_nan = \"skip\"");
    let mut toml = std::fs::read_to_string(&path).unwrap();
    toml.push_str(
        "passthrough_columns = [\"customer_no\", \"segment\", \"amount\"]\n\
         hash_columns = [\"id\", \"customer_no\"]\n",
    );
    std::fs::write(&path, toml).unwrap();
}

/// Every raw value of a hashed column, as text.
fn raw_values() -> Vec<String> {
    (0..ROWS + 1)
        .flat_map(|i| [email(i), customer_no(i).to_string()])
        .collect()
}

/// Whether `raw` occurs in `haystack` as a whole token (no digit or letter right before or after
/// it): a number inside a longer number is not that number.
fn occurs(haystack: &str, raw: &str) -> bool {
    haystack.match_indices(raw).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + raw.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

fn assert_no_raw(what: &str, haystack: &str) {
    for raw in raw_values() {
        assert!(!occurs(haystack, &raw), "`{raw}` reached {what}");
    }
}

#[tokio::test]
async fn hashed_columns_reach_no_table_log_or_quarantine_raw() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    write_people(&p, "people", "part-0.parquet", 0, ROWS);
    job(&p, "people", "people", "people_scores");
    let (url, pool) = fresh_pg("privacy").await;
    let env = [("SCORER_HASH_KEY", KEY), ("RUST_LOG", "scorer=debug")];

    let ok = p.scorer_env(
        &["--log-format", "json", "run", "people", "--date", DATE],
        Some(&url),
        &env,
    );
    assert!(ok.status.success(), "{}", text(&ok));
    let mut printed = text(&ok);

    // Only the id, the date, the score, the declared passthrough columns and the run id.
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_name = 'people_scores' ORDER BY ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(columns, RESULT_COLUMNS);

    // Every kept row's id and customer number are Python's HMAC of the raw value.
    let rows: Vec<ResultRow> = sqlx::query_as(
        "SELECT id, customer_no, segment, amount FROM people_scores ORDER BY amount",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let kept: Vec<usize> = (0..ROWS).filter(|i| !i.is_multiple_of(50)).collect();
    assert_eq!(rows.len(), kept.len());
    let emails: Vec<String> = kept.iter().map(|&i| email(i)).collect();
    let numbers: Vec<String> = kept.iter().map(|&i| customer_no(i).to_string()).collect();
    let (want_ids, want_numbers) = (python_hmac(&emails), python_hmac(&numbers));
    for (k, (id, number, segment, amount)) in rows.iter().enumerate() {
        let i = kept[k];
        assert_eq!(id, &want_ids[k]);
        assert_eq!(number.as_deref(), Some(want_numbers[k].as_str()));
        assert_eq!(
            segment.clone(),
            (!i.is_multiple_of(7)).then(|| format!("seg{}", i % 3)),
            "segment passes through, nulls too"
        );
        assert_eq!(*amount, Some(i as f64 * 1.5));
    }

    // The quarantine holds the NaN rows under their hashed ids.
    let quarantined: Vec<String> =
        sqlx::query_scalar("SELECT id FROM people_scores_quarantine ORDER BY row_number")
            .fetch_all(&pool)
            .await
            .unwrap();
    let nan_rows: Vec<String> = (0..ROWS)
        .filter(|i| i.is_multiple_of(50))
        .map(email)
        .collect();
    assert_eq!(quarantined, python_hmac(&nan_rows));

    // A second file repeats person 1: the run fails on the duplicate, naming it by its hash.
    write_people(&p, "people", "part-1.parquet", 1, 1);
    let dup = p.scorer_env(&["run", "people", "--date", DATE], Some(&url), &env);
    assert_eq!(dup.status.code(), Some(3), "{}", text(&dup));
    assert!(
        text(&dup).contains(&python_hmac(&[email(1)])[0]),
        "{}",
        text(&dup)
    );
    printed.push_str(&text(&dup));
    assert_no_raw("the output", &printed);

    // Nothing raw anywhere in the database: results, quarantine, ledger.
    let (dumped, _) = dump_database(&pool).await;
    assert!(dumped.contains(&want_ids[0]));
    assert_no_raw("the database", &dumped);
}

#[test]
fn a_missing_or_short_key_stops_the_run_before_it_reads() {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    write_people(&p, "people", "part-0.parquet", 0, 20);
    job(&p, "people", "people", "people_scores");
    for (env, needle) in [
        (vec![], "SCORER_HASH_KEY, which is not set"),
        (vec![("SCORER_HASH_KEY", "short-key-1")], "at least 16"),
    ] {
        for args in [
            vec!["run", "people", "--date", DATE],
            vec!["validate", "people", "--date", DATE],
        ] {
            let out = p.scorer_env(&args, None, &env);
            assert_eq!(out.status.code(), Some(2), "{}", text(&out));
            assert!(text(&out).contains(needle), "{}", text(&out));
            assert!(!text(&out).contains("short-key-1"), "{}", text(&out));
        }
    }
    // A hashed column that does not reach the result is a job error.
    let path = p.path().join("jobs/people.toml");
    let toml = std::fs::read_to_string(&path).unwrap().replace(
        "hash_columns = [\"id\", \"customer_no\"]",
        "hash_columns = [\"email\"]",
    );
    std::fs::write(&path, toml).unwrap();
    let out = p.scorer_env(&["validate", "people"], None, &[("SCORER_HASH_KEY", KEY)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("output.hash_columns: `email`"),
        "{}",
        text(&out)
    );
}

/// The same job into SQLite and into Parquet files: the same hashed ids and customer numbers, the
/// passthrough values with their nulls, and the columns in each.
#[tokio::test]
async fn sqlite_and_parquet_outputs_hold_the_same_hashed_and_passed_columns() {
    use arrow::array::{Array, AsArray};
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    write_people(&p, "people", "part-0.parquet", 0, 100);
    job(&p, "people", "people", "people_scores");
    let path = p.path().join("jobs/people.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        p.path().join("jobs/people_files.toml"),
        toml.replace("name = \"people\"", "name = \"people_files\"")
            .replace("table = \"people_scores\"", "url = \"out/dt={{ ds }}/\""),
    )
    .unwrap();
    let env = [("SCORER_HASH_KEY", KEY)];
    for name in ["people", "people_files"] {
        let out = p.scorer_env(&["run", name, "--date", DATE], None, &env);
        assert!(out.status.success(), "{}", text(&out));
        assert_no_raw("the output", &text(&out));
    }
    let kept: Vec<usize> = (0..100usize).filter(|i| !i.is_multiple_of(50)).collect();
    let emails: Vec<String> = kept.iter().map(|&i| email(i)).collect();
    let numbers: Vec<String> = kept.iter().map(|&i| customer_no(i).to_string()).collect();
    let (ids, hashed_numbers) = (python_hmac(&emails), python_hmac(&numbers));
    let want: Vec<ResultRow> = kept
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            (
                ids[k].clone(),
                Some(hashed_numbers[k].clone()),
                (!i.is_multiple_of(7)).then(|| format!("seg{}", i % 3)),
                Some(i as f64 * 1.5),
            )
        })
        .collect();

    let pool = sqlx::SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let sqlite: Vec<ResultRow> = sqlx::query_as(
        "SELECT id, customer_no, segment, amount FROM people_scores ORDER BY amount",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(sqlite, want);

    let day = p.path().join(format!("out/dt={DATE}"));
    let manifest: scorer::sink::objects::Manifest =
        serde_json::from_slice(&std::fs::read(day.join("_manifest.json")).unwrap()).unwrap();
    let mut files: Vec<ResultRow> = Vec::new();
    for f in &manifest.files {
        let file = std::fs::File::open(day.join(&f.path)).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let names: Vec<&str> = batch
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            assert_eq!(names, RESULT_COLUMNS);
            let text = |c: &str| batch.column_by_name(c).unwrap().as_string::<i32>().clone();
            let (id, number, segment) = (text("id"), text("customer_no"), text("segment"));
            let amount = batch
                .column_by_name("amount")
                .unwrap()
                .as_primitive::<arrow::datatypes::Float64Type>()
                .clone();
            for r in 0..batch.num_rows() {
                files.push((
                    id.value(r).to_string(),
                    number.is_valid(r).then(|| number.value(r).to_string()),
                    segment.is_valid(r).then(|| segment.value(r).to_string()),
                    amount.is_valid(r).then(|| amount.value(r)),
                ));
            }
        }
    }
    files.sort_by(|a, b| a.3.partial_cmp(&b.3).unwrap());
    assert_eq!(files, want);
}
