//! Runs: every job on a catalog, visible from anywhere.
//!
//! A **run** is one ingest, compaction, maintenance or backfill job, wherever
//! it runs: the console, a headless `ecops` under cron or systemd, or a
//! thousand array tasks on a cluster. Each run publishes its state in the
//! catalog's own store, so any console that opens the catalog — on another
//! machine, over SSH, read-only — sees it live. Nothing else (no socket, no
//! daemon) connects them.
//!
//! ```text
//! <base>/_ecops/runs/<run-id>/run.json          what: kind, created, by (host, pid, user), inputs,
//!                                               state; the summary and exit code at the end
//! <base>/_ecops/runs/<run-id>/workers/<w>.json  one per process: host, pid, engine task, phase,
//!                                               chunk in progress, cumulative counters, heartbeat
//! <base>/_ecops/runs/<run-id>/control.json      an operator's request (cancel, pause)
//! ```
//!
//! - [`ledger`]: writing — [`Ledger::begin`] a run, heartbeats every few
//!   seconds (default 5 s) with cumulative counters, operator requests
//!   ([`Ledger::request`]), pruning to the newest N runs (default 50).
//! - [`track()`]: wraps a job's future so it is recorded; the lock helper
//!   ([`crate::lock::job::run_locked`]) calls it for every locked job.
//! - [`view`]: reading — one LIST plus one GET per changed record per
//!   refresh; rates from two readings; **stalled** (no heartbeat for 3
//!   intervals) and **abandoned** (no live worker, no final state) judged by
//!   the reader's own clock, so skew between machines does not matter.
//! - [`stop`]: the one stop switch (Ctrl-C, console keys, ledger requests).
//! - [`error`]: [`JobError`], the redacting error at the job boundary.
//!
//! Requests are honoured at the next safe point (after a commit), never
//! mid-write. The lock stays the authority for who may commit; runs only
//! report. Ledger writes never fail a job. Credentials never appear in a
//! record (inputs are redacted).

pub mod error;
pub mod ledger;
pub mod record;
pub mod stop;
pub mod track;
pub mod view;

pub use error::{JobError, Redacted};
pub use ledger::{Ledger, LedgerError, LedgerOptions};
pub use record::{
    Activity, ControlRecord, Counters, Request, RunKind, RunRecord, RunState, WorkerRecord,
};
pub use stop::{Stop, StopRequest};
pub use track::{JobProgress, JobSummary, RunSpec, track};
pub use view::{RunView, RunsReader, Snapshot, WorkerView};
