//! Fetching item bodies: s3:// through object_store, http(s):// through
//! reqwest, local files directly. By default an inventory row `(bucket, key)`
//! is fetched from `s3://bucket/key`; `--items-root` fetches `<root>/<key>`
//! instead (a mirror: a local folder, an http(s) prefix or another s3 prefix).
//!
//! Keys come from an inventory, i.e. from outside: a key with `..`, `.` or
//! empty segments, a leading `/`, a backslash or a control character is
//! refused before it can name anything outside the root.
//!
//! A URL list's entries are whole URLs (s3://, http(s)://, file://) or
//! paths, fetched as they are; `--items-root` then bounds them instead: an
//! entry outside it, or of another scheme, is refused with the reason.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, path::Path as ObjectPath};

use super::inventory::InventoryRow;
use crate::stac::item::MAX_ITEM_BYTES;
use crate::store::{Location, S3Options, open_location, redact_url};

/// Why an item body could not be fetched (the dead-letter reason).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    #[error("unsafe key '{key}': {reason}")]
    UnsafeKey { key: String, reason: &'static str },
    #[error("{uri}: not found")]
    NotFound { uri: String },
    #[error("{uri}: HTTP {status}")]
    Client { uri: String, status: u16 },
    #[error("{uri}: gave up after {attempts} attempt(s): {last}")]
    Exhausted {
        uri: String,
        attempts: u32,
        last: String,
        /// The last failure said the source itself is unreachable (see [`outage_kind`]).
        outage: Option<&'static str>,
    },
    #[error("{uri}: body larger than {MAX_ITEM_BYTES} bytes")]
    TooLarge { uri: String },
    #[error("{uri}: {message}")]
    Other { uri: String, message: String },
    #[error("'{url}': unsupported scheme '{scheme}' (s3://, http(s)://, file:// or a path)")]
    UnsupportedScheme { url: String, scheme: String },
    #[error("'{url}' is outside the allowed root {root}")]
    OutsideRoot { url: String, root: String },
    #[error("'{url}': not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
}

/// A listed URL as error messages show it: credentials redacted, at most 200 characters.
fn shown(url: &str) -> String {
    redact_url(url).chars().take(200).collect()
}

impl FetchError {
    /// What this failure says about the whole source rather than this one
    /// item, when it says something: "connection refused", "DNS", "TLS",
    /// "access denied". One such failure is a dead letter; a run of them is
    /// an outage (the ingest stops instead of dead-lettering everything).
    pub fn outage(&self) -> Option<&'static str> {
        match self {
            FetchError::Client {
                status: 401 | 403, ..
            } => Some("access denied"),
            FetchError::Exhausted { outage, .. } => *outage,
            _ => None,
        }
    }
}

/// The source-level failure an error text describes, if it describes one.
pub fn outage_kind(text: &str) -> Option<&'static str> {
    let t = text.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    if any(&[
        "connection refused",
        "connect error",
        "error trying to connect",
    ]) {
        Some("connection refused")
    } else if any(&[
        "connection reset",
        "connection closed before message completed",
        "broken pipe",
        "unexpected eof",
        "incomplete message",
    ]) {
        // The server went away mid-request (or a pooled connection to it
        // was closed): one is a glitch, a run of them is an outage.
        Some("connection lost")
    } else if any(&[
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no such host",
    ]) {
        Some("DNS")
    } else if any(&[
        "certificate",
        "tls handshake",
        "invalid peer certificate",
        "ssl",
    ]) {
        Some("TLS")
    } else if any(&[
        "accessdenied",
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "403 forbidden",
    ]) {
        Some("access denied")
    } else {
        None
    }
}

/// An error and its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Retry policy for transient failures (5xx, 429, timeouts, connection errors).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in total, the first included.
    pub attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with up to 50% jitter, so a storm of retries spreads out.
    pub fn delay(&self, attempt: u32, seed: u64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let jitter = xxhash_rust::xxh3::xxh3_64(&(seed ^ u64::from(attempt)).to_le_bytes()) % 1000;
        exp + exp.mul_f64(jitter as f64 / 2000.0)
    }
}

/// Where item bodies come from.
#[derive(Debug, Clone)]
enum Root {
    /// `s3://<row bucket>/<key>`.
    Inventory,
    Local(PathBuf),
    Http(String),
    S3 {
        bucket: String,
        prefix: String,
    },
}

impl Root {
    /// Whether a URL list's entry lies inside this root (lexically: paths and
    /// URLs are normalised first, so `..` cannot climb out; symlinks are not followed).
    fn contains(&self, source: &Source) -> bool {
        match (self, source) {
            (Root::Inventory, _) => true,
            (Root::Local(root), Source::Local(path)) => path.starts_with(root),
            (Root::Http(base), Source::Http(url)) => http_within(base, url),
            (Root::S3 { bucket, prefix }, Source::S3 { bucket: b, key }) => {
                b == bucket
                    && (prefix.is_empty()
                        || key
                            .strip_prefix(prefix.as_str())
                            .is_some_and(|rest| rest.starts_with('/')))
            }
            _ => false,
        }
    }

