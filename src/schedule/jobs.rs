//! The job files of a directory, re-read while the scheduler runs: a file added, changed or
//! removed takes effect at the next scan, without a restart, and an invalid file is reported once
//! (until it changes) and left out while every other job keeps its schedule.
//!
//! Files are compared by content, not modification time: a Kubernetes ConfigMap volume swaps a
//! symlink, and an editor may rewrite a file within the same second.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::calendar::Calendar;
use crate::job::Job;

/// A job with a schedule, as the scheduler runs it.
#[derive(Debug, Clone)]
pub struct ScheduledJob {
    pub job: Job,
    pub calendar: Calendar,
}

/// What one scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Valid jobs with a schedule, by name.
    pub scheduled: BTreeMap<String, ScheduledJob>,
    /// Valid jobs without a schedule (run by cron, Airflow or by hand).
    pub unscheduled: Vec<String>,
    /// Files that are not valid jobs, with why.
    pub invalid: Vec<(PathBuf, String)>,
}

/// What changed since the previous scan, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Files newly invalid (or changed and still invalid), with why.
    pub invalid: Vec<(PathBuf, String)>,
}

/// A jobs directory and what its files held at the last scan.
#[derive(Debug)]
pub struct JobDir {
    dir: PathBuf,
    /// File -> its text at the last scan.
    texts: BTreeMap<PathBuf, String>,
    last: Scan,
}

impl JobDir {
    /// Watches `dir` (nothing is read until [`JobDir::rescan`]).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            texts: BTreeMap::new(),
            last: Scan::default(),
        }
    }

    /// The jobs at the last scan.
    pub fn current(&self) -> &Scan {
        &self.last
    }

    /// Reads the directory again; returns what changed. A directory that cannot be read is an
    /// error (and the jobs of the last scan stay).
    pub fn rescan(&mut self) -> Result<Changes, std::io::Error> {
        let texts = read_texts(&self.dir)?;
        let scan = parse_all(&texts);
        let mut changes = Changes::default();
        for (name, now) in &scan.scheduled {
            match self.last.scheduled.get(name) {
                None => changes.added.push(name.clone()),
                Some(before) if self.texts.get(&before.job.path) != texts.get(&now.job.path) => {
                    changes.changed.push(name.clone());
                }
                Some(_) => {}
            }
        }
        changes.removed = self
            .last
            .scheduled
            .keys()
            .filter(|n| !scan.scheduled.contains_key(*n))
            .cloned()
            .collect();
        changes.invalid = scan
            .invalid
            .iter()
            .filter(|(path, _)| {
                let was_invalid = self.last.invalid.iter().any(|(p, _)| p == path);
                !was_invalid || self.texts.get(path) != texts.get(path)
            })
            .cloned()
            .collect();
        self.texts = texts;
        self.last = scan;
        Ok(changes)
    }
}

/// Every `*.toml` file directly in `dir`, with its text; files that vanish while being read are
/// left out.
fn read_texts(dir: &Path) -> Result<BTreeMap<PathBuf, String>, std::io::Error> {
    let mut texts = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") || !path.is_file() {
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                texts.insert(path, text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                // Unreadable: kept as text that cannot parse, so it is reported as invalid.
                texts.insert(path, format!("\u{0}unreadable: {e}"));
            }
        }
    }
    Ok(texts)
}

fn parse_all(texts: &BTreeMap<PathBuf, String>) -> Scan {
    let mut scan = Scan::default();
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (path, text) in texts {
        if let Some(why) = text.strip_prefix("\u{0}unreadable: ") {
            scan.invalid.push((path.clone(), why.to_string()));
            continue;
        }
        let job = match Job::parse(text, path) {
            Ok(job) => job,
            Err(e) => {
                scan.invalid.push((path.clone(), e.to_string()));
                continue;
            }
        };
        if let Some(first) = seen.get(&job.name) {
            scan.invalid.push((
                path.clone(),
                format!(
                    "job file {}: job name `{}` is already used by {}",
                    path.display(),
                    job.name,
                    first.display()
                ),
            ));
            continue;
        }
        seen.insert(job.name.clone(), path.clone());
        let Some(expr) = job.schedule.as_deref() else {
            scan.unscheduled.push(job.name);
            continue;
        };
        match Calendar::new(expr, job.timezone.as_deref()) {
            Ok(calendar) => {
                scan.scheduled
                    .insert(job.name.clone(), ScheduledJob { job, calendar });
            }
            // Job::parse checks both; kept as a report, not a panic, should they ever differ.
            Err(e) => scan
                .invalid
                .push((path.clone(), format!("job file {}: {e}", path.display()))),
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, schedule: &str) -> String {
        format!(
            r#"name = "{name}"
schedule = "{schedule}"
[input]
url = "data/dt={{{{ ds }}}}/*.parquet"
id_column = "id"
[model]
name = "m"
version = "1"
[output]
table = "t_{name}"
"#
        )
    }

    #[test]
    fn added_changed_removed_and_invalid_files_are_seen_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.toml"), job("a", "0 2 * * *")).unwrap();
        std::fs::write(d.join("notes.txt"), "not a job").unwrap();
        let mut jobs = JobDir::new(d);
        let c = jobs.rescan().unwrap();
        assert_eq!(c.added, vec!["a"]);
        assert!(jobs.rescan().unwrap() == Changes::default());

        std::fs::write(d.join("b.toml"), job("b", "*/5 * * * * *")).unwrap();
        std::fs::write(d.join("broken.toml"), "name = ").unwrap();
        let c = jobs.rescan().unwrap();
        assert_eq!(c.added, vec!["b"]);
        assert_eq!(c.invalid.len(), 1, "{c:?}");
        assert!(c.invalid[0].1.contains("broken.toml"), "{c:?}");
        // Reported once until it changes; the others stay.
        let c = jobs.rescan().unwrap();
        assert!(c.invalid.is_empty() && c.added.is_empty(), "{c:?}");
        assert_eq!(jobs.current().scheduled.len(), 2);

        std::fs::write(d.join("a.toml"), job("a", "0 3 * * *")).unwrap();
        std::fs::remove_file(d.join("b.toml")).unwrap();
        std::fs::write(d.join("dup.toml"), job("a", "0 4 * * *")).unwrap();
        let c = jobs.rescan().unwrap();
        assert_eq!(c.changed, vec!["a"]);
        assert_eq!(c.removed, vec!["b"]);
        assert!(
            c.invalid
                .iter()
                .any(|(p, why)| p.ends_with("dup.toml") && why.contains("already used by")),
            "{c:?}"
        );
    }
}
