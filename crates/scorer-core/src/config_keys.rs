//! Config sections whose keys depend on a kind: a job's `[output]` (a table, files or a Delta
//! table) and a `model.toml` (one section per model kind). The kinds' keys are split apart before
//! each part is parsed into its own typed struct, so a kind never holds another kind's keys, and a
//! key given to the wrong kind is reported by name, with the kinds it belongs to, among all the
//! file's problems rather than as the first parse error.

use std::fmt::Display;

use serde::de::{DeserializeOwned, Deserializer, Visitor};

/// The keys of a config table, split by owner (see [`split`]).
#[derive(Debug, Default)]
pub struct SplitKeys {
    /// The keys every kind shares.
    pub shared: toml::Table,
    /// The selected kind's own keys.
    pub own: toml::Table,
    /// Keys of other kinds, each with the kinds that have it.
    pub misplaced: Vec<(String, Vec<&'static str>)>,
    /// Keys no kind has.
    pub unknown: Vec<String>,
}

/// Splits `table` into the keys in `shared`, those of the selected kind (`own`), keys that only
/// other kinds have (`kinds`: each kind's name and keys), and keys nobody has.
pub fn split(
    table: toml::Table,
    shared: &[&str],
    own: &[&str],
    kinds: &[(&'static str, &'static [&'static str])],
) -> SplitKeys {
    let mut keys = SplitKeys::default();
    for (key, value) in table {
        if shared.contains(&key.as_str()) {
            keys.shared.insert(key, value);
        } else if own.contains(&key.as_str()) {
            keys.own.insert(key, value);
        } else {
            let owners: Vec<_> = kinds
                .iter()
                .filter(|(_, fields)| fields.contains(&key.as_str()))
                .map(|(kind, _)| *kind)
                .collect();
            if owners.is_empty() {
                keys.unknown.push(key);
            } else {
                keys.misplaced.push((key, owners));
            }
        }
    }
    keys
}

/// The keys a `#[derive(Deserialize)]` struct takes, as serde derived them: read off the struct's
/// own `Deserialize` impl, so no list of keys can drift from its struct.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    // The deserializer stops at the struct's field list; the error it returns is expected.
    let _ = T::deserialize(FieldNames(&mut fields));
    fields
}

/// The problem with a key no kind has: the keys the section takes, sorted, once each.
pub fn unknown_key<'a>(key: &str, valid: impl IntoIterator<Item = &'a str>) -> String {
    let valid: std::collections::BTreeSet<&str> = valid.into_iter().collect();
    let valid: Vec<_> = valid.into_iter().map(|k| format!("`{k}`")).collect();
    format!("unknown key `{key}`, expected one of {}", valid.join(", "))
}

/// `a`, `a or b`, `a, b or c`.
pub fn or_list<T: Display>(items: &[T]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => {
            let init: Vec<_> = init.iter().map(ToString::to_string).collect();
            format!("{} or {last}", init.join(", "))
        }
    }
}

/// A parse error on one line (toml puts the key it is about on a line of its own).
pub fn one_line(e: &impl Display) -> String {
    e.to_string().trim_end().replace('\n', " ")
}

/// A deserializer that only records the field list a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(serde::de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(serde::de::Error::custom("field names read"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Two {
        a: u32,
        #[serde(default, rename = "b-key")]
        b: Option<String>,
    }

    #[test]
    fn field_names_are_the_keys_serde_reads() {
        assert_eq!(field_names::<Two>(), ["a", "b-key"]);
    }

    #[test]
    fn keys_are_split_by_owner() {
        let table: toml::Table = toml::from_str("a = 1\nb = 2\nc = 3\nz = 4").unwrap();
        let keys = split(
            table,
            &["a"],
            &["b"],
            &[("one", &["b"]), ("two", &["c", "b"])],
        );
        assert_eq!(keys.shared.keys().collect::<Vec<_>>(), ["a"]);
        assert_eq!(keys.own.keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(keys.misplaced, [("c".to_string(), vec!["two"])]);
        assert_eq!(keys.unknown, ["z"]);
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(or_list::<&str>(&[]), "");
        assert_eq!(or_list(&["a"]), "a");
        assert_eq!(or_list(&["a", "b", "c"]), "a, b or c");
    }
}
