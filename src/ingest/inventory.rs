//! Inventory readers: AWS S3 Inventory CSV (no header), CSV with a header,
//! gzip CSV, Parquet, and S3 Inventory `manifest.json` listing CSV or
//! Parquet parts — from local paths or s3:// URLs.
//!
//! Reading runs on one blocking thread that sends batches of rows through a
//! bounded channel, so memory is bounded by the batch size and channel depth,
//! never by the inventory's size. Every data row has a global *position*
//! (0-based, across all parts of a manifest, counting filtered rows too): a
//! job's checkpoint is the position after the last row it committed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::{ObjectStore, ObjectStoreExt, path::Path as ObjectPath};
use serde::Deserialize;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::stac::item::parse_datetime;
use crate::store::{Location, S3Options, Store, open_location, redact_url};

/// Rows per batch sent to the pipeline.
const BATCH_ROWS: usize = 1024;
/// Batches buffered between the reader thread and the pipeline.
const CHANNEL_BATCHES: usize = 8;
/// Parquet rows decoded at a time.
const PARQUET_BATCH_ROWS: usize = 8192;
/// Longest CSV line read (S3 keys are at most 1 KiB): a longer one (a
/// decompression bomb of one giant line) stops the read before the CSV
/// reader buffers it whole.
pub const MAX_CSV_LINE_BYTES: usize = 1024 * 1024;

/// A fatal inventory problem: the reader stops here; rows before it were delivered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("inventory {source_name}{}: {message}", at.map(|l| format!(" line/row {l}")).unwrap_or_default())]
pub struct InventoryError {
    /// The file (or manifest part) being read, credentials redacted.
    pub source_name: String,
    /// 1-based line (CSV) or row (Parquet) number in that file, when known.
    pub at: Option<u64>,
    pub message: String,
}

impl InventoryError {
    pub(super) fn new(source_name: &str, at: Option<u64>, message: impl Into<String>) -> Self {
        Self {
            source_name: redact_url(source_name),
            at,
            message: message.into(),
        }
    }
}

/// One data row of the inventory (or of a URL list).
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryRow {
    pub position: u64,
    /// The bucket (empty for a URL list's rows).
    pub bucket: String,
    /// The object key; for a URL list's row, the URL or path as listed
    /// (a relative path resolved against the list's folder).
    pub key: String,
    pub size: Option<u64>,
    pub last_modified: Option<DateTime<Utc>>,
    /// The key is a whole URL or path (a URL list's row): fetched as is,
    /// never below a bucket or `--items-root` (which then only bounds it).
    pub is_url: bool,
}

/// What the reader delivers, in inventory order.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A row that passed the filters: an item to fetch.
    Item(InventoryRow),
    /// A row that could not be read (dead-lettered by the pipeline).
    BadRow {
        position: u64,
        source_name: String,
        at: u64,
        reason: String,
    },
}

impl Entry {
    pub fn position(&self) -> u64 {
        match self {
            Entry::Item(r) => r.position,
            Entry::BadRow { position, .. } => *position,
        }
    }
}

/// Which rows become items.
#[derive(Debug, Clone)]
pub struct Filter {
    /// Only keys ending with this are items (default `.stac.json`; empty = all).
    pub suffix: String,
    /// Keep rows with last_modified_date ≥ since (rows without one pass).
    pub since: Option<DateTime<Utc>>,
    /// Stop after this many items (counted over the whole job, resumes included).
    pub limit: Option<u64>,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            suffix: ".stac.json".into(),
            since: None,
            limit: None,
        }
    }
}

/// Counters the reader keeps while it reads (shared with the pipeline).
#[derive(Debug, Default)]
pub struct ReadCounters {
    /// Data rows read in this run (including skipped ones and those before the start).
    pub rows_read: AtomicU64,
    /// Rows whose key lacks the suffix.
    pub skipped_suffix: AtomicU64,
    /// Rows older than `since`.
    pub skipped_since: AtomicU64,
    /// Rows that passed `since` only because they have no date.
    pub since_unknown: AtomicU64,
    /// Bytes of inventory read so far, and the total when known (for ETA).
    pub bytes_read: AtomicU64,
    pub bytes_total: AtomicU64,
}

