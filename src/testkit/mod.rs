//! Rigs for tests, benchmarks and drills — real parts, kept apart from the
//! engine so nobody mistakes them for production paths:
//!
//! - [`faulty_store`]: an object store wrapper that injects S3-like faults
//!   when `ECOPS_FAULTS` is set (the store layer installs it; it logs a
//!   warning through `tracing` whenever it is active).
//! - [`http_server`]: a static-file HTTP/1.1 server on 127.0.0.1 with
//!   optional faults and latency (the ingest bench's network source, tests
//!   of the HTTP fetcher).

pub mod faulty_store;
pub mod http_server;

use std::time::Duration;

/// Concurrency-test hook: `ECOPS_FAULT_PAUSE_BEFORE_SWAP_MS` holds every
/// pointer swap after its metadata is written, widening the window in which
/// another writer can commit first (so tests meet real conflicts). Unset in
/// normal runs.
pub async fn pause_before_swap() {
    static PAUSE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        std::env::var("ECOPS_FAULT_PAUSE_BEFORE_SWAP_MS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(ms) = pause {
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
}

/// Crash-test hook: `ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS` holds every commit
/// (an ingest chunk, a compaction group) between writing its files and
/// committing them, so a test can kill the process exactly there. Unset in
/// normal runs, where this returns at once.
pub async fn pause_before_commit() {
    static PAUSE: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let pause = PAUSE.get_or_init(|| {
        std::env::var("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(ms) = pause {
        tokio::time::sleep(Duration::from_millis(*ms)).await;
    }
}
