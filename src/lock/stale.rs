//! The one staleness rule, for every reader of the lock (the CLI's one-shot
//! commands, the console's watcher, a job taking over a crashed run's lock).
//!
//! A lock is **stale** when any of these holds:
//! 1. its holder is a process of this host that no longer exists;
//! 2. its own timestamps (heartbeat, else `acquired`) are older than its TTL
//!    plus a skew allowance ([`StalePolicy::skew`], default 5 min) on our clock;
//! 3. we have watched the very same object stay unchanged for a whole TTL on
//!    our monotonic clock — the path that no clock skew can fake, for holders
//!    whose clocks we distrust.
//!
//! [`judge`] applies the rule and says in plain words which part made the
//! lock stale, or when it becomes stealable.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::record::LockRecord;
use crate::fmt::span;

/// Default skew allowance between the holder's clock and ours.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(5 * 60);

/// How generous the timestamp rule is with other machines' clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StalePolicy {
    /// Added to the TTL before a lock counts as expired by its own timestamps.
    pub skew: Duration,
}

impl Default for StalePolicy {
    fn default() -> Self {
        Self { skew: DEFAULT_SKEW }
    }
}

/// Why a lock counts as stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StaleReason {
    /// Its heartbeat (or `acquired`) is older than its TTL plus the skew allowance.
    Expired,
    /// Held by a process of this host that no longer exists.
    HolderGone,
    /// Seen unchanged for a whole TTL on our clock.
    UnchangedUnderWatch,
}

/// How long we have watched the same lock object, unchanged.
#[derive(Debug, Clone, Copy)]
pub struct Watch {
    /// When we first saw it (our wall clock, for messages).
    pub since: DateTime<Utc>,
    /// For how long (our monotonic clock).
    pub unchanged_for: Duration,
}

/// A lock judged at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// Seconds since the last heartbeat (or `acquired`), on our clock.
    pub age_seconds: Option<f64>,
    /// When it becomes stale if nothing changes: the earlier of its own
    /// timestamps' expiry (TTL + skew) and a whole TTL under our watch.
    pub stale_at: Option<DateTime<Utc>>,
    pub stale: bool,
    pub stale_reason: Option<StaleReason>,
    /// The skew allowance applied.
    pub skew_seconds: f64,
    /// How long it has been seen unchanged (None: not watched, a one-shot read).
    pub watched_seconds: Option<f64>,
    /// The verdict in plain words: which rule made it stale ("expired 322 h
    /// ago by its own clock …"), or for a live lock its heartbeat and when it
    /// becomes stale ("heartbeat 20 s ago by its own clock (…); becomes stale at …").
    pub why: String,
}

