//! Snapshot summaries in O(change).
//!
//! Manifest files are immutable: the live data files one lists are decoded
//! once and kept under the cache folder, keyed by the manifest's path. A
//! snapshot's per-partition totals are kept too, with the manifests they
//! count; a new snapshot's totals are those of its nearest cached ancestor,
//! less the manifests its manifest list no longer names (compaction, a
//! delete), plus the manifests new in it. A commit therefore costs the
//! decoding of its own manifests only, and an unchanged snapshot costs one
//! small file read. Stats read the totals, the query planner the live files
//! (one cache, shared).
//!
//! Nothing cached is trusted blindly: an entry that is missing, does not
//! decode, or names another snapshot, manifest list or manifest is ignored
//! and rebuilt, and totals that would go negative are recomputed from the
//! manifests.

mod files;
mod store;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use iceberg::spec::{ManifestFile, ManifestList, Snapshot};
use iceberg::table::Table;
use serde::{Deserialize, Serialize};

pub use files::LiveFile;

use super::stats::{self, PartitionStats};
use super::{CatalogError, cache_root};

/// Parent snapshots searched for a cached summary to start from.
const ANCESTORS_SEARCHED: usize = 64;

/// Per-partition totals of one snapshot, small files counted below one threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    pub snapshot_id: i64,
    /// Its manifest list: an entry naming another list is not this snapshot's.
    pub manifest_list: String,
    pub small_file_bytes: u64,
    /// Paths of the manifests counted, in manifest-list order.
    pub manifests: Vec<String>,
    /// (cell, year, rows, files, bytes, small files), in (cell, year) order.
    partitions: Vec<PartRow>,
}

/// One partition's totals (a JSON array: the cache stays compact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PartRow(String, Option<i32>, u64, u64, u64, u64);

/// Totals by (cell, year) while they are added up.
type Parts = BTreeMap<(String, Option<i32>), [u64; 4]>;

impl SnapshotSummary {
    /// Totals per (cell, year) partition, in (cell, year) order.
    pub fn partitions(&self) -> Vec<PartitionStats> {
        self.partitions
            .iter()
            .map(
                |PartRow(cell, year, rows, files, bytes, small)| PartitionStats {
                    cell: cell.clone(),
                    year: *year,
                    rows: *rows,
                    files: *files,
                    bytes: *bytes,
                    small_files: *small,
                },
            )
            .collect()
    }

    fn describes(&self, snapshot: &Snapshot, small_file_bytes: u64) -> bool {
        self.snapshot_id == snapshot.snapshot_id()
            && self.manifest_list == snapshot.manifest_list()
            && self.small_file_bytes == small_file_bytes
    }

    fn parts(&self) -> Parts {
        self.partitions
            .iter()
            .map(|PartRow(c, y, r, f, b, s)| ((c.clone(), *y), [*r, *f, *b, *s]))
            .collect()
    }
}

/// How a summary or file list was obtained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// The snapshot's own summary came from the cache (nothing else was read).
    pub cached: bool,
    /// The cached ancestor it was derived from (None: counted from all manifests).
    pub base: Option<i64>,
    /// Manifests in the snapshot's list.
    pub manifests: usize,
    /// Manifests decoded from Avro (the others came from the cache).
    pub decoded: usize,
}

/// The cache folder of summaries and manifests' live files.
#[derive(Debug, Clone)]
pub struct SummaryCache {
    root: PathBuf,
}

impl Default for SummaryCache {
    /// `summary/` under [`cache_root`].
    fn default() -> Self {
        Self::at(cache_root().join("summary"))
    }
}

impl SummaryCache {
    /// A cache kept in `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the summary of `snapshot` of `table` is kept (the file may not exist).
    pub fn summary_file(&self, table: &Table, snapshot_id: i64, small_file_bytes: u64) -> PathBuf {
        store::summary_path(
            &self.root,
            table.metadata().location(),
            snapshot_id,
            small_file_bytes,
        )
    }

    /// Where the live files of the manifest at `manifest` are kept.
    pub fn manifest_file(&self, manifest: &str) -> PathBuf {
        store::manifest_path(&self.root, manifest)
    }

