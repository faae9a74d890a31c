//! Maintenance from the console: expire-snapshots and remove-orphans, a
//! dry-run plan first (what would be deleted, nothing written, no lock),
//! then — once the operator types the confirmation — the run under the
//! catalog lock through the engine ([`crate::compact::maintenance`]).

use std::sync::Arc;
use std::time::Duration;

use super::{Event, JobId, JobKind, Jobs};
use crate::catalog::EarthCatalog;
use crate::compact::maintenance::{ExpireOptions, OrphanOptions};
use crate::fmt::{format_age, human_bytes, thousands};
use crate::ingest::LockSettings;
use crate::runs::{JobError, LedgerOptions};

/// Which maintenance, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MaintenanceRequest {
    Expire {
        older_than: Duration,
        retain_last: usize,
        dry_run: bool,
    },
    Orphans {
        older_than: Duration,
        dry_run: bool,
    },
}

impl MaintenanceRequest {
    pub fn dry_run(&self) -> bool {
        match self {
            Self::Expire { dry_run, .. } | Self::Orphans { dry_run, .. } => *dry_run,
        }
    }

    /// The same request, run for real.
    fn for_real(&self) -> Self {
        match self.clone() {
            Self::Expire {
                older_than,
                retain_last,
                ..
            } => Self::Expire {
                older_than,
                retain_last,
                dry_run: false,
            },
            Self::Orphans { older_than, .. } => Self::Orphans {
                older_than,
                dry_run: false,
            },
        }
    }

    pub fn label(&self) -> String {
        let plan = if self.dry_run() {
            " plan (dry run)"
        } else {
            ""
        };
        match self {
            Self::Expire { older_than, .. } => format!(
                "expire snapshots older than {}{plan}",
                format_age(older_than.as_secs_f64())
            ),
            Self::Orphans { older_than, .. } => format!(
                "remove orphans older than {}{plan}",
                format_age(older_than.as_secs_f64())
            ),
        }
    }
}

/// A plan or the result of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceOutcome {
    pub lines: Vec<String>,
    /// Files the plan would delete (or the run deleted).
    pub files: u64,
    /// For a plan with work: the run that carries it out.
    pub follow_up: Option<MaintenanceRequest>,
}

/// Plans or runs `request` on `catalog`.
pub async fn run(
    catalog: &EarthCatalog,
    request: &MaintenanceRequest,
    lock: &LockSettings,
    ledger: Option<LedgerOptions>,
) -> Result<MaintenanceOutcome, JobError> {
    let dry = request.dry_run();
    let verb = if dry { "would delete" } else { "deleted" };
    let (lines, files) = match request {
        MaintenanceRequest::Expire {
            older_than,
            retain_last,
            dry_run,
        } => {
            let opts = ExpireOptions {
                older_than: *older_than,
                retain_last: (*retain_last).max(1),
                dry_run: *dry_run,
            };
            let r =
                crate::compact::maintenance::expire_snapshots(catalog, &opts, lock, ledger).await?;
            let files = r.manifest_lists_deleted + r.manifests_deleted + r.data_files_deleted;
            let mut lines = vec![
                format!(
                    "{} of {} snapshots {} ({} kept)",
                    r.snapshots_expired,
                    r.snapshots_before,
                    if dry { "would expire" } else { "expired" },
                    r.snapshots_after
                ),
                format!(
                    "{verb} {} files ({}): {} manifest lists, {} manifests, {} data files ({}) only they reached",
                    thousands(files),
                    human_bytes(r.bytes),
                    r.manifest_lists_deleted,
                    r.manifests_deleted,
                    r.data_files_deleted,
                    human_bytes(r.data_bytes)
                ),
            ];
            if dry {
                lines.extend(sample_paths(&r.paths));
            }
            lines.extend(r.delete_errors.iter().map(|e| format!("not deleted: {e}")));
            (lines, files)
        }
        MaintenanceRequest::Orphans {
            older_than,
            dry_run,
        } => {
            let opts = OrphanOptions {
                older_than: *older_than,
                dry_run: *dry_run,
            };
            let r =
                crate::compact::maintenance::remove_orphans(catalog, &opts, lock, ledger).await?;
            let mut lines = vec![format!(
                "{verb} {} orphan files ({}) of {} listed; {} newer than the guard kept",
                thousands(r.orphans),
                human_bytes(r.orphan_bytes),
                thousands(r.listed),
                thousands(r.too_new)
            )];
            lines.extend(sample_paths(&r.paths));
            lines.extend(r.delete_errors.iter().map(|e| format!("not deleted: {e}")));
            let files = if dry { r.orphans } else { r.deleted };
            (lines, files)
        }
    };
    let follow_up = (dry && files > 0).then(|| request.for_real());
    Ok(MaintenanceOutcome {
        lines,
        files,
        follow_up,
    })
}

/// Runs `req` as job `id` on a new task; its outcome arrives as an event.
pub(super) fn spawn(
    jobs: &Jobs,
    id: JobId,
    req: MaintenanceRequest,
) -> tokio::task::JoinHandle<()> {
    let _ = jobs.inner.events.send(Event::JobStarted {
        id,
        kind: JobKind::Maintenance,
        label: req.label(),
        spec: None,
    });
    let inner = jobs.inner.clone();
    let catalog: Arc<EarthCatalog> = inner.catalog.clone();
    tokio::spawn(async move {
        let result = run(&catalog, &req, &inner.config.lock, inner.config.ledger).await;
        if result.as_ref().is_ok_and(|o| !req.dry_run() && o.files > 0) {
            inner.stats.refresh();
        }
        match &result {
            Ok(o) => tracing::info!("maintenance job {id}: {}", o.lines.join("; ")),
            Err(e) => tracing::error!("maintenance job {id}: {e}"),
        }
        let _ = inner.events.send(Event::Maintenance { id, result });
    })
}

/// The first few of `paths`, indented, and how many more there are.
fn sample_paths(paths: &[String]) -> Vec<String> {
    const SHOWN: usize = 5;
    let mut lines: Vec<String> = paths.iter().take(SHOWN).map(|p| format!("  {p}")).collect();
    if paths.len() > SHOWN {
        lines.push(format!("  … and {} more", thousands(paths.len() as u64)));
    }
    lines
}
