//! Running a compaction: plan, then group by group rewrite buckets
//! concurrently and commit each group as one replace snapshot (partial
//! progress: a crash loses at most the group in flight, whose files are
//! then unreferenced). When another writer commits first, the group is
//! re-planned against the new snapshot: buckets whose inputs are all still
//! live keep their rewritten files, the others are queued again.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::watch;

use super::live::{LiveFile, TableState};
use super::plan::{plan, selects};
use super::progress::{CompactPhase, CompactProgress};
use super::replace::{AddedFile, Replace, commit_replace};
use super::rewrite::{BucketOutcome, rewrite_bucket, table_arrow_schema};
use super::{CompactError, CompactOptions, SUMMARY_OPERATION};
use crate::catalog::append::UNIQUE_ITEMS;
use crate::catalog::part_writer::PartCodec;
use crate::catalog::{Bucket, EarthCatalog, WriteOptions};

/// Runs a compaction to its end (or cancellation) and returns its summary.
/// Errors before anything is written (options, catalog, unsupported table)
/// are `Err`; a failure later ends the run with `phase: failed` and the
/// error in the summary, after committing the buckets that were complete.
/// With `dry_run` only the plan is computed and nothing is written.
pub async fn run(
    catalog: Arc<EarthCatalog>,
    opts: CompactOptions,
    progress: watch::Sender<CompactProgress>,
    cancel: watch::Receiver<bool>,
) -> Result<CompactProgress, CompactError> {
    let started = Instant::now();
    check_options(&catalog, &opts)?;
    let mut state = TableState::load(&catalog).await?;
    let planned = plan(&state, &opts);
    tracing::debug!(
        "planned {} buckets; peak RSS {:?}",
        planned.buckets.len(),
        crate::metrics::peak_rss_bytes()
    );
    if opts.dry_run {
        let mut p = planned.summary();
        finish(&progress, &mut p, started);
        return Ok(p);
    }
    let mut p = CompactProgress {
        phase: CompactPhase::Running,
        dry_run: false,
        files_after: planned.files_before,
        ..planned.summary()
    };
    progress.send_replace(p.clone());
    let mut pending = commit_order(&planned, &state);
    let group_files = group_size(&opts, planned.files_in());
    let mut groups = Groups {
        catalog: &catalog,
        opts: &opts,
        schema: table_arrow_schema()?,
        run_tag: uuid::Uuid::now_v7().simple().to_string()[..12].to_string(),
        progress: &progress,
        started,
        last_publish: Instant::now(),
        cancel: CancelWatch::new(cancel),
    };
    let mut failure: Option<String> = None;
    let mut group_no = 0u64;
    while !pending.is_empty() && !groups.cancel.cancelled && failure.is_none() {
        group_no += 1;
        let group = next_group(&mut pending, &state, &opts, group_files);
        let (outcomes, failed) = groups.rewrite(&state, group, group_no, &mut p).await;
        failure = failed;
        if outcomes.is_empty() {
            continue;
        }
        if let Err(e) = groups
            .commit(&mut state, outcomes, &mut pending, &mut p, group_no)
            .await
        {
            failure = Some(e.to_string());
        }
    }
    p.phase = match (&failure, groups.cancel.cancelled) {
        (Some(_), _) => CompactPhase::Failed,
        (None, true) => CompactPhase::Cancelled,
        (None, false) => CompactPhase::Done,
    };
    // Errors can carry store URLs: never let credentials reach the summary.
    p.error = failure.map(|e| crate::store::redact_secrets(&e));
    // Compaction adds no ids, but deltas a crashed writer left end here.
    catalog.settle_index_after_job().await;
    finish(&progress, &mut p, started);
    Ok(p)
}

/// Refuses options that cannot run, and a read-only catalog unless dry.
fn check_options(catalog: &EarthCatalog, opts: &CompactOptions) -> Result<(), CompactError> {
    if !opts.dry_run {
        catalog.ensure_writable()?;
    }
    if opts.group_files == 0 || opts.concurrency == 0 || opts.target_file_size == 0 {
        return Err(CompactError::Options(
            "group size, concurrency and target file size must be at least 1".into(),
        ));
    }
    Ok(())
}

