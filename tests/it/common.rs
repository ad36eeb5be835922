//! Shared test fixtures: a temporary project directory with a generated model and input, the
//! scorer binary run as cron would run it, and a fresh PostgreSQL database per test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use scorer::datagen::{InputGen, ModelGen, feature_names, write_input, write_model};
use scorer::model::spec::{Activation, ModelKind};
use sqlx::Connection;
use sqlx::postgres::PgPool;

pub const DATE: &str = "2026-11-24";

/// A scratch project: `models/`, `data/`, `jobs/` and the SQLite file, all in one temp dir.
pub struct Project {
    pub dir: tempfile::TempDir,
}

pub struct ModelOpts {
    pub name: &'static str,
    pub kind: ModelKind,
    pub inputs: usize,
    pub hidden: Vec<usize>,
    pub outputs: Vec<&'static str>,
    pub output_activation: Activation,
}

impl ModelOpts {
    pub fn mlp(inputs: usize) -> Self {
        Self {
            name: "m",
            kind: ModelKind::Mlp,
            inputs,
            hidden: vec![16, 8],
            outputs: vec!["score"],
            output_activation: Activation::Sigmoid,
        }
    }
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The project's model registry (its cache inside the project).
    pub fn registry(&self) -> scorer::model::registry::Registry {
        scorer::model::registry::Registry::new(self.models_dir(), self.path().join("model-cache"))
    }

    pub fn models_dir(&self) -> PathBuf {
        self.path().join("models")
    }

    pub fn add_model(&self, m: &ModelOpts) -> PathBuf {
        let dir = self.models_dir().join(m.name).join("1");
        write_model(&ModelGen {
            out_dir: dir.clone(),
            kind: m.kind,
            inputs: feature_names(m.inputs),
            hidden: m.hidden.clone(),
            outputs: m.outputs.iter().map(|s| s.to_string()).collect(),
            output_activation: m.output_activation,
            seed: 11,
            description: "test model".into(),
        })
        .unwrap();
        dir
    }

    /// Writes input for `date` under data/<set>/dt=<date>/.
    pub fn add_input(
        &self,
        set: &str,
        date: &str,
        rows: u64,
        features: usize,
        nulls: Option<(usize, f64)>,
    ) -> PathBuf {
        let dir = self
            .path()
            .join("data")
            .join(set)
            .join(format!("dt={date}"));
        write_input(&InputGen {
            out_dir: dir.clone(),
            date: date.parse().unwrap(),
            rows,
            files: 3,
            row_group_rows: 4096,
            features,
            nulls,
            seed: rows ^ 0x5eed,
        })
        .unwrap();
        dir
    }

    /// Writes a job file; `extra_input` lines go into [input], `table` names the output.
    pub fn add_job(
        &self,
        name: &str,
        set: &str,
        model: &str,
        table: &str,
        extra_input: &str,
    ) -> PathBuf {
        let jobs = self.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        let path = jobs.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                r#"name = "{name}"
[input]
url = "data/{set}/dt={{{{ ds }}}}/*.parquet"
id_column = "id"
{extra_input}
[model]
name = "{model}"
version = "1"
batch_size = 8192
[output]
table = "{table}"
"#
            ),
        )
        .unwrap();
        path
    }

    /// Runs the scorer binary in the project directory; `db` is a PostgreSQL URL or None for SQLite.
    pub fn scorer(&self, args: &[&str], db: Option<&str>) -> Output {
        self.scorer_env(args, db, &[])
    }

    /// The scorer command, ready to run in the project directory against `db`.
    pub fn command(&self, args: &[&str], db: Option<&str>) -> Command {
        // SCORER_BIN: a prebuilt binary elsewhere (scripts/gpu-test.sh on a GPU host without cargo).
        let bin = std::env::var_os("SCORER_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_scorer")),
            PathBuf::from,
        );
        let mut cmd = Command::new(bin);
        cmd.current_dir(self.path())
            .args(args)
            .env("RUST_LOG", "scorer=info");
        match db {
            Some(url) => cmd.env("DATABASE_URL", url),
            None => cmd.env_remove("DATABASE_URL"),
        };
        cmd
    }

    /// Starts `scorer run JOB --date DATE` in the background, as an orchestrator would.
    pub fn spawn_run(&self, job: &str, db: Option<&str>) -> std::process::Child {
        self.command(&["run", job, "--date", DATE], db)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// As [`Project::scorer`], with extra environment variables (cloud credentials).
    pub fn scorer_env(&self, args: &[&str], db: Option<&str>, env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args, db);
        cmd.envs(env.iter().copied());
        cmd.output().unwrap()
    }

    pub fn run(&self, job: &str, db: Option<&str>) -> Output {
        self.scorer(&["run", job, "--date", DATE], db)
    }

    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}", self.path().join("scorer.db").display())
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn assert_ok(o: &Output) {
    assert!(o.status.success(), "scorer failed:\n{}", text(o));
}

