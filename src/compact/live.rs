//! The live data files of a table snapshot, with where each is recorded
//! (manifest, sequence number): what planning reads and what a replace
//! commit rewrites. Built from metadata only.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{DataContentType, FormatVersion, ManifestContentType, ManifestFile};
use iceberg::table::Table;

use super::CompactError;
use crate::catalog::{Bucket, EarthCatalog, stats};

/// What one manifest contributes: its index, its default-spec files by
/// bucket, and how many live files of other specs it lists.
type ManifestFiles = (usize, Vec<(Bucket, LiveFile)>, u64);

/// One live data file of the current snapshot.
#[derive(Debug, Clone)]
pub struct LiveFile {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// Data sequence number: orders files from oldest to newest commit.
    pub sequence_number: i64,
    /// Index of the manifest (in [`TableState::manifests`]) that lists it.
    pub manifest: usize,
    /// Position in that manifest (ties between files of one commit).
    pub ordinal: usize,
}

/// Table totals (for snapshot summaries and the run summary).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// A table at one snapshot: its manifests and its live files by bucket.
#[derive(Debug, Clone)]
pub struct TableState {
    pub table: Table,
    /// The metadata file the catalog pointer named when this was read.
    pub location: String,
    /// The snapshot's manifest list, in order.
    pub manifests: Vec<ManifestFile>,
    /// Live files of the default partition spec, oldest first within a bucket.
    pub buckets: BTreeMap<Bucket, Vec<LiveFile>>,
    /// Live files of other partition specs (never compacted, still counted).
    pub other_files: u64,
    pub totals: Totals,
}

impl TableState {
    /// Reads the catalog's current snapshot (manifests decoded in parallel).
    /// Refuses tables compaction cannot rewrite safely: format other than v2,
    /// or delete files (a rewrite would have to apply them).
    pub async fn load(catalog: &EarthCatalog) -> Result<Self, CompactError> {
        let table = catalog.table().await?;
        Self::of(table).await
    }

    /// [`TableState::load`] for a table already loaded.
    pub async fn of(table: Table) -> Result<Self, CompactError> {
        let location = table
            .metadata_location()
            .ok_or_else(|| CompactError::Unsupported("table has no metadata location".into()))?
            .to_string();
        let metadata = table.metadata();
        let Some(snapshot) = metadata.current_snapshot() else {
            return Ok(Self {
                table,
                location,
                manifests: vec![],
                buckets: BTreeMap::new(),
                other_files: 0,
                totals: Totals::default(),
            });
        };
        if metadata.format_version() != FormatVersion::V2 {
            return Err(CompactError::Unsupported(format!(
                "format version {} (only v2 tables are compacted)",
                metadata.format_version() as u8
            )));
        }
        let manifests = stats::manifest_list(&table, snapshot)
            .await?
            .consume_entries()
            .into_iter()
            .collect::<Vec<_>>();
        if let Some(m) = manifests
            .iter()
            .find(|m| m.content == ManifestContentType::Deletes)
        {
            return Err(CompactError::Unsupported(format!(
                "it has delete files (manifest {})",
                m.manifest_path
            )));
        }
        let default_spec = metadata.default_partition_spec_id();
        let fields = crate::catalog::partition::PartitionFields::of_default(&table);
        let per_manifest: Vec<ManifestFiles> =
            futures::stream::iter(manifests.iter().cloned().enumerate())
                .map(|(index, m)| {
                    let file_io = table.file_io().clone();
                    tokio::spawn(async move {
                        let manifest = m.load_manifest(&file_io).await.map_err(|e| {
                            CompactError::iceberg(format!("read manifest {}", m.manifest_path), e)
                        })?;
                        let mut files = Vec::new();
                        let mut other = 0;
                        for (ordinal, e) in manifest.entries().iter().enumerate() {
                            if !e.is_alive() || e.content_type() != DataContentType::Data {
                                continue;
                            }
                            if m.partition_spec_id != default_spec {
                                other += 1;
                                continue;
                            }
                            let (cell, year) =
                                stats::cell_and_year(e.data_file().partition(), fields);
                            files.push((
                                Bucket { cell, year },
                                LiveFile {
                                    path: e.file_path().to_string(),
                                    rows: e.record_count(),
                                    bytes: e.file_size_in_bytes(),
                                    sequence_number: e.sequence_number().unwrap_or(0),
                                    manifest: index,
                                    ordinal,
                                },
                            ));
                        }
                        Ok::<_, CompactError>((index, files, other))
                    })
                })
                // Few at a time: a decoded manifest is much larger than its
                // file, and only the small LiveFile index is kept.
                .buffer_unordered(4)
                .map(|joined| {
                    joined
                        .map_err(|e| CompactError::Task(format!("manifest reader failed: {e}")))?
                })
                .try_collect()
                .await?;
        let mut buckets: BTreeMap<Bucket, Vec<LiveFile>> = BTreeMap::new();
        let mut totals = Totals::default();
        let mut other_files = 0;
        for (_, files, other) in per_manifest {
            other_files += other;
            for (bucket, file) in files {
                totals.files += 1;
                totals.rows += file.rows;
                totals.bytes += file.bytes;
                buckets.entry(bucket).or_default().push(file);
            }
        }
        for files in buckets.values_mut() {
            files.sort_by_key(|f| (f.sequence_number, f.manifest, f.ordinal));
        }
        totals.files += other_files;
        Ok(Self {
            table,
            location,
            manifests,
            buckets,
            other_files,
            totals,
        })
    }

    /// Every live path, for checking that planned inputs are still live.
    pub fn live_paths(&self) -> HashMap<&str, &LiveFile> {
        self.buckets
            .values()
            .flatten()
            .map(|f| (f.path.as_str(), f))
            .collect()
    }
}
