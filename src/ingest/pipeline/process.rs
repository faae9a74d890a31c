//! Items processed outside a job's chunk loop: the backfill's map phase
//! hands a planned chunk of entries here and gets back what an ingest
//! would have buffered for it — Arrow rows per item and cell (with their
//! partition years) and dead letters — fetched, validated and fanned out
//! by the very same unit code.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use arrow_array::RecordBatch;
use tokio::sync::Semaphore;

use super::super::dead_letter::DeadLetter;
use super::super::fetch::Fetcher;
use super::super::inventory::Entry;
use super::super::{IngestError, IngestOptions};
use super::outage::OutageWatch;
use super::unit::{Ctx, Outcome, spawn_unit};
use crate::catalog::hash_index::KnownIds;
use crate::grid::Grid;

/// Entries per unit of work.
const UNIT_ENTRIES: usize = 256;

/// What a batch of entries became.
#[derive(Debug, Default)]
pub struct Processed {
    /// Row batches in the table's Arrow schema, each with its rows' partition years.
    pub batches: Vec<(RecordBatch, Vec<Option<i32>>)>,
    pub letters: Vec<DeadLetter>,
    /// Entries that were items (not unreadable rows).
    pub items: u64,
    pub fetched: u64,
    pub failed: u64,
    pub bytes_in: u64,
    pub rows: u64,
    pub no_geometry: u64,
    /// Items dropped because the hash index knows their id.
    pub skipped_known: u64,
    /// Items whose rows were built (staged by a map task).
    pub written: u64,
}

/// Fetches, validates and fans out entries as an ingest of `opts` would.
pub struct ItemProcessor {
    ctx: Arc<Ctx>,
}

impl ItemProcessor {
    /// A processor for `grid` whose dead letters belong to `job_id`;
    /// `known` drops items the hash index already holds (`--skip-known`).
    pub fn new(
        opts: &IngestOptions,
        grid: Grid,
        job_id: &str,
        known: Option<Arc<KnownIds>>,
    ) -> Result<Self, IngestError> {
        let fetcher = Fetcher::new(&opts.fetch, &opts.s3).map_err(IngestError::Options)?;
        let check_ids = known.is_some();
        let schema = crate::stac::batch::arrow_schema()
            .map_err(|e| crate::catalog::CatalogError::iceberg("arrow schema", e))?;
        Ok(Self {
            ctx: Arc::new(Ctx {
                fetcher,
                grid,
                known,
                check_ids,
                skipped_known: Default::default(),
                job_id: job_id.to_string(),
                permits: Arc::new(Semaphore::new(opts.concurrency.max(1))),
                sources: None,
                schema,
            }),
        })
    }

    /// Processes `entries` (all units in flight at once, fetches bounded by
    /// the concurrency), in order.
    pub async fn process(&self, entries: Vec<Entry>) -> Result<Processed, IngestError> {
        let before = self.ctx.skipped_known.load(Ordering::Relaxed);
        let units: Vec<_> = entries
            .chunks(UNIT_ENTRIES)
            .map(|part| spawn_unit(self.ctx.clone(), part.to_vec()))
            .collect();
        let mut out = Processed::default();
        let mut watch = OutageWatch::default();
        for unit in units {
            let done = unit
                .await
                .map_err(|e| IngestError::Options(format!("worker failed: {e}")))?
                .map_err(IngestError::Options)?;
            for outcome in done.outcomes {
                // A chunk of an unreachable source fails whole (not marked,
                // nothing dead-lettered): a retry redoes it.
                for (o, ()) in watch.feed(outcome, ())? {
                    count(&mut out, o);
                }
            }
            if let Some(rows) = done.rows {
                out.rows += rows.batch.num_rows() as u64;
                out.batches.push((rows.batch.clone(), rows.years.clone()));
            }
        }
        for (o, ()) in watch.release() {
            count(&mut out, o);
        }
        out.skipped_known = self.ctx.skipped_known.load(Ordering::Relaxed) - before;
        Ok(out)
    }
}

fn count(out: &mut Processed, outcome: Outcome) {
    match outcome {
        Outcome::Row {
            bytes, no_geometry, ..
        } => {
            out.items += 1;
            out.written += 1;
            out.fetched += 1;
            out.bytes_in += bytes;
            out.no_geometry += u64::from(no_geometry);
        }
        Outcome::Failed {
            letter,
            listed,
            bytes,
            ..
        } => {
            out.items += u64::from(listed);
            if bytes > 0 {
                out.fetched += 1;
                out.bytes_in += bytes;
            }
            out.failed += 1;
            out.letters.push(letter);
        }
    }
}
