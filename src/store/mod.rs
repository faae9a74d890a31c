//! Object storage: one `object_store` handle per location, shared by catalog
//! metadata, data files, the lock and inventories.
//!
//! A [`Location`] is parsed from what an operator types (`./demo`,
//! `file:///data/cat`, `s3://bucket/prefix`). [`open_location`] turns it into an
//! `ObjectStore` plus the key prefix inside it. Iceberg paths recorded in
//! metadata are *absolute locations* (`/abs/path/...` for local files, as
//! earthcatalog and PyIceberg write them, and `s3://bucket/key` on S3);
//! [`Store::key_of`] maps them back to object keys.

mod iceberg_io;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore};

pub use iceberg_io::{ObjectStoreStorage, ObjectStoreStorageFactory, file_io_for};

/// Errors opening or addressing a storage location.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The text is not a location we understand.
    #[error("invalid location '{location}': {reason}")]
    InvalidLocation { location: String, reason: String },
    /// The S3 client could not be configured.
    #[error("cannot configure S3 for '{location}': {source}")]
    S3Config {
        location: String,
        #[source]
        source: object_store::Error,
    },
    /// A path recorded in metadata does not belong to this store.
    #[error("path '{path}' is outside storage '{store}'")]
    ForeignPath { path: String, store: String },
    /// `ECOPS_FAULTS` (the fault-injection drill hook) is set but malformed.
    #[error(transparent)]
    Faults(#[from] crate::testkit::faulty_store::FaultPlanError),
    /// A local path could not be prepared.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where a catalog or input lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An absolute local folder or file.
    Local(PathBuf),
    /// `s3://bucket/prefix` (prefix without leading or trailing `/`, may be empty).
    S3 { bucket: String, prefix: String },
}

impl Location {
    /// Parses `./dir`, `/abs`, `file:///abs`, `file:/abs` or `s3://bucket[/prefix]`.
    /// Relative local paths are made absolute against the current directory
    /// (iceberg metadata records absolute paths).
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidLocation {
            location: redact_url(text),
            reason: reason.to_string(),
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(invalid("empty location"));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(invalid("missing bucket name"));
            }
            if bucket.contains('@') {
                return Err(invalid(
                    "credentials in URLs are not accepted; use AWS_* variables",
                ));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some(scheme_end) = text.find("://") {
            let scheme = &text[..scheme_end];
            if scheme != "file" {
                return Err(invalid(&format!(
                    "unsupported scheme '{scheme}' (use a path, file:// or s3://)"
                )));
            }
        }
        let raw = text
            .strip_prefix("file://")
            .or_else(|| text.strip_prefix("file:"))
            .unwrap_or(text);
        let path = PathBuf::from(raw);
        let path = if path.is_absolute() {
            path
        } else {
            std::env::current_dir()
                .map_err(|e| StoreError::Io {
                    path: raw.to_string(),
                    source: e,
                })?
                .join(path)
        };
        Ok(Location::Local(normalize_lexically(&path)))
    }

    /// The location with `rel` appended (`/`-separated).
    pub fn join(&self, rel: &str) -> Location {
        let rel = rel.trim_matches('/');
        match self {
            Location::Local(p) => Location::Local(if rel.is_empty() {
                p.clone()
            } else {
                p.join(rel)
            }),
            Location::S3 { bucket, prefix } => Location::S3 {
                bucket: bucket.clone(),
                prefix: join_key(prefix, rel),
            },
        }
    }

    /// The absolute location string iceberg metadata records for this place:
    /// a plain absolute path locally (as earthcatalog writes), `s3://…` on S3.
    pub fn to_uri(&self) -> String {
        match self {
            Location::Local(p) => p.to_string_lossy().into_owned(),
            Location::S3 { bucket, prefix } if prefix.is_empty() => format!("s3://{bucket}"),
            Location::S3 { bucket, prefix } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_uri())
    }
}

/// Options for S3 access beyond the standard `AWS_*` environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// Endpoint override (otherwise `AWS_ENDPOINT_URL` / `AWS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// Send unsigned requests (public buckets).
    pub anonymous: bool,
}

