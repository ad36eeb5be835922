//! Date templating for input URLs, with Airflow's variable names and meanings, so a job file
//! written for an Airflow task (`{{ ds }}`, `{{ ds_nodash }}`, ...) means the same thing here.

use chrono::{Days, NaiveDate};
use thiserror::Error;

/// The variables a template may use, in the order the error message lists them.
pub const VARIABLES: &[&str] = &[
    "ds",
    "ds_nodash",
    "yesterday_ds",
    "yesterday_ds_nodash",
    "tomorrow_ds",
    "tomorrow_ds_nodash",
];

/// A template that cannot be rendered; the message names the offending piece.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    /// `{{ name }}` where `name` is not one of [`VARIABLES`].
    #[error("unknown template variable `{name}` in `{template}`; valid names: {}", VARIABLES.join(", "))]
    UnknownVariable { name: String, template: String },
    /// A `{{` without its closing `}}`.
    #[error("unclosed `{{{{` in `{template}`")]
    Unclosed { template: String },
}

/// Renders `template` for the logical date `ds`.
pub fn render(template: &str, ds: NaiveDate) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
            template: template.to_string(),
        })?;
        let name = after[..end].trim();
        out.push_str(
            &value(name, ds).ok_or_else(|| TemplateError::UnknownVariable {
                name: name.to_string(),
                template: template.to_string(),
            })?,
        );
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks a template without a date, so `scorer validate` can report bad variables early.
pub fn check(template: &str) -> Result<(), TemplateError> {
    render(template, NaiveDate::MIN).map(|_| ())
}

fn value(name: &str, ds: NaiveDate) -> Option<String> {
    let dash = |d: NaiveDate| d.format("%Y-%m-%d").to_string();
    let nodash = |d: NaiveDate| d.format("%Y%m%d").to_string();
    let yesterday = || ds.checked_sub_days(Days::new(1)).unwrap_or(ds);
    let tomorrow = || ds.checked_add_days(Days::new(1)).unwrap_or(ds);
    Some(match name {
        "ds" => dash(ds),
        "ds_nodash" => nodash(ds),
        "yesterday_ds" => dash(yesterday()),
        "yesterday_ds_nodash" => nodash(yesterday()),
        "tomorrow_ds" => dash(tomorrow()),
        "tomorrow_ds_nodash" => nodash(tomorrow()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    #[test]
    fn renders_airflow_variables() {
        let got = render(
            "s3://b/dt={{ ds }}/{{ds_nodash}}/{{ yesterday_ds }}/{{ yesterday_ds_nodash }}/{{ tomorrow_ds }}",
            date(),
        )
        .unwrap();
        assert_eq!(
            got,
            "s3://b/dt=2026-03-01/20260301/2026-02-28/20260228/2026-03-02"
        );
    }

    #[test]
    fn unknown_variable_lists_valid_names() {
        let err = render("x/{{ execution_date }}", date()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("execution_date"), "{msg}");
        assert!(msg.contains("ds_nodash"), "{msg}");
    }

    #[test]
    fn unclosed_braces_are_an_error() {
        assert!(matches!(
            render("x/{{ ds", date()),
            Err(TemplateError::Unclosed { .. })
        ));
        assert_eq!(render("no templates", date()).unwrap(), "no templates");
    }
}
