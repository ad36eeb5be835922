//! Device selection on a binary built without CUDA: asking for a GPU is a clear configuration
//! error recorded in the ledger (never a silent CPU run); `auto` scores on the CPU.

#[cfg(not(feature = "cuda"))]
use sqlx::SqlitePool;

use crate::common::*;

fn project() -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 2_000, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    p
}

#[cfg(not(feature = "cuda"))]
async fn last_run(p: &Project) -> (String, Option<String>, Option<String>, Option<String>) {
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    sqlx::query_as(
        "SELECT status, device, gpu_name, error FROM scorer_runs ORDER BY started_at DESC LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap()
}

#[cfg(not(feature = "cuda"))]
#[tokio::test]
async fn cuda_on_a_cpu_build_fails_naming_the_fix() {
    let p = project();
    for device in ["cuda", "cuda:1"] {
        let out = p.scorer(&["run", "daily", "--date", DATE, "--device", device], None);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("built without CUDA"), "{stderr}");
        assert!(stderr.contains("--features cuda"), "{stderr}");
        let (status, _, _, error) = last_run(&p).await;
        assert_eq!(status, "failed");
        assert!(error.unwrap_or_default().contains("built without CUDA"));
    }
    // Nothing was written for the date.
    let pool = SqlitePool::connect(&p.sqlite_url()).await.unwrap();
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE name = 'daily'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tables, 0);
}

#[cfg(not(feature = "cuda"))]
#[tokio::test]
async fn cuda_in_the_job_file_fails_the_same_way() {
    let p = project();
    let job = p.path().join("jobs/daily.toml");
    let text_before = std::fs::read_to_string(&job).unwrap();
    std::fs::write(
        &job,
        text_before.replace(
            "batch_size = 8192",
            "batch_size = 8192\ndevice = \"cuda:0\"",
        ),
    )
    .unwrap();
    let out = p.run("daily", None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("device cuda:0 requested"));
}

#[cfg(not(feature = "cuda"))]
#[tokio::test]
async fn auto_scores_on_the_cpu_and_the_ledger_says_so() {
    let p = project();
    let out = p.scorer(&["run", "daily", "--date", DATE, "--device", "auto"], None);
    assert_ok(&out);
    let (status, device, gpu_name, _) = last_run(&p).await;
    assert_eq!(status, "succeeded");
    assert_eq!(device.as_deref(), Some("cpu"));
    assert_eq!(gpu_name, None);
}

#[tokio::test]
async fn an_unknown_device_lists_the_valid_ones() {
    let p = project();
    let out = p.scorer(&["run", "daily", "--date", DATE, "--device", "gpu"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cpu, cuda, cuda:N, auto"), "{stderr}");
}
