//! A `replace` snapshot built with iceberg's public writers and committed
//! through the catalog's compare-and-swap (iceberg 0.10's Transaction has no
//! rewrite action; see ../shared/notes/iceberg-rust-0.10.md).
//!
//! Manifests whose files are all untouched are carried into the new manifest
//! list as they are; only those listing a removed file are rewritten (their
//! other live entries kept as `existing`, with both sequence numbers). The
//! removed files are recorded as `deleted` entries in a manifest of their
//! own and the new files as `added` entries in another. A deleted-only
//! manifest carried from an earlier snapshot lists nothing live and is
//! dropped. The parent snapshot, its manifest list and manifests stay as
//! they were: time travel to it still sees the old files.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use iceberg::spec::{
    DataFile, MAIN_BRANCH, ManifestFile, ManifestListWriter, ManifestStatus, ManifestWriterBuilder,
    Operation, PartitionSpec, SchemaRef, Snapshot, Summary, TableMetadataBuilder,
};
use iceberg::table::Table;
use iceberg::{ErrorKind, MetadataLocation};

use super::CompactError;
use super::live::{LiveFile, TableState, Totals};
use crate::catalog::EarthCatalog;

/// What one replace commit removes and adds.
#[derive(Debug)]
pub struct Replace<'a> {
    pub removed: Vec<&'a LiveFile>,
    pub added: Vec<AddedFile>,
    /// Distinct (cell, year) buckets touched (for `changed-partition-count`).
    pub partitions: u64,
    /// Extra snapshot-summary properties (`ecops.*`).
    pub properties: HashMap<String, String>,
}

/// A file a replace adds, with the data sequence number it is recorded with.
#[derive(Debug, Clone)]
pub struct AddedFile {
    pub file: DataFile,
    /// The newest data sequence number among the files its rows came from
    /// (not the replace's own): rewritten rows are as old as their inputs,
    /// so a version committed after those — even while the rewrite ran —
    /// stays the newer one for the next compaction's tie-break and for queries.
    pub data_sequence: i64,
}

/// A committed replace: the new table and how manifests moved.
#[derive(Debug)]
pub struct Committed {
    pub table: Table,
    pub location: String,
    pub manifests: Vec<ManifestFile>,
    /// Old manifest index → its index in `manifests` (None: rewritten away
    /// or dropped). Files kept in a rewritten manifest keep this mapping.
    pub remap: Vec<Option<usize>>,
    pub totals: Totals,
    pub snapshot_id: i64,
}

/// Commits `change` on top of `state` as one replace snapshot, only if the
/// catalog pointer still names `state.location`. A moved pointer gives
/// [`CompactError::Conflict`] and nothing is committed (files written for
/// it are unreferenced and left to `remove-orphans`).
pub async fn commit_replace(
    catalog: &EarthCatalog,
    state: &TableState,
    change: Replace<'_>,
) -> Result<Committed, CompactError> {
    let metadata = state.table.metadata();
    let parent = metadata
        .current_snapshot_id()
        .ok_or_else(|| CompactError::Conflict("the table has no snapshot any more".into()))?;
    let ctx = ReplaceCtx::new(&state.table);
    let counts = Counts::of(&change);
    let rewrites = ctx.rewrite_touched(state, &change.removed).await?;
    let (deletes, mut rewritten) = ctx.write_deletes(rewrites).await?;
    let added = ctx.write_added(change.added).await?;

    let mut manifests = Vec::with_capacity(state.manifests.len() + 2);
    let mut remap = vec![None; state.manifests.len()];
    for (i, m) in state.manifests.iter().enumerate() {
        let next = match rewritten.remove(&i) {
            Some(replacement) => replacement,
            None if lists_nothing_live(m) => None,
            None => Some(m.clone()),
        };
        if let Some(next) = next {
            remap[i] = Some(manifests.len());
            manifests.push(next);
        }
    }
    manifests.extend(added);
    manifests.push(deletes);
    let list_path = ctx.write_manifest_list(&mut manifests, parent).await?;

    let totals = Totals {
        files: state.totals.files - counts.removed_files + counts.added_files,
        rows: state.totals.rows - counts.removed_rows + counts.added_rows,
        bytes: state.totals.bytes - counts.removed_bytes + counts.added_bytes,
    };
    let props = summary_properties(change.properties, &counts, change.partitions, &totals);
    let snapshot = Snapshot::builder()
        .with_snapshot_id(ctx.snapshot_id)
        .with_parent_snapshot_id(Some(parent))
        .with_sequence_number(ctx.sequence_number)
        .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
        .with_manifest_list(list_path)
        .with_summary(Summary {
            operation: Operation::Replace,
            additional_properties: props,
        })
        .with_schema_id(metadata.current_schema_id())
        .build();
    let new_metadata =
        TableMetadataBuilder::new_from_metadata(metadata.clone(), Some(state.location.clone()))
            .set_branch_snapshot(snapshot, MAIN_BRANCH)
            .and_then(|b| b.build())
            .map_err(|e| CompactError::iceberg("build the new table metadata", e))?
            .metadata;
    // Fail early on a location the catalog could not advance.
    MetadataLocation::from_str(&state.location)
        .map_err(|e| CompactError::iceberg(format!("metadata location {}", state.location), e))?;
    let table = commit_metadata(catalog, &state.location, new_metadata).await?;
    let location = table.metadata_location().unwrap_or_default().to_string();
    Ok(Committed {
        table,
        location,
        manifests,
        remap,
        totals,
        snapshot_id: ctx.snapshot_id,
    })
}

