//! `ecops lock acquire | release | steal` on the local filesystem and a real
//! S3 server: concurrent processes, tokens, earthcatalog's and garbage locks.

use crate::common;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use common::{LockBase, earthcatalog_fixture, lock_bases};
use ecops::lock::audit::read_audit;
use serde_json::Value;

fn run(b: &LockBase, args: &[&str]) -> Output {
    run_with_stdin(b, args, None)
}

fn run_with_stdin(b: &LockBase, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecops"));
    cmd.args(["lock"])
        .args(args)
        .args(["--base", &b.base])
        .env_remove("ECOPS_BASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in b.env() {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("run ecops");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().expect("wait for ecops")
}

fn last_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Runs a command that must succeed; returns its JSON.
fn ok(b: &LockBase, args: &[&str]) -> Value {
    let out = run(b, args);
    assert!(
        out.status.success(),
        "{}: ecops lock {args:?} failed: {}",
        b.kind,
        String::from_utf8_lossy(&out.stderr)
    );
    last_json(&out)
}

/// Runs a command that must be refused (exit 1) and leave the lock bytes as
/// they were; returns stderr.
async fn refused(b: &LockBase, args: &[&str], stdin: Option<&str>) -> String {
    let before = b.lock_bytes().await;
    let out = run_with_stdin(b, args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}: ecops lock {args:?} should be refused: {stderr}",
        b.kind
    );
    assert_eq!(
        b.lock_bytes().await,
        before,
        "{}: {args:?} changed the lock",
        b.kind
    );
    if args.contains(&"--json") {
        assert_eq!(last_json(&out)["ok"], false);
    }
    stderr
}

fn status(b: &LockBase) -> Value {
    ok(b, &["status", "--json"])
}

