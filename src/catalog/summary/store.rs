//! The summary cache on disk: JSON files under one folder, each written
//! aside and renamed (a reader never sees half a file), read best effort (a
//! missing or undecodable file is `None`), pruned to the newest entries.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Layout version: bump when an entry's meaning changes.
const LAYOUT: &str = "v1";

/// Snapshot summaries kept (they are small).
pub const KEEP_SUMMARIES: usize = 64;
/// Manifest file lists kept (a few thousand manifests' worth of live files).
pub const KEEP_MANIFESTS: usize = 4096;

/// Folder of the snapshot summaries.
pub fn summaries(root: &Path) -> PathBuf {
    root.join(LAYOUT).join("snapshots")
}

/// Folder of the manifests' live-file lists.
pub fn manifests(root: &Path) -> PathBuf {
    root.join(LAYOUT).join("manifests")
}

/// Entry of one snapshot of the table at `table_location`, for one
/// small-file threshold.
pub fn summary_path(root: &Path, table_location: &str, snapshot_id: i64, small: u64) -> PathBuf {
    let digest = xxhash_rust::xxh3::xxh3_64(table_location.as_bytes());
    summaries(root).join(format!("{digest:016x}-{snapshot_id}-{small}.json"))
}

/// Entry of one manifest file (manifests are immutable: the path is the key).
pub fn manifest_path(root: &Path, manifest: &str) -> PathBuf {
    let digest = xxhash_rust::xxh3::xxh3_128(manifest.as_bytes());
    manifests(root).join(format!("{digest:032x}.json"))
}

/// The entry at `path`, when it exists and decodes as a `T`.
pub async fn read<T: DeserializeOwned + Send + 'static>(path: PathBuf) -> Option<T> {
    tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path).ok()?;
        serde_json::from_slice(&bytes).ok()
    })
    .await
    .ok()
    .flatten()
}

/// Writes `value` at `path` (best effort: a failure is only logged).
pub async fn write<T: Serialize>(path: PathBuf, value: &T) {
    let shown = path.display().to_string();
    let result = match serde_json::to_vec(value) {
        Ok(body) => tokio::task::spawn_blocking(move || write_aside(&path, &body))
            .await
            .map_err(std::io::Error::other),
        Err(e) => Ok(Err(std::io::Error::other(e))),
    };
    if let Ok(Err(e)) | Err(e) = result {
        tracing::debug!("summary cache entry not written ({shown}): {e}");
    }
}

/// Removes all but the newest `keep` entries of `dir` (best effort).
pub async fn prune(dir: PathBuf, keep: usize) {
    let _ = tokio::task::spawn_blocking(move || prune_now(&dir, keep)).await;
}

fn write_aside(path: &Path, body: &[u8]) -> std::io::Result<()> {
    // Unique per process and call: two tasks may write the same entry.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("no folder"))?;
    std::fs::create_dir_all(dir)?;
    let staged = path.with_extension(format!(
        "{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&staged, body)?;
    std::fs::rename(&staged, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&staged);
    })
}

fn prune_now(dir: &Path, keep: usize) -> std::io::Result<()> {
    let mut entries: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if entries.len() <= keep {
        return Ok(());
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (_, old) in entries.into_iter().skip(keep) {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}
