//! Dealing a date's input out to N shards, the same way in every shard's process.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::ShardSpec;
use crate::source::CheckedInput;

/// One piece of input given to a shard as a whole: an object, or one row group of an object.
struct Unit {
    object: usize,
    row_group: Option<usize>,
    rows: u64,
}

/// The share of `input` that `shard` reads. Whole objects when there are at least as many objects
/// as shards, else row groups; dealt largest first (ties in listing order) to the shard with the
/// fewest rows so far (ties to the lowest index), so shards get near-equal rows whatever the
/// files' sizes. The checked input lists objects in a fixed order, so every shard computes the same deal.
/// A shard may get nothing (fewer row groups than shards): it stages no rows.
pub fn split(input: &CheckedInput, shard: ShardSpec) -> CheckedInput {
    let count = shard.count as usize;
    let mut units: Vec<Unit> = if input.objects.len() >= count {
        input
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| Unit {
                object: i,
                row_group: None,
                rows: o.rows,
            })
            .collect()
    } else {
        input
            .objects
            .iter()
            .enumerate()
            .flat_map(|(i, o)| {
                o.row_group_indexes().into_iter().map(move |rg| Unit {
                    object: i,
                    row_group: Some(rg),
                    rows: o.row_group_rows.get(rg).copied().unwrap_or(0),
                })
            })
            .collect()
    };
    // Stable: equal sizes keep listing order.
    units.sort_by_key(|u| std::cmp::Reverse(u.rows));
    let mut load = vec![0u64; count];
    // Per object of this shard: `None` for the whole object, else its row groups.
    let mut mine: BTreeMap<usize, Option<Vec<usize>>> = BTreeMap::new();
    for unit in units {
        let (target, _) = load
            .iter()
            .enumerate()
            .min_by_key(|&(i, l)| (*l, i))
            .unwrap_or((0, &0));
        load[target] += unit.rows;
        if target != shard.index as usize {
            continue;
        }
        match unit.row_group {
            None => {
                mine.insert(unit.object, None);
            }
            Some(rg) => mine
                .entry(unit.object)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(rg),
        }
    }
    let objects: Vec<_> = mine
        .into_iter()
        .filter_map(|(i, groups)| {
            let o = input.objects.get(i)?;
            Some(match groups {
                None => Arc::clone(o),
                Some(mut rgs) => {
                    rgs.sort_unstable();
                    Arc::new(o.with_row_groups(rgs))
                }
            })
        })
        .collect();
    CheckedInput {
        store: Arc::clone(&input.store),
        total_rows: objects.iter().map(|o| o.rows).sum(),
        objects,
        id_kind: input.id_kind,
        schema: input.schema.clone(),
        counters: Arc::clone(&input.counters),
        delta_version: input.delta_version,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use object_store::ObjectMeta;
    use object_store::memory::InMemory;
    use parquet::arrow::ProjectionMask;

    use super::*;
    use crate::source::{CheckedObject, IdKind};

    fn object(name: &str, groups: &[u64]) -> Arc<CheckedObject> {
        Arc::new(CheckedObject {
            url: format!("file:///in/{name}"),
            meta: ObjectMeta {
                location: name.into(),
                last_modified: chrono::Utc::now(),
                size: 1,
                e_tag: None,
                version: None,
            },
            row_groups: groups.len(),
            rows: groups.iter().sum(),
            row_group_rows: groups.to_vec(),
            row_group_bytes: vec![0; groups.len()],
            projection: ProjectionMask::all(),
            id_projection: ProjectionMask::all(),
            selected: None,
            logical_names: None,
            deleted_rows: None,
        })
    }

    fn checked(objects: Vec<Arc<CheckedObject>>) -> CheckedInput {
        CheckedInput {
            store: Arc::new(InMemory::new()),
            total_rows: objects.iter().map(|o| o.rows).sum(),
            objects,
            id_kind: IdKind::Int,
            schema: None,
            counters: Arc::default(),
            delta_version: None,
        }
    }

    /// Every shard's (object, row groups), for all `count` shards.
    fn deal(input: &CheckedInput, count: u32) -> Vec<Vec<(String, Vec<usize>)>> {
        (0..count)
            .map(|index| {
                split(input, ShardSpec { index, count })
                    .objects
                    .iter()
                    .map(|o| (o.meta.location.to_string(), o.row_group_indexes()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn whole_objects_go_largest_first_to_the_lightest_shard() {
        let input = checked(vec![
            object("a", &[10]),
            object("b", &[50]),
            object("c", &[30]),
            object("d", &[20]),
        ]);
        let shards = deal(&input, 2);
        // b (50) -> 0, c (30) -> 1, d (20) -> 1, a (10) -> 0: 60 and 50 rows.
        assert_eq!(
            shards,
            vec![
                vec![("a".into(), vec![0]), ("b".into(), vec![0])],
                vec![("c".into(), vec![0]), ("d".into(), vec![0])],
            ]
        );
        assert_eq!(
            split(&input, ShardSpec { index: 0, count: 2 }).total_rows,
            60
        );
        // One shard reads everything, as an unsharded run does.
        assert_eq!(deal(&input, 1)[0].len(), 4);
    }

    #[test]
    fn fewer_objects_than_shards_split_by_row_group_and_cover_each_once() {
        let input = checked(vec![object("a", &[5, 5, 5, 4]), object("b", &[5, 1])]);
        let shards = deal(&input, 3);
        let mut seen: Vec<(String, usize)> = shards
            .iter()
            .flatten()
            .flat_map(|(o, rgs)| rgs.iter().map(move |rg| (o.clone(), *rg)))
            .collect();
        seen.sort();
        let mut all: Vec<(String, usize)> = (0..4).map(|rg| ("a".to_string(), rg)).collect();
        all.extend((0..2).map(|rg| ("b".to_string(), rg)));
        assert_eq!(seen, all, "every row group read by exactly one shard");
        let rows: Vec<u64> = (0..3)
            .map(|index| split(&input, ShardSpec { index, count: 3 }).total_rows)
            .collect();
        assert_eq!(rows.iter().sum::<u64>(), 25);
        assert!(rows.iter().all(|&r| (5..=10).contains(&r)), "{rows:?}");
        // The same deal every time.
        assert_eq!(deal(&input, 3), shards);
    }

    #[test]
    fn a_shard_with_nothing_to_read_reads_nothing() {
        let input = checked(vec![object("a", &[7])]);
        let last = split(&input, ShardSpec { index: 2, count: 3 });
        assert!(last.objects.is_empty());
        assert_eq!(last.total_rows, 0);
    }
}