/// Judges `record` at `now` by the rule in the module docs. `watch` is how
/// long the caller has seen this exact object unchanged (None for a one-shot
/// read); `local_host` is this machine's name and `pid_alive` tells whether
/// one of its processes exists.
pub fn judge(
    record: &LockRecord,
    now: DateTime<Utc>,
    policy: StalePolicy,
    watch: Option<Watch>,
    local_host: &str,
    pid_alive: impl Fn(i64) -> bool,
) -> Assessment {
    let ttl = record.ttl().to_std().unwrap_or(Duration::ZERO);
    let skew = chrono::Duration::from_std(policy.skew).unwrap_or_default();
    let beat = record.last_beat();
    let age = beat.map(|b| now - b);
    let expires_at = beat.map(|b| b + record.ttl() + skew);
    let watch_at = watch.and_then(|w| chrono::Duration::from_std(ttl).ok().map(|t| w.since + t));
    let stale_at = match (expires_at, watch_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let holder_gone = record.hostname == local_host && record.pid > 0 && !pid_alive(record.pid);
    let expired = expires_at.is_some_and(|at| now > at);
    let unchanged = watch.is_some_and(|w| w.unchanged_for >= ttl);
    let stale_reason = if holder_gone {
        Some(StaleReason::HolderGone)
    } else if expired {
        Some(StaleReason::Expired)
    } else if unchanged {
        Some(StaleReason::UnchangedUnderWatch)
    } else {
        None
    };
    let why = explain(
        record,
        stale_reason.as_ref(),
        age,
        ttl,
        policy,
        watch,
        stale_at,
    );
    Assessment {
        age_seconds: age.map(|a| a.num_milliseconds() as f64 / 1000.0),
        stale_at,
        stale: stale_reason.is_some(),
        stale_reason,
        skew_seconds: policy.skew.as_secs_f64(),
        watched_seconds: watch.map(|w| w.unchanged_for.as_secs_f64()),
        why,
    }
}

/// The verdict in words, e.g. "expired 322 h ago by its own clock (TTL 12 h,
/// skew allowance 5 min); unchanged for 3 s under our watch".
fn explain(
    record: &LockRecord,
    reason: Option<&StaleReason>,
    age: Option<chrono::Duration>,
    ttl: Duration,
    policy: StalePolicy,
    watch: Option<Watch>,
    stale_at: Option<DateTime<Utc>>,
) -> String {
    let ttl_s = ttl.as_secs_f64();
    let skew_s = policy.skew.as_secs_f64();
    let age_s = age.map(|a| a.num_milliseconds() as f64 / 1000.0);
    let watched = watch
        .map(|w| {
            format!(
                "; unchanged for {} under our watch",
                span(w.unchanged_for.as_secs_f64())
            )
        })
        .unwrap_or_default();
    match (reason, age_s) {
        (Some(StaleReason::HolderGone), _) => format!(
            "its holder, process {} on this host, no longer exists{watched}",
            record.pid
        ),
        (Some(StaleReason::Expired), Some(a)) => format!(
            "expired {} ago by its own clock (TTL {}, skew allowance {}){watched}",
            span(a - ttl_s),
            span(ttl_s),
            span(skew_s)
        ),
        (Some(StaleReason::UnchangedUnderWatch), _) => format!(
            "unchanged for {} under our watch, a whole TTL ({}){}",
            span(watch.map_or(0.0, |w| w.unchanged_for.as_secs_f64())),
            span(ttl_s),
            age_s
                .map(|a| format!("; its own clock says {} since its last heartbeat", span(a)))
                .unwrap_or_default()
        ),
        (Some(StaleReason::Expired), None) | (None, _) => {
            let beat = age_s.map_or("its timestamps are unreadable".to_string(), |a| {
                format!("heartbeat {} ago by its own clock", span(a))
            });
            let when = stale_at.map_or(String::new(), |t| {
                format!(
                    "; becomes stale at {} if it stays unchanged",
                    t.format("%Y-%m-%d %H:%M:%S UTC")
                )
            });
            format!(
                "{beat} (TTL {}, skew allowance {}){watched}{when}",
                span(ttl_s),
                span(skew_s)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        crate::stac::item::parse_datetime(s).unwrap()
    }

    fn earthcatalog_lock() -> LockRecord {
        LockRecord::parse(
            br#"{"owner": "backfill", "pid": 4242, "hostname": "ip-10-0-3-17",
                "acquired": "2026-11-18T03:14:15+00:00", "ttl_hours": 12}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_lock_dead_for_weeks_is_stale_at_once_and_says_why() {
        let a = judge(
            &earthcatalog_lock(),
            at("2026-12-02T01:14:15Z"),
            StalePolicy::default(),
            Some(Watch {
                since: at("2026-12-02T01:14:12Z"),
                unchanged_for: Duration::from_secs(3),
            }),
            "here",
            |_| true,
        );
        assert!(a.stale);
        assert_eq!(a.stale_reason, Some(StaleReason::Expired));
        assert_eq!(
            a.why,
            "expired 322 h ago by its own clock (TTL 12 h, skew allowance 5 min); \
             unchanged for 3 s under our watch"
        );
    }

    #[test]
    fn within_the_skew_allowance_a_lock_is_refused_with_the_time_it_becomes_stealable() {
        let mut r = earthcatalog_lock();
        r.heartbeat = Some("2026-12-02T00:00:00Z".into());
        // One minute past the TTL, four before the allowance runs out.
        let a = judge(
            &r,
            at("2026-12-02T12:01:00Z"),
            StalePolicy::default(),
            None,
            "here",
            |_| true,
        );
        assert!(!a.stale, "{}", a.why);
        assert_eq!(a.stale_at, Some(at("2026-12-02T12:05:00Z")));
        assert!(
            a.why.contains("becomes stale at 2026-12-02 12:05:00 UTC"),
            "{}",
            a.why
        );
        let strict = StalePolicy {
            skew: Duration::ZERO,
        };
        assert!(
            judge(&r, at("2026-12-02T12:01:00Z"), strict, None, "here", |_| {
                true
            })
            .stale
        );
    }

    #[test]
    fn a_whole_ttl_unchanged_under_watch_is_stale_whatever_its_clock_says() {
        let mut r = earthcatalog_lock();
        // The holder's clock runs a day ahead: its heartbeat looks fresh.
        r.heartbeat = Some("2026-12-03T12:00:00Z".into());
        let watch = |hours: u64| Watch {
            since: at("2026-12-02T00:00:00Z"),
            unchanged_for: Duration::from_secs(hours * 3600),
        };
        let now = at("2026-12-02T12:00:00Z");
        let early = judge(
            &r,
            now,
            StalePolicy::default(),
            Some(watch(11)),
            "h",
            |_| true,
        );
        assert!(!early.stale);
        assert_eq!(early.stale_at, Some(at("2026-12-02T12:00:00Z")));
        let late = judge(
            &r,
            now,
            StalePolicy::default(),
            Some(watch(12)),
            "h",
            |_| true,
        );
        assert_eq!(late.stale_reason, Some(StaleReason::UnchangedUnderWatch));
        assert!(
            late.why.starts_with("unchanged for 12 h under our watch"),
            "{}",
            late.why
        );
    }

    #[test]
    fn a_dead_local_holder_is_stale_at_once() {
        let mut r = earthcatalog_lock();
        r.hostname = "here".into();
        r.heartbeat = Some("2026-12-02T11:59:00Z".into());
        let a = judge(
            &r,
            at("2026-12-02T12:00:00Z"),
            StalePolicy::default(),
            None,
            "here",
            |_| false,
        );
        assert_eq!(a.stale_reason, Some(StaleReason::HolderGone));
        assert!(
            a.why
                .contains("process 4242 on this host, no longer exists")
        );
    }
}
