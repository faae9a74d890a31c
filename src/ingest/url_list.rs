//! URL lists (the reference's first pipeline): item URLs or paths, one a
//! line in a text file, or in a column (`url` by default) of CSV, TSV,
//! Parquet or NDJSON files — given as a path, an s3:// URL, or a glob over
//! either (`s3://bucket/lists/2020_*.ndjson`). Matched files are read in
//! name order with positions counted across them, through the inventory
//! reader's filters, batches and checkpoints ([`super::inventory`]), so a
//! job over a URL list resumes exactly like one over an inventory.
//!
//! An entry may be an s3://, http(s):// or file:// URL or a path; a
//! relative path is resolved against the folder of the list naming it.
//! Whether an entry is fetched at all (its scheme, the `--items-root`
//! bounds) is the fetcher's decision, so a refused URL becomes a dead
//! letter with its reason rather than stopping the job.

use std::io::{BufRead, BufReader};
use std::sync::atomic::Ordering;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjectPath;
use tokio::runtime::Handle;

use super::inventory::{
    Filter, Format, Inventory, InventoryError, LineLimit, MAX_CSV_LINE_BYTES, Part, RawRow, Sink,
    Start, Stop, open_reader, open_store, start_reading,
};
use crate::store::S3Options;

/// The column holding the URLs unless `--url-column` names another.
pub const DEFAULT_URL_COLUMN: &str = "url";
/// Characters that make a list location a glob.
const WILDCARDS: &[char] = &['*', '?', '['];
/// Parquet rows decoded at a time.
const PARQUET_BATCH_ROWS: usize = 8192;

/// How one list file holds its URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFormat {
    kind: ListKind,
    /// The column (CSV, TSV, Parquet) or field (NDJSON) with the URLs.
    column: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListKind {
    /// One URL a line; blank lines and `#` comments skipped.
    Lines,
    Csv,
    Tsv,
    Parquet,
    Ndjson,
}

impl ListKind {
    /// By file name, looking through a `.gz` suffix (gzip itself is
    /// recognised by its bytes); anything unrecognised is one URL a line.
    fn of_name(name: &str) -> ListKind {
        let lower = name.to_ascii_lowercase();
        let name = lower.strip_suffix(".gz").unwrap_or(&lower);
        let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
        match ext {
            "csv" => ListKind::Csv,
            "tsv" | "tab" => ListKind::Tsv,
            "parquet" | "parq" => ListKind::Parquet,
            "ndjson" | "jsonl" => ListKind::Ndjson,
            _ => ListKind::Lines,
        }
    }
}

/// Opens the URL lists `pattern` names (a path, s3:// URL or a glob over
/// either; files in name order) and starts reading them on a blocking
/// thread. `column` names the URL column of CSV, TSV, Parquet and NDJSON lists.
pub async fn open(
    pattern: &str,
    column: &str,
    s3: &S3Options,
    filter: Filter,
    start: Start,
) -> Result<Inventory, InventoryError> {
    let files = list_files(pattern, s3).await?;
    let parts = files
        .into_iter()
        .map(|(name, size)| {
            let (store, key) = open_store(&name, s3)?;
            Ok(Part {
                store: store.object_store(),
                key,
                format: Format::Urls(ListFormat {
                    kind: ListKind::of_name(&name),
                    column: column.to_string(),
                }),
                name,
                size,
                columns: None,
                decode_keys: false,
            })
        })
        .collect::<Result<Vec<_>, InventoryError>>()?;
    Ok(start_reading(pattern, parts, filter, start))
}

