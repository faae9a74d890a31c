//! Phase 2, map (`ecops backfill work`): the chunks of task I — fetch,
//! validate, fan out exactly as ingest does, stage the rows of each reduce
//! partition sorted by bucket, and mark the chunk done with a conditional
//! create. A stop (Ctrl-C, SIGTERM from `scancel` or a spot reclaim, an
//! operator's cancel) lets the chunk in flight finish within a grace period,
//! else abandons it cleanly: nothing of it is marked, so a retry redoes it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use bytes::Bytes;
use chrono::Utc;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use tokio::sync::watch;

use super::BackfillError;
use super::layout::{
    BucketRange, ChunkEntry, Layout, MapFailure, MapMarker, Staged, owned, partition_of,
};
use super::plan::{PlanOptions, entry_of};
use crate::catalog::EarthCatalog;
use crate::ingest::{ItemProcessor, Processed, dead_letter};
use crate::runs::{
    Activity, Counters, JobError, JobProgress, JobSummary, LedgerOptions, RunKind, RunSpec,
    RunState, RunTarget, Stop,
};

/// Which chunks to map.
#[derive(Debug, Clone)]
pub struct WorkOptions {
    /// The run (default: the catalog's newest unfinished backfill).
    pub run: Option<String>,
    /// This task's index.
    pub task: u32,
    /// How many tasks share the chunks (default: as planned).
    pub tasks: Option<u32>,
    pub ledger: Option<LedgerOptions>,
    /// After a stop, how long the chunk in flight may take to finish.
    pub grace: Duration,
}

/// What a map task did (`ecops backfill work --json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkReport {
    pub run: String,
    pub task: u32,
    pub tasks: u32,
    /// Chunks this task owns.
    pub chunks: u64,
    /// Mapped here now.
    pub mapped: u64,
    /// Already done before (by this task or another).
    pub skipped: u64,
    /// Done by another task while this one worked on it; its result was dropped.
    pub lost: u64,
    /// Chunks that failed (recorded; a retry redoes them).
    pub failed_chunks: u64,
    pub items: u64,
    pub fetched: u64,
    pub failed_items: u64,
    pub rows: u64,
    pub staged_files: u64,
    pub staged_bytes: u64,
    pub seconds: f64,
    /// Stopped before its last chunk (the rest is for a retry).
    pub stopped: bool,
    pub errors: Vec<String>,
    #[serde(skip)]
    pub chunk_in_flight: Option<u64>,
}

/// Maps the chunks of task `opts.task`, recorded as a worker of the run.
pub async fn work(
    catalog: &EarthCatalog,
    opts: &WorkOptions,
    stop: &Stop,
) -> Result<WorkReport, JobError> {
    catalog.ensure_writable().map_err(JobError::refused)?;
    let job = MapJob::open(catalog, opts).await?;
    let (progress_tx, progress) = watch::channel(WorkReport {
        run: job.layout.run().to_string(),
        task: job.task,
        tasks: job.tasks,
        ..WorkReport::default()
    });
    let spec = RunSpec {
        kind: RunKind::Backfill,
        inputs: serde_json::Value::Null,
        ledger: opts.ledger,
        target: RunTarget::Join(job.layout.run().to_string()),
    };
    crate::runs::track(catalog.base(), spec, progress, stop, async {
        Ok(job.run(catalog, progress_tx, stop, opts.grace).await)
    })
    .await
}

/// A map task ready to run.
struct MapJob {
    layout: Arc<Layout>,
    task: u32,
    tasks: u32,
    chunks: u64,
    partitions: u32,
    processor: ItemProcessor,
    worker: String,
    engine_task: String,
}

