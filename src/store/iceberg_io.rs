//! iceberg's `Storage` implemented over object_store, so table metadata,
//! manifests and data files use the same client (and S3 settings) as the rest
//! of ecops. iceberg 0.10 has no S3 support without opendal.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage,
    StorageConfig, StorageFactory,
};
use iceberg::{Error, ErrorKind, Result};
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::{Location, Store, key_for_uri};

/// A FileIO whose every path goes through `store`.
pub fn file_io_for(store: &Store) -> FileIO {
    let factory = ObjectStoreStorageFactory {
        root: store.location().to_uri(),
        storage: Some(ObjectStoreStorage {
            root: store.location().to_uri(),
            location: Some(store.location().clone()),
            store: Some(store.object_store()),
        }),
    };
    FileIOBuilder::new(Arc::new(factory)).build()
}

/// Builds [`ObjectStoreStorage`]; carries the live store handle (not serialised).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectStoreStorageFactory {
    root: String,
    #[serde(skip)]
    storage: Option<ObjectStoreStorage>,
}

#[typetag::serde]
impl StorageFactory for ObjectStoreStorageFactory {
    fn build(&self, _config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        match &self.storage {
            Some(s) => Ok(Arc::new(s.clone())),
            None => Err(Error::new(
                ErrorKind::FeatureUnsupported,
                format!(
                    "object store for '{}' was not carried across serialisation",
                    self.root
                ),
            )),
        }
    }
}

/// iceberg `Storage` over an object_store handle.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectStoreStorage {
    root: String,
    #[serde(skip)]
    location: Option<Location>,
    #[serde(skip)]
    store: Option<Arc<dyn ObjectStore>>,
}

impl ObjectStoreStorage {
    fn parts(&self, path: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
        let (Some(location), Some(store)) = (&self.location, &self.store) else {
            return Err(Error::new(
                ErrorKind::Unexpected,
                "object store storage used after deserialisation",
            ));
        };
        let key = key_for_uri(location, path)
            .map_err(|e| Error::new(ErrorKind::DataInvalid, e.to_string()))?;
        Ok((store.clone(), key))
    }
}

fn io_error(op: &str, path: &str, e: object_store::Error) -> Error {
    let kind = match e {
        object_store::Error::NotFound { .. } => ErrorKind::DataInvalid,
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, format!("{op} {}: {e}", super::redact_url(path)))
}

#[async_trait]
#[typetag::serde]
impl Storage for ObjectStoreStorage {
    async fn exists(&self, path: &str) -> Result<bool> {
        let (store, key) = self.parts(path)?;
        match store.head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io_error("head", path, e)),
        }
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        let (store, key) = self.parts(path)?;
        let meta = store
            .head(&key)
            .await
            .map_err(|e| io_error("head", path, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let (store, key) = self.parts(path)?;
        let got = store
            .get(&key)
            .await
            .map_err(|e| io_error("get", path, e))?;
        got.bytes().await.map_err(|e| io_error("read", path, e))
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        let (store, key) = self.parts(path)?;
        Ok(Box::new(RangeReader {
            store,
            key,
            path: path.to_string(),
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        let (store, key) = self.parts(path)?;
        store
            .put(&key, bs.into())
            .await
            .map_err(|e| io_error("put", path, e))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        let (store, key) = self.parts(path)?;
        Ok(Box::new(BufferedWriter {
            inner: Some(BufWriter::new(store, key)),
            path: path.to_string(),
        }))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let (store, key) = self.parts(path)?;
        match store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error("delete", path, e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> Result<()> {
        let (store, key) = self.parts(path)?;
        let mut listing = store.list(Some(&key));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| io_error("list", path, e))?;
            match store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(io_error("delete", meta.location.as_ref(), e)),
            }
        }
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> Result<()> {
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

/// Ranged reads (Parquet footers, row groups) as object_store range GETs.
struct RangeReader {
    store: Arc<dyn ObjectStore>,
    key: ObjectPath,
    path: String,
}

#[async_trait]
impl FileRead for RangeReader {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        self.store
            .get_range(&self.key, range)
            .await
            .map_err(|e| io_error("get range", &self.path, e))
    }
}

/// Streams a file out: one PUT when small, a multipart upload when large.
/// The object becomes visible only on `close` (and atomically), so a reader
/// never sees a partial data file.
struct BufferedWriter {
    inner: Option<BufWriter>,
    path: String,
}

#[async_trait]
impl FileWrite for BufferedWriter {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        let writer = self.inner.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("write after close: {}", self.path),
            )
        })?;
        writer
            .put(bs)
            .await
            .map_err(|e| io_error("write", &self.path, e))
    }

    async fn close(&mut self) -> Result<()> {
        let mut writer = self.inner.take().ok_or_else(|| {
            Error::new(
                ErrorKind::Unexpected,
                format!("closed twice: {}", self.path),
            )
        })?;
        writer.shutdown().await.map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("finish upload {}: {e}", super::redact_url(&self.path)),
            )
        })
    }
}
