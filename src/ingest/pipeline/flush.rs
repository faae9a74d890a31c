//! Writing a chunk: one part per (cell, year) bucket (a few at a time), its
//! dead letters, then one append whose snapshot summary carries the
//! checkpoint — so the data and the position it reached commit together.

use std::sync::Arc;

use arrow_array::RecordBatch;
use iceberg::spec::DataFile;
use tokio::task::JoinHandle;

use super::super::IngestError;
use super::super::dead_letter;
use super::super::job::{self, Checkpoint};
use super::chunk::{BucketRange, Chunk};
use super::unit::Ctx;
use crate::catalog::EarthCatalog;
use crate::catalog::append::{ITEMS_WRITTEN, WriteOptions};
use crate::catalog::hash_index::id_hash;

/// What a flushed chunk wrote.
pub(super) struct Flushed {
    pub checkpoint: Checkpoint,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
}

/// Writes and commits `chunk` with checkpoint `target` on a new task.
pub(super) fn spawn_flush(
    catalog: Arc<EarthCatalog>,
    ctx: Arc<Ctx>,
    target_file_size: usize,
    chunk: Chunk,
    target: Checkpoint,
    inventory: &str,
) -> JoinHandle<Result<Flushed, IngestError>> {
    let write = WriteOptions {
        target_file_size,
        tag: format!("{}-c{:06}", short_tag(&ctx.job_id), target.chunks),
        // Small parts cheap to write; compaction rewrites them with zstd.
        codec: crate::catalog::part_writer::PartCodec::BySize,
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
    mut chunk: Chunk,
    mut target: Checkpoint,
    inventory: String,
) -> Result<Flushed, IngestError> {
    let hashes = chunk_hashes(&chunk);
    let (rows, buckets) = chunk
        .take_bucket_rows(&ctx.schema)
        .map_err(|e| crate::catalog::CatalogError::Invalid(format!("gathering buckets: {e}")))?;
    let files = write_buckets(&catalog, &write, rows, buckets).await?;
    dead_letter::write(
        catalog.base(),
        &ctx.job_id,
        chunk.first,
        target.position,
        &chunk.letters,
    )
    .await?;
    let rows = files.iter().map(|f| f.record_count()).sum();
    let bytes = files.iter().map(|f| f.file_size_in_bytes()).sum();
    let n_files = files.len() as u64;
    crate::testkit::pause_before_commit().await;
    let mut summary = job::chunk_summary(&ctx.job_id, &inventory, &target);
    summary.insert(ITEMS_WRITTEN.into(), chunk.written.to_string());
    let table = catalog.commit_append_hashed(files, summary, hashes).await?;
    target.snapshot_id = table.metadata().current_snapshot_id().unwrap_or_default();
    Ok(Flushed {
        checkpoint: target,
        rows,
        files: n_files,
        bytes,
    })
}

/// The index hashes of the ids of every row the chunk writes (the rows of
/// an item in several cells repeat its hash: the index merges repeats).
/// None when a batch has no Utf8 `id` column: the index then reads the
/// committed files instead.
fn chunk_hashes(chunk: &Chunk) -> Option<Vec<u128>> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let mut hashes = Vec::new();
    for s in &chunk.segments {
        let ids = s.rows.batch.column_by_name("id")?.as_string_opt::<i32>()?;
        let rows = s.start..s.start + s.len;
        hashes.extend(
            rows.filter(|&i| ids.is_valid(i))
                .map(|i| id_hash(ids.value(i))),
        );
    }
    Some(hashes)
}

/// Writes one part per bucket, a few at a time: bucket `b` is
/// `rows[range]` (the chunk's rows in bucket order).
async fn write_buckets(
    catalog: &Arc<EarthCatalog>,
    write: &WriteOptions,
    rows: RecordBatch,
    buckets: Vec<BucketRange>,
) -> Result<Vec<DataFile>, IngestError> {
    use futures::StreamExt;
    let table = catalog.table().await?;
    let tasks = buckets.into_iter().map(|(bucket, range)| {
        let (catalog, table, write) = (catalog.clone(), table.clone(), write.clone());
        let part = rows.slice(range.start, range.len());
        tokio::spawn(async move { catalog.write_bucket(&table, &bucket, &[part], &write).await })
    });
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get()) * 2;
    let mut written = futures::stream::iter(tasks).buffer_unordered(parallel);
    let mut files: Vec<DataFile> = Vec::new();
    while let Some(result) = written.next().await {
        let part =
            result.map_err(|e| IngestError::Options(format!("writer task failed: {e}")))??;
        files.extend(part);
    }
    Ok(files)
}
