//! Catalog maintenance outside table commits — rebuilding the hash index,
//! upgrading the catalog database's layout — run as every writing job
//! runs: under the catalog lock, recorded in the run ledger
//! ([`crate::lock::job::run_locked`]).

use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;

use super::hash_index::SyncReport;
use super::{EarthCatalog, SchemaVersion};
use crate::lock::job::{LockSettings, LockedJob, run_locked};
use crate::runs::{
    Activity, Counters, JobError, JobSummary, LedgerOptions, RunKind, RunSpec, RunState, Stop,
};

/// What `upgrade-catalog` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpgradeReport {
    pub run: Option<String>,
    pub changed: bool,
    pub before: SchemaVersion,
    pub after: SchemaVersion,
    /// Set when the lock was lost while it ran.
    pub error: Option<String>,
}

/// Rebuilds the hash index from every data file, under the lock.
pub async fn rebuild_hash_index(
    catalog: &EarthCatalog,
    lock: &LockSettings,
    ledger: Option<LedgerOptions>,
) -> Result<SyncReport, JobError> {
    let job = LockedJob {
        catalog,
        operation: "index-rebuild",
        job_id: None,
        lock,
        run: RunSpec {
            kind: RunKind::IndexRebuild,
            inputs: json!({}),
            ledger,
            target: crate::runs::RunTarget::Own,
        },
    };
    let (_tx, progress) = watch::channel(());
    run_locked(job, progress, &Stop::new(), async {
        catalog.rebuild_hash_index().await.map_err(JobError::failed)
    })
    .await
}

/// Moves the catalog database to PyIceberg's v1 layout, under the lock.
pub async fn upgrade_catalog(
    catalog: &EarthCatalog,
    lock: &LockSettings,
    ledger: Option<LedgerOptions>,
) -> Result<UpgradeReport, JobError> {
    let before = catalog.schema_version();
    let job = LockedJob {
        catalog,
        operation: "upgrade-catalog",
        job_id: None,
        lock,
        run: RunSpec {
            kind: RunKind::UpgradeCatalog,
            inputs: json!({}),
            ledger,
            target: crate::runs::RunTarget::Own,
        },
    };
    let (_tx, progress) = watch::channel(());
    run_locked(job, progress, &Stop::new(), async {
        let changed = catalog.upgrade_catalog().await.map_err(JobError::failed)?;
        Ok(UpgradeReport {
            run: None,
            changed,
            before,
            after: catalog.schema_version(),
            error: None,
        })
    })
    .await
}

impl JobSummary for SyncReport {
    fn run_state(&self) -> RunState {
        if self.error.is_some() {
            RunState::Failed
        } else {
            RunState::Done
        }
    }
    fn exit_code(&self) -> i32 {
        i32::from(self.error.is_some())
    }
    fn error(&self) -> Option<String> {
        self.error.clone()
    }
    fn activity(&self) -> Activity {
        Activity {
            phase: "done".into(),
            chunk: None,
            counters: Counters {
                rows: self.rows,
                files: self.files_read,
                ..Counters::default()
            },
        }
    }
    fn note_lock_lost(&mut self, reason: &str) {
        self.error = Some(JobError::lock_lost(String::new(), reason).message());
    }
    fn set_run(&mut self, run: &str) {
        self.run = Some(run.to_string());
    }
}

impl JobSummary for UpgradeReport {
    fn run_state(&self) -> RunState {
        if self.error.is_some() {
            RunState::Failed
        } else {
            RunState::Done
        }
    }
    fn exit_code(&self) -> i32 {
        i32::from(self.error.is_some())
    }
    fn error(&self) -> Option<String> {
        self.error.clone()
    }
    fn activity(&self) -> Activity {
        Activity {
            phase: "done".into(),
            chunk: None,
            counters: Counters::default(),
        }
    }
    fn note_lock_lost(&mut self, reason: &str) {
        self.error = Some(JobError::lock_lost(String::new(), reason).message());
    }
    fn set_run(&mut self, run: &str) {
        self.run = Some(run.to_string());
    }
}
