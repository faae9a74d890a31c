//! `ecops ingest --urls` (and `backfill … --urls`) on earthcatalog's own
//! items: URL lists as text, CSV, TSV, NDJSON (a glob over several files),
//! Parquet and gzip, mixing absolute paths, file:// URLs, paths relative to
//! the list and http:// URLs of a real loopback server — each gives exactly
//! the rows the items make; refused schemes and URLs outside `--items-root`
//! are dead letters with their reason; a job over a glob resumes after
//! kill -9; lists and items on the real S3 server.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecops::catalog::OpenOptions;
use ecops::testkit::http_server::{Faults, HttpServer};

use crate::common::{self, catalog_rows, s3_base, s3_endpoint};
use crate::ingest::{commits, csv_rows, dead_letters, expected_rows, ingest, inputs, s};

/// The fixture's item keys (the first `n` of its full inventory).
fn keys(n: usize) -> Vec<String> {
    csv_rows(&inputs().join("inventory/full.csv"))
        .into_iter()
        .take(n)
        .map(|(k, _)| k)
        .collect()
}

/// The items folder served over HTTP.
async fn serve_items() -> HttpServer {
    HttpServer::start(inputs().join("items"), Faults::default())
        .await
        .unwrap()
}

/// Ingests `args` into a new catalog `base` (blocking the test's runtime
/// must not starve the HTTP server, hence a blocking task).
async fn ingest_into(base: &Path, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all: Vec<String> = vec!["--base".into(), s(base).into()];
    all.extend(args.iter().map(|a| a.to_string()));
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        ingest(&refs, &[])
    })
    .await
    .unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A Parquet list: a `url` column and another one.
