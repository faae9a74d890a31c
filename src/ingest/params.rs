//! An ingest as an operator asks for it — from the CLI's flags, the
//! console's `:ingest` line, or a run record being resumed — and the one
//! place that turns it into [`IngestOptions`] with the defaults every front
//! end shares and the catalog's S3 settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::fetch::{FetchOptions, RetryPolicy};
use super::inventory::{Filter, parse_since};
use super::job::valid_job_name;
use super::{
    DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, IngestError, IngestOptions, InventoryInput, Mode,
};
use crate::store::{S3Options, redact_url};

/// Per-request timeout by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts per item by default (HTTP 5xx, 429, timeouts).
pub const DEFAULT_ATTEMPTS: u32 = 5;
/// Keys that are items by default.
pub const DEFAULT_SUFFIX: &str = ".stac.json";

/// What to ingest and how; every field left `None` takes the shared default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IngestParams {
    /// Inventory path or URL (None with `urls` or `retry_dead_letters`).
    pub inventory: Option<String>,
    /// `--urls`: URL lists to read instead of an inventory (a file or glob).
    /// (Absent when unset, so the records and plan keys of inventory
    /// ingests stay what they were.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub urls: Option<String>,
    /// `--url-column`: the URL column of CSV/TSV/Parquet/NDJSON lists (default `url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_column: Option<String>,
    /// Re-run the catalog's dead letters instead of an inventory.
    pub retry_dead_letters: bool,
    pub items_root: Option<String>,
    /// `--since`: a date or datetime, as typed.
    pub since: Option<String>,
    pub suffix: Option<String>,
    pub limit: Option<u64>,
    pub chunk_size: Option<usize>,
    pub concurrency: Option<usize>,
    pub timeout_seconds: Option<u64>,
    pub attempts: Option<u32>,
    pub mode: Option<Mode>,
    /// `--job NAME` (default: derived from the inputs).
    pub job: Option<String>,
    /// `--skip-known`: skip ids the hash index already holds.
    pub skip_known: bool,
}

impl IngestParams {
    /// An ingest of `inventory` with items under `items_root`.
    pub fn inventory(inventory: &str, items_root: Option<&str>) -> Self {
        Self {
            inventory: Some(inventory.to_string()),
            items_root: items_root.map(str::to_string),
            ..Self::default()
        }
    }

