//! Disks that fill mid-run: a Parquet output, a Delta output and a SQLite database on a small
//! tmpfs the test mounts, and a PostgreSQL tablespace on one. Each time the disk is filled to
//! within 64 KiB after a first run succeeded; the next run fails with the transient class (exit
//! 4, the cause named), the previous rows stay readable and unchanged, the failed run's own files
//! or staging are gone, and once space is freed the next run succeeds. Mounting needs root
//! (CAP_SYS_ADMIN): where the test process cannot mount, each test says so and is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const ROWS: u64 = 100_000;
const LEAVE: u64 = 64 * 1024;

/// A tmpfs of a few MiB mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts `mib` MiB (owned by `uid`, else root); `None`, having said why, where this process
    /// cannot mount.
    fn mount(test: &str, mib: u32, uid: Option<u32>) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mut options = format!("size={mib}m,mode=0777");
        if let Some(uid) = uid {
            options = format!("size={mib}m,mode=0700,uid={uid},gid={uid}");
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Self { dir }),
            Ok(o) => {
                eprintln!(
                    "skipped {test}: cannot mount a tmpfs here ({}); the full-disk tests need \
                     root (CAP_SYS_ADMIN)",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped {test}: cannot run mount ({e})");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Fills the disk to within `leave` bytes: writes until the disk is full, then gives back
    /// `leave` bytes.
    fn fill(&self, leave: u64) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        for chunk in [1 << 20, 4096] {
            let block = vec![0xa5u8; chunk];
            while f.write_all(&block).is_ok() {}
        }
        let len = f.metadata().unwrap().len();
        f.set_len(len.saturating_sub(leave)).unwrap();
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The model and `ROWS` rows of input for DATE, and job `job` writing `output` lines.
fn project(job: &str, output: &str) -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, ROWS, 8, None);
    std::fs::create_dir_all(p.path().join("jobs")).unwrap();
    std::fs::write(
        p.path().join(format!("jobs/{job}.toml")),
        events_job_toml(job, output),
    )
    .unwrap();
    p
}

/// The run failed for lack of space: exit 4 (transient), the cause named.
fn assert_full(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(4), "{}", text(out));
    let said = text(out).to_lowercase();
    assert!(
        said.contains("no space left on device")
            || said.contains("database or disk is full")
            || said.contains("could not extend file"),
        "{}",
        text(out)
    );
}

