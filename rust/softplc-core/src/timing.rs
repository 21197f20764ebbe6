//! Cycle timing as pure functions over times handed in: tick alignment, overrun
//! policies and the watchdog. Nothing here reads a clock or sleeps, so every rule is
//! unit-tested with made-up times.

use std::fmt;

/// What to do when a cycle runs past the start of the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OverrunPolicy {
    /// Drop the missed cycles; the next start stays on the tick grid
    /// (`start + k * period`). The default.
    Skip,
    /// Run every missed cycle back to back until the schedule is caught up.
    CatchUp,
    /// Enter FAULT on the first overrun.
    Fault,
}

impl OverrunPolicy {
    /// Parses `skip`, `catch-up` (or `catchup`, `catch_up`), `fault`.
    pub fn parse(s: &str) -> Option<OverrunPolicy> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "skip" => Some(OverrunPolicy::Skip),
            "catch-up" | "catchup" => Some(OverrunPolicy::CatchUp),
            "fault" => Some(OverrunPolicy::Fault),
            _ => None,
        }
    }

    /// Name as parsed.
    pub fn name(self) -> &'static str {
        match self {
            OverrunPolicy::Skip => "skip",
            OverrunPolicy::CatchUp => "catch-up",
            OverrunPolicy::Fault => "fault",
        }
    }
}

/// The schedule of one cyclic task. Times are engine-clock nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    period: u64,
    origin: u64,
    next: u64,
    policy: OverrunPolicy,
}

/// Outcome of [`Schedule::begin`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Begin {
    /// The tick this cycle stands for.
    pub scheduled: u64,
    /// Actual start minus the start that was due (before any skip).
    pub latency: u64,
    /// Ticks that passed entirely while the task slept (Skip policy drops them).
    pub missed: u64,
}

/// Outcome of [`Schedule::end`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct End {
    /// The cycle ended after the next tick was due.
    pub overrun: bool,
    /// Ticks dropped by the Skip policy because of this overrun.
    pub missed: u64,
    /// The policy asks for FAULT.
    pub fault: bool,
}

impl Schedule {
    /// A schedule whose first tick is `origin`. `period` must be > 0 (checked at load).
    pub fn new(origin: u64, period: u64, policy: OverrunPolicy) -> Schedule {
        assert!(period > 0, "period must be positive");
        Schedule {
            period,
            origin,
            next: origin,
            policy,
        }
    }

    /// When the next cycle is due. Scan thread: no allocation, locks or syscalls.
    pub fn next_due(&self) -> u64 {
        self.next
    }

    /// The period.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// Starts the due cycle at `now` (`now >= next_due()`).
    ///
    /// Under Skip, a wake-up that comes a whole period or more late is moved onto the
    /// latest tick not after `now` and the ticks in between are reported as missed;
    /// the other policies keep the tick and report the lateness as latency.
    /// Scan thread: arithmetic only, no allocation, locks or syscalls.
    pub fn begin(&mut self, now: u64) -> Begin {
        let due = self.next;
        let mut scheduled = self.next;
        let mut missed = 0;
        if self.policy == OverrunPolicy::Skip && now >= scheduled + self.period {
            missed = (now - scheduled) / self.period;
            scheduled += missed * self.period;
        }
        self.next = scheduled;
        // Latency counts from the tick that was due, not the one skipped to, so a late
        // wake-up shows its full lateness in the statistics.
        Begin {
            scheduled,
            latency: now.saturating_sub(due),
            missed,
        }
    }

    /// Ends the cycle that [`begin`](Self::begin) started, at time `end`, and sets the
    /// next due time. Scan thread: arithmetic only, no allocation, locks or syscalls.
    pub fn end(&mut self, end: u64) -> End {
        let scheduled = self.next;
        let due = scheduled + self.period;
        let overrun = end > due;
        match self.policy {
            OverrunPolicy::Skip => {
                // The first tick at or after `end`, on the grid.
                let ticks = (end - scheduled).div_ceil(self.period).max(1);
                self.next = scheduled + ticks * self.period;
                End {
                    overrun,
                    missed: ticks - 1,
                    fault: false,
                }
            }
            OverrunPolicy::CatchUp => {
                self.next = due;
                End {
                    overrun,
                    missed: 0,
                    fault: false,
                }
            }
            OverrunPolicy::Fault => {
                self.next = due;
                End {
                    overrun,
                    missed: 0,
                    fault: overrun,
                }
            }
        }
    }

    /// Ticks since the origin of the tick `t` is on (for tests and status).
    pub fn tick_index(&self, t: u64) -> u64 {
        (t - self.origin) / self.period
    }
}

/// A task's watchdog: a time limit on one cycle's execution and how many consecutive
/// breaches are tolerated before FAULT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchdog {
    /// Execution-time limit (ns).
    pub limit_ns: u64,
    /// Consecutive breaches tolerated; the next one faults. 0 faults on the first.
    pub tolerance: u32,
    consecutive: u32,
}

/// The watchdog tripped: the figures behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Breach {
    /// Execution time of the breaching cycle.
    pub exec_ns: u64,
    /// The limit.
    pub limit_ns: u64,
    /// Breaches in a row, this one included.
    pub consecutive: u32,
}

