//! An in-memory lock backend for unit tests, with injectable faults that
//! mimic what a real store does to conditional writes (lost replies, retried
//! requests that collide with their own first attempt).

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::backend::{BackendError, LockBackend, Version, Versioned, Write};

/// What the next write does instead of behaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fails with a store error without writing.
    FailBefore,
    /// Writes, then fails with a store error (the reply was lost).
    LoseReply,
    /// Writes, then reports a precondition failure (a retried request collided
    /// with its own first attempt).
    RetriedConflict,
}

#[derive(Debug, Default)]
struct State {
    object: Option<(Bytes, u64)>,
    writes: u64,
    faults: VecDeque<Fault>,
}

/// The lock object in memory; versions count writes.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    state: Mutex<State>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a fault for the next conditional write.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Writes unconditionally (another tool's lock, or garbage).
    pub fn put_raw(&self, bytes: &[u8]) {
        let mut s = self.lock();
        s.writes += 1;
        s.object = Some((Bytes::copy_from_slice(bytes), s.writes));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self, expected: Option<&Version>, body: Bytes) -> Result<Write, BackendError> {
        let mut s = self.lock();
        let fault = s.faults.pop_front();
        let fail = || BackendError::Other {
            uri: "memory".into(),
            reason: "injected store error".into(),
        };
        if fault == Some(Fault::FailBefore) {
            return Err(fail());
        }
        let current = s.object.as_ref().map(|(_, v)| version(*v));
        if current.as_ref() != expected {
            return Ok(Write::Conflict);
        }
        s.writes += 1;
        s.object = Some((body, s.writes));
        match fault {
            Some(Fault::LoseReply) => Err(fail()),
            Some(Fault::RetriedConflict) => Ok(Write::Conflict),
            _ => Ok(Write::Written(version(s.writes))),
        }
    }
}

fn version(n: u64) -> Version {
    Version {
        e_tag: format!("m{n}"),
        version: None,
    }
}

#[async_trait]
impl LockBackend for MemoryBackend {
    fn uri(&self) -> &str {
        "memory:.lock"
    }

    async fn read(&self) -> Result<Option<Versioned>, BackendError> {
        Ok(self.lock().object.as_ref().map(|(bytes, n)| Versioned {
            bytes: bytes.clone(),
            version: version(*n),
        }))
    }

    async fn create(&self, body: Bytes) -> Result<Write, BackendError> {
        self.write(None, body)
    }

    async fn replace(&self, expected: &Version, body: Bytes) -> Result<Write, BackendError> {
        self.write(Some(expected), body)
    }
}
