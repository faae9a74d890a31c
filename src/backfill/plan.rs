//! Phase 1, plan: stream the inventory (every format ingest reads, local
//! or s3://) or the URL lists into chunk objects, then write `plan.json`. The run is created
//! in the ledger and stays open for the workers. A rerun with the same
//! inputs finds the run and reuses its plan (or finishes one a crash cut
//! short).

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::BackfillError;
use super::layout::{ChunkEntry, Layout, PlanRecord};
use crate::catalog::EarthCatalog;
use crate::ingest::inventory::{self, Entry, Start};
use crate::ingest::{IngestParams, InventoryInput, Mode};
use crate::runs::{
    Activity, JobError, JobSummary, Ledger, LedgerOptions, RunKind, RunSpec, RunState, RunTarget,
    Stop,
};

/// Map and reduce tasks of a backfill unless told otherwise.
pub const DEFAULT_TASKS: u32 = 4;
/// Final files roll over past this many MiB unless told otherwise.
pub const DEFAULT_TARGET_FILE_SIZE_MB: usize = 128;

/// What to backfill and how to split it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// The ingest the backfill performs (inventory, items root, filters,
    /// chunk size, concurrency, mode).
    pub params: IngestParams,
    /// Tasks the map and reduce phases are meant to run as.
    pub tasks: u32,
    /// Reduce partitions (default: as many as tasks).
    pub partitions: u32,
    /// Final files roll over past this many bytes.
    pub target_file_size: usize,
}

/// A plan ready for workers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    pub run: String,
    pub chunks: u64,
    pub entries: u64,
    pub partitions: u32,
    pub tasks: u32,
    /// True when an earlier identical plan was found and reused.
    pub reused: bool,
}

impl PlanOptions {
    /// What identifies a plan: the same inputs give the same key.
    pub fn key(&self) -> String {
        let canonical = json!({
            "params": self.params.redacted(),
            "partitions": self.partitions,
            "target_file_size": self.target_file_size,
        });
        let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
        format!("plan-{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes))
    }

    /// The run record's inputs: the redacted options and the plan key.
    pub fn inputs(&self) -> Value {
        let mut redacted = self.clone();
        redacted.params = self.params.redacted();
        let mut v = serde_json::to_value(redacted).unwrap_or_default();
        v["plan_key"] = json!(self.key());
        v
    }
}

/// Plans a backfill of `opts` on `catalog` (recorded as a new backfill run,
/// or the earlier run of the same plan). Checks the options before anything
/// is written.
pub async fn plan(
    catalog: &EarthCatalog,
    opts: &PlanOptions,
    ledger: Option<LedgerOptions>,
) -> Result<Plan, JobError> {
    catalog.ensure_writable().map_err(JobError::refused)?;
    let ingest = opts.params.build(catalog.s3()).map_err(JobError::refused)?;
    if matches!(ingest.inventory, InventoryInput::DeadLetters) {
        return Err(JobError::refused(
            "a backfill plans an inventory or URL lists, not dead letters",
        ));
    }
    if opts.params.mode == Some(Mode::Full) && table_has_rows(catalog).await? {
        return Err(JobError::refused(
            "mode full needs an empty table (a backfill never drops data); use --mode delta",
        ));
    }
    let found = find_plan(catalog, &opts.key())
        .await
        .map_err(JobError::failed)?;
    if let Some(PlanSearch::Done(plan)) = found {
        return Ok(plan);
    }
    let target = match found {
        Some(PlanSearch::Unfinished(run)) => RunTarget::Join(run),
        _ => RunTarget::Open,
    };
    let spec = RunSpec {
        kind: RunKind::Backfill,
        inputs: opts.inputs(),
        ledger,
        target: target.clone(),
    };
    let (_tx, progress) = watch::channel(());
    let outcome = crate::runs::track_run(catalog.base(), spec, progress, &Stop::new(), |run| {
        write_plan(catalog, opts, &ingest, run)
    })
    .await?;
    Ok(outcome.plan)
}

async fn table_has_rows(catalog: &EarthCatalog) -> Result<bool, JobError> {
    let table = catalog.table().await.map_err(JobError::failed)?;
    Ok(table
        .metadata()
        .current_snapshot()
        .and_then(|s| {
            s.summary()
                .additional_properties
                .get("total-records")
                .cloned()
        })
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n > 0))
}

enum PlanSearch {
    Done(Plan),
    /// A run of this plan whose planning never finished.
    Unfinished(String),
}

/// The newest backfill run of plan `key`, if any.
async fn find_plan(catalog: &EarthCatalog, key: &str) -> Result<Option<PlanSearch>, BackfillError> {
    let ledger = Ledger::new(catalog.base());
    for id in ledger.run_ids().await?.into_iter().rev() {
        if !id.contains("-backfill-") {
            continue;
        }
        let Ok(run) = ledger.read_run(&id).await else {
            continue;
        };
        if run.inputs["plan_key"] != key || run.state == RunState::Failed {
            continue;
        }
        let layout = Layout::new(catalog.base(), &id);
        return Ok(Some(
            match layout.get::<PlanRecord>(&layout.plan()).await? {
                Some(p) => PlanSearch::Done(Plan {
                    run: id,
                    chunks: p.chunks,
                    entries: p.entries,
                    partitions: p.partitions,
                    tasks: p.tasks,
                    reused: true,
                }),
                None => PlanSearch::Unfinished(id),
            },
        ));
    }
    Ok(None)
}

