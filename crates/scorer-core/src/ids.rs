//! Duplicate ids across a run's input: a date must never get two result rows for one id, so a
//! run that meets an id twice fails (data error, exit 3) naming it, before anything is published.
//!
//! Integer ids go into compressed bitmaps (roaring) keyed by their upper 32 bits: ids in dense
//! ranges, the usual case, cost bits rather than bytes each, and a repeat is seen the moment it
//! arrives. Ids scattered over the whole 64-bit range would make one bitmap each; past a bound
//! the set turns into a plain list (8 bytes an id) checked by sorting at the end. String ids are
//! kept as 128-bit hashes in a hash set (keyed per run, so no input can aim for a collision;
//! about 32 bytes an id), a repeat named the moment it arrives.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;

use arrow::array::{Array, Int64Array, StringArray};
use rayon::slice::ParallelSliceMut;
use roaring::RoaringBitmap;

/// Upper-32-bit buckets allowed before integer ids are kept as a list instead: a bucket holding
/// a handful of ids costs more than the list would.
const MAX_SPARSE_BUCKETS: usize = 4096;

/// The ids seen so far in one run.
#[derive(Debug, Default)]
pub struct IdSet {
    buckets: HashMap<u32, RoaringBitmap>,
    /// Integer ids (order-preserving as u64) once the buckets got too sparse.
    list: Option<Vec<u64>>,
    hashes: HashSet<u128>,
    keys: (std::hash::RandomState, std::hash::RandomState),
    seen: u64,
}

/// An id seen twice, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate(pub String);

impl IdSet {
    /// Adds a batch's ids (`Int64Array` or `StringArray`); a repeat found now is returned.
    pub fn add(&mut self, ids: &dyn Array) -> Result<(), Duplicate> {
        if let Some(ints) = ids.as_any().downcast_ref::<Int64Array>() {
            if ints.null_count() > 0 {
                for id in ints.iter().flatten() {
                    self.add_ints(&[id])?;
                }
            } else {
                self.add_ints(ints.values())?;
            }
        } else if let Some(strings) = ids.as_any().downcast_ref::<StringArray>() {
            for id in strings.iter().flatten() {
                let h = self.hash(id);
                if !self.hashes.insert(h) {
                    return Err(Duplicate(id.to_string()));
                }
            }
        }
        Ok(())
    }

    /// Integer ids: each stretch of consecutive ids (`n, n+1, …` within one 32-bit bucket, the
    /// common case) goes into its bucket's bitmap as one range; other ids one at a time.
    fn add_ints(&mut self, ids: &[i64]) -> Result<(), Duplicate> {
        self.seen += ids.len() as u64;
        let key = |id: i64| (id as u64) ^ (1 << 63);
        if let Some(list) = &mut self.list {
            list.extend(ids.iter().map(|&id| key(id)));
            return Ok(());
        }
        let mut i = 0;
        while i < ids.len() {
            let first = key(ids[i]);
            let (hi, lo) = ((first >> 32) as u32, first as u32);
            // The stretch ids[i..j] = first, first + 1, … without leaving the bucket.
            let mut j = i + 1;
            while j < ids.len()
                && ids[j].checked_sub(ids[j - 1]) == Some(1)
                && (key(ids[j]) >> 32) as u32 == hi
            {
                j += 1;
            }
            let last = lo + (j - i - 1) as u32;
            let bitmap = self.buckets.entry(hi).or_default();
            if j - i == 1 {
                if !bitmap.insert(lo) {
                    return Err(Duplicate(ids[i].to_string()));
                }
            } else {
                if bitmap.range_cardinality(lo..=last) > 0 {
                    let k = (lo..=last).position(|v| bitmap.contains(v)).unwrap_or(0);
                    return Err(Duplicate(ids[i + k].to_string()));
                }
                bitmap.insert_range(lo..=last);
            }
            i = j;
        }
        if self.buckets.len() > MAX_SPARSE_BUCKETS && (self.buckets.len() as u64) * 16 > self.seen {
            let mut list = Vec::with_capacity(usize::try_from(self.seen).unwrap_or(0) * 2);
            for (hi, bitmap) in self.buckets.drain() {
                list.extend(
                    bitmap
                        .iter()
                        .map(|lo| (u64::from(hi) << 32) | u64::from(lo)),
                );
            }
            self.list = Some(list);
        }
        Ok(())
    }

    fn hash(&self, id: &str) -> u128 {
        let half = |k: &std::hash::RandomState| k.hash_one(id);
        (u128::from(half(&self.keys.0)) << 64) | u128::from(half(&self.keys.1))
    }

    /// The last check, for integer ids kept as a list: sorts them and looks for a repeat.
    pub fn finish(&mut self) -> Result<(), Duplicate> {
        if let Some(list) = &mut self.list {
            list.par_sort_unstable();
            if let Some(w) = list.windows(2).find(|w| w[0] == w[1]) {
                return Err(Duplicate(((w[0] ^ (1 << 63)) as i64).to_string()));
            }
        }
        Ok(())
    }
}

/// Integer ids' bitmaps larger than this are not passed between shards; the publishing shard
/// then checks the staged rows themselves.
const MAX_DIGEST_BYTES: usize = 16 << 20;