/// The server the test command started (or the one the developer pointed at).
pub fn admin_url() -> String {
    std::env::var("SCORER_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "SCORER_TEST_DATABASE_URL is not set: run the suite with scripts/test.sh, which starts \
             a throwaway PostgreSQL, or point the variable at a server you own"
        )
    })
}

/// A new, empty database on the test server; returns its URL and a pool.
pub async fn fresh_pg(tag: &str) -> (String, PgPool) {
    fresh_pg_on(&admin_url(), tag).await
}

/// A new, empty database on the server at `admin` (a superuser's URL); its URL and a pool.
pub async fn fresh_pg_on(admin: &str, tag: &str) -> (String, PgPool) {
    let admin = admin.to_string();
    let name = format!("t_{tag}_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    let url = format!("{base}/{name}");
    let pool = PgPool::connect(&url).await.unwrap();
    (url, pool)
}

/// Every row of every table in the database behind `pool` (results, quarantines, the ledger), as
/// text, one row per line; and the tables' names.
pub async fn dump_database(pool: &PgPool) -> (String, Vec<String>) {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema, table_name FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut dumped = String::new();
    for (schema, table) in &tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT t::text FROM \"{schema}\".\"{table}\" t"
        )))
        .fetch_all(pool)
        .await
        .unwrap();
        dumped.push_str(&rows.join("\n"));
        dumped.push('\n');
    }
    (dumped, tables.into_iter().map(|(_, t)| t).collect())
}

/// Sends `signal` (TERM, KILL, STOP, CONT ...) to a process, as Kubernetes or a shell would.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Polls `check` every 5 ms until it is true; panics after `secs` seconds naming `what`.
pub async fn wait_for<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Waits until process `pid` has stopped itself (state `T`: SIGSTOP at `SCORER_STOP_AT`);
/// panics after `secs` seconds, or when the child exits first (it never reached the point).
pub async fn wait_stopped(child: &mut std::process::Child, secs: u64) {
    let stat = format!("/proc/{}/stat", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run exited ({status}) before reaching its stop point");
        }
        let state = std::fs::read_to_string(&stat).unwrap_or_default();
        // "pid (comm) S ...": the state follows the command's closing parenthesis.
        if state
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('T'))
        {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for the run to stop"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Waits for a spawned scorer and returns its output.
pub async fn finish(child: std::process::Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap()
}

/// A count from the project's SQLite file, read on a read-only connection (so watching a run
/// never contends for its locks); `None` while the file or its tables do not exist yet.
/// Runs marked `running` in the project's SQLite ledger (`None` while the file cannot be read):
/// what a test waits on to know a spawned run has taken its lock and started.
pub async fn running_runs(p: &Project) -> Option<i64> {
    sqlite_count(
        p,
        "SELECT count(*) FROM scorer_runs WHERE status = 'running'",
    )
    .await
}

/// `table.column`'s type as PostgreSQL prints it (`vector(384)`, `real[]`).
pub async fn column_type(pool: &PgPool, table: &str, column: &str) -> String {
    sqlx::query_scalar(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = $1::regclass AND attname = $2",
    )
    .bind(table)
    .bind(column)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A job file named `name` that scores `data/events/` with model `m` (nulls filled with 0) into
/// `output`, the lines of its `[output]` section.
pub fn events_job_toml(name: &str, output: &str) -> String {
    format!(
        "name = \"{name}\"\n[input]\nurl = \"data/events/dt={{{{ ds }}}}/*.parquet\"\n\
         id_column = \"id\"\non_null = \"fill:0\"\n[model]\nname = \"m\"\nversion = \"1\"\n\
         [output]\n{output}\n"
    )
}

pub async fn sqlite_count(p: &Project, sql: &str) -> Option<i64> {
    let url = format!("{}?mode=ro", p.sqlite_url());
    let pool = sqlx::sqlite::SqlitePool::connect(&url).await.ok()?;
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(&pool)
        .await
        .ok();
    pool.close().await;
    n
}

/// A spawned process (a scheduler, say) that is killed when dropped unless taken out first: a
/// test that fails before it stops its process leaves nothing running behind it.
pub struct Spawned(Option<std::process::Child>);

impl Spawned {
    pub fn new(child: std::process::Child) -> Self {
        Self(Some(child))
    }

    /// The process, no longer killed on drop (to stop it as the test means to).
    pub fn take(mut self) -> std::process::Child {
        self.0.take().expect("taken once")
    }
}

impl std::ops::Deref for Spawned {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("not taken")
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0.as_mut().expect("not taken")
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
