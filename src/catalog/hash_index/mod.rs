//! The hash index (design.md §1): one Parquet file, default
//! `<warehouse>_id_hashes.parquet` (or the table property
//! `earthcatalog.hash_index_path`), holding the xxh3-128 (seed 42) hash of
//! every distinct item id, sorted ascending — its row count is the number of
//! distinct items, and it answers "is this id already in the catalog?"
//! without reading the table.
//!
//! The file records the table snapshot it reflects (key-value metadata, see
//! [`file`]). [`EarthCatalog::sync_hash_index`] brings it up to the current
//! snapshot: the ids of the files that `append` snapshots added since are
//! merged in (`replace` snapshots — compaction — change no ids and are
//! skipped); when that is impossible (no index, another tool's index, a
//! corrupt one, expired history, an `overwrite`) it is rebuilt from every
//! live file. Writers call it after each commit, under the catalog lock, so
//! a crash between a commit and the index swap is repaired by the next call.
//! The new file is written beside the old one and swapped in whole.
//!
//! Memory is bounded whatever the index size: merging streams the old
//! index; new hashes are sorted in runs of at most
//! [`sorter::DEFAULT_RUN_HASHES`] and spilled to temporary files beyond that.

pub mod file;
pub mod sorter;
pub mod source;
mod storage;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use iceberg::table::Table;
use serde::Serialize;

