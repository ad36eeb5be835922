//! The job file inside deploy/k8s's ConfigMap is a valid scorer job (scripts/lint-deploy.sh
//! checks the manifests against the Kubernetes schemas and the CronJob's schedule against it).

#[test]
fn the_example_configmaps_job_file_is_a_valid_job() {
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/k8s/jobs-configmap.yaml"
    ))
    .unwrap();
    // The block under `churn_daily.toml: |`, four spaces in.
    let start = manifest.find("churn_daily.toml: |").unwrap();
    let text: String = manifest[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    let job = scorer::job::Job::parse(&text, std::path::Path::new("churn_daily.toml")).unwrap();
    assert_eq!(job.name, "churn_daily");
    assert_eq!(job.schedule.as_deref(), Some("0 2 * * *"));
}
