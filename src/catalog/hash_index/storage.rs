//! Reading the index object and replacing it atomically: on a local base
//! the new file is written next to the old one and renamed over it; on S3
//! it is written to a local spill file and uploaded in one (multipart) PUT,
//! which replaces the object whole or not at all.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetObjectReader};

use super::HashIndexError;
use super::file::{Footer, FormatError, HashReader, check_footer};
use super::sorter::SpillDir;
use crate::store::{Location, Store};

/// Uploads above this size go in parts.
const PART_BYTES: usize = 16 << 20;
/// A leftover staging file older than this belongs to a crashed writer.
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(3600);

/// The index object of a catalog.
#[derive(Debug, Clone)]
pub struct IndexObject {
    pub uri: String,
    key: ObjectPath,
    /// The file itself on a local base.
    local: Option<PathBuf>,
    store: Store,
}

impl IndexObject {
    /// The index at `uri`, which must lie in the catalog's store.
    pub fn locate(base: &Store, uri: &str) -> Result<Self, HashIndexError> {
        let key = base.key_of(uri).map_err(|_| HashIndexError::Outside {
            uri: crate::store::redact_url(uri),
            base: base.location().to_uri(),
        })?;
        let local = match (base.location(), Location::parse(uri)) {
            (Location::Local(_), Ok(Location::Local(path))) => Some(path),
            _ => None,
        };
        Ok(Self {
            uri: uri.to_string(),
            key,
            local,
            store: base.clone(),
        })
    }

    fn store_error(&self, e: impl std::fmt::Display) -> HashIndexError {
        HashIndexError::Store {
            uri: crate::store::redact_url(&self.uri),
            reason: e.to_string(),
        }
    }

    /// The footer; `Ok(None)` when there is no index, `Err(Existing)` when
    /// the object is not a valid index.
    pub async fn footer(&self) -> Result<Option<Footer>, HashIndexError> {
        let object_store = self.store.object_store();
        let size = match object_store.head(&self.key).await {
            Ok(meta) => meta.size,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error(e)),
        };
        let mut reader =
            ParquetObjectReader::new(object_store, self.key.clone()).with_file_size(size);
        let metadata = reader
            .get_metadata(None)
            .await
            .map_err(|e| HashIndexError::Existing(FormatError::Parquet(e)))?;
        check_footer(&metadata)
            .map(Some)
            .map_err(HashIndexError::Existing)
    }

    /// A reader over the whole index (None when there is none). On S3 the
    /// object is first downloaded into `spill`.
    pub async fn open_reader(
        &self,
        spill: &SpillDir,
    ) -> Result<Option<HashReader>, HashIndexError> {
        let file = match &self.local {
            Some(path) => match File::open(path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(HashIndexError::local(path, e)),
            },
            None => match self.download(spill).await? {
                Some(f) => f,
                None => return Ok(None),
            },
        };
        tokio::task::spawn_blocking(move || HashReader::open(file))
            .await
            .map_err(|e| HashIndexError::Write(format!("reader task failed: {e}")))?
            .map(Some)
            .map_err(HashIndexError::Existing)
    }

    async fn download(&self, spill: &SpillDir) -> Result<Option<File>, HashIndexError> {
        let got = match self.store.object_store().get(&self.key).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.store_error(e)),
        };
        // Unique: one spill folder may hold the main file and its deltas.
        let path = spill.path().join(format!(
            "download-{}.parquet",
            uuid::Uuid::new_v4().simple()
        ));
        let mut out = File::create(&path).map_err(|e| HashIndexError::local(&path, e))?;
        let mut body = got.into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.store_error(e))?;
            out.write_all(&chunk)
                .map_err(|e| HashIndexError::local(&path, e))?;
        }
        drop(out);
        File::open(&path)
            .map(Some)
            .map_err(|e| HashIndexError::local(&path, e))
    }

    /// Where to write the new index before [`Self::install`]: beside the
    /// old one locally (same filesystem, so the rename is atomic), else in `spill`.
    pub fn staging_path(&self, spill: &SpillDir) -> Result<Staged, HashIndexError> {
        let path = match &self.local {
            Some(target) => {
                let dir = target.parent().unwrap_or(Path::new("/"));
                std::fs::create_dir_all(dir).map_err(|e| HashIndexError::local(dir, e))?;
                remove_stale_staging(target);
                staging_name(target, &uuid::Uuid::new_v4().simple().to_string())
            }
            None => spill
                .path()
                .join(format!("new-{}.parquet", uuid::Uuid::new_v4().simple())),
        };
        Ok(Staged {
            path,
            installed: false,
        })
    }

    /// Replaces the index with the staged file, atomically.
    pub async fn install(&self, mut staged: Staged) -> Result<(), HashIndexError> {
        if let Some(target) = &self.local {
            std::fs::rename(&staged.path, target).map_err(|e| HashIndexError::local(target, e))?;
            staged.installed = true;
            return Ok(());
        }
        let path = staged.path.clone();
        let mut file = File::open(&path).map_err(|e| HashIndexError::local(&path, e))?;
        let size = file
            .metadata()
            .map_err(|e| HashIndexError::local(&path, e))?
            .len() as usize;
        let object_store = self.store.object_store();
        if size <= PART_BYTES {
            let mut body = Vec::with_capacity(size);
            file.read_to_end(&mut body)
                .map_err(|e| HashIndexError::local(&path, e))?;
            object_store
                .put(&self.key, PutPayload::from(body))
                .await
                .map_err(|e| self.store_error(e))?;
            return Ok(());
        }
        let upload = object_store
            .put_multipart(&self.key)
            .await
            .map_err(|e| self.store_error(e))?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; PART_BYTES];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| HashIndexError::local(&path, e))?;
            if n == 0 {
                break;
            }
            parts
                .wait_for_capacity(2)
                .await
                .map_err(|e| self.store_error(e))?;
            parts.write(&buf[..n]);
        }
        parts.finish().await.map_err(|e| self.store_error(e))?;
        Ok(())
    }
}

impl IndexObject {
    /// Deletes the object (gone already is fine).
    pub async fn remove(&self) -> Result<(), HashIndexError> {
        match self.store.object_store().delete(&self.key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_error(e)),
        }
    }
}

/// A new index file not yet installed; removed on drop unless it was.
#[derive(Debug)]
pub struct Staged {
    pub path: PathBuf,
    installed: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.installed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn staging_name(target: &Path, tag: &str) -> PathBuf {
    let name = target
        .file_name()
        .map_or("index".into(), |n| n.to_string_lossy().into_owned());
    target.with_file_name(format!(".{name}.tmp-{tag}"))
}

/// Removes staging files a crashed writer left beside `target` (only old
/// ones: a writer holds the catalog lock, so a fresh one cannot be another's).
fn remove_stale_staging(target: &Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_STAGING);
        if stale && entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
