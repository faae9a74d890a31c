//! `ecops.toml`: defaults for the global options, read from the working
//! directory or from `--config`. Command-line flags and `ECOPS_BASE` win.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Name of the config file looked up in the working directory.
pub const CONFIG_FILE: &str = "ecops.toml";

/// The config file's keys.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Catalog base location.
    pub base: Option<String>,
    /// Open catalogs read-only.
    #[serde(default)]
    pub read_only: bool,
    /// Files below this many MiB count as small.
    pub small_file_mb: Option<u64>,
    /// Console: redraw at most every this many milliseconds (default 250).
    pub refresh_ms: Option<u64>,
    /// Skew allowance between another holder's clock and ours when judging
    /// the catalog lock stale by its timestamps: "5m" (default), "30s", "1h".
    pub lock_skew: Option<String>,
    /// Console colours: dark (default), light, ansi or mono.
    pub theme: Option<String>,
    /// Console: `--low-bandwidth` by default (5 s refresh, no animation, ansi theme).
    #[serde(default)]
    pub low_bandwidth: bool,
    /// Run ledger: how often a running job publishes its heartbeat ("5s").
    pub heartbeat: Option<String>,
    /// Run ledger: how many runs are kept (older finished ones are pruned).
    pub keep_runs: Option<usize>,
    /// S3 settings.
    #[serde(default)]
    pub s3: S3Config,
    /// `[keys]`: console actions to keys, e.g. `steal = "S"` or
    /// `quit = ["q", "ctrl-q"]` (validated by the console at start).
    #[serde(default)]
    pub keys: BTreeMap<String, toml::Spanned<KeyNames>>,
    /// Where each `[keys]` entry is (file and line), for error messages.
    #[serde(skip)]
    pub key_lines: BTreeMap<String, String>,
}

/// One key or several.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum KeyNames {
    One(String),
    Many(Vec<String>),
}

impl KeyNames {
    pub fn names(&self) -> Vec<&str> {
        match self {
            KeyNames::One(k) => vec![k.as_str()],
            KeyNames::Many(ks) => ks.iter().map(String::as_str).collect(),
        }
    }
}

/// `[s3]` table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    pub endpoint: Option<String>,
    #[serde(default)]
    pub anonymous: bool,
}

/// Errors reading the config file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config: {key} = {value:?}: {reason}")]
    Value {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("config {path}: {source}")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
}

impl Config {
    /// Checks values the types cannot (durations), so a bad one fails at start.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("lock_skew", &self.lock_skew),
            ("heartbeat", &self.heartbeat),
        ] {
            if let Some(text) = value {
                crate::fmt::parse_duration(text).map_err(|reason| ConfigError::Value {
                    key,
                    value: text.clone(),
                    reason,
                })?;
            }
        }
        if let Some(theme) = &self.theme
            && !["dark", "light", "ansi", "mono"].contains(&theme.as_str())
        {
            return Err(ConfigError::Value {
                key: "theme",
                value: theme.clone(),
                reason: "not a theme (dark, light, ansi, mono)".into(),
            });
        }
        Ok(())
    }

    /// How runs are recorded: `flag` (the `--heartbeat` flag) wins over the file.
    pub fn ledger_options(&self, flag: Option<std::time::Duration>) -> crate::runs::LedgerOptions {
        let mut opts = crate::runs::LedgerOptions::default();
        if let Some(beat) = flag.or_else(|| {
            self.heartbeat
                .as_deref()
                .and_then(|h| crate::fmt::parse_duration(h).ok())
        }) {
            opts.heartbeat = beat.max(std::time::Duration::from_millis(100));
        }
        if let Some(keep) = self.keep_runs {
            opts.keep = keep.max(1);
        }
        opts
    }

    /// The lock staleness policy these settings give.
    pub fn stale_policy(&self) -> crate::lock::StalePolicy {
        let mut policy = crate::lock::StalePolicy::default();
        if let Some(skew) = self
            .lock_skew
            .as_deref()
            .and_then(|s| crate::fmt::parse_duration(s).ok())
        {
            policy.skew = skew;
        }
        policy
    }

    /// Fills [`Config::key_lines`]: `FILE line N` of each `[keys]` entry of `text`.
    pub fn locate_keys(&mut self, file: &str, text: &str) {
        self.key_lines = self
            .keys
            .iter()
            .map(|(action, spanned)| {
                let line = text[..spanned.span().start.min(text.len())]
                    .matches('\n')
                    .count()
                    + 1;
                (action.clone(), format!("{file} line {line}"))
            })
            .collect();
    }

    /// Loads `explicit` (which must exist) or `./ecops.toml` (if present).
    pub fn load(explicit: Option<&Path>) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = PathBuf::from(CONFIG_FILE);
                if !p.is_file() {
                    return Ok((Config::default(), None));
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source,
        })?;
        config.locate_keys(&path.display().to_string(), &text);
        Ok((config, Some(path)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_unknown_keys() {
        let c: Config =
            toml::from_str("base = \"s3://b/p\"\nread_only = true\n[s3]\nanonymous = true\n")
                .unwrap();
        assert_eq!(c.base.as_deref(), Some("s3://b/p"));
        assert!(c.read_only && c.s3.anonymous);
        assert!(toml::from_str::<Config>("bsae = 1").is_err());
    }
}
