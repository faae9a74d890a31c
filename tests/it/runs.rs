//! The run ledger with real processes: a headless ingest seen live by
//! `ecops runs --json` and by read-only consoles (in-process with
//! TestBackend, and the real binary in a pseudo-terminal); a SIGKILLed run
//! turning stalled, then abandoned; `ecops runs cancel` stopping an ingest
//! and a compaction at their next commit (exit 130) with the rerun
//! resuming; a read-only console writing nothing; corrupt records shown as
//! unreadable; unknown ids answered with the recent ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecops::catalog::{EarthCatalog, OpenOptions};
use ecops::jobs::{Event, Jobs, JobsConfig};
use ecops::runs::RunState;
use ecops::testkit::http_server::{Faults, HttpServer};
use ecops::tui::app::{App, AppInit};
use ecops::tui::theme::Theme;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::common::{ecops_json_with, ecops_with, s3_base, s3_endpoint};

/// Demo items served over loopback HTTP, slowly enough to watch.
struct SlowSource {
    _dir: tempfile::TempDir,
    inventory: PathBuf,
    server: HttpServer,
    items: u64,
}

async fn slow_source(items: u64, latency_ms: u64) -> SlowSource {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let made = ecops_with(
        &["demo-data", "--items", &items.to_string(), "--out", s(&out)],
        &[],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let server = HttpServer::start(
        out.join("items"),
        Faults {
            latency: Some(Duration::from_millis(latency_ms)),
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    SlowSource {
        inventory: out.join("inventory/inventory.csv"),
        _dir: dir,
        server,
        items,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Where a test catalog lives and what the child needs to reach it.
struct Base {
    uri: String,
    envs: Vec<(String, String)>,
    local: Option<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

fn local_base() -> Base {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cat");
    Base {
        uri: s(&path).to_string(),
        envs: vec![],
        local: Some(path),
        _dir: Some(dir),
    }
}

fn bases(name: &str) -> Vec<Base> {
    let mut out = vec![local_base()];
    if let Some(endpoint) = s3_endpoint() {
        out.push(Base {
            uri: s3_base(name),
            envs: vec![("AWS_ENDPOINT_URL".into(), endpoint)],
            local: None,
            _dir: None,
        });
    }
    out
}

impl Base {
    fn envs(&self) -> Vec<(&str, &str)> {
        self.envs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--base", &self.uri, "--json"]);
        ecops_json_with(&all, &self.envs())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecops"));
        cmd.args(args)
            .args(["--base", &self.uri])
            .env_remove("ECOPS_BASE")
            .stdin(Stdio::null());
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// A headless ingest of `src` publishing a heartbeat every 0.3 s.
    fn spawn_ingest(&self, src: &SlowSource, chunk: u64, extra_env: &[(&str, &str)]) -> Child {
        let mut cmd = self.command(&[
            "ingest",
            "--inventory",
            s(&src.inventory),
            "--items-root",
            &src.server.url(),
            "--chunk-size",
            &chunk.to_string(),
            "--concurrency",
            "2",
            "--heartbeat",
            "0.3s",
            "--json",
        ]);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The runs `ecops runs --all --json` lists.
    fn runs(&self) -> Vec<Value> {
        self.json(&["runs", "--all"])["runs"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

/// Polls `probe` every 100 ms until it gives a value, or panics after `timeout`.
fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The summary a finished child printed last, and its exit code.
fn finish(child: Child) -> (i32, Value) {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or("{}");
    let value = serde_json::from_str(last).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_headless_ingest_is_seen_live_by_runs_json_and_by_a_read_only_console() {
    let src = slow_source(600, 15).await;
    for base in bases("runs-live") {
        let child = base.spawn_ingest(&src, 100, &[]);
        let first = wait_for("the run to list items", Duration::from_secs(60), || {
            base.runs()
                .into_iter()
                .find(|r| r["items"].as_u64() > Some(0) && r["state"] == "running")
        });
        let id = first["id"].as_str().unwrap().to_string();
        assert_eq!(first["kind"], "ingest");
        assert_eq!(first["pid"], child.id());
        let worker = &first["workers"][0];
        assert_eq!(worker["engine_task"], format!("local:{}", child.id()));
        for key in [
            "host",
            "pid",
            "state",
            "heartbeat_age_seconds",
            "items_listed",
            "rows",
        ] {
            assert!(
                !worker[key].is_null(),
                "worker record lacks {key}: {worker}"
            );
        }
        let later = wait_for("the counters to rise", Duration::from_secs(60), || {
            base.runs()
                .into_iter()
                .find(|r| r["id"] == id.as_str() && r["items"].as_u64() > first["items"].as_u64())
        });
        assert!(later["items_per_second"].as_f64().unwrap() > 0.0, "{later}");

        // A read-only console on the same catalog sees it, with a rate.
        let (screen, rate) = read_only_console_sees(&base, &id).await;
        assert!(rate > 0.0, "the console's items/s for the external run");
        assert!(
            screen.contains("ext") && screen.contains(&id[..16]),
            "{screen}"
        );

        let (code, summary) = finish(child);
        assert_eq!(code, 0, "{summary}");
        assert_eq!(summary["items"], src.items);
        assert_eq!(summary["run"], id.as_str());
        let ended = base.json(&["runs", "show", &id]);
        assert_eq!(ended["state"], "done");
        assert_eq!(ended["exit_code"], 0);
        assert_eq!(ended["items"], src.items);
    }
}

/// Opens a read-only console (in this process, TestBackend) on `base` and
/// waits until its jobs list shows run `id` running with a rate. Returns
/// the 160×48 screen and the rate it showed.
async fn read_only_console_sees(base: &Base, id: &str) -> (String, f64) {
    let catalog = open_read_only(base).await;
    let (jobs, mut events) = Jobs::start(
        catalog,
        JobsConfig {
            read_only: true,
            ledger: None,
            runs_every: Duration::from_millis(300),
            stats_every: Duration::from_secs(60),
            ..JobsConfig::default()
        },
    );
    let mut app = App::new(AppInit {
        base: base.uri.clone(),
        demo: None,
        read_only: true,
        theme: Theme::mono(),
    });
    let rate = pump_until(&mut app, &mut events, Duration::from_secs(60), |app| {
        app.data
            .external_runs()
            .iter()
            .find(|r| r.id == id && r.state == RunState::Running && r.items_per_second > 0.0)
            .map(|r| r.items_per_second)
    })
    .await;
    app.on_key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('2'),
        crossterm::event::KeyModifiers::NONE,
    ));
    let screen = render(&app, 160, 48);
    jobs.shutdown(Duration::from_secs(5)).await;
    (screen, rate)
}

async fn open_read_only(base: &Base) -> Arc<EarthCatalog> {
    let endpoint = base
        .envs
        .iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .map(|(_, v)| v.clone());
    let opts = OpenOptions {
        read_only: true,
        s3: ecops::store::S3Options {
            endpoint,
            ..Default::default()
        },
        ..Default::default()
    };
    Arc::new(
        EarthCatalog::open(&base.uri, &opts)
            .await
            .expect("open the catalog read-only"),
    )
}

async fn pump_until<T>(
    app: &mut App,
    events: &mut mpsc::UnboundedReceiver<Event>,
    timeout: Duration,
    done: impl Fn(&App) -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = done(app) {
            return v;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_console_in_a_terminal_shows_an_external_run() {
    let src = slow_source(400, 20).await;
    let base = local_base();
    let child = base.spawn_ingest(&src, 100, &[]);
    let id = wait_for("the run", Duration::from_secs(60), || {
        base.runs()
            .into_iter()
            .find(|r| r["state"] == "running" && r["items"].as_u64() > Some(0))
            .and_then(|r| r["id"].as_str().map(str::to_string))
    });
    // The real binary, read-only, in a pseudo-terminal of 160×48 (util-linux
    // `script`), on its Jobs view for a few seconds.
    let console = format!(
        "stty cols 160 rows 48; exec {} --base {} --read-only --theme mono",
        env!("CARGO_BIN_EXE_ecops"),
        base.uri
    );
    let mut tty = Command::new("script")
        .args(["-q", "-f", "-c", &console, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script(1)");
    let mut stdin = tty.stdin.take().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    use std::io::Write as _;
    let _ = stdin.write_all(b"2");
    let _ = stdin.flush();
    std::thread::sleep(Duration::from_secs(4));
    let _ = stdin.write_all(b"q");
    let _ = stdin.flush();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tty.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = tty.kill();
    let out = tty.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains(&id[..16]) && screen.contains("ext"),
        "the console drew the external run {id}; it wrote {} bytes",
        screen.len()
    );
    let (code, _) = finish(child);
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_turns_stalled_then_abandoned() {
    let src = slow_source(2000, 40).await;
    let base = local_base();
    let mut child = base.spawn_ingest(&src, 100, &[]);
    let id = wait_for("the run", Duration::from_secs(60), || {
        base.runs()
            .into_iter()
            .find(|r| r["state"] == "running" && r["items"].as_u64() > Some(0))
            .and_then(|r| r["id"].as_str().map(str::to_string))
    });
    child.kill().unwrap(); // SIGKILL: no final record
    child.wait().unwrap();
    let state = |id: &str| {
        base.runs()
            .into_iter()
            .find(|r| r["id"] == id)
            .map(|r| r["state"].as_str().unwrap_or_default().to_string())
    };
    // Heartbeat 0.3 s: stalled after 3 intervals, abandoned after 12.
    wait_for("stalled", Duration::from_secs(30), || {
        (state(&id).as_deref() == Some("stalled")).then_some(())
    });
    wait_for("abandoned", Duration::from_secs(30), || {
        (state(&id).as_deref() == Some("abandoned")).then_some(())
    });
    let shown = base.json(&["runs", "show", &id]);
    assert_eq!(shown["workers"][0]["state"], "stalled");
    assert!(shown["ended"].is_null(), "no final state: {shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_cancel_stops_an_ingest_at_its_next_commit_and_the_rerun_resumes() {
    let src = slow_source(1500, 20).await;
    for base in bases("runs-cancel") {
        let child = base.spawn_ingest(&src, 100, &[]);
        let id = wait_for("a first commit", Duration::from_secs(120), || {
            base.runs()
                .into_iter()
                .find(|r| r["state"] == "running" && r["commits"].as_u64() >= Some(1))
                .and_then(|r| r["id"].as_str().map(str::to_string))
        });
        let asked = base.json(&["runs", "cancel", &id]);
        assert_eq!(asked["ok"], true);
        let (code, summary) = finish(child);
        assert_eq!(code, 130, "{summary}");
        assert_eq!(summary["phase"], "cancelled");
        let stopped_at = summary["position"].as_u64().unwrap();
        assert!(stopped_at > 0 && stopped_at < src.items, "{summary}");
        let shown = base.json(&["runs", "show", &id]);
        assert_eq!(shown["state"], "cancelled");
        assert_eq!(shown["exit_code"], 130);
        assert!(
            shown["stop_request"]
                .as_str()
                .is_some_and(|s| s.starts_with("cancel asked by")),
            "{shown}"
        );
        // The usual rerun resumes from the checkpoint and finishes the job.
        let rerun = base.spawn_ingest(&src, 100, &[]);
        let (code, summary) = finish(rerun);
        assert_eq!(code, 0, "{summary}");
        assert_eq!(summary["resumed_from"], stopped_at);
        assert_eq!(summary["complete"], true);
        let stats = base.json(&["stats"]);
        let listed: u64 = base
            .runs()
            .iter()
            .filter(|r| r["kind"] == "ingest")
            .map(|r| r["items"].as_u64().unwrap_or(0))
            .sum();
        assert_eq!(listed, src.items, "every item listed once over both runs");
        assert!(stats["rows"].as_u64().unwrap() >= src.items);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_cancel_stops_a_compaction_after_its_group_commit() {
    let src = slow_source(800, 0).await;
    let base = local_base();
    let (code, summary) = finish(base.spawn_ingest(&src, 50, &[]));
    assert_eq!(code, 0, "{summary}");
    let mut child = base
        .command(&[
            "compact",
            "--group-files",
            "40",
            "--heartbeat",
            "0.3s",
            "--json",
        ])
        .env("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", "1500")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for("the compaction run", Duration::from_secs(60), || {
        base.runs()
            .into_iter()
            .find(|r| r["kind"] == "compact" && r["state"] == "running")
            .and_then(|r| r["id"].as_str().map(str::to_string))
    });
    assert_eq!(base.json(&["runs", "cancel", &id])["ok"], true);
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the compaction did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, summary) = finish(child);
    assert_eq!(code, 130, "{summary}");
    assert_eq!(summary["phase"], "cancelled");
    let done = summary["buckets_compacted"].as_u64().unwrap();
    assert!(
        done > 0 && done < summary["buckets_planned"].as_u64().unwrap(),
        "stopped after a group commit, before the end: {summary}"
    );
    // `runs resume` runs it again; it finishes what is left.
    let out = base
        .command(&["runs", "resume", &id, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resumed: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(resumed["phase"], "done");
    assert_eq!(base.json(&["compact", "--dry-run"])["buckets_planned"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_console_writes_nothing_and_refuses_to_steer_runs() {
    let src = slow_source(300, 5).await;
    let base = local_base();
    let (code, _) = finish(base.spawn_ingest(&src, 100, &[]));
    assert_eq!(code, 0);
    let dir = base.local.clone().unwrap();
    let before = tree(&dir);
    let id = base.runs()[0]["id"].as_str().unwrap().to_string();
    let catalog = open_read_only(&base).await;
    let (jobs, mut events) = Jobs::start(
        catalog,
        JobsConfig {
            read_only: true,
            ledger: None,
            runs_every: Duration::from_millis(200),
            lock_every: Duration::from_millis(200),
            ..JobsConfig::default()
        },
    );
    let mut app = App::new(AppInit {
        base: base.uri.clone(),
        demo: None,
        read_only: true,
        theme: Theme::mono(),
    });
    pump_until(&mut app, &mut events, Duration::from_secs(30), |a| {
        a.data.runs.snapshot.as_ref().map(|_| ())
    })
    .await;
    jobs.submit(ecops::jobs::Request::RunControl {
        run: id.clone(),
        request: ecops::runs::Request::Cancel,
    });
    let status = pump_until(&mut app, &mut events, Duration::from_secs(10), |a| {
        a.status.clone()
    })
    .await;
    assert!(status.0.contains("read-only"), "{status:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    jobs.shutdown(Duration::from_secs(5)).await;
    assert_eq!(
        tree(&dir),
        before,
        "a read-only console changed the catalog"
    );
}

/// Every file below `dir` with its bytes' hash.
fn tree(dir: &Path) -> BTreeMap<PathBuf, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.insert(p, xxhash_rust::xxh3::xxh3_64(&bytes));
            }
        }
    }
    out
}

#[test]
fn corrupt_records_are_unreadable_and_unknown_ids_list_the_recent_ones() {
    let base = local_base();
    let dir = base.local.clone().unwrap();
    std::fs::create_dir_all(dir.join("_ecops/runs/20261202T000000Z-ingest-aaaaaa")).unwrap();
    std::fs::write(
        dir.join("_ecops/runs/20261202T000000Z-ingest-aaaaaa/run.json"),
        b"{not json",
    )
    .unwrap();
    std::fs::write(dir.join("_ecops/runs/stray.txt"), b"hello").unwrap();
    let listed = base.json(&["runs", "--all"]);
    let keys: Vec<&str> = listed["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["key"].as_str().unwrap())
        .collect();
    assert!(
        keys.contains(&"_ecops/runs/20261202T000000Z-ingest-aaaaaa/run.json")
            && keys.contains(&"_ecops/runs/stray.txt"),
        "{listed}"
    );
    assert_eq!(listed["runs"].as_array().unwrap().len(), 0);
    let out = ecops_with(&["runs", "show", "nope", "--base", &base.uri], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no run 'nope'") && err.contains("recent runs"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_orphans_and_compaction_never_touch_the_ledger() {
    let src = slow_source(200, 0).await;
    let base = local_base();
    let (code, _) = finish(base.spawn_ingest(&src, 50, &[]));
    assert_eq!(code, 0);
    let dir = base.local.clone().unwrap();
    let ledger_before = tree(&dir.join("_ecops"));
    let dry = base.json(&["remove-orphans", "--older-than", "0s", "--dry-run"]);
    assert!(
        dry["paths"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p.as_str().unwrap().contains("_ecops")),
        "{dry}"
    );
    let done = base.json(&["remove-orphans", "--older-than", "0s"]);
    assert_eq!(done["deleted"], dry["orphans"]);
    let after = tree(&dir.join("_ecops"));
    assert!(
        ledger_before.keys().all(|k| after.contains_key(k)),
        "ledger files were deleted"
    );
    // Both maintenance runs are in the ledger too.
    let kinds: Vec<String> = base
        .runs()
        .iter()
        .map(|r| r["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"remove-orphans".to_string()), "{kinds:?}");
}