    fn describe(&self) -> String {
        match self {
            Root::Inventory => "(none)".into(),
            Root::Local(p) => p.to_string_lossy().into_owned(),
            Root::Http(base) => redact_url(base),
            Root::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// `url` is on `base`'s scheme, host and port, below its path.
fn http_within(base: &str, url: &str) -> bool {
    let (Ok(base), Ok(url)) = (url::Url::parse(base), url::Url::parse(url)) else {
        return false;
    };
    let base_path = base.path().trim_end_matches('/');
    base.scheme() == url.scheme()
        && base.host_str() == url.host_str()
        && base.port_or_known_default() == url.port_or_known_default()
        && url
            .path()
            .strip_prefix(base_path)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Where a URL list's entry lives: s3://bucket/key, http(s):// (normalised,
/// so `..` segments are resolved), file:// or an absolute path; any other
/// scheme is refused.
fn source_of_url(listed: &str) -> Result<Source, FetchError> {
    let bad = |reason: &str| FetchError::BadUrl {
        url: shown(listed),
        reason: reason.to_string(),
    };
    if listed.chars().any(char::is_control) {
        return Err(bad("control character"));
    }
    let scheme = super::url_list::scheme_of(listed).map(str::to_ascii_lowercase);
    match scheme.as_deref() {
        Some("http" | "https") => {
            let url = url::Url::parse(listed).map_err(|e| bad(&e.to_string()))?;
            if url.host_str().is_none_or(str::is_empty) {
                return Err(bad("no host"));
            }
            Ok(Source::Http(url.into()))
        }
        Some("s3") => {
            let rest = listed
                .get(5..)
                .filter(|_| listed.get(2..5) == Some("://"))
                .ok_or_else(|| bad("expected s3://bucket/key"))?;
            let (bucket, key) = rest
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .ok_or_else(|| bad("expected s3://bucket/key"))?;
            check_key(key)?;
            Ok(Source::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            })
        }
        Some("file") | None => match Location::parse(listed) {
            Ok(Location::Local(path)) => Ok(Source::Local(path)),
            Ok(Location::S3 { .. }) => Err(bad("not a path")),
            Err(e) => Err(bad(&e.to_string())),
        },
        Some(other) => Err(FetchError::UnsupportedScheme {
            url: shown(listed),
            scheme: other.to_string(),
        }),
    }
}

/// Fetches item bodies with retries; cheap to share (`Arc`).
#[derive(Debug)]
pub struct Fetcher {
    root: Root,
    s3: S3Options,
    stores: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    http: reqwest::Client,
    retry: RetryPolicy,
}

/// Options for [`Fetcher::new`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// `--items-root`: None = the inventory's own bucket.
    pub items_root: Option<String>,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Idle connections kept per host (reuse across requests).
    pub pool_per_host: usize,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            items_root: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            pool_per_host: 64,
        }
    }
}

impl Fetcher {
    pub fn new(opts: &FetchOptions, s3: &S3Options) -> Result<Self, String> {
        let root = match opts.items_root.as_deref().map(str::trim) {
            None | Some("") => Root::Inventory,
            Some(r) if r.starts_with("http://") || r.starts_with("https://") => {
                url::Url::parse(r).map_err(|e| format!("--items-root {}: {e}", redact_url(r)))?;
                Root::Http(r.trim_end_matches('/').to_string())
            }
            Some(r) => match Location::parse(r).map_err(|e| format!("--items-root: {e}"))? {
                Location::Local(p) => Root::Local(p),
                Location::S3 { bucket, prefix } => Root::S3 { bucket, prefix },
            },
        };
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(opts.pool_per_host)
            .user_agent(concat!("ecops/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            root,
            s3: s3.clone(),
            stores: Mutex::new(HashMap::new()),
            http,
            retry: opts.retry,
        })
    }

    /// True when bodies are local files (read on blocking threads, in batches).
    pub fn is_local(&self) -> bool {
        matches!(self.root, Root::Local(_))
    }

    /// Where `row`'s body comes from; the key is checked first.
    pub fn locate(&self, row: &InventoryRow) -> Result<Source, FetchError> {
        if row.is_url {
            return self.locate_url(&row.key);
        }
        check_key(&row.key)?;
        Ok(match &self.root {
            Root::Inventory => Source::S3 {
                bucket: row.bucket.clone(),
                key: row.key.clone(),
            },
            Root::Local(p) => Source::Local(p.join(&row.key)),
            Root::Http(base) => Source::Http(format!("{base}/{}", encode_key(&row.key))),
            Root::S3 { bucket, prefix } => Source::S3 {
                bucket: bucket.clone(),
                key: if prefix.is_empty() {
                    row.key.clone()
                } else {
                    format!("{prefix}/{}", row.key)
                },
            },
        })
    }

