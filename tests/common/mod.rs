//! Test support: the ecops binary, synthetic items, the earthcatalog fixture,
//! and the external services scripts/test.sh starts (S3 server, PyIceberg).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use ecops::stac::Item;
use serde_json::Value;

/// Runs the real `ecops` binary (with `ECOPS_BASE` cleared).
pub fn ecops(args: &[&str]) -> Output {
    ecops_with(args, &[])
}

/// Runs the real `ecops` binary with extra environment variables.
pub fn ecops_with(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecops"));
    cmd.args(args).env_remove("ECOPS_BASE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run ecops")
}

/// Runs ecops and parses the last stdout line as JSON; panics with stderr on failure.
pub fn ecops_json(args: &[&str]) -> Value {
    ecops_json_with(args, &[])
}

/// [`ecops_json`] with extra environment variables.
pub fn ecops_json_with(args: &[&str], envs: &[(&str, &str)]) -> Value {
    let out = ecops_with(args, envs);
    assert!(
        out.status.success(),
        "ecops {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// Deterministic synthetic scenes (see `ecops::demo`).
pub fn scenes(n: usize) -> Vec<Item> {
    ecops::demo::scenes(n, 0)
}

/// Extracts the earthcatalog fixture at /tmp/ecops-fixture (its metadata records
/// absolute paths there) and returns the catalog folder. Safe across threads and processes.
pub fn earthcatalog_fixture() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let root = PathBuf::from("/tmp/ecops-fixture");
        let catalog = root.join("earthcatalog-0.5.1");
        if !catalog.join("earthcatalog.db").is_file() {
            let staging =
                PathBuf::from(format!("/tmp/ecops-fixture-staging-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&staging);
            std::fs::create_dir_all(&staging).unwrap();
            let tarball = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/earthcatalog-0.5.1.tar.gz");
            let status = Command::new("tar")
                .arg("-xzf")
                .arg(&tarball)
                .arg("-C")
                .arg(&staging)
                .status()
                .expect("run tar");
            assert!(status.success(), "extract fixture");
            std::fs::create_dir_all(&root).unwrap();
            for name in ["earthcatalog-0.5.1", "earthcatalog-0.5.1-inputs"] {
                // rename is atomic: a concurrent extractor either wins or finds it done.
                let _ = std::fs::rename(staging.join(name), root.join(name));
            }
            let _ = std::fs::remove_dir_all(&staging);
        }
        assert!(
            catalog.join("earthcatalog.db").is_file(),
            "fixture at {}",
            catalog.display()
        );
        catalog
    })
    .clone()
}

fn require_external() -> bool {
    std::env::var("ECOPS_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
}

/// The S3 test server endpoint, or None (the test should return early) when the
/// suite runs without scripts/test.sh. Under the script a missing server fails the test.
pub fn s3_endpoint() -> Option<String> {
    match std::env::var("ECOPS_TEST_S3_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            assert!(
                !require_external(),
                "ECOPS_TEST_S3_ENDPOINT is not set but scripts/test.sh requires it"
            );
            eprintln!("skipping: no S3 test server (run scripts/test.sh)");
            None
        }
    }
}

/// A fresh s3:// base in the test bucket.
pub fn s3_base(name: &str) -> String {
    let bucket = std::env::var("ECOPS_TEST_S3_BUCKET").unwrap_or_else(|_| "ecops-test".into());
    format!("s3://{bucket}/{name}-{}", uuid::Uuid::new_v4().simple())
}

/// The Python interpreter with PyIceberg installed, or None (see [`s3_endpoint`]).
pub fn python() -> Option<String> {
    match std::env::var("ECOPS_TEST_PYTHON") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            assert!(
                !require_external(),
                "ECOPS_TEST_PYTHON is not set but scripts/test.sh requires it"
            );
            eprintln!("skipping: no Python with PyIceberg (run scripts/test.sh)");
            None
        }
    }
}

/// Runs a script from tests/py with arguments; returns its last stdout line as JSON.
pub fn run_python(python: &str, script: &str, args: &[&str]) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = Command::new(python)
        .arg(path)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{script}: {e}: {stdout}"))
}
