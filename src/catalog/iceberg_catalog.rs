//! iceberg's `Catalog` trait on the SQLite catalog, so iceberg's own
//! transactions (fast append) commit through it, plus [`SqlCatalog::commit_metadata`],
//! the lower-level "commit this metadata if the pointer is still X" used for
//! commits iceberg's Transaction cannot express (compaction's replace).
//!
//! Every commit runs the installed [`CommitGuard`] first (the lock's fencing
//! check) and, for catalogs hosted on S3, publishes the database afterwards.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use iceberg::io::FileIO;
use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use iceberg::{
    Catalog, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, Result, TableCommit,
    TableCreation, TableIdent,
};

use super::remote::RemoteDb;
use super::sqlite::{CasOutcome, SqliteCatalogDb, SqliteError};

/// Checked before every commit; an error aborts the commit before the pointer moves.
/// The catalog lock installs one that verifies the lock is still ours (fencing).
#[async_trait]
pub trait CommitGuard: Send + Sync + std::fmt::Debug {
    /// Ok if this process may commit now.
    async fn check(&self) -> std::result::Result<(), String>;
}

/// A PyIceberg-layout SQL catalog backed by SQLite and an object-store FileIO.
#[derive(Debug)]
pub struct SqlCatalog {
    db: SqliteCatalogDb,
    file_io: FileIO,
    warehouse: String,
    remote: Option<RemoteDb>,
    read_only: bool,
    guard: Mutex<Option<Arc<dyn CommitGuard>>>,
    /// Serialises pointer swap + S3 publish within this process, so two
    /// commits' uploads never interleave.
    commit_lock: tokio::sync::Mutex<()>,
}

impl SqlCatalog {
    pub(crate) fn new(
        db: SqliteCatalogDb,
        file_io: FileIO,
        warehouse: String,
        remote: Option<RemoteDb>,
        read_only: bool,
    ) -> Self {
        Self {
            db,
            file_io,
            warehouse,
            remote,
            read_only,
            guard: Mutex::new(None),
            commit_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Uploads of an S3-hosted database that reported an error but had landed.
    pub fn settled_uploads(&self) -> u64 {
        self.remote.as_ref().map_or(0, RemoteDb::settled)
    }

    /// The database behind the catalog.
    pub fn db(&self) -> &SqliteCatalogDb {
        &self.db
    }

    /// The FileIO used for metadata and data.
    pub fn file_io(&self) -> &FileIO {
        &self.file_io
    }

    /// Installs (or clears) the check run before every commit.
    pub fn set_commit_guard(&self, guard: Option<Arc<dyn CommitGuard>>) {
        *self.guard.lock().unwrap_or_else(|p| p.into_inner()) = guard;
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::new(
                ErrorKind::PreconditionFailed,
                "catalog is opened read-only",
            ));
        }
        Ok(())
    }

    /// Runs the commit guard (the lock's fencing check) right before a pointer moves.
    async fn check_guard(&self) -> Result<()> {
        let guard = self.guard.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(guard) = guard {
            guard.check().await.map_err(|why| {
                Error::new(
                    ErrorKind::PreconditionFailed,
                    format!("commit refused: {why}"),
                )
            })?;
        }
        Ok(())
    }

    fn table_from(
        &self,
        ident: TableIdent,
        location: String,
        metadata: TableMetadata,
    ) -> Result<Table> {
        Table::builder()
            .file_io(self.file_io.clone())
            .metadata_location(location)
            .metadata(metadata)
            .identifier(ident)
            .readonly(self.read_only)
            .runtime(iceberg::Runtime::current())
            .build()
    }

    /// Writes `metadata` as the next metadata file after `expected_location` and
    /// swaps the pointer to it only if the pointer still names `expected_location`.
    /// On conflict nothing is committed and the error says what the pointer is now.
    pub async fn commit_metadata(
        &self,
        ident: &TableIdent,
        expected_location: &str,
        metadata: TableMetadata,
    ) -> Result<Table> {
        self.check_writable()?;
        let new_location = MetadataLocation::from_str(expected_location)?
            .with_next_version()
            .with_new_metadata(&metadata);
        metadata.write_to(&self.file_io, &new_location).await?;
        let new_location = new_location.to_string();
        self.swap_pointer(ident, expected_location, &new_location)
            .await?;
        self.table_from(ident.clone(), new_location, metadata)
    }

