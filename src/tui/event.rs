//! The event loop. Terminal input is read on its own thread (crossterm's
//! blocking `poll`/`read`), background events arrive on a channel, a
//! one-second clock samples throughput and moves countdowns. The screen is
//! redrawn only when something changed, and background changes at most
//! once per refresh period (over SSH every redraw costs bandwidth); a key
//! press is drawn at once.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossterm::event::{Event as TermEvent, KeyEventKind};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

use super::app::App;
use crate::jobs::{Event, Jobs};

/// Errors of the loop: drawing failed.
#[derive(Debug, thiserror::Error)]
#[error("drawing the console: {0}")]
pub struct DrawError(String);

/// Reads terminal events on a thread until `stop` is set or the receiver is gone.
fn spawn_input(stop: Arc<AtomicBool>) -> mpsc::UnboundedReceiver<io::Result<TermEvent>> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("ecops-input".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match crossterm::event::poll(Duration::from_millis(100)) {
                    Ok(false) => continue,
                    Ok(true) => {
                        if tx.send(crossterm::event::read()).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!("cannot start the input thread: {e}"));
    rx
}

/// Runs until the operator quits (q, `:q`, Ctrl-C) or SIGINT/SIGTERM arrives.
pub async fn run<B: Backend + Write>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    jobs: &Jobs,
    events: &mut mpsc::UnboundedReceiver<Event>,
    refresh: Duration,
) -> Result<(), DrawError>
where
    B::Error: std::fmt::Display,
{
    let stop = Arc::new(AtomicBool::new(false));
    let input = spawn_input(stop.clone());
    let result = drive(terminal, app, jobs, events, input, refresh, None).await;
    stop.store(true, Ordering::Relaxed);
    result
}

/// The loop itself, fed by `input`: until the app quits, a signal arrives,
/// or `until` passes (the bandwidth bench).
pub async fn drive<B: Backend + Write>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    jobs: &Jobs,
    events: &mut mpsc::UnboundedReceiver<Event>,
    mut input: mpsc::UnboundedReceiver<io::Result<TermEvent>>,
    refresh: Duration,
    until: Option<tokio::time::Instant>,
) -> Result<(), DrawError>
where
    B::Error: std::fmt::Display,
{
    let mut frame = tokio::time::interval(refresh.max(Duration::from_millis(16)));
    frame.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut sigterm = terminate_signal();
    let end = until.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(1 << 40));
    draw(terminal, app)?;
    loop {
        let mut draw_now = false;
        tokio::select! {
            Some(ev) = input.recv() => draw_now = on_terminal_event(app, ev),
            Some(ev) = events.recv() => app.on_event(ev),
            _ = second.tick() => app.on_second(Instant::now()),
            _ = frame.tick() => draw_now = app.dirty,
            _ = tokio::signal::ctrl_c() => app.quit = true,
            Some(()) = sigterm.recv() => app.quit = true,
            _ = tokio::time::sleep_until(end) => app.quit = true,
        }
        app.drain_requests(|r| jobs.submit(r));
        write_output(terminal, app);
        if app.quit {
            return Ok(());
        }
        if draw_now {
            draw(terminal, app)?;
        }
    }
}

fn draw<B: Backend>(terminal: &mut Terminal<B>, app: &mut App) -> Result<(), DrawError>
where
    B::Error: std::fmt::Display,
{
    terminal
        .draw(|f| super::ui::draw(f, app))
        .map_err(|e| DrawError(e.to_string()))?;
    app.dirty = false;
    Ok(())
}

/// A key, mouse or resize event; true when it should be drawn at once.
fn on_terminal_event(app: &mut App, ev: io::Result<TermEvent>) -> bool {
    match ev {
        Ok(TermEvent::Key(key)) if key.kind != KeyEventKind::Release => {
            app.on_key(key);
            true
        }
        Ok(TermEvent::Mouse(m)) if app.prefs.mouse => app.on_mouse(m),
        Ok(TermEvent::Resize(..)) => {
            app.dirty = true;
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::error!("terminal input failed: {e}");
            app.quit = true;
            false
        }
    }
}

/// Writes the app's raw output (OSC 52) to the terminal, between frames.
pub fn write_output<B: Backend + Write>(terminal: &mut Terminal<B>, app: &mut App) {
    for bytes in app.output.drain(..) {
        let backend = terminal.backend_mut();
        if let Err(e) = backend
            .write_all(&bytes)
            .and_then(|_| Write::flush(backend))
        {
            tracing::warn!("writing to the terminal: {e}");
        }
    }
}

/// SIGTERM as a stream (never fires where there is none).
fn terminate_signal() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut s) = signal(SignalKind::terminate()) {
            while s.recv().await.is_some() {
                if tx.send(()).is_err() {
                    return;
                }
            }
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}
