//! The EarthCatalog: a PyIceberg-layout SQLite catalog under a base location,
//! its `stac_items` table, the warehouse of GeoParquet files, and the paths of
//! everything that lives beside them (crate docs: the catalog).
//!
//! ```text
//! <base>/earthcatalog.db                      SQLite catalog
//! <base>/warehouse/earthcatalog/stac_items/   table metadata
//! <base>/warehouse/grid_partition=…/year=…/   data files
//! <base>/warehouse_id_hashes.parquet          hash index
//! <base>/.lock                                catalog lock
//! ```

pub mod append;
pub mod hash_index;
pub mod health;
mod iceberg_catalog;
pub mod maintenance;
pub mod part_writer;
pub mod partition;
mod private_copy;
mod remote;
pub mod schema;
pub mod sqlite;
pub mod stats;
pub mod summary;

use std::path::PathBuf;
use std::sync::Arc;

use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};

use crate::grid::Grid;
pub use append::{Bucket, WriteOptions};
pub use iceberg_catalog::{CommitGuard, SqlCatalog};
pub use remote::RemoteError;
use schema::{GridInfo, GridSpec};
pub use sqlite::{SchemaVersion, SqliteError};

use crate::store::{Location, S3Options, Store, StoreError, file_io_for, open_location};

/// File name of the catalog database under the base.
pub const DB_FILE: &str = "earthcatalog.db";
/// Folder of table metadata and data files under the base.
pub const WAREHOUSE_DIR: &str = "warehouse";
/// Key of the lock object under the base.
pub const LOCK_FILE: &str = ".lock";

