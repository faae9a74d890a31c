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
