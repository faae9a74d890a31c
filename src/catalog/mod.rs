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
pub mod health;
mod iceberg_catalog;
pub mod part_writer;
mod remote;
pub mod schema;
pub mod sqlite;
pub mod stats;

use std::path::PathBuf;
use std::sync::Arc;

use iceberg::table::Table;
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};

pub use append::{Bucket, WriteOptions};
pub use iceberg_catalog::{CommitGuard, SqlCatalog};
pub use remote::RemoteError;
use schema::GridInfo;
pub use sqlite::SqliteError;

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
    #[error(
        "catalog at {base} uses H3 resolution {existing}; cannot re-initialise it with resolution {requested}"
    )]
    ResolutionMismatch {
        base: String,
        existing: u8,
        requested: u8,
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
        let catalog = Self::assemble(store, db, remote, cache, opts.read_only, &opts.s3);
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

    /// Creates a catalog at `base` (or opens it if it exists with the same grid).
    /// Returns the catalog and whether anything was created.
    pub async fn init(
        base: &str,
        resolution: u8,
        opts: &OpenOptions,
    ) -> Result<(Self, bool), CatalogError> {
        if resolution > 15 {
            return Err(CatalogError::Invalid(format!(
                "H3 resolution {resolution} is out of range 0–15"
            )));
        }
        let location = Location::parse(base)?;
        if opts.read_only {
            return Err(CatalogError::ReadOnly {
                base: location.to_uri(),
            });
        }
        match Self::open(base, opts).await {
            Ok(existing) => {
                let table = existing.table().await?;
                let grid = existing.grid(&table).await;
                if let Some(grid) = grid
                    && grid.resolution != resolution
                {
                    return Err(CatalogError::ResolutionMismatch {
                        base: location.to_uri(),
                        existing: grid.resolution,
                        requested: resolution,
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
        let catalog = Self::assemble(store, db, remote, cache, false, &opts.s3);
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
        catalog.create_items_table(resolution).await?;
        Ok((catalog, true))
    }

    /// Creates the items table with the grid at `resolution`.
    async fn create_items_table(&self, resolution: u8) -> Result<(), CatalogError> {
        let ns = NamespaceIdent::new(schema::NAMESPACE.to_string());
        let creation = TableCreation::builder()
            .name(schema::TABLE_NAME.to_string())
            .schema(schema::table_schema().map_err(|e| CatalogError::iceberg("build schema", e))?)
            .partition_spec(
                schema::partition_spec()
                    .map_err(|e| CatalogError::iceberg("build partition spec", e))?,
            )
            .properties(schema::grid_properties(resolution, &self.hash_index_uri()))
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
        self.sql()
            .drop_table(&self.ident)
            .await
            .map_err(|e| CatalogError::iceberg("drop table", e))?;
        self.create_items_table(grid.resolution).await
    }

    fn assemble(
        base: Store,
        db: sqlite::SqliteCatalogDb,
        remote: Option<remote::RemoteDb>,
        cache: Option<CacheFile>,
        read_only: bool,
        s3: &S3Options,
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
            s3: s3.clone(),
            _cache: cache,
        }
    }

    /// The S3 settings the catalog was opened with.
    pub fn s3(&self) -> &S3Options {
        &self.s3
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
