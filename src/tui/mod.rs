//! The console: `ecops` without a subcommand.
//!
//! - [`app`]: the app state and key dispatch (top modal, else the view,
//!   else the global keys); [`update`] applies background events.
//! - [`model`]: what the background reports (stats, lock, jobs), shared
//!   by the views.
//! - [`views`]: one module per view with its own state, its key handling
//!   and the list of actions it offers.
//! - [`modal`]: the one stack of dialogs and inputs (help, command line,
//!   filter, query editing, steal dialog, confirmations).
//! - [`command`]: the `:` command parser.
//! - [`keymap`]: the one key table behind dispatch, footer hints and `?` help.
//! - [`event`]: the loop (input thread, job events, clock, redraw policy).
//! - [`theme`]: colours, or none with `NO_COLOR`.
//! - [`panes`]: one file per pane; [`ui`] lays them out per view;
//!   [`dialogs`] draws the modals.
//!
//! Background work lives in [`crate::jobs`]; the engine never touches the
//! terminal. While the console runs, logs go to the logs pane (tui-logger),
//! not to stderr.
//!
//! # Adding a view
//!
//! 1. Add a variant to [`views::View`] (and to `View::ALL` and `title`).
//! 2. Write `views/<name>.rs`: a state struct, `pub const COMMANDS:
//!    &[Action]` (the actions it offers) and `fn act(&mut self, action, …)`;
//!    it changes only its own state and asks for the rest through
//!    [`views::Effects`] (requests, status, modals, view switches).
//! 3. Register it: a field in [`views::Views`], an arm in `views::commands`
//!    and `Views::act`.
//! 4. New actions: a variant of [`keymap::Action`] and a row in
//!    [`keymap::BINDINGS`] (keys, hint, help); a `GoView` row and an entry
//!    in [`keymap::GLOBAL`] for its tab key. The footer and help follow.
//! 5. Draw it: a file in `panes/` and an arm in `ui::draw_view`.

pub mod app;
pub mod command;
pub mod dialogs;
pub mod equivalent;
pub mod event;
pub mod export;
pub mod keymap;
pub mod modal;
pub mod model;
pub mod panes;
pub mod term;
pub mod theme;
pub mod ui;
pub mod update;
pub mod views;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::catalog::{EarthCatalog, OpenOptions};
use crate::jobs::{Jobs, JobsConfig, demo};

/// Default redraw period.
pub const DEFAULT_REFRESH: Duration = Duration::from_millis(250);
/// Redraw period of the low-bandwidth preset.
pub const LOW_BANDWIDTH_REFRESH: Duration = Duration::from_secs(5);

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
    pub theme: theme::ThemeName,
    /// The key table with the config's `[keys]` applied.
    pub keys: keymap::Keymap,
    /// Slow-link preset: no animation, ages ticked rarely.
    pub low_bandwidth: bool,
    pub mouse: bool,
    /// Keep a presence record for other consoles to see (writer consoles only).
    pub presence: bool,
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
            presence: opts.presence,
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
        theme: theme::Theme::new(opts.theme),
    })
    .with_keys(opts.keys.clone())
    .with_prefs(app::Prefs {
        low_bandwidth: opts.low_bandwidth,
        mouse: opts.mouse,
        ..app::Prefs::default()
    });
    let mut terminal = term::init(opts.mouse).context("setting up the terminal")?;
    let result = event::run(&mut terminal, &mut app, &jobs, &mut events, opts.refresh).await;
    term::restore(opts.mouse);
    let running = jobs.running().len();
    if running > 0 {
        eprintln!("ecops: stopping {running} job(s) at their next chunk boundary…");
    }
    jobs.shutdown(Duration::from_secs(60)).await;
    result?;
    Ok(ExitCode::SUCCESS)
}
