//! The ingest pipeline: inventory → fetch → parse/validate → fan out →
//! buffer per (cell, year) → write parts → commit, one chunk at a time.
//!
//! A producer task reads the inventory and spawns *units* of work (a few
//! hundred rows each: fetch, parse and fan out on the runtime's blocking
//! threads). Units are awaited in inventory order, so the consumer always
//! knows the exact inventory position it has reached; every `chunk_size`
//! items it hands the chunk to a writer task (one in flight, so commits stay
//! in order) whose commit records the position. Memory is bounded by the
//! units in flight plus two chunks.
//!
//! Units turn their items into Arrow rows (one per item and cell) on the
//! blocking threads, so a chunk holds compact columnar rows, not parsed
//! JSON trees; the writer gathers each (cell, year) bucket's rows from them
//! only when it writes that bucket.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::SchemaRef;
use chrono::Utc;
use iceberg::spec::DataFile;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::dead_letter::{self, DeadLetter, Stage};
use super::fetch::{Fetcher, Source};
use super::inventory::{self, Entry, Inventory, InventoryError, Start};
use super::job::{self, Checkpoint};
use super::progress::{IngestProgress, Phase, RateWindow};
use super::{IngestError, IngestOptions, InventoryInput, Mode};
use crate::catalog::EarthCatalog;
use crate::catalog::append::{Bucket, WriteOptions};
use crate::catalog::schema::NO_CELL;
use crate::stac::Item;
use crate::stac::item::parse_item;

/// Result of one inventory entry.
enum Outcome {
    /// The item's rows are `start..start + len` of its unit's [`UnitRows`].
    Row {
        position: u64,
        start: u32,
        len: u32,
        bytes: u64,
        no_geometry: bool,
    },
    Failed {
        letter: DeadLetter,
        /// The entry was an item (not an unreadable inventory row).
        listed: bool,
        /// Bytes fetched before it failed (0 if the fetch failed).
        bytes: u64,
    },
}

/// The rows a unit produced, one per (item, cell), in the table's Arrow
/// schema, with each row's partition year alongside (not a table column).
struct UnitRows {
    batch: RecordBatch,
    years: Vec<Option<i32>>,
}

/// A finished unit: one outcome per entry, in order, and their rows.
struct UnitOut {
    outcomes: Vec<Outcome>,
    rows: Option<Arc<UnitRows>>,
}

/// What the producer hands the consumer, in order.
enum Unit {
    Work(JoinHandle<Result<UnitOut, String>>),
    Error(InventoryError),
}

/// Shared by unit tasks.
struct Ctx {
    fetcher: Fetcher,
    resolution: h3o::Resolution,
    job_id: String,
    /// Caps fetches in flight (`--concurrency`).
    permits: Arc<Semaphore>,
    /// Retry runs fetch from the recorded URIs, by position.
    sources: Option<Vec<Option<Source>>>,
    /// The table's Arrow schema (rows are built in units).
    schema: SchemaRef,
}

