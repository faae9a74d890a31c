//! The Backfill view: a status as the ledger and markers give it, drawn at
//! 160×48 and 80×24 (TestBackend); retry, commit and start through the
//! confirmation queue; and a real local-engine backfill started from the
//! console's command line, followed to its commit with its workers' rows.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ecops::backfill::status::{ChunkCounts, FailedChunk};
use ecops::backfill::{BackfillState, Status};
use ecops::catalog::{EarthCatalog, OpenOptions};
use ecops::jobs::{BackfillRequest, Event, Jobs, JobsConfig, Request};
use ecops::runs::{Counters, RunState, WorkerView};
use ecops::tui::app::{App, AppInit, View};
use ecops::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn app(read_only: bool) -> App {
    App::new(AppInit {
        base: "/tmp/catalog".into(),
        demo: None,
        read_only,
        theme: Theme::mono(),
    })
}

fn key(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE)
}

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

fn worker(task: &str, phase: &str, chunk: Option<&str>, on_chunk: f64, rate: f64) -> WorkerView {
    WorkerView {
        worker: format!("w-{task}"),
        host: "node1".into(),
        pid: 4242,
        engine_task: task.into(),
        state: RunState::Running,
        phase: phase.into(),
        chunk: chunk.map(str::to_string),
        chunk_seconds: chunk.map(|_| on_chunk),
        heartbeat_age_seconds: 1.0,
        counters: Counters {
            items_listed: 300,
            ..Counters::default()
        },
        items_per_second: rate,
        rows_per_second: rate * 2.0,
        error: None,
    }
}

/// A backfill mid-map: 8 chunks, 5 done, 2 running (one a straggler), 1 failed.
fn mapping() -> Status {
    Status {
        run: "20260101T000000Z-backfill-abc123".into(),
        state: BackfillState::Mapping,
        chunks: ChunkCounts {
            total: 8,
            done: 5,
            failed: 1,
            running: 2,
        },
        partitions: 4,
        partitions_reduced: 0,
        buckets_reduced: 0,
        items: 1500,
        rows: 4100,
        failed_items: 3,
        files: 0,
        snapshots_added: 0,
        failed_chunks: vec![FailedChunk {
            chunk: 3,
            engine_task: "slurm:77_3".into(),
            reason: "items source unreachable: connection refused".into(),
            at: Utc::now(),
        }],
        stragglers: vec!["slurm:77_1 on c000006 for 95 s (median 20 s)".into()],
        items_per_second: 37.5,
        median_chunk_seconds: Some(20.0),
        eta_seconds: Some(80.0),
        reduce_eta_seconds: None,
        workers: vec![
            worker("slurm:77_0", "map", Some("c000007"), 4.0, 25.0),
            worker("slurm:77_1", "map", Some("c000006"), 95.0, 12.5),
        ],
        record: None,
    }
}

#[test]
fn the_backfill_view_shows_phase_chunks_workers_stragglers_and_failures() {
    let mut app = app(false);
    app.on_event(Event::Backfills(vec![mapping()]));
    app.on_key(key('9'));
    assert_eq!(app.view, View::Backfill);
    let wide = render(&app, 160, 48);
    for text in [
        "20260101T000000Z-backfill-abc123",
        "mapping",
        "map 5/8",
        "8 planned · 2 running · 5 done · 1 failed",
        "0/4 partitions",
        "Σ 37.5 items/s over 2 live workers",
        "map 1m20s · reduce —",
        "median chunk 20.0 s",
        "slurm:77_1 on c000006 for 95 s (median 20 s)",
        "c000003 on slurm:77_3",
        "items source unreachable: connection refused",
        "Workers — 2",
        "slurm:77_0",
        "c000007 4s",
        "25.0",
        "12.5",
    ] {
        assert!(wide.contains(text), "'{text}' missing:\n{wide}");
    }
    // 80×24: the runs, the counts and both workers still show.
    let small = render(&app, 80, 24);
    for text in [
        "20260101T000000Z-backfill-abc123",
        "map 5/8",
        "5 done",
        "Σ 37.5 items/s",
        "map 1m20s",
        "slurm:77_0",
        "slurm:77_1",
        "9 Back",
    ] {
        assert!(small.contains(text), "'{text}' missing at 80×24:\n{small}");
    }
}

