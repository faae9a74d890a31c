//! Writing one (cell, year) bucket as a GeoParquet data file, and committing
//! data files as one append snapshot.
//!
//! Parts are encoded by [`part_writer`] (Parquet field ids from the schema,
//! column stats from the rows) and stored at earthcatalog's layout
//! `warehouse/grid_partition=<cell>/year=<yyyy>/part_<n>_<tag>.parquet`
//! (iceberg's own default would be `year=<years since 1970>`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_ord::sort::{SortColumn, lexsort_to_indices};
use arrow_schema::SortOptions;
use iceberg::spec::DataFile;
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};

use object_store::{ObjectStoreExt, PutPayload};

use super::hash_index::CommitHashes;
use super::part_writer::PartCodec;
use super::{CatalogError, EarthCatalog, part_writer, schema::NO_CELL};

/// Snapshot-summary key with a commit's unique id: after an error that may
/// have hidden success, finding it in the table means the commit landed.
pub const COMMIT_ID: &str = "ecops.commit-id";

/// Snapshot-summary key of an append: the item versions it wrote (one per
/// item, however many cells it fans out to). With the hash index's count
/// of distinct items it tells how many were already in the table.
pub const ITEMS_WRITTEN: &str = "ecops.items-written";

/// Snapshot-summary key of a compaction's replace: the distinct items the
/// hash index held when it was planned (compaction changes no id).
pub const UNIQUE_ITEMS: &str = "ecops.unique-items";

/// A partition bucket: one grid partition (an H3 cell, a region id,
/// `__none__` or `__outside__`) and one year (or none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    pub cell: String,
    pub year: Option<i32>,
}

impl Bucket {
    /// Folder of this bucket below the warehouse (the partition value
    /// escaped by [`path_segment`]: H3 cells and `__none__` read as they are).
    pub fn dir(&self) -> String {
        let cell = path_segment(&self.cell);
        match self.year {
            Some(y) => format!("grid_partition={cell}/year={y}"),
            None => format!("grid_partition={cell}/year=null"),
        }
    }

    /// Any partition value of a sane length without control characters
    /// (it reaches paths only through [`path_segment`]).
    fn validate(&self) -> Result<(), CatalogError> {
        let ok = !self.cell.is_empty()
            && self.cell.len() <= 256
            && !self.cell.chars().any(char::is_control);
        if ok && self.year.is_none_or(|y| (-9999..=9999).contains(&y)) {
            Ok(())
        } else {
            Err(CatalogError::Invalid(format!(
                "invalid partition bucket {:?}",
                self
            )))
        }
    }
}

/// A partition value as one path segment: ASCII letters, digits, `-`, `_`
/// and `.` stay; every other byte becomes `~XX` (hex), `~` included, and a
/// segment of dots only is escaped whole, so no value can climb out of the
/// warehouse or split into folders. (`~` rather than `%`: object stores and
/// readers disagree on decoding `%`.)
pub fn path_segment(value: &str) -> String {
    let dots_only = value.bytes().all(|b| b == b'.');
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && !dots_only);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("~{b:02X}"));
        }
    }
    out
}

/// Options for writing bucket files.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Roll to a new file past this many bytes.
    pub target_file_size: usize,
    /// Distinguishes this writer's files (job and chunk, for example).
    pub tag: String,
    /// How parts are compressed.
    pub codec: PartCodec,
}

impl Default for WriteOptions {
    fn default() -> Self {
        Self {
            target_file_size: 128 * 1024 * 1024,
            tag: uuid::Uuid::now_v7().simple().to_string(),
            codec: PartCodec::BySize,
        }
    }
}