fn parquet_list(path: &Path, urls: &[String]) {
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    let batch = RecordBatch::try_from_iter([
        (
            "n",
            Arc::new(Int64Array::from_iter_values(0..urls.len() as i64)) as ArrayRef,
        ),
        (
            "URL",
            Arc::new(StringArray::from(urls.to_vec())) as ArrayRef,
        ),
    ])
    .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_lists_in_every_format_give_the_rows_of_their_items() {
    let items = inputs().join("items");
    let keys = keys(120);
    let server = serve_items().await;
    let tmp = tempfile::tempdir().unwrap();
    let lists = tmp.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    // Relative entries resolve against the list's folder.
    std::os::unix::fs::symlink(&items, lists.join("items")).unwrap();
    // Every kind of entry, in turn.
    let entry = |i: usize, key: &str| match i % 4 {
        0 => s(&items.join(key)).to_string(),
        1 => format!("file://{}", s(&items.join(key))),
        2 => format!("items/{key}"),
        _ => format!("{}/{key}", server.url()),
    };
    let urls: Vec<String> = keys.iter().enumerate().map(|(i, k)| entry(i, k)).collect();
    let expected = expected_rows(&items, &keys);

    let mut text = String::from("# item URLs\n\n");
    for (i, u) in urls.iter().enumerate() {
        text.push_str(u);
        text.push_str(if i % 7 == 0 { "\r\n" } else { "\n" });
    }
    std::fs::write(lists.join("urls.txt"), &text).unwrap();
    std::fs::write(lists.join("urls.txt.gz"), gzip(text.as_bytes())).unwrap();
    let csv: String = std::iter::once("id,url,size\n".to_string())
        .chain(
            urls.iter()
                .enumerate()
                .map(|(i, u)| format!("{i},\"{u}\",1\n")),
        )
        .collect();
    std::fs::write(lists.join("urls.csv"), csv).unwrap();
    let tsv: String = std::iter::once("n\thref\n".to_string())
        .chain(urls.iter().enumerate().map(|(i, u)| format!("{i}\t{u}\n")))
        .collect();
    std::fs::write(lists.join("urls.tsv"), tsv).unwrap();
    parquet_list(&lists.join("urls.parquet"), &urls);
    // NDJSON split over two files a glob matches, and one it does not.
    let ndjson = |part: &[String]| -> String {
        part.iter()
            .map(|u| serde_json::json!({"url": u, "other": 1}).to_string() + "\n")
            .collect()
    };
    std::fs::write(lists.join("2020_a.ndjson"), ndjson(&urls[..50])).unwrap();
    std::fs::write(lists.join("2020_b.ndjson"), ndjson(&urls[50..])).unwrap();
    std::fs::write(
        lists.join("2021_a.ndjson"),
        ndjson(&[s(&items.join("not-there.stac.json")).to_string()]),
    )
    .unwrap();

    let cases: [(&str, &[&str]); 6] = [
        ("urls.txt", &[]),
        ("urls.txt.gz", &[]),
        ("urls.csv", &[]),
        ("urls.tsv", &["--url-column", "href"]),
        ("urls.parquet", &[]),
        ("2020_*.ndjson", &[]),
    ];
    for (i, (name, extra)) in cases.iter().enumerate() {
        let base = tmp.path().join(format!("cat-{i}"));
        let pattern = lists.join(name);
        let mut args = vec!["--urls", s(&pattern), "--chunk-size", "32"];
        args.extend_from_slice(extra);
        let (code, summary) = ingest_into(&base, &args).await;
        assert_eq!(code, 0, "{name}: {summary}");
        assert_eq!(summary["items"], keys.len(), "{name}: {summary}");
        assert_eq!(summary["failed"], 0, "{name}: {summary}");
        assert_eq!(summary["commits"], keys.len().div_ceil(32), "{name}");
        assert_eq!(
            catalog_rows(s(&base), &OpenOptions::default()).await,
            expected,
            "{name}: rows differ from the items'"
        );
    }
    // A quarter of the items came over HTTP, in every one of the six runs.
    let over_http = keys.iter().enumerate().filter(|(i, _)| i % 4 == 3);
    for (_, key) in over_http {
        assert_eq!(server.requests_for(&format!("/{key}")), 6, "{key}");
    }
    // A list without the column is refused before any entry is read.
    let base = tmp.path().join("cat-nocolumn");
    let out = common::ecops_with(
        &[
            "ingest",
            "--base",
            s(&base),
            "--urls",
            s(&lists.join("urls.tsv")),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("no 'url' column (columns: n, href)"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_schemes_and_urls_outside_the_items_root_are_dead_letters() {
    let items = inputs().join("items");
    let keys = keys(12);
    let server = serve_items().await;
    let tmp = tempfile::tempdir().unwrap();
    let secret = tmp.path().join("secret.stac.json");
    std::fs::copy(items.join(&keys[0]), &secret).unwrap();
    let first = keys[0].split('/').next().unwrap();
    let good: Vec<String> = keys[..6]
        .iter()
        .map(|k| s(&items.join(k)).to_string())
        .collect();
    let refused = [
        ("ftp://example.org/x.stac.json", "unsupported scheme 'ftp'"),
        ("gs://bucket/x.stac.json", "unsupported scheme 'gs'"),
        (s(&secret), "outside the allowed root"),
        (
            &format!("{}/{first}/../../secret.stac.json", s(&items)),
            "outside the allowed root",
        ),
        (
            &format!("{}/{}", server.url(), keys[6]),
            "outside the allowed root",
        ),
        ("s3://other-bucket/x.stac.json", "outside the allowed root"),
    ]
    .map(|(u, why)| (u.to_string(), why));
    let list = tmp.path().join("urls.txt");
    let lines: Vec<&str> = good
        .iter()
        .map(String::as_str)
        .chain(refused.iter().map(|(u, _)| u.as_str()))
        .collect();
    std::fs::write(&list, lines.join("\n")).unwrap();
    let base = tmp.path().join("cat");
    let (code, summary) =
        ingest_into(&base, &["--urls", s(&list), "--items-root", s(&items)]).await;
    assert_eq!(code, 3, "{summary}");
    assert_eq!(summary["items"], good.len() + refused.len());
    assert_eq!(summary["fetched"], good.len());
    assert_eq!(summary["failed"], refused.len());
    let (letters, _) = dead_letters(&base).await;
    assert_eq!(letters.len(), refused.len());
    for (url, why) in &refused {
        let letter = letters
            .iter()
            .find(|l| l.key.as_deref() == Some(url.as_str()))
            .unwrap_or_else(|| panic!("no dead letter for {url}: {letters:?}"));
        assert!(letter.reason.contains(why), "{url}: {}", letter.reason);
    }
    assert_eq!(
        catalog_rows(s(&base), &OpenOptions::default()).await,
        expected_rows(&items, &keys[..6])
    );

    // An http root bounds http URLs: below it they are fetched, a `..`
    // climbing out of it or another port is refused.
    let root = format!("{}/{first}", server.url());
    let inside: Vec<String> = keys[6..]
        .iter()
        .map(|k| format!("{}/{k}", server.url()))
        .collect();
    let outside = [
        format!("{root}/../elsewhere/{}", keys[0]),
        format!("http://127.0.0.1:1/{}", keys[1]),
    ];
    let list = tmp.path().join("http.txt");
    std::fs::write(&list, [&inside[..], &outside[..]].concat().join("\n")).unwrap();
    let base = tmp.path().join("cat-http");
    let (code, summary) = ingest_into(&base, &["--urls", s(&list), "--items-root", &root]).await;
    assert_eq!(code, 3, "{summary}");
    assert_eq!(summary["fetched"], inside.len(), "{summary}");
    assert_eq!(summary["failed"], outside.len(), "{summary}");
    let (letters, _) = dead_letters(&base).await;
    assert!(
        letters
            .iter()
            .all(|l| l.reason.contains("outside the allowed root")),
        "{letters:?}"
    );
    assert_eq!(
        catalog_rows(s(&base), &OpenOptions::default()).await,
        expected_rows(&items, &keys[6..])
    );

    // --since has nothing to compare in a URL list: refused up front.
    let out = common::ecops_with(
        &[
            "ingest",
            "--base",
            s(&tmp.path().join("cat-since")),
            "--urls",
            s(&list),
            "--since",
            "2024-01-01",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(!tmp.path().join("cat-since").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_a_glob_of_lists_resumes_after_kill_9() {
    let items = inputs().join("items");
    let keys = keys(300);
    let tmp = tempfile::tempdir().unwrap();
    let lists = tmp.path().join("lists");
    std::fs::create_dir_all(&lists).unwrap();
    for (n, part) in keys.chunks(100).enumerate() {
        let text: String = part
            .iter()
            .map(|k| format!("{}\n", s(&items.join(k))))
            .collect();
        std::fs::write(lists.join(format!("part-{n}.txt")), text).unwrap();
    }
    let pattern = lists.join("part-?.txt");
    let args = |base: &Path| -> Vec<String> {
        [
            "ingest",
            "--json",
            "--base",
            s(base),
            "--urls",
            s(&pattern),
            "--chunk-size",
            "25",
        ]
        .map(String::from)
        .to_vec()
    };
    let base = tmp.path().join("killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecops"))
        .args(args(&base))
        .env_remove("ECOPS_BASE")
        .env("ECOPS_FAULT_PAUSE_BEFORE_COMMIT_MS", "400")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Past the first list file: the position runs across files.
    let deadline = Instant::now() + Duration::from_secs(120);
    while commits(&base) < 6 {
        assert!(Instant::now() < deadline, "no progress");
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The same command again (the helper adds `ingest --json`).
    let again: Vec<String> = args(&base).into_iter().skip(2).collect();
    let (code, summary) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = again.iter().map(String::as_str).collect();
        ingest(&refs, &[])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{summary}");
    assert!(
        summary["resumed_from"].as_u64().unwrap() >= 150,
        "{summary}"
    );
    assert_eq!(summary["complete"], true);
    let rows = catalog_rows(s(&base), &OpenOptions::default()).await;
    assert_eq!(rows, expected_rows(&items, &keys), "resumed rows differ");
    assert!(rows.values().all(|n| *n == 1), "a row was committed twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_lists_by_glob_mixing_s3_http_and_paths() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    use object_store::ObjectStoreExt;
    let items = inputs().join("items");
    let keys = keys(90);
    let server = serve_items().await;
    let prefix = s3_base("url-lists");
    let s3 = ecops::store::S3Options {
        endpoint: Some(endpoint.clone()),
        anonymous: false,
    };
    let store =
        ecops::store::open_location(&ecops::store::Location::parse(&prefix).unwrap(), &s3).unwrap();
    for key in &keys {
        let body = std::fs::read(items.join(key)).unwrap();
        store
            .object_store()
            .put(&store.key(&format!("items/{key}")), body.into())
            .await
            .unwrap();
    }
    // s3:// URLs, paths relative to the list (on S3), http:// and local paths.
    let entry = |i: usize, key: &str| match i % 4 {
        0 => format!("{prefix}/items/{key}"),
        1 => format!("items/{key}"),
        2 => format!("{}/{key}", server.url()),
        _ => s(&items.join(key)).to_string(),
    };
    let ndjson = |range: std::ops::Range<usize>| -> String {
        range
            .map(|i| serde_json::json!({"href": entry(i, &keys[i])}).to_string() + "\n")
            .collect()
    };
    // Two lists the glob takes; a third it leaves (its items are not expected).
    for (name, range) in [
        ("2020_01.ndjson", 0..40),
        ("2020_02.ndjson", 40..60),
        ("2021_01.ndjson", 60..90),
    ] {
        store
            .object_store()
            .put(&store.key(name), ndjson(range).into_bytes().into())
            .await
            .unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("cat");
    let pattern = format!("{prefix}/2020_*.ndjson");
    let (code, summary) = tokio::task::spawn_blocking({
        let (base, e) = (base.clone(), endpoint.clone());
        move || {
            ingest(
                &[
                    "--base",
                    s(&base),
                    "--urls",
                    &pattern,
                    "--url-column",
                    "href",
                    "--chunk-size",
                    "16",
                ],
                &[("AWS_ENDPOINT_URL", &e)],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["items"], 60, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let rows: BTreeMap<_, _> = catalog_rows(s(&base), &OpenOptions::default()).await;
    assert_eq!(rows, expected_rows(&items, &keys[..60]));
}

/// A backfill plans URL lists like an inventory: the same rows, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_of_a_url_list_registers_each_item_once() {
    let items = inputs().join("items");
    let keys = keys(200);
    let server = serve_items().await;
    let tmp = tempfile::tempdir().unwrap();
    let list = tmp.path().join("urls.csv");
    let csv: String = std::iter::once("url\n".to_string())
        .chain(keys.iter().enumerate().map(|(i, k)| {
            if i % 2 == 0 {
                format!("{}/{k}\n", server.url())
            } else {
                format!("{}\n", s(&items.join(k)))
            }
        }))
        .collect();
    std::fs::write(&list, csv).unwrap();
    let base = tmp.path().join("cat");
    let made = common::ecops_with(&["init", "--base", s(&base)], &[]);
    assert!(made.status.success());
    let workdir: PathBuf = tmp.path().join("wd");
    let args: Vec<String> = [
        "backfill",
        "submit",
        "--base",
        s(&base),
        "--urls",
        s(&list),
        "--tasks",
        "2",
        "--chunk-size",
        "60",
        "--engine",
        "local",
        "--workdir",
        s(&workdir),
        "--wait",
        "--json",
    ]
    .map(String::from)
    .to_vec();
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        common::ecops_with(&refs, &[])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = catalog_rows(s(&base), &OpenOptions::default()).await;
    assert!(rows.values().all(|n| *n == 1), "a row registered twice");
    assert_eq!(rows, expected_rows(&items, &keys));
}
