//! The ingest pipeline: inventory → fetch → parse/validate → fan out →
//! buffer per (cell, year) → write parts → commit, one chunk at a time.
//!
//! A producer task reads the inventory and spawns *units* of work (a few
//! hundred rows each: fetch, parse and fan out on the runtime's blocking
//! threads; [`unit`]). Units are awaited in inventory order, so the consumer
//! always knows the exact inventory position it has reached; every
//! `chunk_size` items it hands the chunk ([`chunk`]) to a writer task (one in
//! flight, so commits stay in order; [`flush`]) whose commit records the
//! position. Memory is bounded by the units in flight plus two chunks.
//!
//! Units turn their items into Arrow rows (one per item and cell) on the
//! blocking threads, so a chunk holds compact columnar rows, not parsed
//! JSON trees; the writer gathers each (cell, year) bucket's rows from them
//! only when it writes that bucket.
//!
//! The steps of [`run`]: open the job (its id, checkpoint and grid), open
//! what it reads ([`Reader`]), start the producer, consume units into
//! chunks, finish (the last chunk, the retried dead letters, the summary).

mod chunk;
mod flush;
pub mod outage;
pub mod process;
mod unit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::dead_letter::{self, DeadLetter};
use super::fetch::{Fetcher, Source};
use super::inventory::{self, Entry, Inventory, InventoryError, Start};
use super::job::{self, Checkpoint, JobSpec};
use super::progress::{IngestProgress, Phase, RateWindow};
use super::{IngestError, IngestOptions, InventoryInput, Mode};
use crate::catalog::EarthCatalog;
use chunk::Chunk;
use flush::{Flushed, spawn_flush};
use unit::{Ctx, UnitOut, spawn_unit};

/// What the producer hands the consumer, in order.
enum Unit {
    Work(JoinHandle<Result<UnitOut, String>>),
    Error(InventoryError),
}

/// What a job reads.
enum Reader {
    /// An inventory file or manifest, streamed.
    Inventory(Inventory),
    /// The catalog's dead letters (`--retry-dead-letters`): the entries to
    /// retry, where each one's body is, and the records they came from.
    Letters {
        entries: Vec<Entry>,
        sources: Vec<Option<Source>>,
        objects: Vec<ObjectPath>,
    },
}

/// A job ready to run: who it is and where it resumes.
struct OpenJob {
    spec: JobSpec,
    id: String,
    checkpoint: Checkpoint,
    grid: crate::grid::Grid,
    /// The ids the hash index holds (`--skip-known`).
    known: Option<Arc<crate::catalog::hash_index::KnownIds>>,
    /// The dead letters to retry (a retry run), read once.
    letters: Option<(Vec<DeadLetter>, Vec<ObjectPath>)>,
}

/// Runs an ingest job to its end (or cancellation) and returns its summary.
/// Errors before the first row is read (options, catalog, inventory
/// header) are `Err`, and nothing changed; a failure later ends the job with
/// `phase: failed` and the error in the summary, after committing what was
/// complete.
pub async fn run(
    catalog: Arc<EarthCatalog>,
    opts: IngestOptions,
    progress: watch::Sender<IngestProgress>,
    cancel: watch::Receiver<bool>,
) -> Result<IngestProgress, IngestError> {
    let started = Instant::now();
    catalog.ensure_writable()?;
    let job = open_job(&catalog, &opts).await?;
    let state = initial_state(&catalog, &job);
    if job.checkpoint.complete {
        progress.send_replace(state.clone());
        return Ok(state);
    }
    let fetcher = Fetcher::new(&opts.fetch, &opts.s3).map_err(IngestError::Options)?;
    let local = fetcher.is_local() && job.letters.is_none();
    let reader = open_reader(&opts, &job).await?;
    let ctx = Arc::new(Ctx {
        fetcher,
        grid: job.grid.clone(),
        known: job.known.clone(),
        check_ids: opts.skip_known,
        skipped_known: Default::default(),
        job_id: job.id.clone(),
        permits: Arc::new(Semaphore::new(opts.concurrency.max(1))),
        sources: match &reader {
            Reader::Letters { sources, .. } => Some(sources.clone()),
            Reader::Inventory(_) => None,
        },
        schema: crate::stac::batch::arrow_schema()
            .map_err(|e| crate::catalog::CatalogError::iceberg("arrow schema", e))?,
    });
    let commits_before = commit_counts(&catalog);
    let mut consumer = Consumer {
        catalog,
        ctx,
        opts,
        inventory: job.spec.inventory.clone(),
        chunk: Chunk::new(job.checkpoint.position),
        committed: job.checkpoint.clone(),
        writer: None,
        state,
        rate: RateWindow::new(Duration::from_secs(5)),
        started,
        counters: match &reader {
            Reader::Inventory(inv) => Some(inv.counters.clone()),
            Reader::Letters { .. } => None,
        },
        retried: None,
        commits_before,
        watch: Default::default(),
    };
    let (units, producer) = consumer.start_producer(reader, local);
    let end = consumer.consume(units, cancel, &progress).await;
    producer.abort();
    Ok(consumer.finish(end, &progress).await)
}

