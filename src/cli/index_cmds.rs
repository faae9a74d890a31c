//! `ecops index verify|rebuild` and `ecops upgrade-catalog`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;

use super::{Settings, print_json};
use crate::catalog::{EarthCatalog, OpenOptions, maintenance};
use crate::lock::job::LockSettings;

/// Hash index commands.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Compare the hash index with the table's ids: missing and extra hashes,
    /// and whether the file is well-formed (schema, one row group, sorted, distinct). Exit 2 if not.
    Verify,
    /// Rebuild the hash index from every data file of the current snapshot (takes the catalog lock).
    Rebuild {
        /// Lock TTL in minutes (renewed every TTL/3).
        #[arg(long, default_value_t = 30)]
        lock_ttl_minutes: u64,
    },
}

fn lock_settings(settings: &Settings, minutes: u64) -> LockSettings {
    LockSettings {
        ttl: Duration::from_secs(minutes.max(1) * 60),
        stale: settings.stale_policy(),
        ..Default::default()
    }
}

pub async fn run(settings: &Settings, cmd: &IndexCommand) -> Result<ExitCode> {
    let base = settings.require_base()?;
    match cmd {
        IndexCommand::Verify => {
            let open = OpenOptions {
                read_only: true,
                ..settings.open.clone()
            };
            let catalog = EarthCatalog::open(base, &open).await?;
            let report = catalog.verify_hash_index().await?;
            if settings.json {
                print_json(&report)?;
            } else {
                say!("hash index {}", report.uri);
                match (&report.problem, report.exists) {
                    (Some(p), _) => say!("  unusable: {p}"),
                    (None, false) => say!("  missing"),
                    (None, true) => say!(
                        "  {} rows, reflects snapshot {}{}",
                        report.index_rows.unwrap_or(0),
                        report
                            .snapshot_id
                            .map_or("(none recorded)".to_string(), |s| s.to_string()),
                        if report.current {
                            " (current)"
                        } else {
                            " (stale)"
                        }
                    ),
                }
                say!("  table     {} distinct ids", report.table_distinct);
                say!(
                    "  missing   {} {:?}",
                    report.missing,
                    report.missing_examples
                );
                say!("  extra     {} {:?}", report.extra, report.extra_examples);
                say!(
                    "  {}",
                    if report.ok {
                        "OK"
                    } else {
                        "NOT OK: run `ecops index rebuild`"
                    }
                );
            }
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        IndexCommand::Rebuild { lock_ttl_minutes } => {
            let catalog = EarthCatalog::open(base, &settings.open).await?;
            let lock = lock_settings(settings, *lock_ttl_minutes);
            let report =
                maintenance::rebuild_hash_index(&catalog, &lock, Some(settings.ledger())).await?;
            if settings.json {
                print_json(&report)?;
            } else {
                say!(
                    "hash index rebuilt: {} distinct ids from {} ids in {} data files ({:.1} s)",
                    report.rows,
                    report.ids_read,
                    report.files_read,
                    report.seconds
                );
            }
            exit_for(report.error.as_deref())
        }
    }
}

/// `ecops upgrade-catalog`: the catalog database to PyIceberg's v1 layout.
pub async fn upgrade_catalog(settings: &Settings) -> Result<ExitCode> {
    let catalog = EarthCatalog::open(settings.require_base()?, &settings.open).await?;
    let lock = lock_settings(settings, 10);
    let report = maintenance::upgrade_catalog(&catalog, &lock, Some(settings.ledger())).await?;
    let (changed, before) = (report.changed, report.before);
    if settings.json {
        print_json(&report)?;
    } else if changed {
        say!(
            "{}: upgraded from {before} to {} (PyIceberg's current SqlCatalog layout)",
            catalog.db_uri(),
            catalog.schema_version()
        );
    } else {
        say!("{}: already {}; nothing changed", catalog.db_uri(), before);
    }
    exit_for(report.error.as_deref())
}

/// Exit 1 with the error said when a recorded job ended in one (the lock lost).
fn exit_for(error: Option<&str>) -> Result<ExitCode> {
    match error {
        Some(e) => {
            say_err!("ecops: error: {e}");
            Ok(ExitCode::from(1))
        }
        None => Ok(ExitCode::SUCCESS),
    }
}