/// Parses `--since`: a date (midnight UTC) or an RFC 3339 datetime.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    let t = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d
            .and_hms_opt(0, 0, 0)
            .map(|n| n.and_utc())
            .ok_or_else(|| format!("invalid date '{t}'"));
    }
    parse_datetime(t).ok_or_else(|| {
        format!(
            "'{t}' is neither a date (2026-01-02) nor an RFC 3339 datetime (2026-01-02T10:00:00Z)"
        )
    })
}

/// An open inventory: batches of entries in order, then `Err` if reading failed.
pub struct Inventory {
    rx: mpsc::Receiver<Result<Vec<Entry>, InventoryError>>,
    pub counters: Arc<ReadCounters>,
    /// The inventory's location, as given (redacted).
    pub name: String,
}

impl Inventory {
    /// The next batch; `None` at the end.
    pub async fn next_batch(&mut self) -> Option<Result<Vec<Entry>, InventoryError>> {
        self.rx.recv().await
    }
}

/// Where the reader starts (a resumed job skips what it committed).
#[derive(Debug, Clone, Copy, Default)]
pub struct Start {
    /// First position to deliver.
    pub position: u64,
    /// Items already listed before `position` (for `--limit`).
    pub listed: u64,
}

/// Opens the inventory at `uri` (local path, file:// or s3://) and starts
/// reading it on a blocking thread.
pub async fn open(
    uri: &str,
    s3: &S3Options,
    filter: Filter,
    start: Start,
) -> Result<Inventory, InventoryError> {
    let parts = resolve_parts(uri, s3).await?;
    Ok(start_reading(uri, parts, filter, start))
}

/// Reads `parts` in order on a blocking thread, positions counted across
/// them (shared by inventories and URL lists).
pub(super) fn start_reading(
    uri: &str,
    parts: Vec<Part>,
    filter: Filter,
    start: Start,
) -> Inventory {
    let counters = Arc::new(ReadCounters::default());
    let total: u64 = parts.iter().filter_map(|p| p.size).sum();
    counters.bytes_total.store(total, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
    let handle = Handle::current();
    let shared = counters.clone();
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            tx,
            batch: Vec::with_capacity(BATCH_ROWS),
            filter,
            start,
            position: 0,
            listed: start.listed,
            counters: shared,
        };
        let result = parts
            .iter()
            .try_for_each(|part| read_part(&handle, part, &mut sink));
        match result {
            Ok(()) | Err(Stop::Done) => {
                let _ = sink.flush();
            }
            Err(Stop::Fatal(e)) => {
                if sink.flush().is_ok() {
                    let _ = sink.tx.blocking_send(Err(e));
                }
            }
            Err(Stop::Closed) => {}
        }
    });
    Inventory {
        rx,
        counters,
        name: redact_url(uri),
    }
}