/// Resolves the job (its id from what it reads, or `--job`), finds its last
/// checkpoint, replaces the table in full mode, and reads the grid.
async fn open_job(catalog: &EarthCatalog, opts: &IngestOptions) -> Result<OpenJob, IngestError> {
    if let Some(name) = &opts.job_name
        && !job::valid_job_name(name)
    {
        return Err(IngestError::Options(format!(
            "--job '{name}': use letters, digits, '-', '_' and '.'"
        )));
    }
    let (spec, letters) = match JobSpec::of_input(opts) {
        Some(spec) => (spec, None),
        None => {
            let (letters, objects) = dead_letter::read_all(catalog.base(), None).await?;
            let names: Vec<String> = objects.iter().map(|o| o.to_string()).collect();
            let digest = xxhash_rust::xxh3::xxh3_64(names.join("\n").as_bytes());
            let spec = JobSpec {
                inventory: format!("dead-letters:{digest:016x}"),
                items_root: None,
                suffix: String::new(),
                since: None,
                limit: None,
                url_column: None,
            };
            (spec, Some((letters, objects)))
        }
    };
    let id = spec.job_id(opts.job_name.as_deref());
    let mut table = catalog.table().await?;
    let mut checkpoint = job::find_checkpoint(table.metadata(), &id);
    if opts.mode == Mode::Full && checkpoint.is_none() {
        tracing::warn!(
            "mode full: replacing the table with an empty one (data files stay in the warehouse)"
        );
        catalog.recreate_table().await?;
        table = catalog.table().await?;
        checkpoint = None;
    }
    let grid = catalog.load_grid(&table).await?;
    let known = known_ids(catalog, opts).await?;
    Ok(OpenJob {
        spec,
        id,
        checkpoint: checkpoint.unwrap_or_default(),
        grid,
        known,
        letters,
    })
}

/// Brings the hash index up to date and merges its deltas into the main
/// file (repairing a run that died between a commit and its index update,
/// or with deltas left) and, for `--skip-known`, reads its ids. Without
/// `--skip-known` a failed update is only a warning.
async fn known_ids(
    catalog: &EarthCatalog,
    opts: &IngestOptions,
) -> Result<Option<Arc<crate::catalog::hash_index::KnownIds>>, IngestError> {
    let index_failed = |e: crate::catalog::hash_index::HashIndexError| {
        IngestError::Options(format!("--skip-known needs the hash index: {e}"))
    };
    match catalog.settle_hash_index().await {
        Ok(_) => {}
        Err(e) if opts.skip_known => return Err(index_failed(e)),
        Err(e) => tracing::warn!("hash index not brought up to date: {e}"),
    }
    if !opts.skip_known || matches!(opts.inventory, InventoryInput::DeadLetters) {
        return Ok(None);
    }
    let known = catalog.known_ids().await.map_err(index_failed)?;
    tracing::info!("--skip-known: the hash index holds {} ids", known.len());
    Ok(Some(Arc::new(known)))
}

/// The summary a job starts from (a completed job: its final word).
fn initial_state(catalog: &EarthCatalog, job: &OpenJob) -> IngestProgress {
    let mut state = IngestProgress {
        job_id: job.id.clone(),
        phase: Phase::Running,
        dead_letters: Some(catalog.base().uri(&format!(
            "{}/{}",
            dead_letter::DEAD_LETTER_DIR,
            job.id
        ))),
        resumed_from: job.checkpoint.position,
        position: job.checkpoint.position,
        chunk: job.checkpoint.chunks + 1,
        ..Default::default()
    };
    if job.checkpoint.complete {
        state.phase = Phase::Done;
        state.complete = true;
        state.already_complete = true;
        state.snapshot_id = Some(job.checkpoint.snapshot_id);
    }
    state
}