impl fmt::Display for Breach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "watchdog: cycle took {:.3} ms, limit {:.3} ms, {} consecutive breach(es)",
            self.exec_ns as f64 / 1e6,
            self.limit_ns as f64 / 1e6,
            self.consecutive
        )
    }
}

impl Watchdog {
    /// A watchdog with a limit and a tolerance.
    pub fn new(limit_ns: u64, tolerance: u32) -> Watchdog {
        Watchdog {
            limit_ns,
            tolerance,
            consecutive: 0,
        }
    }

    /// Checks one cycle's execution time; returns the breach that should fault. Scan
    /// thread: no allocation, locks or syscalls.
    pub fn check(&mut self, exec_ns: u64) -> Option<Breach> {
        if exec_ns <= self.limit_ns {
            self.consecutive = 0;
            return None;
        }
        self.consecutive += 1;
        (self.consecutive > self.tolerance).then_some(Breach {
            exec_ns,
            limit_ns: self.limit_ns,
            consecutive: self.consecutive,
        })
    }

    /// Forgets past breaches (after a fault is cleared).
    pub fn reset(&mut self) {
        self.consecutive = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 1_000;

    #[test]
    fn on_time_cycles_follow_the_grid_exactly() {
        let mut s = Schedule::new(5_000, P, OverrunPolicy::Skip);
        for k in 0..10 {
            let b = s.begin(5_000 + k * P + 7);
            assert_eq!(b.scheduled, 5_000 + k * P);
            assert_eq!(b.latency, 7);
            let e = s.end(5_000 + k * P + 300);
            assert!(!e.overrun);
            assert_eq!(s.next_due(), 5_000 + (k + 1) * P);
        }
    }

    #[test]
    fn skip_drops_missed_cycles_and_keeps_the_tick_aligned() {
        let mut s = Schedule::new(0, P, OverrunPolicy::Skip);
        s.begin(0);
        let e = s.end(3_500); // ran 3.5 periods
        assert!(e.overrun);
        assert_eq!(e.missed, 3);
        assert_eq!(s.next_due(), 4_000);
        assert_eq!(s.tick_index(s.next_due()) * P, s.next_due());
    }

    #[test]
    fn ending_exactly_on_the_next_tick_is_not_an_overrun() {
        let mut s = Schedule::new(0, P, OverrunPolicy::Skip);
        s.begin(0);
        let e = s.end(P);
        assert!(!e.overrun);
        assert_eq!((e.missed, s.next_due()), (0, P));
    }

    #[test]
    fn skip_realigns_a_late_wakeup_onto_the_latest_tick() {
        let mut s = Schedule::new(0, P, OverrunPolicy::Skip);
        let b = s.begin(2_300);
        assert_eq!((b.scheduled, b.latency, b.missed), (2_000, 2_300, 2));
        s.end(2_400);
        assert_eq!(s.next_due(), 3_000);
    }

    #[test]
    fn catch_up_runs_every_missed_cycle_back_to_back() {
        let mut s = Schedule::new(0, P, OverrunPolicy::CatchUp);
        s.begin(0);
        let e = s.end(3_500);
        assert!(e.overrun && !e.fault);
        assert_eq!(s.next_due(), 1_000);
        // The late cycles start immediately and report their lateness.
        let b = s.begin(3_500);
        assert_eq!((b.scheduled, b.latency), (1_000, 2_500));
        s.end(3_600);
        let b = s.begin(3_600);
        assert_eq!(b.scheduled, 2_000);
        s.end(3_700);
        s.begin(3_700);
        s.end(3_800);
        assert_eq!(s.next_due(), 4_000); // caught up
    }

    #[test]
    fn fault_policy_faults_on_the_first_overrun_only() {
        let mut s = Schedule::new(0, P, OverrunPolicy::Fault);
        s.begin(0);
        assert!(!s.end(999).fault);
        s.begin(1_000);
        assert!(s.end(2_001).fault);
    }

    #[test]
    fn watchdog_tolerates_the_configured_number_of_consecutive_breaches() {
        let mut w = Watchdog::new(100, 2);
        assert_eq!(w.check(150), None);
        assert_eq!(w.check(150), None);
        assert_eq!(w.check(50), None); // a good cycle resets the count
        assert_eq!(w.check(150), None);
        assert_eq!(w.check(150), None);
        let b = w.check(170).unwrap();
        assert_eq!((b.exec_ns, b.limit_ns, b.consecutive), (170, 100, 3));
    }

    #[test]
    fn watchdog_with_zero_tolerance_trips_at_once_and_limit_is_inclusive() {
        let mut w = Watchdog::new(100, 0);
        assert_eq!(w.check(100), None);
        assert!(w.check(101).is_some());
    }

    #[test]
    fn policies_parse_from_their_names() {
        for p in [
            OverrunPolicy::Skip,
            OverrunPolicy::CatchUp,
            OverrunPolicy::Fault,
        ] {
            assert_eq!(OverrunPolicy::parse(p.name()), Some(p));
        }
        assert_eq!(
            OverrunPolicy::parse("catch_up"),
            Some(OverrunPolicy::CatchUp)
        );
        assert_eq!(OverrunPolicy::parse("later"), None);
    }
}