/// Buckets in the order of the first manifest listing their files: a group
/// then touches fewer manifests (ingest writes one per chunk), so its commit
/// rewrites less metadata. On the benchmark table a group of 2 000 files
/// touches about half of the manifests instead of all.
fn commit_order(planned: &super::plan::Plan, state: &TableState) -> VecDeque<Bucket> {
    let mut order: Vec<(usize, Bucket)> = planned
        .buckets
        .iter()
        .map(|b| {
            let bucket = b.bucket();
            let first = state
                .buckets
                .get(&bucket)
                .and_then(|files| files.iter().map(|f| f.manifest).min())
                .unwrap_or(usize::MAX);
            (first, bucket)
        })
        .collect();
    order.sort();
    order.into_iter().map(|(_, b)| b).collect()
}

/// Input files per group: `group_files`, raised so that `files_in` input
/// files make at most `max_commits` groups.
fn group_size(opts: &CompactOptions, files_in: u64) -> usize {
    let files_in = usize::try_from(files_in).unwrap_or(usize::MAX);
    match opts.max_commits {
        0 => opts.group_files,
        cap => opts.group_files.max(files_in.div_ceil(cap)),
    }
}

/// The next group of up to `group_files` input files, against the table as
/// it is now (buckets compacted or emptied by someone else are dropped).
fn next_group(
    pending: &mut VecDeque<Bucket>,
    state: &TableState,
    opts: &CompactOptions,
    group_files: usize,
) -> Vec<(Bucket, Vec<LiveFile>)> {
    let mut group = Vec::new();
    let mut files_in_group = 0;
    while files_in_group < group_files
        && let Some(bucket) = pending.pop_front()
    {
        if let Some(files) = state.buckets.get(&bucket)
            && selects(files, opts)
        {
            files_in_group += files.len();
            group.push((bucket, files.clone()));
        }
    }
    group
}

/// The caller's cancel switch, followed while buckets are rewritten.
struct CancelWatch {
    rx: watch::Receiver<bool>,
    /// False once nobody can cancel any more (the sender is gone).
    live: bool,
    cancelled: bool,
}

impl CancelWatch {
    fn new(rx: watch::Receiver<bool>) -> Self {
        Self {
            rx,
            live: true,
            cancelled: false,
        }
    }
}

/// What every group of one compaction run shares.
struct Groups<'a> {
    catalog: &'a Arc<EarthCatalog>,
    opts: &'a CompactOptions,
    schema: arrow_schema::SchemaRef,
    run_tag: String,
    progress: &'a watch::Sender<CompactProgress>,
    started: Instant,
    last_publish: Instant,
    cancel: CancelWatch,
}