/// Opens what the job reads, positioned after its checkpoint.
async fn open_reader(opts: &IngestOptions, job: &OpenJob) -> Result<Reader, IngestError> {
    let start = Start {
        position: job.checkpoint.position,
        listed: job.checkpoint.listed,
    };
    match (&job.letters, &opts.inventory) {
        (Some((letters, objects)), _) => {
            let (entries, sources) = retry_entries(letters.clone(), start.position);
            Ok(Reader::Letters {
                entries,
                sources,
                objects: objects.clone(),
            })
        }
        (None, input) => Ok(Reader::Inventory(
            input.open(&opts.s3, opts.filter.clone(), start).await?,
        )),
    }
}

/// Retry runs: dead letters with a fetchable URI become rows again; the
/// rest (unreadable inventory rows) are carried over as failures.
fn retry_entries(letters: Vec<DeadLetter>, start: u64) -> (Vec<Entry>, Vec<Option<Source>>) {
    let mut entries = Vec::with_capacity(letters.len());
    let mut sources = Vec::with_capacity(letters.len());
    for (i, letter) in letters.into_iter().enumerate() {
        let position = i as u64;
        let source = letter.uri.as_deref().and_then(|u| Source::parse(u).ok());
        sources.push(source.clone());
        if position < start {
            continue;
        }
        entries.push(match (&source, &letter.key) {
            (Some(_), Some(key)) => Entry::Item(inventory::InventoryRow {
                position,
                bucket: letter.bucket.clone().unwrap_or_default(),
                key: key.clone(),
                size: None,
                last_modified: None,
                // A recorded source is fetched as recorded.
                is_url: false,
            }),
            _ => Entry::BadRow {
                position,
                source_name: "dead letters".into(),
                at: letter.position + 1,
                reason: letter.reason.clone(),
            },
        });
    }
    (entries, sources)
}

/// How the consumer's loop ended.
struct LoopEnd {
    cancelled: bool,
    failure: Option<String>,
}

/// The consuming side of a job: cuts chunks from units in order, keeps one
/// writer in flight, and tracks the summary.
struct Consumer {
    catalog: Arc<EarthCatalog>,
    ctx: Arc<Ctx>,
    opts: IngestOptions,
    /// The inventory's redacted name (recorded in commit summaries).
    inventory: String,
    chunk: Chunk,
    committed: Checkpoint,
    writer: Option<JoinHandle<Result<Flushed, IngestError>>>,
    state: IngestProgress,
    rate: RateWindow,
    started: Instant,
    counters: Option<Arc<inventory::ReadCounters>>,
    /// Dead-letter records a retry run replaces once it completes.
    retried: Option<Vec<ObjectPath>>,
    /// The catalog's commit retries and settled ambiguous commits when the job began.
    commits_before: (u64, u64),
    /// Source-level failures held back until it is clear what they are.
    watch: outage::OutageWatch<Option<Arc<unit::UnitRows>>>,
}

impl Consumer {
    /// Starts the producer of units; local files get larger units and a
    /// shallower queue, network sources enough queued units that fetching
    /// never waits for one stuck behind parsing or a chunk's flush.
    fn start_producer(
        &mut self,
        reader: Reader,
        local: bool,
    ) -> (mpsc::Receiver<Unit>, JoinHandle<()>) {
        let (unit_rows, depth) = if local {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            (512, 2 * cores + 1)
        } else {
            (self.opts.concurrency.clamp(32, 256), 16)
        };
        let (tx, rx) = mpsc::channel::<Unit>(depth);
        let ctx = self.ctx.clone();
        let producer =
            match reader {
                Reader::Inventory(mut inv) => tokio::spawn(async move {
                    produce_from_inventory(&mut inv, &ctx, unit_rows, &tx).await
                }),
                Reader::Letters {
                    entries, objects, ..
                } => {
                    self.retried = Some(objects);
                    tokio::spawn(async move {
                        for part in entries.chunks(unit_rows) {
                            let unit = Unit::Work(spawn_unit(ctx.clone(), part.to_vec()));
                            if tx.send(unit).await.is_err() {
                                return;
                            }
                        }
                    })
                }
            };
        (rx, producer)
    }

