//! The console on a real catalog: render tests (ratatui TestBackend at 80×24
//! and 160×48, every view) whose expected values are computed from the
//! catalog itself, and key-handling tests that drive the real background
//! jobs (steal through the dialog, query submit, ingest and compaction
//! started from the command line).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ecops::catalog::stats::TableStats;
use ecops::catalog::{EarthCatalog, OpenOptions};
use ecops::jobs::demo::{self, Demo};
use ecops::jobs::{Event, IngestSpec, Jobs, JobsConfig, LockCommand, Request, StatsView};
use ecops::lock::{Lease, LeaseOptions, LockState, LockWatcher};
use ecops::tui::app::{App, AppInit, JobState, View};
use ecops::tui::keymap;
use ecops::tui::theme::Theme;
use ecops::tui::views::query::QueryRun;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::{mpsc, watch};

/// A demo catalog in a tempdir with the bundled 300-item sample ingested.
struct Fixture {
    _dir: tempfile::TempDir,
    demo: Demo,
    catalog: Arc<EarthCatalog>,
    /// The ingest's final progress.
    ingest: ecops::ingest::IngestProgress,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let demo = demo::prepare(&dir.path().join("demo")).await.unwrap();
    let catalog = Arc::new(
        EarthCatalog::open(&demo.base, &OpenOptions::default())
            .await
            .unwrap(),
    );
    let spec = sample_spec(&demo, "fixture");
    let (tx, _rx) = watch::channel(Default::default());
    let (_cancel_tx, cancel_rx) = watch::channel(false);
    let opts = spec.params.build(&Default::default()).unwrap();
    let ingest = ecops::ingest::run(catalog.clone(), opts, tx, cancel_rx)
        .await
        .unwrap();
    assert_eq!(ingest.items, demo.sample.items);
    Fixture {
        _dir: dir,
        demo,
        catalog,
        ingest,
    }
}

fn sample_spec(demo: &Demo, job: &str) -> IngestSpec {
    IngestSpec::inventory(
        &demo.sample.inventory.display().to_string(),
        Some(&demo.sample.items_root.display().to_string()),
        Some(job),
        100,
        8,
    )
}

fn app_for(f: &Fixture) -> App {
    App::new(AppInit {
        base: f.demo.base.clone(),
        demo: None,
        read_only: false,
        theme: Theme::mono(),
    })
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

fn code(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(key(c));
    }
}

/// The screen as text lines.
fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| ecops::tui::ui::draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..height {
        for x in 0..width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn thousands(n: u64) -> String {
    ecops::tui::panes::thousands(n)
}

/// Sends the app's requests to the jobs and applies their events until
/// `done(app)` or the timeout.
async fn pump(
    app: &mut App,
    jobs: &Jobs,
    events: &mut mpsc::UnboundedReceiver<Event>,
    timeout: Duration,
    done: impl Fn(&App) -> bool,
) {
    let deadline = Instant::now() + timeout;
    loop {
        app.drain_requests(|r| jobs.submit(r));
        if done(app) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "timed out; status: {:?}", app.status);
        if let Ok(Some(ev)) =
            tokio::time::timeout(left.min(Duration::from_millis(200)), events.recv()).await
        {
            app.on_event(ev);
        }
    }
}

fn start_jobs(catalog: Arc<EarthCatalog>) -> (Jobs, mpsc::UnboundedReceiver<Event>) {
    Jobs::start(
        catalog,
        JobsConfig {
            lock_every: Duration::from_millis(200),
            stats_every: Duration::from_secs(60),
            ..JobsConfig::default()
        },
    )
}

