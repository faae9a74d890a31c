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
    /// Inventory path or URL (None with `retry_dead_letters`).
    pub inventory: Option<String>,
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
        let inventory = match (&self.inventory, self.retry_dead_letters) {
            (Some(_), true) => {
                return Err(invalid(
                    "give an inventory or --retry-dead-letters, not both".into(),
                ));
            }
            (Some(i), false) => InventoryInput::File(i.clone()),
            (None, true) => InventoryInput::DeadLetters,
            (None, false) => return Err(invalid("no inventory given".into())),
        };
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
        Ok(IngestOptions {
            inventory,
            filter: Filter {
                suffix: self
                    .suffix
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SUFFIX.to_string()),
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
            ..IngestOptions::default()
        })
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
            items_root: self.items_root.as_deref().map(keep),
            ..self.clone()
        }
    }

    /// A short name for lists: the job name, else the inventory's file name.
    pub fn label(&self) -> String {
        if let Some(job) = &self.job {
            return job.clone();
        }
        match &self.inventory {
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
        let secret = IngestParams::inventory("https://u:p@h/inv.csv?X-Amz-Signature=s", None);
        assert_eq!(
            secret.redacted().inventory.as_deref(),
            Some("https://h/inv.csv")
        );
    }
}