/// Runs an ingest job to its end (or cancellation) and returns its summary.
/// Errors before the first row is read (options, catalog, inventory
/// header) are `Err`; later failures end the job with `phase: failed` and
/// the error in the summary, after committing what was complete.
pub async fn run(
    catalog: Arc<EarthCatalog>,
    opts: IngestOptions,
    progress: watch::Sender<IngestProgress>,
    mut cancel: watch::Receiver<bool>,
) -> Result<IngestProgress, IngestError> {
    let started = Instant::now();
    catalog.ensure_writable()?;
    if let Some(name) = &opts.job_name
        && !job::valid_job_name(name)
    {
        return Err(IngestError::Options(format!(
            "--job '{name}': use letters, digits, '-', '_' and '.'"
        )));
    }
    let chunk_size = opts.chunk_size.max(1);

    // What to read, and the job it makes.
    let (spec, retry) = match &opts.inventory {
        InventoryInput::File(uri) => (
            job::JobSpec {
                inventory: crate::store::redact_url(uri),
                items_root: opts.fetch.items_root.clone(),
                suffix: opts.filter.suffix.clone(),
                since: opts.filter.since.map(|d| d.to_rfc3339()),
                limit: opts.filter.limit,
            },
            None,
        ),
        InventoryInput::DeadLetters => {
            let (letters, objects) = dead_letter::read_all(catalog.base(), None).await?;
            let names: Vec<String> = objects.iter().map(|o| o.to_string()).collect();
            let digest = xxhash_rust::xxh3::xxh3_64(names.join("\n").as_bytes());
            (
                job::JobSpec {
                    inventory: format!("dead-letters:{digest:016x}"),
                    items_root: None,
                    suffix: String::new(),
                    since: None,
                    limit: None,
                },
                Some((letters, objects)),
            )
        }
    };
    let job_id = spec.job_id(opts.job_name.as_deref());
    let mut table = catalog.table().await?;
    let mut checkpoint = job::find_checkpoint(table.metadata(), &job_id);
    if opts.mode == Mode::Full && checkpoint.is_none() {
        tracing::warn!(
            "mode full: replacing the table with an empty one (data files stay in the warehouse)"
        );
        catalog.recreate_table().await?;
        table = catalog.table().await?;
        checkpoint = None;
    }
    let grid = catalog.grid(&table).await.ok_or_else(|| {
        IngestError::Options("the table records no grid and has no rows to infer it from".into())
    })?;
    let resolution = crate::grid::resolution(grid.resolution)
        .map_err(|e| IngestError::Options(e.to_string()))?;

    let mut state = IngestProgress {
        job_id: job_id.clone(),
        phase: Phase::Running,
        dead_letters: Some(
            catalog
                .base()
                .uri(&format!("{}/{job_id}", dead_letter::DEAD_LETTER_DIR)),
        ),
        ..Default::default()
    };
    let checkpoint = checkpoint.unwrap_or_default();
    state.resumed_from = checkpoint.position;
    state.position = checkpoint.position;
    if checkpoint.complete {
        state.phase = Phase::Done;
        state.complete = true;
        state.already_complete = true;
        state.snapshot_id = Some(checkpoint.snapshot_id);
        progress.send_replace(state.clone());
        return Ok(state);
    }
    let start = Start {
        position: checkpoint.position,
        listed: checkpoint.listed,
    };

    let fetcher = Fetcher::new(&opts.fetch, &opts.s3).map_err(IngestError::Options)?;
    let local = fetcher.is_local() && retry.is_none();
    let mut inventory = None;
    let mut entries_from_letters = None;
    let mut source_list = None;
    let mut retry_objects = None;
    match (retry, &opts.inventory) {
        (None, InventoryInput::File(uri)) => {
            inventory = Some(inventory::open(uri, &opts.s3, opts.filter.clone(), start).await?);
        }
        (Some((letters, objects)), _) => {
            let (entries, sources) = retry_entries(letters, start.position);
            entries_from_letters = Some(entries);
            source_list = Some(sources);
            retry_objects = Some(objects);
        }
        (None, InventoryInput::DeadLetters) => {}
    }
    let counters = inventory.as_ref().map(|i| i.counters.clone());

    let ctx = Arc::new(Ctx {
        fetcher,
        resolution,
        job_id: job_id.clone(),
        permits: Arc::new(Semaphore::new(opts.concurrency.max(1))),
        sources: source_list,
        schema: crate::stac::batch::arrow_schema()
            .map_err(|e| crate::catalog::CatalogError::iceberg("arrow schema", e))?,
    });
    let (unit_rows, depth) = if local {
        (
            512,
            2 * std::thread::available_parallelism().map_or(2, |n| n.get()) + 1,
        )
    } else {
        // Remote: enough units queued that fetching never waits for a unit
        // stuck behind parsing or a chunk's flush (their bodies are small).
        (opts.concurrency.clamp(32, 256), 16)
    };
    let (tx, mut rx) = mpsc::channel::<Unit>(depth);
    let producer = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            match (inventory.as_mut(), entries_from_letters) {
                (Some(inv), _) => produce_from_inventory(inv, &ctx, unit_rows, &tx).await,
                (None, Some(entries)) => {
                    for part in entries.chunks(unit_rows) {
                        if tx
                            .send(Unit::Work(spawn_unit(ctx.clone(), part.to_vec())))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
                (None, None) => {}
            }
        })
    };

    // Consume units in order; cut chunks; one writer in flight.
    let mut chunk = Chunk::new(checkpoint.position);
    let mut committed = checkpoint.clone();
    let mut writer: Option<JoinHandle<Result<Flushed, IngestError>>> = None;
    let mut rate = RateWindow::new(Duration::from_secs(5));
    let mut last_publish = Instant::now();
    let mut failure: Option<String> = None;
    let mut cancelled = false;
    let mut cancel_live = true;
    loop {
        let unit = tokio::select! {
            u = rx.recv() => u,
            changed = cancel.changed(), if cancel_live => {
                if changed.is_err() {
                    cancel_live = false; // nobody can cancel any more
                    continue;
                }
                if !*cancel.borrow() {
                    continue;
                }
                cancelled = true;
                None
            }
        };
        let Some(unit) = unit else { break };
        let done = match unit {
            Unit::Work(handle) => match handle.await {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => {
                    failure = Some(e);
                    break;
                }
                Err(e) => {
                    failure = Some(format!("worker failed: {e}"));
                    break;
                }
            },
            Unit::Error(e) => {
                failure = Some(e.to_string());
                break;
            }
        };
        for outcome in done.outcomes {
            chunk.add(outcome, done.rows.as_ref(), &mut state);
            if chunk.listed >= chunk_size as u64 {
                let next = chunk.end;
                let full = std::mem::replace(&mut chunk, Chunk::new(next));
                if let Some(w) = writer.take() {
                    apply(&mut state, &mut committed, w.await)?;
                }
                let target = committed_after(&committed, &full, false);
                writer = Some(spawn_flush(
                    catalog.clone(),
                    ctx.clone(),
                    &opts,
                    full,
                    target,
                    &spec.inventory,
                ));
            }
        }
        if let Some(c) = &counters {
            state.skipped_suffix = c.skipped_suffix.load(std::sync::atomic::Ordering::Relaxed);
            state.skipped_since = c.skipped_since.load(std::sync::atomic::Ordering::Relaxed);
            state.since_unknown = c.since_unknown.load(std::sync::atomic::Ordering::Relaxed);
            let total = c.bytes_total.load(std::sync::atomic::Ordering::Relaxed);
            if total > 0 {
                // The reader runs ahead of the items processed (by up to its
                // queue), so scale the bytes it has read by the share of its
                // rows that have been consumed.
                let read = c.bytes_read.load(std::sync::atomic::Ordering::Relaxed) as f64;
                let rows_read = c.rows_read.load(std::sync::atomic::Ordering::Relaxed);
                let consumed = if rows_read > 0 {
                    (chunk.end as f64 / rows_read as f64).min(1.0)
                } else {
                    0.0
                };
                state.inventory_fraction = Some((read * consumed / total as f64).min(1.0));
            }
        }
        if last_publish.elapsed() >= Duration::from_millis(100) {
            publish(&progress, &mut state, &mut rate, started);
            last_publish = Instant::now();
        }
    }
    producer.abort();
    // Every item is fetched and parsed; what remains is the last chunk's write.
    state.fetch_seconds = Some(started.elapsed().as_secs_f64());
    if let Some(c) = &counters {
        // Rows skipped after the last unit (or in an inventory without
        // items) are counted only by the reader: report them too.
        state.skipped_suffix = c.skipped_suffix.load(std::sync::atomic::Ordering::Relaxed);
        state.skipped_since = c.skipped_since.load(std::sync::atomic::Ordering::Relaxed);
        state.since_unknown = c.since_unknown.load(std::sync::atomic::Ordering::Relaxed);
    }
    if let Some(w) = writer.take() {
        apply(&mut state, &mut committed, w.await)?;
    }
    // The last chunk: everything read so far (the job is complete unless it was cut short).
    let complete = !cancelled && failure.is_none();
    let end = if complete {
        counters
            .as_ref()
            .map(|c| {
                c.rows_read
                    .load(std::sync::atomic::Ordering::Relaxed)
                    .max(chunk.end)
            })
            .unwrap_or(chunk.end)
    } else {
        chunk.end
    };
    chunk.end = end.max(chunk.end);
    if complete || !chunk.is_empty() {
        let target = committed_after(&committed, &chunk, complete);
        let flushed = spawn_flush(
            catalog.clone(),
            ctx.clone(),
            &opts,
            chunk,
            target,
            &spec.inventory,
        )
        .await;
        apply(&mut state, &mut committed, flushed)?;
    }
    if complete && let Some(objects) = retry_objects {
        // Everything retried is committed or re-recorded under this job.
        dead_letter::remove(catalog.base(), &objects).await?;
    }
    state.complete = committed.complete;
    state.phase = match (&failure, cancelled) {
        (Some(_), _) => Phase::Failed,
        (None, true) => Phase::Cancelled,
        (None, false) => Phase::Done,
    };
    // Errors can carry store URLs: never let credentials reach the summary.
    state.error = failure.map(|e| crate::store::redact_secrets(&e));
    state.eta_seconds = None;
    state.peak_rss_bytes = crate::metrics::peak_rss_bytes();
    publish(&progress, &mut state, &mut rate, started);
    Ok(state)
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

