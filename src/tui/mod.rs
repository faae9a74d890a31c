//! The console: `ecops` without a subcommand.
//!
//! - [`app`]: state; keys and background events change it.
//! - [`event`]: the loop (input thread, job events, clock, redraw policy).
//! - [`keymap`]: the one key table behind the footer hints and `?` help.
//! - [`theme`]: 16 ANSI colours, or none with `NO_COLOR`.
//! - [`panes`]: one file per pane; [`ui`] lays them out per view.
//! - [`dialogs`]: help overlay, confirmation queue, steal dialog.
//!
//! Background work lives in [`crate::jobs`]; the engine never touches the
//! terminal. While the console runs, logs go to the logs pane (tui-logger),
//! not to stderr.

pub mod app;
pub mod dialogs;
pub mod event;
pub mod keymap;
pub mod panes;
pub mod theme;
pub mod ui;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::catalog::{EarthCatalog, OpenOptions};
use crate::jobs::{Jobs, JobsConfig, demo};

/// Default redraw period.
pub const DEFAULT_REFRESH: Duration = Duration::from_millis(250);

/// How to start the console.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    /// The catalog; None opens the embedded demo.
    pub base: Option<String>,
    pub open: OpenOptions,
    /// Redraw at most this often for background changes.
    pub refresh: Duration,
    pub small_file_bytes: u64,
    /// How the lock is judged stale (the config's `lock_skew`).
    pub lock_stale: crate::lock::StalePolicy,
}

/// Sends `tracing` output to tui-logger (filtered by `ECOPS_LOG`, default
/// info for ecops and warn for the libraries). Call before anything logs.
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::prelude::*;
    let filter =
        EnvFilter::try_from_env("ECOPS_LOG").unwrap_or_else(|_| EnvFilter::new("warn,ecops=info"));
    let _ = tui_logger::init_logger(tui_logger::LevelFilter::Trace);
    tui_logger::set_default_level(tui_logger::LevelFilter::Trace);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tui_logger::TuiTracingSubscriberLayer)
        .try_init();
}

/// Runs the console until the operator quits; then stops the jobs
/// (committing what is complete) and releases the console's lock.
pub async fn run(opts: ConsoleOptions) -> Result<ExitCode> {
    init_logging();
    let (base, demo) = match &opts.base {
        Some(b) => (b.clone(), None),
        None => {
            let dir = demo::default_dir();
            let d = demo::prepare(&dir)
                .await
                .with_context(|| format!("preparing the embedded demo in {}", dir.display()))?;
            (d.base.clone(), Some(d))
        }
    };
    let catalog = Arc::new(
        EarthCatalog::open(&base, &opts.open)
            .await
            .with_context(|| format!("opening the catalog at {base}"))?,
    );
    let read_only = opts.open.read_only;
    let (jobs, mut events) = Jobs::start(
        catalog,
        JobsConfig {
            read_only,
            small_file_bytes: opts.small_file_bytes,
            lock: crate::ingest::LockSettings {
                stale: opts.lock_stale,
                ..Default::default()
            },
            ..JobsConfig::default()
        },
    );
    if let Some(d) = &demo {
        tracing::info!("embedded demo in {}", d.dir.display());
        demo::start(&jobs, d, demo::LiveOptions::from_env());
    }
    let mut app = app::App::new(app::AppInit {
        base: base.clone(),
        demo: demo.as_ref().map(|d| d.dir.clone()),
        read_only,
        theme: theme::Theme::from_env(),
    });
    // Raw mode, alternate screen, and a panic hook that restores the terminal.
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let result = event::run(&mut terminal, &mut app, &jobs, &mut events, opts.refresh).await;
    ratatui::restore();
    let running = jobs.running().len();
    if running > 0 {
        eprintln!("ecops: stopping {running} job(s) at their next chunk boundary…");
    }
    jobs.shutdown(Duration::from_secs(60)).await;
    result?;
    Ok(ExitCode::SUCCESS)
}
