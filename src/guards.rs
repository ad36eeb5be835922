//! The row guards (`output.min_rows`, `output.max_row_drop_fraction`): a run that would publish
//! far fewer rows than it should fails instead, because an incomplete input is likelier than a
//! real change. Checked by a plain run and by the shard that publishes a sharded one.

use crate::failure::Failure;

/// The row guards: fewer rows than `min_rows`, or fewer than `1 - max_row_drop_fraction` of the
/// date's previous run, mean an incomplete input more often than a real change.
pub fn check_row_guards(
    output: &crate::job::SharedOutput,
    rows: u64,
    previous: Option<u64>,
) -> Result<(), Failure> {
    if rows < output.min_rows {
        return Err(Failure::TooFewRows {
            rows,
            reason: format!(
                "the input gave {rows} rows to publish, fewer than output.min_rows = {}",
                output.min_rows
            ),
        });
    }
    if let Some(before) = previous.filter(|&b| b > 0) {
        let floor = (before as f64 * (1.0 - output.max_row_drop_fraction)).ceil() as u64;
        if rows < floor {
            return Err(Failure::TooFewRows {
                rows,
                reason: format!(
                    "the input gave {rows} rows, {:.1}% fewer than the {before} the date's \
                     previous run wrote (output.max_row_drop_fraction = {})",
                    100.0 * (1.0 - rows as f64 / before as f64),
                    output.max_row_drop_fraction
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(min_rows: u64, max_drop: f64) -> crate::job::SharedOutput {
        let text = format!("min_rows = {min_rows}\nmax_row_drop_fraction = {max_drop}\n");
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn row_guards_stop_empty_and_shrunken_inputs() {
        let o = output(1, 0.5);
        assert!(check_row_guards(&o, 10, None).is_ok());
        let e = check_row_guards(&o, 0, None).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::INPUT);
        assert!(e.to_string().contains("min_rows = 1"), "{e}");
        // Half of the previous run is allowed, less is not.
        assert!(check_row_guards(&o, 500, Some(1000)).is_ok());
        let e = check_row_guards(&o, 499, Some(1000)).unwrap_err();
        assert!(e.to_string().contains("50.1% fewer than the 1000"), "{e}");
        // 1 turns the drop guard off; 0 allows no drop at all.
        assert!(check_row_guards(&output(1, 1.0), 1, Some(1000)).is_ok());
        assert!(check_row_guards(&output(1, 0.0), 999, Some(1000)).is_err());
        assert!(check_row_guards(&output(0, 1.0), 0, Some(1000)).is_ok());
    }
}