    /// A URL list's entry, fetched as it is, but only inside `--items-root`
    /// when one is given.
    fn locate_url(&self, listed: &str) -> Result<Source, FetchError> {
        let source = source_of_url(listed)?;
        if !self.root.contains(&source) {
            return Err(FetchError::OutsideRoot {
                url: shown(listed),
                root: self.root.describe(),
            });
        }
        Ok(source)
    }

    /// Fetches a body, retrying transient failures.
    pub async fn fetch(&self, source: &Source) -> Result<Bytes, FetchError> {
        match source {
            Source::Local(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || read_file(&path))
                    .await
                    .map_err(|e| FetchError::Other {
                        uri: source.uri(),
                        message: e.to_string(),
                    })?
            }
            Source::Http(url) => self.fetch_http(url).await,
            Source::S3 { bucket, key } => {
                let store = self.store_for(bucket)?;
                self.fetch_object(&store, key, &source.uri()).await
            }
        }
    }

    fn store_for(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, FetchError> {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = stores.get(bucket) {
            return Ok(s.clone());
        }
        let location =
            Location::parse(&format!("s3://{bucket}")).map_err(|e| FetchError::Other {
                uri: format!("s3://{bucket}"),
                message: e.to_string(),
            })?;
        let store = open_location(&location, &self.s3)
            .map_err(|e| FetchError::Other {
                uri: format!("s3://{bucket}"),
                message: e.to_string(),
            })?
            .object_store();
        stores.insert(bucket.to_string(), store.clone());
        Ok(store)
    }

    /// object_store retries 5xx and timeouts itself (see store::build_s3).
    async fn fetch_object(
        &self,
        store: &Arc<dyn ObjectStore>,
        key: &str,
        uri: &str,
    ) -> Result<Bytes, FetchError> {
        let path = ObjectPath::parse(key).map_err(|_| FetchError::UnsafeKey {
            key: key.to_string(),
            reason: "not a valid object key",
        })?;
        let got = store.get(&path).await.map_err(|e| object_error(uri, e))?;
        if got.meta.size > MAX_ITEM_BYTES as u64 {
            return Err(FetchError::TooLarge { uri: uri.into() });
        }
        got.bytes().await.map_err(|e| object_error(uri, e))
    }

    async fn fetch_http(&self, uri: &str) -> Result<Bytes, FetchError> {
        let seed = xxhash_rust::xxh3::xxh3_64(uri.as_bytes());
        let mut last = String::new();
        for attempt in 0..self.retry.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(self.retry.delay(attempt - 1, seed)).await;
            }
            match self.http_once(uri).await {
                Ok(b) => return Ok(b),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Transient(msg, retry_after)) => {
                    last = msg;
                    if let Some(wait) = retry_after {
                        tokio::time::sleep(wait.min(Duration::from_secs(30))).await;
                    }
                }
            }
        }
        Err(FetchError::Exhausted {
            uri: uri.into(),
            attempts: self.retry.attempts.max(1),
            outage: outage_kind(&last),
            last,
        })
    }

    async fn http_once(&self, uri: &str) -> Result<Bytes, Attempt> {
        let transient = |e: reqwest::Error| Attempt::Transient(redact_url(&chain(&e)), None);
        let mut resp = self.http.get(uri).send().await.map_err(transient)?;
        let status = resp.status();
        if status.as_u16() == 429 || status.is_server_error() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(Attempt::Transient(
                format!("HTTP {}", status.as_u16()),
                retry_after,
            ));
        }
        if status.as_u16() == 404 || status.as_u16() == 410 {
            return Err(Attempt::Final(FetchError::NotFound { uri: uri.into() }));
        }
        if !status.is_success() {
            return Err(Attempt::Final(FetchError::Client {
                uri: uri.into(),
                status: status.as_u16(),
            }));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_ITEM_BYTES as u64)
        {
            return Err(Attempt::Final(FetchError::TooLarge { uri: uri.into() }));
        }
        let mut body = Vec::with_capacity(resp.content_length().unwrap_or(4096) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(transient)? {
            if body.len() + chunk.len() > MAX_ITEM_BYTES {
                return Err(Attempt::Final(FetchError::TooLarge { uri: uri.into() }));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }
}

/// Where one item body lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Local(PathBuf),
    Http(String),
    S3 { bucket: String, key: String },
}