/// Files, rows and bytes a replace removes and adds.
struct Counts {
    removed_files: u64,
    removed_rows: u64,
    removed_bytes: u64,
    added_files: u64,
    added_rows: u64,
    added_bytes: u64,
}

impl Counts {
    fn of(change: &Replace<'_>) -> Self {
        Self {
            removed_files: change.removed.len() as u64,
            removed_rows: change.removed.iter().map(|f| f.rows).sum(),
            removed_bytes: change.removed.iter().map(|f| f.bytes).sum(),
            added_files: change.added.len() as u64,
            added_rows: change.added.iter().map(|f| f.file.record_count()).sum(),
            added_bytes: change
                .added
                .iter()
                .map(|f| f.file.file_size_in_bytes())
                .sum(),
        }
    }
}

/// The snapshot summary: our `ecops.*` properties and Iceberg's counts.
fn summary_properties(
    mut props: HashMap<String, String>,
    c: &Counts,
    partitions: u64,
    totals: &Totals,
) -> HashMap<String, String> {
    for (k, v) in [
        ("added-data-files", c.added_files),
        ("deleted-data-files", c.removed_files),
        ("added-records", c.added_rows),
        ("deleted-records", c.removed_rows),
        ("added-files-size", c.added_bytes),
        ("removed-files-size", c.removed_bytes),
        ("changed-partition-count", partitions),
        ("total-data-files", totals.files),
        ("total-records", totals.rows),
        ("total-files-size", totals.bytes),
        ("total-delete-files", 0),
        ("total-position-deletes", 0),
        ("total-equality-deletes", 0),
    ] {
        props.insert(k.to_string(), v.to_string());
    }
    props
}

/// What every file of one replace commit is written with.
struct ReplaceCtx {
    file_io: iceberg::io::FileIO,
    schema: SchemaRef,
    spec: PartitionSpec,
    snapshot_id: i64,
    sequence_number: i64,
    meta_dir: String,
    commit_uuid: uuid::Uuid,
}

impl ReplaceCtx {
    fn new(table: &Table) -> Self {
        let metadata = table.metadata();
        Self {
            file_io: table.file_io().clone(),
            schema: metadata.current_schema().clone(),
            spec: metadata.default_partition_spec().as_ref().clone(),
            snapshot_id: new_snapshot_id(table),
            sequence_number: metadata.next_sequence_number(),
            meta_dir: format!("{}/metadata", metadata.location()),
            commit_uuid: uuid::Uuid::now_v7(),
        }
    }

    fn manifest_path(&self, n: usize) -> String {
        format!("{}/{}-m{n}.avro", self.meta_dir, self.commit_uuid)
    }

