//! The hash index (design.md §1): one Parquet file, default
//! `<warehouse>_id_hashes.parquet` (or the table property
//! `earthcatalog.hash_index_path`), holding the xxh3-128 (seed 42) hash of
//! every distinct item id, sorted ascending — its row count is the number of
//! distinct items, and it answers "is this id already in the catalog?"
//! without reading the table.
//!
//! The file records the table snapshot it reflects (key-value metadata, see
//! [`file`]). [`EarthCatalog::sync_hash_index`] brings the index up to the
//! current snapshot: the ids of the files that `append` snapshots added
//! since go into a small sorted *delta* file beside it ([`deltas`]: O(the
//! new ids), not a rewrite of the whole file), and the deltas are merged
//! into the main file when a threshold passes and whenever a run ends
//! ([`EarthCatalog::settle_hash_index`]), so after every completed ingest,
//! backfill commit or compaction the main file alone is exact and current.
//! `replace` snapshots — compaction — change no ids and are skipped; when
//! the index cannot be brought forward (no index, another tool's index, a
//! corrupt one, expired history, an `overwrite`) it is rebuilt from every
//! live file. Writers call it after each commit, under the catalog lock, so
//! a crash between a commit and the index update, or in the middle of a
//! merge, is repaired by the next call. Every file is written beside its
//! final name and swapped in whole.
//!
//! Readers ([`EarthCatalog::hash_index_status`], `verify`, `known_ids`) see
//! the main file and its chained deltas as one index.
//!
//! Memory is bounded whatever the index size: merging streams the old
//! index; new hashes are sorted in runs of at most
//! [`sorter::DEFAULT_RUN_HASHES`] and spilled to temporary files beyond that.

pub mod deltas;
pub mod file;
pub mod sorter;
pub mod source;
mod storage;
mod sync;
pub use sync::CommitHashes;
mod verify;

#[cfg(test)]
use std::fs::File;
use std::path::Path;

#[cfg(test)]
use file::HashWriter;

use iceberg::table::Table;
use serde::Serialize;

use super::{CatalogError, EarthCatalog};
use deltas::Deltas;
use file::{Footer, FormatError, HashReader, Reflects};
use sorter::{Collect, Count, HashStream, Merge, RunBuilder, SpillDir};
use source::{AsyncSink, DataFileRef, Since};
use storage::IndexObject;

/// Seed of the id hash (earthcatalog's).
pub const HASH_SEED: u64 = 42;

/// The index hash of an item id: xxh3-128 of its UTF-8 bytes with seed 42,
/// as a number whose big-endian bytes are Python's
/// `xxhash.xxh3_128(id.encode(), seed=42).digest()`.
pub fn id_hash(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(id.as_bytes(), HASH_SEED)
}

