//! Secrets never leak: runs with AWS keys and a session token in the
//! environment and credentials in an items-root URL — succeeding ones,
//! dead-lettering ones and failing ones — then every stdout, stderr, `--json`
//! summary, the lock object, dead letters, audit records, table metadata and
//! the catalog database (local, S3-hosted and its local cache) are searched
//! for the secret markers.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ecops_with, s3_base, s3_endpoint};
use ecops::testkit::http_server::{Faults, HttpServer};
use futures::TryStreamExt;

const URL_USER: &str = "markeruser7Q";
const URL_PASS: &str = "markerPassW0rd9";
const SECRET_KEY: &str = "markerSecretKeyZq9Zq9";
const SESSION_TOKEN: &str = "markerSessionTokenXy7Xy7";
const MARKERS: [&str; 4] = [URL_USER, URL_PASS, SECRET_KEY, SESSION_TOKEN];

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Collected text of everything a run printed.
#[derive(Default)]
struct Seen {
    outputs: Vec<(String, Vec<u8>)>,
}

impl Seen {
    fn run(&mut self, label: &str, args: &[&str], envs: &[(&str, &str)]) -> Option<i32> {
        let out = ecops_with(args, envs);
        assert_ne!(
            out.status.code(),
            Some(101),
            "{label} panicked: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.outputs.push((format!("{label}: stdout"), out.stdout));
        self.outputs.push((format!("{label}: stderr"), out.stderr));
        out.status.code()
    }

    fn add(&mut self, label: String, bytes: Vec<u8>) {
        self.outputs.push((label, bytes));
    }

    fn assert_clean(&self) {
        let leaks = self.leaks();
        assert!(leaks.is_empty(), "secrets leaked: {leaks:#?}");
    }

    fn leaks(&self) -> Vec<String> {
        let mut leaks = vec![];
        for (label, bytes) in &self.outputs {
            for m in MARKERS {
                if bytes.windows(m.len()).any(|w| w == m.as_bytes()) {
                    leaks.push(format!("{m} in {label}"));
                }
            }
        }
        leaks
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_appear_in_output_logs_or_catalog_files() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = tmp.path().join("demo");
    assert!(
        ecops_with(&["demo-data", "--items", "30", "--out", s(&demo)], &[])
            .status
            .success()
    );
    let inv = demo.join("inventory/inventory.csv");
    let inv_text = std::fs::read_to_string(&inv).unwrap();
    let one_key = inv_text.lines().nth(3).unwrap().split(',').nth(1).unwrap();
    let broken_name = one_key
        .trim_matches('"')
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let server = HttpServer::start(
        demo.join("items"),
        Faults {
            always_fail: Some(broken_name),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let port = server.addr.port();
    let with_creds = format!("http://{URL_USER}:{URL_PASS}@127.0.0.1:{port}");
    // A port nothing listens on: every fetch fails with the URL in the error.
    let refused = format!("http://{URL_USER}:{URL_PASS}@127.0.0.1:9");
    let cache = tmp.path().join("cache");
    let mut envs: Vec<(&str, &str)> = vec![
        ("AWS_ACCESS_KEY_ID", "AKIAMARKERKEYID"),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_SESSION_TOKEN", SESSION_TOKEN),
        ("ECOPS_CACHE_DIR", s(&cache)),
        ("RUST_LOG", "debug"),
    ];
    let endpoint = s3_endpoint();
    if let Some(e) = &endpoint {
        envs.push(("AWS_ENDPOINT_URL", e.as_str()));
    }

    let mut seen = Seen::default();
    let local = tmp.path().join("cat");
    let mut bases = vec![s(&local).to_string()];
    if endpoint.is_some() {
        bases.push(s3_base("secrets"));
    }
    let mut dead_lettered = 0;
    for base in &bases {
        let ingest = |root: &str, job: &str, json: bool| {
            let mut args = vec![
                "ingest",
                "--base",
                base.as_str(),
                "--inventory",
                s(&inv),
                "--items-root",
                root,
                "--job",
                job,
                "--attempts",
                "2",
                "--timeout",
                "2",
            ];
            if json {
                args.push("--json");
            }
            args.into_iter()
                .map(str::to_string)
                .collect::<Vec<String>>()
        };
        let code = seen.run(
            "ingest via URL with credentials",
            &strs(&ingest(&with_creds, "creds", true)),
            &envs,
        );
        assert_eq!(code, Some(3), "one item fails and is dead-lettered");
        dead_lettered += 1;
        let code = seen.run(
            "ingest from a refused URL",
            &strs(&ingest(&refused, "refused", false)),
            &envs,
        );
        // Every fetch is refused: a source outage, which stops the job
        // (exit 1) instead of dead-lettering every item.
        assert_eq!(code, Some(1), "an unreachable source stops the ingest");
        seen.run(
            "retry dead letters",
            &["ingest", "--base", base, "--retry-dead-letters", "--json"],
            &envs,
        );
        // Fatal errors: an unsupported URL with credentials, a bad inventory URL.
        let code = seen.run(
            "bad items root",
            &strs(&ingest(
                &format!("ftp://{URL_USER}:{URL_PASS}@host/x"),
                "ftp",
                true,
            )),
            &envs,
        );
        assert_ne!(code, Some(0));
        let code = seen.run(
            "bad inventory",
            &[
                "ingest",
                "--base",
                base,
                "--inventory",
                &format!("https://{URL_USER}:{URL_PASS}@127.0.0.1:9/inv.csv"),
            ],
            &envs,
        );
        assert_ne!(code, Some(0));
        let code = seen.run(
            "base with credentials",
            &[
                "stats",
                "--base",
                &format!("s3://{URL_USER}:{URL_PASS}@bucket/x"),
            ],
            &envs,
        );
        assert_ne!(code, Some(0));
        for args in [
            vec!["info", "--base", base, "--json"],
            vec!["stats", "--base", base, "--json"],
            vec!["lock", "status", "--base", base, "--json"],
            vec!["compact", "--base", base, "--json"],
        ] {
            seen.run(&format!("{args:?}"), &args, &envs);
        }
        // A lock taken and left held, then stolen: the lock body and the audit record.
        seen.run(
            "lock acquire",
            &[
                "lock", "acquire", "--base", base, "--owner", "drill", "--ttl", "1s", "--json",
            ],
            &envs,
        );
        tokio::time::sleep(Duration::from_millis(1200)).await;
        seen.run(
            "lock steal",
            &[
                "lock",
                "steal",
                "--base",
                base,
                "--yes",
                "--json",
                "--lock-skew",
                "0s",
            ],
            &envs,
        );
    }
    assert_eq!(dead_lettered, bases.len());

    // Every file the local catalog and the S3 cache hold.
    let mut files = files_under(&local);
    files.extend(files_under(&cache));
    assert!(files.iter().any(|f| s(f).contains("dead_letters")));
    assert!(files.iter().any(|f| s(f).contains(".lock-audit")));
    assert!(files.iter().any(|f| f.ends_with(".lock")));
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        seen.add(f.display().to_string(), bytes);
    }
    // Every object of the S3-hosted catalog.
    if let Some(e) = &endpoint {
        let loc = ecops::store::Location::parse(&bases[1]).unwrap();
        let store = ecops::store::open_location(
            &loc,
            &ecops::store::S3Options {
                endpoint: Some(e.clone()),
                anonymous: false,
            },
        )
        .unwrap();
        let os = store.object_store();
        let metas: Vec<_> = os.list(Some(&store.key(""))).try_collect().await.unwrap();
        assert!(
            metas
                .iter()
                .any(|m| m.location.as_ref().contains("dead_letters"))
        );
        for m in metas {
            let bytes = object_store::ObjectStoreExt::get(os.as_ref(), &m.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            seen.add(format!("s3 {}", m.location), bytes.to_vec());
        }
    }
    // The search itself works: the markers are findable where they were put.
    let mut probe = Seen::default();
    probe.add("probe".into(), with_creds.clone().into_bytes());
    assert_eq!(probe.leaks().len(), 2, "the search finds planted markers");
    let total: usize = seen.outputs.iter().map(|(_, b)| b.len()).sum();
    eprintln!(
        "secrets: searched {} outputs and files ({total} bytes) for {} markers",
        seen.outputs.len(),
        MARKERS.len()
    );
    seen.assert_clean();
}
