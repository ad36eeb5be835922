//! The CUDA path on a real GPU (compiled only with `--features cuda`; run by scripts/gpu-test.sh).
//! Every model kind scores the same rows on `cuda` and on `cpu`; the two must agree to 1e-5 and
//! both must match the f64 reference. There is no skip: without a visible GPU these tests fail.

use scorer::model::spec::{Activation, ModelKind};
use sqlx::SqlitePool;

use crate::reference::{KindCase, max_abs_diff};

async fn cuda_matches_cpu(case: KindCase) {
    let cpu = case.scores_on("cpu").await;
    let cuda = case.scores_on("cuda").await;
    assert_eq!(cuda.len(), cpu.len());
    let worst = max_abs_diff(&cuda, |id| cpu[&id].clone());
    assert!(
        worst <= 1e-5,
        "{:?}: cuda vs cpu worst absolute error {worst}",
        case.kind
    );
    case.assert_matches_reference(&cuda);

    let pool = SqlitePool::connect(&case.project.sqlite_url())
        .await
        .unwrap();
    let (device, gpu_name): (String, Option<String>) =
        sqlx::query_as("SELECT device, gpu_name FROM scorer_runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(device, "cuda:0");
    let gpu_name = gpu_name.unwrap_or_default();
    assert!(!gpu_name.is_empty(), "the ledger names the GPU");
    println!(
        "{:?} on {gpu_name}: cuda vs cpu max |diff| {worst:e}",
        case.kind
    );
}

#[tokio::test]
async fn mlp_on_cuda_matches_cpu() {
    let case = KindCase::new(
        ModelKind::Mlp,
        vec![32, 16],
        vec!["score"],
        Activation::Sigmoid,
    );
    cuda_matches_cpu(case).await;
}

#[tokio::test]
async fn linear_on_cuda_matches_cpu() {
    let case = KindCase::new(ModelKind::Linear, vec![], vec!["a", "b"], Activation::None);
    cuda_matches_cpu(case).await;
}

#[tokio::test]
async fn logistic_on_cuda_matches_cpu() {
    let case = KindCase::new(ModelKind::Logistic, vec![], vec!["p"], Activation::None);
    cuda_matches_cpu(case).await;
}

#[tokio::test]
async fn auto_picks_the_gpu() {
    let case = KindCase::new(ModelKind::Logistic, vec![], vec!["p"], Activation::None);
    let scores = case.scores_on("auto").await;
    case.assert_matches_reference(&scores);
    let pool = SqlitePool::connect(&case.project.sqlite_url())
        .await
        .unwrap();
    let device: String =
        sqlx::query_scalar("SELECT device FROM scorer_runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(device, "cuda:0");
}

#[tokio::test]
async fn a_gpu_that_is_not_there_is_named() {
    let case = KindCase::new(ModelKind::Logistic, vec![], vec!["p"], Activation::None);
    let out = case.project.scorer(
        &[
            "run",
            "ref",
            "--date",
            crate::common::DATE,
            "--device",
            "cuda:64",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", crate::common::text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("device cuda:64 requested, but only"),
        "{stderr}"
    );
}

/// The gbdt fixtures on the GPU (the fused kernel, or the tensor form for the deeper forest)
/// against the libraries that trained them, as on the CPU.
#[test]
fn gbdt_fixtures_match_their_libraries_on_cuda() {
    use scorer::model::device::DeviceSpec;
    let cache = tempfile::tempdir().unwrap();
    let registry = crate::gbdt::registry(cache.path());
    for (name, groups) in crate::gbdt::FIXTURES {
        let loaded = scorer::model::load(&registry, name, "1", DeviceSpec::Cuda(0))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(loaded.device, DeviceSpec::Cuda(0));
        crate::gbdt::check_fixture(loaded.model.as_ref(), name, groups, "pred");
        println!("{name} on cuda:0 matches its library");
    }
}
