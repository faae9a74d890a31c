//! Where a backfill keeps its state, and the small JSON records there:
//!
//! ```text
//! <base>/_ecops/backfill/<run>/plan.json                      PlanRecord (written last by plan)
//! <base>/_ecops/backfill/<run>/chunks/c000123.jsonl           the chunk's inventory entries
//! <base>/_ecops/backfill/<run>/map/c000123.json               MapMarker (conditional create)
//! <base>/_ecops/backfill/<run>/map/c000123.failed.json        why the last attempt failed
//! <base>/_ecops/backfill/<run>/staging/c000123/p0007-<n>.parquet  staged rows, sorted by bucket
//! <base>/_ecops/backfill/<run>/reduce/p0007.json              ReduceMarker (conditional create)
//! ```
//!
//! Kept apart from the run ledger (`_ecops/runs/`), so a console's refresh
//! of the ledger never lists a backfill's thousands of objects.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::BackfillError;
use super::staged::StagedFile;
use crate::store::Store;

/// Folder of all backfills under the base.
pub const BACKFILL_DIR: &str = "_ecops/backfill";

/// Records [`Layout::get_many`] reads at once.
pub const CONCURRENT_READS: usize = 32;

/// The keys of one backfill run.
#[derive(Debug, Clone)]
pub struct Layout {
    store: Store,
    run: String,
}

/// The plan, written once every chunk object is in place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub run: String,
    /// What identifies the plan: the same inputs give the same key.
    pub key: String,
    pub chunks: u64,
    /// Inventory entries planned (items and unreadable rows).
    pub entries: u64,
    /// Reduce partitions (buckets are spread over them by hash).
    pub partitions: u32,
    /// Tasks the plan was made for (the default for `work` and `reduce`).
    pub tasks: u32,
    pub mode: String,
    pub created: DateTime<Utc>,
}

/// One planned inventory entry (an item, or a row that could not be read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkEntry {
    pub position: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Why the inventory row could not be read (then no key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
    /// The key is a URL list's whole URL or path (fetched as is).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub url: bool,
}

/// Rows of one (cell, year) bucket inside a staged file: `start..start+len`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRange {
    pub cell: String,
    pub year: Option<i32>,
    pub start: u64,
    pub len: u64,
}

/// One staged file of a chunk: its partition, key, and buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Staged {
    pub partition: u32,
    pub key: String,
    pub bytes: u64,
    pub rows: u64,
    pub buckets: Vec<BucketRange>,
}

/// A chunk mapped: what it staged, what it counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapMarker {
    pub chunk: u64,
    pub worker: String,
    pub engine_task: String,
    pub items: u64,
    pub fetched: u64,
    pub failed: u64,
    pub rows: u64,
    pub bytes_in: u64,
    #[serde(default)]
    pub skipped_known: u64,
    /// Items whose rows were staged (absent in markers of older versions).
    #[serde(default)]
    pub written: Option<u64>,
    pub seconds: f64,
    pub staged: Vec<Staged>,
    pub at: DateTime<Utc>,
}

/// Why a chunk's last attempt failed (overwritten by each attempt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapFailure {
    pub chunk: u64,
    pub worker: String,
    pub engine_task: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A partition reduced: its final files, ready to register.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReduceMarker {
    pub partition: u32,
    pub worker: String,
    pub buckets: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub files: Vec<StagedFile>,
    pub seconds: f64,
    pub at: DateTime<Utc>,
}

impl Layout {
    pub fn new(base: &Store, run: &str) -> Self {
        Self {
            store: base.clone(),
            run: run.to_string(),
        }
    }

    pub fn run(&self) -> &str {
        &self.run
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The run's folder, relative to the base.
    pub fn dir(&self) -> String {
        format!("{BACKFILL_DIR}/{}", self.run)
    }

    pub fn plan(&self) -> String {
        format!("{}/plan.json", self.dir())
    }

    pub fn chunk(&self, c: u64) -> String {
        format!("{}/chunks/c{c:06}.jsonl", self.dir())
    }

    pub fn map_done(&self, c: u64) -> String {
        format!("{}/map/c{c:06}.json", self.dir())
    }

    pub fn map_failed(&self, c: u64) -> String {
        format!("{}/map/c{c:06}.failed.json", self.dir())
    }

    pub fn staged(&self, c: u64, p: u32, nonce: &str) -> String {
        format!("{}/staging/c{c:06}/p{p:04}-{nonce}.parquet", self.dir())
    }

    pub fn staging(&self) -> String {
        format!("{}/staging", self.dir())
    }

    pub fn chunks_dir(&self) -> String {
        format!("{}/chunks", self.dir())
    }

    pub fn reduce_done(&self, p: u32) -> String {
        format!("{}/reduce/p{p:04}.json", self.dir())
    }

    /// A JSON record, or None when absent.
    pub async fn get<T: DeserializeOwned>(&self, rel: &str) -> Result<Option<T>, BackfillError> {
        let Some(bytes) = self.get_bytes(rel).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| BackfillError::Unreadable {
                uri: self.store.uri(rel),
                reason: e.to_string(),
            })
    }

    /// The records at `rels` that exist, in the order of `rels`, read
    /// [`CONCURRENT_READS`] at a time: on S3 each is a round trip, and a run
    /// has a marker per chunk.
    pub fn get_many<T: DeserializeOwned + Send + 'static>(
        &self,
        rels: Vec<String>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<T>, BackfillError>> {
        // Boxed: the stream's closures would otherwise make the futures of
        // spawned tasks awaiting this not provably Send.
        futures::stream::iter(rels)
            .map(move |rel| async move { self.get::<T>(&rel).await })
            .buffered(CONCURRENT_READS)
            .try_filter_map(|m| futures::future::ready(Ok(m)))
            .try_collect()
            .boxed()
    }