impl MapJob {
    async fn open(catalog: &EarthCatalog, opts: &WorkOptions) -> Result<Self, JobError> {
        let run = super::status::resolve_run(catalog, opts.run.as_deref()).await?;
        let layout = Arc::new(Layout::new(catalog.base(), &run.id));
        let plan = super::status::read_plan(&layout).await?;
        let tasks = opts.tasks.unwrap_or(plan.tasks).max(1);
        if opts.task >= tasks {
            return Err(JobError::refused(format!(
                "task {} of {tasks}: tasks are numbered 0 to {}",
                opts.task,
                tasks - 1
            )));
        }
        let planned: PlanOptions =
            serde_json::from_value(run.inputs.clone()).map_err(JobError::refused)?;
        let ingest = planned
            .params
            .build(catalog.s3())
            .map_err(JobError::refused)?;
        let table = catalog.table().await.map_err(JobError::failed)?;
        let grid = catalog.load_grid(&table).await.map_err(JobError::failed)?;
        let known = if ingest.skip_known {
            Some(Arc::new(
                catalog.known_ids().await.map_err(JobError::failed)?,
            ))
        } else {
            None
        };
        let processor =
            ItemProcessor::new(&ingest, grid, &run.id, known).map_err(JobError::refused)?;
        let me = crate::runs::record::Actor::me();
        let engine_task = crate::runs::record::engine_task();
        Ok(Self {
            worker: crate::runs::record::worker_name(&engine_task, &me),
            engine_task,
            layout,
            task: opts.task,
            tasks,
            chunks: plan.chunks,
            partitions: plan.partitions,
            processor,
        })
    }

    /// Maps every owned chunk not yet done, until a stop.
    async fn run(
        &self,
        catalog: &EarthCatalog,
        progress: watch::Sender<WorkReport>,
        stop: &Stop,
        grace: Duration,
    ) -> WorkReport {
        let started = Instant::now();
        let mut report = progress.borrow().clone();
        let mapped = self.layout.mapped().await.unwrap_or_default();
        for c in owned(self.chunks, self.task, self.tasks) {
            report.chunks += 1;
            if mapped.contains(&c) {
                report.skipped += 1;
                continue;
            }
            if *stop.receiver().borrow() {
                report.stopped = true;
                break;
            }
            report.chunk_in_flight = Some(c);
            progress.send_replace(report.clone());
            match self.chunk_within_grace(catalog, c, stop, grace).await {
                None => {
                    tracing::warn!("chunk {c} abandoned at a stop; a retry redoes it");
                    report.stopped = true;
                    break;
                }
                Some(Ok(done)) => done.add_to(&mut report),
                Some(Err(e)) => {
                    report.failed_chunks += 1;
                    report.errors.push(format!("chunk {c}: {e}"));
                    self.record_failure(c, &e.to_string()).await;
                }
            }
            report.chunk_in_flight = None;
            report.seconds = started.elapsed().as_secs_f64();
            progress.send_replace(report.clone());
        }
        report.seconds = started.elapsed().as_secs_f64();
        report
    }

    /// Maps chunk `c`; after a stop, waits at most `grace` for it (None: abandoned).
    async fn chunk_within_grace(
        &self,
        catalog: &EarthCatalog,
        c: u64,
        stop: &Stop,
        grace: Duration,
    ) -> Option<Result<ChunkDone, BackfillError>> {
        let mapping = self.map_chunk(catalog, c);
        tokio::pin!(mapping);
        let mut stopped = stop.receiver();
        tokio::select! {
            done = &mut mapping => return Some(done),
            _ = stopped.wait_for(|s| *s) => {}
        }
        tokio::time::timeout(grace, mapping).await.ok()
    }

    async fn record_failure(&self, c: u64, reason: &str) {
        let failure = MapFailure {
            chunk: c,
            worker: self.worker.clone(),
            engine_task: self.engine_task.clone(),
            reason: crate::store::redact_secrets(reason),
            at: Utc::now(),
        };
        if let Err(e) = self.layout.put(&self.layout.map_failed(c), &failure).await {
            tracing::warn!("chunk {c}: failure not recorded: {e}");
        }
    }