async fn stats_of(catalog: &EarthCatalog) -> Arc<StatsView> {
    Arc::new(
        StatsView::load(catalog, ecops::catalog::stats::DEFAULT_SMALL_FILE_BYTES)
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_renders_real_catalog_state_at_80x24_and_160x48() {
    let f = fixture().await;
    let stats = stats_of(&f.catalog).await;
    let s: &TableStats = &stats.stats;
    assert!(s.rows > 0 && s.files > 0);
    let lease = Lease::acquire(
        f.catalog.base(),
        LeaseOptions::manual("render-test", Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let watched = LockWatcher::new().poll(f.catalog.base()).await.unwrap();

    let mut app = app_for(&f);
    app.on_event(Event::Stats(Ok(stats.clone())));
    app.on_event(Event::Lock(Ok(Box::new(watched))));
    app.on_event(Event::JobStarted {
        id: 1,
        kind: ecops::jobs::JobKind::Ingest,
        label: "sample".into(),
        spec: None,
    });
    app.on_event(Event::IngestFinished {
        id: 1,
        result: Ok(f.ingest.clone()),
        paused: false,
    });

    let top = &s.top_cells[0];
    let first_partition = s
        .partitions_detail
        .iter()
        .min_by(|a, b| (&a.cell, a.year).cmp(&(&b.cell, b.year)))
        .unwrap();
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        for view in View::ALL {
            app.view = view;
            let screen = render(&app, w, h);
            let ctx = format!("{view:?} at {w}x{h}:\n{screen}");
            // The header always carries the table totals and the lock holder.
            assert!(
                screen.contains(&format!("{} rows", thousands(s.rows))),
                "{ctx}"
            );
            match view {
                View::Overview | View::Jobs => {
                    // The job's row: its state and the real run's counters.
                    let row = screen
                        .lines()
                        .find(|l| l.contains("sample") && l.contains("ingest"))
                        .unwrap_or_else(|| panic!("no job row; {ctx}"));
                    assert!(row.contains("done"), "{ctx}");
                    assert!(row.contains(&thousands(f.ingest.items)), "{ctx}");
                    assert!(
                        row.contains(&format!(" {} ", thousands(f.ingest.rows))),
                        "{ctx}"
                    );
                }
                View::Partitions => {
                    let totals = format!(
                        "total {} rows · {} files",
                        thousands(s.rows),
                        thousands(s.files)
                    );
                    assert!(screen.contains(&totals), "{ctx}");
                    assert!(
                        screen.contains(&format!("{} snapshots", s.snapshots)),
                        "{ctx}"
                    );
                    assert!(screen.contains(&first_partition.cell), "{ctx}");
                    let share = (s.small_files as f64 / s.files as f64 * 100.0).round();
                    assert!(screen.contains(&format!("{share:.0}% (")), "{ctx}");
                }
                View::Cells => {
                    assert!(screen.contains(&top.cell), "{ctx}");
                    assert!(screen.contains(&thousands(top.rows)), "{ctx}");
                    assert!(
                        screen.contains(&format!("{} cells with data", stats.cells.len())),
                        "{ctx}"
                    );
                }
                View::Lock => {
                    assert!(screen.contains("render-test"), "{ctx}");
                    assert!(
                        screen.contains(&format!("generation  {}", lease.generation())),
                        "{ctx}"
                    );
                    assert!(screen.contains("HELD (live)"), "{ctx}");
                }
                View::Query => assert!(screen.contains("Geometry"), "{ctx}"),
                View::Logs => assert!(screen.contains("Logs"), "{ctx}"),
                View::History => assert!(screen.contains("History"), "{ctx}"),
                // No backfill on this catalog: the view says how to start one.
                View::Backfill => assert!(screen.contains("No backfill runs"), "{ctx}"),
            }
        }
    }
    // The map's cells are the catalog's H3 cells (the one `__none__` bucket aside).
    let h3_cells = s
        .partitions_detail
        .iter()
        .filter(|p| p.cell.parse::<h3o::CellIndex>().is_ok())
        .map(|p| p.cell.as_str())
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(stats.cells.len(), h3_cells.len());
    lease.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_overlay_toggles_and_shows_the_key_table() {
    let f = fixture().await;
    let mut app = app_for(&f);
    let steal_help = keymap::BINDINGS
        .iter()
        .find(|b| b.action == keymap::Action::Steal)
        .unwrap();
    assert!(!render(&app, 160, 48).contains("Help — keys"));
    app.on_key(key('?'));
    assert!(app.modals.is_help_open());
    let screen = render(&app, 160, 48);
    assert!(screen.contains("Help — keys"), "{screen}");
    assert!(screen.contains(&steal_help.help[..40]), "{screen}");
    // At 80×24 the short hints are shown instead, in columns.
    let small = render(&app, 80, 24);
    assert!(
        small.contains("Help — keys") && small.contains(steal_help.hint),
        "{small}"
    );
    // Keys do nothing else while help is open; Esc closes it.
    app.on_key(key('3'));
    assert_eq!(app.view, View::Overview);
    app.on_key(code(KeyCode::Esc));
    assert!(!app.modals.is_help_open());
    assert!(!render(&app, 160, 48).contains("Help — keys"));
    // The footer hints come from the same table.
    app.view = View::Lock;
    let footer = render(&app, 160, 48);
    assert!(
        footer.contains(&format!("{} {}", steal_help.label, steal_help.hint)),
        "{footer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steal_dialog_refuses_a_wrong_generation_sends_the_right_one_and_aborts() {
    let f = fixture().await;
    let lease = Lease::acquire(
        f.catalog.base(),
        LeaseOptions::manual("someone-else", Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let generation = lease.generation();
    let watched = LockWatcher::new().poll(f.catalog.base()).await.unwrap();
    let mut app = app_for(&f);
    app.on_event(Event::Lock(Ok(Box::new(watched.clone()))));

    // Abort: open, type, Esc — nothing requested.
    app.on_key(key('5'));
    app.on_key(key('s'));
    assert!(app.modals.steal().is_some());
    typed(&mut app, &generation.to_string());
    app.on_key(code(KeyCode::Esc));
    assert!(app.modals.steal().is_none() && app.requests.is_empty());

    // Wrong generation: refused in the dialog, nothing requested.
    app.on_key(key('s'));
    typed(&mut app, &(generation + 7).to_string());
    app.on_key(code(KeyCode::Enter));
    let screen = render(&app, 80, 24);
    assert!(app.requests.is_empty());
    assert!(screen.contains("is not the holder's"), "{screen}");
    assert!(screen.contains("someone-else"), "{screen}");

    // Right generation: a steal of exactly the object on screen.
    for _ in 0..10 {
        app.on_key(code(KeyCode::Backspace));
    }
    typed(&mut app, &generation.to_string());
    app.on_key(code(KeyCode::Enter));
    match app.requests.as_slice() {
        [Request::Lock(LockCommand::Steal { expected })] => {
            assert!(expected.same_object(&watched.state))
        }
        other => panic!("expected one steal request, got {other:?}"),
    }
    lease.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lock_is_stolen_through_the_dialog_and_a_fresh_one_is_refused() {
    let f = fixture().await;
    let (jobs, mut events) = start_jobs(f.catalog.clone());
    let mut app = app_for(&f);

    // A fresh lock (TTL 1 h, just taken): the dialog's steal is refused by the engine.
    let fresh = Lease::acquire(
        f.catalog.base(),
        LeaseOptions::manual("live-holder", Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    pump(&mut app, &jobs, &mut events, Duration::from_secs(10), |a| {
        matches!(a.data.lock.watched.as_deref().map(|w| &w.state), Some(LockState::Held { record, .. }) if record.owner == "live-holder")
    })
    .await;
    app.run_command("steal");
    typed(&mut app, &fresh.generation().to_string());
    app.on_key(code(KeyCode::Enter));
    pump(&mut app, &jobs, &mut events, Duration::from_secs(10), |a| {
        a.data.lock.outcome.is_some()
    })
    .await;
    let outcome = app.data.lock.outcome.clone().unwrap();
    assert!(!outcome.ok, "{outcome:?}");
    assert!(outcome.message.contains("not stale"), "{outcome:?}");
    assert!(render(&app, 80, 24).contains("REFUSED"));
    assert!(fresh.lost().is_none());
    app.on_key(code(KeyCode::Esc));
    fresh.release().await.unwrap();

    // A stale lock: 2 s TTL, never renewed. The console watches it unchanged
    // for a whole TTL, then the steal goes through.
    let stale = Lease::acquire(
        f.catalog.base(),
        LeaseOptions::manual("crashed-holder", Duration::from_secs(2)),
    )
    .await
    .unwrap();
    let stale_generation = stale.generation();
    pump(&mut app, &jobs, &mut events, Duration::from_secs(15), |a| {
        a.data.lock.watched.as_deref().is_some_and(|w| {
            w.stale && matches!(&w.state, LockState::Held { record, .. } if record.owner == "crashed-holder")
        })
    })
    .await;
    app.data.lock.outcome = None;
    app.run_command("steal");
    assert!(render(&app, 80, 24).contains("STALE"));
    typed(&mut app, &stale_generation.to_string());
    app.on_key(code(KeyCode::Enter));
    pump(&mut app, &jobs, &mut events, Duration::from_secs(10), |a| {
        a.data.lock.outcome.is_some()
    })
    .await;
    let outcome = app.data.lock.outcome.clone().unwrap();
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.held_generation, Some(stale_generation + 1));
    assert!(render(&app, 80, 24).contains("STOLEN"));
    // The lock object now names the console, one generation up.
    match ecops::lock::read_lock(f.catalog.base()).await.unwrap() {
        LockState::Held { record, .. } => {
            assert!(record.owner.contains("ecops console"), "{record:?}");
            assert_eq!(record.generation, Some(stale_generation + 1));
        }
        other => panic!("expected the console's lock, got {other:?}"),
    }
    jobs.shutdown(Duration::from_secs(10)).await;
    assert!(matches!(
        ecops::lock::read_lock(f.catalog.base()).await.unwrap(),
        LockState::Free { .. }
    ));
}

/// The card's own use case: the reference's lock, acquired two weeks ago
/// with a 12 h TTL by a host that is gone, is stolen from the console
/// within seconds — no need to watch it for a whole TTL — and the pane says
/// which rule made it stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_steals_a_lock_dead_for_weeks_within_seconds() {
    let f = fixture().await;
    let fixture_lock = std::fs::read(crate::common::earthcatalog_fixture().join(".lock")).unwrap();
    std::fs::write(
        std::path::Path::new(&f.demo.base).join(".lock"),
        &fixture_lock,
    )
    .unwrap();
    let started = Instant::now();
    let (jobs, mut events) = start_jobs(f.catalog.clone());
    let mut app = app_for(&f);
    pump(&mut app, &jobs, &mut events, Duration::from_secs(10), |a| {
        a.data.lock.watched.as_deref().is_some_and(|w| w.stale)
    })
    .await;
    app.on_key(key('5'));
    let screen = render(&app, 160, 48);
    assert!(
        screen.contains("expired") && screen.contains("by its own clock"),
        "the pane says which rule made it stale:\n{screen}"
    );
    app.run_command("steal");
    assert!(render(&app, 160, 48).contains("STALE"));
    typed(&mut app, "backfill");
    app.on_key(code(KeyCode::Enter));
    pump(&mut app, &jobs, &mut events, Duration::from_secs(10), |a| {
        a.data.lock.outcome.is_some()
    })
    .await;
    let outcome = app.data.lock.outcome.clone().unwrap();
    assert!(outcome.ok, "{outcome:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "stolen {:?} after opening the console",
        started.elapsed()
    );
    match ecops::lock::read_lock(f.catalog.base()).await.unwrap() {
        LockState::Held { record, .. } => {
            assert!(record.owner.contains("ecops console"), "{record:?}");
            assert_eq!(record.generation, Some(1));
        }
        other => panic!("expected the console's lock, got {other:?}"),
    }
    jobs.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_submit_runs_the_query_engine_in_the_background() {
    let f = fixture().await;
    let (jobs, mut events) = start_jobs(f.catalog.clone());
    let mut app = app_for(&f);
    app.on_key(key('6'));
    app.on_key(key('e'));
    typed(&mut app, "-180,-90,180,90");
    app.on_key(code(KeyCode::Down));
    app.on_key(code(KeyCode::Down));
    app.on_key(code(KeyCode::Down));
    app.on_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    typed(&mut app, "7");
    app.on_key(code(KeyCode::Enter));
    match app.requests.as_slice() {
        [Request::Query(q)] => {
            assert_eq!(q.geometry, "-180,-90,180,90");
            assert_eq!(q.limit, 7);
        }
        other => panic!("expected one query request, got {other:?}"),
    }
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.views.query.run == QueryRun::Idle && a.views.query.result.is_some()
    })
    .await;
    let outcome = app.views.query.result.clone().unwrap().unwrap();
    // The same query straight through the engine.
    let direct = ecops::query::search(
        &f.catalog,
        &ecops::query::Query::parse(&ecops::query::QueryText {
            bbox: Some("-180,-90,180,90".into()),
            limit: Some("7".into()),
            ..Default::default()
        })
        .unwrap(),
        &ecops::query::ScanOptions::default(),
    )
    .await
    .unwrap();
    let ids: Vec<&str> = outcome.rows.iter().map(|r| r.id.as_str()).collect();
    let direct_ids: Vec<&str> = direct.hits.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, direct_ids);
    assert_eq!(ids.len(), 7);
    let screen = render(&app, 160, 48);
    assert!(screen.contains(ids[0]), "{screen}");
    assert!(screen.contains("7 results (limit reached)"), "{screen}");
    // Plain mode: one line per result, no borders.
    app.on_key(key('y'));
    let plain = render(&app, 160, 48);
    assert!(plain.lines().any(|l| l.starts_with(ids[0])), "{plain}");
    jobs.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_compaction_started_from_the_command_line_change_the_catalog() {
    let f = fixture().await;
    let before = stats_of(&f.catalog).await;
    let (jobs, mut events) = start_jobs(f.catalog.clone());
    let mut app = app_for(&f);
    // The same sample again under a new job name: every row is written again.
    app.on_key(key(':'));
    typed(
        &mut app,
        &format!(
            "ingest {} --items-root {} --job again --chunk-size 50",
            f.demo.sample.inventory.display(),
            f.demo.sample.items_root.display()
        ),
    );
    app.on_key(code(KeyCode::Enter));
    assert!(matches!(app.requests.as_slice(), [Request::Ingest(_)]));
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.data
            .jobs
            .first()
            .is_some_and(|j| j.state == JobState::Done)
    })
    .await;
    let job = &app.data.jobs[0];
    assert_eq!(job.totals().items, f.ingest.items);
    assert_eq!(job.totals().rows, f.ingest.rows);
    let after = stats_of(&f.catalog).await;
    assert_eq!(after.stats.rows, before.stats.rows + f.ingest.rows);

    // Compaction: a dry-run plan, confirmed, then run; buckets that now
    // hold two files become one.
    app.run_command("compact");
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.modals.has_confirm()
    })
    .await;
    assert!(
        app.data.jobs[1]
            .lines
            .iter()
            .any(|l| l.contains("would be rewritten"))
    );
    let planned = app.data.jobs[1].compact.clone().unwrap();
    assert!(planned.buckets_planned > 0);
    app.on_key(key('y'));
    pump(
        &mut app,
        &jobs,
        &mut events,
        Duration::from_secs(120),
        |a| a.data.jobs.get(2).is_some_and(|j| !j.state.is_active()),
    )
    .await;
    assert_eq!(
        app.data.jobs[2].state,
        JobState::Done,
        "{:?}",
        app.data.jobs[2].error
    );
    let compacted = stats_of(&f.catalog).await;
    assert_eq!(compacted.stats.files, planned.files_after);
    assert!(compacted.stats.files < after.stats.files);
    // One row per id per bucket again: the duplicate ingest is gone.
    assert_eq!(compacted.stats.rows, before.stats.rows);
    jobs.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_console_refuses_and_hides_destructive_actions() {
    let f = fixture().await;
    let watched = LockWatcher::new().poll(f.catalog.base()).await.unwrap();
    let mut app = App::new(AppInit {
        base: f.demo.base.clone(),
        demo: None,
        read_only: true,
        theme: Theme::mono(),
    });
    app.on_event(Event::Lock(Ok(Box::new(watched))));
    app.on_key(key('5'));
    let screen = render(&app, 160, 48);
    assert!(!screen.contains(" s steal "), "{screen}");
    assert!(screen.contains("READ-ONLY"), "{screen}");
    for c in ['s', 'a', 'r'] {
        app.on_key(key(c));
    }
    app.run_command("steal");
    app.run_command(&format!("ingest {}", f.demo.sample.inventory.display()));
    app.run_command("compact");
    assert!(app.modals.steal().is_none());
    assert!(!app.modals.has_confirm());
    assert!(app.requests.is_empty(), "{:?}", app.requests);
    assert!(render(&app, 80, 24).contains("read-only"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_dead_letters_are_shown_on_request() {
    let f = fixture().await;
    let data = f._dir.path().join("bad");
    let opts = ecops::demo::DemoOptions {
        invalid: 6,
        parts: 1,
        ..ecops::demo::DemoOptions::new(40, &data)
    };
    let meta = tokio::task::spawn_blocking(move || ecops::demo::generate(&opts))
        .await
        .unwrap()
        .unwrap()
        .meta;
    let (jobs, mut events) = start_jobs(f.catalog.clone());
    let mut app = app_for(&f);
    app.run_command(&format!(
        "ingest {} --items-root {} --job with-bad-items",
        data.join("inventory/inventory.csv").display(),
        data.join("items").display()
    ));
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.data.jobs.first().is_some_and(|j| !j.state.is_active())
    })
    .await;
    assert_eq!(app.data.jobs[0].totals().failed, meta.invalid.len() as u64);
    app.on_key(key('d'));
    assert_eq!(app.view, View::Jobs);
    pump(&mut app, &jobs, &mut events, Duration::from_secs(30), |a| {
        a.data.jobs[0].dead_letters.is_some()
    })
    .await;
    let letters = app.data.jobs[0].dead_letters.clone().unwrap().unwrap();
    assert_eq!(letters.len(), meta.invalid.len());
    let screen = render(&app, 160, 48);
    assert!(
        screen.contains(&format!("{} dead letters", letters.len())),
        "{screen}"
    );
    let shown = meta.invalid.iter().any(|bad| {
        let name = bad.key.rsplit('/').next().unwrap();
        screen.contains(name)
    });
    assert!(shown, "no invalid key on screen:\n{screen}");
    jobs.shutdown(Duration::from_secs(10)).await;
}

/// Two consoles on one catalog: the writer takes and releases the lock and
/// ingests; the read-only watcher (its own read-only catalog handle and jobs)
/// sees the writer's lock and, after a refresh, the new rows, and can start
/// nothing itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consoles_on_one_catalog_one_read_only() {
    let f = fixture().await;
    let before = stats_of(&f.catalog).await;
    let watcher_catalog = Arc::new(
        EarthCatalog::open(
            &f.demo.base,
            &OpenOptions {
                read_only: true,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let (writer_jobs, mut writer_events) = start_jobs(f.catalog.clone());
    let (watcher_jobs, mut watcher_events) = start_jobs(watcher_catalog);
    let mut writer = app_for(&f);
    let mut watcher = App::new(AppInit {
        base: f.demo.base.clone(),
        demo: None,
        read_only: true,
        theme: Theme::mono(),
    });

    // The watcher sees a lock the writer takes, with its generation.
    writer.run_command("acquire 1h");
    pump(
        &mut writer,
        &writer_jobs,
        &mut writer_events,
        Duration::from_secs(60),
        |a| {
            a.requests.is_empty()
                && a.data
                    .lock
                    .watched
                    .as_ref()
                    .is_some_and(|w| matches!(w.state, ecops::lock::LockState::Held { .. }))
        },
    )
    .await;
    pump(
        &mut watcher,
        &watcher_jobs,
        &mut watcher_events,
        Duration::from_secs(60),
        |a| {
            a.data
                .lock
                .watched
                .as_ref()
                .is_some_and(|w| matches!(w.state, ecops::lock::LockState::Held { .. }))
        },
    )
    .await;
    writer.run_command("release");
    assert!(writer.modals.has_confirm(), "release asks first");
    writer.on_key(key('y'));
    pump(
        &mut writer,
        &writer_jobs,
        &mut writer_events,
        Duration::from_secs(60),
        |a| {
            a.requests.is_empty()
                && a.data
                    .lock
                    .watched
                    .as_ref()
                    .is_some_and(|w| matches!(w.state, ecops::lock::LockState::Free { .. }))
        },
    )
    .await;

    writer.run_command(&format!(
        "ingest {} --items-root {} --job second-console --chunk-size 50",
        f.demo.sample.inventory.display(),
        f.demo.sample.items_root.display()
    ));
    pump(
        &mut writer,
        &writer_jobs,
        &mut writer_events,
        Duration::from_secs(60),
        |a| {
            a.data
                .jobs
                .first()
                .is_some_and(|j| j.state == JobState::Done)
        },
    )
    .await;
    let written = writer.data.jobs[0].totals().rows;
    assert!(written > 0);

    // After a refresh the watcher shows the writer's rows.
    watcher.on_key(key('R'));
    pump(
        &mut watcher,
        &watcher_jobs,
        &mut watcher_events,
        Duration::from_secs(60),
        |a| {
            a.data
                .stats
                .as_ref()
                .is_some_and(|s| s.stats.rows == before.stats.rows + written)
        },
    )
    .await;
    // And it starts nothing that writes.
    watcher.run_command(&format!("ingest {}", f.demo.sample.inventory.display()));
    watcher.run_command("compact");
    watcher.run_command("steal");
    assert!(
        !watcher.requests.iter().any(|r| matches!(
            r,
            Request::Ingest(_) | Request::Compact(_) | Request::Lock(_)
        )),
        "{:?}",
        watcher.requests
    );
    writer_jobs.shutdown(Duration::from_secs(10)).await;
    watcher_jobs.shutdown(Duration::from_secs(10)).await;
}

// ---- The console over SSH (issue 16): themes, copy, keys, layout, equivalents. ----

/// Every SGR parameter list (`ESC [ … m`) the bytes contain.
fn sgr_params(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = vec![];
    for part in text.split("\x1b[").skip(1) {
        let params: String = part
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ';')
            .collect();
        if part[params.len()..].starts_with('m') {
            out.push(params);
        }
    }
    out
}

/// The bytes a real terminal would receive for the screen, through the
/// console's own writer.
fn render_bytes(app: &mut App, width: u16, height: u16) -> Vec<u8> {
    use ecops::tui::term::TermWriter;
    let shared = SharedBuf::default();
    let backend = ratatui::backend::CrosstermBackend::new(TermWriter::new(shared.clone()));
    let viewport = ratatui::Viewport::Fixed(ratatui::layout::Rect::new(0, 0, width, height));
    let mut terminal =
        Terminal::with_options(backend, ratatui::TerminalOptions { viewport }).unwrap();
    terminal.draw(|f| ecops::tui::ui::draw(f, app)).unwrap();
    ecops::tui::event::write_output(&mut terminal, app);
    shared.0.lock().unwrap().clone()
}

/// A byte sink the test can read after the terminal wrote to it.
#[derive(Clone, Default)]
struct SharedBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// xterm's 256-colour palette as RGB (16–255; 0–15 depend on the terminal).
fn xterm_rgb(n: u8) -> Option<(f64, f64, f64)> {
    match n {
        16..=231 => {
            let level = |v: u8| {
                if v == 0 {
                    0.0
                } else {
                    55.0 + 40.0 * f64::from(v)
                }
            };
            let i = n - 16;
            Some((level(i / 36), level((i / 6) % 6), level(i % 6)))
        }
        232..=255 => {
            let g = 8.0 + 10.0 * f64::from(n - 232);
            Some((g, g, g))
        }
        _ => None,
    }
}

/// WCAG contrast of an xterm colour against white.
fn contrast_on_white(n: u8) -> f64 {
    let (r, g, b) = xterm_rgb(n).expect("light theme uses the 256-colour palette");
    let lin = |v: f64| {
        let c = v / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
    1.05 / (l + 0.05)
}

async fn loaded_app(f: &Fixture, theme: Theme) -> App {
    let stats = stats_of(&f.catalog).await;
    let watched = LockWatcher::new().poll(f.catalog.base()).await.unwrap();
    let mut app = App::new(AppInit {
        base: f.demo.base.clone(),
        demo: None,
        read_only: false,
        theme,
    });
    app.on_event(Event::Stats(Ok(stats)));
    app.on_event(Event::Lock(Ok(Box::new(watched))));
    app.on_event(Event::JobStarted {
        id: 1,
        kind: ecops::jobs::JobKind::Ingest,
        label: "sample".into(),
        spec: None,
    });
    app.on_event(Event::IngestFinished {
        id: 1,
        result: Ok(f.ingest.clone()),
        paused: false,
    });
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_theme_emits_only_its_class_of_colour_escapes() {
    use ecops::tui::theme::ThemeName;
    let f = fixture().await;
    for name in ThemeName::ALL {
        let mut app = loaded_app(&f, Theme::new(name)).await;
        let mut params = vec![];
        for view in View::ALL {
            app.view = view;
            params.extend(sgr_params(&render_bytes(&mut app, 160, 48)));
        }
        let colour = |p: &&String| {
            p.split(';').any(|x| {
                matches!(
                    x.parse::<u16>(),
                    Ok(30..=37 | 40..=47 | 90..=97 | 100..=107 | 38 | 48)
                )
            })
        };
        let extended = |p: &&String| {
            p.contains("38;5;") || p.contains("48;5;") || p.contains("38;2;") || p.contains("48;2;")
        };
        match name {
            ThemeName::Mono => assert!(
                !params.iter().any(|p| colour(&p)),
                "mono emitted colours: {:?}",
                params.iter().filter(colour).take(5).collect::<Vec<_>>()
            ),
            ThemeName::Ansi => {
                assert!(params.iter().any(|p| colour(&p)), "ansi emitted no colour");
                assert!(
                    !params.iter().any(|p| extended(&p)),
                    "ansi emitted 256-colour/RGB escapes: {:?}",
                    params.iter().filter(extended).take(5).collect::<Vec<_>>()
                );
            }
            ThemeName::Dark | ThemeName::Light => assert!(
                params.iter().any(|p| p.contains("38;5;")),
                "{name:?} uses its 256-colour palette"
            ),
        }
    }
    // Light: every coloured foreground on the default (white) background
    // has a contrast of at least 4.5:1.
    let mut app = loaded_app(&f, Theme::new(ThemeName::Light)).await;
    for view in View::ALL {
        app.view = view;
        let mut terminal = Terminal::new(TestBackend::new(160, 48)).unwrap();
        terminal.draw(|fr| ecops::tui::ui::draw(fr, &app)).unwrap();
        for cell in terminal.backend().buffer().content() {
            if let (ratatui::style::Color::Indexed(n), ratatui::style::Color::Reset) =
                (cell.fg, cell.bg)
            {
                assert!(
                    contrast_on_white(n) >= 4.5,
                    "{view:?}: colour {n} on white has contrast {:.1}",
                    contrast_on_white(n)
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn y_copies_the_selection_through_osc52() {
    let f = fixture().await;
    let mut app = loaded_app(&f, Theme::mono()).await;
    let top = app.data.stats.as_ref().unwrap().stats.top_cells[1]
        .cell
        .clone();
    app.on_key(key('4'));
    app.on_key(key('j'));
    app.on_key(key('Y'));
    let bytes = render_bytes(&mut app, 80, 24);
    let osc = ecops::tui::term::osc52(&top);
    assert!(
        bytes.windows(osc.len()).any(|w| w == osc.as_slice()),
        "no OSC 52 with {top} in the output"
    );
    assert!(
        app.status
            .as_ref()
            .unwrap()
            .0
            .starts_with("copied the cell"),
        "{:?}",
        app.status
    );
    // The lock view copies the holder line.
    app.on_key(key('5'));
    app.on_key(key('Y'));
    assert!(!app.output.is_empty());
    assert!(
        app.status.as_ref().unwrap().0.contains("copied the lock"),
        "{:?}",
        app.status
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remapped_keys_drive_actions_and_show_in_footer_and_help() {
    let f = fixture().await;
    let keys = ecops::tui::keymap::Keymap::with_remaps(&[ecops::tui::keymap::Remap {
        action: "steal".into(),
        keys: vec!["x".into()],
        at: "ecops.toml line 3".into(),
    }])
    .unwrap();
    let mut app = loaded_app(&f, Theme::mono()).await.with_keys(keys);
    app.on_key(key('5'));
    app.on_key(key('s'));
    assert!(app.modals.steal().is_none(), "s is no longer steal");
    assert!(render(&app, 160, 48).contains(" x steal "));
    app.on_key(key('?'));
    let help = render(&app, 160, 48);
    assert!(
        help.contains(" x ") && help.contains("steal a stale lock"),
        "{help}"
    );
    app.on_key(code(KeyCode::Esc));
    app.on_key(key('x'));
    assert!(app.modals.steal().is_some(), "x opens the steal dialog");
    // A config naming an unknown action fails at start, naming the line.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ecops.toml");
    std::fs::write(&config, "read_only = true\n[keys]\nstael = \"x\"\n").unwrap();
    let out = crate::common::ecops(&["--config", config.to_str().unwrap(), "--base", &f.demo.base]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("line 3") && err.contains("stael"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_help_lists_no_write_keys_and_h_hides_the_header() {
    let f = fixture().await;
    let mut app = App::new(AppInit {
        base: f.demo.base.clone(),
        demo: None,
        read_only: true,
        theme: Theme::mono(),
    });
    app.on_key(key('?'));
    let help = render(&app, 160, 48);
    // A help row is the keys padded to 10, then the hint or the description.
    let listed = |action| {
        let b = keymap::binding(action).unwrap();
        let row = |text: &str| format!(" {:<10}{}", b.label, &text[..text.len().min(20)]);
        help.contains(&row(b.hint)) || help.contains(&row(b.help))
    };
    for action in [
        keymap::Action::Steal,
        keymap::Action::NewIngest,
        keymap::Action::Compact,
    ] {
        assert!(!listed(action), "read-only help lists {action:?}:\n{help}");
    }
    assert!(listed(keymap::Action::Copy), "{help}");
    assert!(listed(keymap::Action::Sort), "{help}");
    app.on_key(code(KeyCode::Esc));
    assert!(
        render(&app, 80, 24)
            .lines()
            .next()
            .unwrap()
            .contains("ecops")
    );
    app.on_key(key('H'));
    let hidden = render(&app, 80, 24);
    assert!(
        !hidden.lines().next().unwrap().contains("ecops"),
        "{hidden}"
    );
    assert!(
        hidden.lines().next().unwrap().contains("1 Over"),
        "tabs move up:\n{hidden}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compact_layout_at_80x24_keeps_every_tab_and_pane_and_the_mouse_works() {
    let f = fixture().await;
    let mut app = loaded_app(&f, Theme::mono()).await;
    for view in View::ALL {
        app.view = view;
        let screen = render(&app, 80, 24);
        for (i, v) in View::ALL.iter().enumerate() {
            let short: String = v.title().chars().take(4).collect();
            assert!(
                screen.contains(&format!("{} {short}", i + 1)),
                "tab {v:?} missing:\n{screen}"
            );
        }
        // The view's panes have titles (none truncated to nothing).
        let titled = screen
            .lines()
            .filter(|l| l.contains("┌ ") || l.contains("┌─"))
            .count();
        assert!(titled >= 1 || view == View::Query, "{view:?}:\n{screen}");
    }
    // Mouse: a click on tab 3 opens Partitions; a click on a row selects it.
    app.prefs.mouse = true;
    app.view = View::Overview;
    render(&app, 80, 24);
    let click = |col, row| crossterm::event::MouseEvent {
        kind: crossterm::event::MouseEventKind::Down(crossterm::event::MouseButton::Left),
        column: col,
        row,
        modifiers: KeyModifiers::NONE,
    };
    let screen = render(&app, 80, 24);
    let tabs = screen.lines().nth(1).unwrap();
    let col = tabs.find("3 Part").unwrap() as u16;
    assert!(app.on_mouse(click(col, 1)));
    assert_eq!(app.view, View::Partitions);
    let screen = render(&app, 80, 24);
    let hit = app
        .list_hit
        .get()
        .expect("the partitions table was recorded");
    assert!(app.on_mouse(click(hit.x + 2, hit.y + 2)));
    assert_eq!(app.views.partitions.selected, hit.offset + 2, "{screen}");
}

/// The sorted ids the console's query `command` returns.
async fn console_ids(
    app: &mut App,
    jobs: &Jobs,
    events: &mut mpsc::UnboundedReceiver<Event>,
    command: &str,
) -> Vec<String> {
    app.run_command(command);
    pump(app, jobs, events, Duration::from_secs(60), |a| {
        a.views.query.run == QueryRun::Idle && a.views.query.result.is_some()
    })
    .await;
    let result = app.views.query.result.clone().unwrap().unwrap();
    let mut ids: Vec<String> = result.rows.iter().map(|r| r.id.clone()).collect();
    ids.sort();
    ids
}

/// The last query's PyIceberg and DuckDB one-liners print `ids` (when the
/// test Python is there).
fn one_liners_agree(app: &App, ids: &[String], sh: &dyn Fn(&str) -> String) {
    let entry = app.data.history.last().unwrap().clone();
    let tools: Vec<&str> = entry.commands.iter().map(|(t, _)| *t).collect();
    assert_eq!(tools, ["ecops", "PyIceberg", "DuckDB"]);
    if crate::common::python().is_none() {
        return;
    }
    for (tool, command) in &entry.commands[1..] {
        let got: Vec<String> = sh(command).lines().map(str::to_string).collect();
        assert_eq!(got, ids, "{tool}: {command}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivalent_commands_give_the_same_results_as_the_console() {
    let f = fixture().await;
    let (jobs, mut events) = start_jobs(f.catalog.clone());
    let mut app = app_for(&f);
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_ecops"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}{}",
        bin_dir.display(),
        crate::common::python()
            .map(|p| format!("{}:", std::path::Path::new(&p).parent().unwrap().display()))
            .unwrap_or_default(),
        std::env::var("PATH").unwrap_or_default()
    );
    let sh = |cmd: &str| {
        let out = std::process::Command::new("sh")
            .args(["-c", cmd])
            .env("PATH", &path)
            .env_remove("ECOPS_BASE")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // A query with a geometry: the ecops command returns the same ids in the same order.
    app.run_command("query bbox=-180,-90,180,90 limit=7");
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.views.query.run == QueryRun::Idle && a.views.query.result.is_some()
    })
    .await;
    let ids: Vec<String> = app
        .views
        .query
        .result
        .clone()
        .unwrap()
        .unwrap()
        .rows
        .iter()
        .map(|r| r.id.clone())
        .collect();
    let entry = app.data.history.last().unwrap().clone();
    let cli = sh(&format!("{} --format csv", entry.commands[0].1));
    let cli_ids: Vec<String> = cli
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    assert_eq!(cli_ids, ids, "{}", entry.commands[0].1);
    // A box and a drawn polygon across the antimeridian (unwrapped like the
    // footprints): PyIceberg's and DuckDB's one-liners (shapely for the
    // exact test) give the same ids as the console.
    for query in [
        "query bbox=150,-60,-150,60 limit=100000",
        "query geometry=POLYGON((160 -50, -170 -50, -170 40, 160 40, 160 -50)) limit=100000",
    ] {
        let ids = console_ids(&mut app, &jobs, &mut events, query).await;
        assert!(!ids.is_empty(), "{query}");
        one_liners_agree(&app, &ids, &sh);
    }
    // A query by datetime only: also the one-liners give the same ids.
    let ids = console_ids(
        &mut app,
        &jobs,
        &mut events,
        "query geometry= datetime=2019-01-01T00:00:00+00:00/2020-06-30T00:00:00+00:00 limit=100000",
    )
    .await;
    assert!(!ids.is_empty());
    let entry = app.data.history.last().unwrap().clone();
    let cli = sh(&format!("{} --format csv", entry.commands[0].1));
    let mut cli_ids: Vec<String> = cli
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect();
    cli_ids.sort();
    assert_eq!(cli_ids, ids);
    one_liners_agree(&app, &ids, &sh);
    // A compaction plan: the same numbers as `ecops compact --dry-run`.
    app.run_command("compact");
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.data
            .jobs
            .iter()
            .any(|j| j.kind == ecops::jobs::JobKind::Compact && !j.state.is_active())
    })
    .await;
    let plan = app
        .data
        .jobs
        .iter()
        .find(|j| j.kind == ecops::jobs::JobKind::Compact)
        .unwrap()
        .compact
        .clone()
        .unwrap();
    let entry = app.data.history.last().unwrap().clone();
    assert!(
        entry.commands[0].1.ends_with("compact --dry-run"),
        "{:?}",
        entry
    );
    let json: serde_json::Value = serde_json::from_str(
        sh(&format!("{} --json", entry.commands[0].1))
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["files_before"], plan.files_before);
    assert_eq!(json["files_after"], plan.files_after);
    assert_eq!(json["rows_before"], plan.rows_before);
    // Decline running the plan; the History view lists the commands and Y
    // copies the selected one.
    assert!(app.modals.has_confirm());
    app.on_key(key('n'));
    app.on_key(key('8'));
    let screen = render(&app, 160, 48);
    assert!(screen.contains("compact --dry-run"), "{screen}");
    app.on_key(key('Y'));
    let copied = ecops::tui::term::osc52(&app.data.history.last().unwrap().commands[0].1);
    assert_eq!(app.output.last().unwrap(), &copied);
    jobs.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_export_to_markdown_and_csv_and_stats_print_markdown() {
    let f = fixture().await;
    let mut app = loaded_app(&f, Theme::mono()).await;
    let parts = app
        .data
        .stats
        .as_ref()
        .unwrap()
        .stats
        .partitions_detail
        .len();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("p.csv");
    let md = dir.path().join("p.md");
    app.on_key(key('3'));
    app.run_command(&format!("export csv {}", csv.display()));
    app.run_command(&format!("export md {}", md.display()));
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        csv_text.lines().count(),
        parts + 1,
        "header + one line per partition"
    );
    assert!(csv_text.starts_with("cell,year,rows,files,bytes,small_files"));
    let md_text = std::fs::read_to_string(&md).unwrap();
    assert_eq!(md_text.lines().count(), parts + 2);
    let out = crate::common::ecops(&[
        "--base",
        &f.demo.base,
        "stats",
        "--top",
        "3",
        "--format",
        "markdown",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let s = stats_of(&f.catalog).await;
    assert!(
        text.contains(&format!("| rows | {} |", s.stats.rows)),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "| {} | {} |",
            s.stats.top_cells[0].cell, s.stats.top_cells[0].rows
        )),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_scores_show_in_overview_and_partitions_sort_by_them() {
    use ecops::catalog::health::{HealthPolicy, catalog_health, partition_health};
    let f = fixture().await;
    // A second ingest of the sample under another job: every partition gets
    // a second small file, so compaction has work.
    let (tx, _rx) = watch::channel(Default::default());
    let (_c, cancel) = watch::channel(false);
    let opts = sample_spec(&f.demo, "again")
        .params
        .build(&Default::default())
        .unwrap();
    ecops::ingest::run(f.catalog.clone(), opts, tx, cancel)
        .await
        .unwrap();
    let mut app = loaded_app(&f, Theme::mono()).await;
    let view = app.data.stats.clone().unwrap();
    let policy = HealthPolicy::new(ecops::catalog::stats::DEFAULT_SMALL_FILE_BYTES);
    let expected = catalog_health(&view.stats, &policy);
    assert!(
        expected.compactable_buckets > 0 && expected.score < 100,
        "{expected:?}"
    );
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains(&format!("health {}/100", expected.score)),
        "{screen}"
    );
    assert!(screen.contains(&expected.fix[0]), "{screen}");
    assert_eq!(view.trend.len() as u64, view.stats.snapshots);
    // Sort by health: the worst partition first.
    app.on_key(key('3'));
    while app.views.partitions.sort != ecops::tui::views::partitions::SortKey::Health {
        app.on_key(key('s'));
    }
    let rows = app.views.partitions.visible_rows(&app.data);
    let scores: Vec<u8> = rows
        .iter()
        .map(|p| partition_health(p, &policy).score)
        .collect();
    assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");
    assert!(render(&app, 160, 48).contains("sort health"));
    // The CLI prints the same score.
    let json = crate::common::ecops_json(&["--base", &f.demo.base, "--json", "stats"]);
    assert_eq!(json["health"]["score"], expected.score);
    assert_eq!(json["health"]["files_saved"], expected.files_saved);
    // Every item was written twice: each is duplicated once, until compaction.
    let unique = view.stats.unique_items.expect("the index counts the items");
    assert!(view.stats.hash_index_current && unique > 0);
    assert_eq!(expected.duplicate_items, Some(unique), "{expected:?}");
    assert!(
        expected.reasons.iter().any(|r| r.contains("written again")),
        "{expected:?}"
    );
    assert_eq!(json["health"]["duplicate_items"], unique);
    crate::common::ecops_json(&["--base", &f.demo.base, "--json", "compact"]);
    let json = crate::common::ecops_json(&["--base", &f.demo.base, "--json", "stats"]);
    assert_eq!(json["health"]["duplicate_items"], 0, "{}", json["health"]);
    assert_eq!(json["unique_items"], unique);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_plans_first_then_runs_on_a_typed_confirmation() {
    let f = fixture().await;
    let (jobs, mut events) = start_jobs(f.catalog.clone());
    let mut app = app_for(&f);
    // An orphan: a data file no snapshot references.
    let dir = std::path::Path::new(&f.demo.base)
        .join("warehouse/grid_partition=81a7bffffffffff/year=2020");
    std::fs::create_dir_all(&dir).unwrap();
    let orphan = dir.join("part_orphan.parquet");
    std::fs::write(&orphan, b"not referenced").unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.run_command("orphans 1s");
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.modals.has_confirm()
    })
    .await;
    assert!(orphan.exists(), "the plan deletes nothing");
    let plan = app.data.history.last().unwrap().clone();
    assert!(
        plan.commands[0]
            .1
            .ends_with("remove-orphans --older-than 1s --dry-run"),
        "{plan:?}"
    );
    let json = crate::common::ecops_json(&[
        "--base",
        &f.demo.base,
        "--json",
        "remove-orphans",
        "--older-than",
        "1s",
        "--dry-run",
    ]);
    let count = json["orphans"].as_u64().unwrap();
    assert!(count >= 1);
    let screen = render(&app, 160, 48);
    assert!(screen.contains(&format!("Type {count}")), "{screen}");
    // A wrong count does nothing; the right one runs it.
    typed(&mut app, "999");
    app.on_key(code(KeyCode::Enter));
    assert!(app.requests.is_empty() && app.modals.has_confirm());
    for _ in 0..3 {
        app.on_key(code(KeyCode::Backspace));
    }
    typed(&mut app, &count.to_string());
    app.on_key(code(KeyCode::Enter));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::Maintenance(
            ecops::jobs::MaintenanceRequest::Orphans { dry_run: false, .. }
        )]
    ));
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.data.jobs.len() == 2 && !a.data.jobs[1].state.is_active()
    })
    .await;
    assert!(!orphan.exists(), "the run deleted the orphan");
    assert!(
        app.data.history.last().unwrap().commands[0]
            .1
            .ends_with("remove-orphans --older-than 1s")
    );
    // Expire: the plan's counts are the CLI's dry run's.
    app.run_command("expire 1s --retain-last 1");
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.data.jobs.len() == 3 && !a.data.jobs[2].state.is_active()
    })
    .await;
    let json = crate::common::ecops_json(&[
        "--base",
        &f.demo.base,
        "--json",
        "expire-snapshots",
        "--older-than",
        "1s",
        "--retain-last",
        "1",
        "--dry-run",
    ]);
    let expired = json["snapshots_expired"].as_u64().unwrap();
    assert!(
        app.data.jobs[2].lines[0].starts_with(&format!("{expired} of ")),
        "{:?} vs {json}",
        app.data.jobs[2].lines
    );
    jobs.shutdown(Duration::from_secs(10)).await;
}

/// Two writer consoles and a read-only one on one catalog: each writer sees
/// the other (header, and a warning in the compaction and steal dialogs);
/// the read-only console writes no presence record but sees both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_consoles_see_each_other_and_a_read_only_one_writes_nothing() {
    let f = fixture().await;
    let config = |read_only| JobsConfig {
        read_only,
        lock_every: Duration::from_millis(200),
        stats_every: Duration::from_secs(60),
        presence_every: Duration::from_millis(200),
        ..JobsConfig::default()
    };
    let watcher_catalog = Arc::new(
        EarthCatalog::open(
            &f.demo.base,
            &OpenOptions {
                read_only: true,
                ..OpenOptions::default()
            },
        )
        .await
        .unwrap(),
    );
    let (a_jobs, mut a_events) = Jobs::start(f.catalog.clone(), config(false));
    let (b_jobs, mut b_events) = Jobs::start(f.catalog.clone(), config(false));
    let (w_jobs, mut w_events) = Jobs::start(watcher_catalog, config(true));
    let (mut a, mut b, mut w) = (app_for(&f), app_for(&f), app_for(&f));
    pump(
        &mut a,
        &a_jobs,
        &mut a_events,
        Duration::from_secs(20),
        |x| x.data.others.consoles.len() == 1,
    )
    .await;
    pump(
        &mut b,
        &b_jobs,
        &mut b_events,
        Duration::from_secs(20),
        |x| x.data.others.consoles.len() == 1,
    )
    .await;
    pump(
        &mut w,
        &w_jobs,
        &mut w_events,
        Duration::from_secs(20),
        |x| x.data.others.consoles.len() == 2,
    )
    .await;
    let records = std::fs::read_dir(std::path::Path::new(&f.demo.base).join("_ecops/consoles"))
        .unwrap()
        .count();
    assert_eq!(records, 2, "only the two writer consoles keep a record");
    assert!(render(&a, 160, 48).contains("1 other console"));
    // The steal dialog warns.
    pump(
        &mut a,
        &a_jobs,
        &mut a_events,
        Duration::from_secs(20),
        |x| x.data.lock.watched.is_some(),
    )
    .await;
    a.run_command("steal");
    assert!(render(&a, 160, 48).contains("other writer console is open"));
    // Quitting removes the record; the others stop seeing it.
    b_jobs.shutdown(Duration::from_secs(10)).await;
    pump(
        &mut a,
        &a_jobs,
        &mut a_events,
        Duration::from_secs(20),
        |x| x.data.others.consoles.is_empty(),
    )
    .await;
    a_jobs.shutdown(Duration::from_secs(10)).await;
    w_jobs.shutdown(Duration::from_secs(10)).await;
    let left = std::fs::read_dir(std::path::Path::new(&f.demo.base).join("_ecops/consoles"))
        .unwrap()
        .count();
    assert_eq!(left, 0);
}

/// Crafted items (formula ids, an OSC sequence as platform) through the
/// console's query: the results pane shows them escaped and sends no control
/// character to the terminal; `:export csv` neutralises the formulas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_items_show_escaped_in_the_query_pane_and_export_neutralised() {
    use crate::outputs::{CRAFTED_IDS, PWNED_SHOWN, crafted_catalog};
    let dir = tempfile::tempdir().unwrap();
    let base = tokio::task::block_in_place(|| crafted_catalog(dir.path()));
    let catalog = Arc::new(
        EarthCatalog::open(&base, &OpenOptions::default())
            .await
            .unwrap(),
    );
    let (jobs, mut events) = start_jobs(catalog);
    let mut app = App::new(AppInit {
        base,
        demo: None,
        read_only: false,
        theme: Theme::mono(),
    });
    app.run_command("query bbox=-180,-90,180,90");
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        a.views.query.run == QueryRun::Idle && a.views.query.result.is_some()
    })
    .await;
    let rows = app.views.query.result.clone().unwrap().unwrap().rows;
    assert_eq!(rows.len(), CRAFTED_IDS.len());
    let screen = render(&app, 160, 48);
    // The platform column is 8 wide: the escape shows, cut.
    assert_eq!(
        screen.matches("\\x1b]0;p").count(),
        CRAFTED_IDS.len(),
        "{screen}"
    );
    assert!(screen.contains("@SUM(A1)"), "{screen}");
    assert!(
        !screen.chars().any(|c| c.is_control() && c != '\n'),
        "{screen}"
    );
    // The bytes that would go to a real terminal.
    let bytes = render_bytes(&mut app, 160, 48);
    assert!(!bytes.contains(&0x07), "BEL reached the terminal");
    assert!(
        !bytes.windows(2).any(|w| w == b"\x1b]"),
        "an OSC sequence reached the terminal"
    );
    // Plain mode too.
    app.on_key(key('y'));
    let plain = render(&app, 160, 48);
    assert!(plain.contains(PWNED_SHOWN), "{plain}");
    app.on_key(key('y'));
    // The exported table: no live formula, no control character.
    let csv_path = dir.path().join("results.csv");
    app.run_command(&format!("export csv {}", csv_path.display()));
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let cells: Vec<String> = reader
        .records()
        .flat_map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>())
        .collect();
    assert!(cells.contains(&"'+1+1".to_string()), "{text}");
    assert!(cells.contains(&"'-2+3".to_string()), "{text}");
    assert!(
        !cells.iter().any(|c| c.starts_with(['=', '+', '-', '@'])),
        "{text}"
    );
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text}");
    jobs.shutdown(Duration::from_secs(10)).await;
}

/// The real console binary in a pseudo-terminal (`script`), with every read
/// of the hash index failing by `ECOPS_FAULTS` and stderr sent to a file:
/// the faults are reported in the Logs view, and nothing reaches stderr
/// (which would draw over the screen).
#[test]
fn injected_faults_show_in_the_logs_view_and_never_on_stderr() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: script(1) (util-linux) is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base = crate::outputs::crafted_catalog(dir.path());
    let stderr = dir.path().join("stderr.txt");
    let console = format!(
        "stty cols 120 rows 40; exec '{}' --base '{base}' --no-presence 2>'{}'",
        env!("CARGO_BIN_EXE_ecops"),
        stderr.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &console, "/dev/null"])
        .env_remove("ECOPS_BASE")
        .env(
            "ECOPS_FAULTS",
            "seed=3,error_rate=1,only=warehouse_id_hashes.parquet",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let screen = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let mut out = child.stdout.take().unwrap();
    let sink = screen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let shown = |text: &str| String::from_utf8_lossy(&screen.lock().unwrap()).contains(text);
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !shown(text) {
            assert!(
                Instant::now() < deadline,
                "'{text}' never shown; screen: {}",
                String::from_utf8_lossy(&screen.lock().unwrap())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut keys = child.stdin.take().unwrap();
    wait_for("Overview");
    keys.write_all(b"7").unwrap();
    keys.flush().unwrap();
    wait_for("fault injected");
    keys.write_all(b"q").unwrap();
    keys.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the console did not quit");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap();
    let written = std::fs::read_to_string(&stderr).unwrap();
    assert!(written.is_empty(), "the console wrote to stderr: {written}");
}

#[test]
fn idle_ages_move_every_5_s_and_every_15_s_on_a_slow_link() {
    for (low_bandwidth, period) in [(false, 5), (true, 15)] {
        let mut app = App::new(AppInit {
            base: "/c".into(),
            demo: None,
            read_only: true,
            theme: Theme::new(ecops::tui::theme::ThemeName::Dark),
        })
        .with_prefs(ecops::tui::app::Prefs {
            low_bandwidth,
            ..Default::default()
        });
        let start = app.aged_at;
        app.dirty = false;
        app.on_second(start + Duration::from_secs(period - 1));
        assert!(!app.dirty, "low bandwidth {low_bandwidth}: redrawn early");
        app.on_second(start + Duration::from_secs(period));
        assert!(app.dirty, "low bandwidth {low_bandwidth}: ages never moved");
    }
}