    fn manifest_writer(&self, n: usize) -> Result<iceberg::spec::ManifestWriter, CompactError> {
        Ok(ManifestWriterBuilder::new(
            output(&self.file_io, &self.manifest_path(n))?,
            Some(self.snapshot_id),
            self.schema.clone(),
            self.spec.clone(),
        )
        .build_v2_data())
    }

    /// Rewrites, four at a time, every manifest that lists a removed file.
    async fn rewrite_touched(
        &self,
        state: &TableState,
        removed: &[&LiveFile],
    ) -> Result<Vec<Rewritten>, CompactError> {
        let mut touched: HashMap<usize, HashSet<String>> = HashMap::new();
        for f in removed {
            touched
                .entry(f.manifest)
                .or_default()
                .insert(f.path.clone());
        }
        tracing::debug!(
            "replace: {} removed files in {} of {} manifests",
            removed.len(),
            touched.len(),
            state.manifests.len()
        );
        futures::stream::iter(touched.into_iter().enumerate())
            .map(|(n, (index, paths))| {
                let job = RewriteJob {
                    manifest: state.manifests[index].clone(),
                    index,
                    paths,
                    output: self.manifest_path(n + 2),
                    snapshot_id: self.snapshot_id,
                    schema: self.schema.clone(),
                    spec: self.spec.clone(),
                    file_io: self.file_io.clone(),
                };
                tokio::spawn(job.run())
            })
            .buffer_unordered(4)
            .map(|j| j.map_err(|e| CompactError::Task(format!("manifest rewrite failed: {e}")))?)
            .try_collect()
            .await
    }

    /// The manifest of removed files (deleted entries keep both original
    /// sequence numbers), and each rewritten manifest by its old index.
    async fn write_deletes(
        &self,
        rewrites: Vec<Rewritten>,
    ) -> Result<(ManifestFile, HashMap<usize, Option<ManifestFile>>), CompactError> {
        let mut deletes = self.manifest_writer(0)?;
        let mut rewritten = HashMap::new();
        for r in rewrites {
            for (file, seq, file_seq) in r.deleted {
                deletes
                    .add_delete_file(file, seq, file_seq)
                    .map_err(|e| CompactError::iceberg("record a removed file", e))?;
            }
            rewritten.insert(r.index, r.manifest);
        }
        let deletes = deletes
            .write_manifest_file()
            .await
            .map_err(|e| CompactError::iceberg("write the deleted-files manifest", e))?;
        Ok((deletes, rewritten))
    }

    /// The manifest of added files, each with its own data sequence number.
    async fn write_added(
        &self,
        added: Vec<AddedFile>,
    ) -> Result<Option<ManifestFile>, CompactError> {
        if added.is_empty() {
            return Ok(None);
        }
        let mut writer = self.manifest_writer(1)?;
        for a in added {
            writer
                .add_file(a.file, a.data_sequence)
                .map_err(|e| CompactError::iceberg("record an added file", e))?;
        }
        writer
            .write_manifest_file()
            .await
            .map(Some)
            .map_err(|e| CompactError::iceberg("write the added-files manifest", e))
    }

    /// Writes the snapshot's manifest list; gives the new manifests the
    /// sequence number the list writer assigned them.
    async fn write_manifest_list(
        &self,
        manifests: &mut [ManifestFile],
        parent: i64,
    ) -> Result<String, CompactError> {
        let list_path = format!(
            "{}/snap-{}-0-{}.avro",
            self.meta_dir, self.snapshot_id, self.commit_uuid
        );
        let writer = output(&self.file_io, &list_path)?
            .writer()
            .await
            .map_err(|e| CompactError::iceberg(format!("create {list_path}"), e))?;
        let mut list =
            ManifestListWriter::v2(writer, self.snapshot_id, Some(parent), self.sequence_number);
        list.add_manifests(manifests.iter().cloned())
            .map_err(|e| CompactError::iceberg("build the manifest list", e))?;
        list.close()
            .await
            .map_err(|e| CompactError::iceberg(format!("write {list_path}"), e))?;
        for m in manifests.iter_mut() {
            if m.added_snapshot_id == self.snapshot_id {
                m.sequence_number = self.sequence_number;
                if m.min_sequence_number < 0 {
                    m.min_sequence_number = self.sequence_number;
                }
            }
        }
        Ok(list_path)
    }
}