/// One file to read: a whole inventory, one part of a manifest, or one URL list.
#[derive(Debug, Clone)]
pub(super) struct Part {
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) key: ObjectPath,
    /// Its location (as given, or as a manifest or glob resolved it).
    pub(super) name: String,
    pub(super) size: Option<u64>,
    pub(super) format: Format,
    /// Column order for header-less CSV (from the manifest's fileSchema).
    pub(super) columns: Option<Vec<Column>>,
    /// AWS writes keys URL-encoded in CSV inventories.
    pub(super) decode_keys: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Format {
    Csv,
    Parquet,
    /// A URL list: item URLs or paths in a column (or one a line).
    Urls(super::url_list::ListFormat),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Column {
    Bucket,
    Key,
    Size,
    LastModified,
    Other,
}

/// Column names compared case-insensitively, ignoring `_`, `-` and spaces, so
/// `last_modified_date`, `LastModifiedDate` and `Last Modified Date` agree.
fn column_of(name: &str) -> Column {
    let norm: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    match norm.as_str() {
        "bucket" => Column::Bucket,
        "key" => Column::Key,
        "size" => Column::Size,
        "lastmodifieddate" | "lastmodified" => Column::LastModified,
        _ => Column::Other,
    }
}

/// AWS S3 Inventory's default CSV columns.
const AWS_COLUMNS: [Column; 4] = [
    Column::Bucket,
    Column::Key,
    Column::Size,
    Column::LastModified,
];

pub(super) fn open_store(uri: &str, s3: &S3Options) -> Result<(Store, ObjectPath), InventoryError> {
    let location =
        Location::parse(uri).map_err(|e| InventoryError::new(uri, None, e.to_string()))?;
    let store =
        open_location(&location, s3).map_err(|e| InventoryError::new(uri, None, e.to_string()))?;
    let key = store.key("");
    Ok((store, key))
}

async fn resolve_parts(uri: &str, s3: &S3Options) -> Result<Vec<Part>, InventoryError> {
    let (store, key) = open_store(uri, s3)?;
    let lower = uri.to_ascii_lowercase();
    let head = store
        .object_store()
        .head(&key)
        .await
        .map_err(|e| InventoryError::new(uri, None, format!("cannot open: {e}")))?;
    if lower.ends_with(".json") {
        return manifest_parts(uri, &store, &key, s3).await;
    }
    let format = if lower.ends_with(".parquet") || lower.ends_with(".parq") {
        Format::Parquet
    } else {
        Format::Csv
    };
    Ok(vec![Part {
        store: store.object_store(),
        key,
        name: uri.to_string(),
        size: Some(head.size),
        format,
        columns: None,
        decode_keys: false,
    }])
}

/// The parts of an S3 Inventory manifest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    destination_bucket: Option<String>,
    file_format: String,
    #[serde(default)]
    file_schema: Option<String>,
    files: Vec<ManifestFile>,
}

#[derive(Debug, Deserialize)]
struct ManifestFile {
    key: String,
    #[serde(default)]
    size: Option<u64>,
}

/// Reads `manifest.json` and locates its data files. On S3 a part key is
/// absolute in the destination bucket (AWS's layout). For a local manifest
/// (a mirror) the part is looked up below the manifest's folder and then each
/// ancestor folder the key's path leads back through, so both "relative to
/// the manifest" and "mirror of the destination bucket" layouts work.
async fn manifest_parts(
    uri: &str,
    store: &Store,
    key: &ObjectPath,
    s3: &S3Options,
) -> Result<Vec<Part>, InventoryError> {
    let bytes = store
        .object_store()
        .get(key)
        .await
        .map_err(|e| InventoryError::new(uri, None, format!("cannot read manifest: {e}")))?
        .bytes()
        .await
        .map_err(|e| InventoryError::new(uri, None, format!("cannot read manifest: {e}")))?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        InventoryError::new(uri, None, format!("not an S3 Inventory manifest: {e}"))
    })?;
    let format = match manifest.file_format.to_ascii_lowercase().as_str() {
        "csv" => Format::Csv,
        "parquet" => Format::Parquet,
        other => {
            return Err(InventoryError::new(
                uri,
                None,
                format!("fileFormat '{other}' is not supported (CSV or Parquet)"),
            ));
        }
    };
    let columns = manifest.file_schema.as_deref().map(|s| {
        s.split(',')
            .map(|c| column_of(c.trim()))
            .collect::<Vec<_>>()
    });
    if let Some(cols) = &columns
        && !(cols.contains(&Column::Key) && cols.contains(&Column::Bucket))
    {
        return Err(InventoryError::new(
            uri,
            None,
            "fileSchema lacks Bucket or Key",
        ));
    }
    let mut parts = Vec::with_capacity(manifest.files.len());
    for file in &manifest.files {
        if file.key.split('/').any(|s| s == "..") {
            return Err(InventoryError::new(
                uri,
                None,
                format!("manifest part key '{}' contains '..'", file.key),
            ));
        }
        let part_uri = match store.location() {
            Location::S3 { bucket, .. } => {
                let dest = manifest
                    .destination_bucket
                    .as_deref()
                    .map(|d| d.trim_start_matches("arn:aws:s3:::").to_string())
                    .unwrap_or_else(|| bucket.clone());
                format!("s3://{dest}/{}", file.key.trim_start_matches('/'))
            }
            Location::Local(path) => local_part(path, &file.key).ok_or_else(|| {
                InventoryError::new(
                    uri,
                    None,
                    format!(
                        "manifest part '{}' not found below the manifest's folder or its ancestors",
                        file.key
                    ),
                )
            })?,
        };
        let (part_store, part_key) = open_store(&part_uri, s3)?;
        parts.push(Part {
            store: part_store.object_store(),
            key: part_key,
            name: part_uri,
            size: file.size,
            format: format.clone(),
            columns: columns.clone(),
            decode_keys: format == Format::Csv,
        });
    }
    Ok(parts)
}