    async fn swap_pointer(&self, ident: &TableIdent, expected: &str, new: &str) -> Result<()> {
        let _serial = self.commit_lock.lock().await;
        crate::testkit::pause_before_swap().await;
        self.check_guard().await?;
        let ns = ns_name(ident.namespace());
        match self
            .db
            .swap_pointer(&ns, ident.name(), expected, new)
            .map_err(sql_err)?
        {
            CasOutcome::Swapped => {}
            // Not retryable inside iceberg's transaction: our commit paths
            // (catalog::append, compaction) retry themselves, counted and logged.
            CasOutcome::Conflict { current } => {
                return Err(Error::new(
                    ErrorKind::CatalogCommitConflicts,
                    format!(
                        "concurrent commit: expected metadata {expected}, found {}",
                        current.as_deref().unwrap_or("no table")
                    ),
                ));
            }
        }
        if let Some(remote) = &self.remote
            && let Err(e) = remote.publish(&self.db).await
        {
            // The catalog on S3 did not take our change: undo it locally, and
            // when another writer's upload is what stopped it, take that one,
            // so the next attempt starts from what every other reader sees.
            let _ = self.db.swap_pointer(&ns, ident.name(), new, expected);
            if let super::remote::RemoteError::ChangedConcurrently { .. } = e
                && let Err(refresh) = remote.refresh(&self.db).await
            {
                tracing::warn!(
                    "reloading the catalog database after a concurrent upload: {refresh}"
                );
            }
            return Err(Error::new(ErrorKind::CatalogCommitConflicts, e.to_string()));
        }
        Ok(())
    }

    /// Moves a v0 catalog database to PyIceberg's v1 layout (and publishes it
    /// when the catalog lives on S3). Returns false when it already was v1.
    pub async fn upgrade_schema(&self) -> Result<bool> {
        self.check_writable()?;
        let _serial = self.commit_lock.lock().await;
        self.check_guard().await?;
        if !self.db.upgrade_to_v1().map_err(sql_err)? {
            return Ok(false);
        }
        if let Some(remote) = &self.remote {
            remote
                .publish(&self.db)
                .await
                .map_err(|e| Error::new(ErrorKind::CatalogCommitConflicts, e.to_string()))?;
        }
        Ok(true)
    }

    /// Loads a table's current metadata.
    pub async fn load(&self, ident: &TableIdent) -> Result<Table> {
        let pointer = self
            .db
            .pointer(&ns_name(ident.namespace()), ident.name())
            .map_err(sql_err)?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::TableNotFound,
                    format!("table {ident} does not exist"),
                )
            })?;
        if pointer.metadata_location.is_empty() {
            return Err(Error::new(
                ErrorKind::DataInvalid,
                format!("table {ident} has no metadata location"),
            ));
        }
        let metadata = TableMetadata::read_from(&self.file_io, &pointer.metadata_location)
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!(
                        "cannot read table metadata {}: {e}",
                        pointer.metadata_location
                    ),
                )
            })?;
        self.table_from(ident.clone(), pointer.metadata_location, metadata)
    }
}

fn ns_name(ns: &NamespaceIdent) -> String {
    ns.clone().inner().join(".")
}

fn sql_err(e: SqliteError) -> Error {
    let kind = match e {
        SqliteError::TableExists { .. } => ErrorKind::TableAlreadyExists,
        SqliteError::NamespaceExists { .. } => ErrorKind::NamespaceAlreadyExists,
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, e.to_string())
}

