//! Test support: the ecops binary, synthetic items, the earthcatalog fixture,
//! and the external services scripts/test.sh starts (S3 server, PyIceberg).

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

/// The Slurm test cluster's config (`SLURM_CONF`), or None (the test should
/// return early) when the suite runs without scripts/test.sh.
pub fn slurm_conf() -> Option<String> {
    match std::env::var("ECOPS_TEST_SLURM_CONF") {
        Ok(c) if !c.is_empty() => Some(c),
        _ => {
            assert!(
                !require_external(),
                "ECOPS_TEST_SLURM_CONF is not set but scripts/test.sh requires it"
            );
            None
        }
    }
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

/// A catalog base for lock tests: a fresh local folder or a fresh s3:// prefix.
pub struct LockBase {
    /// "local" or "s3", for messages.
    pub kind: &'static str,
    pub base: String,
    pub store: ecops::store::Store,
    /// The S3 endpoint the ecops binary and catalog need, for S3 bases.
    pub endpoint: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl LockBase {
    /// Environment for the ecops binary.
    pub fn env(&self) -> Vec<(&str, &str)> {
        self.endpoint
            .as_deref()
            .map(|e| vec![("AWS_ENDPOINT_URL", e)])
            .unwrap_or_default()
    }

    /// Options to open or create a catalog at this base.
    pub fn open_options(&self) -> ecops::catalog::OpenOptions {
        ecops::catalog::OpenOptions {
            read_only: false,
            s3: ecops::store::S3Options {
                endpoint: self.endpoint.clone(),
                anonymous: false,
            },
            ..Default::default()
        }
    }

    /// Another fresh base of the same kind.
    pub fn sibling(&self, name: &str) -> LockBase {
        match &self.endpoint {
            None => local_lock_base(),
            Some(e) => s3_lock_base(name, e),
        }
    }

    /// Writes raw bytes at the lock key, unconditionally (another tool's lock, garbage).
    pub async fn put_lock_raw(&self, bytes: &[u8]) {
        object_store::ObjectStoreExt::put(
            self.store.object_store().as_ref(),
            &self.store.key(".lock"),
            bytes.to_vec().into(),
        )
        .await
        .expect("write the lock object");
    }

    /// The lock object's bytes.
    pub async fn lock_bytes(&self) -> Vec<u8> {
        let got = object_store::ObjectStoreExt::get(
            self.store.object_store().as_ref(),
            &self.store.key(".lock"),
        )
        .await
        .expect("read the lock object");
        got.bytes().await.expect("lock bytes").to_vec()
    }
}

fn local_lock_base() -> LockBase {
    let dir = tempfile::tempdir().expect("temp dir");
    let base = dir.path().join("catalog").to_string_lossy().into_owned();
    let store = ecops::store::open_location(
        &ecops::store::Location::parse(&base).unwrap(),
        &ecops::store::S3Options::default(),
    )
    .unwrap();
    LockBase {
        kind: "local",
        base,
        store,
        endpoint: None,
        _dir: Some(dir),
    }
}

fn s3_lock_base(name: &str, endpoint: &str) -> LockBase {
    let base = s3_base(name);
    let store = ecops::store::open_location(
        &ecops::store::Location::parse(&base).unwrap(),
        &ecops::store::S3Options {
            endpoint: Some(endpoint.to_string()),
            anonymous: false,
        },
    )
    .unwrap();
    LockBase {
        kind: "s3",
        base,
        store,
        endpoint: Some(endpoint.to_string()),
        _dir: None,
    }
}

/// A local base, plus an S3 base when the test server runs (see [`s3_endpoint`]).
pub fn lock_bases(name: &str) -> Vec<LockBase> {
    let mut bases = vec![local_lock_base()];
    if let Some(endpoint) = s3_endpoint() {
        bases.push(s3_lock_base(name, &endpoint));
    }
    bases
}

/// Every record batch of one data file, read through the table's FileIO with
/// parquet directly (not through ecops's own readers).
pub async fn read_data_file(
    table: &iceberg::table::Table,
    path: &str,
) -> Vec<arrow_array::RecordBatch> {
    let bytes = table
        .file_io()
        .new_input(path)
        .unwrap()
        .read()
        .await
        .unwrap();
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap()
        .map(|batch| batch.unwrap())
        .collect()
}

/// Every live row of a catalog's current snapshot as (id, grid_partition) →
/// count, read from its data files.
pub async fn catalog_rows(
    base: &str,
    opts: &ecops::catalog::OpenOptions,
) -> std::collections::BTreeMap<(String, String), u32> {
    use arrow_array::cast::AsArray;
    let catalog = ecops::catalog::EarthCatalog::open(base, opts)
        .await
        .unwrap();
    let table = catalog.table().await.unwrap();
    let mut rows = std::collections::BTreeMap::new();
    for file in ecops::catalog::stats::live_files(&table).await.unwrap() {
        for batch in read_data_file(&table, &file.path).await {
            // Other writers (PyIceberg) may store strings as large_string.
            let utf8 = |name: &str| {
                arrow_cast::cast(
                    batch.column_by_name(name).unwrap(),
                    &arrow_schema::DataType::Utf8,
                )
                .unwrap()
            };
            let (ids, cells) = (utf8("id"), utf8("grid_partition"));
            let (ids, cells) = (ids.as_string::<i32>(), cells.as_string::<i32>());
            for i in 0..batch.num_rows() {
                *rows
                    .entry((ids.value(i).to_string(), cells.value(i).to_string()))
                    .or_insert(0) += 1;
            }
        }
    }
    rows
}

/// SplitMix64: the test's only source of randomness, seeded and printed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The seed of a randomized test: `ECOPS_CRASH_SEED`, else the clock; printed
/// so a failure can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("ECOPS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                % 1_000_000_007
        });
    eprintln!("seed {seed} (reproduce with ECOPS_CRASH_SEED={seed})");
    seed
}