/// An object store and the key prefix of one [`Location`] inside it.
#[derive(Debug, Clone)]
pub struct Store {
    location: Location,
    inner: Arc<dyn ObjectStore>,
}

impl Store {
    /// The object store handle (rooted at the filesystem root or the bucket).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.inner.clone()
    }

    /// The location this store was opened for.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Object key of `rel` below this store's location.
    pub fn key(&self, rel: &str) -> ObjectPath {
        key_of_location(&self.location.join(rel))
    }

    /// Absolute location string of `rel` below this store's location.
    pub fn uri(&self, rel: &str) -> String {
        self.location.join(rel).to_uri()
    }

    /// Maps an absolute location recorded in metadata to an object key of this store.
    pub fn key_of(&self, uri: &str) -> Result<ObjectPath, StoreError> {
        key_for_uri(&self.location, uri)
    }
}

/// Maps an absolute location string to the key in the store that serves `root`.
pub(crate) fn key_for_uri(root: &Location, uri: &str) -> Result<ObjectPath, StoreError> {
    let foreign = || StoreError::ForeignPath {
        path: redact_url(uri),
        store: root.to_uri(),
    };
    match root {
        Location::Local(_) => {
            if uri.starts_with("s3://") {
                return Err(foreign());
            }
            let raw = uri
                .strip_prefix("file://")
                .or_else(|| uri.strip_prefix("file:"))
                .unwrap_or(uri);
            if !raw.starts_with('/') {
                return Err(foreign());
            }
            ObjectPath::parse(raw.trim_start_matches('/')).map_err(|_| foreign())
        }
        Location::S3 { bucket, .. } => {
            let rest = uri.strip_prefix("s3://").ok_or_else(foreign)?;
            let (b, key) = rest.split_once('/').ok_or_else(foreign)?;
            if b != bucket {
                return Err(foreign());
            }
            ObjectPath::parse(key).map_err(|_| foreign())
        }
    }
}

fn key_of_location(location: &Location) -> ObjectPath {
    match location {
        Location::Local(p) => ObjectPath::from_iter(p.components().filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })),
        Location::S3 { prefix, .. } => {
            ObjectPath::from_iter(prefix.split('/').filter(|s| !s.is_empty()))
        }
    }
}

/// Opens the object store serving `location`.
///
/// Local locations use a `LocalFileSystem` rooted at `/` (writes go to a
/// temporary file and are renamed into place, so a crash never leaves a
/// half-written object). S3 reads the standard `AWS_*` variables,
/// `AWS_ENDPOINT_URL` for S3-compatible servers, and allows plain http only
/// when the endpoint is on loopback.
///
/// Drill and test hook: when `ECOPS_FAULTS` is set, the store is wrapped in a
/// [`crate::testkit::faulty_store::FaultyStore`] that injects the faults it describes (latency, 5xx,
/// SlowDown, timeouts, resets, truncated bodies, the N-th put/get of a key
/// pattern); a `tracing` warning says so once per process.
pub fn open_location(location: &Location, s3: &S3Options) -> Result<Store, StoreError> {
    let inner: Arc<dyn ObjectStore> = match location {
        Location::Local(_) => Arc::new(LocalFileSystem::new()),
        Location::S3 { bucket, .. } => {
            Arc::new(build_s3(bucket, s3).map_err(|source| StoreError::S3Config {
                location: location.to_uri(),
                source,
            })?)
        }
    };
    let inner = match crate::testkit::faulty_store::FaultState::from_env()? {
        None => inner,
        Some(state) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(
                    "{} is set: storage faults are being injected (drill/test hook)",
                    crate::testkit::faulty_store::FAULTS_ENV
                );
            });
            Arc::new(crate::testkit::faulty_store::FaultyStore::with_state(
                inner, state,
            ))
        }
    };
    Ok(Store {
        location: location.clone(),
        inner,
    })
}

