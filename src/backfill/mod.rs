//! Backfill across machines: a staged ingest that an existing scheduler runs
//! by index (Slurm job arrays, Kubernetes Indexed Jobs, AWS Batch array jobs,
//! or local processes). We do not write a scheduler; `ecops backfill work`
//! and `reduce` are the workers it runs.
//!
//! Phases, each idempotent and resumable, all state in the catalog's store
//! under `<base>/_ecops/backfill/<run-id>/` (the run itself is in the run
//! ledger, so every console sees it):
//!
//! 1. **plan** ([`plan()`]): stream the inventory into fixed-size chunk
//!    objects (`chunks/c000123.jsonl`), then `plan.json`. A rerun of the
//!    same plan reuses it; the plan's chunks are the truth even if the
//!    inventory changes later.
//! 2. **map** ([`work()`]): for each chunk of task I (`c % tasks == I`):
//!    fetch, validate, fan out, and stage the rows of each reduce partition
//!    (`hash(cell, year) % partitions`) sorted by bucket
//!    (`staging/c000123/p0007-<nonce>.parquet`); then mark the chunk done
//!    with a conditional create (`map/c000123.json`, naming the staged files
//!    and each bucket's rows in them). A chunk already done is skipped; of
//!    two tasks on one chunk, one marker wins and the other's files are
//!    dropped. Failed items go to the catalog's dead letters under the run id.
//! 3. **reduce** ([`reduce()`]): for each partition of task I, merge each
//!    bucket's staged rows from all chunks — one row per id, the newest
//!    `updated`, then the latest chunk — sorted as compaction sorts, into
//!    final GeoParquet files of the target size; mark the partition done
//!    (`reduce/p0007.json`, describing the files).
//! 4. **commit** ([`commit()`]): under the catalog lock, register every final
//!    file in one append whose snapshot summary names the run (so a second
//!    commit is a no-op), then delete the staging. `full` needs an empty
//!    table (nothing is ever dropped); `delta` appends to existing data.
//!
//! The result is a compacted table: about one file per (cell, year) bucket.

pub mod commit;
pub mod layout;
pub mod map;
pub mod plan;
pub mod reduce;
pub mod schedulers;
pub mod staged;
pub mod status;
pub mod submit;

pub use commit::{CommitReport, commit};
pub use layout::Layout;
pub use map::{WorkOptions, WorkReport, work};
pub use plan::{Plan, PlanOptions, plan};
pub use reduce::{ReduceReport, reduce};
pub use status::{BackfillState, Status, status};

use crate::catalog::CatalogError;
use crate::ingest::IngestError;
use crate::runs::LedgerError;

/// Errors of a backfill phase.
#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Catalog(Box<CatalogError>),
    #[error(transparent)]
    Ingest(Box<IngestError>),
    #[error(transparent)]
    Ledger(Box<LedgerError>),
    #[error("backfill {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: object_store::Error,
    },
    #[error("backfill {uri}: {reason}")]
    Unreadable { uri: String, reason: String },
    /// A phase started before the one it needs finished; nothing was done.
    #[error("{phase} refused: {missing}")]
    NotReady {
        phase: &'static str,
        missing: String,
    },
    #[error("backfill run {run}: {reason}")]
    Refused { run: String, reason: String },
}

impl From<CatalogError> for BackfillError {
    fn from(e: CatalogError) -> Self {
        BackfillError::Catalog(Box::new(e))
    }
}

impl From<IngestError> for BackfillError {
    fn from(e: IngestError) -> Self {
        BackfillError::Ingest(Box::new(e))
    }
}

impl From<LedgerError> for BackfillError {
    fn from(e: LedgerError) -> Self {
        BackfillError::Ledger(Box::new(e))
    }
}

impl BackfillError {
    pub(crate) fn store(uri: impl Into<String>, source: object_store::Error) -> Self {
        BackfillError::Store {
            uri: uri.into(),
            source,
        }
    }
}

/// Snapshot-summary key naming the backfill run a commit registered.
pub const SUMMARY_RUN: &str = "ecops.backfill-run";
/// Snapshot-summary key with the run's chunk count.
pub const SUMMARY_CHUNKS: &str = "ecops.backfill-chunks";