impl Source {
    /// The URI recorded in dead letters (credentials redacted).
    pub fn uri(&self) -> String {
        match self {
            Source::Local(p) => p.to_string_lossy().into_owned(),
            Source::Http(u) => redact_url(u),
            Source::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    /// Parses a URI written by [`Source::uri`] (for retrying dead letters).
    pub fn parse(uri: &str) -> Result<Source, FetchError> {
        let bad = |reason| FetchError::UnsafeKey {
            key: uri.chars().take(200).collect(),
            reason,
        };
        if uri.starts_with("http://") || uri.starts_with("https://") {
            return Ok(Source::Http(uri.to_string()));
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').ok_or_else(|| bad("no key"))?;
            check_key(key)?;
            return Ok(Source::S3 {
                bucket: bucket.to_string(),
                key: key.to_string(),
            });
        }
        let path = PathBuf::from(uri);
        if !path.is_absolute() {
            return Err(bad("not an absolute path or URL"));
        }
        Ok(Source::Local(path))
    }

    /// True for a local file (read on blocking threads).
    pub fn is_local(&self) -> bool {
        matches!(self, Source::Local(_))
    }
}

/// Reads a local body, at most MAX_ITEM_BYTES (blocking).
pub fn read_file(path: &std::path::Path) -> Result<Bytes, FetchError> {
    let uri = || path.to_string_lossy().into_owned();
    let file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FetchError::NotFound { uri: uri() },
        _ => FetchError::Other {
            uri: uri(),
            message: e.to_string(),
        },
    })?;
    let mut buf = Vec::with_capacity(4096);
    file.take(MAX_ITEM_BYTES as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| FetchError::Other {
            uri: uri(),
            message: e.to_string(),
        })?;
    if buf.len() > MAX_ITEM_BYTES {
        return Err(FetchError::TooLarge { uri: uri() });
    }
    Ok(Bytes::from(buf))
}

enum Attempt {
    Final(FetchError),
    Transient(String, Option<Duration>),
}

fn object_error(uri: &str, e: object_store::Error) -> FetchError {
    match e {
        object_store::Error::NotFound { .. } => FetchError::NotFound { uri: uri.into() },
        other => {
            let last = redact_url(&chain(&other));
            FetchError::Exhausted {
                uri: uri.into(),
                attempts: 1,
                outage: outage_kind(&last),
                last,
            }
        }
    }
}

/// Refuses keys that could escape the items root.
pub fn check_key(key: &str) -> Result<(), FetchError> {
    let unsafe_key = |reason| {
        Err(FetchError::UnsafeKey {
            key: key.chars().take(200).collect(),
            reason,
        })
    };
    if key.is_empty() {
        return unsafe_key("empty");
    }
    if key.starts_with('/') {
        return unsafe_key("absolute path");
    }
    if key.contains('\\') {
        return unsafe_key("backslash");
    }
    if key.chars().any(char::is_control) {
        return unsafe_key("control character");
    }
    if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return unsafe_key("empty, '.' or '..' path segment");
    }
    Ok(())
}

/// Percent-encodes each path segment of a key for a URL.
fn encode_key(key: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    key.split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_level_failures_are_told_from_item_failures() {
        let cases = [
            (
                "error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
                Some("connection refused"),
            ),
            (
                "dns error: failed to lookup address information",
                Some("DNS"),
            ),
            ("invalid peer certificate: UnknownIssuer", Some("TLS")),
            (
                "connection closed before message completed",
                Some("connection lost"),
            ),
            ("Error performing GET: AccessDenied", Some("access denied")),
            ("HTTP 500 Internal Server Error", None),
            ("expected value at line 1 column 1", None),
        ];
        for (text, kind) in cases {
            assert_eq!(outage_kind(text), kind, "{text}");
        }
        let forbidden = FetchError::Client {
            uri: "u".into(),
            status: 403,
        };
        assert_eq!(forbidden.outage(), Some("access denied"));
    }

    #[test]
    fn escaping_keys_are_refused() {
        for key in [
            "../etc/passwd",
            "a/../../b",
            "/abs/x.json",
            "a//b",
            "a\\b",
            "./a",
            "a\nb",
            "",
        ] {
            assert!(check_key(key).is_err(), "{key:?} should be refused");
        }
        assert!(check_key("velocity/l8/N60W140/x.stac.json").is_ok());
    }

    #[test]
    fn keys_are_encoded_per_segment() {
        assert_eq!(encode_key("a b/c+d.json"), "a%20b/c%2Bd.json");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.delay(0, 1) >= Duration::from_millis(100));
        assert!(p.delay(0, 1) <= Duration::from_millis(150));
        assert!(p.delay(3, 1) >= Duration::from_millis(800));
        assert!(p.delay(30, 1) <= Duration::from_millis(7500));
    }
}