#[async_trait]
impl Catalog for SqlCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        let all = self.db.namespaces().map_err(sql_err)?;
        let prefix = parent.map(|p| format!("{}.", ns_name(p)));
        all.into_iter()
            .filter(|n| prefix.as_ref().is_none_or(|p| n.starts_with(p.as_str())))
            .map(|n| NamespaceIdent::from_vec(n.split('.').map(str::to_string).collect()))
            .collect()
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.check_writable()?;
        let props: Vec<(String, String)> = properties.clone().into_iter().collect();
        self.db
            .create_namespace(&ns_name(namespace), &props)
            .map_err(sql_err)?;
        Ok(Namespace::with_properties(namespace.clone(), properties))
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        let props = self
            .db
            .namespace_properties(&ns_name(namespace))
            .map_err(sql_err)?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::NamespaceNotFound,
                    format!("namespace {namespace:?} not found"),
                )
            })?;
        Ok(Namespace::with_properties(
            namespace.clone(),
            props.into_iter().collect(),
        ))
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        Ok(self
            .db
            .namespace_properties(&ns_name(namespace))
            .map_err(sql_err)?
            .is_some())
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.check_writable()?;
        let set: Vec<(String, String)> = properties.into_iter().collect();
        self.db
            .update_namespace(&ns_name(namespace), &set, &[])
            .map_err(sql_err)
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.check_writable()?;
        self.db.drop_namespace(&ns_name(namespace)).map_err(sql_err)
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        Ok(self
            .db
            .tables(&ns_name(namespace))
            .map_err(sql_err)?
            .into_iter()
            .map(|t| TableIdent::new(namespace.clone(), t))
            .collect())
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        creation: TableCreation,
    ) -> Result<Table> {
        self.check_writable()?;
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        let location = creation.location.clone().unwrap_or_else(|| {
            format!(
                "{}/{}/{}",
                self.warehouse,
                namespace.clone().inner().join("/"),
                creation.name
            )
        });
        let creation = TableCreation {
            location: Some(location.clone()),
            ..creation
        };
        let metadata = TableMetadataBuilder::from_table_creation(creation)?
            .build()?
            .metadata;
        let metadata_location = MetadataLocation::new_with_metadata(location, &metadata);
        metadata.write_to(&self.file_io, &metadata_location).await?;
        let metadata_location = metadata_location.to_string();
        self.db
            .insert_table(&ns_name(namespace), ident.name(), &metadata_location)
            .map_err(sql_err)?;
        if let Some(remote) = &self.remote
            && let Err(e) = remote.publish(&self.db).await
        {
            let _ = self.db.delete_table(&ns_name(namespace), ident.name());
            return Err(Error::new(ErrorKind::CatalogCommitConflicts, e.to_string()));
        }
        self.table_from(ident, metadata_location, metadata)
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        self.load(table).await
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.check_writable()?;
        if !self
            .db
            .delete_table(&ns_name(table.namespace()), table.name())
            .map_err(sql_err)?
        {
            return Err(Error::new(
                ErrorKind::TableNotFound,
                format!("table {table} does not exist"),
            ));
        }
        if let Some(remote) = &self.remote {
            remote
                .publish(&self.db)
                .await
                .map_err(|e| Error::new(ErrorKind::CatalogCommitConflicts, e.to_string()))?;
        }
        Ok(())
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        let loaded = self.load(table).await?;
        self.drop_table(table).await?;
        iceberg::drop_table_data(&loaded).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        Ok(self
            .db
            .pointer(&ns_name(table.namespace()), table.name())
            .map_err(sql_err)?
            .is_some())
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.check_writable()?;
        let moved = self
            .db
            .rename_table(
                (&ns_name(src.namespace()), src.name()),
                (&ns_name(dest.namespace()), dest.name()),
            )
            .map_err(sql_err)?;
        if !moved {
            return Err(Error::new(
                ErrorKind::TableNotFound,
                format!("table {src} does not exist"),
            ));
        }
        Ok(())
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        self.check_writable()?;
        let metadata = TableMetadata::read_from(&self.file_io, &metadata_location).await?;
        self.db
            .insert_table(
                &ns_name(table.namespace()),
                table.name(),
                &metadata_location,
            )
            .map_err(sql_err)?;
        self.table_from(table.clone(), metadata_location, metadata)
    }

    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        self.check_writable()?;
        let current = self.load(commit.identifier()).await?;
        let expected = current.metadata_location_result()?.to_string();
        let ident = commit.identifier().clone();
        let staged = commit.apply(current)?;
        let new_location = staged.metadata_location_result()?.to_string();
        staged
            .metadata()
            .write_to(&self.file_io, &MetadataLocation::from_str(&new_location)?)
            .await?;
        self.swap_pointer(&ident, &expected, &new_location).await?;
        Ok(staged)
    }
}
