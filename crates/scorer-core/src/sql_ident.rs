//! The one place where names from job files become SQL identifiers. Names are validated against a
//! conservative pattern and always emitted double-quoted, so no job file can inject SQL and no
//! identifier is ever formatted raw into a statement.

use std::fmt;

use thiserror::Error;

/// PostgreSQL truncates identifiers longer than this many bytes.
const PG_MAX_IDENT: usize = 63;
/// Room kept for the suffixes scorer adds to table names (`__stg_<12 hex>` for staging tables).
const SUFFIX_ROOM: usize = 18;

/// A name that cannot be used as an identifier.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IdentError {
    #[error(
        "`{0}` is not a valid name: use lowercase letters, digits and `_`, starting with a letter or `_`"
    )]
    Pattern(String),
    #[error("`{name}` is longer than {max} characters")]
    TooLong { name: String, max: usize },
    #[error("`{0}` has more than one `.`; use `table` or `schema.table`")]
    TooManyParts(String),
}

/// Checks one identifier (a column, a schema or a table name without suffixes).
pub fn check_column(name: &str) -> Result<(), IdentError> {
    check(name, PG_MAX_IDENT)
}

fn check(name: &str, max: usize) -> Result<(), IdentError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return Err(IdentError::Pattern(name.to_string()));
    }
    if name.len() > max {
        return Err(IdentError::TooLong {
            name: name.to_string(),
            max,
        });
    }
    Ok(())
}

/// Quotes an identifier that has already been checked (or that scorer made itself).
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `text` as a SQL string literal (`'` doubled), for the few statements that cannot bind it
/// (DDL such as a view's body or a comment).
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A validated result-table name, `table` or `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// `None` means the database's default (`public` in PostgreSQL).
    pub schema: Option<String>,
    pub table: String,
}

impl TableName {
    /// Validates `table` or `schema.table` from a job file.
    pub fn parse(text: &str) -> Result<Self, IdentError> {
        let parts: Vec<&str> = text.split('.').collect();
        let (schema, table) = match parts.as_slice() {
            [t] => (None, *t),
            [s, t] => (Some(*s), *t),
            _ => return Err(IdentError::TooManyParts(text.to_string())),
        };
        if let Some(s) = schema {
            check(s, PG_MAX_IDENT)?;
        }
        check(table, PG_MAX_IDENT - SUFFIX_ROOM)?;
        Ok(Self {
            schema: schema.map(str::to_string),
            table: table.to_string(),
        })
    }

    /// The schema PostgreSQL will use.
    pub fn pg_schema(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }

    /// `"schema"."table"` for PostgreSQL.
    pub fn pg_quoted(&self) -> String {
        self.pg_sibling(&self.table)
    }

    /// A quoted table in the same schema, for partitions and staging tables.
    pub fn pg_sibling(&self, name: &str) -> String {
        format!("{}.{}", quote(self.pg_schema()), quote(name))
    }

    /// The partition that holds one logical date, e.g. `churn_daily_20261124`.
    pub fn partition_name(&self, date: chrono::NaiveDate) -> String {
        format!("{}_{}", self.table, date.format("%Y%m%d"))
    }

    /// A staging table name unique to a run.
    pub fn staging_name(&self, run_id: uuid::Uuid) -> String {
        let hex = run_id.simple().to_string();
        format!("{}__stg_{}", self.table, &hex[hex.len() - 12..])
    }

    /// SQLite has no schemas: `schema.table` is stored as the table `schema__table`.
    pub fn sqlite_name(&self) -> String {
        match &self.schema {
            Some(s) => format!("{s}__{}", self.table),
            None => self.table.clone(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(s) => write!(f, "{s}.{}", self.table),
            None => f.write_str(&self.table),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_and_qualified_names() {
        let t = TableName::parse("scores.churn_daily").unwrap();
        assert_eq!(t.pg_quoted(), r#""scores"."churn_daily""#);
        assert_eq!(t.sqlite_name(), "scores__churn_daily");
        let t = TableName::parse("churn").unwrap();
        assert_eq!(t.pg_quoted(), r#""public"."churn""#);
    }

    #[test]
    fn rejects_injection_and_odd_names() {
        for bad in [
            "a;drop table x",
            "A",
            "1abc",
            "a\"b",
            "",
            "a.b.c",
            "x y",
            "tbl-1",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad} accepted");
        }
        let long = "a".repeat(50);
        assert!(matches!(
            TableName::parse(&long),
            Err(IdentError::TooLong { .. })
        ));
    }

    #[test]
    fn quote_doubles_quotes() {
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
    }
}
