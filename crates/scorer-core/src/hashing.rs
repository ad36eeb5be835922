//! `output.hash_columns`: input columns that hold personal data (an email, a customer number)
//! reach the result only as a keyed hash, `hex(HMAC-SHA256(key, value))` of the value's text (an
//! integer's decimal digits), so a table can still be joined on them by whoever holds the key
//! but not read back. The key comes from an environment variable (`output.hash_key_env`), is
//! registered with [`crate::redact`] as it is read and never stored or printed.
//!
//! Hashing happens where a source batch becomes model input (`features`): the id, passthrough
//! columns, duplicate-id errors, the quarantine and the id digests of sharded runs all see only
//! the hash; the raw values never leave the decoded batch.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Fewest bytes of key accepted: a short key can be guessed from the hashes it made.
pub const MIN_KEY_BYTES: usize = 16;

/// The environment variable the key is read from unless the job names another.
pub const DEFAULT_KEY_ENV: &str = "SCORER_HASH_KEY";

/// Hashes the values of the named columns with one key.
pub struct ColumnHasher {
    mac: Hmac<Sha256>,
    columns: BTreeSet<String>,
}

impl std::fmt::Debug for ColumnHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ColumnHasher")
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

impl ColumnHasher {
    /// The hasher for `columns` with the key in environment variable `key_env` (looked up with
    /// `env`); `None` when no column is hashed. The key becomes a secret for [`crate::redact`].
    pub fn from_env(
        columns: &[String],
        key_env: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Arc<Self>>, String> {
        if columns.is_empty() {
            return Ok(None);
        }
        let key = env(key_env).ok_or_else(|| {
            format!(
                "output.hash_columns needs the HMAC key in the environment variable {key_env}, \
                 which is not set"
            )
        })?;
        crate::redact::register(&key);
        if key.len() < MIN_KEY_BYTES {
            return Err(format!(
                "output.hash_columns: the key in {key_env} has {} bytes; use at least \
                 {MIN_KEY_BYTES} (e.g. `openssl rand -hex 32`)",
                key.len()
            ));
        }
        Self::new(key.as_bytes(), columns).map(|h| Some(Arc::new(h)))
    }

    /// A hasher with `key` for `columns`.
    pub fn new(key: &[u8], columns: &[String]) -> Result<Self, String> {
        let mac = Hmac::<Sha256>::new_from_slice(key)
            .map_err(|e| format!("output.hash_columns: unusable key: {e}"))?;
        Ok(Self {
            mac,
            columns: columns.iter().cloned().collect(),
        })
    }

    /// Whether `column` is hashed.
    pub fn hashes(&self, column: &str) -> bool {
        self.columns.contains(column)
    }

    /// The hex HMAC-SHA256 of each value's text; nulls stay null.
    pub fn hash(&self, values: &dyn Array) -> Result<ArrayRef, arrow::error::ArrowError> {
        let text = cast(values, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(text.len(), text.len() * 64);
        let mut hex = String::with_capacity(64);
        for v in text.iter() {
            match v {
                Some(v) => {
                    let mut mac = self.mac.clone();
                    mac.update(v.as_bytes());
                    hex.clear();
                    for b in mac.finalize().into_bytes() {
                        let _ = write!(hex, "{b:02x}");
                    }
                    out.append_value(&hex);
                }
                None => out.append_null(),
            }
        }
        Ok(Arc::new(out.finish()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn matches_rfc_4231_and_hashes_the_text_of_integers() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let h = ColumnHasher::new(b"Jefe", &["c".into()]).unwrap();
        let a = StringArray::from(vec![Some("what do ya want for nothing?"), None]);
        let out = h.hash(&a).unwrap();
        let out = out.as_string::<i32>();
        assert_eq!(
            out.value(0),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(out.is_null(1));
        let ints = h.hash(&Int64Array::from(vec![42])).unwrap();
        let text = h.hash(&StringArray::from(vec!["42"])).unwrap();
        assert_eq!(
            ints.as_string::<i32>().value(0),
            text.as_string::<i32>().value(0)
        );
    }

    #[test]
    fn a_missing_or_short_key_is_refused_without_printing_it() {
        let cols = ["email".to_string()];
        let e = ColumnHasher::from_env(&cols, "K", |_| None).unwrap_err();
        assert!(e.contains("K"), "{e}");
        let e = ColumnHasher::from_env(&cols, "K", |_| Some("short-key-9".into())).unwrap_err();
        assert!(
            !e.contains("short-key-9") && e.contains("at least 16"),
            "{e}"
        );
        assert!(
            ColumnHasher::from_env(&[], "K", |_| None)
                .unwrap()
                .is_none()
        );
        let h = ColumnHasher::from_env(&cols, "K", |_| Some("a-long-enough-key-123".into()));
        assert!(format!("{:?}", h.unwrap().unwrap()).contains("email"));
    }
}
