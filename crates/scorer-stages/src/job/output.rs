//! `[output]`: where a job's rows go. One key names the kind (`table`, `url` or `delta`); the
//! kind's folder under `sink/` owns the rest of its keys (an `OutputSection`), and the keys every
//! kind shares (row guards, column names, privacy, retention) are here. A key of another kind is
//! not silently ignored: it is a problem naming the kind it applies to, reported with the rest.
//!
//! Adding an output kind: its folder under `sink/`, and one line in `output_kinds!` below.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::config_keys::{self, field_names, one_line, or_list};
use crate::sink::OutputSection;
use crate::source::storage;

/// Declares the output kinds: the enum a parsed `[output]` is, the key that selects each kind
/// (with what it is, for messages), and the section type in the kind's folder that parses the
/// rest of its keys.
macro_rules! output_kinds {
    ($($(#[$doc:meta])* $variant:ident($section:ty) = $key:literal ($what:literal),)+) => {
        /// The output kind a job writes, with its own keys: a job file cannot give one kind
        /// another's keys.
        #[derive(Debug, Clone, PartialEq)]
        pub enum OutputTarget {
            $($(#[$doc])* $variant($section),)+
        }

        impl OutputTarget {
            /// Each kind's selecting key, and what it is.
            const KINDS: &[(&str, &str)] = &[$(($key, $what),)+];

            /// Each kind's selecting key, and its section's keys.
            fn keys() -> Vec<(&'static str, &'static [&'static str])> {
                vec![$(($key, field_names::<$section>()),)+]
            }

            /// The kind's section, which validates and resolves it.
            pub fn section(&self) -> &dyn OutputSection {
                match self {
                    $(Self::$variant(section) => section,)+
                }
            }

            /// Parses the keys of the kind `key` selects.
            fn parse(key: &str, keys: toml::Table) -> Result<Self, String> {
                match key {
                    $($key => toml::Value::Table(keys)
                        .try_into()
                        .map(Self::$variant)
                        .map_err(|e| one_line(&e)),)+
                    other => Err(format!("no output kind is selected by `{other}`")),
                }
            }
        }
    };
}

output_kinds! {
    /// A table in the run's database (`table = "schema.name"`): PostgreSQL or SQLite.
    Table(crate::sink::table::TableSection) = "table" ("a database table"),
    /// Parquet files in an object store (`url = "s3://…/dt={{ ds }}/"`), committed by a
    /// manifest.
    Files(crate::sink::objects::FilesSection) = "url" ("Parquet files in a store"),
    /// A Delta table partitioned by the date (`delta = "s3://lake/scores/churn_daily"`).
    Delta(crate::sink::delta::DeltaSection) = "delta" ("a Delta table"),
}

/// A parsed `[output]`: its kind with the kind's keys, and the keys every kind shares.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSpec {
    pub target: OutputTarget,
    pub shared: SharedOutput,
}

/// The `[output]` keys every output kind has.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedOutput {
    /// Fewest rows a run may publish: a run giving fewer fails before anything is replaced
    /// (an input that yields no rows must not empty a full date).
    #[serde(default = "default_min_rows")]
    pub min_rows: u64,
    /// Largest drop against the rows the date's previous successful run wrote, as a fraction
    /// (0.5: a run with less than half of them fails before publishing); 1 turns it off.
    #[serde(default = "default_max_row_drop_fraction")]
    pub max_row_drop_fraction: f64,
    /// Model output name -> column name; outputs not listed keep their own name.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Input columns written beside the scores (a segment to group by, an amount to weigh by):
    /// only the id, the scores and these reach the result; features are never written.
    #[serde(default)]
    pub passthrough_columns: Vec<String>,
    /// The id and/or passthrough columns that hold personal data: written, quarantined and
    /// logged only as `hex(HMAC-SHA256(key, value))` (`scorer::hashing`).
    #[serde(default)]
    pub hash_columns: Vec<String>,
    /// The environment variable holding the HMAC key of `hash_columns` (never in the job file).
    #[serde(default = "default_hash_key_env")]
    pub hash_key_env: String,
    /// Days of results kept: after a run of date D publishes, dates before D - N + 1 are dropped
    /// (partitions, rows or Parquet date directories), and the ledger records which.
    #[serde(default)]
    pub retention_days: Option<u32>,
}

fn default_min_rows() -> u64 {
    1
}
fn default_max_row_drop_fraction() -> f64 {
    0.5
}
fn default_hash_key_env() -> String {
    crate::hashing::DEFAULT_KEY_ENV.to_string()
}

impl OutputSpec {
    /// Parses and validates the `[output]` table of a job whose rows are identified by
    /// `id_column`: the spec when it is sound, and every problem found (each naming its key).
    pub fn parse(keys: toml::Table, id_column: &str) -> (Option<Self>, Vec<String>) {
        let mut problems = Vec::new();
        let selected: Vec<&str> = OutputTarget::KINDS
            .iter()
            .map(|(key, _)| *key)
            .filter(|key| keys.contains_key(*key))
            .collect();
        let kind = match selected.as_slice() {
            [one] => Some(*one),
            [] => {
                let kinds: Vec<_> = OutputTarget::KINDS
                    .iter()
                    .map(|(key, what)| format!("`{key}` ({what})"))
                    .collect();
                problems.push(format!("output: set {}", or_list(&kinds)));
                None
            }
            [a, b] => {
                problems.push(format!("output: set either `{a}` or `{b}`, not both"));
                None
            }
            several => {
                let keys: Vec<_> = several.iter().map(|key| format!("`{key}`")).collect();
                problems.push(format!("output: set only one of {}", or_list(&keys)));
                None
            }
        };
        let kinds = OutputTarget::keys();
        let own = kinds
            .iter()
            .find(|(key, _)| Some(*key) == kind)
            .map_or(&[][..], |(_, fields)| *fields);
        let keys = config_keys::split(keys, field_names::<SharedOutput>(), own, &kinds);
        for (key, owners) in &keys.misplaced {
            // With no kind selected, the selecting keys were reported above.
            if kind.is_some() || !kinds.iter().any(|(k, _)| k == key) {
                let owners: Vec<_> = owners.iter().map(|k| format!("output.{k}")).collect();
                problems.push(format!("output.{key} applies to {} only", or_list(&owners)));
            }
        }
        // With no kind selected, the keys that select one are what is missing.
        let selecting: Vec<&str> = kinds.iter().map(|(k, _)| *k).collect();
        let valid = match kind {
            Some(_) => own,
            None => &selecting[..],
        };
        for key in &keys.unknown {
            let shared = field_names::<SharedOutput>().iter();
            let problem = config_keys::unknown_key(key, shared.chain(valid).copied());
            problems.push(format!("output: {problem}"));
        }
        let shared = match toml::Value::Table(keys.shared).try_into::<SharedOutput>() {
            Ok(shared) => {
                problems.extend(shared.problems(id_column));
                Some(shared)
            }
            Err(e) => {
                problems.push(format!("output: {}", one_line(&e)));
                None
            }
        };
        let target = kind.and_then(|key| match OutputTarget::parse(key, keys.own) {
            Ok(target) => {
                problems.extend(target.section().problems());
                Some(target)
            }
            Err(e) => {
                problems.push(format!("output: {e}"));
                None
            }
        });
        let spec = match (target, shared) {
            (Some(target), Some(shared)) => Some(Self { target, shared }),
            _ => None,
        };
        (spec, problems)
    }
}

impl SharedOutput {
    /// Problems with the shared keys, for a job whose id column is `id_column`.
    fn problems(&self, id_column: &str) -> Vec<String> {
        let mut p = Vec::new();
        if !(0.0..=1.0).contains(&self.max_row_drop_fraction) {
            p.push(format!(
                "output.max_row_drop_fraction must be between 0 and 1, got {}",
                self.max_row_drop_fraction
            ));
        }
        if self.retention_days == Some(0) {
            p.push("output.retention_days must be at least 1 (the run's own date is kept)".into());
        }
        for (output, column) in &self.columns {
            if let Err(e) = crate::sql_ident::check_column(column) {
                p.push(format!("output.columns.{output}: {e}"));
            }
        }
        p.extend(self.privacy_problems(id_column));
        p
    }

    /// `passthrough_columns` and `hash_columns`: names once each, hashed columns among those
    /// that reach the result, and the key's variable a valid name.
    fn privacy_problems(&self, id: &str) -> Vec<String> {
        let mut p = Vec::new();
        let mut seen = BTreeSet::new();
        for c in &self.passthrough_columns {
            if c == id {
                p.push(format!(
                    "output.passthrough_columns: `{c}` is the id column, which is always written"
                ));
            }
            if !seen.insert(c) {
                p.push(format!("output.passthrough_columns: `{c}` is listed twice"));
            }
        }
        let mut hashed = BTreeSet::new();
        for c in &self.hash_columns {
            if c != id && !self.passthrough_columns.contains(c) {
                p.push(format!(
                    "output.hash_columns: `{c}` is neither the id column ({id}) nor in \
                     output.passthrough_columns; only columns that reach the result are hashed"
                ));
            }
            if !hashed.insert(c) {
                p.push(format!("output.hash_columns: `{c}` is listed twice"));
            }
        }
        if !storage::valid_name(&self.hash_key_env) {
            p.push(format!(
                "output.hash_key_env: `{}` is not an environment variable name",
                self.hash_key_env
            ));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_lists_the_keys_its_section_takes() {
        assert_eq!(
            field_names::<crate::sink::table::TableSection>(),
            ["table", "copy_streams", "index", "vector_type", "readers"]
        );
        assert!(field_names::<SharedOutput>().contains(&"min_rows"));
        for (key, fields) in OutputTarget::keys() {
            assert!(fields.contains(&key), "{key}");
        }
    }

    #[test]
    fn another_kinds_key_names_the_kind_it_applies_to() {
        let keys: toml::Table =
            toml::from_str("url = \"s3://b/x/\"\ndelta_vacuum = \"7d\"\nreaders = [\"r\"]")
                .unwrap();
        let (spec, problems) = OutputSpec::parse(keys, "id");
        assert!(spec.is_some());
        assert_eq!(
            problems,
            [
                "output.delta_vacuum applies to output.delta only",
                "output.readers applies to output.table only"
            ]
        );
        let keys: toml::Table = toml::from_str("table = \"t\"\nstorage = {}\nsize = 3").unwrap();
        let (_, problems) = OutputSpec::parse(keys, "id");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems.contains(&"output.storage applies to output.url or output.delta only".into())
        );
        let unknown = problems
            .iter()
            .find(|p| p.starts_with("output: unknown key `size`, expected one of `columns`"))
            .unwrap_or_else(|| panic!("{problems:?}"));
        assert!(unknown.contains("`copy_streams`"), "{unknown}");
    }
}
