//! An S3-hosted catalog database: downloaded to a local cache, used there, and
//! uploaded back after each commit with a conditional put on the etag read at
//! download (or written by our last upload). A concurrent writer is detected
//! as a precondition failure, never overwritten.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

use super::sqlite::SqliteCatalogDb;

/// Errors syncing the catalog database with S3.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("no catalog database at {uri}")]
    Missing { uri: String },
    #[error(
        "catalog database {uri} was changed by another writer since it was read; reopen and retry"
    )]
    ChangedConcurrently { uri: String },
    #[error("catalog database {uri}: {source}")]
    Store {
        uri: String,
        #[source]
        source: object_store::Error,
    },
    #[error("local cache {path}: {source}")]
    Cache {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Sqlite(#[from] super::sqlite::SqliteError),
}

/// The remote side of a cached catalog database.
#[derive(Debug)]
pub struct RemoteDb {
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    uri: String,
    local: PathBuf,
    version: Mutex<Option<UpdateVersion>>,
    /// Uploads that reported an error but had landed.
    settled: std::sync::atomic::AtomicU64,
}

impl RemoteDb {
    /// Downloads the database to `local` (replacing any stale cache) and remembers its version.
    pub async fn download(
        store: Arc<dyn ObjectStore>,
        key: ObjectPath,
        uri: String,
        local: PathBuf,
    ) -> Result<Self, RemoteError> {
        let got = match store.get(&key).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Err(RemoteError::Missing { uri }),
            Err(source) => return Err(RemoteError::Store { uri, source }),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await.map_err(|source| RemoteError::Store {
            uri: uri.clone(),
            source,
        })?;
        prepare_cache(&local)?;
        std::fs::write(&local, &bytes).map_err(|source| RemoteError::Cache {
            path: local.display().to_string(),
            source,
        })?;
        Ok(Self {
            store,
            key,
            uri,
            local,
            version: Mutex::new(Some(version)),
            settled: Default::default(),
        })
    }

    /// A remote for a database created locally and not uploaded yet.
    pub fn new_unpublished(
        store: Arc<dyn ObjectStore>,
        key: ObjectPath,
        uri: String,
        local: PathBuf,
    ) -> Self {
        Self {
            store,
            key,
            uri,
            local,
            version: Mutex::new(None),
            settled: Default::default(),
        }
    }

    /// Uploads the database: create-if-absent the first time, then update-if-unchanged.
    pub async fn publish(&self, db: &SqliteCatalogDb) -> Result<(), RemoteError> {
        db.checkpoint()?;
        let bytes = std::fs::read(&self.local).map_err(|source| RemoteError::Cache {
            path: self.local.display().to_string(),
            source,
        })?;
        let previous = self
            .version
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mode = match &previous {
            Some(v) => PutMode::Update(v.clone()),
            None => PutMode::Create,
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.key, bytes.clone().into(), opts)
            .await
        {
            Ok(res) => {
                *self.version.lock().unwrap_or_else(|p| p.into_inner()) = Some(UpdateVersion {
                    e_tag: res.e_tag,
                    version: res.version,
                });
                Ok(())
            }
            // A precondition failure, a timeout, a reset after sending, a 5xx:
            // the upload may or may not have landed. The content decides.
            Err(source) => self.settle(&bytes, previous.as_ref(), source).await,
        }
    }

    /// Decides an upload whose outcome is unknown by reading the object back:
    /// our bytes there → it landed (a lost acknowledgement); still the
    /// version we read → it did not, and the error stands; anything else →
    /// another writer's upload won.
    async fn settle(
        &self,
        ours: &[u8],
        previous: Option<&UpdateVersion>,
        error: object_store::Error,
    ) -> Result<(), RemoteError> {
        let precondition = matches!(
            error,
            object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }
        );
        let got = match self.store.get(&self.key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) if previous.is_none() => {
                return Err(RemoteError::Store {
                    uri: self.uri.clone(),
                    source: error,
                });
            }
            Err(_) if precondition => {
                return Err(RemoteError::ChangedConcurrently {
                    uri: self.uri.clone(),
                });
            }
            Err(_) => {
                return Err(RemoteError::Store {
                    uri: self.uri.clone(),
                    source: error,
                });
            }
        };
        let meta = got.meta.clone();
        let remote = got.bytes().await.map_err(|source| RemoteError::Store {
            uri: self.uri.clone(),
            source,
        })?;
        if remote.as_ref() == ours {
            self.settled
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                "catalog database {}: the upload landed though it reported {error}",
                self.uri
            );
            *self.version.lock().unwrap_or_else(|p| p.into_inner()) = Some(UpdateVersion {
                e_tag: meta.e_tag,
                version: meta.version,
            });
            return Ok(());
        }
        let unchanged = previous.is_some_and(|p| p.e_tag.is_some() && p.e_tag == meta.e_tag);
        if unchanged && !precondition {
            return Err(RemoteError::Store {
                uri: self.uri.clone(),
                source: error,
            });
        }
        Err(RemoteError::ChangedConcurrently {
            uri: self.uri.clone(),
        })
    }

    /// Uploads that reported an error but had landed (settled by reading back).
    pub fn settled(&self) -> u64 {
        self.settled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Replaces the local copy with the database on S3 now (after another
    /// writer's upload), so the next commit starts from it.
    pub async fn refresh(&self, db: &SqliteCatalogDb) -> Result<(), RemoteError> {
        let got = self
            .store
            .get(&self.key)
            .await
            .map_err(|source| RemoteError::Store {
                uri: self.uri.clone(),
                source,
            })?;
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await.map_err(|source| RemoteError::Store {
            uri: self.uri.clone(),
            source,
        })?;
        db.replace_contents(&bytes)?;
        *self.version.lock().unwrap_or_else(|p| p.into_inner()) = Some(version);
        Ok(())
    }
}

/// Makes the cache folder and removes a stale copy and its WAL side files.
pub fn prepare_cache(local: &Path) -> Result<(), RemoteError> {
    let cache_err = |source| RemoteError::Cache {
        path: local.display().to_string(),
        source,
    };
    if let Some(parent) = local.parent() {
        std::fs::create_dir_all(parent).map_err(cache_err)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", local.display()));
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(RemoteError::Cache {
                    path: p.display().to_string(),
                    source,
                });
            }
        }
    }
    Ok(())
}