/// Sorts rows by (platform, datetime), nulls last, as the data contract asks.
pub fn sort_rows(batch: &RecordBatch) -> Result<RecordBatch, CatalogError> {
    let arrow = |e: arrow_schema::ArrowError| CatalogError::Invalid(format!("sorting rows: {e}"));
    let (Some(platform), Some(datetime)) = (
        batch.column_by_name("platform"),
        batch.column_by_name("datetime"),
    ) else {
        return Ok(batch.clone());
    };
    let opts = Some(SortOptions {
        descending: false,
        nulls_first: false,
    });
    if batch.num_rows() < 2 {
        return Ok(batch.clone());
    }
    let indices = lexsort_to_indices(
        &[
            SortColumn {
                values: platform.clone(),
                options: opts,
            },
            SortColumn {
                values: datetime.clone(),
                options: opts,
            },
        ],
        None,
    )
    .map_err(arrow)?;
    if indices
        .values()
        .iter()
        .enumerate()
        .all(|(i, &v)| v as usize == i)
    {
        return Ok(batch.clone()); // already in order: nothing to copy
    }
    let columns = batch
        .columns()
        .iter()
        .map(|c| arrow_select::take::take(c.as_ref(), &indices, None))
        .collect::<Result<Vec<_>, _>>()
        .map_err(arrow)?;
    RecordBatch::try_new(batch.schema(), columns).map_err(arrow)
}

impl EarthCatalog {
    /// Writes the rows of one bucket as GeoParquet data file(s) under
    /// `warehouse/grid_partition=<cell>/year=<yyyy>/` and returns their
    /// DataFiles (partition values, sizes, column stats). Nothing is committed.
    pub async fn write_bucket(
        &self,
        table: &Table,
        bucket: &Bucket,
        batches: &[RecordBatch],
        opts: &WriteOptions,
    ) -> Result<Vec<DataFile>, CatalogError> {
        self.ensure_writable()?;
        bucket.validate()?;
        if batches.iter().all(|b| b.num_rows() == 0) {
            return Ok(vec![]);
        }
        // Merging, sorting and encoding are CPU work: one hop to a blocking
        // thread per bucket, off the async workers.
        let (batches, owned_bucket, target, codec) = (
            batches.to_vec(),
            bucket.clone(),
            opts.target_file_size,
            opts.codec,
        );
        let encoded = tokio::task::spawn_blocking(move || {
            let schema = batches[0].schema();
            // One batch (ingest's case) needs no copy.
            let merged = match batches.as_slice() {
                [one] => one.clone(),
                _ => arrow_select::concat::concat_batches(&schema, &batches).map_err(|e| {
                    CatalogError::Invalid(format!("bucket {}: {e}", owned_bucket.dir()))
                })?,
            };
            check_cells(&merged, &owned_bucket)?;
            let sorted = sort_rows(&merged)?;
            split_by_size(&sorted, target)
                .into_iter()
                .map(|piece| part_writer::encode(&piece, codec).map(|part| (piece, part)))
                .collect::<Result<Vec<_>, CatalogError>>()
        })
        .await
        .map_err(|e| CatalogError::Invalid(format!("encoding task failed: {e}")))??;

        let (partition, spec_id) =
            super::partition::bucket_partition(table, &bucket.cell, bucket.year)?;
        let dir = format!("{}/{}", self.warehouse_uri(), bucket.dir());
        let mut files = Vec::with_capacity(encoded.len());
        for (n, (piece, part)) in encoded.into_iter().enumerate() {
            let uri = format!("{dir}/part_{n:06}_{}.parquet", opts.tag);
            let key = self
                .base()
                .key_of(&uri)
                .map_err(|e| CatalogError::Invalid(e.to_string()))?;
            // One put: the part is whole or absent.
            self.base()
                .object_store()
                .put(&key, PutPayload::from(part.bytes.clone()))
                .await
                .map_err(|source| CatalogError::Write {
                    uri: crate::store::redact_url(&uri),
                    source,
                })?;
            files.push(part_writer::data_file(
                &piece,
                &part,
                uri,
                partition.clone(),
                spec_id,
            )?);
        }
        Ok(files)
    }

