//! Sharded runs: `scorer run JOB --date D --shard I/N` scores one N-th of the date's input, and
//! the date's rows become visible once, when all N shards have staged theirs.
//!
//! ```text
//! shard I: plan the whole input -> its share -> stage (not publish) -> record its part
//!   -> all N parts recorded? -> take the date's lock -> publish every part at once
//! ```
//!
//! - The share is deterministic: input objects (or their row groups, when there are fewer objects
//!   than shards) are dealt out largest first to the shard with the fewest rows so far.
//! - Shards of one *attempt* publish together. An attempt is named by what decides its rows: the
//!   job file, date, N, model sha256, every input object (URL, etag, size), the scorer version and
//!   an optional label (`--attempt`, e.g. a Kubernetes Job's uid). A shard retried after it staged
//!   is a no-op; a retried shard whose attempt is complete but unpublished publishes it.
//! - The last shard to record its part publishes (the one documented way): PostgreSQL attaches
//!   every shard's staging table under one partition of the date in one transaction; Parquet
//!   writes one manifest naming every shard's files.
//! - When an attempt publishes, every other unpublished attempt of the date is superseded: its
//!   staged parts are dropped, and its shards still running fail when they finish (exit 3)
//!   instead of mixing their rows with the newer attempt's.

pub mod coordination;
pub mod publish;
mod split;

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

pub use split::split;

/// One shard of N: `index` in `0..count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSpec {
    pub index: u32,
    pub count: u32,
}

/// The most shards a run may be split into.
pub const MAX_SHARDS: u32 = 4096;

impl ShardSpec {
    /// Checks `index < count` and `1 <= count <= MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "the shard count must be 1 to {MAX_SHARDS}, not {count}"
            ));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indexes start at 0, \
                 as a Kubernetes Indexed Job's JOB_COMPLETION_INDEX does)"
            ));
        }
        Ok(Self { index, count })
    }

    /// The shard given by `--shard I/N`, or by the index in `completion_index` (a Kubernetes
    /// Indexed Job's `JOB_COMPLETION_INDEX`) and the count in `count` (`--shards` or
    /// `SCORER_SHARDS`). `None` when neither asks for a sharded run.
    pub fn choose(
        flag: Option<ShardSpec>,
        count: Option<u32>,
        completion_index: Option<&str>,
    ) -> Result<Option<Self>, String> {
        match (flag, count) {
            (Some(s), Some(n)) if s.count != n => Err(format!(
                "--shard {s} and --shards {n} disagree on the shard count"
            )),
            (Some(s), _) => Ok(Some(s)),
            (None, None) => Ok(None),
            (None, Some(n)) => {
                let Some(index) = completion_index.map(str::trim).filter(|s| !s.is_empty()) else {
                    return Err(format!(
                        "--shards {n} needs the shard index: give --shard I/{n}, or run as a \
                         Kubernetes Indexed Job, which sets JOB_COMPLETION_INDEX"
                    ));
                };
                let index: u32 = index
                    .parse()
                    .map_err(|_| format!("JOB_COMPLETION_INDEX is {index:?}, not a shard index"))?;
                Self::new(index, n).map(Some)
            }
        }
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for ShardSpec {
    type Err = String;

    /// `I/N`, e.g. `0/3`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not I/N (e.g. 0/3: the first of three shards)"))?;
        let parse = |v: &str, what: &str| {
            v.trim()
                .parse::<u32>()
                .map_err(|_| format!("{s:?}: the {what} {v:?} is not a number"))
        };
        Self::new(parse(i, "index")?, parse(n, "count")?)
    }
}

/// The lock a shard holds while it runs, and the output its resume registration names: the
/// output with the shard, so the N shards of a date run side by side and a shard's retry is
/// exclusive with itself. Unsharded runs use the output as it is.
pub fn lock_subject(output: &str, shard: Option<ShardSpec>) -> String {
    match shard {
        Some(s) => format!("{output} shard {s}"),
        None => output.to_string(),
    }
}

/// What names an attempt: everything that decides the date's rows, so shards agree on it without
/// talking to each other and a change to any of it starts a new attempt.
#[derive(Debug, Clone)]
pub struct AttemptKey<'a> {
    pub job: &'a str,
    pub job_sha256: &'a str,
    pub date: chrono::NaiveDate,
    pub output: &'a str,
    pub count: u32,
    pub model_sha256: &'a str,
    /// [`crate::resume::inputs_digest`] of the whole input (not the shard's share).
    pub inputs_digest: &'a str,
    pub label: &'a str,
}

impl AttemptKey<'_> {
    /// The attempt's id: a sha256 over the key's parts and the scorer version, 24 hex digits.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.job,
            self.job_sha256,
            &self.date.to_string(),
            self.output,
            &self.count.to_string(),
            self.model_sha256,
            self.inputs_digest,
            self.label,
            env!("CARGO_PKG_VERSION"),
        ] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        hex::encode(&h.finalize()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks_shards() {
        assert_eq!(
            "2/3".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 2, count: 3 })
        );
        assert!(
            "3/3"
                .parse::<ShardSpec>()
                .unwrap_err()
                .contains("not below")
        );
        assert!("0/0".parse::<ShardSpec>().is_err());
        assert!("1".parse::<ShardSpec>().unwrap_err().contains("I/N"));
        assert!("a/2".parse::<ShardSpec>().unwrap_err().contains("index"));
    }

    #[test]
    fn takes_the_index_from_an_indexed_job() {
        let s = ShardSpec::choose(None, Some(4), Some("3")).unwrap();
        assert_eq!(s, Some(ShardSpec { index: 3, count: 4 }));
        assert!(
            ShardSpec::choose(None, Some(4), None)
                .unwrap_err()
                .contains("JOB_COMPLETION_INDEX")
        );
        assert!(ShardSpec::choose(None, Some(4), Some("4")).is_err());
        assert!(ShardSpec::choose(None, Some(4), Some("x")).is_err());
        assert_eq!(ShardSpec::choose(None, None, Some("1")).unwrap(), None);
        let flag = ShardSpec { index: 1, count: 2 };
        assert_eq!(
            ShardSpec::choose(Some(flag), Some(2), None).unwrap(),
            Some(flag)
        );
        assert!(ShardSpec::choose(Some(flag), Some(3), None).is_err());
    }

    #[test]
    fn an_attempt_changes_with_what_decides_its_rows() {
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let key = AttemptKey {
            job: "j",
            job_sha256: "a",
            date,
            output: "t",
            count: 3,
            model_sha256: "m",
            inputs_digest: "i",
            label: "",
        };
        let id = key.id();
        assert_eq!(id.len(), 24);
        assert_eq!(id, key.clone().id());
        assert_ne!(
            id,
            AttemptKey {
                count: 4,
                ..key.clone()
            }
            .id()
        );
        assert_ne!(
            id,
            AttemptKey {
                inputs_digest: "j",
                ..key.clone()
            }
            .id()
        );
        assert_ne!(
            id,
            AttemptKey {
                label: "k8s-uid",
                ..key.clone()
            }
            .id()
        );
    }
}