/// Errors opening, reading or committing to a catalog. Each names the place and the cause.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("no catalog at {base}: run `ecops init --base {base}` to create one")]
    NoCatalog { base: String },
    #[error("{db} has no table {CATALOG}.{TABLE}: run `ecops init --base {base}` to create it",
        CATALOG = schema::NAMESPACE, TABLE = schema::TABLE_NAME)]
    NoTable { base: String, db: String },
    #[error("catalog at {base} is opened read-only; this operation writes")]
    ReadOnly { base: String },
    #[error("catalog at {base} uses {existing}; cannot re-initialise it with {requested}")]
    GridMismatch {
        base: String,
        existing: String,
        requested: String,
    },
    /// The boundaries of a GeoJSON grid cannot be read.
    #[error("boundaries {path}: {source}")]
    BoundariesRead {
        path: String,
        #[source]
        source: crate::store::ReadError,
    },
    /// The boundaries of a GeoJSON grid are not a valid set of regions.
    #[error("boundaries {path}: {source}")]
    Boundaries {
        path: String,
        #[source]
        source: crate::grid::BoundariesError,
    },
    #[error(
        "boundaries {path} changed since the catalog was created (xxh3 {recorded}, now {found}): \
         items were filed under the old regions; restore that file"
    )]
    BoundariesChanged {
        path: String,
        recorded: String,
        found: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sqlite(#[from] SqliteError),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("{context}: {source}")]
    Iceberg {
        context: String,
        // Boxed: iceberg's error is large and this enum travels through every Result.
        #[source]
        source: Box<iceberg::Error>,
    },
    /// Storing a data file failed (the object store's error, URL redacted).
    #[error("writing {uri}: {source}")]
    Write {
        uri: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl CatalogError {
    /// True when trying again may succeed: a lost compare-and-swap, a store
    /// or upload failure. A refusal (read-only, a lost lock, invalid data) is final.
    pub fn retryable(&self) -> bool {
        match self {
            CatalogError::Iceberg { source, .. } => matches!(
                source.kind(),
                iceberg::ErrorKind::CatalogCommitConflicts | iceberg::ErrorKind::Unexpected
            ),
            CatalogError::Remote(_) | CatalogError::Store(_) | CatalogError::Write { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn iceberg(context: &str, source: iceberg::Error) -> Self {
        CatalogError::Iceberg {
            context: context.to_string(),
            source: Box::new(source),
        }
    }
}

/// How to open a catalog.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Refuse every write (commits, lock changes, uploads).
    pub read_only: bool,
    /// S3 settings beyond the `AWS_*` environment.
    pub s3: S3Options,
    /// Attempts after the first when a commit loses to another writer or
    /// fails in a way that may have succeeded (default 4, `--commit-retries`).
    pub commit_retries: Option<u32>,
}

/// How commits are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPolicy {
    pub retries: u32,
    pub first_wait: std::time::Duration,
    pub max_wait: std::time::Duration,
}

impl CommitPolicy {
    /// Iceberg's own defaults: 4 retries from 100 ms.
    pub const DEFAULT_RETRIES: u32 = 4;

    /// The wait before retry `attempt` (1-based): doubling from the first
    /// wait, capped, with ±50% jitter so writers that collided do not collide again.
    pub fn backoff(&self, attempt: u32) -> std::time::Duration {
        let exp = self.first_wait.as_millis() as u64 * (1u64 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_wait.as_millis() as u64);
        let noise = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * capped / 255;
        std::time::Duration::from_millis(capped / 2 + noise)
    }
}

/// Commit retries taken and ambiguous commits settled, since the catalog
/// opened, and the time spent bringing the hash index up to date after commits.
#[derive(Debug, Default)]
pub struct CommitStats {
    pub retries: std::sync::atomic::AtomicU64,
    pub ambiguous: std::sync::atomic::AtomicU64,
    /// Microseconds in [`EarthCatalog::index_after_commit`].
    pub index_micros: std::sync::atomic::AtomicU64,
}

/// An open catalog. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct EarthCatalog {
    base: Store,
    catalog: Arc<SqlCatalog>,
    ident: TableIdent,
    read_only: bool,
    /// S3 settings it was opened with (item fetches of its jobs use them too).
    s3: S3Options,
    commit_retries: u32,
    commit_stats: CommitStats,
    _cache: Option<CacheFile>,
}

impl EarthCatalog {
    /// Opens an existing catalog at `base`.
    pub async fn open(base: &str, opts: &OpenOptions) -> Result<Self, CatalogError> {
        let location = Location::parse(base)?;
        let store = open_location(&location, &opts.s3)?;
        let (db, remote, cache) = match &location {
            Location::Local(dir) => {
                let path = dir.join(DB_FILE);
                if !path.is_file() {
                    return Err(CatalogError::NoCatalog {
                        base: location.to_uri(),
                    });
                }
                let db = match sqlite::SqliteCatalogDb::open(
                    &path,
                    schema::CATALOG_NAME,
                    opts.read_only,
                ) {
                    Ok(db) => db,
                    // A creation killed half-way left an empty database: no catalog yet.
                    Err(_)
                        if !opts.read_only && sqlite::SqliteCatalogDb::is_empty_database(&path) =>
                    {
                        return Err(CatalogError::NoCatalog {
                            base: location.to_uri(),
                        });
                    }
                    Err(e) => return Err(e.into()),
                };
                (db, None, None)
            }
            Location::S3 { .. } => {
                let cache = CacheFile::new(&location)?;
                let Some(remote) = download_db(&store, &cache).await? else {
                    return Err(CatalogError::NoCatalog {
                        base: location.to_uri(),
                    });
                };
                let db = sqlite::SqliteCatalogDb::open(
                    &cache.path,
                    schema::CATALOG_NAME,
                    opts.read_only,
                )?;
                (db, Some(remote), Some(cache))
            }
        };
        let catalog = Self::assemble(store, db, remote, cache, opts.read_only, opts);
        if catalog
            .sql()
            .db()
            .pointer(schema::NAMESPACE, schema::TABLE_NAME)?
            .is_none()
        {
            return Err(CatalogError::NoTable {
                base: location.to_uri(),
                db: catalog.db_uri(),
            });
        }
        Ok(catalog)
    }

    /// Creates a catalog at `base` with an H3 grid (or opens it if it exists
    /// with the same grid). Returns the catalog and whether anything was created.
    pub async fn init(
        base: &str,
        resolution: u8,
        opts: &OpenOptions,
    ) -> Result<(Self, bool), CatalogError> {
        Self::init_grid(base, &GridSpec::H3 { resolution }, opts).await
    }

    /// Creates a catalog at `base` partitioned by `grid` (or opens it if it
    /// exists with the same grid). A GeoJSON grid's boundaries are read and
    /// checked first (a clear error naming the bad feature, and nothing
    /// created); the path is recorded as an absolute location, with the
    /// file's digest. Returns the catalog and whether anything was created.
    pub async fn init_grid(
        base: &str,
        grid: &GridSpec,
        opts: &OpenOptions,
    ) -> Result<(Self, bool), CatalogError> {
        let location = Location::parse(base)?;
        if opts.read_only {
            return Err(CatalogError::ReadOnly {
                base: location.to_uri(),
            });
        }
        let (grid, digest) = checked_grid(grid, &opts.s3).await?;
        match Self::open(base, opts).await {
            Ok(existing) => {
                let table = existing.table().await?;
                if let Some(found) = existing.grid(&table).await
                    && found.spec() != grid
                {
                    return Err(CatalogError::GridMismatch {
                        base: location.to_uri(),
                        existing: found.spec().to_string(),
                        requested: grid.to_string(),
                    });
                }
                return Ok((existing, false));
            }
            Err(CatalogError::NoCatalog { .. } | CatalogError::NoTable { .. }) => {}
            Err(e) => return Err(e),
        }
        let store = open_location(&location, &opts.s3)?;
        let (db, remote, cache) = match &location {
            Location::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
                (
                    sqlite::SqliteCatalogDb::create(&dir.join(DB_FILE), schema::CATALOG_NAME)?,
                    None,
                    None,
                )
            }
            Location::S3 { .. } => {
                let cache = CacheFile::new(&location)?;
                // Start from the remote database when one exists (a table may be missing).
                let remote = match download_db(&store, &cache).await? {
                    Some(remote) => remote,
                    None => remote::RemoteDb::new_unpublished(
                        store.object_store(),
                        store.key(DB_FILE),
                        store.uri(DB_FILE),
                        cache.path.clone(),
                    ),
                };
                let db = sqlite::SqliteCatalogDb::create(&cache.path, schema::CATALOG_NAME)?;
                (db, Some(remote), Some(cache))
            }
        };
        let catalog = Self::assemble(store, db, remote, cache, false, opts);
        let ns = NamespaceIdent::new(schema::NAMESPACE.to_string());
        let sql = catalog.sql();
        if !sql
            .namespace_exists(&ns)
            .await
            .map_err(|e| CatalogError::iceberg("check namespace", e))?
        {
            sql.create_namespace(&ns, Default::default())
                .await
                .map_err(|e| CatalogError::iceberg("create namespace", e))?;
        }
        let props = schema::grid_properties(&grid, &catalog.hash_index_uri(), digest.as_deref());
        catalog.create_items_table(props).await?;
        // An empty index from the start, so the first commit merges into it.
        if let Err(e) = catalog.reset_hash_index().await {
            tracing::warn!("hash index not created: {e}");
        }
        Ok((catalog, true))
    }

    /// Creates the items table with these table properties (grid, index path).
    async fn create_items_table(
        &self,
        properties: std::collections::HashMap<String, String>,
    ) -> Result<(), CatalogError> {
        let ns = NamespaceIdent::new(schema::NAMESPACE.to_string());
        let creation = TableCreation::builder()
            .name(schema::TABLE_NAME.to_string())
            .schema(schema::table_schema().map_err(|e| CatalogError::iceberg("build schema", e))?)
            .partition_spec(
                schema::partition_spec()
                    .map_err(|e| CatalogError::iceberg("build partition spec", e))?,
            )
            .properties(properties)
            .build();
        self.sql()
            .create_table(&ns, creation)
            .await
            .map_err(|e| CatalogError::iceberg(&format!("create table in {}", self.db_uri()), e))?;
        Ok(())
    }

    /// Replaces the items table with an empty one on the same grid (ingest
    /// `--mode full`). Only the catalog entry changes: old metadata and data
    /// files stay in the warehouse, so nothing is deleted by accident.
    pub async fn recreate_table(&self) -> Result<(), CatalogError> {
        self.ensure_writable()?;
        let table = self.table().await?;
        let grid = self.grid(&table).await.ok_or_else(|| {
            CatalogError::Invalid("cannot recreate a table whose grid is unknown".into())
        })?;
        let digest = table
            .metadata()
            .properties()
            .get(schema::props::GRID_BOUNDARIES_DIGEST)
            .cloned();
        let props = schema::grid_properties(
            &grid.spec(),
            &self.hash_index_uri_of(&table),
            digest.as_deref(),
        );
        self.sql()
            .drop_table(&self.ident)
            .await
            .map_err(|e| CatalogError::iceberg("drop table", e))?;
        self.create_items_table(props).await?;
        // The new table holds no ids yet: the old table's index must not
        // answer for it (a failure here is repaired by the next sync, which
        // sees the index names another table).
        if let Err(e) = self.reset_hash_index().await {
            tracing::warn!("hash index not reset for the new table: {e}");
        }
        Ok(())
    }

    fn assemble(
        base: Store,
        db: sqlite::SqliteCatalogDb,
        remote: Option<remote::RemoteDb>,
        cache: Option<CacheFile>,
        read_only: bool,
        opts: &OpenOptions,
    ) -> Self {
        let file_io = file_io_for(&base);
        let warehouse = base.uri(WAREHOUSE_DIR);
        let catalog = Arc::new(SqlCatalog::new(db, file_io, warehouse, remote, read_only));
        Self {
            base,
            catalog,
            ident: TableIdent::new(
                NamespaceIdent::new(schema::NAMESPACE.to_string()),
                schema::TABLE_NAME.to_string(),
            ),
            read_only,
            s3: opts.s3.clone(),
            commit_retries: opts.commit_retries.unwrap_or(CommitPolicy::DEFAULT_RETRIES),
            commit_stats: CommitStats::default(),
            _cache: cache,
        }
    }

    /// The S3 settings the catalog was opened with.
    pub fn s3(&self) -> &S3Options {
        &self.s3
    }

    /// How its commits are retried.
    pub fn commit_policy(&self) -> CommitPolicy {
        CommitPolicy {
            retries: self.commit_retries,
            first_wait: std::time::Duration::from_millis(100),
            max_wait: std::time::Duration::from_secs(5),
        }
    }

    /// Commit retries taken and ambiguous commits settled so far.
    pub fn commit_stats(&self) -> &CommitStats {
        &self.commit_stats
    }

    /// The items table at its current snapshot.
    pub async fn table(&self) -> Result<Table, CatalogError> {
        self.catalog.load(&self.ident).await.map_err(|e| {
            CatalogError::iceberg(&format!("load {} from {}", self.ident, self.db_uri()), e)
        })
    }

    /// The grid recorded in the table properties, or inferred from a cell id.
    pub async fn grid(&self, table: &Table) -> Option<GridInfo> {
        let props = table.metadata().properties();
        if let Some(g) = schema::grid_from_properties(props, None) {
            return Some(g);
        }
        let sample = stats::any_cell(table).await;
        schema::grid_from_properties(props, sample.as_deref())
    }

    /// The table's grid, ready to place footprints: H3 at the recorded (or
    /// inferred) resolution, or the regions of a GeoJSON grid's boundaries
    /// (read once per process, through the store layer; a recorded digest
    /// must still match the file).
    pub async fn load_grid(&self, table: &Table) -> Result<Grid, CatalogError> {
        let info = self.grid(table).await.ok_or_else(|| {
            CatalogError::Invalid(
                "the table records no grid and has no rows to infer it from".into(),
            )
        })?;
        match info.spec() {
            GridSpec::H3 { resolution } => crate::grid::resolution(resolution)
                .map(Grid::H3)
                .map_err(|e| CatalogError::Invalid(e.to_string())),
            GridSpec::GeoJson {
                boundaries_path,
                id_field,
            } => {
                let digest = table
                    .metadata()
                    .properties()
                    .get(schema::props::GRID_BOUNDARIES_DIGEST)
                    .filter(|d| !d.is_empty());
                regions::load(
                    &boundaries_path,
                    &id_field,
                    digest.map(String::as_str),
                    &self.s3,
                )
                .await
                .map(Grid::Regions)
            }
        }
    }

    /// The base store (shared with the lock and inventories).
    pub fn base(&self) -> &Store {
        &self.base
    }

    /// The iceberg catalog.
    pub fn sql(&self) -> &Arc<SqlCatalog> {
        &self.catalog
    }

    /// The table identifier (`earthcatalog.stac_items`).
    pub fn ident(&self) -> &TableIdent {
        &self.ident
    }

    /// True if opened read-only.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Fails with [`CatalogError::ReadOnly`] when the catalog was opened read-only.
    pub fn ensure_writable(&self) -> Result<(), CatalogError> {
        if self.read_only {
            Err(CatalogError::ReadOnly {
                base: self.base.location().to_uri(),
            })
        } else {
            Ok(())
        }
    }

    /// Where the database lives (on S3: the remote object).
    pub fn db_uri(&self) -> String {
        self.base.uri(DB_FILE)
    }

    /// The local file SQLite works on (the cache copy for S3 catalogs).
    pub fn db_local_path(&self) -> PathBuf {
        self.catalog.db().path().to_path_buf()
    }

    /// The warehouse folder (table metadata and data files).
    pub fn warehouse_uri(&self) -> String {
        self.base.uri(WAREHOUSE_DIR)
    }

    /// The hash index file (unique-item count).
    pub fn hash_index_uri(&self) -> String {
        format!("{}_id_hashes.parquet", self.warehouse_uri())
    }

    /// The lock object.
    pub fn lock_uri(&self) -> String {
        self.base.uri(LOCK_FILE)
    }

    /// The layout of the catalog database's tables (PyIceberg v0 or v1).
    pub fn schema_version(&self) -> SchemaVersion {
        self.catalog.db().schema_version()
    }

    /// Moves a v0 catalog database (earthcatalog's, older PyIceberg) to
    /// PyIceberg's v1 layout, as PyIceberg's own migration does. Returns
    /// false when it already was v1. Call it holding the catalog lock.
    pub async fn upgrade_catalog(&self) -> Result<bool, CatalogError> {
        self.ensure_writable()?;
        self.catalog
            .upgrade_schema()
            .await
            .map_err(|e| CatalogError::iceberg("upgrade the catalog database", e))
    }
}

/// A grid spec made ready to record: an H3 resolution in range, or a
/// GeoJSON grid whose boundaries read and check out (the path made
/// absolute), with their digest.
async fn checked_grid(
    grid: &GridSpec,
    s3: &S3Options,
) -> Result<(GridSpec, Option<String>), CatalogError> {
    match grid {
        GridSpec::H3 { resolution } if *resolution > 15 => Err(CatalogError::Invalid(format!(
            "H3 resolution {resolution} is out of range 0–15"
        ))),
        GridSpec::H3 { .. } => Ok((grid.clone(), None)),
        GridSpec::GeoJson {
            boundaries_path,
            id_field,
        } => {
            let path = Location::parse(boundaries_path)?.to_uri();
            if id_field.trim().is_empty() {
                return Err(CatalogError::Invalid("--id-field is empty".into()));
            }
            let (_, digest) = regions::read_checked(&path, id_field, s3).await?;
            Ok((
                GridSpec::GeoJson {
                    boundaries_path: path,
                    id_field: id_field.clone(),
                },
                Some(digest),
            ))
        }
    }
}

/// Loading GeoJSON-grid boundaries, once per process.
mod regions {
    use std::sync::{Arc, Mutex};

    use super::CatalogError;
    use crate::grid::RegionGrid;
    use crate::store::S3Options;

    /// Largest boundaries file read (a few thousand detailed basins fit easily).
    const MAX_BOUNDARIES_BYTES: u64 = 512 << 20;

    type Key = (String, String);
    static LOADED: Mutex<Vec<(Key, Arc<RegionGrid>, String)>> = Mutex::new(Vec::new());

    /// Reads and checks the boundaries; returns the regions and the file's digest.
    pub async fn read_checked(
        path: &str,
        id_field: &str,
        s3: &S3Options,
    ) -> Result<(RegionGrid, String), CatalogError> {
        let shown = crate::store::redact_url(path);
        let bytes = crate::store::read_object(path, s3, MAX_BOUNDARIES_BYTES)
            .await
            .map_err(|source| CatalogError::BoundariesRead {
                path: shown.clone(),
                source,
            })?;
        let digest = format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&bytes));
        let grid = tokio::task::spawn_blocking({
            let id_field = id_field.to_string();
            move || RegionGrid::from_geojson(&bytes, &id_field)
        })
        .await
        .map_err(|e| CatalogError::Invalid(format!("boundaries task failed: {e}")))?
        .map_err(|source| CatalogError::Boundaries {
            path: shown,
            source,
        })?;
        Ok((grid, digest))
    }

    /// The regions of `path` (cached per process), checked against `digest` when recorded.
    pub async fn load(
        path: &str,
        id_field: &str,
        digest: Option<&str>,
        s3: &S3Options,
    ) -> Result<Arc<RegionGrid>, CatalogError> {
        let key = (path.to_string(), id_field.to_string());
        let cached = lock().iter().find(|(k, _, _)| *k == key).cloned();
        let (grid, found) = match cached {
            Some((_, grid, found)) => (grid, found),
            None => {
                let (grid, found) = read_checked(path, id_field, s3).await?;
                let grid = Arc::new(grid);
                lock().push((key, grid.clone(), found.clone()));
                (grid, found)
            }
        };
        if let Some(recorded) = digest
            && recorded != found
        {
            return Err(CatalogError::BoundariesChanged {
                path: crate::store::redact_url(path),
                recorded: recorded.to_string(),
                found,
            });
        }
        Ok(grid)
    }

    fn lock() -> std::sync::MutexGuard<'static, Vec<(Key, Arc<RegionGrid>, String)>> {
        LOADED.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Downloads `<base>/earthcatalog.db` into `cache`; None when there is none.
async fn download_db(
    store: &Store,
    cache: &CacheFile,
) -> Result<Option<remote::RemoteDb>, CatalogError> {
    match remote::RemoteDb::download(
        store.object_store(),
        store.key(DB_FILE),
        store.uri(DB_FILE),
        cache.path.clone(),
    )
    .await
    {
        Ok(remote) => Ok(Some(remote)),
        Err(RemoteError::Missing { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// ecops's cache folder: `ECOPS_CACHE_DIR`, else `$XDG_CACHE_HOME/ecops`, else
/// `~/.cache/ecops`, else the temp dir. Only caches live there: deleting it
/// loses nothing.
pub fn cache_root() -> PathBuf {
    std::env::var_os("ECOPS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("ecops")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/ecops")))
        .unwrap_or_else(|| std::env::temp_dir().join("ecops"))
}

/// A private copy of an S3-hosted database, removed (with WAL files) on drop.
/// Private per process so two ecops runs on one machine never share a cache.
#[derive(Debug)]
struct CacheFile {
    path: PathBuf,
}

impl CacheFile {
    fn new(location: &Location) -> Result<Self, CatalogError> {
        let root = cache_root();
        let slug: String = location
            .to_uri()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(80)
            .collect();
        let dir = root.join("catalogs").join(slug);
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let name = format!(
            "{}-{}.db",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        Ok(Self {
            path: dir.join(name),
        })
    }
}

impl Drop for CacheFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}
