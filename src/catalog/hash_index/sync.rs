//! Writing the index: a delta per commit, a merge into the main file when
//! a run ends or a threshold passes, a rebuild when nothing else can work.

use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use iceberg::table::Table;

use super::deltas;
use super::file::{DeltaOf, FormatError, HashWriter, Reflects};
use super::sorter::{self, HashStream, Merge, MergeCounts, RunBuilder, SpillDir};
use super::source::{self, DataFileRef, Since};
use super::storage::IndexObject;
use super::{Found, HashIndexError, SyncReport, collect_runs, spill_parent};
use crate::catalog::EarthCatalog;

/// The hashes of every id a commit's files hold (repeats allowed), and
/// the commit's snapshot.
#[derive(Debug, Clone)]
pub struct CommitHashes {
    pub snapshot_id: i64,
    pub hashes: Vec<u128>,
}

/// An incremental update's error: `Ok(why)` when a rebuild can fix it
/// (the old index or an appended file is gone or bad), else the error.
fn rebuild_on(e: HashIndexError) -> Result<String, HashIndexError> {
    match e {
        e @ (HashIndexError::Existing(_) | HashIndexError::DataFile { .. }) => {
            Ok(format!("the incremental update failed: {e}"))
        }
        e => Err(e),
    }
}

/// How far a sync folds new ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    /// Into a new delta, unless a threshold says merge
    /// ([`deltas::Deltas::merge_due`]).
    Delta,
    /// Into the main file, with every delta: afterwards it alone is the index.
    Main,
}

impl SyncReport {
    fn current(rows: u64, snapshot_id: Option<i64>) -> Self {
        SyncReport {
            run: None,
            error: None,
            mode: "current",
            reason: None,
            rows,
            added: 0,
            files_read: 0,
            ids_read: 0,
            snapshot_id,
            seconds: 0.0,
        }
    }
}

impl EarthCatalog {
    /// Brings the index up to the table's current snapshot (see the module
    /// doc): nothing when it is current; else the ids appended since go to
    /// a new delta file — or, past a threshold, are merged into the main
    /// file with every delta; or, when the index cannot be brought forward,
    /// it is rebuilt from every live file. Writes; call it holding the lock.
    pub async fn sync_hash_index(&self) -> Result<SyncReport, HashIndexError> {
        self.sync_index(Fold::Delta, None).await
    }

    /// [`Self::sync_hash_index`], then the deltas merged into the main file,
    /// so the main file alone is exact and current (what other tools read).
    /// Called when an ingest run starts and ends, after a backfill commit
    /// and after compaction. Writes; call it holding the lock.
    pub async fn settle_hash_index(&self) -> Result<SyncReport, HashIndexError> {
        self.sync_index(Fold::Main, None).await
    }

    /// [`Self::settle_hash_index`] for the end of a job: a failure is
    /// logged, never fails the job (the next sync repairs it).
    pub async fn settle_index_after_job(&self) {
        match self.settle_hash_index().await {
            Ok(r) => tracing::debug!(mode = r.mode, rows = r.rows, "hash index settled"),
            Err(e) => tracing::warn!("hash index not merged (the next run repairs it): {e}"),
        }
    }

    /// `given`: a commit's snapshot and the hashes of every id its files
    /// hold, used instead of reading those files back when that snapshot is
    /// the only one the index lacks.
    async fn sync_index(
        &self,
        fold: Fold,
        given: Option<&CommitHashes>,
    ) -> Result<SyncReport, HashIndexError> {
        self.ensure_writable()?;
        let started = Instant::now();
        let table = self.table().await?;
        let found = self.find_index(&table).await?;
        let reason = match found.since(&table) {
            Since::Current if fold == Fold::Delta || found.deltas.chained.is_empty() => {
                if let Err(e) = found.deltas.remove_stale().await {
                    tracing::warn!("hash index: stale delta files not removed: {e}");
                }
                let rows = self.index_rows(&found).await?;
                let snapshot = table.metadata().current_snapshot_id();
                return Ok(SyncReport {
                    seconds: started.elapsed().as_secs_f64(),
                    ..SyncReport::current(rows, snapshot)
                });
            }
            Since::Current => self.fold_in(&table, &found, vec![], fold).await,
            Since::Appended(snapshots) => match given {
                Some(g) if snapshots == [g.snapshot_id] => {
                    self.fold_in_hashes(&table, &found, &g.hashes, fold).await
                }
                _ => {
                    let files = source::files_added(&table, &snapshots).await?;
                    self.fold_in(&table, &found, files, fold).await
                }
            },
            Since::Unknown(why) => Err(Ok(why)),
        };
        let reason = match reason {
            Ok(report) => {
                return Ok(SyncReport {
                    seconds: started.elapsed().as_secs_f64(),
                    ..report
                });
            }
            Err(reason) => reason?,
        };
        tracing::warn!("hash index: rebuilding from every data file ({reason})");
        let files = source::live_files(&table).await?;
        let report = self.write_main(&table, &found, files).await?;
        Ok(SyncReport {
            reason: Some(reason),
            seconds: started.elapsed().as_secs_f64(),
            ..report
        })
    }