    /// Fetches, stages and marks one chunk.
    async fn map_chunk(&self, catalog: &EarthCatalog, c: u64) -> Result<ChunkDone, BackfillError> {
        let started = Instant::now();
        let entries = self.read_chunk(c).await?;
        let (first, end) = match (entries.first(), entries.last()) {
            (Some(a), Some(b)) => (a.position, b.position + 1),
            _ => (0, 0),
        };
        let processed = self
            .processor
            .process(entries.into_iter().map(entry_of).collect())
            .await?;
        dead_letter::write(
            catalog.base(),
            self.layout.run(),
            first,
            end,
            &processed.letters,
        )
        .await
        .map_err(|e| BackfillError::Options(e.to_string()))?;
        let staged = self.stage(c, &processed).await?;
        let marker = MapMarker {
            chunk: c,
            worker: self.worker.clone(),
            engine_task: self.engine_task.clone(),
            items: processed.items,
            fetched: processed.fetched,
            failed: processed.failed,
            rows: processed.rows,
            bytes_in: processed.bytes_in,
            skipped_known: processed.skipped_known,
            written: Some(processed.written),
            seconds: started.elapsed().as_secs_f64(),
            staged,
            at: Utc::now(),
        };
        let ours = self
            .layout
            .create(&self.layout.map_done(c), &marker)
            .await?;
        if !ours {
            // Another task finished this chunk first: ours is not referenced.
            for s in &marker.staged {
                self.layout.delete(&s.key).await?;
            }
        }
        let _ = self.layout.delete(&self.layout.map_failed(c)).await;
        Ok(ChunkDone { marker, ours })
    }

