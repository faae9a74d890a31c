//! The lock on a local filesystem. object_store's LocalFileSystem can create
//! atomically but has no conditional update, so both writes run under an
//! exclusive `flock` on a guard file next to the lock (`.lock.guard`): re-read,
//! compare the content's hash with the expected version, write a temporary file
//! and rename it over the lock (readers see the old or the new record, never a
//! mix). The version is a hash of the content, not the mtime-based etag
//! LocalFileSystem reports.
//!
//! This is atomic among ecops processes on filesystems where `flock` is
//! coherent (local disks; not every network filesystem). A writer that ignores
//! the guard (earthcatalog's delete-then-create) can still interleave, as it can
//! with itself.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::backend::{BackendError, LockBackend, Version, Versioned, Write};

/// The lock file at `path`, guarded by `<path>.guard`.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    path: PathBuf,
    guard: PathBuf,
    uri: String,
}

impl LocalBackend {
    pub fn new(path: PathBuf) -> Self {
        let mut guard = path.clone().into_os_string();
        guard.push(".guard");
        Self {
            uri: path.display().to_string(),
            guard: PathBuf::from(guard),
            path,
        }
    }

    fn io(&self, path: &Path, source: std::io::Error) -> BackendError {
        BackendError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    fn read_now(&self) -> Result<Option<Versioned>, BackendError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(Versioned {
                version: Version::of_content(&bytes),
                bytes: Bytes::from(bytes),
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(&self.path, e)),
        }
    }

    /// Runs `f` holding the exclusive lock on the guard file (released when the
    /// file is closed, also if this process dies).
    fn guarded<T>(&self, f: impl FnOnce() -> Result<T, BackendError>) -> Result<T, BackendError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.io(dir, e))?;
        }
        let guard = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.guard)
            .map_err(|e| self.io(&self.guard, e))?;
        guard.lock().map_err(|e| self.io(&self.guard, e))?;
        let out = f();
        drop(guard);
        out
    }

    /// Writes `body` to a fresh temporary file in the lock's folder, synced.
    fn write_temp(&self, body: &[u8]) -> Result<PathBuf, BackendError> {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let temp = PathBuf::from(name);
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            f.write_all(body)?;
            f.sync_all()
        })();
        match written {
            Ok(()) => Ok(temp),
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(self.io(&temp, e))
            }
        }
    }

    /// Makes a rename or link durable (best effort: not every filesystem syncs folders).
    fn sync_dir(&self) {
        if let Some(dir) = self.path.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
    }

    fn create_now(&self, body: &[u8]) -> Result<Write, BackendError> {
        self.guarded(|| {
            let temp = self.write_temp(body)?;
            // hard_link fails if the lock exists: atomic even against writers without the guard.
            let linked = std::fs::hard_link(&temp, &self.path);
            let _ = std::fs::remove_file(&temp);
            match linked {
                Ok(()) => {
                    self.sync_dir();
                    Ok(Write::Written(Version::of_content(body)))
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(Write::Conflict),
                Err(e) => Err(self.io(&self.path, e)),
            }
        })
    }

    fn replace_now(&self, expected: &Version, body: &[u8]) -> Result<Write, BackendError> {
        self.guarded(|| {
            match self.read_now()? {
                Some(now) if &now.version == expected => {}
                _ => return Ok(Write::Conflict),
            }
            let temp = self.write_temp(body)?;
            if let Err(e) = std::fs::rename(&temp, &self.path) {
                let _ = std::fs::remove_file(&temp);
                return Err(self.io(&self.path, e));
            }
            self.sync_dir();
            Ok(Write::Written(Version::of_content(body)))
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Self) -> Result<T, BackendError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(this))
            .await
            .map_err(|e| BackendError::Other {
                uri: self.uri.clone(),
                reason: format!("lock I/O task failed: {e}"),
            })?
    }
}

#[async_trait]
impl LockBackend for LocalBackend {
    fn uri(&self) -> &str {
        &self.uri
    }

    async fn read(&self) -> Result<Option<Versioned>, BackendError> {
        self.blocking(|b| b.read_now()).await
    }

    async fn create(&self, body: Bytes) -> Result<Write, BackendError> {
        self.blocking(move |b| b.create_now(&body)).await
    }

    async fn replace(&self, expected: &Version, body: Bytes) -> Result<Write, BackendError> {
        let expected = expected.clone();
        self.blocking(move |b| b.replace_now(&expected, &body))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_is_conditional_and_exactly_one_concurrent_replacer_wins() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("sub/.lock"));
        assert!(backend.read_now().unwrap().is_none());
        assert!(matches!(
            backend.create_now(b"one").unwrap(),
            Write::Written(_)
        ));
        assert_eq!(backend.create_now(b"two").unwrap(), Write::Conflict);
        let v1 = backend.read_now().unwrap().unwrap().version;
        assert_eq!(
            backend
                .replace_now(&Version::of_content(b"other"), b"x")
                .unwrap(),
            Write::Conflict
        );

        for round in 0..20 {
            let v = backend.read_now().unwrap().unwrap().version;
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let (b, v, barrier) = (backend.clone(), v.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        b.replace_now(&v, format!("round {round} writer {i}").as_bytes())
                            .unwrap()
                    })
                })
                .collect();
            let wins = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|w| matches!(w, Write::Written(_)))
                .count();
            assert_eq!(wins, 1, "round {round}");
        }
        assert_ne!(backend.read_now().unwrap().unwrap().version, v1);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