/// Compare-and-swap of the catalog pointer; a moved pointer is a [`CompactError::Conflict`].
pub async fn commit_metadata(
    catalog: &EarthCatalog,
    expected: &str,
    metadata: iceberg::spec::TableMetadata,
) -> Result<Table, CompactError> {
    catalog
        .sql()
        .commit_metadata(catalog.ident(), expected, metadata)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::CatalogCommitConflicts => CompactError::Conflict(e.to_string()),
            _ => CompactError::iceberg("commit", e),
        })
}

/// A manifest with counts that says it lists no live file (e.g. the
/// deleted-files manifest of an earlier replace).
fn lists_nothing_live(m: &ManifestFile) -> bool {
    matches!(
        (m.added_files_count, m.existing_files_count),
        (Some(0), Some(0))
    )
}

fn output(
    file_io: &iceberg::io::FileIO,
    path: &str,
) -> Result<iceberg::io::OutputFile, CompactError> {
    file_io
        .new_output(path)
        .map_err(|e| CompactError::iceberg(format!("create {path}"), e))
}

/// A fresh positive snapshot id not used by the table.
pub fn new_snapshot_id(table: &Table) -> i64 {
    loop {
        let (a, b) = uuid::Uuid::new_v4().as_u64_pair();
        let id = ((a ^ b) & (i64::MAX as u64)) as i64;
        if id != 0 && table.metadata().snapshot_by_id(id).is_none() {
            return id;
        }
    }
}

struct RewriteJob {
    manifest: ManifestFile,
    index: usize,
    paths: HashSet<String>,
    output: String,
    snapshot_id: i64,
    schema: SchemaRef,
    spec: PartitionSpec,
    file_io: iceberg::io::FileIO,
}

struct Rewritten {
    index: usize,
    /// The manifest without the removed files (None when nothing live is left).
    manifest: Option<ManifestFile>,
    /// Removed files with their data and file sequence numbers.
    deleted: Vec<(DataFile, i64, Option<i64>)>,
}

impl RewriteJob {
    async fn run(self) -> Result<Rewritten, CompactError> {
        let path = self.manifest.manifest_path.clone();
        let loaded = self
            .manifest
            .load_manifest(&self.file_io)
            .await
            .map_err(|e| CompactError::iceberg(format!("read manifest {path}"), e))?;
        let (entries, _) = loaded.into_parts();
        let mut writer = ManifestWriterBuilder::new(
            output(&self.file_io, &self.output)?,
            Some(self.snapshot_id),
            self.schema,
            self.spec,
        )
        .build_v2_data();
        let mut deleted = Vec::new();
        let mut found = BTreeSet::new();
        let mut kept = 0usize;
        for entry in entries {
            // Deleted entries belong to the snapshot that deleted them.
            if entry.status() == ManifestStatus::Deleted {
                continue;
            }
            let entry = Arc::unwrap_or_clone(entry);
            let snapshot = entry.snapshot_id.unwrap_or(self.manifest.added_snapshot_id);
            let seq = entry
                .sequence_number
                .unwrap_or(self.manifest.sequence_number);
            let file_seq = entry.file_sequence_number.or(Some(seq));
            if self.paths.contains(entry.file_path()) {
                found.insert(entry.file_path().to_string());
                deleted.push((entry.data_file, seq, file_seq));
            } else {
                writer
                    .add_existing_file(entry.data_file, snapshot, seq, file_seq)
                    .map_err(|e| CompactError::iceberg(format!("rewrite manifest {path}"), e))?;
                kept += 1;
            }
        }
        if found.len() != self.paths.len() {
            let missing = self.paths.iter().find(|p| !found.contains(p.as_str()));
            return Err(CompactError::Conflict(format!(
                "{} is no longer live in manifest {path}",
                missing.map_or("a planned file", |p| p.as_str())
            )));
        }
        let manifest = if kept == 0 {
            None
        } else {
            Some(
                writer
                    .write_manifest_file()
                    .await
                    .map_err(|e| CompactError::iceberg(format!("write {}", self.output), e))?,
            )
        };
        Ok(Rewritten {
            index: self.index,
            manifest,
            deleted,
        })
    }
}