use super::{CatalogError, EarthCatalog};
use file::{FormatError, HashReader, HashWriter, Reflects};
use sorter::{Merge, RunBuilder, SpillDir};
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

    /// The index's footer checked against `table` (reads only the footer).
    pub async fn hash_index_status(&self, table: &Table) -> HashIndexStatus {
        let uri = self.hash_index_uri_of(table);
        let mut status = HashIndexStatus {
            uri: uri.clone(),
            exists: false,
            rows: None,
            snapshot_id: None,
            current: false,
            stale_reason: None,
            problem: None,
        };
        let footer = match IndexObject::locate(self.base(), &uri) {
            Ok(object) => object.footer().await,
            Err(e) => Err(e),
        };
        match footer {
            Ok(None) => status.stale_reason = Some("there is no index yet".into()),
            Ok(Some(footer)) => {
                status.exists = true;
                status.rows = Some(footer.rows);
                status.snapshot_id = footer.reflects.as_ref().and_then(|r| r.snapshot_id);
                match source::since(table, footer.reflects.as_ref()) {
                    Since::Current => status.current = true,
                    Since::Appended(ids) => {
                        status.stale_reason = Some(format!(
                            "{} append snapshot(s) are not indexed yet",
                            ids.len()
                        ))
                    }
                    Since::Unknown(why) => status.stale_reason = Some(why),
                }
            }
            Err(HashIndexError::Existing(e)) => {
                status.exists = true;
                status.problem = Some(e.to_string());
            }
            Err(e) => status.problem = Some(e.to_string()),
        }
        status
    }

    /// Brings the index up to the table's current snapshot (see the module
    /// doc): nothing when it is current, a merge of the ids appended since,
    /// or a rebuild from every live file. Writes; call it holding the lock.
    pub async fn sync_hash_index(&self) -> Result<SyncReport, HashIndexError> {
        self.ensure_writable()?;
        let started = Instant::now();
        let table = self.table().await?;
        let object = self.hash_index_object(&table)?;
        let since = match object.footer().await {
            Ok(None) => Since::Unknown("there is no index yet".into()),
            Ok(Some(footer)) => source::since(&table, footer.reflects.as_ref()),
            Err(HashIndexError::Existing(e)) => {
                Since::Unknown(format!("the index is unusable: {e}"))
            }
            Err(e) => return Err(e),
        };
        let reason = match since {
            Since::Current => {
                return Ok(SyncReport {
                    run: None,
                    error: None,
                    mode: "current",
                    reason: None,
                    rows: object.footer().await?.map_or(0, |f| f.rows),
                    added: 0,
                    files_read: 0,
                    ids_read: 0,
                    snapshot_id: table.metadata().current_snapshot_id(),
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
            Since::Appended(snapshots) => {
                let files = source::files_added(&table, &snapshots).await?;
                match self.write_index(&table, &object, files, true).await {
                    Ok(report) => {
                        return Ok(SyncReport {
                            seconds: started.elapsed().as_secs_f64(),
                            ..report
                        });
                    }
                    // The old index or an appended file is gone or bad: rebuild.
                    Err(e @ (HashIndexError::Existing(_) | HashIndexError::DataFile { .. })) => {
                        format!("the incremental update failed: {e}")
                    }
                    Err(e) => return Err(e),
                }
            }
            Since::Unknown(why) => why,
        };
        tracing::warn!("hash index: rebuilding from every data file ({reason})");
        let files = source::live_files(&table).await?;
        let report = self.write_index(&table, &object, files, false).await?;
        Ok(SyncReport {
            reason: Some(reason),
            seconds: started.elapsed().as_secs_f64(),
            ..report
        })
    }

    /// Called right after every commit that adds ids: brings the index up
    /// to date. A failure is logged, never fails the commit: the index
    /// records the snapshot it reflects, so the next sync repairs it.
    pub async fn index_after_commit(&self) {
        pause_before_index().await;
        let started = Instant::now();
        let synced = self.sync_hash_index().await;
        self.commit_stats().index_micros.fetch_add(
            started.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        match synced {
            Ok(r) => tracing::debug!(
                mode = r.mode,
                rows = r.rows,
                added = r.added,
                seconds = r.seconds,
                "hash index updated"
            ),
            Err(e) => tracing::warn!(
                "hash index not updated after the commit (the next run repairs it): {e}"
            ),
        }
    }

    /// Rebuilds the index from every live data file, whatever its state.
    pub async fn rebuild_hash_index(&self) -> Result<SyncReport, HashIndexError> {
        self.ensure_writable()?;
        let started = Instant::now();
        let table = self.table().await?;
        let object = self.hash_index_object(&table)?;
        let files = source::live_files(&table).await?;
        let report = self.write_index(&table, &object, files, false).await?;
        Ok(SyncReport {
            reason: Some("asked for".into()),
            seconds: started.elapsed().as_secs_f64(),
            ..report
        })
    }

    /// Writes an empty index for the table as it is now (after `ingest
    /// --mode full` replaced it with an empty one).
    pub async fn reset_hash_index(&self) -> Result<(), HashIndexError> {
        self.ensure_writable()?;
        let table = self.table().await?;
        let object = self.hash_index_object(&table)?;
        self.write_index(&table, &object, vec![], false).await?;
        Ok(())
    }

    /// Reads the ids of `files`, merges them (with the existing index when
    /// `merge_existing`) into a new file reflecting the table's current
    /// snapshot, and swaps it in.
    async fn write_index(
        &self,
        table: &Table,
        object: &IndexObject,
        files: Vec<DataFileRef>,
        merge_existing: bool,
    ) -> Result<SyncReport, HashIndexError> {
        let spill = SpillDir::new(&spill_parent())?;
        let files_read = files.len() as u64;
        let (runs, ids_read) = collect_runs(self, files, &spill).await?;
        let existing = if merge_existing {
            Some(
                object
                    .open_reader(&spill)
                    .await?
                    .ok_or_else(|| HashIndexError::Existing(FormatError::RowGroups(0)))?,
            )
        } else {
            None
        };
        let reflects = Reflects {
            table_uuid: table.metadata().uuid().to_string(),
            snapshot_id: table.metadata().current_snapshot_id(),
        };
        let staged = object.staging_path(&spill)?;
        let path = staged.path.clone();
        let counts = tokio::task::spawn_blocking(move || {
            let mut existing = existing;
            let mut merge = Merge::new(runs.into_streams()?)?;
            let out = File::create(&path).map_err(|e| HashIndexError::local(&path, e))?;
            let mut writer = HashWriter::new(BufWriter::with_capacity(1 << 20, out))
                .map_err(|e| HashIndexError::Write(e.to_string()))?;
            let counts = sorter::merge_into(existing.as_mut(), &mut merge, &mut writer)?;
            let mut out = writer
                .finish(&reflects)
                .map_err(|e| HashIndexError::Write(e.to_string()))?;
            std::io::Write::flush(&mut out).map_err(|e| HashIndexError::local(&path, e))?;
            Ok::<_, HashIndexError>(counts)
        })
        .await
        .map_err(|e| HashIndexError::Write(format!("writer task failed: {e}")))??;
        object.install(staged).await?;
        Ok(SyncReport {
            run: None,
            error: None,
            mode: if merge_existing {
                "incremental"
            } else {
                "full"
            },
            reason: None,
            rows: counts.rows,
            added: counts.added,
            files_read,
            ids_read,
            snapshot_id: table.metadata().current_snapshot_id(),
            seconds: 0.0,
        })
    }

    /// Compares the index with the table's ids (reads both whole): the
    /// file's own checks (schema, one row group, no nulls, strictly
    /// ascending, row count), then ids missing from it and hashes it holds
    /// that the table does not. Read-only.
    pub async fn verify_hash_index(&self) -> Result<VerifyReport, HashIndexError> {
        let table = self.table().await?;
        let status = self.hash_index_status(&table).await;
        let object = self.hash_index_object(&table)?;
        let spill = SpillDir::new(&spill_parent())?;
        let files = source::live_files(&table).await?;
        let (runs, _) = collect_runs(self, files, &spill).await?;
        let reader = match object.open_reader(&spill).await {
            Ok(r) => r,
            Err(HashIndexError::Existing(e)) => {
                return Ok(self.verify_failed(&status, e.to_string()));
            }
            Err(e) => return Err(e),
        };
        let mut report = tokio::task::spawn_blocking(move || compare(runs, reader))
            .await
            .map_err(|e| HashIndexError::Write(format!("verify task failed: {e}")))??;
        report.uri = status.uri.clone();
        report.snapshot_id = status.snapshot_id;
        report.current = status.current;
        report.problem = report.problem.or(status.problem.clone());
        report.ok =
            report.exists && report.problem.is_none() && report.missing == 0 && report.extra == 0;
        Ok(report)
    }

    fn verify_failed(&self, status: &HashIndexStatus, problem: String) -> VerifyReport {
        VerifyReport {
            uri: status.uri.clone(),
            ok: false,
            exists: true,
            problem: Some(problem),
            index_rows: status.rows,
            table_distinct: 0,
            missing: 0,
            extra: 0,
            missing_examples: vec![],
            extra_examples: vec![],
            snapshot_id: status.snapshot_id,
            current: false,
        }
    }

    /// The ids the index holds, for membership tests (`ingest --skip-known`).
    /// Call [`Self::sync_hash_index`] first so it is current. An empty set
    /// when there is no index.
    pub async fn known_ids(&self) -> Result<KnownIds, HashIndexError> {
        let table = self.table().await?;
        let object = self.hash_index_object(&table)?;
        let spill = SpillDir::new(&spill_parent())?;
        let Some(mut reader) = object.open_reader(&spill).await? else {
            return Ok(KnownIds::default());
        };
        tokio::task::spawn_blocking(move || {
            let mut hashes = Vec::with_capacity(reader.footer().rows as usize);
            while let Some(block) = reader.next_block().map_err(HashIndexError::Existing)? {
                hashes.extend((0..block.len()).map(|i| block.hash(i)));
            }
            Ok(KnownIds { hashes })
        })
        .await
        .map_err(|e| HashIndexError::Write(format!("reader task failed: {e}")))?
    }
}

/// Test hook for crash tests: `ECOPS_FAULT_PAUSE_BEFORE_INDEX_MS` holds each
/// commit between the table commit and the index update, so a test can kill
/// the process exactly there. Unset in normal runs.
async fn pause_before_index() {
    static PAUSE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        std::env::var("ECOPS_FAULT_PAUSE_BEFORE_INDEX_MS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(ms) = pause {
        tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
    }
}

/// Merge-compares the table's distinct hashes (runs) with the index.
fn compare(runs: RunBuilder, reader: Option<HashReader>) -> Result<VerifyReport, HashIndexError> {
    const EXAMPLES: usize = 5;
    let mut table = Merge::new(runs.into_streams()?)?;
    let mut report = VerifyReport {
        uri: String::new(),
        ok: false,
        exists: reader.is_some(),
        problem: None,
        index_rows: reader.as_ref().map(|r| r.footer().rows),
        table_distinct: 0,
        missing: 0,
        extra: 0,
        missing_examples: vec![],
        extra_examples: vec![],
        snapshot_id: None,
        current: false,
    };
    let mut reader = reader;
    let mut next_index = |report: &mut VerifyReport| -> Option<u128> {
        let r = reader.as_mut()?;
        match r.next_hash() {
            Ok(h) => h,
            Err(e) => {
                report.problem.get_or_insert(e.to_string());
                None
            }
        }
    };
    let mut t = table.next_hash()?.map(|x| x.0);
    let mut i = next_index(&mut report);
    loop {
        let (missing, extra) = match (t, i) {
            (None, None) => break,
            (Some(a), Some(b)) if a == b => (None, None),
            (Some(a), Some(b)) if a < b => (Some(a), None),
            (Some(_), Some(b)) => (None, Some(b)),
            (Some(a), None) => (Some(a), None),
            (None, Some(b)) => (None, Some(b)),
        };
        if let Some(a) = missing {
            report.missing += 1;
            if report.missing_examples.len() < EXAMPLES {
                report.missing_examples.push(format!("{a:032x}"));
            }
        }
        if let Some(b) = extra {
            report.extra += 1;
            if report.extra_examples.len() < EXAMPLES {
                report.extra_examples.push(format!("{b:032x}"));
            }
        }
        if extra.is_none() {
            report.table_distinct += 1;
            t = table.next_hash()?.map(|x| x.0);
        }
        if missing.is_none() {
            i = next_index(&mut report);
        }
    }
    Ok(report)
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
