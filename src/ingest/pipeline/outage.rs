//! Telling a source outage from bad items: failures that say the source
//! itself is unreachable (connection refused, DNS, TLS, access denied) are
//! held back while they come in a row. An answer from the source *after*
//! the first of them ends the run: they were bad items after all and become
//! dead letters. Answers fetched before it (units are fetched concurrently
//! but counted in inventory order) prove nothing and are held with them. A
//! long enough run is an outage: the job stops at its last commit without
//! dead-lettering the items it never reached, and the rerun resumes there.

use std::time::Instant;

use super::unit::Outcome;

/// Consecutive source-level failures that make an outage.
pub const OUTAGE_RUN: usize = 25;

/// The source is unreachable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub kind: &'static str,
    pub failures: usize,
    pub first_position: u64,
    pub first_key: String,
}

impl std::error::Error for Outage {}

impl std::fmt::Display for Outage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "items source unreachable: {} ({} items in a row failed, from {} at inventory position {}); \
             stopped after the last commit without dead-lettering them — run the same command when the source is back",
            self.kind, self.failures, self.first_key, self.first_position
        )
    }
}

/// Holds back a run of source-level failures (and what comes with them)
/// until it is clear what they are. `T` travels with each outcome (the
/// ingest's unit rows).
pub(super) struct OutageWatch<T> {
    held: Vec<(Outcome, T)>,
    failures: usize,
    /// When the first held failure's fetch ended.
    since: Option<Instant>,
}

impl<T> Default for OutageWatch<T> {
    fn default() -> Self {
        Self {
            held: Vec::new(),
            failures: 0,
            since: None,
        }
    }
}

impl<T> OutageWatch<T> {
    /// Takes one outcome; returns the outcomes that may be counted now, in
    /// the order fed, or the outage once the run is long enough.
    pub fn feed(&mut self, outcome: Outcome, with: T) -> Result<Vec<(Outcome, T)>, Outage> {
        if let Outcome::Failed {
            outage: Some(kind),
            at,
            ..
        } = &outcome
        {
            let kind = *kind;
            self.since = self.since.or(*at).or_else(|| Some(Instant::now()));
            self.held.push((outcome, with));
            self.failures += 1;
            if self.failures >= OUTAGE_RUN {
                return Err(self.outage(kind));
            }
            return Ok(Vec::new());
        }
        if self.held.is_empty() || self.answered_since(&outcome) {
            let mut out = self.release();
            out.push((outcome, with));
            return Ok(out);
        }
        self.held.push((outcome, with));
        Ok(Vec::new())
    }

    /// The source answered this outcome's fetch after the held failures began.
    fn answered_since(&self, outcome: &Outcome) -> bool {
        let at = match outcome {
            Outcome::Row { at, .. } | Outcome::Failed { at, .. } => *at,
        };
        matches!((at, self.since), (Some(at), Some(since)) if at > since)
    }

    /// At the end of the input: what is held was bad items after all.
    pub fn release(&mut self) -> Vec<(Outcome, T)> {
        self.failures = 0;
        self.since = None;
        std::mem::take(&mut self.held)
    }

    fn outage(&self, kind: &'static str) -> Outage {
        let first = self.held.iter().find_map(|(o, _)| match o {
            Outcome::Failed {
                letter,
                outage: Some(_),
                ..
            } => Some((
                letter.position,
                letter.key.clone().unwrap_or_else(|| "?".into()),
            )),
            _ => None,
        });
        let (first_position, first_key) = first.unwrap_or((0, "?".into()));
        Outage {
            kind,
            failures: self.failures,
            first_position,
            first_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::dead_letter::{DeadLetter, Stage};
    use std::time::Duration;

    fn failed(position: u64, outage: Option<&'static str>, at: Instant) -> Outcome {
        Outcome::Failed {
            letter: DeadLetter {
                job_id: "job".into(),
                position,
                bucket: None,
                key: Some(format!("k{position}")),
                uri: None,
                stage: Stage::Fetch,
                reason: "boom".into(),
                at: chrono::Utc::now(),
            },
            listed: true,
            bytes: 0,
            outage,
            at: Some(at),
        }
    }

    fn ok(position: u64, at: Instant) -> Outcome {
        Outcome::Row {
            position,
            start: 0,
            len: 1,
            bytes: 10,
            no_geometry: false,
            outside: false,
            at: Some(at),
        }
    }

    fn positions(outcomes: &[(Outcome, ())]) -> Vec<u64> {
        outcomes
            .iter()
            .map(|(o, _)| match o {
                Outcome::Row { position, .. } => *position,
                Outcome::Failed { letter, .. } => letter.position,
            })
            .collect()
    }

    #[test]
    fn a_lone_source_failure_among_later_answers_is_a_dead_letter() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(5);
        let mut watch = OutageWatch::default();
        let held = watch
            .feed(failed(0, Some("connection refused"), t0), ())
            .unwrap();
        assert!(held.is_empty());
        let released = watch.feed(ok(1, later), ()).unwrap();
        assert_eq!(
            positions(&released),
            vec![0, 1],
            "held failure released in order"
        );
        let plain = watch.feed(failed(2, None, later), ()).unwrap();
        assert_eq!(
            positions(&plain),
            vec![2],
            "ordinary failures pass straight through"
        );
    }

    #[test]
    fn answers_fetched_before_the_failures_prove_nothing() {
        let t0 = Instant::now();
        let earlier = t0;
        let failed_at = t0 + Duration::from_millis(5);
        let mut watch = OutageWatch::default();
        watch
            .feed(failed(0, Some("connection refused"), failed_at), ())
            .unwrap();
        // Fetched before the failure (another unit, counted later): held too.
        assert!(watch.feed(ok(1, earlier), ()).unwrap().is_empty());
        for p in 2..OUTAGE_RUN as u64 {
            watch
                .feed(failed(p, Some("connection refused"), failed_at), ())
                .unwrap();
        }
        let outage = watch
            .feed(failed(99, Some("connection refused"), failed_at), ())
            .unwrap_err();
        assert_eq!(outage.failures, OUTAGE_RUN);
        assert_eq!(outage.first_position, 0);
    }

    #[test]
    fn a_run_of_source_failures_is_an_outage_naming_the_first() {
        let t0 = Instant::now();
        let mut watch = OutageWatch::default();
        for p in 0..OUTAGE_RUN as u64 - 1 {
            assert!(
                watch
                    .feed(failed(10 + p, Some("DNS"), t0), ())
                    .unwrap()
                    .is_empty()
            );
        }
        let outage = watch.feed(failed(99, Some("DNS"), t0), ()).unwrap_err();
        assert_eq!(outage.kind, "DNS");
        assert_eq!(outage.failures, OUTAGE_RUN);
        assert_eq!(
            (outage.first_position, outage.first_key.as_str()),
            (10, "k10")
        );
        assert!(
            outage
                .to_string()
                .starts_with("items source unreachable: DNS")
        );
    }

    #[test]
    fn what_is_held_at_the_end_of_the_input_is_released() {
        let t0 = Instant::now();
        let mut watch = OutageWatch::default();
        watch.feed(failed(5, Some("TLS"), t0), ()).unwrap();
        watch.feed(failed(6, Some("TLS"), t0), ()).unwrap();
        assert_eq!(positions(&watch.release()), vec![5, 6]);
        assert!(watch.release().is_empty());
    }
}