impl IdSet {
    /// The ids as a compact digest (base64 of each 32-bit bucket's roaring bitmap) that another
    /// process can check against other runs' (`first_shared`): how the shards of a sharded run
    /// prove their ids unique across shards without reading each other's rows. `None` for
    /// string ids, ids kept as a list, or a digest over 16 MiB.
    pub fn digest(&self) -> Option<String> {
        use base64::Engine;
        if self.list.is_some() || !self.hashes.is_empty() {
            return None;
        }
        let mut buckets: Vec<(&u32, &RoaringBitmap)> = self.buckets.iter().collect();
        buckets.sort_unstable_by_key(|(hi, _)| **hi);
        let mut bytes = Vec::new();
        for (hi, bitmap) in buckets {
            bytes.extend_from_slice(&hi.to_le_bytes());
            bytes.extend_from_slice(&(bitmap.serialized_size() as u64).to_le_bytes());
            bitmap.serialize_into(&mut bytes).ok()?;
            if bytes.len() > MAX_DIGEST_BYTES {
                return None;
            }
        }
        Some(base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

/// An id that two of `digests` (from [`IdSet::digest`]) both hold, if any; `Err` for a digest
/// that does not decode.
pub fn first_shared(digests: &[&str]) -> Result<Option<String>, String> {
    use base64::Engine;
    let mut seen: HashMap<u32, RoaringBitmap> = HashMap::new();
    for (i, digest) in digests.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(digest)
            .map_err(|e| format!("id digest {i}: {e}"))?;
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let bad = || format!("id digest {i} is cut short");
            let hi = u32::from_le_bytes(
                rest.get(..4)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?,
            );
            let len = u64::from_le_bytes(
                rest.get(4..12)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?,
            );
            let len = usize::try_from(len).map_err(|_| bad())?;
            let body = rest.get(12..12 + len).ok_or_else(bad)?;
            let bitmap =
                RoaringBitmap::deserialize_from(body).map_err(|e| format!("id digest {i}: {e}"))?;
            rest = &rest[12 + len..];
            let into = seen.entry(hi).or_default();
            if let Some(lo) = (&*into & &bitmap).min() {
                let key = (u64::from(hi) << 32) | u64::from(lo);
                return Ok(Some(((key ^ (1 << 63)) as i64).to_string()));
            }
            *into |= bitmap;
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_disjoint_sets_share_nothing_and_overlaps_are_named() {
        let set = |ids: Vec<i64>| {
            let mut s = IdSet::default();
            s.add(&Int64Array::from(ids)).unwrap();
            s.digest().unwrap()
        };
        let a = set((0..100_000).collect());
        let b = set((100_000..200_000).chain([-7, i64::MAX]).collect());
        let c = set(vec![5, 1 << 40, 150_000]);
        assert_eq!(first_shared(&[&a, &b]), Ok(None));
        assert_eq!(first_shared(&[&a, &b, &c]), Ok(Some("5".into())));
        assert_eq!(
            first_shared(&[&b, &set(vec![i64::MAX])]),
            Ok(Some(i64::MAX.to_string()))
        );
        assert_eq!(first_shared(&[&set(vec![])]), Ok(None));
        assert!(first_shared(&["!"]).is_err());
        // String ids have no digest: the publisher checks the rows themselves.
        let mut s = IdSet::default();
        s.add(&StringArray::from(vec!["a"])).unwrap();
        assert_eq!(s.digest(), None);
    }

    #[test]
    fn a_repeated_integer_id_is_named_dense_or_scattered() {
        let mut s = IdSet::default();
        s.add(&Int64Array::from((0..100_000).collect::<Vec<i64>>()))
            .unwrap();
        assert_eq!(
            s.add(&Int64Array::from(vec![100_000, -5, 77])),
            Err(Duplicate("77".into()))
        );
        // Scattered over the 64-bit range: becomes a list, checked at the end.
        let mut s = IdSet::default();
        let spread: Vec<i64> = (0..20_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) as i64)
            .collect();
        s.add(&Int64Array::from(spread.clone())).unwrap();
        assert!(s.list.is_some());
        s.add(&Int64Array::from(vec![spread[123]])).unwrap();
        assert_eq!(s.finish(), Err(Duplicate(spread[123].to_string())));
        let mut s = IdSet::default();
        s.add(&Int64Array::from(spread)).unwrap();
        assert_eq!(s.finish(), Ok(()));
    }

    #[test]
    fn repeats_inside_and_across_stretches_are_named() {
        let mut s = IdSet::default();
        s.add(&Int64Array::from(vec![10, 11, 12, 20, 21])).unwrap();
        assert_eq!(
            s.add(&Int64Array::from(vec![1, 2, 3, 19, 20, 21])),
            Err(Duplicate("20".into()))
        );
        let mut s = IdSet::default();
        assert_eq!(
            s.add(&Int64Array::from(vec![5, 6, 7, 6])),
            Err(Duplicate("6".into()))
        );
        // Across the 32-bit bucket boundary and at the ends of the range.
        let mut s = IdSet::default();
        let edge = (1i64 << 32) - 2;
        s.add(&Int64Array::from(vec![
            edge,
            edge + 1,
            edge + 2,
            i64::MIN,
            i64::MAX,
        ]))
        .unwrap();
        assert_eq!(
            s.add(&Int64Array::from(vec![edge + 2])),
            Err(Duplicate((edge + 2).to_string()))
        );
        assert_eq!(
            s.add(&Int64Array::from(vec![i64::MAX])),
            Err(Duplicate(i64::MAX.to_string()))
        );
    }

    #[test]
    fn a_repeated_string_id_is_found() {
        let mut s = IdSet::default();
        s.add(&StringArray::from(vec!["a", "b", "c"])).unwrap();
        assert_eq!(
            s.add(&StringArray::from(vec!["d", "b"])),
            Err(Duplicate("b".into()))
        );
    }
}