    /// Consumes units in inventory order until the input ends, a stop is
    /// asked for, or something fails; full chunks go to the writer.
    async fn consume(
        &mut self,
        mut units: mpsc::Receiver<Unit>,
        mut cancel: watch::Receiver<bool>,
        progress: &watch::Sender<IngestProgress>,
    ) -> LoopEnd {
        let mut end = LoopEnd {
            cancelled: false,
            failure: None,
        };
        let mut cancel_live = true;
        let mut last_publish = Instant::now();
        loop {
            let unit = tokio::select! {
                u = units.recv() => u,
                changed = cancel.changed(), if cancel_live => {
                    match changed {
                        Err(_) => cancel_live = false, // nobody can cancel any more
                        Ok(()) if *cancel.borrow() => end.cancelled = true,
                        Ok(()) => {}
                    }
                    if end.cancelled { None } else { continue }
                }
            };
            let Some(unit) = unit else { break };
            let done = match unit {
                Unit::Work(handle) => match handle.await {
                    Ok(Ok(out)) => out,
                    Ok(Err(e)) => {
                        end.failure = Some(e);
                        break;
                    }
                    Err(e) => {
                        end.failure = Some(format!("worker failed: {e}"));
                        break;
                    }
                },
                Unit::Error(e) => {
                    end.failure = Some(e.to_string());
                    break;
                }
            };
            if let Err(e) = self.take_unit(done).await {
                end.failure = Some(e.to_string());
                break;
            }
            if last_publish.elapsed() >= Duration::from_millis(100) {
                self.publish(progress);
                last_publish = Instant::now();
            }
        }
        end
    }

    /// Adds a unit's outcomes to the chunk, handing every full chunk to the writer.
    async fn take_unit(&mut self, done: UnitOut) -> Result<(), IngestError> {
        for outcome in done.outcomes {
            for (o, rows) in self.watch.feed(outcome, done.rows.clone())? {
                self.add(o, rows.as_ref()).await?;
            }
        }
        self.read_counters();
        Ok(())
    }

    /// Adds one outcome to the chunk, handing the chunk to the writer when full.
    async fn add(
        &mut self,
        outcome: unit::Outcome,
        rows: Option<&Arc<unit::UnitRows>>,
    ) -> Result<(), IngestError> {
        self.chunk.add(outcome, rows, &mut self.state);
        if self.chunk.listed >= self.opts.chunk_size.max(1) as u64 {
            let next = self.chunk.end;
            let full = std::mem::replace(&mut self.chunk, Chunk::new(next));
            self.wait_for_writer().await?;
            self.start_writer(full, false);
            self.state.chunk += 1;
        }
        Ok(())
    }

    /// Waits for the chunk in flight to commit and counts it.
    async fn wait_for_writer(&mut self) -> Result<(), IngestError> {
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        let flushed = writer
            .await
            .map_err(|e| IngestError::Options(format!("writer task failed: {e}")))??;
        self.state.rows += flushed.rows;
        self.state.files += flushed.files;
        self.state.bytes_out += flushed.bytes;
        self.state.commits += 1;
        self.state.position = flushed.checkpoint.position;
        self.state.snapshot_id = Some(flushed.checkpoint.snapshot_id);
        self.committed = flushed.checkpoint;
        Ok(())
    }

    fn start_writer(&mut self, chunk: Chunk, complete: bool) {
        let target = chunk.checkpoint_after(&self.committed, complete);
        self.writer = Some(spawn_flush(
            self.catalog.clone(),
            self.ctx.clone(),
            self.opts.target_file_size,
            chunk,
            target,
            &self.inventory,
        ));
    }

    /// The reader's skip counters and the share of the inventory consumed.
    fn read_counters(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(c) = &self.counters else {
            return;
        };
        self.state.skipped_known = self.ctx.skipped_known.load(Relaxed);
        self.state.skipped_suffix = c.skipped_suffix.load(Relaxed);
        self.state.skipped_since = c.skipped_since.load(Relaxed);
        self.state.since_unknown = c.since_unknown.load(Relaxed);
        let total = c.bytes_total.load(Relaxed);
        if total > 0 {
            // The reader runs ahead of the items processed (by up to its
            // queue), so scale the bytes it has read by the share of its
            // rows that have been consumed.
            let read = c.bytes_read.load(Relaxed) as f64;
            let rows_read = c.rows_read.load(Relaxed);
            let consumed = if rows_read > 0 {
                (self.chunk.end as f64 / rows_read as f64).min(1.0)
            } else {
                0.0
            };
            self.state.inventory_fraction = Some((read * consumed / total as f64).min(1.0));
        }
    }

