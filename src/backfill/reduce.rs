//! Phase 3, reduce (`ecops backfill reduce`): for each partition of task I,
//! merge every bucket's staged rows from all chunks — one row per id, the
//! newest `updated`, then the latest chunk — sorted as compaction sorts,
//! into final GeoParquet files of the target size, and mark the partition
//! done with a conditional create. Buckets are merged a batch at a time
//! under a memory budget, reading only their rows from each staged file.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use chrono::Utc;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
use serde::Serialize;
use tokio::sync::watch;

use super::BackfillError;
use super::layout::{Layout, MapMarker, ReduceMarker, owned};
use super::plan::PlanOptions;
use super::staged::StagedFile;
use crate::catalog::EarthCatalog;
use crate::catalog::append::{Bucket, WriteOptions};
use crate::runs::{
    Activity, Counters, JobError, JobProgress, JobSummary, LedgerOptions, RunKind, RunSpec,
    RunState, RunTarget, Stop,
};

/// Estimated decompressed bytes of staged rows merged at once.
const MERGE_BUDGET: u64 = 256 * 1024 * 1024;

/// Which partitions to reduce.
#[derive(Debug, Clone)]
pub struct ReduceOptions {
    pub run: Option<String>,
    pub task: u32,
    pub tasks: Option<u32>,
    pub ledger: Option<LedgerOptions>,
    /// Wait for the map phase to finish instead of refusing.
    pub wait: bool,
}

/// What a reduce task did (`ecops backfill reduce --json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReduceReport {
    pub run: String,
    pub task: u32,
    pub tasks: u32,
    pub partitions: u64,
    pub reduced: u64,
    pub skipped: u64,
    pub lost: u64,
    pub buckets: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub files: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub stopped: bool,
    pub errors: Vec<String>,
    #[serde(skip)]
    pub partition_in_flight: Option<u32>,
}

/// Where one bucket's rows are: (staged file index, first row, rows), in chunk order.
type Pieces = Vec<(usize, u64, u64)>;
/// A partition's staged files: (key, bytes, rows).
type StagedFiles = Vec<(String, u64, u64)>;

/// Reduces the partitions of task `opts.task`, recorded as a worker of the run.
pub async fn reduce(
    catalog: &EarthCatalog,
    opts: &ReduceOptions,
    stop: &Stop,
) -> Result<ReduceReport, JobError> {
    catalog.ensure_writable().map_err(JobError::refused)?;
    let run = super::status::resolve_run(catalog, opts.run.as_deref()).await?;
    let layout = Layout::new(catalog.base(), &run.id);
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
    wait_for_map(&layout, plan.chunks, opts.wait, stop).await?;
    let (progress_tx, progress) = watch::channel(ReduceReport {
        run: run.id.clone(),
        task: opts.task,
        tasks,
        ..ReduceReport::default()
    });
    let spec = RunSpec {
        kind: RunKind::Backfill,
        inputs: serde_json::Value::Null,
        ledger: opts.ledger,
        target: RunTarget::Join(run.id.clone()),
    };
    let job = ReduceJob {
        layout,
        partitions: plan.partitions,
        target_file_size: planned.target_file_size,
        task: opts.task,
        tasks,
    };
    crate::runs::track(catalog.base(), spec, progress, stop, async {
        job.run(catalog, progress_tx, stop).await
    })
    .await
}