/// Errors maintaining or reading the hash index.
#[derive(Debug, thiserror::Error)]
pub enum HashIndexError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The existing index file cannot be trusted.
    #[error("the hash index is unusable: {0}")]
    Existing(#[source] FormatError),
    #[error("hash index {uri}: {reason}")]
    Store { uri: String, reason: String },
    #[error("{path}: {source}")]
    Local {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading ids from {path}: {reason}")]
    DataFile { path: String, reason: String },
    #[error("writing the hash index: {0}")]
    Write(String),
    #[error("the hash index path {uri} is outside the catalog at {base}")]
    Outside { uri: String, base: String },
}

impl HashIndexError {
    pub(crate) fn existing(e: FormatError) -> Self {
        HashIndexError::Existing(e)
    }

    pub(crate) fn local(path: &Path, source: std::io::Error) -> Self {
        HashIndexError::Local {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The index as the footer shows it, against the table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HashIndexStatus {
    pub uri: String,
    pub exists: bool,
    /// Distinct items (rows), when the footer is valid.
    pub rows: Option<u64>,
    /// The snapshot it reflects (None: an empty table, or not recorded).
    pub snapshot_id: Option<i64>,
    /// True when it reflects the table's current set of ids.
    pub current: bool,
    /// Why it is not current (None when it is).
    pub stale_reason: Option<String>,
    /// Why it cannot be used at all (corrupt, wrong schema…).
    pub problem: Option<String>,
}

/// What [`EarthCatalog::sync_hash_index`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyncReport {
    /// The run ledger's id, when run as a recorded job (`index rebuild`).
    pub run: Option<String>,
    /// Set when the lock was lost while a recorded rebuild ran.
    pub error: Option<String>,
    /// `current` (nothing to do), `incremental` or `full`.
    pub mode: &'static str,
    /// Why a full rebuild was needed.
    pub reason: Option<String>,
    /// Rows of the index now.
    pub rows: u64,
    /// Hashes the index did not hold before.
    pub added: u64,
    /// Data files and ids read.
    pub files_read: u64,
    pub ids_read: u64,
    pub snapshot_id: Option<i64>,
    pub seconds: f64,
}

/// What [`EarthCatalog::verify_hash_index`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub uri: String,
    /// The index exists, is well-formed and equals the table's ids.
    pub ok: bool,
    pub exists: bool,
    /// Why the file itself cannot be trusted (corrupt, unsorted, wrong schema).
    pub problem: Option<String>,
    pub index_rows: Option<u64>,
    /// Distinct ids in the table's current snapshot.
    pub table_distinct: u64,
    /// Ids in the table but not in the index, and the reverse.
    pub missing: u64,
    pub extra: u64,
    /// A few of each, as 32 hex digits (the index holds hashes, not ids).
    pub missing_examples: Vec<String>,
    pub extra_examples: Vec<String>,
    pub snapshot_id: Option<i64>,
    pub current: bool,
}

/// The ids an index holds, in memory for membership tests (16 bytes each).
#[derive(Debug, Clone, Default)]
pub struct KnownIds {
    hashes: Vec<u128>,
}

impl KnownIds {
    pub fn contains_id(&self, id: &str) -> bool {
        self.hashes.binary_search(&id_hash(id)).is_ok()
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// Where spilled runs and downloads go: a folder of their own in the
/// system's temporary directory, removed whole when the work is done (so a
/// run leaves nothing behind outside the catalog).
fn spill_parent() -> std::path::PathBuf {
    std::env::temp_dir()
}

/// Feeds file hashes into a [`RunBuilder`], spilling on a blocking thread.
struct RunSink {
    runs: Option<RunBuilder>,
}

impl AsyncSink for RunSink {
    async fn take(&mut self, hashes: Vec<u128>) -> Result<(), HashIndexError> {
        let Some(mut runs) = self.runs.take() else {
            return Err(HashIndexError::Write("run builder lost".into()));
        };
        if runs.would_spill(hashes.len()) {
            runs = tokio::task::spawn_blocking(move || runs.extend(&hashes).map(|()| runs))
                .await
                .map_err(|e| HashIndexError::Write(format!("spill task failed: {e}")))??;
        } else {
            runs.extend(&hashes)?;
        }
        self.runs = Some(runs);
        Ok(())
    }
}

/// Reads the ids of `files` into sorted runs.
async fn collect_runs(
    catalog: &EarthCatalog,
    files: Vec<DataFileRef>,
    spill: &SpillDir,
) -> Result<(RunBuilder, u64), HashIndexError> {
    let mut sink = RunSink {
        runs: Some(RunBuilder::new(spill, sorter::DEFAULT_RUN_HASHES)),
    };
    let ids = source::read_hashes(catalog.base(), files, &mut sink).await?;
    let runs = sink
        .runs
        .ok_or_else(|| HashIndexError::Write("run builder lost".into()))?;
    Ok((runs, ids))
}

impl AsyncSink for &mut RunSink {
    async fn take(&mut self, hashes: Vec<u128>) -> Result<(), HashIndexError> {
        (**self).take(hashes).await
    }
}

impl EarthCatalog {
    /// The index location: the table property `earthcatalog.hash_index_path`
    /// when set, else `<warehouse>_id_hashes.parquet`.
    pub fn hash_index_uri_of(&self, table: &Table) -> String {
        table
            .metadata()
            .properties()
            .get(super::schema::props::HASH_INDEX_PATH)
            .filter(|p| !p.trim().is_empty())
            .cloned()
            .unwrap_or_else(|| self.hash_index_uri())
    }

    fn hash_index_object(&self, table: &Table) -> Result<IndexObject, HashIndexError> {
        IndexObject::locate(self.base(), &self.hash_index_uri_of(table))
    }

    /// The main file and its deltas, as they are now.
    async fn find_index(&self, table: &Table) -> Result<Found, HashIndexError> {
        let object = self.hash_index_object(table)?;
        let main = match object.footer().await {
            Ok(f) => Ok(f),
            Err(HashIndexError::Existing(e)) => Err(e.to_string()),
            Err(e) => return Err(e),
        };
        let reflects = main
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .and_then(|f| f.reflects.as_ref());
        let deltas = deltas::list(self.base(), &object.uri, reflects).await?;
        Ok(Found {
            object,
            main,
            deltas,
        })
    }

    /// Distinct hashes of the index: the main file's row count, or — with
    /// deltas, which may repeat its hashes — counted by streaming both.
    async fn index_rows(&self, found: &Found) -> Result<u64, HashIndexError> {
        if found.deltas.chained.is_empty() {
            return Ok(found.main_rows());
        }
        let spill = SpillDir::new(&spill_parent())?;
        let (main, deltas) = found.open(&spill).await?;
        blocking("count", move || {
            let mut main = main;
            let mut count = Count::default();
            sorter::merge_into(main.as_mut(), &mut Merge::new(deltas)?, &mut count)?;
            Ok(count.0)
        })
        .await
    }

    /// The index checked against `table`: the main file's footer and its
    /// deltas' (when deltas exist, the distinct count streams the index).
    pub async fn hash_index_status(&self, table: &Table) -> HashIndexStatus {
        let mut status = HashIndexStatus {
            uri: self.hash_index_uri_of(table),
            exists: false,
            rows: None,
            snapshot_id: None,
            current: false,
            stale_reason: None,
            problem: None,
        };
        let found = match self.find_index(table).await {
            Ok(found) => found,
            Err(e) => {
                status.problem = Some(e.to_string());
                return status;
            }
        };
        let footer = match &found.main {
            Ok(None) => {
                status.stale_reason = Some("there is no index yet".into());
                return status;
            }
            Ok(Some(footer)) => footer,
            Err(e) => {
                status.exists = true;
                status.problem = Some(e.clone());
                return status;
            }
        };
        status.exists = true;
        status.snapshot_id = found.tip().and_then(|r| r.snapshot_id);
        match self.index_rows(&found).await {
            Ok(rows) => status.rows = Some(rows),
            Err(e) => {
                status.rows = Some(footer.rows);
                status.problem = Some(e.to_string());
            }
        }
        match found.since(table) {
            Since::Current => status.current = true,
            Since::Appended(ids) => {
                status.stale_reason = Some(format!(
                    "{} append snapshot(s) are not indexed yet",
                    ids.len()
                ))
            }
            Since::Unknown(why) => status.stale_reason = Some(why),
        }
        status
    }

    /// The ids the index holds (main file and deltas), for membership tests
    /// (`ingest --skip-known`). Call [`Self::sync_hash_index`] first so it
    /// is current. An empty set when there is no index.
    pub async fn known_ids(&self) -> Result<KnownIds, HashIndexError> {
        let table = self.table().await?;
        let found = self.find_index(&table).await?;
        let spill = SpillDir::new(&spill_parent())?;
        let (main, deltas) = found.open(&spill).await?;
        let Some(mut main) = main else {
            return Ok(KnownIds::default());
        };
        blocking("reader", move || {
            let mut hashes = Collect(Vec::with_capacity(main.footer().rows as usize));
            sorter::merge_into(Some(&mut main), &mut Merge::new(deltas)?, &mut hashes)?;
            Ok(KnownIds { hashes: hashes.0 })
        })
        .await
    }
}

/// The index as found: the main file and the deltas beside it.
#[derive(Debug)]
struct Found {
    object: IndexObject,
    /// The main file's footer (None: no file; Err: why it is unusable).
    main: Result<Option<Footer>, String>,
    deltas: Deltas,
}

impl Found {
    /// What the index as a whole reflects.
    fn tip(&self) -> Option<&Reflects> {
        let main = self.main.as_ref().ok().and_then(Option::as_ref)?;
        self.deltas.tip(main.reflects.as_ref())
    }

    fn main_rows(&self) -> u64 {
        self.main
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .map_or(0, |f| f.rows)
    }

    /// How the table moved since the snapshot the index reflects.
    fn since(&self, table: &Table) -> Since {
        match &self.main {
            Ok(None) => Since::Unknown("there is no index yet".into()),
            Err(e) => Since::Unknown(format!("the index is unusable: {e}")),
            Ok(Some(_)) => source::since(table, self.tip()),
        }
    }

    /// Readers of the main file (None when there is none) and of each
    /// chained delta. A delta gone since it was listed (a concurrent
    /// merge) is an error: read again.
    async fn open(
        &self,
        spill: &SpillDir,
    ) -> Result<(Option<HashReader>, Vec<Box<dyn HashStream>>), HashIndexError> {
        let main = self.object.open_reader(spill).await?;
        let mut deltas: Vec<Box<dyn HashStream>> = Vec::with_capacity(self.deltas.chained.len());
        for d in &self.deltas.chained {
            let reader =
                d.object
                    .open_reader(spill)
                    .await?
                    .ok_or_else(|| HashIndexError::Store {
                        uri: crate::store::redact_url(&d.object.uri),
                        reason: "the delta file vanished (merged meanwhile); read again".into(),
                    })?;
            deltas.push(Box::new(reader));
        }
        Ok((main, deltas))
    }
}

/// Runs blocking index work (file reads) off the async threads.
async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> Result<T, HashIndexError> + Send + 'static,
) -> Result<T, HashIndexError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| HashIndexError::Write(format!("{what} task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_hash_matches_python_xxhash() {
        // xxhash.xxh3_128(b"abc", seed=42).digest().hex() (xxhash 3.6.0)
        assert_eq!(
            format!("{:032x}", id_hash("abc")),
            "4bc24859f045e0b4d8438def21bbdcc3"
        );
        assert_eq!(
            hex(&id_hash("abc").to_be_bytes()),
            "4bc24859f045e0b4d8438def21bbdcc3"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn write(path: &Path, hashes: &[u128]) {
        let mut w = HashWriter::new(File::create(path).unwrap()).unwrap();
        for h in hashes {
            w.push(*h).unwrap();
        }
        w.finish(&Reflects {
            table_uuid: "t".into(),
            snapshot_id: Some(7),
        })
        .unwrap();
    }

    fn read_all(path: &Path) -> Vec<u128> {
        let mut r = HashReader::open(File::open(path).unwrap()).unwrap();
        let mut out = vec![];
        while let Some(h) = r.next_hash().unwrap() {
            out.push(h);
        }
        out
    }

    #[test]
    fn written_files_read_back_with_their_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("i.parquet");
        // More than one page, to cross page boundaries.
        let hashes: Vec<u128> = (0..150_000u128).map(|i| i * 3 + 1).collect();
        write(&path, &hashes);
        assert_eq!(read_all(&path), hashes);
        let r = HashReader::open(File::open(&path).unwrap()).unwrap();
        assert_eq!(r.footer().rows, 150_000);
        assert_eq!(
            r.footer().reflects,
            Some(Reflects {
                table_uuid: "t".into(),
                snapshot_id: Some(7)
            })
        );
        let empty = dir.path().join("e.parquet");
        write(&empty, &[]);
        assert!(read_all(&empty).is_empty());
    }

    #[test]
    fn merge_adds_only_new_hashes_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.parquet");
        let existing: Vec<u128> = (0..200_000u128).map(|i| i * 10).collect();
        write(&old, &existing);
        let spill = SpillDir::new(dir.path()).unwrap();
        let mut runs = RunBuilder::new(&spill, 1000);
        // Before, between, equal to and after existing hashes.
        let new: Vec<u128> = vec![5, 0, 1_999_990, 2_000_000, 15, 15, 1_000_005, 10];
        runs.extend(&new).unwrap();
        let mut reader = HashReader::open(File::open(&old).unwrap()).unwrap();
        let mut merge = Merge::new(runs.into_streams().unwrap()).unwrap();
        let out = dir.path().join("new.parquet");
        let mut w = HashWriter::new(File::create(&out).unwrap()).unwrap();
        let counts = sorter::merge_into(Some(&mut reader), &mut merge, &mut w).unwrap();
        w.finish(&Reflects {
            table_uuid: "t".into(),
            snapshot_id: None,
        })
        .unwrap();
        let mut expect = existing.clone();
        expect.extend(&new);
        sorter::sort_distinct(&mut expect);
        assert_eq!(read_all(&out), expect);
        assert_eq!(counts.added, 4, "5, 15, 1_000_005 and 2_000_000 are new");
        assert_eq!(counts.rows, expect.len() as u64);
    }

    #[test]
    fn unsorted_and_foreign_files_are_refused() {
        use arrow_array::{FixedSizeBinaryArray, Int64Array, RecordBatch};
        let dir = tempfile::tempdir().unwrap();
        let write_batch = |name: &str, batch: RecordBatch| {
            let path = dir.path().join(name);
            let mut w = parquet::arrow::ArrowWriter::try_new(
                File::create(&path).unwrap(),
                batch.schema(),
                None,
            )
            .unwrap();
            w.write(&batch).unwrap();
            w.close().unwrap();
            path
        };
        let unsorted =
            FixedSizeBinaryArray::try_from_iter([2u128, 1].iter().map(|h| h.to_be_bytes()))
                .unwrap();
        let path = write_batch(
            "unsorted.parquet",
            RecordBatch::try_from_iter([("id_hash", std::sync::Arc::new(unsorted) as _)]).unwrap(),
        );
        let mut r = HashReader::open(File::open(&path).unwrap()).unwrap();
        assert!(matches!(
            r.next_hash(),
            Err(FormatError::Unsorted { row: 1 })
        ));
        let path = write_batch(
            "schema.parquet",
            RecordBatch::try_from_iter([(
                "id_hash",
                std::sync::Arc::new(Int64Array::from(vec![1])) as _,
            )])
            .unwrap(),
        );
        assert!(matches!(
            HashReader::open(File::open(&path).unwrap()),
            Err(FormatError::Schema(_))
        ));
        let garbage = dir.path().join("garbage.parquet");
        std::fs::write(&garbage, b"not parquet at all").unwrap();
        assert!(matches!(
            HashReader::open(File::open(&garbage).unwrap()),
            Err(FormatError::Parquet(_))
        ));
    }
}