/// Fetches, parses and fans out one unit of entries.
fn spawn_unit(ctx: Arc<Ctx>, entries: Vec<Entry>) -> JoinHandle<Result<UnitOut, String>> {
    tokio::spawn(async move {
        let job_id = ctx.job_id.clone();
        let letter = move |position: u64,
                           row: Option<&inventory::InventoryRow>,
                           uri: Option<String>,
                           stage,
                           reason: String| DeadLetter {
            job_id: job_id.clone(),
            position,
            bucket: row.map(|r| r.bucket.clone()),
            key: row.map(|r| r.key.clone()),
            uri,
            stage,
            reason,
            at: Utc::now(),
        };
        // Where each entry's body is.
        let mut located: Vec<(Entry, Result<Source, String>)> = Vec::with_capacity(entries.len());
        for entry in entries {
            let source = match &entry {
                Entry::Item(row) => match ctx.sources.as_ref() {
                    Some(list) => list
                        .get(row.position as usize)
                        .cloned()
                        .flatten()
                        .ok_or_else(|| "no recorded source".to_string()),
                    None => ctx.fetcher.locate(row).map_err(|e| e.to_string()),
                },
                Entry::BadRow { reason, .. } => Err(reason.clone()),
            };
            located.push((entry, source));
        }
        let all_local = located
            .iter()
            .all(|(_, s)| s.as_ref().is_ok_and(Source::is_local) || s.is_err());
        let bodies: Vec<Option<Result<bytes::Bytes, String>>> = if all_local {
            Vec::new()
        } else {
            let fetches = located.iter().map(|(_, source)| {
                let ctx = ctx.clone();
                async move {
                    let source = source.as_ref().ok()?;
                    let _permit = ctx.permits.acquire().await.ok()?;
                    Some(ctx.fetcher.fetch(source).await.map_err(|e| e.to_string()))
                }
            });
            futures::future::join_all(fetches).await
        };
        let res = ctx.resolution;
        let schema = ctx.schema.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let mut out = Vec::with_capacity(located.len());
            let mut parsed: Vec<(Item, Vec<String>)> = Vec::new();
            let mut n_rows: u32 = 0;
            let mut bodies = bodies.into_iter();
            for (entry, source) in located {
                let fetched = if all_local {
                    match &source {
                        Ok(Source::Local(p)) => {
                            Some(super::fetch::read_file(p).map_err(|e| e.to_string()))
                        }
                        _ => None,
                    }
                } else {
                    bodies.next().flatten()
                };
                let uri = source.as_ref().ok().map(Source::uri);
                out.push(match (entry, source, fetched) {
                    (
                        Entry::BadRow {
                            position,
                            source_name,
                            at,
                            reason,
                        },
                        _,
                        _,
                    ) => Outcome::Failed {
                        letter: letter(
                            position,
                            None,
                            Some(format!("{source_name} line/row {at}")),
                            Stage::Inventory,
                            reason,
                        ),
                        listed: false,
                        bytes: 0,
                    },
                    (Entry::Item(row), Err(reason), _) => Outcome::Failed {
                        letter: letter(row.position, Some(&row), None, Stage::Fetch, reason),
                        listed: true,
                        bytes: 0,
                    },
                    (Entry::Item(row), Ok(_), None) => Outcome::Failed {
                        letter: letter(
                            row.position,
                            Some(&row),
                            uri,
                            Stage::Fetch,
                            "fetch was not attempted".into(),
                        ),
                        listed: true,
                        bytes: 0,
                    },
                    (Entry::Item(row), Ok(_), Some(Err(reason))) => Outcome::Failed {
                        letter: letter(row.position, Some(&row), uri, Stage::Fetch, reason),
                        listed: true,
                        bytes: 0,
                    },
                    (Entry::Item(row), Ok(_), Some(Ok(body))) => match parse_and_tile(&body, res) {
                        Ok((item, cells)) => {
                            let len = cells.len() as u32;
                            let start = n_rows;
                            n_rows += len;
                            let no_geometry = item.geometry.is_none();
                            parsed.push((item, cells));
                            Outcome::Row {
                                position: row.position,
                                start,
                                len,
                                bytes: body.len() as u64,
                                no_geometry,
                            }
                        }
                        Err((stage, reason)) => Outcome::Failed {
                            letter: letter(row.position, Some(&row), uri, stage, reason),
                            listed: true,
                            bytes: body.len() as u64,
                        },
                    },
                });
            }
            let rows = unit_rows(&schema, &parsed)?;
            Ok(UnitOut {
                outcomes: out,
                rows,
            })
        });
        handle
            .await
            .map_err(|e| format!("parse task failed: {e}"))?
    })
}

