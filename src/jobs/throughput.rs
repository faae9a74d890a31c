//! Throughput history: once a second the console adds up the counters of
//! every ingest job (finished ones included, so the sums only grow) and keeps
//! the per-second rates of the last few minutes for the sparklines.

use std::collections::VecDeque;
use std::time::Instant;

/// Counters summed over jobs at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub items: u64,
    pub rows: u64,
    pub bytes: u64,
    pub failed: u64,
}

/// Rates over one sampling interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    pub items: f64,
    pub rows: f64,
    /// Bytes of item JSON fetched per second.
    pub bytes: f64,
    pub failed: f64,
}

/// The rate history.
#[derive(Debug, Clone)]
pub struct Throughput {
    capacity: usize,
    last: Option<(Instant, Totals)>,
    history: VecDeque<Rates>,
}

impl Throughput {
    /// Keeps the last `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(2),
            last: None,
            history: VecDeque::new(),
        }
    }

    /// Records `totals` at `now`; the first call only sets the baseline.
    /// Totals that went down (cannot happen with monotone job counters) count as zero.
    pub fn observe(&mut self, now: Instant, totals: Totals) {
        if let Some((t0, prev)) = self.last {
            let dt = now.saturating_duration_since(t0).as_secs_f64();
            if dt <= 0.0 {
                return;
            }
            let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / dt;
            self.history.push_back(Rates {
                items: rate(prev.items, totals.items),
                rows: rate(prev.rows, totals.rows),
                bytes: rate(prev.bytes, totals.bytes),
                failed: rate(prev.failed, totals.failed),
            });
            while self.history.len() > self.capacity {
                self.history.pop_front();
            }
        }
        self.last = Some((now, totals));
    }

    /// The newest rates (zero before two samples).
    pub fn current(&self) -> Rates {
        self.history.back().copied().unwrap_or_default()
    }

    /// Mean rates over the samples in which anything happened (idle seconds
    /// between jobs would otherwise drag the average down).
    pub fn average(&self) -> Rates {
        let active: Vec<&Rates> = self
            .history
            .iter()
            .filter(|r| r.items > 0.0 || r.rows > 0.0 || r.failed > 0.0)
            .collect();
        if active.is_empty() {
            return Rates::default();
        }
        let n = active.len() as f64;
        Rates {
            items: active.iter().map(|r| r.items).sum::<f64>() / n,
            rows: active.iter().map(|r| r.rows).sum::<f64>() / n,
            bytes: active.iter().map(|r| r.bytes).sum::<f64>() / n,
            failed: active.iter().map(|r| r.failed).sum::<f64>() / n,
        }
    }

    /// The last `n` values of one series, oldest first, as sparkline data.
    pub fn series(&self, n: usize, pick: impl Fn(&Rates) -> f64) -> Vec<u64> {
        let skip = self.history.len().saturating_sub(n);
        self.history
            .iter()
            .skip(skip)
            .map(|r| pick(r).round() as u64)
            .collect()
    }

    /// The sum totals last observed.
    pub fn totals(&self) -> Totals {
        self.last.map(|(_, t)| t).unwrap_or_default()
    }

    pub fn samples(&self) -> usize {
        self.history.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rates_come_from_deltas_and_average_skips_idle_seconds() {
        let mut t = Throughput::new(10);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let tot = |items, rows| Totals {
            items,
            rows,
            bytes: items * 1000,
            failed: 0,
        };
        t.observe(at(0), tot(0, 0));
        t.observe(at(1), tot(100, 150));
        t.observe(at(2), tot(100, 150)); // idle
        t.observe(at(4), tot(500, 750));
        assert_eq!(t.current().items, 200.0);
        assert_eq!(t.average().items, 150.0);
        assert_eq!(t.series(10, |r| r.rows), vec![150, 0, 300]);
        assert_eq!(t.series(1, |r| r.bytes), vec![200_000]);
    }
}
