//! The catalog database in PyIceberg's SqlCatalog layout, through rusqlite.
//!
//! Contract: a table's current metadata is the `metadata_location` of its row
//! in `iceberg_tables`; a commit swaps it with a compare-and-swap `UPDATE …
//! WHERE metadata_location = ?old`. Zero rows updated means another writer
//! committed first.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::private_copy::{PrivateCopy, needs_private_copy};

/// Errors of the SQLite catalog.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("catalog database {path}: {source}")]
    Sql {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path} is not an Iceberg SQL catalog (no iceberg_tables table)")]
    NotACatalog { path: String },
    #[error("table {namespace}.{table} already exists in {path}")]
    TableExists {
        path: String,
        namespace: String,
        table: String,
    },
    #[error("namespace {namespace} already exists in {path}")]
    NamespaceExists { path: String, namespace: String },
    #[error("namespace {namespace} is not empty")]
    NamespaceNotEmpty { namespace: String },
    #[error("catalog database {path}: reading a private copy: {source}")]
    Copy {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result of a pointer compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CasOutcome {
    /// The pointer now names the new metadata.
    Swapped,
    /// Another writer moved the pointer; it now names this location.
    Conflict { current: Option<String> },
}

/// The `iceberg_tables` row of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePointer {
    pub metadata_location: String,
    pub previous_metadata_location: Option<String>,
}

/// Which layout of PyIceberg's SqlCatalog tables a database uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaVersion {
    /// No `iceberg_type` column (PyIceberg before 0.10, earthcatalog's
    /// catalogs): PyIceberg warns and runs in v0 mode.
    V0,
    /// `iceberg_tables.iceberg_type` (`TABLE`, `VIEW`, or NULL for rows
    /// written before the column existed): PyIceberg's current layout.
    V1,
}

impl std::fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SchemaVersion::V0 => "v0",
            SchemaVersion::V1 => "v1",
        })
    }
}

/// What PyIceberg writes in `iceberg_type` for a table.
const ICEBERG_TABLE_TYPE: &str = "TABLE";

/// Rows that are tables (v1 databases may also hold views).
const IS_TABLE: &str = "(iceberg_type = 'TABLE' OR iceberg_type IS NULL)";

/// The tables exactly as PyIceberg 0.12 creates them (v1 layout).
const CREATE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS iceberg_tables (
\tcatalog_name VARCHAR(255) NOT NULL, 
\ttable_namespace VARCHAR(255) NOT NULL, 
\ttable_name VARCHAR(255) NOT NULL, 
\tmetadata_location VARCHAR(1000), 
\tprevious_metadata_location VARCHAR(1000), 
\ticeberg_type VARCHAR(5), 
\tPRIMARY KEY (catalog_name, table_namespace, table_name)
);
CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
\tcatalog_name VARCHAR(255) NOT NULL, 
\tnamespace VARCHAR(255) NOT NULL, 
\tproperty_key VARCHAR(255) NOT NULL, 
\tproperty_value VARCHAR(1000) NOT NULL, 
\tPRIMARY KEY (catalog_name, namespace, property_key)
);";

/// A PyIceberg-layout catalog database.
#[derive(Debug)]
pub struct SqliteCatalogDb {
    path: PathBuf,
    catalog: String,
    conn: Mutex<Connection>,
    /// Detected at open; [`Self::upgrade_to_v1`] moves it to V1.
    schema: Mutex<SchemaVersion>,
    /// A read-only open of a database that cannot be read in place without
    /// writing beside it reads a private copy, refreshed when the original changes.
    copy: Mutex<Option<PrivateCopy>>,
    /// The database stayed in WAL mode (another connection held it when we
    /// asked for a rollback journal): every commit is checkpointed into the
    /// main file, so the file alone always holds every commit.
    wal: bool,
}

