//! Per-task cycle statistics: wake latency, execution time and period in HDR
//! histograms, plus cycle and overrun counts.
//!
//! Each quantity also keeps its exact minimum, maximum and sum beside the histogram, so
//! that what the histogram cannot know is not reported from its buckets: the maximum
//! and the mean are exact, percentiles never leave the recorded range, and a quantity
//! that never varies (a virtual-time period of exactly 10 ms) reads exactly, not as the
//! middle of its bucket (9998.3 us with 3 significant digits).
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

/// One quantity: its HDR histogram (for percentiles) and its exact extremes and sum.
struct Quantity {
    hist: Histogram<u64>,
    min: u64,
    max: u64,
    sum: u128,
}

impl Quantity {
    fn new() -> Self {
        Quantity {
            hist: Histogram::new_with_bounds(1, MAX_NS, 3).expect("valid histogram bounds"),
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    /// Scan thread (under the lock): no allocation, the histogram has its buckets.
    fn record(&mut self, v: u64) {
        self.hist.saturating_record(v.clamp(1, MAX_NS));
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += u128::from(v);
    }

    fn reset(&mut self) {
        self.hist.reset();
        self.min = u64::MAX;
        self.max = 0;
        self.sum = 0;
    }

    fn percentiles(&self) -> Percentiles {
        let h = &self.hist;
        if h.is_empty() {
            return Percentiles::default();
        }
        // The middle of the HDR bucket (3 significant digits) rather than its top, kept
        // inside the exact range: with min == max every figure is the exact value.
        let q = |x: f64| {
            h.median_equivalent(h.value_at_quantile(x))
                .clamp(self.min, self.max)
        };
        let mean = (self.sum + u128::from(h.len()) / 2) / u128::from(h.len());
        Percentiles {
            p50: q(0.5),
            p99: q(0.99),
            p999: q(0.999),
            max: self.max,
            mean: u64::try_from(mean).unwrap_or(u64::MAX),
            count: h.len(),
        }
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
    latency: Quantity,
    exec: Quantity,
    period: Quantity,
    cycles: u64,
    overruns: u64,
    missed: u64,
    last_exec_ns: u64,
}

impl Inner {
    fn record(&mut self, s: &Sample) {
        if let Some(l) = s.latency {
            self.latency.record(l);
        }
        self.exec.record(s.exec);
        if s.period > 0 {
            self.period.record(s.period);
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
    let shared = Arc::new(Mutex::new(Inner {
        latency: Quantity::new(),
        exec: Quantity::new(),
        period: Quantity::new(),
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
            latency: inner.latency.percentiles(),
            exec: inner.exec.percentiles(),
            period: inner.period.percentiles(),
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
    fn a_value_that_never_varies_is_reported_exactly() {
        let (mut rec, rd) = task_stats();
        for _ in 0..500 {
            rec.record(None, 123_457, 10_000_000, false, 0);
        }
        let p = rd.figures().period;
        assert_eq!(
            (p.p50, p.p99, p.p999, p.max, p.mean),
            (10_000_000, 10_000_000, 10_000_000, 10_000_000, 10_000_000)
        );
        let e = rd.figures().exec;
        assert_eq!((e.p50, e.max, e.mean), (123_457, 123_457, 123_457));
    }

    #[test]
    fn percentiles_stay_inside_the_recorded_range_and_max_and_mean_are_exact() {
        let (mut rec, rd) = task_stats();
        for i in 0..1000u64 {
            rec.record(Some(9_999_000 + i % 3), 1, 10_000_000 + i % 2, false, 0);
        }
        let f = rd.figures();
        for p in [f.latency.p50, f.latency.p99, f.latency.p999, f.latency.max] {
            assert!((9_999_000..=9_999_002).contains(&p), "{:?}", f.latency);
        }
        assert_eq!(f.latency.max, 9_999_002);
        assert_eq!(f.period.max, 10_000_001);
        // 500 periods of each value: the mean 10_000_000.5 rounds half up.
        assert_eq!(f.period.mean, 10_000_001);
    }

    #[test]
    fn reset_forgets_the_extremes() {
        let (mut rec, rd) = task_stats();
        rec.record(Some(5), 5, 0, false, 0);
        rd.reset();
        rec.record(Some(7), 7, 0, false, 0);
        assert_eq!(rd.figures().latency.p50, 7);
        assert_eq!(rd.figures().latency.max, 7);
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
