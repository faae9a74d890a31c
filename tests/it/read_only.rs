//! Read-only mode (`--read-only`, or `read_only = true` in the config file)
//! refuses every mutating command — init, ingest, dead-letter retry,
//! compact, expire-snapshots, remove-orphans, lock acquire/steal/release —
//! on a local catalog and on an S3-hosted one, and leaves every byte of the
//! catalog (database, metadata, data, lock) as it was: nothing is uploaded.
//! Reads still work.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::{LockBase, ecops_with, lock_bases};
use futures::TryStreamExt;

/// Every object under the base: key → bytes.
async fn tree(b: &LockBase) -> BTreeMap<String, Vec<u8>> {
    let store = b.store.object_store();
    let prefix = b.store.key("");
    let metas: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
    let mut out = BTreeMap::new();
    for m in metas {
        let key = m.location.to_string();
        // SQLite's shared-memory index and WAL are transient local files.
        if key.ends_with("-shm") || key.ends_with("-wal") {
            continue;
        }
        let bytes = object_store::ObjectStoreExt::get(store.as_ref(), &m.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        out.insert(key, bytes.to_vec());
    }
    out
}

/// Asserts two trees are equal, naming the keys that differ (not dumping bytes).
fn assert_same(after: &BTreeMap<String, Vec<u8>>, before: &BTreeMap<String, Vec<u8>>, what: &str) {
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "{what} changed {changed:?}");
}

fn run(b: &LockBase, args: &[&str], extra_env: &[(&str, &str)]) -> std::process::Output {
    let mut envs = b.env();
    envs.extend_from_slice(extra_env);
    ecops_with(args, &envs)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_refuses_every_write_and_changes_no_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    assert!(
        ecops_with(&["demo-data", "--items", "40", "--out", s(&demo)], &[])
            .status
            .success()
    );
    let inv = demo.join("inventory/inventory.csv");
    let items = demo.join("items");
    // An inventory with one missing item, so the catalog has a dead letter to retry.
    let inv_text = std::fs::read_to_string(&inv).unwrap();
    let first = inv_text.lines().next().unwrap().to_string();
    let broken = tmp.path().join("broken.csv");
    std::fs::write(
        &broken,
        first.replace(".stac.json", "-missing.stac.json") + "\n",
    )
    .unwrap();
    let config = tmp.path().join("ro.toml");
    std::fs::write(&config, "read_only = true\n").unwrap();

    let mut checked = 0;
    for b in lock_bases("readonly") {
        let base = b.base.as_str();
        let cache = tmp.path().join(format!("cache-{}", b.kind));
        let cache_env = [("ECOPS_CACHE_DIR", s(&cache))];
        // A catalog with several small files per bucket, history and a dead letter.
        let ingest = |inventory: &Path, chunk: &str| {
            run(
                &b,
                &[
                    "ingest",
                    "--base",
                    base,
                    "--inventory",
                    s(inventory),
                    "--items-root",
                    s(&items),
                    "--chunk-size",
                    chunk,
                ],
                &cache_env,
            )
        };
        assert!(ingest(&inv, "5").status.success());
        assert_eq!(ingest(&broken, "5").status.code(), Some(3));

        let before = tree(&b).await;
        assert!(before.keys().any(|k| k.ends_with("earthcatalog.db")));
        assert!(before.keys().any(|k| k.contains("dead_letters/")));

        let mut commands: Vec<(&str, Vec<&str>)> = vec![
            ("init", vec!["init", "--base", base]),
            (
                "ingest",
                vec![
                    "ingest",
                    "--base",
                    base,
                    "--inventory",
                    s(&inv),
                    "--items-root",
                    s(&items),
                    "--job",
                    "another",
                ],
            ),
            (
                "ingest --retry-dead-letters",
                vec!["ingest", "--base", base, "--retry-dead-letters"],
            ),
            ("compact", vec!["compact", "--base", base]),
            (
                "expire-snapshots",
                vec!["expire-snapshots", "--base", base, "--older-than", "0s"],
            ),
            (
                "remove-orphans",
                vec!["remove-orphans", "--base", base, "--older-than", "0s"],
            ),
            (
                "lock acquire",
                vec!["lock", "acquire", "--base", base, "--owner", "ro-test"],
            ),
        ];
        for mode in ["flag", "config"] {
            for (what, args) in &commands {
                let mut args = args.clone();
                let ro = match mode {
                    "flag" => vec!["--read-only"],
                    _ => vec!["--config", s(&config)],
                };
                args.extend(ro);
                let out = run(&b, &args, &cache_env);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_ne!(
                    out.status.code(),
                    Some(0),
                    "{} {what} ({mode}) was not refused: {stderr}",
                    b.kind
                );
                assert_ne!(out.status.code(), Some(101), "{what} panicked: {stderr}");
                assert!(
                    stderr.contains("read-only"),
                    "{} {what} ({mode}): no clear read-only refusal: {stderr}",
                    b.kind
                );
                assert_same(
                    &tree(&b).await,
                    &before,
                    &format!("{} {what} ({mode})", b.kind),
                );
                checked += 1;
            }
        }

        // A stale lock someone else holds: steal and release are writes too.
        let out = run(
            &b,
            &[
                "lock", "acquire", "--base", base, "--owner", "holder", "--ttl", "1s", "--json",
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let held: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap())
                .unwrap();
        let nonce = held["nonce"]
            .as_str()
            .or_else(|| held["lock"]["nonce"].as_str())
            .unwrap_or_else(|| panic!("no nonce in {held}"))
            .to_string();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let locked = tree(&b).await;
        commands = vec![
            (
                "lock steal",
                vec![
                    "lock",
                    "steal",
                    "--base",
                    base,
                    "--yes",
                    "--lock-skew",
                    "0s",
                ],
            ),
            (
                "lock release",
                vec!["lock", "release", "--base", base, "--nonce", &nonce],
            ),
        ];
        for mode in ["flag", "config"] {
            for (what, args) in &commands {
                let mut args = args.clone();
                args.extend(match mode {
                    "flag" => vec!["--read-only"],
                    _ => vec!["--config", s(&config)],
                });
                let out = run(&b, &args, &cache_env);
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert_ne!(out.status.code(), Some(0), "{what} ({mode}): {stderr}");
                assert!(stderr.contains("read-only"), "{what} ({mode}): {stderr}");
                assert_same(
                    &tree(&b).await,
                    &locked,
                    &format!("{} {what} ({mode})", b.kind),
                );
                checked += 1;
            }
        }
        // Control: without read-only the same steal goes through.
        let out = run(
            &b,
            &[
                "lock",
                "steal",
                "--base",
                base,
                "--yes",
                "--lock-skew",
                "0s",
            ],
            &[],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(tree(&b).await, locked, "the control steal changed nothing");

        // Reads still work read-only, and do not write either.
        let after_steal = tree(&b).await;
        for args in [
            vec!["stats", "--base", base, "--json", "--read-only"],
            vec!["info", "--base", base, "--json", "--read-only"],
            vec!["lock", "status", "--base", base, "--json", "--read-only"],
        ] {
            let out = run(&b, &args, &cache_env);
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_same(&tree(&b).await, &after_steal, &format!("{args:?}"));
        }
    }
    assert!(checked >= 18, "{checked} refusals checked");
}
