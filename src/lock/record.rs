//! The lock object's JSON: earthcatalog's fields, so
//! earthcatalog reads our locks, plus ours (nonce, generation, heartbeat,
//! operation, job id, progress). Locks earthcatalog wrote have only its fields,
//! and `acquired` with or without a timezone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::stale::{Assessment, StalePolicy};

/// The lock object's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockRecord {
    pub owner: String,
    pub pid: i64,
    pub hostname: String,
    /// ISO-8601 UTC (earthcatalog may omit the offset).
    pub acquired: String,
    pub ttl_hours: f64,
    /// Unique per write: tells our write from anyone else's, even with identical content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Monotonic across acquire/steal; None for earthcatalog's locks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// Last renewal, ISO-8601 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<String>,
    /// ingest, compact or manual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Value>,
    /// When the holder first took the lock. Renewals also move `acquired`
    /// (earthcatalog judges staleness by `acquired` alone), so this keeps the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<String>,
    /// Set on a release marker: the lock is free since this time (ISO-8601 UTC).
    /// A marker keeps the generation, so the next holder's is still larger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<String>,
    /// Fields another writer added, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl LockRecord {
    /// Parses a lock object's bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let record: LockRecord = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if !(record.ttl_hours.is_finite() && record.ttl_hours > 0.0) {
            return Err(format!(
                "ttl_hours {} is not a positive number",
                record.ttl_hours
            ));
        }
        Ok(record)
    }

    /// `acquired` as a UTC instant.
    pub fn acquired_at(&self) -> Option<DateTime<Utc>> {
        crate::stac::item::parse_datetime(&self.acquired)
    }

    /// The last sign of life: `heartbeat`, else `acquired`.
    pub fn last_beat(&self) -> Option<DateTime<Utc>> {
        self.heartbeat
            .as_deref()
            .and_then(crate::stac::item::parse_datetime)
            .or_else(|| self.acquired_at())
    }

    /// The TTL as a duration.
    pub fn ttl(&self) -> chrono::Duration {
        chrono::Duration::milliseconds((self.ttl_hours * 3_600_000.0) as i64)
    }

    /// Judges the lock at `now` by the one staleness rule ([`super::stale`])
    /// with `policy`, from a one-shot read (no watch history). `local_host`
    /// is this machine's name; a holder on this host whose pid no longer
    /// exists makes the lock stale at once.
    pub fn assess(
        &self,
        now: DateTime<Utc>,
        policy: StalePolicy,
        local_host: &str,
        pid_alive: impl Fn(i64) -> bool,
    ) -> Assessment {
        super::stale::judge(self, now, policy, None, local_host, pid_alive)
    }
}

/// `now` as earthcatalog writes timestamps (ISO-8601 with a `+00:00` offset,
/// which Python's `datetime.fromisoformat` reads on every version).
pub fn iso_utc(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

impl LockRecord {
    /// True for a release marker (a free lock that remembers its last generation).
    pub fn is_released(&self) -> bool {
        self.released.is_some()
    }

    /// The marker that replaces this record on release: free, same generation,
    /// fresh nonce. Its `acquired` is the epoch and its TTL one second, so
    /// earthcatalog, which knows no markers, sees an expired lock and overrides it.
    pub fn release_marker(&self, nonce: String, now: DateTime<Utc>) -> LockRecord {
        LockRecord {
            owner: self.owner.clone(),
            pid: 0,
            hostname: self.hostname.clone(),
            acquired: iso_utc(DateTime::UNIX_EPOCH),
            ttl_hours: 1.0 / 3600.0,
            nonce: Some(nonce),
            generation: self.generation,
            heartbeat: None,
            operation: self.operation.clone(),
            job_id: self.job_id.clone(),
            progress: None,
            held_since: None,
            released: Some(iso_utc(now)),
            extra: Map::new(),
        }
    }

    /// The record as stored (one line of JSON).
    pub fn to_bytes(&self) -> bytes::Bytes {
        // A struct of strings, numbers and JSON values always serialises.
        bytes::Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// A short, stable name for exact lock content (xxh3-64, hex): what `--force`
/// takes for locks that have no generation or nonce (earthcatalog's, garbage).
pub fn fingerprint(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// This machine's host name.
pub fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

/// True when a process with this pid exists on this machine.
pub fn pid_alive(pid: i64) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::StaleReason;

    const EARTHCATALOG: &str = r#"{"owner": "backfill", "pid": 4242, "hostname": "ip-10-0-3-17",
        "acquired": "2026-11-18T03:14:15.926535+00:00", "ttl_hours": 12}"#;

    fn at(s: &str) -> DateTime<Utc> {
        crate::stac::item::parse_datetime(s).unwrap()
    }

    #[test]
    fn reads_earthcatalog_locks_with_and_without_offset() {
        let r = LockRecord::parse(EARTHCATALOG.as_bytes()).unwrap();
        assert_eq!(
            (r.owner.as_str(), r.pid, r.generation),
            ("backfill", 4242, None)
        );
        let naive = EARTHCATALOG.replace("+00:00", "");
        assert_eq!(
            LockRecord::parse(naive.as_bytes()).unwrap().acquired_at(),
            r.acquired_at()
        );
        let policy = StalePolicy::default();
        let a = r.assess(at("2026-11-18T10:00:00Z"), policy, "here", |_| true);
        assert!(!a.stale);
        // TTL 12 h plus the 5 min skew allowance.
        assert_eq!(a.stale_at, Some(at("2026-11-18T15:19:15.926535Z")));
        let a = r.assess(at("2026-11-19T00:00:00Z"), policy, "here", |_| true);
        assert_eq!(a.stale_reason, Some(StaleReason::Expired));
    }

    #[test]
    fn heartbeat_extends_and_dead_local_holder_is_stale_at_once() {
        let mut r = LockRecord::parse(EARTHCATALOG.as_bytes()).unwrap();
        let policy = StalePolicy::default();
        r.heartbeat = Some("2026-11-18T20:00:00Z".into());
        assert!(
            !r.assess(at("2026-11-19T00:00:00Z"), policy, "elsewhere", |_| false)
                .stale
        );
        r.hostname = "here".into();
        let a = r.assess(at("2026-11-19T00:00:00Z"), policy, "here", |_| false);
        assert_eq!(a.stale_reason, Some(StaleReason::HolderGone));
    }

    #[test]
    fn keeps_unknown_fields_and_rejects_garbage() {
        let with_extra =
            EARTHCATALOG.replace("\"ttl_hours\": 12", "\"ttl_hours\": 12, \"note\": \"x\"");
        let r = LockRecord::parse(with_extra.as_bytes()).unwrap();
        let back: Value = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back["note"], "x");
        assert!(
            back.get("generation").is_none(),
            "earthcatalog's shape is kept"
        );
        assert!(LockRecord::parse(b"\x00garbage").is_err());
        assert!(LockRecord::parse(EARTHCATALOG.replace("12}", "-1}").as_bytes()).is_err());
    }
}