    pub async fn get_bytes(&self, rel: &str) -> Result<Option<Bytes>, BackfillError> {
        match self.store.object_store().get(&self.store.key(rel)).await {
            Ok(got) => got
                .bytes()
                .await
                .map(Some)
                .map_err(|e| BackfillError::store(self.store.uri(rel), e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(BackfillError::store(self.store.uri(rel), e)),
        }
    }

    /// Writes a JSON record (replacing any).
    pub async fn put<T: Serialize>(&self, rel: &str, value: &T) -> Result<(), BackfillError> {
        self.put_bytes(rel, Bytes::from(json_bytes(value))).await
    }

    pub async fn put_bytes(&self, rel: &str, bytes: Bytes) -> Result<(), BackfillError> {
        self.store
            .object_store()
            .put(&self.store.key(rel), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| BackfillError::store(self.store.uri(rel), e))
    }

    /// Creates a JSON record only if none exists: true when ours is the
    /// one in place. A lost acknowledgement is settled by reading back.
    pub async fn create<T: Serialize + DeserializeOwned + PartialEq>(
        &self,
        rel: &str,
        value: &T,
    ) -> Result<bool, BackfillError> {
        let body = json_bytes(value);
        let result = self
            .store
            .object_store()
            .put_opts(
                &self.store.key(rel),
                PutPayload::from(body),
                PutOptions::from(PutMode::Create),
            )
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => {
                // Ours if a retried write of ours landed first.
                Ok(self.get::<T>(rel).await?.as_ref() == Some(value))
            }
            Err(e) => match self.get::<T>(rel).await {
                Ok(Some(found)) => Ok(&found == value),
                _ => Err(BackfillError::store(self.store.uri(rel), e)),
            },
        }
    }

    /// Keys (relative to the base) of every object under `rel`.
    pub async fn list(&self, rel: &str) -> Result<Vec<String>, BackfillError> {
        let prefix = self.store.key(rel);
        let metas: Vec<object_store::ObjectMeta> = match self
            .store
            .object_store()
            .list(Some(&prefix))
            .try_collect()
            .await
        {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(BackfillError::store(self.store.uri(rel), e)),
        };
        let root = self.store.key("");
        let mut keys: Vec<String> = metas
            .into_iter()
            .map(|m| {
                let k = m.location.to_string();
                k.strip_prefix(root.as_ref())
                    .unwrap_or(&k)
                    .trim_start_matches('/')
                    .to_string()
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Deletes every object under `rel` (absent ones count as deleted).
    pub async fn delete_all(&self, rel: &str) -> Result<u64, BackfillError> {
        let mut deleted = 0;
        for key in self.list(rel).await? {
            self.delete(&key).await?;
            deleted += 1;
        }
        Ok(deleted)
    }

    pub async fn delete(&self, rel: &str) -> Result<(), BackfillError> {
        match self.store.object_store().delete(&self.store.key(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(BackfillError::store(self.store.uri(rel), e)),
        }
    }

    /// Chunk numbers that have a done marker.
    pub async fn mapped(&self) -> Result<Vec<u64>, BackfillError> {
        Ok(self
            .list(&format!("{}/map", self.dir()))
            .await?
            .iter()
            .filter_map(|k| marker_number(k, "c", ".json"))
            .collect())
    }

    /// Chunk numbers whose last attempt recorded a failure.
    pub async fn failed_chunks(&self) -> Result<Vec<u64>, BackfillError> {
        Ok(self
            .list(&format!("{}/map", self.dir()))
            .await?
            .iter()
            .filter_map(|k| marker_number(k, "c", ".failed.json"))
            .collect())
    }

    /// Partition numbers that have a done marker.
    pub async fn reduced(&self) -> Result<Vec<u32>, BackfillError> {
        Ok(self
            .list(&format!("{}/reduce", self.dir()))
            .await?
            .iter()
            .filter_map(|k| marker_number(k, "p", ".json").map(|n| n as u32))
            .collect())
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialise.
    serde_json::to_vec(value).unwrap_or_default()
}

/// `…/c000123.json` → 123 (for `prefix` "c", `suffix` ".json"; not ".failed.json").
fn marker_number(key: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let name = key.rsplit('/').next()?;
    let stem = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    stem.chars()
        .all(|c| c.is_ascii_digit())
        .then(|| stem.parse().ok())
        .flatten()
}

/// Items of `0..count` that task `task` of `tasks` owns.
pub fn owned(count: u64, task: u32, tasks: u32) -> impl Iterator<Item = u64> {
    let tasks = u64::from(tasks.max(1));
    (u64::from(task)..count).step_by(tasks as usize)
}

/// The reduce partition of a (cell, year) bucket: a stable hash, so every
/// map task sends a bucket's rows to the same partition.
pub fn partition_of(cell: &str, year: Option<i32>, partitions: u32) -> u32 {
    let key = format!(
        "{cell}/{}",
        year.map_or("null".to_string(), |y| y.to_string())
    );
    (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_names_and_ownership() {
        assert_eq!(marker_number("x/map/c000123.json", "c", ".json"), Some(123));
        assert_eq!(
            marker_number("x/map/c000123.failed.json", "c", ".json"),
            None
        );
        assert_eq!(
            marker_number("x/map/c000123.failed.json", "c", ".failed.json"),
            Some(123)
        );
        assert_eq!(owned(10, 1, 4).collect::<Vec<_>>(), vec![1, 5, 9]);
        assert_eq!(owned(3, 0, 1).count(), 3);
        let p = partition_of("81003ffffffffff", Some(2020), 7);
        assert!(p < 7);
        assert_eq!(p, partition_of("81003ffffffffff", Some(2020), 7));
    }
}