/// Every file under `dir`, relative, sorted (the filler left out).
fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != "filler") {
                out.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_parquet_output_on_a_full_disk_fails_cleanly_and_the_next_run_succeeds() {
    let Some(disk) = SmallDisk::mount("parquet", 48, None) else {
        return;
    };
    let url = format!("file://{}/scores/dt={{{{ ds }}}}/", disk.path().display());
    let p = project("files", &format!("url = \"{url}\""));
    assert_ok(&p.run("files", None));
    let day = disk.path().join(format!("scores/dt={DATE}"));
    let manifest = std::fs::read(day.join("_manifest.json")).unwrap();
    let before = files(disk.path());

    disk.fill(LEAVE);
    let out = p.run("files", None);
    assert_full(&out);
    assert_eq!(
        std::fs::read(day.join("_manifest.json")).unwrap(),
        manifest,
        "the date's manifest changed"
    );
    assert_eq!(files(disk.path()), before, "the failed run left files");

    disk.free();
    assert_ok(&p.run("files", None));
    let now: scorer::sink::objects::Manifest =
        serde_json::from_slice(&std::fs::read(day.join("_manifest.json")).unwrap()).unwrap();
    assert_eq!(now.rows, ROWS);
    eprintln!("parquet: disk filled, run failed with exit 4, previous manifest and files intact");
}

#[tokio::test]
async fn a_delta_output_on_a_full_disk_fails_cleanly_and_the_next_run_succeeds() {
    let Some(disk) = SmallDisk::mount("delta", 48, None) else {
        return;
    };
    let table = disk.path().join("scores");
    let p = project("lake", &format!("delta = \"{}\"", table.display()));
    assert_ok(&p.run("lake", None));
    let before = files(disk.path());
    let versions = |table: &Path| {
        files(&table.join("_delta_log"))
            .into_iter()
            .filter(|f| f.ends_with(".json"))
            .count()
    };
    let first = versions(&table);

    disk.fill(LEAVE);
    let out = p.run("lake", None);
    assert_full(&out);
    assert_eq!(
        files(disk.path()),
        before,
        "the failed run changed the table's files"
    );

    disk.free();
    assert_ok(&p.run("lake", None));
    assert_eq!(
        versions(&table),
        first + 1,
        "one version for the run after the failed one, none for the failed one"
    );
    eprintln!("delta: disk filled, run failed with exit 4, table at its version, no files left");
}

#[tokio::test]
async fn a_sqlite_database_on_a_full_disk_fails_cleanly_and_the_next_run_succeeds() {
    let Some(disk) = SmallDisk::mount("sqlite", 48, None) else {
        return;
    };
    let p = project("local", "table = \"local_scores\"");
    let db = format!("sqlite://{}", disk.path().join("scorer.db").display());
    assert_ok(&p.scorer(&["run", "local", "--date", DATE], Some(&db)));
    let pool = sqlx::SqlitePool::connect(&db).await.unwrap();
    let rows = |pool: sqlx::SqlitePool| async move {
        sqlx::query_as::<_, (i64, i64, String)>(
            "SELECT count(*), count(DISTINCT id), min(run_id) FROM local_scores WHERE ds = ?",
        )
        .bind(DATE)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = rows(pool.clone()).await;
    assert_eq!(before.0, ROWS as i64);

    // Space SQLite already holds (free pages, a WAL left at its length) would take the next
    // run's rows without the disk giving more: compact both first, so the disk must.
    for sql in [
        "PRAGMA wal_checkpoint(TRUNCATE)",
        "VACUUM",
        "PRAGMA wal_checkpoint(TRUNCATE)",
    ] {
        sqlx::raw_sql(sql).execute(&pool).await.unwrap();
    }
    disk.fill(LEAVE);
    let out = p.scorer(&["run", "local", "--date", DATE], Some(&db));
    assert_full(&out);
    assert_eq!(rows(pool.clone()).await, before, "the date's rows changed");
    let staging: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name LIKE '%\\_\\_stg\\_%' ESCAPE '\\'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(staging, 0, "the failed run's staging table is left");

    disk.free();
    assert_ok(&p.scorer(&["run", "local", "--date", DATE], Some(&db)));
    let after = rows(pool.clone()).await;
    assert_eq!((after.0, after.1), (ROWS as i64, ROWS as i64));
    assert_ne!(after.2, before.2, "the rows are the new run's");
    pool.close().await;
    eprintln!("sqlite: disk filled, run failed with exit 4, previous rows intact, staging dropped");
}

/// The uid of the PostgreSQL server's user, when the test server runs on this machine (its data
/// directory is here) and this process may give it a tablespace; `None`, having said why, else.
async fn local_server_uid(pool: &sqlx::PgPool) -> Option<u32> {
    let data: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(pool)
        .await
        .unwrap();
    let Ok(meta) = std::fs::metadata(&data) else {
        eprintln!(
            "skipped postgres: the test server's data directory {data} is not on this machine"
        );
        return None;
    };
    use std::os::unix::fs::MetadataExt;
    Some(meta.uid())
}

#[tokio::test]
async fn a_postgres_tablespace_that_fills_fails_cleanly_and_the_next_run_succeeds() {
    let (url, pool) = fresh_pg("full_tablespace").await;
    let Some(uid) = local_server_uid(&pool).await else {
        return;
    };
    let Some(disk) = SmallDisk::mount("postgres", 48, Some(uid)) else {
        return;
    };
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, ROWS, 8, None);
    p.add_job("daily", "events", "m", "scores", "on_null = \"fill:0\"");
    assert_ok(&p.run("daily", Some(&url)));
    let rows = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, (i64, i64, String)>(
            "SELECT count(*), count(DISTINCT id), min(run_id::text) FROM scores WHERE ds = $1::date",
        )
        .bind(DATE)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = rows(pool.clone()).await;
    assert_eq!(before.0, ROWS as i64);

    // New tables of the database (the next run's staging) go to the small tablespace.
    let database: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let space = format!("small_{}", &database[database.len() - 12..]);
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url())
        .await
        .unwrap();
    for sql in [
        format!(
            "CREATE TABLESPACE {space} LOCATION '{}'",
            disk.path().display()
        ),
        format!("ALTER DATABASE \"{database}\" SET default_tablespace = {space}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }

    disk.fill(LEAVE);
    let out = p.run("daily", Some(&url));
    assert_full(&out);
    assert_eq!(rows(pool.clone()).await, before, "the date's rows changed");
    let staging: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_stg\\_%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(staging, 0, "the failed run's staging table is left");
    let status: String =
        sqlx::query_scalar("SELECT status FROM scorer.runs ORDER BY started_at DESC LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");

    disk.free();
    assert_ok(&p.run("daily", Some(&url)));
    let after = rows(pool.clone()).await;
    assert_eq!((after.0, after.1), (ROWS as i64, ROWS as i64));
    assert_ne!(after.2, before.2, "the rows are the new run's");

    pool.close().await;
    for sql in [
        format!("DROP DATABASE \"{database}\" WITH (FORCE)"),
        format!("DROP TABLESPACE {space}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    eprintln!(
        "postgres: tablespace filled, run failed with exit 4, previous rows intact, staging dropped"
    );
}
