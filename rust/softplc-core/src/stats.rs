//! Per-task cycle statistics: wake latency, execution time and period in HDR
//! histograms, plus cycle and overrun counts.
//!
//! The scan thread records with `try_lock`: if a reader holds the lock at that moment,
//! the sample goes into a small fixed array and is folded in on the next cycle, so the
//! scan never waits and never allocates. Readers take the lock only to copy figures.

use std::sync::{Arc, Mutex};

use hdrhistogram::Histogram;

/// Highest value the histograms track exactly (10 s); larger values saturate.
const MAX_NS: u64 = 10_000_000_000;
const PENDING: usize = 64;

/// p50 / p99 / p99.9 / max of one quantity, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
    /// Mean (rounded).
    pub mean: u64,
    /// Samples.
    pub count: u64,
}

fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    // Report the middle of each HDR bucket (3 significant digits) rather than its top.
    let q = |x: f64| h.median_equivalent(h.value_at_quantile(x));
    Percentiles {
        p50: q(0.5),
        p99: q(0.99),
        p999: q(0.999),
        max: h.median_equivalent(h.max()),
        mean: h.mean().round() as u64,
        count: h.len(),
    }
}

/// A copy of a task's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskFigures {
    /// Cycles run.
    pub cycles: u64,
    /// Overruns counted.
    pub overruns: u64,
    /// Cycles dropped by the Skip policy.
    pub missed: u64,
    /// Wake latency (actual start minus scheduled start).
    pub latency: Percentiles,
    /// Execution time of read-execute-write.
    pub exec: Percentiles,
    /// Time between consecutive actual starts.
    pub period: Percentiles,
    /// Execution time of the last cycle.
    pub last_exec_ns: u64,
}

struct Inner {
    latency: Histogram<u64>,
    exec: Histogram<u64>,
    period: Histogram<u64>,
    cycles: u64,
    overruns: u64,
    missed: u64,
    last_exec_ns: u64,
}

impl Inner {
    fn record(&mut self, s: &Sample) {
        if let Some(l) = s.latency {
            self.latency.saturating_record(l.clamp(1, MAX_NS));
        }
        self.exec.saturating_record(s.exec.clamp(1, MAX_NS));
        if s.period > 0 {
            self.period.saturating_record(s.period.clamp(1, MAX_NS));
        }
        self.cycles += 1;
        self.overruns += s.overrun as u64;
        self.missed += s.missed;
        self.last_exec_ns = s.exec;
    }
}

#[derive(Clone, Copy, Default)]
struct Sample {
    latency: Option<u64>,
    exec: u64,
    period: u64,
    overrun: bool,
    missed: u64,
}

/// The scan thread's side: records samples.
pub struct StatsRecorder {
    shared: Arc<Mutex<Inner>>,
    pending: [Sample; PENDING],
    n_pending: usize,
}

/// The readers' side: cheap to clone, readable from any thread.
#[derive(Clone)]
pub struct StatsReader {
    shared: Arc<Mutex<Inner>>,
}

/// A recorder/reader pair for one task.
pub fn task_stats() -> (StatsRecorder, StatsReader) {
    let h = || Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds");
    let shared = Arc::new(Mutex::new(Inner {
        latency: h(),
        exec: h(),
        period: h(),
        cycles: 0,
        overruns: 0,
        missed: 0,
        last_exec_ns: 0,
    }));
    (
        StatsRecorder {
            shared: shared.clone(),
            pending: [Sample::default(); PENDING],
            n_pending: 0,
        },
        StatsReader { shared },
    )
}

impl StatsRecorder {
    /// Records one cycle. Scan thread: no allocation, never waits. `period` 0 means
    /// "no previous cycle"; `latency` None means "not measured" (virtual time).
    pub fn record(
        &mut self,
        latency: Option<u64>,
        exec: u64,
        period: u64,
        overrun: bool,
        missed: u64,
    ) {
        let s = Sample {
            latency,
            exec,
            period,
            overrun,
            missed,
        };
        match self.shared.try_lock() {
            Ok(mut inner) => {
                for p in &self.pending[..self.n_pending] {
                    inner.record(p);
                }
                self.n_pending = 0;
                inner.record(&s);
            }
            Err(_) => {
                if self.n_pending < PENDING {
                    self.pending[self.n_pending] = s;
                    self.n_pending += 1;
                }
            }
        }
    }
}

impl StatsRecorder {
    /// Folds in samples left pending by a busy reader. Waits for the lock: call it
    /// only off the hot path (when the scan ends).
    pub fn flush(&mut self) {
        let mut inner = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        for p in &self.pending[..self.n_pending] {
            inner.record(p);
        }
        self.n_pending = 0;
    }
}

impl StatsReader {
    /// Copies the current figures.
    pub fn figures(&self) -> TaskFigures {
        let inner = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        TaskFigures {
            cycles: inner.cycles,
            overruns: inner.overruns,
            missed: inner.missed,
            latency: percentiles(&inner.latency),
            exec: percentiles(&inner.exec),
            period: percentiles(&inner.period),
            last_exec_ns: inner.last_exec_ns,
        }
    }

    /// Clears every figure.
    pub fn reset(&self) {
        let mut inner = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        inner.latency.reset();
        inner.exec.reset();
        inner.period.reset();
        inner.cycles = 0;
        inner.overruns = 0;
        inner.missed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_follow_the_recorded_distribution() {
        let (mut rec, rd) = task_stats();
        for i in 1..=1000u64 {
            rec.record(Some(i * 1000), 10_000, 1_000_000, i == 1000, 0);
        }
        let f = rd.figures();
        assert_eq!((f.cycles, f.overruns), (1000, 1));
        let within = |a: u64, b: u64| (a as f64 - b as f64).abs() / b as f64 <= 0.001;
        assert!(within(f.latency.p50, 500_000), "{:?}", f.latency);
        assert!(within(f.latency.p99, 990_000), "{:?}", f.latency);
        assert!(within(f.latency.max, 1_000_000), "{:?}", f.latency);
    }

    #[test]
    fn flush_folds_in_samples_left_pending_by_a_busy_reader() {
        let (mut rec, rd) = task_stats();
        {
            let _guard = rd.shared.lock().unwrap();
            rec.record(Some(5), 5, 0, false, 0);
        }
        rec.flush();
        assert_eq!(rd.figures().cycles, 1);
    }

    #[test]
    fn samples_recorded_while_a_reader_holds_the_lock_are_not_lost() {
        let (mut rec, rd) = task_stats();
        {
            let _guard = rd.shared.lock().unwrap();
            rec.record(Some(5), 5, 0, false, 0);
            rec.record(Some(5), 5, 0, false, 0);
        }
        rec.record(Some(5), 5, 0, false, 0);
        assert_eq!(rd.figures().cycles, 3);
    }
}