/// The files `pattern` names, as absolute locations with their sizes,
/// sorted by name: the file itself, or every match of a glob whose
/// wildcards (`*`, `?`, `[…]`, never crossing `/`) lie after the bucket.
async fn list_files(
    pattern: &str,
    s3: &S3Options,
) -> Result<Vec<(String, Option<u64>)>, InventoryError> {
    let fail = |m: String| InventoryError::new(pattern, None, m);
    let Some(wild) = pattern.find(WILDCARDS) else {
        let (store, key) = open_store(pattern, s3)?;
        let head = store
            .object_store()
            .head(&key)
            .await
            .map_err(|e| fail(format!("cannot open: {e}")))?;
        return Ok(vec![(store.location().to_uri(), Some(head.size))]);
    };
    if let Some(bucket_and_key) = pattern.strip_prefix("s3://") {
        let bucket_end = "s3://".len() + bucket_and_key.find('/').unwrap_or(bucket_and_key.len());
        if wild < bucket_end {
            return Err(fail("wildcards in a bucket name are not supported".into()));
        }
    }
    let (dir, rest) = match pattern[..wild].rfind('/') {
        Some(i) => (&pattern[..i], &pattern[i + 1..]),
        None => (".", pattern),
    };
    let dir = if dir.is_empty() { "/" } else { dir };
    let (store, prefix) = open_store(dir, s3)?;
    let location = store.location().to_uri();
    let root = location.trim_end_matches('/');
    let segments: Vec<&str> = rest.split('/').collect();
    let mut found = Vec::new();
    let mut listing = store.object_store().list(Some(&prefix));
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| fail(format!("cannot list {root}: {e}")))?;
        let Some(relative) = relative_to(&prefix, &meta.location) else {
            continue;
        };
        let names: Vec<&str> = relative.split('/').collect();
        if names.len() == segments.len()
            && segments.iter().zip(&names).all(|(p, n)| glob_match(p, n))
        {
            found.push((format!("{root}/{relative}"), Some(meta.size)));
        }
    }
    if found.is_empty() {
        return Err(fail("no file matches".into()));
    }
    found.sort();
    Ok(found)
}

/// `path` below `prefix`, without the prefix and its `/`.
fn relative_to(prefix: &ObjectPath, path: &ObjectPath) -> Option<String> {
    let prefix = prefix.as_ref();
    let path = path.as_ref();
    if prefix.is_empty() {
        return Some(path.to_string());
    }
    path.strip_prefix(prefix)?
        .strip_prefix('/')
        .map(str::to_string)
}

/// Shell-style matching of one path segment: `*` any run, `?` one
/// character, `[abc]`, `[a-z]`, `[!x]` a class; anything else itself.
fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // The last `*` seen and the text position it is trying to absorb up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match class_match(&pattern[p..], text[t]) {
                Some((true, len)) => Some(len),
                Some((false, _)) => None,
                None => (text[t] == '[').then_some(1),
            },
            Some(c) => (*c == text[t]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                p += len;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// A `[…]` class at the start of `pattern`: whether `c` is in it and the
/// class's length; None when it never closes (then `[` is literal).
fn class_match(pattern: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pattern.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let first = i;
    while i < pattern.len() {
        if pattern[i] == ']' && i > first {
            return Some((hit != negate, i + 1));
        }
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|e| *e != ']') {
            hit |= pattern[i] <= c && c <= pattern[i + 2];
            i += 3;
        } else {
            hit |= pattern[i] == c;
            i += 1;
        }
    }
    None
}

/// The scheme of `url` (RFC 3986: a letter, then letters, digits, `+-.`,
/// before a `:`), if it has one.
pub fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next()?.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// An entry as the fetcher takes it: URLs and absolute paths as listed, a
/// relative path joined to the folder of the list (`list`, absolute) naming it.
fn resolve_listed(list: &str, entry: &str) -> String {
    if scheme_of(entry).is_some() || entry.starts_with('/') {
        return entry.to_string();
    }
    match list.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{entry}"),
        None => entry.to_string(),
    }
}

/// Reads one URL list into `sink`.
pub(super) fn read_list(
    handle: &Handle,
    part: &Part,
    list: &ListFormat,
    sink: &mut Sink,
) -> Result<(), Stop> {
    match list.kind {
        ListKind::Lines => read_lines(handle, part, sink, |line, n| {
            // A header line naming the column is not an entry.
            (!(n == 1 && line.eq_ignore_ascii_case(&list.column))).then(|| Ok(line.to_string()))
        }),
        ListKind::Ndjson => read_lines(handle, part, sink, |line, _| {
            Some(ndjson_url(line, &list.column))
        }),
        ListKind::Csv => read_delimited(handle, part, &list.column, b',', sink),
        ListKind::Tsv => read_delimited(handle, part, &list.column, b'\t', sink),
        ListKind::Parquet => read_parquet(handle, part, &list.column, sink),
    }
}

