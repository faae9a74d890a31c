//! `ecops index verify|rebuild` and `ecops upgrade-catalog`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;

use super::{Settings, print_json};
use crate::catalog::locked::under_lock;
use crate::catalog::{EarthCatalog, OpenOptions};

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

fn owner() -> String {
    std::env::var("USER").unwrap_or_else(|_| "ecops".into())
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
                println!("hash index {}", report.uri);
                match (&report.problem, report.exists) {
                    (Some(p), _) => println!("  unusable: {p}"),
                    (None, false) => println!("  missing"),
                    (None, true) => println!(
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
                println!("  table     {} distinct ids", report.table_distinct);
                println!(
                    "  missing   {} {:?}",
                    report.missing, report.missing_examples
                );
                println!("  extra     {} {:?}", report.extra, report.extra_examples);
                println!(
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
            catalog.ensure_writable()?;
            let ttl = Duration::from_secs(lock_ttl_minutes.max(&1) * 60);
            let report = under_lock(&catalog, &owner(), "index-rebuild", ttl, || {
                catalog.rebuild_hash_index()
            })
            .await?;
            if settings.json {
                print_json(&report)?;
            } else {
                println!(
                    "hash index rebuilt: {} distinct ids from {} ids in {} data files ({:.1} s)",
                    report.rows, report.ids_read, report.files_read, report.seconds
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `ecops upgrade-catalog`: the catalog database to PyIceberg's v1 layout.
pub async fn upgrade_catalog(settings: &Settings) -> Result<ExitCode> {
    let catalog = EarthCatalog::open(settings.require_base()?, &settings.open).await?;
    catalog.ensure_writable()?;
    let before = catalog.schema_version();
    let changed = under_lock(
        &catalog,
        &owner(),
        "upgrade-catalog",
        Duration::from_secs(600),
        || catalog.upgrade_catalog(),
    )
    .await?;
    if settings.json {
        print_json(&json!({
            "changed": changed,
            "before": before,
            "after": catalog.schema_version(),
        }))?;
    } else if changed {
        println!(
            "{}: upgraded from {before} to {} (PyIceberg's current SqlCatalog layout)",
            catalog.db_uri(),
            catalog.schema_version()
        );
    } else {
        println!("{}: already {}; nothing changed", catalog.db_uri(), before);
    }
    Ok(ExitCode::SUCCESS)
}
