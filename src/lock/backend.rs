//! Where the lock object lives, behind one small trait: read with a version,
//! create if absent, replace if still at an observed version. Every lease,
//! steal and release is built from these three atomic steps.
//!
//! - S3 ([`super::object::ObjectBackend`]): `If-None-Match: *` and `If-Match: <etag>`.
//! - Local filesystem ([`super::local::LocalBackend`]): object_store has no
//!   conditional update there, so both writes run under an exclusive file lock
//!   on a guard file next to the lock, re-read and compare, then rename.
//! - Memory ([`super::memory::MemoryBackend`]): for unit tests, with fault injection.
//!
//! There is deliberately no delete: a release writes a marker record instead
//! (see [`super::lease`]), because object_store has no conditional delete and an
//! unconditional one could remove a lock someone else took in between.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::local::LocalBackend;
use super::object::ObjectBackend;
use crate::catalog::LOCK_FILE;
use crate::store::{Location, Store};

/// The version a conditional replace must find: an S3 etag (and object
/// version), or a content hash where the store's etags are not trustworthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub e_tag: String,
    pub version: Option<String>,
}

impl Version {
    /// The version naming exact content (local and memory backends). The lock's
    /// writers put a fresh nonce in every write, so equal content means the same write.
    pub fn of_content(bytes: &[u8]) -> Self {
        Self {
            e_tag: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes)),
            version: None,
        }
    }
}

/// The lock object's bytes and the version they were read at.
#[derive(Debug, Clone)]
pub struct Versioned {
    pub bytes: Bytes,
    pub version: Version,
}

/// Result of a conditional write that reached the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Written; the object's new version.
    Written(Version),
    /// The precondition failed (object exists / changed / gone). The caller must
    /// read back: a retried request of its own may be what it collided with.
    Conflict,
}

/// A store error (network, permissions, I/O): the write may or may not have happened.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{uri}: {source}")]
    Object {
        uri: String,
        #[source]
        source: object_store::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{uri}: {reason}")]
    Other { uri: String, reason: String },
}

/// The lock object's storage. Implementations must make `create` and `replace`
/// atomic with respect to each other across processes using the same backend.
#[async_trait]
pub trait LockBackend: Send + Sync + std::fmt::Debug {
    /// The lock's location, for messages.
    fn uri(&self) -> &str;
    /// The current content and version, or None when there is no lock object.
    async fn read(&self) -> Result<Option<Versioned>, BackendError>;
    /// Writes `body` only if there is no lock object.
    async fn create(&self, body: Bytes) -> Result<Write, BackendError>;
    /// Writes `body` only if the object is still at `expected`.
    async fn replace(&self, expected: &Version, body: Bytes) -> Result<Write, BackendError>;
}

/// The backend for the lock of the catalog at `store`'s location.
pub fn backend_for(store: &Store) -> Arc<dyn LockBackend> {
    match store.location() {
        Location::Local(dir) => Arc::new(LocalBackend::new(dir.join(LOCK_FILE))),
        Location::S3 { .. } => Arc::new(ObjectBackend::new(
            store.object_store(),
            store.key(LOCK_FILE),
            store.uri(LOCK_FILE),
        )),
    }
}