    /// Adds the ids of `files` to the index incrementally. `Err(Ok(why))`:
    /// it could not (the old index or an appended file is gone or bad), rebuild.
    async fn fold_in(
        &self,
        table: &Table,
        found: &Found,
        files: Vec<DataFileRef>,
        fold: Fold,
    ) -> Result<SyncReport, Result<String, HashIndexError>> {
        let spill = SpillDir::new(&spill_parent()).map_err(Err)?;
        let files_read = files.len() as u64;
        let (runs, ids_read) = collect_runs(self, files, &spill)
            .await
            .map_err(rebuild_on)?;
        let report = self.fold_runs(table, found, runs, &spill, fold).await?;
        Ok(SyncReport {
            files_read,
            ids_read,
            ..report
        })
    }

    /// [`Self::fold_in`] for ids the caller already hashed (no file read).
    async fn fold_in_hashes(
        &self,
        table: &Table,
        found: &Found,
        hashes: &[u128],
        fold: Fold,
    ) -> Result<SyncReport, Result<String, HashIndexError>> {
        let spill = SpillDir::new(&spill_parent()).map_err(Err)?;
        let mut runs = RunBuilder::new(&spill, sorter::DEFAULT_RUN_HASHES);
        runs.extend(hashes).map_err(Err)?;
        let report = self.fold_runs(table, found, runs, &spill, fold).await?;
        Ok(SyncReport {
            ids_read: hashes.len() as u64,
            ..report
        })
    }

    /// Writes `runs` as a new delta, or merges them with every delta into
    /// the main file when `fold` or a threshold says so.
    async fn fold_runs(
        &self,
        table: &Table,
        found: &Found,
        runs: RunBuilder,
        spill: &SpillDir,
        fold: Fold,
    ) -> Result<SyncReport, Result<String, HashIndexError>> {
        let as_delta = fold == Fold::Delta
            && !found.deltas.merge_due(found.main_rows(), runs.pushed())
            && found.tip().is_some();
        let report = if as_delta {
            self.write_delta(table, found, runs, spill).await
        } else {
            self.merge_main(table, found, runs, spill).await
        };
        report.map_err(rebuild_on)
    }

    /// Called right after every commit that adds ids: brings the index up
    /// to date — from `given` (the commit's own hashes) when the index
    /// lacks only that commit, else from the table. A failure is logged,
    /// never fails the commit: the index records the snapshot it reflects,
    /// so the next sync repairs it.
    pub async fn index_after_commit(&self, given: Option<&CommitHashes>) {
        pause_before_index().await;
        let started = Instant::now();
        let synced = self.sync_index(Fold::Delta, given).await;
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
        let found = self.find_index(&table).await?;
        let files = source::live_files(&table).await?;
        let report = self.write_main(&table, &found, files).await?;
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
        let found = self.find_index(&table).await?;
        self.write_main(&table, &found, vec![]).await?;
        Ok(())
    }

    /// Writes the main file from the ids of `files` alone (a rebuild) and
    /// removes every delta.
    async fn write_main(
        &self,
        table: &Table,
        found: &Found,
        files: Vec<DataFileRef>,
    ) -> Result<SyncReport, HashIndexError> {
        let spill = SpillDir::new(&spill_parent())?;
        let files_read = files.len() as u64;
        let (runs, ids_read) = collect_runs(self, files, &spill).await?;
        let report = install_main(table, found, None, vec![], runs, &spill).await?;
        Ok(SyncReport {
            files_read,
            ids_read,
            ..report
        })
    }

    /// Writes a new main file — the old one, every chained delta and `runs`
    /// — reflecting the table's current snapshot, swaps it in, then removes
    /// the deltas (a crash before that leaves them stale, see [`deltas`]).
    async fn merge_main(
        &self,
        table: &Table,
        found: &Found,
        runs: RunBuilder,
        spill: &SpillDir,
    ) -> Result<SyncReport, HashIndexError> {
        let (main, delta_streams) = found.open(spill).await?;
        let main = main.ok_or(HashIndexError::Existing(FormatError::RowGroups(0)))?;
        install_main(table, found, Some(main), delta_streams, runs, spill).await
    }

