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
        for r in app.requests.drain(..) {
            jobs.submit(r);
        }
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
    assert!(app.help);
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
    assert!(!app.help);
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
    assert!(app.steal.is_some());
    typed(&mut app, &generation.to_string());
    app.on_key(code(KeyCode::Esc));
    assert!(app.steal.is_none() && app.requests.is_empty());

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
        matches!(a.lock.as_deref().map(|w| &w.state), Some(LockState::Held { record, .. }) if record.owner == "live-holder")
    })
    .await;
    app.run_command("steal");
    typed(&mut app, &fresh.generation().to_string());
    app.on_key(code(KeyCode::Enter));
    pump(&mut app, &jobs, &mut events, Duration::from_secs(10), |a| {
        a.lock_outcome.is_some()
    })
    .await;
    let outcome = app.lock_outcome.clone().unwrap();
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
        a.lock.as_deref().is_some_and(|w| {
            w.stale && matches!(&w.state, LockState::Held { record, .. } if record.owner == "crashed-holder")
        })
    })
    .await;
    app.lock_outcome = None;
    app.run_command("steal");
    assert!(render(&app, 80, 24).contains("STALE"));
    typed(&mut app, &stale_generation.to_string());
    app.on_key(code(KeyCode::Enter));
    pump(&mut app, &jobs, &mut events, Duration::from_secs(10), |a| {
        a.lock_outcome.is_some()
    })
    .await;
    let outcome = app.lock_outcome.clone().unwrap();
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
        a.lock.as_deref().is_some_and(|w| w.stale)
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
        a.lock_outcome.is_some()
    })
    .await;
    let outcome = app.lock_outcome.clone().unwrap();
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
        a.query.running.is_none() && a.query.result.is_some()
    })
    .await;
    let outcome = app.query.result.clone().unwrap().unwrap();
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
        a.jobs.first().is_some_and(|j| j.state == JobState::Done)
    })
    .await;
    let job = &app.jobs[0];
    assert_eq!(job.totals().items, f.ingest.items);
    assert_eq!(job.totals().rows, f.ingest.rows);
    let after = stats_of(&f.catalog).await;
    assert_eq!(after.stats.rows, before.stats.rows + f.ingest.rows);

    // Compaction: a dry-run plan, confirmed, then run; buckets that now
    // hold two files become one.
    app.run_command("compact");
    pump(&mut app, &jobs, &mut events, Duration::from_secs(60), |a| {
        !a.confirms.is_empty()
    })
    .await;
    assert!(
        app.jobs[1]
            .lines
            .iter()
            .any(|l| l.contains("would be rewritten"))
    );
    let planned = app.jobs[1].compact.clone().unwrap();
    assert!(planned.buckets_planned > 0);
    app.on_key(key('y'));
    pump(
        &mut app,
        &jobs,
        &mut events,
        Duration::from_secs(120),
        |a| a.jobs.get(2).is_some_and(|j| !j.state.is_active()),
    )
    .await;
    assert_eq!(app.jobs[2].state, JobState::Done, "{:?}", app.jobs[2].error);
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
    assert!(app.steal.is_none());
    assert!(app.confirms.is_empty());
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
        a.jobs.first().is_some_and(|j| !j.state.is_active())
    })
    .await;
    assert_eq!(app.jobs[0].totals().failed, meta.invalid.len() as u64);
    app.on_key(key('d'));
    assert_eq!(app.view, View::Jobs);
    pump(&mut app, &jobs, &mut events, Duration::from_secs(30), |a| {
        a.jobs[0].dead_letters.is_some()
    })
    .await;
    let letters = app.jobs[0].dead_letters.clone().unwrap().unwrap();
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
                && a.lock
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
            a.lock
                .as_ref()
                .is_some_and(|w| matches!(w.state, ecops::lock::LockState::Held { .. }))
        },
    )
    .await;
    writer.run_command("release");
    assert!(!writer.confirms.is_empty(), "release asks first");
    writer.on_key(key('y'));
    pump(
        &mut writer,
        &writer_jobs,
        &mut writer_events,
        Duration::from_secs(60),
        |a| {
            a.requests.is_empty()
                && a.lock
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
        |a| a.jobs.first().is_some_and(|j| j.state == JobState::Done),
    )
    .await;
    let written = writer.jobs[0].totals().rows;
    assert!(written > 0);

    // After a refresh the watcher shows the writer's rows.
    watcher.on_key(key('R'));
    pump(
        &mut watcher,
        &watcher_jobs,
        &mut watcher_events,
        Duration::from_secs(60),
        |a| {
            a.stats
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
