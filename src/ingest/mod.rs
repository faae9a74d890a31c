//! The ingest engine: stream an inventory, fetch items with
//! bounded concurrency, validate, fan out to H3 cells, write GeoParquet parts
//! per (cell, year) and commit chunk by chunk, resumably.
//!
//! The engine never touches the terminal: it reports through a
//! `watch::Sender<IngestProgress>` that the TUI and the headless progress
//! bar both read, and stops when its cancel channel says so.

pub mod dead_letter;
pub mod fetch;
pub mod inventory;
pub mod job;
mod locked;
pub mod params;
mod pipeline;
pub mod progress;
pub mod url_list;

pub use crate::lock::job::{LockSettings, WAIT_POLL};
pub use fetch::{FetchOptions, Fetcher, RetryPolicy, Source};
pub use inventory::{Filter, parse_since};
pub use locked::run_locked;
pub use params::IngestParams;
pub use pipeline::outage::{OUTAGE_RUN, Outage};
pub use pipeline::process::{ItemProcessor, Processed};
pub use pipeline::run;
pub use progress::{IngestProgress, Phase};

use crate::catalog::CatalogError;
use crate::store::S3Options;

/// Errors that stop a job before or while it commits.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Inventory(#[from] inventory::InventoryError),
    #[error(transparent)]
    DeadLetters(#[from] dead_letter::DeadLetterError),
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// A run of failures said the items source itself is unreachable.
    #[error(transparent)]
    SourceUnreachable(#[from] pipeline::outage::Outage),
}

/// What the job reads.
#[derive(Debug, Clone)]
pub enum InventoryInput {
    /// An inventory file or manifest (local path, file:// or s3://).
    File(String),
    /// URL lists (`--urls`): a file or glob, the URLs in `column` (or one a line).
    Urls { lists: String, column: String },
    /// The catalog's dead letters (`--retry-dead-letters`).
    DeadLetters,
}

impl InventoryInput {
    /// Opens what lists the items (an inventory or URL lists), positioned
    /// at `start`; the dead letters are not read this way.
    pub async fn open(
        &self,
        s3: &S3Options,
        filter: Filter,
        start: inventory::Start,
    ) -> Result<inventory::Inventory, IngestError> {
        Ok(match self {
            InventoryInput::File(uri) => inventory::open(uri, s3, filter, start).await?,
            InventoryInput::Urls { lists, column } => {
                url_list::open(lists, column, s3, filter, start).await?
            }
            InventoryInput::DeadLetters => {
                return Err(IngestError::Options(
                    "the dead letters are not an inventory".into(),
                ));
            }
        })
    }
}

/// earthcatalog's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A new, empty table first (unless resuming this job); old data files stay on disk.
    Full,
    /// Append to the table.
    Delta,
    /// Delta when the table has rows, else full — the same thing for an empty table.
    Auto,
}

/// Everything a job needs besides the catalog.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub inventory: InventoryInput,
    pub filter: Filter,
    pub fetch: FetchOptions,
    pub s3: S3Options,
    /// Items per commit.
    pub chunk_size: usize,
    /// Fetches in flight.
    pub concurrency: usize,
    pub mode: Mode,
    /// `--job`: name the job instead of deriving its id from the inputs.
    pub job_name: Option<String>,
    pub target_file_size: usize,
    /// `--skip-known`: drop, before fetching, rows whose item id (the key's
    /// file name without `.stac.json`) the hash index holds; every item
    /// fetched must then have the id its file name says.
    pub skip_known: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            inventory: InventoryInput::DeadLetters,
            filter: Filter::default(),
            fetch: FetchOptions::default(),
            s3: S3Options::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
            mode: Mode::Auto,
            job_name: None,
            target_file_size: 128 * 1024 * 1024,
            skip_known: false,
        }
    }
}

/// Items per commit by default: large enough for few, fuller files; small
/// enough that a chunk's items fit comfortably in memory.
pub const DEFAULT_CHUNK_SIZE: usize = 20_000;
/// Fetches in flight by default (network sources).
pub const DEFAULT_CONCURRENCY: usize = 64;