    /// The per-partition totals of `snapshot`: cached, else derived from a
    /// cached ancestor and the manifests that changed, else counted from
    /// every manifest; then cached.
    ///
    /// # Errors
    /// Manifest list or manifest read errors (never a cache problem).
    pub async fn summary(
        &self,
        table: &Table,
        snapshot: &Snapshot,
        small_file_bytes: u64,
    ) -> Result<(SnapshotSummary, Provenance), CatalogError> {
        let at = self.summary_file(table, snapshot.snapshot_id(), small_file_bytes);
        if let Some(s) = store::read::<SnapshotSummary>(at.clone()).await
            && s.describes(snapshot, small_file_bytes)
        {
            let manifests = s.manifests.len();
            let provenance = Provenance {
                cached: true,
                manifests,
                ..Default::default()
            };
            return Ok((s, provenance));
        }
        let list = stats::manifest_list(table, snapshot).await?;
        let derived = match self.ancestor(table, snapshot, small_file_bytes).await {
            Some(base) => self.derive(table, base, &list).await?,
            None => None,
        };
        let (parts, provenance) = match derived {
            Some(d) => d,
            None => self.count_all(table, &list, small_file_bytes).await?,
        };
        let summary = SnapshotSummary {
            snapshot_id: snapshot.snapshot_id(),
            manifest_list: snapshot.manifest_list().to_string(),
            small_file_bytes,
            manifests: paths(list.entries()),
            partitions: parts
                .into_iter()
                .map(|((c, y), [r, f, b, s])| PartRow(c, y, r, f, b, s))
                .collect(),
        };
        store::write(at, &summary).await;
        store::prune(store::summaries(&self.root), store::KEEP_SUMMARIES).await;
        Ok((summary, provenance))
    }

    /// Every live data file of `snapshot`, manifest by manifest (cached
    /// manifests are not decoded again).
    ///
    /// # Errors
    /// Manifest list or manifest read errors.
    pub async fn live_files(
        &self,
        table: &Table,
        snapshot: &Snapshot,
    ) -> Result<(Vec<LiveFile>, Provenance), CatalogError> {
        let list = stats::manifest_list(table, snapshot).await?;
        let (per_manifest, decoded) =
            files::of_manifests(&self.root, table, list.entries()).await?;
        let provenance = Provenance {
            cached: decoded == 0,
            base: None,
            manifests: list.entries().len(),
            decoded,
        };
        Ok((per_manifest.into_iter().flatten().collect(), provenance))
    }

    /// The nearest ancestor of `snapshot` whose summary is cached.
    async fn ancestor(
        &self,
        table: &Table,
        snapshot: &Snapshot,
        small_file_bytes: u64,
    ) -> Option<SnapshotSummary> {
        let metadata = table.metadata();
        let mut parent = snapshot.parent_snapshot_id();
        for _ in 0..ANCESTORS_SEARCHED {
            let s = metadata.snapshot_by_id(parent?)?;
            let at = self.summary_file(table, s.snapshot_id(), small_file_bytes);
            if let Some(summary) = store::read::<SnapshotSummary>(at).await
                && summary.describes(s, small_file_bytes)
            {
                return Some(summary);
            }
            parent = s.parent_snapshot_id();
        }
        None
    }