    async fn read_chunk(&self, c: u64) -> Result<Vec<ChunkEntry>, BackfillError> {
        let rel = self.layout.chunk(c);
        let bytes =
            self.layout
                .get_bytes(&rel)
                .await?
                .ok_or_else(|| BackfillError::Unreadable {
                    uri: self.layout.store().uri(&rel),
                    reason: "the planned chunk is missing".into(),
                })?;
        bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                serde_json::from_slice(l).map_err(|e| BackfillError::Unreadable {
                    uri: self.layout.store().uri(&rel),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// Writes one staged file per reduce partition the chunk's rows reach.
    async fn stage(&self, c: u64, processed: &Processed) -> Result<Vec<Staged>, BackfillError> {
        let nonce = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let mut staged = Vec::new();
        for (p, members) in by_partition(processed, self.partitions) {
            let (batch, buckets) = gather_sorted(&processed.batches, &members)?;
            let bytes = encode(&batch)?;
            let key = self.layout.staged(c, p, &nonce);
            let size = bytes.len() as u64;
            self.layout.put_bytes(&key, bytes).await?;
            staged.push(Staged {
                partition: p,
                key,
                bytes: size,
                rows: batch.num_rows() as u64,
                buckets,
            });
        }
        Ok(staged)
    }
}

/// A chunk mapped, and whether our marker is the one in place.
struct ChunkDone {
    marker: MapMarker,
    ours: bool,
}

impl ChunkDone {
    fn add_to(&self, report: &mut WorkReport) {
        if !self.ours {
            report.lost += 1;
            return;
        }
        let m = &self.marker;
        report.mapped += 1;
        report.items += m.items;
        report.fetched += m.fetched;
        report.failed_items += m.failed;
        report.rows += m.rows;
        report.staged_files += m.staged.len() as u64;
        report.staged_bytes += m.staged.iter().map(|s| s.bytes).sum::<u64>();
    }
}

/// A row's place: (cell, year, batch, row).
type Member = (String, Option<i32>, usize, usize);

/// The rows of each reduce partition, sorted by (cell, year).
fn by_partition(processed: &Processed, partitions: u32) -> Vec<(u32, Vec<Member>)> {
    let mut groups: std::collections::BTreeMap<u32, Vec<Member>> = Default::default();
    for (b, (batch, years)) in processed.batches.iter().enumerate() {
        let Some(cells) = batch
            .column_by_name("grid_partition")
            .and_then(|c| c.as_string_opt::<i32>())
        else {
            continue;
        };
        for (r, year) in years.iter().enumerate() {
            let cell = cells.value(r).to_string();
            let p = partition_of(&cell, *year, partitions);
            groups.entry(p).or_default().push((cell, *year, b, r));
        }
    }
    groups
        .into_iter()
        .map(|(p, mut members)| {
            members.sort();
            (p, members)
        })
        .collect()
}

/// The rows `members` as one batch, and each bucket's range in it.
fn gather_sorted(
    batches: &[(RecordBatch, Vec<Option<i32>>)],
    members: &[Member],
) -> Result<(RecordBatch, Vec<BucketRange>), BackfillError> {
    let schema = batches[0].0.schema();
    let indices: Vec<(usize, usize)> = members.iter().map(|m| (m.2, m.3)).collect();
    let columns = (0..schema.fields().len())
        .map(|c| {
            let arrays: Vec<&dyn Array> =
                batches.iter().map(|(b, _)| b.column(c).as_ref()).collect();
            arrow_select::interleave::interleave(&arrays, &indices)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| BackfillError::Options(format!("staging rows: {e}")))?;
    let batch = RecordBatch::try_new(schema, columns)
        .map_err(|e| BackfillError::Options(format!("staging rows: {e}")))?;
    let mut ranges: Vec<BucketRange> = Vec::new();
    for (i, (cell, year, _, _)) in members.iter().enumerate() {
        match ranges.last_mut() {
            Some(r) if &r.cell == cell && r.year == *year => r.len += 1,
            _ => ranges.push(BucketRange {
                cell: cell.clone(),
                year: *year,
                start: i as u64,
                len: 1,
            }),
        }
    }
    Ok((batch, ranges))
}

/// Staged rows as Parquet: light zstd (the files are read once), no stats.
fn encode(batch: &RecordBatch) -> Result<Bytes, BackfillError> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
        .set_max_row_group_row_count(Some(64 * 1024))
        .build();
    let mut buffer = Vec::new();
    let err =
        |e: parquet::errors::ParquetError| BackfillError::Options(format!("staging rows: {e}"));
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(props)).map_err(err)?;
    writer.write(batch).map_err(err)?;
    writer.close().map_err(err)?;
    Ok(Bytes::from(buffer))
}

impl JobProgress for WorkReport {
    fn lock_view(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn activity(&self) -> Activity {
        Activity {
            phase: "map".into(),
            chunk: self.chunk_in_flight.map(|c| format!("c{c:06}")),
            counters: Counters {
                items_listed: self.items,
                items_fetched: self.fetched,
                items_failed: self.failed_items,
                rows: self.rows,
                files: self.staged_files,
                bytes: self.staged_bytes,
                bytes_fetched: 0,
                commits: self.mapped,
            },
        }
    }
}

impl JobSummary for WorkReport {
    fn run_state(&self) -> RunState {
        match (self.failed_chunks > 0, self.stopped) {
            (true, _) => RunState::Failed,
            (false, true) => RunState::Cancelled,
            (false, false) => RunState::Done,
        }
    }

    /// 0 every owned chunk done, 130 stopped, 1 some chunk failed.
    fn exit_code(&self) -> i32 {
        match self.run_state() {
            RunState::Failed => 1,
            RunState::Cancelled => 130,
            _ => 0,
        }
    }

    fn error(&self) -> Option<String> {
        (!self.errors.is_empty()).then(|| self.errors.join("; "))
    }

    fn activity(&self) -> Activity {
        JobProgress::activity(self)
    }

    fn note_lock_lost(&mut self, _reason: &str) {}

    fn set_run(&mut self, _run: &str) {}
}