impl Groups<'_> {
    /// Rewrites a group's buckets, `concurrency` at a time. A cancel stops
    /// starting buckets (the running ones finish and are committed); a
    /// failure too, and is returned beside the buckets that completed.
    async fn rewrite(
        &mut self,
        state: &TableState,
        group: Vec<(Bucket, Vec<LiveFile>)>,
        group_no: u64,
        p: &mut CompactProgress,
    ) -> (Vec<BucketOutcome>, Option<String>) {
        let write = WriteOptions {
            target_file_size: self.opts.target_file_size,
            tag: format!("compact-{}-g{group_no}", self.run_tag),
            // Compaction's output stays: worth zstd whatever its size.
            codec: PartCodec::Zstd,
        };
        let mut queue = group.into_iter();
        let mut running = FuturesUnordered::new();
        let mut outcomes: Vec<BucketOutcome> = Vec::new();
        let mut failure = None;
        loop {
            while running.len() < self.opts.concurrency
                && !self.cancel.cancelled
                && failure.is_none()
            {
                let Some((bucket, files)) = queue.next() else {
                    break;
                };
                let (catalog, table, schema, write) = (
                    self.catalog.clone(),
                    state.table.clone(),
                    self.schema.clone(),
                    write.clone(),
                );
                let reads = self.opts.read_concurrency;
                running.push(tokio::spawn(async move {
                    rewrite_bucket(&catalog, &table, &schema, &bucket, files, &write, reads).await
                }));
            }
            if running.is_empty() {
                break;
            }
            let cancel = &mut self.cancel;
            tokio::select! {
                done = running.next() => match done {
                    Some(Ok(Ok(outcome))) => {
                        outcomes.push(outcome);
                        p.buckets_pending_commit = outcomes.len() as u64;
                        if self.last_publish.elapsed() >= Duration::from_millis(100) {
                            publish(self.progress, p, self.started);
                            self.last_publish = Instant::now();
                        }
                    }
                    Some(Ok(Err(e))) => failure = Some(e.to_string()),
                    Some(Err(e)) => failure = Some(format!("bucket task failed: {e}")),
                    None => {}
                },
                changed = cancel.rx.changed(), if cancel.live && !cancel.cancelled => match changed {
                    Err(_) => cancel.live = false,
                    Ok(()) => cancel.cancelled = *cancel.rx.borrow(),
                },
            }
        }
        (outcomes, failure)
    }

    /// Commits a group's rewritten buckets as one replace snapshot and
    /// publishes the progress.
    async fn commit(
        &mut self,
        state: &mut TableState,
        outcomes: Vec<BucketOutcome>,
        pending: &mut VecDeque<Bucket>,
        p: &mut CompactProgress,
        group_no: u64,
    ) -> Result<(), CompactError> {
        tracing::debug!(
            "group {group_no}: {} buckets rewritten; peak RSS {:?}",
            outcomes.len(),
            crate::metrics::peak_rss_bytes()
        );
        crate::testkit::pause_before_commit().await;
        p.buckets_pending_commit = 0;
        let committed = commit_group(
            self.catalog,
            state,
            outcomes,
            pending,
            p,
            self.opts,
            group_no,
            &self.run_tag,
        )
        .await;
        tracing::debug!(
            "group {group_no} committed; peak RSS {:?}",
            crate::metrics::peak_rss_bytes()
        );
        publish(self.progress, p, self.started);
        committed
    }
}

/// Distinct items of the table from the hash index, when it is current
/// (compaction changes no id, so this holds before and after the commit).
async fn unique_items(catalog: &EarthCatalog) -> Option<u64> {
    let table = catalog.table().await.ok()?;
    let status = catalog.hash_index_status(&table).await;
    status.current.then_some(status.rows).flatten()
}

