//! The input rows a resumed run does not read again: per (object, row group), sorted disjoint
//! row ranges merged from the adopted checkpoints.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Row ranges `[start, end)` already staged, per object URL and row group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DoneRanges {
    by_group: HashMap<(String, usize), Vec<(usize, usize)>>,
}

impl DoneRanges {
    /// Merges the ranges of checkpoints (adjacent and overlapping ranges become one).
    pub fn from_ranges(ranges: &[StagedRange]) -> Self {
        let mut by_group: HashMap<(String, usize), Vec<(usize, usize)>> = HashMap::new();
        for r in ranges.iter().filter(|r| r.rows > 0) {
            by_group
                .entry((r.object.clone(), r.row_group))
                .or_default()
                .push((r.first_row, r.first_row + r.rows));
        }
        for spans in by_group.values_mut() {
            spans.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
            for &(s, e) in spans.iter() {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            *spans = merged;
        }
        Self { by_group }
    }

    /// Whether nothing is done.
    pub fn is_empty(&self) -> bool {
        self.by_group.is_empty()
    }

    /// Whether all `rows` rows of the row group are done (it need not be read at all).
    pub fn complete(&self, object: &str, row_group: usize, rows: u64) -> bool {
        self.spans(object, row_group)
            .is_some_and(|s| s.len() == 1 && s[0].0 == 0 && s[0].1 as u64 >= rows)
    }

    /// Whether any row of the row group is done.
    pub fn touches(&self, object: &str, row_group: usize) -> bool {
        self.spans(object, row_group).is_some()
    }

    /// The parts of rows `first_row .. first_row + len` that are not done, as `(offset, len)`
    /// within those rows.
    pub fn missing(
        &self,
        object: &str,
        row_group: usize,
        first_row: usize,
        len: usize,
    ) -> Vec<(usize, usize)> {
        let end = first_row + len;
        let mut out = Vec::new();
        let mut at = first_row;
        for &(s, e) in self.spans(object, row_group).unwrap_or(&[]) {
            if e <= at || s >= end {
                continue;
            }
            if s > at {
                out.push((at - first_row, s - at));
            }
            at = at.max(e);
        }
        if at < end {
            out.push((at - first_row, end - at));
        }
        out
    }

    /// The parts of rows `first_row .. first_row + len` that are done, as `(offset, len)`.
    pub fn done(
        &self,
        object: &str,
        row_group: usize,
        first_row: usize,
        len: usize,
    ) -> Vec<(usize, usize)> {
        let end = first_row + len;
        self.spans(object, row_group)
            .unwrap_or(&[])
            .iter()
            .filter(|&&(s, e)| e > first_row && s < end)
            .map(|&(s, e)| {
                let (s, e) = (s.max(first_row), e.min(end));
                (s - first_row, e - s)
            })
            .collect()
    }

    /// The (object, row group) pairs with done rows.
    pub fn groups(&self) -> impl Iterator<Item = (&str, usize)> {
        self.by_group.keys().map(|(o, rg)| (o.as_str(), *rg))
    }

    fn spans(&self, object: &str, row_group: usize) -> Option<&[(usize, usize)]> {
        self.by_group
            .get(&(object.to_string(), row_group))
            .map(Vec::as_slice)
    }
}

/// Input rows a checkpoint holds: rows `first_row .. first_row + rows` of one row group, of which
/// `scored` were staged (the rest were rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedRange {
    pub object: String,
    pub row_group: usize,
    pub first_row: usize,
    pub rows: usize,
    pub scored: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(object: &str, rg: usize, first: usize, rows: usize) -> StagedRange {
        StagedRange {
            object: object.into(),
            row_group: rg,
            first_row: first,
            rows,
            scored: rows,
        }
    }

    #[test]
    fn ranges_merge_and_split_batches_into_what_is_missing() {
        let d = DoneRanges::from_ranges(&[
            range("a", 0, 0, 100),
            range("a", 0, 100, 50),
            range("a", 1, 20, 10),
            range("a", 1, 60, 10),
            range("b", 0, 0, 0),
        ]);
        assert!(d.complete("a", 0, 150));
        assert!(!d.complete("a", 0, 151));
        assert!(!d.touches("b", 0), "empty ranges are nothing");
        // Rows 0..100 of a/1: done are 20..30 and 60..70.
        assert_eq!(d.missing("a", 1, 0, 100), vec![(0, 20), (30, 30), (70, 30)]);
        assert_eq!(d.done("a", 1, 0, 100), vec![(20, 10), (60, 10)]);
        // A batch starting at row 25 sees the tail of the first span.
        assert_eq!(d.missing("a", 1, 25, 10), vec![(5, 5)]);
        assert_eq!(d.missing("c", 0, 7, 3), vec![(0, 3)]);
        assert_eq!(d.missing("a", 0, 0, 150), vec![]);
    }
}