#[test]
fn retry_commit_and_start_go_through_confirmations_and_read_only_refuses() {
    let mut app = app(false);
    app.on_event(Event::Backfills(vec![mapping()]));
    app.on_key(key('9'));
    // Commit while mapping: refused here, naming what is missing.
    app.on_key(key('c'));
    let (text, error) = app.status.clone().unwrap();
    assert!(
        error && text.contains("0 of 4 partitions reduced"),
        "{text}"
    );
    assert!(!app.modals.has_confirm());
    // Retry: a confirmation saying what runs again; yes sends it.
    app.on_key(key('r'));
    assert!(app.modals.has_confirm());
    let screen = render(&app, 160, 48);
    assert!(
        screen.contains("3 of 8 chunks not done (1 failed, 2 running now)"),
        "{screen}"
    );
    app.on_key(key('y'));
    assert!(
        matches!(
            app.requests.as_slice(),
            [Request::Backfill(BackfillRequest::Retry { run })]
                if run == "20260101T000000Z-backfill-abc123"
        ),
        "{:?}",
        app.requests
    );
    app.requests.clear();
    // Commit once reduced: confirmation, then the request.
    let mut reduced = mapping();
    reduced.state = BackfillState::Committing;
    reduced.partitions_reduced = 4;
    reduced.files = 9;
    app.on_event(Event::Backfills(vec![reduced]));
    app.run_command("backfill commit");
    assert!(app.modals.has_confirm());
    app.on_key(key('y'));
    assert!(matches!(
        app.requests.as_slice(),
        [Request::Backfill(BackfillRequest::Commit { .. })]
    ));
    app.requests.clear();
    // Start from the command line: a confirmation naming the engine.
    app.run_command("backfill /inv.csv --items-root /items --tasks 3 --engine slurm");
    let screen = render(&app, 160, 48);
    assert!(
        screen.contains("3 map + 3 reduce partitions on slurm"),
        "{screen}"
    );
    app.on_key(key('n'));
    assert!(app.requests.is_empty(), "no is no");
    app.run_command("backfill retry no-such-run");
    assert!(app.status.clone().unwrap().1, "an unknown run is an error");

    let mut ro = self::app(true);
    ro.on_event(Event::Backfills(vec![mapping()]));
    ro.on_key(key('9'));
    for k in ['r', 'c', 'n'] {
        ro.on_key(key(k));
        assert!(ro.status.clone().unwrap().0.contains("read-only"));
    }
    ro.run_command("backfill retry");
    assert!(ro.status.clone().unwrap().0.contains("read-only"));
    assert!(ro.requests.is_empty() && !ro.modals.has_confirm());
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A real backfill on the local engine, started from the console's command
/// line: the view follows it to its commit and shows its chunks and one row
/// per worker process (`local:<pid>`); the Jobs view lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_backfill_started_in_the_console_shows_its_chunks_and_workers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let made = crate::common::ecops(&["demo-data", "--items", "400", "--out", s(&data)]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let base = dir.path().join("catalog");
    let init = crate::common::ecops(&["init", "--base", s(&base)]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let catalog = Arc::new(
        EarthCatalog::open(s(&base), &OpenOptions::default())
            .await
            .unwrap(),
    );
    let (jobs, mut events) = Jobs::start(
        catalog,
        JobsConfig {
            runs_every: Duration::from_millis(300),
            ecops: Some(env!("CARGO_BIN_EXE_ecops").into()),
            presence: false,
            ..JobsConfig::default()
        },
    );
    let mut app = App::new(AppInit {
        base: s(&base).into(),
        demo: None,
        read_only: false,
        theme: Theme::mono(),
    });
    app.run_command(&format!(
        "backfill {} --items-root {} --chunk-size 100 --tasks 2 --workdir {}",
        s(&data.join("inventory/inventory.csv")),
        s(&data.join("items")),
        s(&dir.path().join("wd"))
    ));
    assert!(app.modals.has_confirm());
    app.on_key(key('y'));
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        app.drain_requests(|r| jobs.submit(r));
        if let Some(b) = app.data.backfills.first() {
            if b.state == BackfillState::Committed {
                break;
            }
            assert_ne!(b.state, BackfillState::Failed, "{b:?}");
        }
        assert!(
            Instant::now() < deadline,
            "not committed in time: {:?} {:?}",
            app.status,
            app.data.backfills
        );
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await
        {
            app.on_event(ev);
        }
    }
    let status = app.data.backfills[0].clone();
    assert_eq!(status.chunks.total, 4);
    assert_eq!(status.chunks.done, 4);
    assert_eq!(status.items, 400);
    assert_eq!(status.partitions_reduced, status.partitions);
    let map_tasks: Vec<&str> = status
        .workers
        .iter()
        .filter(|w| w.phase == "map")
        .map(|w| w.engine_task.as_str())
        .collect();
    assert_eq!(map_tasks.len(), 2, "{:?}", status.workers);
    assert!(
        map_tasks.iter().all(|t| t.starts_with("local:")),
        "{map_tasks:?}"
    );
    app.on_key(key('9'));
    let screen = render(&app, 160, 48);
    assert!(
        screen.contains("4 planned · 0 running · 4 done · 0 failed"),
        "{screen}"
    );
    assert!(screen.contains("committed"), "{screen}");
    for task in &map_tasks {
        assert!(screen.contains(task), "worker {task} missing:\n{screen}");
    }
    // The Jobs view lists the run with its phase.
    app.on_key(key('2'));
    let screen = render(&app, 160, 48);
    assert!(screen.contains(&status.run[..20]), "{screen}");
    assert!(screen.contains("committed"), "{screen}");
    // The table holds every item once.
    let stats = crate::common::ecops_json(&["stats", "--base", s(&base), "--json"]);
    assert_eq!(stats["unique_items"], 400, "{stats}");
    jobs.shutdown(Duration::from_secs(10)).await;
}

