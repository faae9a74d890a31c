//! Compaction and table maintenance.
//!
//! * [`plan()`]: from metadata only, the (cell, year) buckets worth rewriting.
//! * [`run`] / [`run_locked`]: rewrite them — one row per id (newest `updated`,
//!   then latest file), sorted by (platform, datetime) — and commit Iceberg
//!   `replace` snapshots group by group through the catalog's compare-and-swap.
//! * [`maintenance`]: `expire-snapshots` and `remove-orphans`.
//!
//! The engine never touches the terminal: it reports through a
//! `watch::Sender<CompactProgress>` (the TUI's jobs pane and the headless
//! progress bar read the same snapshots) and stops when its cancel channel says so.

mod execute;
mod live;
mod locked;
pub mod maintenance;
pub mod plan;
pub mod progress;
mod replace;
mod rewrite;

pub use execute::run;
pub use live::{LiveFile, TableState};
pub use locked::run_locked;
pub use plan::{BucketPlan, Plan, plan};
pub use progress::{CompactPhase, CompactProgress};
pub use rewrite::{conform, dedupe};

use crate::catalog::CatalogError;

/// Errors that stop a compaction or maintenance run.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// The table format or content is something compaction cannot rewrite safely.
    #[error("cannot compact this table: {0}")]
    Unsupported(String),
    /// Another writer moved the table pointer first (retried by re-planning).
    #[error("concurrent commit: {0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Iceberg {
        context: String,
        #[source]
        source: Box<iceberg::Error>,
    },
    #[error("reading {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("object store {path}: {source}")]
    Store {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{0}")]
    Task(String),
}

impl CompactError {
    pub(crate) fn iceberg(context: impl Into<String>, source: iceberg::Error) -> Self {
        CompactError::Iceberg {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// What to compact and how.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// A bucket with at least this many live files is compacted (≥ 2).
    pub threshold: usize,
    /// When set, a bucket with at least two files below this size is
    /// compacted even if it has fewer than `threshold` files.
    pub small_file_bytes: Option<u64>,
    /// Roll to a new output file past this many bytes.
    pub target_file_size: usize,
    /// Commit after this many input files (one replace snapshot per group):
    /// bounds the work a crash can lose and the metadata held per commit.
    /// Raised when the run would otherwise make more than `max_commits`.
    pub group_files: usize,
    /// At most this many group commits per run (0: no cap). Each commit
    /// rewrites the manifests its group's files are listed in; when every
    /// manifest lists files of every bucket (a shuffled inventory's chunks),
    /// that is all of them, so commits × table size would grow quadratically.
    pub max_commits: usize,
    /// Buckets rewritten at once (memory ≈ this × the largest bucket).
    pub concurrency: usize,
    /// Files of one bucket read at once.
    pub read_concurrency: usize,
    /// Print the plan, change nothing.
    pub dry_run: bool,
    /// Commit attempts per group when another writer moves the table first.
    pub max_attempts: u32,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            threshold: 2,
            small_file_bytes: None,
            target_file_size: 128 * 1024 * 1024,
            group_files: DEFAULT_GROUP_FILES,
            max_commits: DEFAULT_MAX_COMMITS,
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
            read_concurrency: 4,
            dry_run: false,
            max_attempts: 5,
        }
    }
}

/// Input files per commit by default. Memory per group grows with it (the
/// removed and added files' metadata); groups touch few manifests each (see
/// the bucket order in `execute`), so small groups stay cheap to commit.
pub const DEFAULT_GROUP_FILES: usize = 2000;

/// Group commits per run at most, by default: a crash loses at most about
/// 1/16 of a run's work.
pub const DEFAULT_MAX_COMMITS: usize = 16;

/// Key of the snapshot-summary property that marks our commits.
pub const SUMMARY_OPERATION: &str = "ecops.operation";