fn build_s3(bucket: &str, opts: &S3Options) -> object_store::Result<object_store::aws::AmazonS3> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = opts
        .endpoint
        .clone()
        .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
        .or_else(|| std::env::var("AWS_ENDPOINT").ok())
        .filter(|e| !e.is_empty());
    let mut client = ClientOptions::new()
        .with_timeout(Duration::from_secs(60))
        .with_connect_timeout(Duration::from_secs(10));
    if let Some(endpoint) = endpoint {
        if endpoint.starts_with("http://") {
            // Plain http is only for servers on this machine (test servers, sidecars).
            if is_loopback_url(&endpoint) {
                client = client.with_allow_http(true);
            }
        }
        builder = builder.with_endpoint(endpoint);
    }
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        builder = builder.with_region("us-east-1");
    }
    let anonymous =
        opts.anonymous || env_flag("ECOPS_S3_ANONYMOUS") || env_flag("AWS_SKIP_SIGNATURE");
    if anonymous {
        builder = builder.with_skip_signature(true);
    }
    // Fail within seconds, not minutes, when an endpoint is down; transient
    // 5xx/429 still get retried with backoff.
    let retry = object_store::RetryConfig {
        max_retries: 4,
        retry_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    builder
        .with_client_options(client)
        .with_retry(retry)
        .build()
}

fn env_flag(name: &str) -> bool {
    std::env::var(name)
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// True when the URL's host is a loopback address or `localhost`.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Removes credentials (`user:pass@`) and query strings from a URL for display.
pub fn redact_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let (scheme, rest) = text.split_at(scheme_end + 3);
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let path = path.split_once('?').map(|(p, _)| p).unwrap_or(path);
    format!("{scheme}{host}{path}")
}

/// Removes credentials from every URL in a free text (error messages):
/// `user:pass@` authorities and presigned-URL query values.
pub fn redact_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        out.push_str(
            authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host),
        );
        rest = &tail[end..];
    }
    out.push_str(rest);
    for key in [
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "X-Amz-Security-Token=",
    ] {
        while let Some(i) = out.find(key) {
            let start = i + key.len();
            let end = out[start..]
                .find(|c: char| c == '&' || c.is_whitespace())
                .map_or(out.len(), |e| start + e);
            out.replace_range(i..end, "[redacted]");
        }
    }
    out
}

fn join_key(prefix: &str, rel: &str) -> String {
    match (prefix.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}/{rel}"),
    }
}

/// Resolves `.` and `..` without touching the filesystem (the path may not exist yet).
fn normalize_lexically(path: &FsPath) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        assert_eq!(
            Location::parse("s3://b/p/q/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            Location::parse("file:///x/y").unwrap(),
            Location::Local("/x/y".into())
        );
        assert_eq!(
            Location::parse("/x/./z/../y").unwrap(),
            Location::Local("/x/y".into())
        );
        assert!(Location::parse("gs://b").is_err());
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("s3://key:secret@bucket/x").is_err());
    }

    #[test]
    fn maps_uris_to_keys() {
        let local = Location::Local("/base".into());
        assert_eq!(
            key_for_uri(&local, "/base/w/a.parquet").unwrap().as_ref(),
            "base/w/a.parquet"
        );
        assert_eq!(
            key_for_uri(&local, "file:///base/a").unwrap().as_ref(),
            "base/a"
        );
        assert!(key_for_uri(&local, "s3://b/a").is_err());
        let s3 = Location::S3 {
            bucket: "b".into(),
            prefix: "p".into(),
        };
        assert_eq!(key_for_uri(&s3, "s3://b/p/w/x").unwrap().as_ref(), "p/w/x");
        assert!(key_for_uri(&s3, "s3://other/p").is_err());
        assert_eq!(
            Store {
                location: s3.clone(),
                inner: Arc::new(LocalFileSystem::new())
            }
            .key("w/x")
            .as_ref(),
            "p/w/x"
        );
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact_url("https://u:secret@host/p?X-Amz-Signature=abc"),
            "https://host/p"
        );
        assert_eq!(redact_url("/plain/path"), "/plain/path");
        assert!(is_loopback_url("http://127.0.0.1:9000"));
        assert!(is_loopback_url("http://localhost:9000"));
        assert!(!is_loopback_url("http://10.0.0.1:9000"));
        assert_eq!(
            redact_secrets("get https://u:pw@h/p?X-Amz-Signature=abc&b=1 failed: why? s3://b/k"),
            "get https://h/p?[redacted]&b=1 failed: why? s3://b/k"
        );
    }
}
