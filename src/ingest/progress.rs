//! Progress of an ingest job, published through a `tokio::sync::watch`
//! channel: the TUI's throughput and jobs panes and the headless progress
//! bar read the same snapshots. The final snapshot is the job's summary.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The phase a job is in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Starting,
    Running,
    Done,
    Cancelled,
    Failed,
}

/// Counters and rates of one ingest job (also its JSON summary).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestProgress {
    pub job_id: String,
    /// The run ledger's id of this run (set when the run is recorded).
    pub run: Option<String>,
    /// The chunk being filled, counted over the whole job (resumes included).
    pub chunk: u64,
    pub phase: Phase,
    /// Items listed by the inventory after filters, in this run.
    pub items: u64,
    pub fetched: u64,
    /// Items (and unreadable inventory rows) dead-lettered in this run.
    pub failed: u64,
    /// Rows written (an item touching 3 cells is 3 rows).
    pub rows: u64,
    /// Rows built by fan-out so far; they are written at their chunk's
    /// commit, so this moves smoothly while `rows` moves in steps.
    pub rows_built: u64,
    pub files: u64,
    pub commits: u64,
    /// Commit attempts retried after losing to another writer or failing unclearly.
    pub commit_retries: u64,
    /// Commits that reported an error but had landed (settled by reading back).
    pub ambiguous_commits: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Items without geometry (written to `__none__`).
    pub no_geometry: u64,
    /// Items whose footprint touches no region of a GeoJSON grid (written to `__outside__`).
    pub outside_regions: u64,
    /// Inventory rows dropped before fetching because the hash index holds their id (`--skip-known`).
    pub skipped_known: u64,
    pub skipped_suffix: u64,
    pub skipped_since: u64,
    /// Rows kept by `--since` only because they have no last_modified_date.
    pub since_unknown: u64,
    /// Inventory position of the checkpoint this run started from.
    pub resumed_from: u64,
    /// Inventory position committed so far.
    pub position: u64,
    /// True when the job's last chunk is committed (now or earlier).
    pub complete: bool,
    /// True when the job had completed before this run (nothing was done).
    pub already_complete: bool,
    pub seconds: f64,
    /// Seconds until the last item was fetched and parsed — before the last
    /// chunk's files are written and committed (set at the end of a run).
    pub fetch_seconds: Option<f64>,
    /// Items per second over the last few seconds.
    pub items_per_second: f64,
    /// Share of the inventory read (bytes), when its size is known.
    pub inventory_fraction: Option<f64>,
    pub eta_seconds: Option<f64>,
    pub snapshot_id: Option<i64>,
    pub dead_letters: Option<String>,
    pub error: Option<String>,
    /// Peak resident memory of the process, in the final summary.
    pub peak_rss_bytes: Option<u64>,
}

/// A sliding window of (time, items) samples for the current rate.
#[derive(Debug)]
pub struct RateWindow {
    window: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl RateWindow {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Records the running total `count` at `now` and returns the rate per second.
    pub fn observe(&mut self, now: Instant, count: u64) -> f64 {
        self.samples.push_back((now, count));
        while let Some(&(t, _)) = self.samples.front() {
            if now.duration_since(t) > self.window && self.samples.len() > 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
        match (self.samples.front(), self.samples.back()) {
            (Some(&(t0, c0)), Some(&(t1, c1))) if t1 > t0 => {
                (c1.saturating_sub(c0)) as f64 / t1.duration_since(t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_follows_the_recent_window() {
        let mut w = RateWindow::new(Duration::from_secs(5));
        let t0 = Instant::now();
        w.observe(t0, 0);
        let r = w.observe(t0 + Duration::from_secs(2), 200);
        assert!((r - 100.0).abs() < 1e-6);
        // A stall: the rate falls as old samples leave the window.
        w.observe(t0 + Duration::from_secs(10), 200);
        let r = w.observe(t0 + Duration::from_secs(12), 200);
        assert!(r < 50.0, "{r}");
    }
}
