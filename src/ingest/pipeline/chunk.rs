//! A chunk: the items and failures between two inventory positions, held
//! as slices of their units' Arrow rows until the chunk is written as one
//! part per (cell, year) bucket and committed with its checkpoint.

use std::sync::Arc;

use std::ops::Range;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use super::super::dead_letter::DeadLetter;
use super::super::job::Checkpoint;
use super::super::progress::IngestProgress;
use super::unit::{Outcome, UnitRows};
use crate::catalog::append::Bucket;

/// A row's place in the order parts are written in: cell, year, then
/// (null?, platform) and (null?, datetime) — nulls last, as the writer's
/// sort puts them — then where the row is (segment, row).
type RowKey<'a> = (
    &'a str,
    Option<i32>,
    (bool, &'a str),
    (bool, i64),
    usize,
    usize,
);

/// A bucket and its rows' range in the chunk's rows in bucket order.
pub(super) type BucketRange = (Bucket, Range<usize>);

/// Contiguous rows of one unit that belong to a chunk.
pub(super) struct Segment {
    pub rows: Arc<UnitRows>,
    pub start: usize,
    pub len: usize,
}

/// Items and failures between two inventory positions.
pub(super) struct Chunk {
    pub first: u64,
    /// Position after the last entry added.
    pub end: u64,
    pub segments: Vec<Segment>,
    pub letters: Vec<DeadLetter>,
    /// Inventory items (not bad rows) in the chunk.
    pub listed: u64,
    /// Items whose rows the chunk writes.
    pub written: u64,
}

impl Chunk {
    pub fn new(first: u64) -> Self {
        Self {
            first,
            end: first,
            segments: Vec::new(),
            letters: Vec::new(),
            listed: 0,
            written: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.letters.is_empty()
    }

    /// Adds one entry's outcome, counting it in `state`.
    pub fn add(
        &mut self,
        outcome: Outcome,
        rows: Option<&Arc<UnitRows>>,
        state: &mut IngestProgress,
    ) {
        match outcome {
            Outcome::Row {
                position,
                start,
                len,
                bytes,
                no_geometry,
                outside,
                ..
            } => {
                self.end = position + 1;
                self.listed += 1;
                self.written += 1;
                state.items += 1;
                state.fetched += 1;
                state.bytes_in += bytes;
                state.rows_built += u64::from(len);
                if no_geometry {
                    state.no_geometry += 1;
                }
                if outside {
                    state.outside_regions += 1;
                }
                if let Some(rows) = rows {
                    self.push_rows(rows, start as usize, len as usize);
                }
            }
            Outcome::Failed {
                letter,
                listed,
                bytes,
                ..
            } => {
                self.end = letter.position + 1;
                if listed {
                    self.listed += 1;
                    state.items += 1;
                }
                if bytes > 0 {
                    state.fetched += 1;
                    state.bytes_in += bytes;
                }
                state.failed += 1;
                tracing::debug!(position = letter.position, reason = %letter.reason, "dead-lettered");
                self.letters.push(letter);
            }
        }
    }

    /// Appends rows `start..start + len` of a unit, extending the last
    /// segment when they follow on from it.
    fn push_rows(&mut self, rows: &Arc<UnitRows>, start: usize, len: usize) {
        if let Some(last) = self.segments.last_mut()
            && Arc::ptr_eq(&last.rows, rows)
            && last.start + last.len == start
        {
            last.len += len;
            return;
        }
        self.segments.push(Segment {
            rows: rows.clone(),
            start,
            len,
        });
    }

    /// Every (cell, year) bucket of the chunk with its rows as
    /// (segment, row) pairs, in bucket order; within a bucket, rows are in
    /// the order parts are written in (platform, then datetime, nulls last),
    /// so the writer finds them sorted.
    pub fn buckets(&self) -> Vec<(Bucket, Vec<(usize, usize)>)> {
        let mut keys: Vec<RowKey<'_>> = Vec::new();
        for (s, segment) in self.segments.iter().enumerate() {
            let batch = &segment.rows.batch;
            let (Some(cells), platforms, datetimes) = (
                batch
                    .column_by_name("grid_partition")
                    .and_then(|c| c.as_string_opt::<i32>()),
                batch
                    .column_by_name("platform")
                    .and_then(|c| c.as_string_opt::<i32>()),
                batch
                    .column_by_name("datetime")
                    .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>()),
            ) else {
                continue;
            };
            for r in segment.start..segment.start + segment.len {
                let platform = platforms.and_then(|p| p.is_valid(r).then(|| p.value(r)));
                let datetime = datetimes.and_then(|d| d.is_valid(r).then(|| d.value(r)));
                keys.push((
                    cells.value(r),
                    segment.rows.years[r],
                    (platform.is_none(), platform.unwrap_or_default()),
                    (datetime.is_none(), datetime.unwrap_or_default()),
                    s,
                    r,
                ));
            }
        }
        keys.sort_unstable();
        let mut out: Vec<(Bucket, Vec<(usize, usize)>)> = Vec::new();
        for (cell, year, _, _, s, r) in keys {
            match out.last_mut() {
                Some((b, members)) if b.cell == cell && b.year == year => members.push((s, r)),
                _ => out.push((
                    Bucket {
                        cell: cell.to_string(),
                        year,
                    },
                    vec![(s, r)],
                )),
            }
        }
        out
    }