fn fatal(part: &Part, at: Option<u64>, message: impl Into<String>) -> Stop {
    Stop::Fatal(InventoryError::new(&part.name, at, message))
}

/// Hands `sink` one entry: a URL (resolved) or why the row has none.
fn deliver(
    part: &Part,
    sink: &mut Sink,
    at: u64,
    entry: Result<String, String>,
) -> Result<(), Stop> {
    let row = entry.and_then(|text| {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty URL".into());
        }
        Ok(RawRow::url(resolve_listed(&part.name, text)))
    });
    sink.row(&part.name, at, row)
}

/// Reads a file line by line; `entry_of` turns a trimmed, non-blank,
/// non-comment line (and its 1-based number) into an entry, or None to skip it.
fn read_lines(
    handle: &Handle,
    part: &Part,
    sink: &mut Sink,
    entry_of: impl Fn(&str, u64) -> Option<Result<String, String>>,
) -> Result<(), Stop> {
    let reader = BufReader::with_capacity(
        256 * 1024,
        LineLimit::new(
            open_reader(handle, part, &sink.counters)?,
            MAX_CSV_LINE_BYTES,
        ),
    );
    for (i, line) in reader.split(b'\n').enumerate() {
        let at = i as u64 + 1;
        let bytes = line.map_err(|e| fatal(part, Some(at), format!("unreadable: {e}")))?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            sink.row(&part.name, at, Err("line is not UTF-8".into()))?;
            continue;
        };
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if let Some(entry) = entry_of(text, at) {
            deliver(part, sink, at, entry)?;
        }
    }
    Ok(())
}

/// The URL in an NDJSON line's `column` field.
fn ndjson_url(line: &str, column: &str) -> Result<String, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not a JSON line: {e}"))?;
    match value.get(column) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("field '{column}' is not a string")),
        None => Err(format!("no '{column}' field")),
    }
}

/// The position of `column` among `names` (case-insensitive), or a fatal
/// error listing the columns there are.
fn find_column<'a>(
    part: &Part,
    names: impl Iterator<Item = &'a str> + Clone,
    column: &str,
) -> Result<usize, Stop> {
    names
        .clone()
        .position(|n| n.trim().eq_ignore_ascii_case(column))
        .ok_or_else(|| {
            let there: Vec<&str> = names.map(str::trim).collect();
            fatal(
                part,
                None,
                format!(
                    "no '{column}' column (columns: {}); name the URL column with --url-column",
                    there.join(", ")
                ),
            )
        })
}

fn read_delimited(
    handle: &Handle,
    part: &Part,
    column: &str,
    delimiter: u8,
    sink: &mut Sink,
) -> Result<(), Stop> {
    let reader = LineLimit::new(
        open_reader(handle, part, &sink.counters)?,
        MAX_CSV_LINE_BYTES,
    );
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(reader);
    let header = csv
        .headers()
        .map_err(|e| fatal(part, Some(1), format!("unreadable header: {e}")))?
        .clone();
    let index = find_column(part, header.iter(), column)?;
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line();
        match csv.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let at = record.position().map_or(line, |p| p.line());
                let entry = record
                    .get(index)
                    .map(str::to_string)
                    .ok_or_else(|| format!("row has no '{column}' field"));
                deliver(part, sink, at, entry)?;
            }
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => {
                return Err(fatal(
                    part,
                    Some(line),
                    format!("unreadable (truncated or corrupt?): {e}"),
                ));
            }
            Err(e) => {
                let at = e.position().map_or(line, |p| p.line());
                sink.row(&part.name, at, Err(format!("unreadable row: {e}")))?;
            }
        }
    }
}

