//! `ecops bench console`: bytes the console writes to the terminal per
//! second, idle and during a live ingest, at 80×24 and 160×48, for the
//! default settings and the low-bandwidth preset. The real app, event loop
//! and jobs run against a demo catalog; frames go through the console's own
//! terminal writer into a sink that counts them.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use super::{Settings, print_json};
use crate::catalog::{EarthCatalog, OpenOptions};
use crate::jobs::{Jobs, JobsConfig, demo};
use crate::tui::app::{App, AppInit, Prefs};
use crate::tui::term::TermWriter;
use crate::tui::theme::{Theme, ThemeName};

/// Options of `ecops bench console`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchConsoleArgs {
    /// Seconds measured per configuration (after a warm-up of 3 s).
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// Demo folder (default target/ecops-bench/console).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Live items ingested per ingest measurement, and their rate per second.
    #[arg(long, default_value_t = 3000)]
    pub items: u64,
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
}

/// Seconds left out at the start (the first full frame, the first reads),
/// plus two redraw periods: the frame that first shows the catalog's data
/// is drawn up to a period after the reads land, and is not idle traffic.
const WARMUP_SECONDS: u64 = 3;

/// One measurement.
struct Run {
    width: u16,
    height: u16,
    low_bandwidth: bool,
    ingest: bool,
}

pub async fn run(settings: &Settings, args: &BenchConsoleArgs) -> Result<ExitCode> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| "target/ecops-bench/console".into());
    let mut results = vec![];
    for ingest in [false, true] {
        for low_bandwidth in [false, true] {
            for (width, height) in [(80, 24), (160, 48)] {
                let run = Run {
                    width,
                    height,
                    low_bandwidth,
                    ingest,
                };
                // A fresh demo folder each time: every run starts alike, and
                // the previous run's tasks never see this one's files.
                let run_dir = dir.join(format!(
                    "{width}x{height}-{}-{}",
                    if low_bandwidth { "low" } else { "default" },
                    if ingest { "ingest" } else { "idle" }
                ));
                let _ = std::fs::remove_dir_all(&run_dir);
                let rate = measure(&run, &run_dir, args).await?;
                let preset = if low_bandwidth {
                    "low-bandwidth"
                } else {
                    "default"
                };
                let load = crate::metrics::load_average();
                if !settings.json {
                    println!(
                        "{width}x{height} {preset:<13} {:<6} {rate:>8.0} B/s   (load {load})",
                        if ingest { "ingest" } else { "idle" },
                    );
                }
                results.push(json!({
                    "width": width, "height": height, "preset": preset,
                    "state": if ingest { "ingest" } else { "idle" },
                    "bytes_per_second": rate, "load_average": load,
                }));
            }
        }
    }
    if settings.json {
        print_json(&json!({ "console": results }))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs the console for the warm-up plus `args.seconds` and returns the
/// bytes per second written in the measured seconds (for an ingest run:
/// the seconds in which a job was running).
async fn measure(run: &Run, dir: &std::path::Path, args: &BenchConsoleArgs) -> Result<f64> {
    let d = demo::prepare(dir)
        .await
        .context("preparing the demo catalog")?;
    let catalog = Arc::new(EarthCatalog::open(&d.base, &OpenOptions::default()).await?);
    let (jobs, mut events) = Jobs::start(catalog, JobsConfig::default());
    if run.ingest {
        let live = demo::LiveOptions {
            items: args.items,
            rate: args.rate,
            chunk_size: 500,
            seed: 42,
        };
        demo::start(&jobs, &d, live);
    }
    let theme = if run.low_bandwidth {
        ThemeName::Ansi
    } else {
        ThemeName::Dark
    };
    let mut app = App::new(AppInit {
        base: d.base.clone(),
        demo: Some(d.dir.clone()),
        read_only: false,
        theme: Theme::new(theme),
    })
    .with_prefs(Prefs {
        low_bandwidth: run.low_bandwidth,
        ..Prefs::default()
    });
    let writer = TermWriter::new(std::io::sink());
    let counter = writer.counter();
    let backend = ratatui::backend::CrosstermBackend::new(writer);
    let viewport =
        ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, run.width, run.height));
    let mut terminal =
        ratatui::Terminal::with_options(backend, ratatui::TerminalOptions { viewport })?;
    let refresh = if run.low_bandwidth {
        crate::tui::LOW_BANDWIDTH_REFRESH
    } else {
        crate::tui::DEFAULT_REFRESH
    };
    let warmup = WARMUP_SECONDS + 2 * refresh.as_secs().max(1);
    // Sample the byte count once a second; count a second when (for an
    // ingest run) a job was running through it.
    let measured = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let sampler = {
        let (counter, jobs, ingest) = (counter.clone(), jobs.clone(), run.ingest);
        let measured = measured.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let (mut last, mut n) = (0u64, 0u64);
            loop {
                tick.tick().await;
                let now = counter.load(Ordering::Relaxed);
                let busy = !jobs.running().is_empty();
                if n > warmup && (!ingest || busy) {
                    measured.0.fetch_add(now - last, Ordering::Relaxed);
                    measured.1.fetch_add(1, Ordering::Relaxed);
                }
                last = now;
                n += 1;
            }
        })
    };
    let (_keys, input) = tokio::sync::mpsc::unbounded_channel();
    let until = tokio::time::Instant::now() + Duration::from_secs(warmup + 1 + args.seconds);
    crate::tui::event::drive(
        &mut terminal,
        &mut app,
        &jobs,
        &mut events,
        input,
        refresh,
        Some(until),
    )
    .await?;
    sampler.abort();
    let _ = sampler.await;
    jobs.shutdown(Duration::from_secs(60)).await;
    let (bytes, seconds) = (
        measured.0.load(Ordering::Relaxed),
        measured.1.load(Ordering::Relaxed),
    );
    anyhow::ensure!(seconds > 0, "no second was measured (did the ingest run?)");
    Ok(bytes as f64 / seconds as f64)
}