    /// Writes `runs` as the next delta (extending the index's tip, which
    /// must exist), then removes stale deltas.
    async fn write_delta(
        &self,
        table: &Table,
        found: &Found,
        runs: RunBuilder,
        spill: &SpillDir,
    ) -> Result<SyncReport, HashIndexError> {
        let of = DeltaOf {
            base_snapshot_id: found.tip().and_then(|t| t.snapshot_id),
        };
        let uri = deltas::delta_uri(&found.deltas.dir, found.deltas.next_seq);
        let object = IndexObject::locate(self.base(), &uri)?;
        let counts = write_file(&object, table, None, vec![], runs, spill, Some(of)).await?;
        if let Err(e) = found.deltas.remove_stale().await {
            tracing::warn!("hash index: stale delta files not removed: {e}");
        }
        Ok(report("incremental", table, counts))
    }
}

/// Writes the main file of `found` from `main` (the old one, streamed),
/// `deltas` and `runs`, and removes every delta once it is in place.
async fn install_main(
    table: &Table,
    found: &Found,
    main: Option<super::file::HashReader>,
    deltas: Vec<Box<dyn HashStream>>,
    runs: RunBuilder,
    spill: &SpillDir,
) -> Result<SyncReport, HashIndexError> {
    let mode = if main.is_some() {
        "incremental"
    } else {
        "full"
    };
    let counts = write_file(&found.object, table, main, deltas, runs, spill, None).await?;
    // The new main file holds what the deltas held: they are stale now.
    if let Err(e) = found.deltas.remove_all().await {
        tracing::warn!("hash index: merged delta files not removed (the next sync does): {e}");
    }
    Ok(report(mode, table, counts))
}

fn report(mode: &'static str, table: &Table, counts: MergeCounts) -> SyncReport {
    SyncReport {
        mode,
        rows: counts.rows,
        added: counts.added,
        snapshot_id: table.metadata().current_snapshot_id(),
        ..SyncReport::current(0, None)
    }
}

/// Merges `main` (block-copied), `streams` and `runs` into a new file
/// reflecting the table's current snapshot (a delta extending `delta_of`
/// when set), and installs it as `object`.
async fn write_file(
    object: &IndexObject,
    table: &Table,
    main: Option<super::file::HashReader>,
    mut streams: Vec<Box<dyn HashStream>>,
    runs: RunBuilder,
    spill: &SpillDir,
    delta_of: Option<DeltaOf>,
) -> Result<MergeCounts, HashIndexError> {
    let reflects = Reflects {
        table_uuid: table.metadata().uuid().to_string(),
        snapshot_id: table.metadata().current_snapshot_id(),
    };
    let staged = object.staging_path(spill)?;
    let path = staged.path.clone();
    let counts = tokio::task::spawn_blocking(move || {
        let mut main = main;
        streams.extend(runs.into_streams()?);
        let mut merge = Merge::new(streams)?;
        let out = File::create(&path).map_err(|e| HashIndexError::local(&path, e))?;
        let mut writer = HashWriter::new(BufWriter::with_capacity(1 << 20, out))
            .map_err(|e| HashIndexError::Write(e.to_string()))?;
        let counts = sorter::merge_into(main.as_mut(), &mut merge, &mut writer)?;
        let finished = match &delta_of {
            Some(of) => writer.finish_delta(&reflects, of),
            None => writer.finish(&reflects),
        };
        let mut out = finished.map_err(|e| HashIndexError::Write(e.to_string()))?;
        std::io::Write::flush(&mut out).map_err(|e| HashIndexError::local(&path, e))?;
        Ok::<_, HashIndexError>(counts)
    })
    .await
    .map_err(|e| HashIndexError::Write(format!("writer task failed: {e}")))??;
    object.install(staged).await?;
    Ok(counts)
}

/// Test hook for crash tests: `ECOPS_FAULT_PAUSE_BEFORE_INDEX_MS` holds each
/// commit between the table commit and the index update, so a test can kill
/// the process exactly there; with `ECOPS_FAULT_PAUSE_BEFORE_INDEX_SKIP=n`
/// the first `n` updates of the process run without the pause (so deltas
/// exist when it is killed). Unset in normal runs.
async fn pause_before_index() {
    static PAUSE: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();
    static SEEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let pause = PAUSE.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
        var("ECOPS_FAULT_PAUSE_BEFORE_INDEX_MS")
            .map(|ms| (ms, var("ECOPS_FAULT_PAUSE_BEFORE_INDEX_SKIP").unwrap_or(0)))
    });
    if let Some((ms, skip)) = pause
        && SEEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= *skip
    {
        tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
    }
}