    /// Commits data files as one append snapshot whose summary carries `summary`
    /// (job id, inventory position…). The commit is atomic: the pointer moves
    /// to metadata naming all files, or not at all.
    /// Registers `files` in one append whose snapshot summary carries
    /// `summary`. An attempt that loses the pointer's compare-and-swap to
    /// another writer, or fails in a way that may have succeeded (a lost
    /// acknowledgement), is settled and retried: the table is reloaded, and
    /// if a snapshot carrying this commit's id is already there the commit
    /// landed; else the append is applied again on the new table — up to
    /// [`CommitPolicy::retries`] times, with exponential backoff and jitter.
    /// Files are never registered twice, never lost.
    pub async fn commit_append(
        &self,
        files: Vec<DataFile>,
        summary: HashMap<String, String>,
    ) -> Result<Table, CatalogError> {
        self.commit_append_hashed(files, summary, None).await
    }

    /// [`Self::commit_append`] with the hashes ([`super::hash_index::id_hash`])
    /// of every id the files hold: the index update after the commit takes
    /// them instead of reading the files back.
    pub async fn commit_append_hashed(
        &self,
        files: Vec<DataFile>,
        mut summary: HashMap<String, String>,
        hashes: Option<Vec<u128>>,
    ) -> Result<Table, CatalogError> {
        self.ensure_writable()?;
        let commit_id = uuid::Uuid::now_v7().to_string();
        summary.insert(COMMIT_ID.to_string(), commit_id.clone());
        let policy = self.commit_policy();
        let mut attempt = 0;
        loop {
            let error = match self.append_once(files.clone(), summary.clone()).await {
                Ok(table) => {
                    let given = hashes.zip(table.metadata().current_snapshot_id()).map(
                        |(hashes, snapshot_id)| CommitHashes {
                            snapshot_id,
                            hashes,
                        },
                    );
                    self.index_after_commit(given.as_ref()).await;
                    return Ok(table);
                }
                Err(e) => e,
            };
            if let Some(table) = self.find_commit(&commit_id).await {
                self.commit_stats()
                    .ambiguous
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!("commit {commit_id} landed though it reported: {error}");
                self.index_after_commit(None).await;
                return Ok(table);
            }
            if attempt >= policy.retries || !error.retryable() {
                return Err(error);
            }
            attempt += 1;
            self.commit_stats().retries.fetch_add(1, Ordering::Relaxed);
            let wait = policy.backoff(attempt);
            tracing::warn!(
                "commit attempt {attempt} of {} failed ({error}); retrying in {} ms",
                policy.retries + 1,
                wait.as_millis()
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// The table as of a snapshot whose summary carries `commit_id`, if one is there.
    async fn find_commit(&self, commit_id: &str) -> Option<Table> {
        let table = self.table().await.ok()?;
        let landed = table.metadata().snapshots().any(|s| {
            s.summary()
                .additional_properties
                .get(COMMIT_ID)
                .map(String::as_str)
                == Some(commit_id)
        });
        landed.then_some(table)
    }

    /// One append on the table as it is now.
    async fn append_once(
        &self,
        files: Vec<DataFile>,
        summary: HashMap<String, String>,
    ) -> Result<Table, CatalogError> {
        let table = self.table().await?;
        let tx = Transaction::new(&table);
        // No duplicate check: it decodes every manifest of the table on each
        // commit (quadratic over a long job), and our file names are unique
        // (writer tag = job + chunk, or a fresh UUID).
        let action = tx
            .fast_append()
            .with_check_duplicate(false)
            .add_data_files(files)
            .set_snapshot_properties(summary);
        let tx = action
            .apply(tx)
            .map_err(|e| CatalogError::iceberg("prepare append", e))?;
        tx.commit(self.sql().as_ref())
            .await
            .map_err(|e| CatalogError::iceberg("commit append", e))
    }
}

/// Splits a sorted bucket into pieces of about `target` encoded bytes
/// (estimated from the in-memory size; JSON-heavy rows shrink ~3× in zstd).
fn split_by_size(batch: &RecordBatch, target: usize) -> Vec<RecordBatch> {
    let rows = batch.num_rows();
    let estimate = part_writer::rows_bytes(batch) / 3;
    let pieces = estimate.div_ceil(target.max(1)).clamp(1, rows.max(1));
    let per_piece = rows.div_ceil(pieces);
    (0..rows)
        .step_by(per_piece.max(1))
        .map(|start| batch.slice(start, per_piece.min(rows - start)))
        .collect()
}

/// Every row's grid_partition must be the bucket's cell: a file never mixes buckets.
fn check_cells(batch: &RecordBatch, bucket: &Bucket) -> Result<(), CatalogError> {
    let Some(cells) = batch.column_by_name("grid_partition") else {
        return Err(CatalogError::Invalid(
            "batch has no grid_partition column".into(),
        ));
    };
    let Some(cells) = cells.as_string_opt::<i32>() else {
        return Err(CatalogError::Invalid(
            "grid_partition is not a string column".into(),
        ));
    };
    if cells.iter().any(|c| c != Some(bucket.cell.as_str())) {
        return Err(CatalogError::Invalid(format!(
            "rows of other cells in bucket {}",
            bucket.dir()
        )));
    }
    Ok(())
}

/// What one append wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AppendReport {
    pub items: u64,
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub buckets: u64,
    pub snapshot_id: Option<i64>,
}

/// Groups items into (partition, year) buckets: one row per grid partition
/// an item touches; items without geometry go to `__none__`.
pub fn bucket_items<'a>(
    items: &'a [crate::stac::Item],
    grid: &crate::grid::Grid,
) -> Result<std::collections::BTreeMap<Bucket, Vec<&'a crate::stac::Item>>, CatalogError> {
    let mut buckets: std::collections::BTreeMap<Bucket, Vec<&crate::stac::Item>> =
        Default::default();
    for item in items {
        let year = item.partition_year();
        let cells = match &item.geometry {
            Some(g) => grid
                .partitions(g)
                .map_err(|e| CatalogError::Invalid(format!("item {}: {e}", item.id)))?,
            None => vec![NO_CELL.to_string()],
        };
        for cell in cells {
            buckets.entry(Bucket { cell, year }).or_default().push(item);
        }
    }
    Ok(buckets)
}

