//! PostgreSQL's binary COPY format for result rows, encoded straight from the scored batch into a
//! reusable buffer: no per-row allocation, no text formatting of floats.

use arrow::array::{Array, Int64Array, StringArray};
use bytes::{BufMut, BytesMut};
use chrono::NaiveDate;
use uuid::Uuid;

use crate::sink::ScoredBatch;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Encodes rows of (id, ds, score..., run_id).
#[derive(Debug, Clone)]
pub struct CopyEncoder {
    ds_days: i32,
    run_id: [u8; 16],
    outputs: usize,
}

/// A batch the encoder cannot write (ids of another type, or score columns that do not match the
/// outputs); a programming error upstream, reported rather than written half.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode batch: {0}")]
pub struct UnsupportedIds(pub String);

impl CopyEncoder {
    /// An encoder for one run's partition.
    pub fn new(date: NaiveDate, run_id: Uuid, outputs: usize) -> Self {
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or(NaiveDate::MIN);
        let days = (date - epoch).num_days();
        Self {
            ds_days: i32::try_from(days).unwrap_or(i32::MAX),
            run_id: *run_id.as_bytes(),
            outputs,
        }
    }

    /// The file header: signature, flags, header-extension length.
    pub fn header(buf: &mut BytesMut) {
        buf.put_slice(SIGNATURE);
        buf.put_i32(0);
        buf.put_i32(0);
    }

    /// The end-of-data marker.
    pub fn trailer(buf: &mut BytesMut) {
        buf.put_i16(-1);
    }

    /// Appends every row of `batch` to `buf`.
    pub fn encode(&self, batch: &ScoredBatch, buf: &mut BytesMut) -> Result<(), UnsupportedIds> {
        if batch.scores.len() != self.outputs || batch.scores.iter().any(|c| c.len() < batch.rows) {
            return Err(UnsupportedIds(format!(
                "{} score columns for {} outputs",
                batch.scores.len(),
                self.outputs
            )));
        }
        let fields = i16::try_from(3 + self.outputs).unwrap_or(i16::MAX);
        let fixed = 2 + 8 + 4 + 4 + (8 * self.outputs) + 4 + 16;
        if let Some(ids) = batch.ids.as_any().downcast_ref::<Int64Array>() {
            buf.reserve(batch.rows * (fixed + 8));
            for (r, id) in ids.values().iter().enumerate().take(batch.rows) {
                buf.put_i16(fields);
                buf.put_i32(8);
                buf.put_i64(*id);
                self.rest(r, batch, buf);
            }
        } else if let Some(ids) = batch.ids.as_any().downcast_ref::<StringArray>() {
            buf.reserve(batch.rows * fixed + ids.value_data().len());
            for r in 0..batch.rows {
                let id = ids.value(r).as_bytes();
                buf.put_i16(fields);
                buf.put_i32(i32::try_from(id.len()).unwrap_or(i32::MAX));
                buf.put_slice(id);
                self.rest(r, batch, buf);
            }
        } else {
            return Err(UnsupportedIds(format!(
                "ids must be Int64 or Utf8, got {}",
                batch.ids.data_type()
            )));
        }
        Ok(())
    }

    #[inline]
    fn rest(&self, row: usize, batch: &ScoredBatch, buf: &mut BytesMut) {
        buf.put_i32(4);
        buf.put_i32(self.ds_days);
        for column in &batch.scores {
            buf.put_i32(4);
            buf.put_f32(column[row]);
        }
        buf.put_i32(16);
        buf.put_slice(&self.run_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn encodes_one_row_byte_for_byte() {
        let date = NaiveDate::from_ymd_opt(2000, 1, 2).unwrap();
        let run = Uuid::from_u128(0x0102);
        let enc = CopyEncoder::new(date, run, 1);
        let batch = ScoredBatch {
            ids: Arc::new(Int64Array::from(vec![7])),
            scores: vec![vec![0.5]],
            rows: 1,
        };
        let mut buf = BytesMut::new();
        enc.encode(&batch, &mut buf).unwrap();
        let mut want = vec![0, 4];
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
        want.extend([0, 0, 0, 4, 0, 0, 0, 1]);
        want.extend([0, 0, 0, 4]);
        want.extend(0.5f32.to_be_bytes());
        want.extend([0, 0, 0, 16]);
        want.extend(run.as_bytes());
        assert_eq!(&buf[..], &want[..]);
    }
}