/// The plan phase's summary (what `ecops backfill plan --json` prints).
#[derive(Debug, Clone, Serialize)]
struct PlanOutcome {
    #[serde(flatten)]
    plan: Plan,
}

impl JobSummary for PlanOutcome {
    fn run_state(&self) -> RunState {
        RunState::Done
    }
    fn exit_code(&self) -> i32 {
        0
    }
    fn error(&self) -> Option<String> {
        None
    }
    fn activity(&self) -> Activity {
        Activity {
            phase: "planned".into(),
            chunk: Some(format!("{} chunks", self.plan.chunks)),
            ..Activity::default()
        }
    }
    fn note_lock_lost(&mut self, _reason: &str) {}
    fn set_run(&mut self, run: &str) {
        self.plan.run = run.to_string();
    }
}

/// Streams the inventory (or URL lists) into chunk objects, then writes `plan.json`.
async fn write_plan(
    catalog: &EarthCatalog,
    opts: &PlanOptions,
    ingest: &crate::ingest::IngestOptions,
    run: Option<String>,
) -> Result<PlanOutcome, JobError> {
    let run = run.ok_or_else(|| {
        JobError::failed("a backfill needs the run ledger, and it could not be written")
    })?;
    let layout = Arc::new(Layout::new(catalog.base(), &run));
    let mut inv = ingest
        .inventory
        .open(&ingest.s3, ingest.filter.clone(), Start::default())
        .await
        .map_err(JobError::refused)?;
    let chunk_size = opts
        .params
        .chunk_size
        .unwrap_or(crate::ingest::DEFAULT_CHUNK_SIZE)
        .max(1);
    let mut chunk: Vec<ChunkEntry> = Vec::with_capacity(chunk_size);
    let (mut chunks, mut entries) = (0u64, 0u64);
    let mut writes = futures::stream::FuturesUnordered::new();
    while let Some(batch) = inv.next_batch().await {
        for entry in batch.map_err(JobError::failed)? {
            chunk.push(chunk_entry(entry));
            entries += 1;
            if chunk.len() >= chunk_size {
                writes.push(put_chunk(
                    layout.clone(),
                    chunks,
                    std::mem::take(&mut chunk),
                ));
                chunks += 1;
                while writes.len() >= 8 {
                    writes.next().await.transpose().map_err(JobError::failed)?;
                }
            }
        }
    }
    if !chunk.is_empty() {
        writes.push(put_chunk(layout.clone(), chunks, chunk));
        chunks += 1;
    }
    while let Some(done) = writes.next().await {
        done.map_err(JobError::failed)?;
    }
    let record = PlanRecord {
        run: run.clone(),
        key: opts.key(),
        chunks,
        entries,
        partitions: opts.partitions.max(1),
        tasks: opts.tasks.max(1),
        mode: format!("{:?}", opts.params.mode.unwrap_or(Mode::Delta)).to_lowercase(),
        created: Utc::now(),
    };
    layout
        .put(&layout.plan(), &record)
        .await
        .map_err(JobError::failed)?;
    Ok(PlanOutcome {
        plan: Plan {
            run,
            chunks,
            entries,
            partitions: record.partitions,
            tasks: record.tasks,
            reused: false,
        },
    })
}

async fn put_chunk(
    layout: Arc<Layout>,
    n: u64,
    entries: Vec<ChunkEntry>,
) -> Result<(), BackfillError> {
    let mut body = Vec::with_capacity(entries.len() * 96);
    for e in &entries {
        serde_json::to_writer(&mut body, e)
            .map_err(|err| BackfillError::Options(err.to_string()))?;
        body.push(b'\n');
    }
    layout.put_bytes(&layout.chunk(n), Bytes::from(body)).await
}

fn chunk_entry(entry: Entry) -> ChunkEntry {
    match entry {
        Entry::Item(row) => ChunkEntry {
            position: row.position,
            bucket: Some(row.bucket),
            key: Some(row.key),
            bad: None,
            source: None,
            at: None,
            url: row.is_url,
        },
        Entry::BadRow {
            position,
            source_name,
            at,
            reason,
        } => ChunkEntry {
            position,
            bucket: None,
            key: None,
            bad: Some(reason),
            source: Some(source_name),
            at: Some(at),
            url: false,
        },
    }
}

/// A planned entry as the ingest pipeline takes it.
pub fn entry_of(e: ChunkEntry) -> Entry {
    match (e.key, e.bad) {
        (Some(key), None) => Entry::Item(inventory::InventoryRow {
            position: e.position,
            bucket: e.bucket.unwrap_or_default(),
            key,
            size: None,
            last_modified: None,
            is_url: e.url,
        }),
        (_, bad) => Entry::BadRow {
            position: e.position,
            source_name: e.source.unwrap_or_else(|| "plan".into()),
            at: e.at.unwrap_or(e.position + 1),
            reason: bad.unwrap_or_else(|| "planned entry without a key".into()),
        },
    }
}
