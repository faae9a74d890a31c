//! The lock on S3 (or any object store with conditional puts): create is
//! `PutMode::Create` (`If-None-Match: *`), replace is `PutMode::Update` on the
//! etag read (`If-Match`).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};

use super::backend::{BackendError, LockBackend, Version, Versioned, Write};

/// The lock object at `key` in an object store with conditional puts.
#[derive(Debug)]
pub struct ObjectBackend {
    store: Arc<dyn ObjectStore>,
    key: Path,
    uri: String,
}

impl ObjectBackend {
    pub fn new(store: Arc<dyn ObjectStore>, key: Path, uri: String) -> Self {
        Self { store, key, uri }
    }

    fn err(&self, source: object_store::Error) -> BackendError {
        BackendError::Object {
            uri: self.uri.clone(),
            source,
        }
    }

    async fn put(&self, body: Bytes, mode: PutMode) -> Result<Write, BackendError> {
        let updating = matches!(mode, PutMode::Update(_));
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.key, body.clone().into(), opts)
            .await
        {
            Ok(put) => match put.e_tag {
                Some(e_tag) => Ok(Write::Written(Version {
                    e_tag,
                    version: put.version,
                })),
                // A store that reports no etag: the version is whatever holds our bytes now.
                None => Ok(match self.read().await? {
                    Some(now) if now.bytes == body => Write::Written(now.version),
                    _ => Write::Conflict,
                }),
            },
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Write::Conflict),
            // If-Match on a deleted object.
            Err(object_store::Error::NotFound { .. }) if updating => Ok(Write::Conflict),
            Err(e) => Err(self.err(e)),
        }
    }
}

#[async_trait]
impl LockBackend for ObjectBackend {
    fn uri(&self) -> &str {
        &self.uri
    }

    async fn read(&self) -> Result<Option<Versioned>, BackendError> {
        let got = match self.store.get(&self.key).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let meta = got.meta.clone();
        let bytes = got.bytes().await.map_err(|e| self.err(e))?;
        let e_tag = meta.e_tag.ok_or_else(|| BackendError::Other {
            uri: self.uri.clone(),
            reason: "the store returned no etag, so conditional writes are impossible".into(),
        })?;
        Ok(Some(Versioned {
            bytes,
            version: Version {
                e_tag,
                version: meta.version,
            },
        }))
    }

    async fn create(&self, body: Bytes) -> Result<Write, BackendError> {
        self.put(body, PutMode::Create).await
    }

    async fn replace(&self, expected: &Version, body: Bytes) -> Result<Write, BackendError> {
        let version = UpdateVersion {
            e_tag: Some(expected.e_tag.clone()),
            version: expected.version.clone(),
        };
        self.put(body, PutMode::Update(version)).await
    }
}