    /// Commits what remains (the last chunk; for a complete job, its end),
    /// replaces retried dead letters, and returns the final summary.
    async fn finish(
        mut self,
        end: LoopEnd,
        progress: &watch::Sender<IngestProgress>,
    ) -> IngestProgress {
        // Every item is fetched and parsed; what remains is the last chunk's write.
        self.state.fetch_seconds = Some(self.started.elapsed().as_secs_f64());
        // Rows skipped after the last unit are counted only by the reader.
        self.read_counters();
        let failure = match self.commit_rest(&end).await {
            Ok(()) => end.failure,
            Err(e) => Some(end.failure.unwrap_or_else(|| e.to_string())),
        };
        // The run's commits left index deltas: fold them into the main file.
        self.catalog.settle_index_after_job().await;
        self.state.complete = self.committed.complete;
        self.state.phase = match (&failure, end.cancelled) {
            (Some(_), _) => Phase::Failed,
            (None, true) => Phase::Cancelled,
            (None, false) => Phase::Done,
        };
        // Errors can carry store URLs: never let credentials reach the summary.
        self.state.error = failure.map(|e| crate::store::redact_secrets(&e));
        self.state.eta_seconds = None;
        self.state.peak_rss_bytes = crate::metrics::peak_rss_bytes();
        self.publish(progress);
        self.state
    }

    /// The writer in flight, then the last chunk (marking the job complete
    /// when nothing cut it short), then the dead letters a retry replaced.
    async fn commit_rest(&mut self, end: &LoopEnd) -> Result<(), IngestError> {
        let complete = !end.cancelled && end.failure.is_none();
        if complete {
            // The input ended: failures still held back were bad items.
            for (o, rows) in self.watch.release() {
                self.add(o, rows.as_ref()).await?;
            }
        }
        self.wait_for_writer().await?;
        if complete && let Some(c) = &self.counters {
            let read = c.rows_read.load(std::sync::atomic::Ordering::Relaxed);
            self.chunk.end = self.chunk.end.max(read);
        }
        if complete || !self.chunk.is_empty() {
            let last = std::mem::replace(&mut self.chunk, Chunk::new(0));
            self.start_writer(last, complete);
            self.wait_for_writer().await?;
        }
        if complete && let Some(objects) = self.retried.take() {
            // Everything retried is committed or re-recorded under this job.
            dead_letter::remove(self.catalog.base(), &objects).await?;
        }
        Ok(())
    }

    fn publish(&mut self, progress: &watch::Sender<IngestProgress>) {
        let (retries, ambiguous) = commit_counts(&self.catalog);
        self.state.commit_retries = retries - self.commits_before.0;
        self.state.ambiguous_commits = ambiguous - self.commits_before.1;
        let state = &mut self.state;
        state.seconds = self.started.elapsed().as_secs_f64();
        state.items_per_second = self.rate.observe(Instant::now(), state.items);
        if state.phase != Phase::Running && state.seconds > 0.0 {
            // The final summary reports the whole run's rate.
            state.items_per_second = state.items as f64 / state.seconds;
        }
        state.eta_seconds = match state.inventory_fraction {
            Some(f) if f > 0.0 && f < 1.0 && state.phase == Phase::Running => {
                Some(state.seconds * (1.0 - f) / f)
            }
            _ => None,
        };
        progress.send_replace(state.clone());
    }
}

/// The catalog's commit retries and settled ambiguous commits so far.
fn commit_counts(catalog: &EarthCatalog) -> (u64, u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let s = catalog.commit_stats();
    (
        s.retries.load(Relaxed),
        s.ambiguous.load(Relaxed) + catalog.sql().settled_uploads(),
    )
}

async fn produce_from_inventory(
    inv: &mut Inventory,
    ctx: &Arc<Ctx>,
    unit_rows: usize,
    tx: &mpsc::Sender<Unit>,
) {
    let mut pending: Vec<Entry> = Vec::with_capacity(unit_rows);
    while let Some(batch) = inv.next_batch().await {
        match batch {
            Ok(entries) => {
                for entry in entries {
                    if ctx.is_known(&entry) {
                        continue;
                    }
                    pending.push(entry);
                    if pending.len() >= unit_rows {
                        let unit = std::mem::replace(&mut pending, Vec::with_capacity(unit_rows));
                        if tx
                            .send(Unit::Work(spawn_unit(ctx.clone(), unit)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            Err(e) => {
                if !pending.is_empty() {
                    let unit = std::mem::take(&mut pending);
                    if tx
                        .send(Unit::Work(spawn_unit(ctx.clone(), unit)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                let _ = tx.send(Unit::Error(e)).await;
                return;
            }
        }
    }
    if !pending.is_empty() {
        let _ = tx.send(Unit::Work(spawn_unit(ctx.clone(), pending))).await;
    }
}