/// Commits one group's outcomes, re-planning on conflicts (bounded).
#[allow(clippy::too_many_arguments)]
async fn commit_group(
    catalog: &EarthCatalog,
    state: &mut TableState,
    mut outcomes: Vec<BucketOutcome>,
    pending: &mut VecDeque<Bucket>,
    p: &mut CompactProgress,
    opts: &CompactOptions,
    group_no: u64,
    run_tag: &str,
) -> Result<(), CompactError> {
    for attempt in 1..=opts.max_attempts.max(1) {
        // Resolve every input against the current state; a bucket whose
        // inputs are no longer all live is planned again later.
        let live = state.live_paths();
        let mut kept = Vec::with_capacity(outcomes.len());
        let mut removed: Vec<&LiveFile> = Vec::new();
        for outcome in outcomes {
            let now: Option<Vec<&LiveFile>> = outcome
                .removed
                .iter()
                .map(|f| live.get(f.path.as_str()).copied())
                .collect();
            match now {
                Some(files) => {
                    removed.extend(files);
                    kept.push(outcome);
                }
                None => {
                    tracing::warn!(
                        "bucket {} changed under the compaction; planning it again",
                        outcome.bucket.dir()
                    );
                    pending.push_back(outcome.bucket);
                }
            }
        }
        outcomes = kept;
        if outcomes.is_empty() {
            return Ok(());
        }
        let duplicates: u64 = outcomes.iter().map(|o| o.rows_in - o.rows_out).sum();
        let mut properties = HashMap::from([
            (SUMMARY_OPERATION.to_string(), "compact".to_string()),
            ("ecops.compact-run".to_string(), run_tag.to_string()),
            ("ecops.compact-group".to_string(), group_no.to_string()),
            (
                "ecops.duplicates-removed".to_string(),
                duplicates.to_string(),
            ),
        ]);
        if let Some(unique) = unique_items(catalog).await {
            properties.insert(UNIQUE_ITEMS.to_string(), unique.to_string());
        }
        let change = Replace {
            removed,
            added: outcomes.iter().flat_map(added_files).collect(),
            partitions: outcomes.len() as u64,
            properties,
        };
        match commit_replace(catalog, state, change).await {
            Ok(committed) => {
                for o in &outcomes {
                    p.buckets_compacted += 1;
                    p.files_in += o.removed.len() as u64;
                    p.bytes_in += o.removed.iter().map(|f| f.bytes).sum::<u64>();
                    p.files_out += o.added.len() as u64;
                    p.bytes_out += o.added.iter().map(|f| f.file_size_in_bytes()).sum::<u64>();
                    p.duplicates_removed += o.rows_in - o.rows_out;
                }
                p.commits += 1;
                p.snapshot_id = Some(committed.snapshot_id);
                p.files_after = committed.totals.files;
                p.rows_after = committed.totals.rows;
                p.bytes_after = committed.totals.bytes;
                if !advance(state, &outcomes, committed) {
                    *state = TableState::load(catalog).await?;
                }
                return Ok(());
            }
            Err(CompactError::Conflict(why)) if attempt < opts.max_attempts.max(1) => {
                tracing::warn!("{why}; re-planning the group against the new snapshot");
                p.replans += 1;
                *state = TableState::load(catalog).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Err(CompactError::Conflict(format!(
        "gave up after {} attempts: other writers kept committing first",
        opts.max_attempts
    )))
}

/// A bucket's new files, each with the newest data sequence number of the
/// files it replaces (see [`AddedFile::data_sequence`]).
fn added_files(outcome: &BucketOutcome) -> impl Iterator<Item = AddedFile> + '_ {
    let data_sequence = outcome
        .removed
        .iter()
        .map(|f| f.sequence_number)
        .max()
        .unwrap_or(0);
    outcome.added.iter().map(move |file| AddedFile {
        file: file.clone(),
        data_sequence,
    })
}

/// Moves `state` to the committed snapshot without re-reading it: removed
/// files leave their buckets, the others follow their manifest's new index.
/// False when the mapping is incomplete (then the caller reloads).
fn advance(
    state: &mut TableState,
    outcomes: &[BucketOutcome],
    committed: super::replace::Committed,
) -> bool {
    let removed: std::collections::HashSet<&str> = outcomes
        .iter()
        .flat_map(|o| o.removed.iter().map(|f| f.path.as_str()))
        .collect();
    let mut complete = true;
    for files in state.buckets.values_mut() {
        files.retain(|f| !removed.contains(f.path.as_str()));
        for f in files.iter_mut() {
            match committed.remap.get(f.manifest).copied().flatten() {
                Some(i) => f.manifest = i,
                None => complete = false,
            }
        }
    }
    state.buckets.retain(|_, files| !files.is_empty());
    state.table = committed.table;
    state.location = committed.location;
    state.manifests = committed.manifests;
    state.totals = committed.totals;
    complete
}

fn publish(progress: &watch::Sender<CompactProgress>, p: &mut CompactProgress, started: Instant) {
    p.seconds = started.elapsed().as_secs_f64();
    progress.send_replace(p.clone());
}

fn finish(progress: &watch::Sender<CompactProgress>, p: &mut CompactProgress, started: Instant) {
    p.peak_rss_bytes = crate::metrics::peak_rss_bytes();
    publish(progress, p, started);
}

#[cfg(test)]
mod group_tests {
    use super::*;

    #[test]
    fn groups_grow_so_a_run_makes_at_most_max_commits() {
        let opts = CompactOptions {
            group_files: 2000,
            max_commits: 16,
            ..Default::default()
        };
        assert_eq!(group_size(&opts, 10_000), 2000, "5 groups: as asked");
        assert_eq!(group_size(&opts, 91_411), 5714, "16 groups, not 46");
        assert_eq!(91_411usize.div_ceil(group_size(&opts, 91_411)), 16);
        let uncapped = CompactOptions {
            max_commits: 0,
            ..opts
        };
        assert_eq!(group_size(&uncapped, 91_411), 2000);
    }
}