/// An ancestor `A` above the manifest's own folder is a mirror root only if
/// the manifest lies below `A/<first segment of the key>` (the destination
/// bucket's layout): a key like `etc/passwd` never reaches `/etc/passwd`.
/// Keys with `.` or `..` segments (or backslashes) are never followed.
fn local_part(manifest: &std::path::Path, key: &str) -> Option<String> {
    let key = key.trim_start_matches('/');
    if key.contains('\\') || key.split('/').any(|s| s == ".." || s == ".") {
        return None;
    }
    let first = key.split('/').next().filter(|s| !s.is_empty())?;
    let dir = manifest.parent()?;
    std::iter::once(dir)
        .chain(
            dir.ancestors()
                .skip(1)
                .filter(|a| dir.starts_with(a.join(first))),
        )
        .map(|d| d.join(key))
        .find(|p| p.is_file())
        .map(|p| p.to_string_lossy().into_owned())
}

/// Why reading stopped early.
pub(super) enum Stop {
    /// `--limit` reached.
    Done,
    /// The pipeline went away.
    Closed,
    Fatal(InventoryError),
}

/// Applies the filters and batches entries for the channel.
pub(super) struct Sink {
    tx: mpsc::Sender<Result<Vec<Entry>, InventoryError>>,
    batch: Vec<Entry>,
    filter: Filter,
    start: Start,
    position: u64,
    listed: u64,
    pub(super) counters: Arc<ReadCounters>,
}

/// A row as read, before filtering.
pub(super) struct RawRow {
    bucket: Option<String>,
    key: Option<String>,
    size: Option<u64>,
    last_modified: Result<Option<DateTime<Utc>>, String>,
    is_url: bool,
}

impl RawRow {
    /// A URL list's row: the item's URL or path, already resolved.
    pub(super) fn url(url: String) -> Self {
        Self {
            bucket: Some(String::new()),
            key: Some(url),
            size: None,
            last_modified: Ok(None),
            is_url: true,
        }
    }
}