impl EarthCatalog {
    /// Fans `items` out to buckets at the table's resolution, writes one file
    /// per bucket and commits them all as one append snapshot.
    pub async fn append_items(
        &self,
        items: &[crate::stac::Item],
        opts: &WriteOptions,
        summary: HashMap<String, String>,
    ) -> Result<AppendReport, CatalogError> {
        use futures::{StreamExt, TryStreamExt};
        self.ensure_writable()?;
        let table = self.table().await?;
        let grid = self.load_grid(&table).await?;
        let buckets = bucket_items(items, &grid)?;
        let schema = crate::stac::batch::arrow_schema()
            .map_err(|e| CatalogError::iceberg("arrow schema", e))?;
        let table_ref = &table;
        let schema_ref = &schema;
        let written: Vec<Vec<DataFile>> = futures::stream::iter(buckets.iter())
            .map(|(bucket, rows)| async move {
                let pairs: Vec<(&crate::stac::Item, &str)> =
                    rows.iter().map(|i| (*i, bucket.cell.as_str())).collect();
                let batch = crate::stac::batch::rows_to_batch(schema_ref, &pairs)
                    .map_err(|e| CatalogError::Invalid(format!("bucket {}: {e}", bucket.dir())))?;
                self.write_bucket(table_ref, bucket, &[batch], opts).await
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        let files: Vec<DataFile> = written.into_iter().flatten().collect();
        let report = AppendReport {
            items: items.len() as u64,
            rows: files.iter().map(|f| f.record_count()).sum(),
            files: files.len() as u64,
            bytes: files.iter().map(|f| f.file_size_in_bytes()).sum(),
            buckets: buckets.len() as u64,
            snapshot_id: None,
        };
        if files.is_empty() {
            return Ok(report);
        }
        // The ids of the rows written (an item once per bucket it fans out to).
        let hashes = buckets
            .values()
            .flatten()
            .map(|i| super::hash_index::id_hash(&i.id))
            .collect();
        let table = self
            .commit_append_hashed(files, summary, Some(hashes))
            .await?;
        Ok(AppendReport {
            snapshot_id: table.metadata().current_snapshot_id(),
            ..report
        })
    }
}