impl SqliteCatalogDb {
    /// Opens an existing catalog database. `read_only` never writes a byte
    /// next to it: it reads in place when SQLite can (a rollback-journal
    /// database with no journal lying beside it), else from a private copy.
    pub fn open(path: &Path, catalog: &str, read_only: bool) -> Result<Self, SqliteError> {
        let (conn, copy) = if read_only {
            Self::connect_reader(path)?
        } else {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(path, flags).map_err(|e| sql(path, e))?;
            (conn, None)
        };
        let db = Self::configure(path, catalog, conn, read_only, copy)?;
        let has_tables: bool = db
            .with_conn(|c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='iceberg_tables'",
                    [],
                    |r| r.get::<_, i64>(0),
                )
            })
            .map(|n| n > 0)?;
        if !has_tables {
            return Err(SqliteError::NotACatalog {
                path: path.display().to_string(),
            });
        }
        db.detect_schema()?;
        Ok(db)
    }

    /// True when `path` is an SQLite database without a single table: what a
    /// process killed while creating a catalog leaves (opening it read-write
    /// first rolls back a half-done creation). Such a file holds nothing and
    /// can be created over. False on any error.
    pub fn is_empty_database(path: &Path) -> bool {
        let Ok(conn) = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        ) else {
            return false;
        };
        let _ = conn.busy_timeout(busy_timeout());
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .is_ok_and(|n| n == 0)
    }

    /// Creates (or opens) a catalog database and its two tables. New
    /// databases get PyIceberg's v1 layout; an existing v0 database keeps
    /// its layout (see [`Self::upgrade_to_v1`]).
    pub fn create(path: &Path, catalog: &str) -> Result<Self, SqliteError> {
        let conn = Connection::open(path).map_err(|e| sql(path, e))?;
        let db = Self::configure(path, catalog, conn, false, None)?;
        db.with_conn(|c| c.execute_batch(CREATE_TABLES))?;
        db.detect_schema()?;
        Ok(db)
    }

    /// Reads the layout from the `iceberg_tables` columns.
    fn detect_schema(&self) -> Result<(), SqliteError> {
        let has_type: bool = self.with_conn(|c| {
            c.query_row(
                "SELECT count(*) FROM pragma_table_info('iceberg_tables') WHERE name = 'iceberg_type'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })? > 0;
        *self.schema.lock().unwrap_or_else(|p| p.into_inner()) = if has_type {
            SchemaVersion::V1
        } else {
            SchemaVersion::V0
        };
        Ok(())
    }

    /// The layout of the catalog tables.
    pub fn schema_version(&self) -> SchemaVersion {
        *self.schema.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds the `iceberg_type` column to a v0 database, as PyIceberg's own
    /// migration does (`schema_version = v1`): existing rows keep NULL,
    /// which every reader takes for a table. Returns false when the
    /// database was already v1 (nothing changed).
    pub fn upgrade_to_v1(&self) -> Result<bool, SqliteError> {
        if self.schema_version() == SchemaVersion::V1 {
            return Ok(false);
        }
        self.with_conn(|c| {
            c.execute_batch("ALTER TABLE iceberg_tables ADD COLUMN iceberg_type VARCHAR(5)")
        })?;
        self.detect_schema()?;
        Ok(true)
    }

    /// `AND <rows that are tables>` on v1 databases; nothing on v0 ones.
    fn table_rows(&self) -> String {
        match self.schema_version() {
            SchemaVersion::V0 => String::new(),
            SchemaVersion::V1 => format!(" AND {IS_TABLE}"),
        }
    }

    /// A reader's connection: in place, read-only, when that writes nothing;
    /// else on a private copy (recovered there, queries only).
    fn connect_reader(path: &Path) -> Result<(Connection, Option<PrivateCopy>), SqliteError> {
        if !needs_private_copy(path) {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(path, flags).map_err(|e| sql(path, e))?;
            return Ok((conn, None));
        }
        let copy = PrivateCopy::new(path).map_err(|e| SqliteError::Copy {
            path: path.display().to_string(),
            source: e,
        })?;
        let conn = Self::connect_copy(&copy)?;
        Ok((conn, Some(copy)))
    }

    fn connect_copy(copy: &PrivateCopy) -> Result<Connection, SqliteError> {
        let path = copy.path();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| sql(&path, e))?;
        conn.pragma_update(None, "query_only", true)
            .map_err(|e| sql(&path, e))?;
        Ok(conn)
    }

    fn configure(
        path: &Path,
        catalog: &str,
        conn: Connection,
        read_only: bool,
        copy: Option<PrivateCopy>,
    ) -> Result<Self, SqliteError> {
        conn.busy_timeout(busy_timeout())
            .map_err(|e| sql(path, e))?;
        let mut wal = false;
        if !read_only {
            // A rollback journal, as PyIceberg's own catalogs use: after every
            // commit the database file alone holds the whole catalog (other
            // tools copy only it), and readers need no side files.
            let mode: String = conn
                .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
                .map_err(|e| sql(path, e))?;
            wal = mode.eq_ignore_ascii_case("wal");
            if wal {
                tracing::warn!(
                    "{}: stays in WAL mode (another connection holds it); every commit is checkpointed",
                    path.display()
                );
            }
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(|e| sql(path, e))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            catalog: catalog.to_string(),
            conn: Mutex::new(conn),
            schema: Mutex::new(SchemaVersion::V0),
            copy: Mutex::new(copy),
            wal,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, SqliteError> {
        // A poisoned mutex only means another thread panicked mid-call; SQLite's
        // own transactions keep the file consistent, so carry on.
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        self.refresh_copy(&mut guard)?;
        f(&mut guard).map_err(|e| sql(&self.path, e))
    }

    /// A reader of a private copy copies the original again when it changed.
    fn refresh_copy(&self, conn: &mut Connection) -> Result<(), SqliteError> {
        let mut copy = self.copy.lock().unwrap_or_else(|p| p.into_inner());
        let Some(copy) = copy.as_mut().filter(|c| c.is_stale()) else {
            return Ok(());
        };
        let stale = std::mem::replace(
            conn,
            Connection::open_in_memory().map_err(|e| sql(&self.path, e))?,
        );
        drop(stale);
        copy.refresh().map_err(|e| SqliteError::Copy {
            path: self.path.display().to_string(),
            source: e,
        })?;
        *conn = Self::connect_copy(copy)?;
        conn.busy_timeout(busy_timeout())
            .map_err(|e| sql(&self.path, e))
    }

    /// Namespaces of this catalog (from tables and namespace properties).
    pub fn namespaces(&self) -> Result<Vec<String>, SqliteError> {
        self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT DISTINCT table_namespace FROM iceberg_tables WHERE catalog_name=?1
                 UNION SELECT DISTINCT namespace FROM iceberg_namespace_properties WHERE catalog_name=?1
                 ORDER BY 1",
            )?;
            stmt.query_map([&self.catalog], |r| r.get(0))?.collect()
        })
    }

    /// Properties of a namespace, or None if it does not exist.
    pub fn namespace_properties(
        &self,
        ns: &str,
    ) -> Result<Option<Vec<(String, String)>>, SqliteError> {
        let props: Vec<(String, String)> = self.with_conn(|c| {
            let mut stmt = c.prepare(
                "SELECT property_key, property_value FROM iceberg_namespace_properties
                 WHERE catalog_name=?1 AND namespace=?2 ORDER BY property_key",
            )?;
            stmt.query_map(params![self.catalog, ns], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })?;
        if !props.is_empty() || self.namespaces()?.iter().any(|n| n == ns) {
            Ok(Some(
                props.into_iter().filter(|(k, _)| k != "exists").collect(),
            ))
        } else {
            Ok(None)
        }
    }

    /// Creates a namespace (PyIceberg records `exists = true`).
    pub fn create_namespace(
        &self,
        ns: &str,
        props: &[(String, String)],
    ) -> Result<(), SqliteError> {
        if self.namespace_properties(ns)?.is_some() {
            return Err(SqliteError::NamespaceExists {
                path: self.path.display().to_string(),
                namespace: ns.to_string(),
            });
        }
        self.with_conn(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO iceberg_namespace_properties VALUES (?1, ?2, 'exists', 'true')",
                params![self.catalog, ns],
            )?;
            for (k, v) in props {
                tx.execute(
                    "INSERT OR REPLACE INTO iceberg_namespace_properties VALUES (?1, ?2, ?3, ?4)",
                    params![self.catalog, ns, k, v],
                )?;
            }
            tx.commit()
        })
    }

    /// Sets and removes namespace properties in one transaction.
    pub fn update_namespace(
        &self,
        ns: &str,
        set: &[(String, String)],
        remove: &[String],
    ) -> Result<(), SqliteError> {
        self.with_conn(|c| {
            let tx = c.transaction()?;
            for k in remove {
                tx.execute(
                    "DELETE FROM iceberg_namespace_properties WHERE catalog_name=?1 AND namespace=?2 AND property_key=?3",
                    params![self.catalog, ns, k],
                )?;
            }
            for (k, v) in set {
                tx.execute(
                    "INSERT OR REPLACE INTO iceberg_namespace_properties VALUES (?1, ?2, ?3, ?4)",
                    params![self.catalog, ns, k, v],
                )?;
            }
            tx.commit()
        })
    }

    /// Drops an empty namespace.
    pub fn drop_namespace(&self, ns: &str) -> Result<(), SqliteError> {
        if !self.tables(ns)?.is_empty() {
            return Err(SqliteError::NamespaceNotEmpty {
                namespace: ns.to_string(),
            });
        }
        self.with_conn(|c| {
            c.execute(
                "DELETE FROM iceberg_namespace_properties WHERE catalog_name=?1 AND namespace=?2",
                params![self.catalog, ns],
            )
        })
        .map(|_| ())
    }

    /// Table names in a namespace.
    pub fn tables(&self, ns: &str) -> Result<Vec<String>, SqliteError> {
        let filter = self.table_rows();
        self.with_conn(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT table_name FROM iceberg_tables WHERE catalog_name=?1 AND table_namespace=?2{filter} ORDER BY 1",
            ))?;
            stmt.query_map(params![self.catalog, ns], |r| r.get(0))?.collect()
        })
    }

    /// The pointer row of a table, if it exists.
    pub fn pointer(&self, ns: &str, table: &str) -> Result<Option<TablePointer>, SqliteError> {
        let filter = self.table_rows();
        self.with_conn(|c| {
            c.query_row(
                &format!(
                    "SELECT metadata_location, previous_metadata_location FROM iceberg_tables
                 WHERE catalog_name=?1 AND table_namespace=?2 AND table_name=?3{filter}"
                ),
                params![self.catalog, ns, table],
                |r| {
                    Ok(TablePointer {
                        metadata_location: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                        previous_metadata_location: r.get(1)?,
                    })
                },
            )
            .optional()
        })
    }

    /// Registers a new table; fails if it exists.
    pub fn insert_table(
        &self,
        ns: &str,
        table: &str,
        metadata_location: &str,
    ) -> Result<(), SqliteError> {
        let inserted = self.with_conn(|c| match self.schema_version() {
            SchemaVersion::V0 => c.execute(
                "INSERT OR IGNORE INTO iceberg_tables
                 (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location)
                 VALUES (?1, ?2, ?3, ?4, NULL)",
                params![self.catalog, ns, table, metadata_location],
            ),
            SchemaVersion::V1 => c.execute(
                "INSERT OR IGNORE INTO iceberg_tables
                 (catalog_name, table_namespace, table_name, metadata_location, previous_metadata_location, iceberg_type)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
                params![self.catalog, ns, table, metadata_location, ICEBERG_TABLE_TYPE],
            ),
        })?;
        if inserted == 0 {
            return Err(SqliteError::TableExists {
                path: self.path.display().to_string(),
                namespace: ns.to_string(),
                table: table.to_string(),
            });
        }
        Ok(())
    }

    /// Removes a table's row (files are left alone).
    pub fn delete_table(&self, ns: &str, table: &str) -> Result<bool, SqliteError> {
        self.with_conn(|c| {
            c.execute(
                "DELETE FROM iceberg_tables WHERE catalog_name=?1 AND table_namespace=?2 AND table_name=?3",
                params![self.catalog, ns, table],
            )
        })
        .map(|n| n > 0)
    }

    /// Renames a table row.
    pub fn rename_table(&self, from: (&str, &str), to: (&str, &str)) -> Result<bool, SqliteError> {
        self.with_conn(|c| {
            c.execute(
                "UPDATE iceberg_tables SET table_namespace=?4, table_name=?5
                 WHERE catalog_name=?1 AND table_namespace=?2 AND table_name=?3",
                params![self.catalog, from.0, from.1, to.0, to.1],
            )
        })
        .map(|n| n > 0)
    }

    /// Compare-and-swap of the metadata pointer: set `new` only if it is still `expected`.
    pub fn swap_pointer(
        &self,
        ns: &str,
        table: &str,
        expected: &str,
        new: &str,
    ) -> Result<CasOutcome, SqliteError> {
        let updated = self.with_conn(|c| {
            c.execute(
                "UPDATE iceberg_tables SET metadata_location=?5, previous_metadata_location=?4
                 WHERE catalog_name=?1 AND table_namespace=?2 AND table_name=?3 AND metadata_location=?4",
                params![self.catalog, ns, table, expected, new],
            )
        })?;
        if updated == 1 {
            // The commit is in; a WAL database folds it into the main file.
            if let Err(e) = self.checkpoint() {
                tracing::warn!("{}: checkpoint after a commit: {e}", self.path.display());
            }
            return Ok(CasOutcome::Swapped);
        }
        let current = self.pointer(ns, table)?.map(|p| p.metadata_location);
        Ok(CasOutcome::Conflict { current })
    }

    /// Replaces the whole database with `bytes` (a newer copy of an
    /// S3-hosted catalog): the connection is closed, the file written, and
    /// the connection opened again.
    pub fn replace_contents(&self, bytes: &[u8]) -> Result<(), SqliteError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let placeholder = Connection::open_in_memory().map_err(|e| sql(&self.path, e))?;
        drop(std::mem::replace(&mut *conn, placeholder));
        for suffix in ["-journal", "-wal", "-shm"] {
            let mut side = self.path.as_os_str().to_owned();
            side.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(side));
        }
        std::fs::write(&self.path, bytes).map_err(|e| SqliteError::Copy {
            path: self.path.display().to_string(),
            source: e,
        })?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let fresh =
            Connection::open_with_flags(&self.path, flags).map_err(|e| sql(&self.path, e))?;
        fresh
            .busy_timeout(busy_timeout())
            .map_err(|e| sql(&self.path, e))?;
        *conn = fresh;
        drop(conn);
        self.detect_schema()
    }

    /// Folds the WAL, if any, into the main file so the file alone is the
    /// whole catalog (after a commit, before uploading it to S3). A database
    /// with a rollback journal needs nothing.
    pub fn checkpoint(&self) -> Result<(), SqliteError> {
        if !self.wal {
            return Ok(());
        }
        self.with_conn(|c| c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())))
    }
}