/// Refuses (naming the missing chunks) unless every chunk is mapped; with
/// `wait`, polls until it is.
async fn wait_for_map(
    layout: &Layout,
    chunks: u64,
    wait: bool,
    stop: &Stop,
) -> Result<(), JobError> {
    loop {
        let mapped = layout.mapped().await.map_err(JobError::failed)?;
        let missing: Vec<u64> = (0..chunks).filter(|c| !mapped.contains(c)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        if !wait || *stop.receiver().borrow() {
            return Err(JobError::refused(format!(
                "reduce refused: {} of {chunks} chunks are not mapped yet ({})",
                missing.len(),
                name_some(&missing, "c")
            )));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// "c000003, c000007 … and 12 more".
pub(crate) fn name_some(numbers: &[u64], prefix: &str) -> String {
    let shown: Vec<String> = numbers
        .iter()
        .take(10)
        .map(|n| {
            if prefix == "p" {
                format!("p{n:04}")
            } else {
                format!("{prefix}{n:06}")
            }
        })
        .collect();
    let more = numbers.len().saturating_sub(10);
    if more > 0 {
        format!("{} … and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

struct ReduceJob {
    layout: Layout,
    partitions: u32,
    target_file_size: usize,
    task: u32,
    tasks: u32,
}

impl ReduceJob {
    async fn run(
        &self,
        catalog: &EarthCatalog,
        progress: watch::Sender<ReduceReport>,
        stop: &Stop,
    ) -> Result<ReduceReport, JobError> {
        let started = Instant::now();
        let mut report = progress.borrow().clone();
        let markers = self.map_markers().await.map_err(JobError::failed)?;
        let done = self.layout.reduced().await.map_err(JobError::failed)?;
        for p in owned(u64::from(self.partitions), self.task, self.tasks) {
            let p = p as u32;
            report.partitions += 1;
            if done.contains(&p) {
                report.skipped += 1;
                continue;
            }
            if *stop.receiver().borrow() {
                report.stopped = true;
                break;
            }
            report.partition_in_flight = Some(p);
            progress.send_replace(report.clone());
            match self.reduce_partition(catalog, p, &markers).await {
                Ok((marker, true)) => add(&mut report, &marker),
                Ok((_, false)) => report.lost += 1,
                Err(e) => report.errors.push(format!("partition {p}: {e}")),
            }
            report.partition_in_flight = None;
            report.seconds = started.elapsed().as_secs_f64();
            progress.send_replace(report.clone());
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Every chunk's map marker, in chunk order.
    async fn map_markers(&self) -> Result<Vec<MapMarker>, BackfillError> {
        let layout = &self.layout;
        let keys = layout
            .mapped()
            .await?
            .into_iter()
            .map(|c| layout.map_done(c));
        let mut markers: Vec<MapMarker> = layout.get_many(keys.collect()).await?;
        markers.sort_by_key(|m| m.chunk);
        Ok(markers)
    }

    /// Merges partition `p` into final files and marks it; false when another
    /// task's marker won (our files were deleted).
    async fn reduce_partition(
        &self,
        catalog: &EarthCatalog,
        p: u32,
        markers: &[MapMarker],
    ) -> Result<(ReduceMarker, bool), BackfillError> {
        let started = Instant::now();
        let (files, buckets) = pieces_of(p, markers);
        let table = catalog.table().await?;
        let write = WriteOptions {
            target_file_size: self.target_file_size,
            tag: format!("bf-{}-p{p:04}", short(self.layout.run())),
            // A bucket's merged file stays, like compaction's output.
            codec: crate::catalog::part_writer::PartCodec::Zstd,
        };
        let mut marker = ReduceMarker {
            partition: p,
            worker: crate::runs::record::worker_name(
                &crate::runs::record::engine_task(),
                &crate::runs::record::Actor::me(),
            ),
            buckets: buckets.len() as u64,
            rows_in: 0,
            rows_out: 0,
            files: Vec::new(),
            seconds: 0.0,
            at: Utc::now(),
        };
        for group in batches_of(&buckets, &files) {
            let rows = read_group(&self.layout, &files, &buckets, &group).await?;
            for (bucket, slices) in rows {
                marker.rows_in += slices.iter().map(|b| b.num_rows() as u64).sum::<u64>();
                let merged = merge(slices).await?;
                marker.rows_out += merged.num_rows() as u64;
                let written = catalog
                    .write_bucket(&table, &bucket, &[merged], &write)
                    .await?;
                marker.files.extend(
                    written
                        .iter()
                        .map(|f| StagedFile::of(f, &bucket.cell, bucket.year)),
                );
            }
        }
        marker.seconds = started.elapsed().as_secs_f64();
        marker.at = Utc::now();
        let ours = self
            .layout
            .create(&self.layout.reduce_done(p), &marker)
            .await?;
        if !ours {
            for f in &marker.files {
                if let Ok(key) = catalog.base().key_of(&f.path) {
                    let _ = catalog.base().object_store().delete(&key).await;
                }
            }
        }
        Ok((marker, ours))
    }
}

fn add(report: &mut ReduceReport, m: &ReduceMarker) {
    report.reduced += 1;
    report.buckets += m.buckets;
    report.rows_in += m.rows_in;
    report.rows_out += m.rows_out;
    report.files += m.files.len() as u64;
    report.bytes += m.files.iter().map(|f| f.file_size_in_bytes).sum::<u64>();
}

/// A short, path-safe form of a run id.
fn short(run: &str) -> String {
    format!("{:08x}", xxhash_rust::xxh3::xxh3_64(run.as_bytes()) as u32)
}

/// The staged files of partition `p` (key, bytes, rows) and each bucket's pieces.
fn pieces_of(p: u32, markers: &[MapMarker]) -> (StagedFiles, BTreeMap<Bucket, Pieces>) {
    let mut files = Vec::new();
    let mut buckets: BTreeMap<Bucket, Pieces> = BTreeMap::new();
    for m in markers {
        for s in m.staged.iter().filter(|s| s.partition == p) {
            let f = files.len();
            files.push((s.key.clone(), s.bytes, s.rows));
            for r in &s.buckets {
                let bucket = Bucket {
                    cell: r.cell.clone(),
                    year: r.year,
                };
                buckets.entry(bucket).or_default().push((f, r.start, r.len));
            }
        }
    }
    (files, buckets)
}

/// Groups of buckets whose estimated size fits the merge budget.
fn batches_of(
    buckets: &BTreeMap<Bucket, Pieces>,
    files: &[(String, u64, u64)],
) -> Vec<Vec<Bucket>> {
    let mut groups = vec![];
    let mut current = vec![];
    let mut size = 0u64;
    for (bucket, pieces) in buckets {
        // Decompressed staged rows are a few times their zstd size.
        let estimate: u64 = pieces
            .iter()
            .map(|(f, _, len)| {
                let (_, bytes, rows) = files[*f];
                4 * bytes * len / rows.max(1)
            })
            .sum();
        if !current.is_empty() && size + estimate > MERGE_BUDGET {
            groups.push(std::mem::take(&mut current));
            size = 0;
        }
        current.push(bucket.clone());
        size += estimate;
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Reads the rows of `group`'s buckets from the staged files: per bucket,
/// its slices in chunk order.
async fn read_group(
    layout: &Layout,
    files: &[(String, u64, u64)],
    buckets: &BTreeMap<Bucket, Pieces>,
    group: &[Bucket],
) -> Result<Vec<(Bucket, Vec<RecordBatch>)>, BackfillError> {
    // What to read from each file: (start, len, bucket index in group), by start.
    let mut wanted: BTreeMap<usize, Vec<(u64, u64, usize)>> = BTreeMap::new();
    for (i, bucket) in group.iter().enumerate() {
        for (f, start, len) in &buckets[bucket] {
            wanted.entry(*f).or_default().push((*start, *len, i));
        }
    }
    let mut out: Vec<Vec<(usize, RecordBatch)>> = vec![Vec::new(); group.len()];
    for (f, mut ranges) in wanted {
        ranges.sort();
        let read = read_ranges(layout, &files[f].0, &ranges).await?;
        for ((_, _, i), batch) in ranges.iter().zip(read) {
            out[*i].push((f, batch));
        }
    }
    Ok(group
        .iter()
        .cloned()
        .zip(out)
        .map(|(b, mut slices)| {
            // File index order is chunk order (markers were sorted by chunk).
            slices.sort_by_key(|(f, _)| *f);
            (b, slices.into_iter().map(|(_, batch)| batch).collect())
        })
        .collect())
}

/// The rows of `ranges` (sorted, disjoint) of one staged file, one batch per range.
async fn read_ranges(
    layout: &Layout,
    rel: &str,
    ranges: &[(u64, u64, usize)],
) -> Result<Vec<RecordBatch>, BackfillError> {
    let uri = layout.store().uri(rel);
    let pq = |e: parquet::errors::ParquetError| BackfillError::Unreadable {
        uri: uri.clone(),
        reason: e.to_string(),
    };
    let mut selectors = Vec::new();
    let mut at = 0u64;
    for (start, len, _) in ranges {
        if *start > at {
            selectors.push(RowSelector::skip((start - at) as usize));
        }
        selectors.push(RowSelector::select(*len as usize));
        at = start + len;
    }
    let reader = ParquetObjectReader::new(layout.store().object_store(), layout.store().key(rel));
    let stream = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(pq)?
        .with_row_selection(RowSelection::from(selectors))
        .with_batch_size(64 * 1024)
        .build()
        .map_err(pq)?;
    let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(pq)?;
    let Some(first) = batches.first() else {
        return Ok(vec![]);
    };
    let all = arrow_select::concat::concat_batches(&first.schema(), &batches)
        .map_err(|e| BackfillError::Options(format!("reading {uri}: {e}")))?;
    let mut out = Vec::with_capacity(ranges.len());
    let mut offset = 0usize;
    for (_, len, _) in ranges {
        out.push(all.slice(offset, *len as usize));
        offset += *len as usize;
    }
    Ok(out)
}

/// One row per id across a bucket's slices (in chunk order): the newest
/// `updated`, then the latest chunk — compaction's rule.
async fn merge(slices: Vec<RecordBatch>) -> Result<RecordBatch, BackfillError> {
    tokio::task::spawn_blocking(move || {
        let schema = slices[0].schema();
        let all = arrow_select::concat::concat_batches(&schema, &slices)
            .map_err(|e| BackfillError::Options(format!("merging a bucket: {e}")))?;
        crate::compact::dedupe(&all).map_err(BackfillError::Options)
    })
    .await
    .map_err(|e| BackfillError::Options(format!("merge task failed: {e}")))?
}

impl JobProgress for ReduceReport {
    fn lock_view(&self) -> serde_json::Value {
        serde_json::Value::Null
    }

    fn activity(&self) -> Activity {
        Activity {
            phase: "reduce".into(),
            chunk: self.partition_in_flight.map(|p| format!("p{p:04}")),
            counters: Counters {
                rows: self.rows_out,
                files: self.files,
                bytes: self.bytes,
                commits: self.reduced,
                ..Counters::default()
            },
        }
    }
}

impl JobSummary for ReduceReport {
    fn run_state(&self) -> RunState {
        match (self.errors.is_empty(), self.stopped) {
            (false, _) => RunState::Failed,
            (true, true) => RunState::Cancelled,
            (true, false) => RunState::Done,
        }
    }

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
