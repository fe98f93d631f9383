//! Per-pool metrics recorded on the outcome path: a latency histogram and outcome counters.
//! Recording is a handful of relaxed atomic adds per outcome (no lock, no allocation); readers
//! take a snapshot whenever they scrape.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::outcome::{Outcome, OutcomeKind};

/// Upper bounds of the latency buckets, in seconds (Prometheus `le`), then +Inf. From a
/// loopback answer (< 1 ms) to a stream that ran into a long deadline.
pub const LATENCY_BUCKETS_SECS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Time from submission to outcome of every notification, and how each one ended.
#[derive(Debug, Default)]
pub(crate) struct OutcomeMetrics {
    /// One slot per bound plus the +Inf slot; not cumulative (the snapshot makes them so).
    buckets: [AtomicU64; LATENCY_BUCKETS_SECS.len() + 1],
    sum_micros: AtomicU64,
    delivered: AtomicU64,
    rejected: AtomicU64,
    timeout: AtomicU64,
    failed: AtomicU64,
}

/// A consistent-enough copy of [`OutcomeMetrics`] (each field read once, relaxed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Cumulative counts per bound of [`LATENCY_BUCKETS_SECS`], then the +Inf count.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_secs: f64,
    pub latency_count: u64,
    pub delivered: u64,
    pub rejected: u64,
    pub timeout: u64,
    pub failed: u64,
}

impl OutcomeMetrics {
    pub(crate) fn record(&self, outcomes: &[Outcome]) {
        for outcome in outcomes {
            self.observe(outcome.latency);
            let counter = match outcome.kind {
                OutcomeKind::Delivered => &self.delivered,
                OutcomeKind::Rejected => &self.rejected,
                OutcomeKind::Timeout => &self.timeout,
                OutcomeKind::Failed => &self.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn observe(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        let slot = LATENCY_BUCKETS_SECS
            .iter()
            .position(|&bound| secs <= bound)
            .unwrap_or(LATENCY_BUCKETS_SECS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut running = 0;
        let latency_buckets: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| {
                running += get(b);
                running
            })
            .collect();
        MetricsSnapshot {
            latency_count: running,
            latency_buckets,
            latency_sum_secs: Duration::from_micros(get(&self.sum_micros)).as_secs_f64(),
            delivered: get(&self.delivered),
            rejected: get(&self.rejected),
            timeout: get(&self.timeout),
            failed: get(&self.failed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(kind: OutcomeKind, millis: u64) -> Outcome {
        let mut o = Outcome::empty(1, "t".into(), kind);
        o.latency = Duration::from_millis(millis);
        o
    }

    #[test]
    fn buckets_are_cumulative_and_counts_split_by_kind() {
        let m = OutcomeMetrics::default();
        m.record(&[
            outcome(OutcomeKind::Delivered, 0),
            outcome(OutcomeKind::Delivered, 3),
            outcome(OutcomeKind::Rejected, 40),
            outcome(OutcomeKind::Timeout, 10_000),
            outcome(OutcomeKind::Failed, 500_000),
        ]);
        let s = m.snapshot();
        assert_eq!(s.latency_count, 5);
        assert_eq!(s.latency_buckets.len(), LATENCY_BUCKETS_SECS.len() + 1);
        assert_eq!(s.latency_buckets[0], 1); // <= 1 ms
        assert_eq!(s.latency_buckets[2], 2); // <= 5 ms
        assert_eq!(s.latency_buckets[5], 3); // <= 50 ms
        assert_eq!(s.latency_buckets[12], 4); // <= 10 s (a boundary is inclusive)
        assert_eq!(s.latency_buckets[15], 4); // <= 120 s
        assert_eq!(s.latency_buckets[16], 5); // +Inf
        assert!((s.latency_sum_secs - 510.043).abs() < 1e-6);
        assert_eq!((s.delivered, s.rejected, s.timeout, s.failed), (2, 1, 1, 1));
    }
}