/// The Arrow rows of a unit's parsed items (None when there are none).
fn unit_rows(
    schema: &SchemaRef,
    parsed: &[(Item, Vec<String>)],
) -> Result<Option<Arc<UnitRows>>, String> {
    if parsed.is_empty() {
        return Ok(None);
    }
    let pairs: Vec<(&Item, &str)> = parsed
        .iter()
        .flat_map(|(item, cells)| cells.iter().map(move |c| (item, c.as_str())))
        .collect();
    let years = parsed
        .iter()
        .flat_map(|(item, cells)| std::iter::repeat_n(item.partition_year(), cells.len()))
        .collect();
    let batch = crate::stac::batch::rows_to_batch(schema, &pairs)
        .map_err(|e| format!("building Arrow rows: {e}"))?;
    // Builders grow by doubling; a chunk holds these rows until its commit,
    // so give the slack back (about a quarter of the chunk's memory).
    let (schema, mut columns, _) = batch.into_parts();
    for column in &mut columns {
        if let Some(array) = Arc::get_mut(column) {
            array.shrink_to_fit();
        }
    }
    let batch =
        RecordBatch::try_new(schema, columns).map_err(|e| format!("building Arrow rows: {e}"))?;
    Ok(Some(Arc::new(UnitRows { batch, years })))
}