    /// The options of this ingest, fetching from S3 with `s3` (the
    /// catalog's settings). Checks what can be checked before anything runs.
    pub fn build(&self, s3: &S3Options) -> Result<IngestOptions, IngestError> {
        let invalid = |m: String| IngestError::Options(m);
        let inventory = self.input()?;
        if self.urls.is_some() && self.since.is_some() {
            return Err(invalid(
                "--since: URL lists carry no dates; it applies to inventories only".into(),
            ));
        }
        let since = self
            .since
            .as_deref()
            .map(parse_since)
            .transpose()
            .map_err(|e| invalid(format!("--since: {e}")))?;
        if let Some(name) = &self.job
            && !valid_job_name(name)
        {
            return Err(invalid(format!(
                "--job '{name}': use letters, digits, '-', '_' and '.'"
            )));
        }
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1);
        // A URL list names items: by default every entry is one.
        let default_suffix = if self.urls.is_some() {
            ""
        } else {
            DEFAULT_SUFFIX
        };
        Ok(IngestOptions {
            inventory,
            filter: Filter {
                suffix: self
                    .suffix
                    .clone()
                    .unwrap_or_else(|| default_suffix.to_string()),
                since,
                limit: self.limit,
            },
            fetch: FetchOptions {
                items_root: self.items_root.clone(),
                timeout: self
                    .timeout_seconds
                    .map_or(DEFAULT_TIMEOUT, |s| Duration::from_secs(s.max(1))),
                retry: RetryPolicy {
                    attempts: self.attempts.unwrap_or(DEFAULT_ATTEMPTS).max(1),
                    ..RetryPolicy::default()
                },
                pool_per_host: concurrency,
            },
            s3: s3.clone(),
            chunk_size: self.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE).max(1),
            concurrency,
            mode: self.mode.unwrap_or(Mode::Auto),
            job_name: self.job.clone(),
            skip_known: self.skip_known,
            ..IngestOptions::default()
        })
    }

    /// What the request reads: exactly one of an inventory, URL lists or
    /// the dead letters.
    fn input(&self) -> Result<InventoryInput, IngestError> {
        let invalid = |m: &str| Err(IngestError::Options(m.to_string()));
        if self.url_column.is_some() && self.urls.is_none() {
            return invalid("--url-column applies to --urls only");
        }
        match (&self.inventory, &self.urls, self.retry_dead_letters) {
            (Some(i), None, false) => Ok(InventoryInput::File(i.clone())),
            (None, Some(lists), false) => {
                let column = self
                    .url_column
                    .clone()
                    .unwrap_or_else(|| super::url_list::DEFAULT_URL_COLUMN.to_string());
                if column.trim().is_empty() {
                    return invalid("--url-column is empty");
                }
                Ok(InventoryInput::Urls {
                    lists: lists.clone(),
                    column,
                })
            }
            (None, None, true) => Ok(InventoryInput::DeadLetters),
            (None, None, false) => invalid("no inventory given (--inventory or --urls)"),
            _ => invalid("give one of an inventory, --urls or --retry-dead-letters"),
        }
    }

    /// The same request as a run record keeps it: local paths made
    /// absolute (a resume may run elsewhere), credentials and query strings
    /// removed from URLs.
    pub fn redacted(&self) -> Self {
        let keep = |l: &str| match crate::store::Location::parse(l) {
            Ok(loc @ crate::store::Location::Local(_)) => loc.to_uri(),
            _ => redact_url(l),
        };
        Self {
            inventory: self.inventory.as_deref().map(keep),
            urls: self.urls.as_deref().map(keep),
            items_root: self.items_root.as_deref().map(keep),
            ..self.clone()
        }
    }

    /// A short name for lists: the job name, else the inventory's file name.
    pub fn label(&self) -> String {
        if let Some(job) = &self.job {
            return job.clone();
        }
        match self.inventory.as_ref().or(self.urls.as_ref()) {
            Some(i) => std::path::Path::new(i)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| redact_url(i)),
            None => "dead-letter retry".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_shared_and_the_catalogs_s3_settings_used() {
        let s3 = S3Options {
            endpoint: Some("http://127.0.0.1:9000".into()),
            anonymous: false,
        };
        let opts = IngestParams::inventory("inv.csv", Some("http://h"))
            .build(&s3)
            .unwrap();
        assert_eq!(opts.concurrency, DEFAULT_CONCURRENCY);
        assert_eq!(opts.chunk_size, DEFAULT_CHUNK_SIZE);
        assert_eq!(opts.mode, Mode::Auto);
        assert_eq!(opts.s3, s3);
        assert_eq!(opts.filter.suffix, ".stac.json");
        assert_eq!(opts.fetch.retry.attempts, DEFAULT_ATTEMPTS);
    }

    #[test]
    fn bad_requests_are_refused_before_anything_runs() {
        let s3 = S3Options::default();
        let bad_since = IngestParams {
            since: Some("yesterday".into()),
            ..IngestParams::inventory("i.csv", None)
        };
        assert!(bad_since.build(&s3).is_err());
        let bad_job = IngestParams {
            job: Some("a/b".into()),
            ..IngestParams::inventory("i.csv", None)
        };
        assert!(bad_job.build(&s3).is_err());
        assert!(IngestParams::default().build(&s3).is_err());
        let both = IngestParams {
            urls: Some("u.txt".into()),
            ..IngestParams::inventory("i.csv", None)
        };
        assert!(both.build(&s3).is_err());
        let urls = IngestParams {
            urls: Some("u.txt".into()),
            ..IngestParams::default()
        };
        let since = IngestParams {
            since: Some("2026-01-01".into()),
            ..urls.clone()
        };
        assert!(since.build(&s3).is_err());
        let column = IngestParams {
            url_column: Some("href".into()),
            ..IngestParams::inventory("i.csv", None)
        };
        assert!(column.build(&s3).is_err());
        // Inventory requests serialise as before (plan keys, run records).
        let plain = serde_json::to_value(IngestParams::inventory("i.csv", None)).unwrap();
        assert!(plain.get("urls").is_none() && plain.get("url_column").is_none());
        let opts = urls.build(&s3).unwrap();
        assert_eq!(opts.filter.suffix, "", "every listed URL is an item");
        assert!(matches!(
            opts.inventory,
            InventoryInput::Urls { ref column, .. } if column == "url"
        ));
        let secret = IngestParams::inventory("https://u:p@h/inv.csv?X-Amz-Signature=s", None);
        assert_eq!(
            secret.redacted().inventory.as_deref(),
            Some("https://h/inv.csv")
        );
    }
}
