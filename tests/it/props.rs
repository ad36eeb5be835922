//! Property tests: no input makes scorer panic. Job files (arbitrary text, and valid files with
//! random edits), date templates, cron schedules and time zones, and the feature stage over
//! random Arrow batches of every column type a Parquet file can give, with nulls, NaN and
//! infinities, under every null and NaN policy. Each property runs 256 cases (bounded time in
//! CI); a failure prints the smallest input that breaks it.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray,
    UInt64Array,
};
use arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use scorer::features::FeatureSpec;
use scorer::features::{NanPolicy, NullPolicy};
use scorer::job::Job;
use scorer::source::{IdKind, SourceBatch};

const VALID_JOB: &str = r#"name = "churn_daily"
schedule = "0 2 * * *"
timezone = "Europe/Berlin"
start_date = 2026-11-01

[input]
url = "s3://lake/events/dt={{ ds }}/*.parquet"
id_column = "customer_id"
features = ["f0", "f1"]
on_null = "fill:0.5"
on_nan = "skip"

[input.storage]
endpoint = "${S3_ENDPOINT}"
max_retries = 3

[model]
name = "churn_mlp"
version = "3"

[output]
table = "scores.churn_daily"
columns = { score = "prob" }
min_rows = 10
"#;

/// A valid job file with a few random edits: characters replaced, inserted or removed.
fn edited_job() -> impl Strategy<Value = String> {
    prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<char>()), 1..6).prop_map(
        |edits| {
            let mut chars: Vec<char> = VALID_JOB.chars().collect();
            for (at, kind, c) in edits {
                let i = at.index(chars.len().max(1));
                match kind {
                    0 if i < chars.len() => chars[i] = c,
                    1 => chars.insert(i.min(chars.len()), c),
                    _ if i < chars.len() => {
                        chars.remove(i);
                    }
                    _ => {}
                }
            }
            chars.into_iter().collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_job_parser_never_panics(text in prop_oneof![".{0,400}", edited_job()]) {
        let path = Path::new("jobs/fuzz.toml");
        if let Err(e) = Job::parse(&text, path) {
            // Every refusal names the file.
            prop_assert!(e.to_string().contains("jobs/fuzz.toml"), "{}", e);
        }
    }

    #[test]
    fn templates_and_schedules_never_panic(
        template in ".{0,80}",
        expr in prop_oneof![
            "[0-9*/,\\- A-Za-z?#LW]{0,40}",
            Just("30 2 * * *".to_string()),
            Just("*/20 * 2 * * *".to_string()),
            Just("0 0 1 1 *".to_string()),
            Just("0 30 1-3 * * Sun".to_string()),
        ],
        zone in prop_oneof![Just("Europe/Berlin".to_string()), Just("America/Sao_Paulo".to_string()), ".{0,20}"],
        day in 0i64..20_000,
        secs in 0i64..86_400,
    ) {
        let date = chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + chrono::Duration::days(day);
        let _ = scorer::template::render(&template, date);
        let _ = scorer::template::check(&template);
        if let Ok(cal) = scorer::calendar::Calendar::new(&expr, Some(&zone)) {
            let t = chrono::DateTime::from_timestamp(631_152_000 + day * 86_400 + secs, 0).unwrap();
            if let Some(next) = cal.next_after(t) {
                prop_assert!(next > t);
                let _ = cal.logical_date(next);
            }
            if let Some(prev) = cal.prev_before(t) {
                prop_assert!(prev < t);
            }
        }
    }

    #[test]
    fn the_feature_stage_never_panics_and_never_scores_nan(
        rows in 0usize..40,
        id_type in 0u8..5,
        col_types in prop::collection::vec(0u8..6, 1..4),
        seed in any::<u64>(),
        on_null in prop_oneof![Just(NullPolicy::Fail), Just(NullPolicy::Skip), Just(NullPolicy::Fill(-1.0))],
        on_nan in prop_oneof![Just(NanPolicy::Fail), Just(NanPolicy::Skip)],
    ) {
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let special = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -0.0, 3.5];
        let mut float = || {
            let r = next();
            if r % 7 == 0 { None } else if r % 5 == 0 { Some(special[(r as usize / 5) % special.len()]) } else { Some((r % 1000) as f64 / 10.0) }
        };
        let ids: ArrayRef = match id_type {
            0 => Arc::new(Int64Array::from((0..rows).map(|i| (i % 7 != 3).then_some(i as i64)).collect::<Vec<_>>())),
            1 => Arc::new(Int32Array::from((0..rows).map(|i| i as i32).collect::<Vec<_>>())),
            2 => Arc::new(UInt64Array::from((0..rows).map(|i| i as u64 + u64::MAX / 2).collect::<Vec<_>>())),
            3 => Arc::new(StringArray::from((0..rows).map(|i| format!("c{i}")).collect::<Vec<_>>())),
            _ => Arc::new(Float64Array::from((0..rows).map(|i| i as f64).collect::<Vec<_>>())),
        };
        let mut columns: Vec<(String, ArrayRef)> = vec![("id".into(), ids)];
        let mut names = Vec::new();
        for (j, t) in col_types.iter().enumerate() {
            let values: Vec<Option<f64>> = (0..rows).map(|_| float()).collect();
            let array: ArrayRef = match t {
                0 => Arc::new(Float32Array::from(values.iter().map(|v| v.map(|v| v as f32)).collect::<Vec<_>>())),
                1 => Arc::new(Float64Array::from(values)),
                2 => Arc::new(Int32Array::from(values.iter().map(|v| v.map(|v| v as i32)).collect::<Vec<_>>())),
                3 => Arc::new(Int64Array::from(values.iter().map(|v| v.map(|v| v as i64)).collect::<Vec<_>>())),
                4 => Arc::new(BooleanArray::from(values.iter().map(|v| v.map(|v| v > 50.0)).collect::<Vec<_>>())),
                _ => Arc::new(StringArray::from(values.iter().map(|v| v.map(|v| format!("{v}"))).collect::<Vec<_>>())),
            };
            let name = format!("f{j}");
            columns.push((name.clone(), array));
            names.push(name);
        }
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let spec = FeatureSpec {
            id_column: "id".into(),
            id_kind: if id_type == 3 { IdKind::Text } else { IdKind::Int },
            features: names,
            on_null,
            on_nan,
            preprocess: None,
            passed: Default::default(),
            types: Vec::new(),
        };
        let src = SourceBatch { object: Arc::from("file:///fuzz.parquet"), row_group: 0, first_row: 0, batch };
        if let Ok(fb) = spec.build(&src) {
            prop_assert_eq!(fb.rows + fb.rejected, rows);
            let values = fb.to_row_major();
            prop_assert!(values.iter().all(|v| v.is_finite()), "{:?}", values);
        }
    }
}