#[test]
fn concurrent_acquire_processes_exactly_one_wins_every_round() {
    for b in lock_bases("lock-cli-acquire") {
        for round in 0..3 {
            let children: Vec<_> = (0..8)
                .map(|i| {
                    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecops"));
                    let owner = format!("op{i}");
                    cmd.args(["lock", "acquire", "--owner", &owner, "--ttl", "10m"])
                        .args(["--base", &b.base, "--json"])
                        .env_remove("ECOPS_BASE")
                        .stdout(Stdio::piped())
                        .stderr(Stdio::piped());
                    for (k, v) in b.env() {
                        cmd.env(k, v);
                    }
                    cmd.spawn().expect("spawn ecops")
                })
                .collect();
            let outputs: Vec<Output> = children
                .into_iter()
                .map(|c| c.wait_with_output().unwrap())
                .collect();
            let winners: Vec<&Output> = outputs.iter().filter(|o| o.status.success()).collect();
            assert_eq!(winners.len(), 1, "{} round {round}", b.kind);
            for loser in outputs.iter().filter(|o| !o.status.success()) {
                let err = String::from_utf8_lossy(&loser.stderr);
                assert!(err.contains("is held by op"), "{}: {err}", b.kind);
            }
            let won = last_json(winners[0]);
            let now = status(&b);
            assert_eq!(now["nonce"], won["nonce"]);
            assert_eq!(now["generation"], round + 1);
            assert_eq!(now["pid"], 0, "a maintenance lock outlives its process");
            assert_eq!(now["stale"], false);
            let nonce = won["nonce"].as_str().unwrap();
            ok(&b, &["release", "--nonce", nonce, "--json"]);
            assert_eq!(status(&b)["held"], false);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_by_a_non_holder_is_refused() {
    for b in lock_bases("lock-cli-release") {
        let taken = ok(
            &b,
            &["acquire", "--owner", "alice", "--ttl", "30m", "--json"],
        );
        let (nonce, generation) = (
            taken["nonce"].as_str().unwrap().to_string(),
            taken["generation"].as_u64().unwrap(),
        );
        let err = refused(&b, &["release"], None).await;
        assert!(
            err.contains("--nonce or --generation") && err.contains("alice"),
            "{err}"
        );
        let other = (generation + 1).to_string();
        for args in [
            vec!["release", "--nonce", "0123456789abcdef", "--json"],
            vec!["release", "--generation", &other],
        ] {
            let err = refused(&b, &args, None).await;
            assert!(err.contains("not ours"), "{err}");
        }
        let err = refused(&b, &["acquire", "--owner", "bob"], None).await;
        assert!(err.contains("held by alice"), "{err}");
        let err = refused(&b, &["steal", "--yes"], None).await;
        assert!(err.contains("not stale"), "{err}");

        let released = ok(
            &b,
            &["release", "--generation", &generation.to_string(), "--json"],
        );
        assert_eq!(released["owner"], "alice");
        let free = status(&b);
        assert_eq!(
            (free["held"].as_bool(), free["released"]["owner"].as_str()),
            (Some(false), Some("alice"))
        );
        let out = run(&b, &["release", "--nonce", &nonce]);
        assert_eq!(out.status.code(), Some(1), "releasing a free lock");
        // After a release the next holder's generation is larger.
        let next = ok(&b, &["acquire", "--owner", "bob", "--json"]);
        assert_eq!(next["generation"], generation + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn earthcatalog_lock_is_shown_and_stolen_when_stale() {
    let fixture_lock = std::fs::read(earthcatalog_fixture().join(".lock")).unwrap();
    for b in lock_bases("lock-cli-ec") {
        // A live earthcatalog lock (acquired now, naive timestamp) is not stolen with --yes.
        let live = format!(
            r#"{{"owner": "incremental", "pid": 4242, "hostname": "ip-10-0-3-17", "acquired": "{}", "ttl_hours": 12}}"#,
            chrono::Utc::now()
                .naive_utc()
                .format("%Y-%m-%dT%H:%M:%S%.6f")
        );
        b.put_lock_raw(live.as_bytes()).await;
        assert_eq!(status(&b)["stale"], false);
        let err = refused(&b, &["steal", "--yes", "--json"], None).await;
        assert!(
            err.contains("not stale") && err.contains("no generation"),
            "{err}"
        );
        let err = refused(&b, &["release", "--generation", "1"], None).await;
        assert!(err.contains("not ours"), "{err}");

        // earthcatalog's fixture lock: acquired 2026-11-18T03:14Z, TTL 12 h: stale now.
        b.put_lock_raw(&fixture_lock).await;
        let shown = status(&b);
        assert_eq!(
            (
                shown["owner"].as_str(),
                shown["hostname"].as_str(),
                shown["pid"].as_i64()
            ),
            (Some("backfill"), Some("ip-10-0-3-17"), Some(4242))
        );
        assert!(shown["generation"].is_null());
        assert_eq!(
            (shown["stale"].as_bool(), shown["stale_reason"].as_str()),
            (Some(true), Some("expired"))
        );

        let stolen = ok(&b, &["steal", "--yes", "--owner", "ops", "--json"]);
        assert_eq!(stolen["stolen"], true);
        assert_eq!(stolen["from"]["owner"], "backfill");
        assert_eq!(stolen["generation"], 1);
        let now = status(&b);
        assert_eq!(
            (now["owner"].as_str(), now["stale"].as_bool()),
            (Some("ops"), Some(false))
        );
        assert_eq!(now["nonce"], stolen["nonce"]);

        let audit = read_audit(&b.store).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].from["owner"], "backfill");
        assert_eq!(audit[0].by.owner, "ops");
        assert_eq!(audit[0].generation_before, None);
        assert_eq!(
            stolen["audit"].as_str().map(|a| a.contains(".lock-audit/")),
            Some(true)
        );

        // What earthcatalog reads of our lock: its five fields, `acquired` with an offset.
        let raw: Value = serde_json::from_slice(&b.lock_bytes().await).unwrap();
        assert!(raw["acquired"].as_str().unwrap().ends_with("+00:00"));
        assert!(raw["ttl_hours"].is_f64() && raw["pid"].is_i64() && raw["hostname"].is_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_lock_is_reported_clearly_and_stolen_only_with_force() {
    for b in lock_bases("lock-cli-garbage") {
        b.put_lock_raw(b"\x00\x01 this is not a lock").await;
        let shown = status(&b);
        assert_eq!(
            (shown["held"].as_bool(), shown["readable"].as_bool()),
            (Some(true), Some(false))
        );
        assert!(!shown["reason"].as_str().unwrap().is_empty());
        let fingerprint = shown["fingerprint"].as_str().unwrap().to_string();
        assert_eq!(fingerprint.len(), 16);
        let text = String::from_utf8_lossy(&run(&b, &["status"]).stdout).into_owned();
        assert!(
            text.contains("not a lock record") && text.contains(&fingerprint),
            "{text}"
        );

        let err = refused(&b, &["acquire", "--owner", "x"], None).await;
        assert!(err.contains("not a lock record"), "{err}");
        let err = refused(&b, &["steal", "--yes", "--json"], None).await;
        assert!(
            err.contains(&fingerprint),
            "the refusal names the token: {err}"
        );
        let err = refused(&b, &["steal", "--yes", "--force", "1"], None).await;
        assert!(
            err.contains("is not the generation, nonce or fingerprint"),
            "{err}"
        );

        let stolen = ok(&b, &["steal", "--yes", "--force", &fingerprint, "--json"]);
        assert_eq!(stolen["generation"], 1);
        assert_eq!(stolen["from"]["readable"], false);
        assert_eq!(status(&b)["readable"], true);
        let audit = read_audit(&b.store).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].from["fingerprint"], fingerprint.as_str());
        assert!(audit[0].why.contains("forced"), "{}", audit[0].why);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steal_asks_on_the_terminal_unless_yes() {
    for b in lock_bases("lock-cli-prompt") {
        let stale_beat = (chrono::Utc::now() - chrono::Duration::hours(2)).to_rfc3339();
        let stale = serde_json::json!({"owner": "nightly", "pid": 5, "hostname": "far-host",
            "acquired": stale_beat, "ttl_hours": 1.0, "nonce": "abc", "generation": 41,
            "heartbeat": stale_beat, "operation": "compact"})
        .to_string();
        b.put_lock_raw(stale.as_bytes()).await;
        let err = refused(&b, &["steal"], Some("n\n")).await;
        assert!(
            err.contains("[y/N]") && err.contains("nightly") && err.contains("not confirmed"),
            "{err}"
        );
        refused(&b, &["steal"], None).await;

        let out = run_with_stdin(&b, &["steal", "--json"], Some("y\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(last_json(&out)["generation"], 42);

        // Live now (just stolen): --force takes only its exact generation or nonce.
        let err = refused(&b, &["steal", "--yes", "--force", "41"], None).await;
        assert!(err.contains("is not the generation"), "{err}");
        let forced = ok(
            &b,
            &[
                "steal", "--yes", "--force", "42", "--owner", "boss", "--json",
            ],
        );
        assert_eq!(
            (forced["generation"].as_u64(), forced["owner"].as_str()),
            (Some(43), Some("boss"))
        );
        assert_eq!(read_audit(&b.store).await.unwrap().len(), 2);

        // --read-only refuses every lock write.
        let out = run(&b, &["steal", "--yes", "--force", "43", "--read-only"]);
        assert!(!out.status.success());
        assert_eq!(status(&b)["generation"], 43);
    }
}

/// The skew allowance: a heartbeat one minute past its TTL (5 min allowance)
/// is refused, and the refusal says when the lock becomes stealable; with
/// `lock_skew = "30s"` in the config the same lock is stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_just_past_its_ttl_is_refused_with_the_time_it_becomes_stealable() {
    let beat = chrono::Utc::now() - chrono::Duration::minutes(61);
    let body = format!(
        r#"{{"owner": "slow-clock", "pid": 77, "hostname": "elsewhere", "acquired": "{}", "heartbeat": "{}", "ttl_hours": 1, "generation": 5, "nonce": "n5"}}"#,
        beat.to_rfc3339(),
        beat.to_rfc3339()
    );
    let stealable = beat + chrono::Duration::minutes(65);
    for b in lock_bases("lock-cli-skew") {
        b.put_lock_raw(body.as_bytes()).await;
        let shown = status(&b);
        assert_eq!(shown["stale"], false, "{shown}");
        assert_eq!(shown["skew_seconds"], 300.0);
        let err = refused(&b, &["steal", "--yes"], None).await;
        let when = stealable.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        assert!(
            err.contains("not stale") && err.contains(&format!("becomes stale at {when}")),
            "the refusal names the time it becomes stealable ({when}): {err}"
        );

        let config = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(config.path(), "lock_skew = \"30s\"\n").unwrap();
        let config = config.path().to_str().unwrap().to_string();
        let strict = ok(&b, &["status", "--json", "--config", &config]);
        assert_eq!(
            (strict["stale"].as_bool(), strict["stale_reason"].as_str()),
            (Some(true), Some("expired")),
            "{strict}"
        );
        let why = strict["stale_why"].as_str().unwrap_or_default();
        assert!(
            why.starts_with("expired ")
                && why.contains(" s ago by its own clock (TTL 1 h, skew allowance 30 s)"),
            "{why}"
        );
    }
}