    /// `base`'s totals less its manifests `list` no longer names, plus the
    /// manifests new in `list`; None when that cannot be done exactly (a
    /// dropped manifest that is neither cached nor readable, totals that
    /// would go negative).
    async fn derive(
        &self,
        table: &Table,
        base: SnapshotSummary,
        list: &ManifestList,
    ) -> Result<Option<(Parts, Provenance)>, CatalogError> {
        let now: HashSet<&str> = list
            .entries()
            .iter()
            .map(|m| m.manifest_path.as_str())
            .collect();
        let before: HashSet<&str> = base.manifests.iter().map(String::as_str).collect();
        let added: Vec<ManifestFile> = list
            .entries()
            .iter()
            .filter(|m| !before.contains(m.manifest_path.as_str()))
            .cloned()
            .collect();
        let dropped: Vec<String> = base
            .manifests
            .iter()
            .filter(|p| !now.contains(p.as_str()))
            .cloned()
            .collect();
        let Some((removed, decoded_dropped)) = self.dropped_files(table, &base, &dropped).await
        else {
            return Ok(None);
        };
        let (new, decoded) = files::of_manifests(&self.root, table, &added).await?;
        let small = base.small_file_bytes;
        let mut parts = base.parts();
        if !removed
            .iter()
            .flatten()
            .all(|f| subtract(&mut parts, f, small))
        {
            return Ok(None);
        }
        new.iter().flatten().for_each(|f| add(&mut parts, f, small));
        let provenance = Provenance {
            cached: false,
            base: Some(base.snapshot_id),
            manifests: list.entries().len(),
            decoded: decoded + decoded_dropped,
        };
        Ok(Some((parts, provenance)))
    }

    /// Live files of `base`'s manifests at `dropped`: cached, else decoded
    /// through `base`'s manifest list. None when they cannot be read (the
    /// snapshot expired, its manifests were removed).
    async fn dropped_files(
        &self,
        table: &Table,
        base: &SnapshotSummary,
        dropped: &[String],
    ) -> Option<(Vec<Vec<LiveFile>>, usize)> {
        let datetime_id = files::datetime_field(table);
        let found = files::cached(&self.root, dropped, datetime_id).await;
        if found.iter().all(Option::is_some) {
            return Some((found.into_iter().flatten().collect(), 0));
        }
        let snapshot = table.metadata().snapshot_by_id(base.snapshot_id)?;
        let list = stats::manifest_list(table, snapshot).await.ok()?;
        let wanted: HashSet<&str> = dropped.iter().map(String::as_str).collect();
        let manifests: Vec<ManifestFile> = list
            .entries()
            .iter()
            .filter(|m| wanted.contains(m.manifest_path.as_str()))
            .cloned()
            .collect();
        if manifests.len() != dropped.len() {
            return None;
        }
        files::of_manifests(&self.root, table, &manifests)
            .await
            .ok()
    }

    /// Totals counted from every manifest of `list`.
    async fn count_all(
        &self,
        table: &Table,
        list: &ManifestList,
        small_file_bytes: u64,
    ) -> Result<(Parts, Provenance), CatalogError> {
        let (per_manifest, decoded) =
            files::of_manifests(&self.root, table, list.entries()).await?;
        let mut parts = Parts::new();
        per_manifest
            .iter()
            .flatten()
            .for_each(|f| add(&mut parts, f, small_file_bytes));
        let provenance = Provenance {
            cached: false,
            base: None,
            manifests: list.entries().len(),
            decoded,
        };
        Ok((parts, provenance))
    }
}

fn paths(manifests: &[ManifestFile]) -> Vec<String> {
    manifests.iter().map(|m| m.manifest_path.clone()).collect()
}

fn contribution(f: &LiveFile, small_file_bytes: u64) -> [u64; 4] {
    [f.rows, 1, f.bytes, u64::from(f.bytes < small_file_bytes)]
}

fn add(parts: &mut Parts, f: &LiveFile, small_file_bytes: u64) {
    let totals = parts.entry((f.cell.clone(), f.year)).or_default();
    for (t, c) in totals.iter_mut().zip(contribution(f, small_file_bytes)) {
        *t += c;
    }
}

/// Takes `f` out of its partition (dropped when it has no file left); false
/// when the totals do not hold it (they were not counted from these files).
fn subtract(parts: &mut Parts, f: &LiveFile, small_file_bytes: u64) -> bool {
    let key = (f.cell.clone(), f.year);
    let Some(totals) = parts.get_mut(&key) else {
        return false;
    };
    for (t, c) in totals.iter_mut().zip(contribution(f, small_file_bytes)) {
        match t.checked_sub(c) {
            Some(left) => *t = left,
            None => return false,
        }
    }
    if totals[1] == 0 {
        parts.remove(&key);
    }
    true
}
