//! The table's side of the index: which snapshots came after the one an
//! index reflects, which data files they added, and the ids in those files.

use std::sync::Arc;

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_schema::DataType;
use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{DataContentType, ManifestStatus, Operation};
use iceberg::table::Table;
use object_store::ObjectStore;
use parquet::arrow::ProjectionMask;
use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};

use super::HashIndexError;
use super::file::Reflects;
use crate::catalog::stats;
use crate::store::Store;

/// Data files read at once.
const READ_CONCURRENCY: usize = 16;

/// A data file to read ids from.
#[derive(Debug, Clone)]
pub struct DataFileRef {
    pub path: String,
    pub bytes: u64,
}

/// How the table moved since the snapshot an index reflects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Nothing that changes the set of ids: the same snapshot, or only
    /// `replace` snapshots (compaction) after it.
    Current,
    /// These `append` snapshots (newest first) added ids; replaces between them are skipped.
    Appended(Vec<i64>),
    /// The index cannot be brought forward incrementally (and why).
    Unknown(String),
}

/// What the table's current snapshot holds relative to `reflects`.
pub fn since(table: &Table, reflects: Option<&Reflects>) -> Since {
    let md = table.metadata();
    let Some(reflects) = reflects else {
        return Since::Unknown("the index records no snapshot (another tool wrote it)".into());
    };
    if reflects.table_uuid != md.uuid().to_string() {
        return Since::Unknown(format!(
            "the index was built for another table (uuid {}; the table is {})",
            reflects.table_uuid,
            md.uuid()
        ));
    }
    let mut appended = Vec::new();
    let mut next = md.current_snapshot_id();
    loop {
        if next == reflects.snapshot_id {
            break;
        }
        let Some(id) = next else {
            return Since::Unknown(format!(
                "snapshot {} that the index reflects is not an ancestor of the current one",
                reflects
                    .snapshot_id
                    .map_or("(none)".to_string(), |s| s.to_string())
            ));
        };
        let Some(snapshot) = md.snapshot_by_id(id) else {
            return Since::Unknown(format!(
                "snapshot {id} is no longer in the table's history (expired)"
            ));
        };
        match &snapshot.summary().operation {
            Operation::Append => appended.push(id),
            Operation::Replace => {}
            other => {
                return Since::Unknown(format!(
                    "snapshot {id} is an {} (it may remove items)",
                    other.as_str()
                ));
            }
        }
        next = snapshot.parent_snapshot_id();
    }
    if appended.is_empty() {
        Since::Current
    } else {
        Since::Appended(appended)
    }
}

/// The data files the `append` snapshots `ids` added.
pub async fn files_added(table: &Table, ids: &[i64]) -> Result<Vec<DataFileRef>, HashIndexError> {
    let md = table.metadata();
    let mut files = Vec::new();
    for &id in ids {
        let Some(snapshot) = md.snapshot_by_id(id) else {
            continue;
        };
        let list = stats::manifest_list(table, snapshot).await?;
        for manifest in list.entries().iter().filter(|m| m.added_snapshot_id == id) {
            let loaded = manifest.load_manifest(table.file_io()).await.map_err(|e| {
                crate::catalog::CatalogError::iceberg(
                    &format!("read manifest {}", manifest.manifest_path),
                    e,
                )
            })?;
            files.extend(
                loaded
                    .entries()
                    .iter()
                    .filter(|e| {
                        e.status() == ManifestStatus::Added
                            && e.snapshot_id() == Some(id)
                            && e.content_type() == DataContentType::Data
                    })
                    .map(|e| DataFileRef {
                        path: e.file_path().to_string(),
                        bytes: e.file_size_in_bytes(),
                    }),
            );
        }
    }
    Ok(files)
}

/// Every live data file of the current snapshot.
pub async fn live_files(table: &Table) -> Result<Vec<DataFileRef>, HashIndexError> {
    Ok(stats::live_files(table)
        .await?
        .into_iter()
        .map(|f| DataFileRef {
            path: f.path,
            bytes: f.bytes,
        })
        .collect())
}

/// The hashes of the ids in `files`, file by file (in no particular order),
/// handed to `sink` as each file is read. Returns the ids read.
pub async fn read_hashes<F>(
    store: &Store,
    files: Vec<DataFileRef>,
    mut sink: F,
) -> Result<u64, HashIndexError>
where
    F: AsyncSink,
{
    let object_store = store.object_store();
    let mut per_file = futures::stream::iter(files)
        .map(|file| {
            let key = store.key_of(&file.path);
            let object_store = object_store.clone();
            async move {
                let key = key.map_err(|e| HashIndexError::DataFile {
                    path: file.path.clone(),
                    reason: e.to_string(),
                })?;
                tokio::spawn(file_hashes(object_store, key, file))
                    .await
                    .map_err(|e| HashIndexError::Write(format!("reader task failed: {e}")))?
            }
        })
        .buffer_unordered(READ_CONCURRENCY);
    let mut ids = 0u64;
    while let Some(hashes) = per_file.try_next().await? {
        ids += hashes.len() as u64;
        sink.take(hashes).await?;
    }
    Ok(ids)
}

/// Receives the hashes of one file at a time.
pub trait AsyncSink {
    fn take(
        &mut self,
        hashes: Vec<u128>,
    ) -> impl std::future::Future<Output = Result<(), HashIndexError>> + Send;
}

/// The hashes of one data file's non-null ids (column `id`, found by name).
async fn file_hashes(
    store: Arc<dyn ObjectStore>,
    key: object_store::path::Path,
    file: DataFileRef,
) -> Result<Vec<u128>, HashIndexError> {
    let bad = |reason: String| HashIndexError::DataFile {
        path: crate::store::redact_url(&file.path),
        reason,
    };
    let reader = ParquetObjectReader::new(store, key).with_file_size(file.bytes);
    let builder = ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| bad(e.to_string()))?;
    if builder.schema().field_with_name("id").is_err() {
        return Err(bad("no id column".into()));
    }
    let mask = ProjectionMask::columns(builder.parquet_schema(), ["id"]);
    let mut batches = builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut hashes = Vec::new();
    while let Some(batch) = batches.try_next().await.map_err(|e| bad(e.to_string()))? {
        let Some(column) = batch.column_by_name("id") else {
            continue;
        };
        let column = if column.data_type() == &DataType::Utf8 {
            column.clone()
        } else {
            arrow_cast::cast(column, &DataType::Utf8).map_err(|e| bad(e.to_string()))?
        };
        let ids = column.as_string::<i32>();
        hashes.reserve(ids.len() - ids.null_count());
        hashes.extend(ids.iter().flatten().map(super::id_hash));
    }
    Ok(hashes)
}