/// How long a statement waits for another connection's lock before failing
/// with "database is locked": 10 s, or `ECOPS_SQLITE_BUSY_TIMEOUT_MS`.
fn busy_timeout() -> Duration {
    std::env::var("ECOPS_SQLITE_BUSY_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis)
}

fn sql(path: &Path, source: rusqlite::Error) -> SqliteError {
    SqliteError::Sql {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_swaps_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteCatalogDb::create(&dir.path().join("c.db"), "earthcatalog").unwrap();
        db.create_namespace("ns", &[]).unwrap();
        db.insert_table("ns", "t", "/m/0.json").unwrap();
        assert!(matches!(
            db.insert_table("ns", "t", "/m/x.json"),
            Err(SqliteError::TableExists { .. })
        ));
        assert_eq!(
            db.swap_pointer("ns", "t", "/m/0.json", "/m/1.json")
                .unwrap(),
            CasOutcome::Swapped
        );
        assert_eq!(
            db.swap_pointer("ns", "t", "/m/0.json", "/m/2.json")
                .unwrap(),
            CasOutcome::Conflict {
                current: Some("/m/1.json".into())
            }
        );
        let p = db.pointer("ns", "t").unwrap().unwrap();
        assert_eq!(p.metadata_location, "/m/1.json");
        assert_eq!(p.previous_metadata_location.as_deref(), Some("/m/0.json"));
        assert_eq!(db.namespaces().unwrap(), vec!["ns".to_string()]);
        assert!(matches!(
            db.drop_namespace("ns"),
            Err(SqliteError::NamespaceNotEmpty { .. })
        ));
    }

    #[test]
    fn new_databases_are_v1_and_v0_ones_stay_v0_until_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteCatalogDb::create(&dir.path().join("new.db"), "earthcatalog").unwrap();
        assert_eq!(db.schema_version(), SchemaVersion::V1);
        db.insert_table("ns", "t", "/m/0.json").unwrap();
        let kind: Option<String> = db
            .with_conn(|c| c.query_row("SELECT iceberg_type FROM iceberg_tables", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(kind.as_deref(), Some("TABLE"));

        // A v0 database (earthcatalog's, PyIceberg < 0.10): read and written as it is.
        let old = dir.path().join("old.db");
        Connection::open(&old)
            .unwrap()
            .execute_batch(&CREATE_TABLES.replace("\ticeberg_type VARCHAR(5), \n", ""))
            .unwrap();
        let db = SqliteCatalogDb::create(&old, "earthcatalog").unwrap();
        assert_eq!(db.schema_version(), SchemaVersion::V0);
        db.insert_table("ns", "t", "/m/0.json").unwrap();
        assert_eq!(db.tables("ns").unwrap(), vec!["t".to_string()]);
        let db = SqliteCatalogDb::open(&old, "earthcatalog", false).unwrap();
        assert_eq!(db.schema_version(), SchemaVersion::V0);
        assert!(db.upgrade_to_v1().unwrap());
        assert!(
            !db.upgrade_to_v1().unwrap(),
            "a second upgrade changes nothing"
        );
        assert_eq!(db.schema_version(), SchemaVersion::V1);
        // Rows from before the upgrade (iceberg_type NULL) are still tables.
        assert_eq!(
            db.pointer("ns", "t").unwrap().unwrap().metadata_location,
            "/m/0.json"
        );
        db.insert_table("ns", "u", "/m/u.json").unwrap();
        assert_eq!(db.tables("ns").unwrap(), vec!["t".to_string(), "u".into()]);
    }

    #[test]
    fn rejects_non_catalog_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        std::fs::write(&path, b"not sqlite at all, just text").unwrap();
        assert!(SqliteCatalogDb::open(&path, "earthcatalog", true).is_err());
        let empty = dir.path().join("e.db");
        Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE t(x)")
            .unwrap();
        assert!(matches!(
            SqliteCatalogDb::open(&empty, "earthcatalog", true),
            Err(SqliteError::NotACatalog { .. })
        ));
    }
}