fn read_parquet(handle: &Handle, part: &Part, column: &str, sink: &mut Sink) -> Result<(), Stop> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
    let reader = ParquetObjectReader::new(part.store.clone(), part.key.clone());
    let builder = handle
        .block_on(ParquetRecordBatchStreamBuilder::new(reader))
        .map_err(|e| fatal(part, None, format!("not a readable Parquet file: {e}")))?;
    let index = find_column(
        part,
        builder.schema().fields().iter().map(|f| f.name().as_str()),
        column,
    )?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    let total_rows = builder.metadata().file_metadata().num_rows().max(1) as u64;
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(PARQUET_BATCH_ROWS)
        .build()
        .map_err(|e| fatal(part, None, e.to_string()))?;
    let mut row_no = 0u64;
    while let Some(batch) = handle.block_on(stream.next()) {
        let batch = batch.map_err(|e| fatal(part, Some(row_no + 1), format!("unreadable: {e}")))?;
        let urls: ArrayRef = arrow_cast::cast(batch.column(0), &DataType::Utf8)
            .map_err(|e| fatal(part, Some(row_no + 1), format!("column '{column}': {e}")))?;
        let urls = urls.as_string::<i32>();
        for i in 0..urls.len() {
            row_no += 1;
            let entry = if urls.is_null(i) {
                Err(format!("'{column}' is null"))
            } else {
                Ok(urls.value(i).to_string())
            };
            deliver(part, sink, row_no, entry)?;
        }
        // Parquet is read by row group: count bytes in proportion to rows read.
        if let Some(size) = part.size {
            let share = (size as u128 * urls.len() as u128 / total_rows as u128) as u64;
            sink.counters.bytes_read.fetch_add(share, Ordering::Relaxed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_segments() {
        assert!(glob_match("2020_*.ndjson", "2020_01.ndjson"));
        assert!(glob_match("2020_*.ndjson", "2020_.ndjson"));
        assert!(!glob_match("2020_*.ndjson", "2021_01.ndjson"));
        assert!(!glob_match("2020_*.ndjson", "2020_01.ndjson.gz"));
        assert!(glob_match("part-?.csv", "part-7.csv"));
        assert!(!glob_match("part-?.csv", "part-17.csv"));
        assert!(glob_match("[ab]*", "b.txt"));
        assert!(!glob_match("[!ab]*", "b.txt"));
        assert!(glob_match("x[0-9][0-9]", "x42"));
        assert!(!glob_match("x[0-9]", "xa"));
        assert!(glob_match("a*b*c", "aXXbYYbZc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("[oops", "[oops"));
        assert!(glob_match("*", ""));
    }

    #[test]
    fn list_formats_follow_the_file_name() {
        assert_eq!(
            ListKind::of_name("s3://b/l/2020_1.ndjson"),
            ListKind::Ndjson
        );
        assert_eq!(ListKind::of_name("/l/u.jsonl.gz"), ListKind::Ndjson);
        assert_eq!(ListKind::of_name("/l/u.CSV"), ListKind::Csv);
        assert_eq!(ListKind::of_name("/l/u.tsv.gz"), ListKind::Tsv);
        assert_eq!(ListKind::of_name("/l/u.parquet"), ListKind::Parquet);
        assert_eq!(ListKind::of_name("/l/urls.txt"), ListKind::Lines);
        assert_eq!(ListKind::of_name("/l/urls"), ListKind::Lines);
    }

    #[test]
    fn relative_entries_resolve_against_their_list() {
        assert_eq!(
            resolve_listed("/data/lists/a.txt", "items/x.json"),
            "/data/lists/items/x.json"
        );
        assert_eq!(
            resolve_listed("s3://b/lists/a.txt", "items/x.json"),
            "s3://b/lists/items/x.json"
        );
        for kept in ["/abs/x.json", "https://h/x.json", "ftp://h/x", "s3://c/k"] {
            assert_eq!(resolve_listed("/data/lists/a.txt", kept), kept);
        }
        assert_eq!(scheme_of("HTTPS://h/x"), Some("HTTPS"));
        assert_eq!(scheme_of("items/x.json"), None);
        assert_eq!(scheme_of("/a:b"), None);
    }

    #[test]
    fn ndjson_lines_name_their_url() {
        assert_eq!(
            ndjson_url(r#"{"url":"s3://b/k"}"#, "url").unwrap(),
            "s3://b/k"
        );
        assert!(ndjson_url(r#"{"href":"s3://b/k"}"#, "url").is_err());
        assert!(ndjson_url(r#"{"url":3}"#, "url").is_err());
        assert!(ndjson_url("not json", "url").is_err());
    }
}