/// A backfill run by Slurm array tasks (scripts/test.sh's cluster), submitted
/// headless: a console on the catalog shows it with one row per array task
/// (`slurm:<job>_<index>`), and the Jobs view lists it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_run_by_slurm_shows_one_row_per_array_task() {
    let Some(conf) = crate::common::slurm_conf() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let made = crate::common::ecops(&["demo-data", "--items", "600", "--out", s(&data)]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let base = dir.path().join("catalog");
    let init = crate::common::ecops(&["init", "--base", s(&base)]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let done = crate::common::ecops_json_with(
        &[
            "backfill",
            "submit",
            "--base",
            s(&base),
            "--inventory",
            s(&data.join("inventory/inventory.csv")),
            "--items-root",
            s(&data.join("items")),
            "--chunk-size",
            "100",
            "--tasks",
            "3",
            "--engine",
            "slurm",
            "--workdir",
            s(&dir.path().join("wd")),
            "--wait",
            "--json",
        ],
        &[("SLURM_CONF", conf.as_str())],
    );
    assert_eq!(done["state"], "committed", "{done}");
    let run = done["run"].as_str().unwrap().to_string();
    let catalog = Arc::new(
        EarthCatalog::open(s(&base), &OpenOptions::default())
            .await
            .unwrap(),
    );
    let (jobs, mut events) = Jobs::start(
        catalog,
        JobsConfig {
            runs_every: Duration::from_millis(300),
            presence: false,
            ..JobsConfig::default()
        },
    );
    let mut app = App::new(AppInit {
        base: s(&base).into(),
        demo: None,
        read_only: true,
        theme: Theme::mono(),
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while app.data.backfill(&run).is_none() {
        assert!(Instant::now() < deadline, "the run never showed");
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await
        {
            app.on_event(ev);
        }
    }
    let status = app.data.backfill(&run).unwrap().clone();
    assert_eq!(status.state, BackfillState::Committed);
    assert_eq!((status.chunks.done, status.chunks.total), (6, 6));
    let tasks: Vec<&str> = status
        .workers
        .iter()
        .filter(|w| w.phase == "map")
        .map(|w| w.engine_task.as_str())
        .collect();
    assert_eq!(tasks.len(), 3, "{:?}", status.workers);
    app.on_key(key('9'));
    let screen = render(&app, 160, 48);
    for task in &tasks {
        assert!(task.starts_with("slurm:"), "{task}");
        assert!(
            screen.contains(task),
            "array task {task} missing:\n{screen}"
        );
    }
    assert!(
        screen.contains("6 planned · 0 running · 6 done · 0 failed"),
        "{screen}"
    );
    app.on_key(key('2'));
    let screen = render(&app, 160, 48);
    assert!(
        screen.contains(&run[..20]) && screen.contains("committed"),
        "{screen}"
    );
    jobs.shutdown(Duration::from_secs(10)).await;
}