    /// Takes the chunk's rows out as one batch in bucket order, with each
    /// bucket's range of rows in it: one gather per column for the whole
    /// chunk (per bucket, each gather paid a set-up over every segment).
    /// A segment's column is freed as soon as it is copied, unless the next
    /// chunk shares its unit, so the copy costs about one column of memory.
    pub fn take_bucket_rows(
        &mut self,
        schema: &SchemaRef,
    ) -> Result<(RecordBatch, Vec<BucketRange>), arrow_schema::ArrowError> {
        let buckets = self.buckets();
        if buckets.is_empty() {
            // Only dead letters, or nothing: no rows to gather.
            self.segments.clear();
            return Ok((RecordBatch::new_empty(schema.clone()), Vec::new()));
        }
        let mut order = Vec::with_capacity(buckets.iter().map(|(_, m)| m.len()).sum());
        let mut ranges = Vec::with_capacity(buckets.len());
        for (bucket, members) in buckets {
            let start = order.len();
            order.extend(members);
            ranges.push((bucket, start..order.len()));
        }
        // columns[c][s]: column c of segment s.
        let mut columns: Vec<Vec<ArrayRef>> = vec![Vec::new(); schema.fields().len()];
        for segment in std::mem::take(&mut self.segments) {
            let batch = match Arc::try_unwrap(segment.rows) {
                Ok(rows) => rows.batch,
                Err(shared) => shared.batch.clone(),
            };
            for (c, column) in batch.columns().iter().enumerate().take(columns.len()) {
                columns[c].push(column.clone());
            }
        }
        let gathered = columns
            .iter_mut()
            .map(|arrays| {
                let arrays = std::mem::take(arrays);
                let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
                arrow_select::interleave::interleave(&refs, &order)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((RecordBatch::try_new(schema.clone(), gathered)?, ranges))
    }

    /// The checkpoint committing this chunk after `before` records.
    pub fn checkpoint_after(&self, before: &Checkpoint, complete: bool) -> Checkpoint {
        Checkpoint {
            position: self.end.max(before.position),
            listed: before.listed + self.listed,
            chunks: before.chunks + 1,
            complete,
            snapshot_id: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stac::batch::{arrow_schema, rows_to_batch};

    fn item(id: &str, datetime: &str, platform: Option<&str>) -> crate::stac::Item {
        let mut properties = serde_json::json!({ "datetime": datetime });
        if let Some(p) = platform {
            properties["platform"] = p.into();
        }
        let body = serde_json::json!({
            "type": "Feature", "stac_version": "1.0.0", "id": id,
            "geometry": {"type": "Point", "coordinates": [10.0, 20.0]},
            "properties": properties, "assets": {}, "links": []
        });
        crate::stac::parse_item(body.to_string().as_bytes()).expect("valid item")
    }

    /// A unit's rows: (id, datetime, platform, cell) each.
    fn unit(schema: &SchemaRef, rows: &[(&str, &str, Option<&str>, &str)]) -> Arc<UnitRows> {
        let items: Vec<_> = rows.iter().map(|r| item(r.0, r.1, r.2)).collect();
        let pairs: Vec<_> = items.iter().zip(rows).map(|(i, r)| (i, r.3)).collect();
        Arc::new(UnitRows {
            batch: rows_to_batch(schema, &pairs).expect("batch"),
            years: items.iter().map(|i| i.partition_year()).collect(),
        })
    }

    #[test]
    fn bucket_rows_hold_every_row_once_grouped_by_bucket_in_write_order() {
        let schema = arrow_schema().expect("schema");
        let (a, b) = ("8001fffffffffff", "8003fffffffffff");
        let first = unit(
            &schema,
            &[
                ("u1-0", "2021-05-01T00:00:00Z", Some("S2B"), b),
                ("u1-1", "2020-01-01T00:00:00Z", Some("S2A"), a),
                ("u1-2", "2021-01-01T00:00:00Z", None, b),
                ("u1-3", "2021-02-01T00:00:00Z", Some("S2A"), b),
            ],
        );
        let second = unit(
            &schema,
            &[
                ("u2-0", "2021-03-01T00:00:00Z", Some("S2A"), b),
                ("u2-1", "2020-06-01T00:00:00Z", Some("S2A"), a),
                ("u2-2", "2021-04-01T00:00:00Z", Some("S2B"), b),
            ],
        );
        let mut chunk = Chunk::new(0);
        // All of the first unit, the first two rows of the second (the
        // next chunk would hold the rest: its unit stays shared).
        chunk.push_rows(&first, 0, 4);
        chunk.push_rows(&second, 0, 2);
        let (rows, buckets) = chunk.take_bucket_rows(&schema).expect("gather");
        assert!(chunk.segments.is_empty(), "the chunk gives its rows up");
        assert_eq!(rows.num_rows(), 6);
        let ids = rows.column_by_name("id").expect("id").as_string::<i32>();
        let cells = rows
            .column_by_name("grid_partition")
            .expect("cells")
            .as_string::<i32>();
        let mut seen: Vec<&str> = ids.iter().flatten().collect();
        seen.sort_unstable();
        assert_eq!(seen, ["u1-0", "u1-1", "u1-2", "u1-3", "u2-0", "u2-1"]);
        let keys: Vec<(String, Option<i32>)> = buckets
            .iter()
            .map(|(k, _)| (k.cell.clone(), k.year))
            .collect();
        assert_eq!(
            keys,
            [(a.to_string(), Some(2020)), (b.to_string(), Some(2021))]
        );
        for (bucket, range) in &buckets {
            let part = rows.slice(range.start, range.len());
            assert!(
                range.clone().all(|r| cells.value(r) == bucket.cell),
                "{bucket:?}"
            );
            // Already in the order parts are written in: the writer's sort
            // finds nothing to move.
            let sorted = crate::catalog::append::sort_rows(&part).expect("sort");
            assert_eq!(sorted, part, "{bucket:?}");
        }
        // A chunk of dead letters only has no rows to gather.
        let mut letters_only = Chunk::new(6);
        let (none, no_buckets) = letters_only.take_bucket_rows(&schema).expect("empty");
        assert_eq!((none.num_rows(), no_buckets.len()), (0, 0));
        let in_b: Vec<&str> = buckets[1].1.clone().map(|r| ids.value(r)).collect();
        assert_eq!(
            in_b,
            ["u1-3", "u2-0", "u1-0", "u1-2"],
            "S2A by time, S2B, then no platform"
        );
    }
}