impl Sink {
    fn flush(&mut self) -> Result<(), Stop> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_ROWS));
        self.tx.blocking_send(Ok(batch)).map_err(|_| Stop::Closed)
    }

    fn push_entry(&mut self, entry: Entry) -> Result<(), Stop> {
        self.batch.push(entry);
        if self.batch.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Takes the next data row (or a row-level read error).
    pub(super) fn row(
        &mut self,
        source: &str,
        at: u64,
        row: Result<RawRow, String>,
    ) -> Result<(), Stop> {
        let position = self.position;
        self.position += 1;
        self.counters.rows_read.fetch_add(1, Ordering::Relaxed);
        if position < self.start.position {
            return Ok(());
        }
        if self.filter.limit.is_some_and(|l| self.listed >= l) {
            return Err(Stop::Done);
        }
        let bad = |reason: String| Entry::BadRow {
            position,
            source_name: redact_url(source),
            at,
            reason,
        };
        let row = match row {
            Ok(r) => r,
            Err(reason) => return self.push_entry(bad(reason)),
        };
        let (Some(bucket), Some(key)) = (row.bucket, row.key) else {
            return self.push_entry(bad("row has no bucket or key".into()));
        };
        if !key.ends_with(&self.filter.suffix) {
            self.counters.skipped_suffix.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let last_modified = match row.last_modified {
            Ok(d) => d,
            Err(reason) => return self.push_entry(bad(reason)),
        };
        if let Some(since) = self.filter.since {
            match last_modified {
                Some(d) if d < since => {
                    self.counters.skipped_since.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Some(_) => {}
                None => {
                    self.counters.since_unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.listed += 1;
        self.push_entry(Entry::Item(InventoryRow {
            position,
            bucket,
            key,
            size: row.size,
            last_modified,
            is_url: row.is_url,
        }))
    }
}

fn read_part(handle: &Handle, part: &Part, sink: &mut Sink) -> Result<(), Stop> {
    match &part.format {
        Format::Csv => read_csv(handle, part, sink),
        Format::Parquet => read_parquet(handle, part, sink),
        Format::Urls(list) => super::url_list::read_list(handle, part, list, sink),
    }
}

/// A blocking `Read` over an object's byte stream (driven on the runtime).
struct StreamReader {
    handle: Handle,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
    counters: Arc<ReadCounters>,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                Some(Ok(b)) => {
                    self.counters
                        .bytes_read
                        .fetch_add(b.len() as u64, Ordering::Relaxed);
                    self.current = b;
                }
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

pub(super) fn open_reader(
    handle: &Handle,
    part: &Part,
    counters: &Arc<ReadCounters>,
) -> Result<Box<dyn Read>, Stop> {
    let got = handle.block_on(part.store.get(&part.key)).map_err(|e| {
        Stop::Fatal(InventoryError::new(
            &part.name,
            None,
            format!("cannot read: {e}"),
        ))
    })?;
    let raw = BufReader::with_capacity(
        256 * 1024,
        StreamReader {
            handle: handle.clone(),
            stream: got.into_stream(),
            current: Bytes::new(),
            counters: counters.clone(),
        },
    );
    gunzip_if_needed(raw).map_err(|e| {
        Stop::Fatal(InventoryError::new(
            &part.name,
            None,
            format!("cannot read: {e}"),
        ))
    })
}

/// Gzip is recognised by its magic bytes, whatever the file is called.
fn gunzip_if_needed<R: BufRead + 'static>(mut reader: R) -> std::io::Result<Box<dyn Read>> {
    let magic = reader.fill_buf()?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Fails a read once a line (bytes since the last newline) exceeds `max`.
pub(super) struct LineLimit<R> {
    inner: R,
    max: usize,
    /// Bytes since the last newline.
    run: usize,
}

impl<R> LineLimit<R> {
    pub(super) fn new(inner: R, max: usize) -> Self {
        Self { inner, max, run: 0 }
    }
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let got = &buf[..n];
        // Lines wholly inside `got` are shorter than the CSV reader's buffer.
        let first = got.iter().position(|b| *b == b'\n');
        let too_long = match first {
            Some(f) => self.run.saturating_add(f) > self.max,
            None => false,
        };
        self.run = match got.iter().rposition(|b| *b == b'\n') {
            Some(i) => n - i - 1,
            None => self.run.saturating_add(n),
        };
        if too_long || self.run > self.max {
            return Err(std::io::Error::other(format!(
                "a line longer than {} bytes: not an inventory",
                self.max
            )));
        }
        Ok(n)
    }
}

fn read_csv(handle: &Handle, part: &Part, sink: &mut Sink) -> Result<(), Stop> {
    let reader = LineLimit {
        inner: open_reader(handle, part, &sink.counters)?,
        max: MAX_CSV_LINE_BYTES,
        run: 0,
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(256 * 1024)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut columns: Option<Vec<Column>> = part.columns.clone();
    let mut decode = part.decode_keys;
    let mut first = true;
    loop {
        let line = csv.position().line();
        match csv.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                let at = e.position().map(|p| p.line()).unwrap_or(line);
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(Stop::Fatal(InventoryError::new(
                        &part.name,
                        Some(at),
                        format!("unreadable (truncated or corrupt?): {e}"),
                    )));
                }
                sink.row(&part.name, at, Err(format!("unreadable CSV row: {e}")))?;
                continue;
            }
        }
        let at = record.position().map(|p| p.line()).unwrap_or(line);
        if first {
            first = false;
            if columns.is_none() {
                // A header names a key column; AWS inventories have none.
                let named: Vec<Column> = record
                    .iter()
                    .map(|f| column_of(&String::from_utf8_lossy(f)))
                    .collect();
                if named.contains(&Column::Key) {
                    if !named.contains(&Column::Bucket) {
                        return Err(Stop::Fatal(InventoryError::new(
                            &part.name,
                            Some(at),
                            "header has a key column but no bucket column",
                        )));
                    }
                    columns = Some(named);
                    continue;
                }
                columns = Some(AWS_COLUMNS.to_vec());
                decode = true;
            }
        }
        let cols = columns.as_deref().unwrap_or(&AWS_COLUMNS);
        let row = csv_row(&record, cols, decode);
        sink.row(&part.name, at, row)?;
    }
}

fn csv_row(record: &csv::ByteRecord, cols: &[Column], decode_keys: bool) -> Result<RawRow, String> {
    let mut row = RawRow {
        bucket: None,
        key: None,
        size: None,
        last_modified: Ok(None),
        is_url: false,
    };
    if record.len() < 2 {
        return Err(format!(
            "row has {} field(s); expected bucket and key",
            record.len()
        ));
    }
    for (col, field) in cols.iter().zip(record.iter()) {
        let text = std::str::from_utf8(field).map_err(|_| "row is not UTF-8".to_string())?;
        match col {
            Column::Bucket => row.bucket = Some(text.to_string()).filter(|s| !s.is_empty()),
            Column::Key if decode_keys && text.contains('%') => {
                row.key = Some(
                    percent_encoding::percent_decode_str(text)
                        .decode_utf8()
                        .map_err(|_| format!("key '{text}' is not valid URL-encoded UTF-8"))?
                        .into_owned(),
                )
            }
            Column::Key => row.key = Some(text.to_string()).filter(|s| !s.is_empty()),
            Column::Size => row.size = text.parse().ok(),
            Column::LastModified if text.is_empty() => {}
            Column::LastModified => {
                row.last_modified = parse_datetime(text)
                    .map(Some)
                    .ok_or_else(|| format!("last_modified_date '{text}' is not a datetime"))
            }
            Column::Other => {}
        }
    }
    Ok(row)
}

fn read_parquet(handle: &Handle, part: &Part, sink: &mut Sink) -> Result<(), Stop> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::async_reader::{ParquetObjectReader, ParquetRecordBatchStreamBuilder};
    let fatal = |at: Option<u64>, m: String| Stop::Fatal(InventoryError::new(&part.name, at, m));
    let reader = ParquetObjectReader::new(part.store.clone(), part.key.clone());
    let builder = handle
        .block_on(ParquetRecordBatchStreamBuilder::new(reader))
        .map_err(|e| fatal(None, format!("not a readable Parquet file: {e}")))?;
    let schema = builder.schema().clone();
    let wanted: HashMap<Column, usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match column_of(f.name()) {
            Column::Other => None,
            c => Some((c, i)),
        })
        .collect();
    if !(wanted.contains_key(&Column::Bucket) && wanted.contains_key(&Column::Key)) {
        return Err(fatal(None, "has no bucket or key column".into()));
    }
    let mut indices: Vec<usize> = wanted.values().copied().collect();
    indices.sort_unstable();
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let num_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(PARQUET_BATCH_ROWS)
        .build()
        .map_err(|e| fatal(None, e.to_string()))?;
    // Parquet is read by row group: count bytes in proportion to rows read.
    let total_rows = num_rows.max(1);
    let mut row_no = 0u64;
    while let Some(batch) = handle.block_on(stream.next()) {
        let batch = batch.map_err(|e| fatal(Some(row_no + 1), format!("unreadable: {e}")))?;
        let rows = parquet_rows(&batch).map_err(|e| fatal(Some(row_no + 1), e))?;
        let n = rows.len() as u64;
        for row in rows {
            row_no += 1;
            sink.row(&part.name, row_no, row)?;
        }
        if let Some(size) = part.size {
            let share = (size as u128 * n as u128 / total_rows as u128) as u64;
            sink.counters.bytes_read.fetch_add(share, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Converts a projected batch to rows; `last_modified_date` may be a string or a timestamp.
fn parquet_rows(batch: &RecordBatch) -> Result<Vec<Result<RawRow, String>>, String> {
    let find = |c: Column| {
        batch
            .schema()
            .fields()
            .iter()
            .position(|f| column_of(f.name()) == c)
            .map(|i| batch.column(i).clone())
    };
    let utf8 = |c: Column| -> Result<Option<arrow_array::ArrayRef>, String> {
        find(c)
            .map(|a| {
                arrow_cast::cast(&a, &DataType::Utf8).map_err(|e| format!("{c:?} column: {e}"))
            })
            .transpose()
    };
    let bucket = utf8(Column::Bucket)?;
    let key = utf8(Column::Key)?;
    let size = find(Column::Size)
        .map(|a| arrow_cast::cast(&a, &DataType::Int64).map_err(|e| format!("size column: {e}")))
        .transpose()?;
    let modified = match find(Column::LastModified) {
        Some(a)
            if matches!(
                a.data_type(),
                DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
            ) =>
        {
            let micros = arrow_cast::cast(
                &a,
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            )
            .map_err(|e| format!("last_modified_date column: {e}"))?;
            Some(Modified::Micros(micros))
        }
        Some(a) => Some(Modified::Text(
            arrow_cast::cast(&a, &DataType::Utf8)
                .map_err(|e| format!("last_modified_date column: {e}"))?,
        )),
        None => None,
    };
    let bucket = bucket.as_ref().map(|a| a.as_string::<i32>());
    let key = key.as_ref().map(|a| a.as_string::<i32>());
    let size = size
        .as_ref()
        .map(|a| a.as_primitive::<arrow_array::types::Int64Type>());
    let text = |a: Option<&arrow_array::StringArray>, i: usize| {
        a.filter(|a| a.is_valid(i))
            .map(|a| a.value(i).to_string())
            .filter(|s| !s.is_empty())
    };
    Ok((0..batch.num_rows())
        .map(|i| {
            let last_modified = match &modified {
                None => Ok(None),
                Some(Modified::Micros(a)) => {
                    let a = a.as_primitive::<arrow_array::types::TimestampMicrosecondType>();
                    Ok(a.is_valid(i)
                        .then(|| DateTime::from_timestamp_micros(a.value(i)))
                        .flatten())
                }
                Some(Modified::Text(a)) => {
                    let a = a.as_string::<i32>();
                    if a.is_null(i) || a.value(i).is_empty() {
                        Ok(None)
                    } else {
                        parse_datetime(a.value(i)).map(Some).ok_or_else(|| {
                            format!("last_modified_date '{}' is not a datetime", a.value(i))
                        })
                    }
                }
            };
            Ok(RawRow {
                bucket: text(bucket, i),
                key: text(key, i),
                size: size
                    .filter(|a| a.is_valid(i))
                    .map(|a| a.value(i).max(0) as u64),
                last_modified,
                is_url: false,
            })
        })
        .collect())
}

enum Modified {
    Micros(arrow_array::ArrayRef),
    Text(arrow_array::ArrayRef),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_are_matched_loosely() {
        assert_eq!(column_of("LastModifiedDate"), Column::LastModified);
        assert_eq!(column_of("last_modified_date"), Column::LastModified);
        assert_eq!(column_of(" Key"), Column::Key);
        assert_eq!(column_of("BUCKET"), Column::Bucket);
        assert_eq!(column_of("e_tag"), Column::Other);
    }

    #[test]
    fn since_takes_dates_and_datetimes() {
        assert_eq!(
            parse_since("2026-01-02").unwrap().to_rfc3339(),
            "2026-01-02T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-01-02T10:30:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-01-02T08:30:00+00:00"
        );
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn aws_rows_decode_url_encoded_keys() {
        let rec = csv::ByteRecord::from(vec![
            "b",
            "a%20b/c.stac.json",
            "12",
            "2024-01-01T00:00:00.000Z",
        ]);
        let row = csv_row(&rec, &AWS_COLUMNS, true).unwrap();
        assert_eq!(row.key.as_deref(), Some("a b/c.stac.json"));
        assert_eq!(row.size, Some(12));
        assert!(row.last_modified.unwrap().is_some());
        let plain = csv_row(&rec, &AWS_COLUMNS, false).unwrap();
        assert_eq!(plain.key.as_deref(), Some("a%20b/c.stac.json"));
    }

    #[test]
    fn manifest_parts_stay_below_the_mirror() {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path();
        let dated = mirror.join("inv/src-bucket/config/2026-01-01T00-00Z");
        std::fs::create_dir_all(&dated).unwrap();
        std::fs::create_dir_all(mirror.join("inv/src-bucket/config/data")).unwrap();
        std::fs::create_dir_all(dated.join("data")).unwrap();
        std::fs::write(mirror.join("inv/src-bucket/config/data/p.csv.gz"), b"x").unwrap();
        std::fs::write(dated.join("data/q.csv"), b"x").unwrap();
        std::fs::write(mirror.join("secret.csv"), b"x").unwrap();
        let manifest = dated.join("manifest.json");
        // The destination-bucket layout and the manifest-relative layout.
        assert!(local_part(&manifest, "inv/src-bucket/config/data/p.csv.gz").is_some());
        assert!(local_part(&manifest, "/inv/src-bucket/config/data/p.csv.gz").is_some());
        assert!(local_part(&manifest, "data/q.csv").is_some());
        // Nothing the key does not lead to through the manifest's own path.
        assert!(local_part(&manifest, "secret.csv").is_none());
        assert!(local_part(&manifest, "etc/passwd").is_none());
        assert!(local_part(&manifest, "/etc/passwd").is_none());
        // Traversal out of the manifest's folder, even to a file that exists.
        assert!(local_part(&manifest, "../../../../secret.csv").is_none());
        assert!(local_part(&manifest, "data/../data/q.csv").is_none());
        assert!(local_part(&manifest, "./data/q.csv").is_none());
    }

    #[test]
    fn overlong_lines_stop_the_read() {
        let read_all = |text: Vec<u8>, max| {
            let mut out = Vec::new();
            LineLimit {
                inner: BufReader::with_capacity(7, &text[..]),
                max,
                run: 0,
            }
            .read_to_end(&mut out)
            .map_err(|e| e.to_string())
        };
        assert_eq!(read_all(b"ab\ncd\nef".to_vec(), 3), Ok(8));
        let err = read_all(b"ab\n".iter().chain(&[b'x'; 40]).copied().collect(), 16).unwrap_err();
        assert!(err.contains("longer than 16 bytes"), "{err}");
        // A long line ending just after a read boundary is caught too.
        let mut text = vec![b'y'; 20];
        text.extend_from_slice(b"\nok\n");
        assert!(read_all(text, 16).is_err());
    }

    #[test]
    fn short_rows_and_bad_dates_are_row_errors() {
        let short = csv::ByteRecord::from(vec!["only-bucket"]);
        assert!(csv_row(&short, &AWS_COLUMNS, true).is_err());
        let bad = csv::ByteRecord::from(vec!["b", "k.stac.json", "1", "not a date"]);
        assert!(
            csv_row(&bad, &AWS_COLUMNS, true)
                .unwrap()
                .last_modified
                .is_err()
        );
    }
}
