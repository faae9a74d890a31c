//! ecops: an operations console for EarthCatalog STAC catalogs.
//!
//! # The catalog (data contract)
//!
//! A catalog lives under one *base* (a folder or `s3://bucket/prefix`):
//! `earthcatalog.db` (SQLite, PyIceberg's SqlCatalog layout: the Iceberg
//! catalog), `warehouse/` (table metadata and GeoParquet data files, one
//! (cell, year) bucket per file under `grid_partition=<cell>/year=<yyyy>/`),
//! `warehouse_id_hashes.parquet` (the hash index of item ids), `.lock` (the
//! catalog lock, earthcatalog's format extended), `dead_letters/` (items that
//! failed, per job) and `_ecops/runs/` (the run ledger). On S3 the database
//! is downloaded to a private cache and uploaded back after each commit with
//! a conditional put, so a concurrent writer is detected, never overwritten.
//! A commit writes data files, then metadata, then swaps the catalog pointer
//! with a compare-and-swap (`UPDATE … WHERE metadata_location = <old>`).
//!
//! # The rooms
//!
//! The **engine** knows nothing of the terminal or the command line and
//! prints nothing (it reports through return values, progress channels and
//! `tracing`; `tests/it/boundaries.rs` enforces it):
//!
//! - [`store`]: object stores from locations (local, `s3://`), iceberg's
//!   `Storage` over object_store.
//! - [`catalog`]: the SQLite catalog, the Iceberg table (schema, partition
//!   spec, grid properties), bucket writes and appends, stats.
//! - [`grid`]: fan-out of footprints to H3 cells (great-circle aware,
//!   boundary-inclusive, antimeridian- and pole-safe).
//! - [`stac`]: item parsing and validation, GeoJSON/WKB, Arrow rows,
//!   GeoParquet metadata.
//! - [`ingest`]: inventory → fetch → parse/validate → fan out → one part
//!   per (cell, year) per chunk → one append per chunk whose snapshot summary
//!   carries the job's checkpoint, so a rerun resumes exactly after the last
//!   committed chunk; dead letters for what fails.
//! - [`compact`]: compaction (replace snapshots) and maintenance
//!   (expire-snapshots, remove-orphans).
//! - [`lock`]: the catalog lock — record, the one staleness rule, lease
//!   (acquire, heartbeat, fencing), steal, audit — and
//!   [`lock::job::run_locked`], the one way a writing job runs.
//! - [`query`]: query text → typed query → plan (cells, pruned files) →
//!   scan → distinct items.
//! - [`runs`]: the run ledger (every job visible from any console), the stop
//!   switch, and [`runs::JobError`], the redacting error at the job boundary.
//!
//! The **front ends**: [`cli`] (headless commands, `--json`), [`tui`] (the
//! console, which renders state) and [`jobs`] (the console's background
//! tokio tasks, reporting through one event channel). Shared text formatting
//! lives in [`fmt`], settings in [`config`], test and drill rigs (a
//! fault-injecting store, a loopback HTTP server) in [`testkit`], synthetic
//! data in [`demo`].
//!
//! # How a writing job runs
//!
//! Every job that writes (ingest, dead-letter retry, compaction,
//! expire-snapshots, remove-orphans) goes through
//! [`lock::job::run_locked`]: refuse a read-only catalog; take the lock (or
//! wait, or take over a crashed local holder's); install the fencing guard so
//! no commit happens after the lock is lost; record the run in the ledger
//! with heartbeats; run; give the lock back; write the outcome. Operators stop
//! a job from anywhere — Ctrl-C, the console, `ecops runs cancel` — through
//! one [`runs::Stop`]; the job stops at its next commit and resumes from its
//! checkpoint when run again.

pub mod catalog;
pub mod cli;
pub mod compact;
pub mod config;
pub mod demo;
pub mod fmt;
pub mod grid;
pub mod ingest;
pub mod jobs;
pub mod lock;
pub mod metrics;
pub mod query;
pub mod runs;
pub mod stac;
pub mod store;
pub mod testkit;
pub mod tui;