/// Parses an item body and computes its cells (`__none__` without geometry).
fn parse_and_tile(
    body: &[u8],
    res: h3o::Resolution,
) -> Result<(Item, Vec<String>), (Stage, String)> {
    let item = parse_item(body).map_err(|e| (Stage::Parse, e.to_string()))?;
    let cells = match &item.geometry {
        None => vec![NO_CELL.to_string()],
        Some(g) => {
            let cells = crate::grid::cells_for(g, res).map_err(|e| (Stage::Grid, e.to_string()))?;
            if cells.is_empty() {
                return Err((Stage::Grid, "geometry covers no H3 cell".into()));
            }
            cells.iter().map(ToString::to_string).collect()
        }
    };
    Ok((item, cells))
}

/// Contiguous rows of one unit that belong to a chunk.
struct Segment {
    rows: Arc<UnitRows>,
    start: usize,
    len: usize,
}

/// Items and failures between two inventory positions.
struct Chunk {
    first: u64,
    /// Position after the last entry added.
    end: u64,
    segments: Vec<Segment>,
    letters: Vec<DeadLetter>,
    /// Inventory items (not bad rows) in the chunk.
    listed: u64,
}

impl Chunk {
    fn new(first: u64) -> Self {
        Self {
            first,
            end: first,
            segments: Vec::new(),
            letters: Vec::new(),
            listed: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.letters.is_empty()
    }

    fn add(&mut self, outcome: Outcome, rows: Option<&Arc<UnitRows>>, state: &mut IngestProgress) {
        match outcome {
            Outcome::Row {
                position,
                start,
                len,
                bytes,
                no_geometry,
            } => {
                self.end = position + 1;
                self.listed += 1;
                state.items += 1;
                state.fetched += 1;
                state.bytes_in += bytes;
                state.rows_built += u64::from(len);
                if no_geometry {
                    state.no_geometry += 1;
                }
                if let Some(rows) = rows {
                    self.push_rows(rows, start as usize, len as usize);
                }
            }
            Outcome::Failed {
                letter,
                listed,
                bytes,
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
}

impl Chunk {
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
    fn buckets(&self) -> Vec<(Bucket, Vec<(usize, usize)>)> {
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
}

/// Gathers the rows `members` (segment, row) from the segments' batches.
fn gather(
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

/// The checkpoint a chunk's commit records.
fn committed_after(before: &Checkpoint, chunk: &Chunk, complete: bool) -> Checkpoint {
    Checkpoint {
        position: chunk.end.max(before.position),
        listed: before.listed + chunk.listed,
        chunks: before.chunks + 1,
        complete,
        snapshot_id: 0,
    }
}

/// What a flushed chunk wrote.
struct Flushed {
    checkpoint: Checkpoint,
    rows: u64,
    files: u64,
    bytes: u64,
}

fn spawn_flush(
    catalog: Arc<EarthCatalog>,
    ctx: Arc<Ctx>,
    opts: &IngestOptions,
    chunk: Chunk,
    target: Checkpoint,
    inventory: &str,
) -> JoinHandle<Result<Flushed, IngestError>> {
    let write = WriteOptions {
        target_file_size: opts.target_file_size,
        tag: format!("{}-c{:06}", short_tag(&ctx.job_id), target.chunks),
    };
    let inventory = inventory.to_string();
    tokio::spawn(async move { flush(catalog, ctx, write, chunk, target, inventory).await })
}

/// A file-name-safe short form of the job id.
fn short_tag(job_id: &str) -> String {
    format!(
        "{:08x}",
        xxhash_rust::xxh3::xxh3_64(job_id.as_bytes()) as u32
    )
}

/// Writes a chunk's buckets and dead letters, then commits it with its checkpoint.
async fn flush(
    catalog: Arc<EarthCatalog>,
    ctx: Arc<Ctx>,
    write: WriteOptions,
    chunk: Chunk,
    mut target: Checkpoint,
    inventory: String,
) -> Result<Flushed, IngestError> {
    use futures::StreamExt;
    let table = catalog.table().await?;
    let buckets = chunk.buckets();
    let batches: Arc<Vec<RecordBatch>> = Arc::new(
        chunk
            .segments
            .iter()
            .map(|s| s.rows.batch.clone())
            .collect(),
    );
    drop(chunk.segments);
    let tasks = buckets.into_iter().map(|(bucket, members)| {
        let (catalog, table, batches, schema, write) = (
            catalog.clone(),
            table.clone(),
            batches.clone(),
            ctx.schema.clone(),
            write.clone(),
        );
        tokio::spawn(async move {
            let batch = gather(&batches, &schema, &members).map_err(|e| {
                crate::catalog::CatalogError::Invalid(format!("bucket {}: {e}", bucket.dir()))
            })?;
            drop(batches);
            catalog
                .write_bucket(&table, &bucket, &[batch], &write)
                .await
        })
    });
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut written = futures::stream::iter(tasks).buffer_unordered(parallel);
    let mut files: Vec<DataFile> = Vec::new();
    while let Some(result) = written.next().await {
        let part =
            result.map_err(|e| IngestError::Options(format!("writer task failed: {e}")))??;
        files.extend(part);
    }
    drop(written);
    dead_letter::write(
        catalog.base(),
        &ctx.job_id,
        chunk.first,
        target.position,
        &chunk.letters,
    )
    .await?;
    let flushed_rows = files.iter().map(|f| f.record_count()).sum();
    let bytes = files.iter().map(|f| f.file_size_in_bytes()).sum();
    let n_files = files.len() as u64;
    pause_before_commit().await;
    let summary = job::chunk_summary(&ctx.job_id, &inventory, &target);
    let table = catalog.commit_append(files, summary).await?;
    target.snapshot_id = table.metadata().current_snapshot_id().unwrap_or_default();
    Ok(Flushed {
        checkpoint: target,
        rows: flushed_rows,
        files: n_files,
        bytes,
    })
}

fn apply(
    state: &mut IngestProgress,
    committed: &mut Checkpoint,
    joined: Result<Result<Flushed, IngestError>, tokio::task::JoinError>,
) -> Result<(), IngestError> {
    let flushed =
        joined.map_err(|e| IngestError::Options(format!("writer task failed: {e}")))??;
    state.rows += flushed.rows;
    state.files += flushed.files;
    state.bytes_out += flushed.bytes;
    state.commits += 1;
    state.position = flushed.checkpoint.position;
    state.snapshot_id = Some(flushed.checkpoint.snapshot_id);
    *committed = flushed.checkpoint;
    Ok(())
}

fn publish(
    progress: &watch::Sender<IngestProgress>,
    state: &mut IngestProgress,
    rate: &mut RateWindow,
    started: Instant,
) {
    state.seconds = started.elapsed().as_secs_f64();
    state.items_per_second = rate.observe(Instant::now(), state.items);
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

/// Test hook for crash tests: `ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS` holds each
/// chunk between writing its files and committing them, so a test can kill
/// the process exactly there. Unset in normal runs.
async fn pause_before_commit() {
    static PAUSE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        std::env::var("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(ms) = pause {
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
}
