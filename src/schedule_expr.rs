//! Cron expressions in job files. Users write the classic five fields (`0 2 * * *`); the `cron`
//! crate wants seconds first, so five-field expressions get a `0` seconds field.

use std::str::FromStr;

/// Parses a job's `schedule`; the error names the expression and what was wrong.
pub fn parse(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("schedule `{expr}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_fields() {
        assert!(parse("0 2 * * *").is_ok());
        assert!(parse("30 0 2 * * *").is_ok());
        assert!(parse("61 * * * *").is_err());
        assert!(parse("whenever").is_err());
    }
}
