//! A chunk: the items and failures between two inventory positions, held
//! as slices of their units' Arrow rows until the chunk is written as one
//! part per (cell, year) bucket and committed with its checkpoint.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;

use super::super::dead_letter::DeadLetter;
use super::super::job::Checkpoint;
use super::super::progress::IngestProgress;
use super::unit::{Outcome, UnitRows};
use crate::catalog::append::Bucket;

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
    /// (segment, row) pairs, in bucket order.
    pub fn buckets(&self) -> Vec<(Bucket, Vec<(usize, usize)>)> {
        let mut keys: Vec<(&str, Option<i32>, usize, usize)> = Vec::new();
        for (s, segment) in self.segments.iter().enumerate() {
            let Some(cells) = segment
                .rows
                .batch
                .column_by_name("grid_partition")
                .and_then(|c| c.as_string_opt::<i32>())
            else {
                continue;
            };
            for r in segment.start..segment.start + segment.len {
                keys.push((cells.value(r), segment.rows.years[r], s, r));
            }
        }
        keys.sort_unstable();
        let mut out: Vec<(Bucket, Vec<(usize, usize)>)> = Vec::new();
        for (cell, year, s, r) in keys {
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

/// Gathers the rows `members` (segment, row) from the segments' batches.
pub(super) fn gather(
    batches: &[RecordBatch],
    schema: &SchemaRef,
    members: &[(usize, usize)],
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let columns = (0..schema.fields().len())
        .map(|c| {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            arrow_select::interleave::interleave(&arrays, members)
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}
