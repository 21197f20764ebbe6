//! Clocks: the monotonic wall clock the real-time scan sleeps on, virtual time, and
//! the [`EngineClock`] through which other threads read engine time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Reads `CLOCK_MONOTONIC` in nanoseconds. A vDSO call: no syscall, no allocation.
#[inline]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until the absolute `CLOCK_MONOTONIC` time `deadline_ns`
/// (`clock_nanosleep` with `TIMER_ABSTIME`), so errors never accumulate from cycle to
/// cycle. Restarts after signals. One syscall; no allocation.
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; the remainder pointer may be null with
        // TIMER_ABSTIME.
        let r = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if r != libc::EINTR {
            return;
        }
    }
}

/// Which clock an engine runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockKind {
    /// Real time: sleep to absolute deadlines on `CLOCK_MONOTONIC`.
    Real,
    /// Virtual time: cycles run back to back, `now` is the scheduled time, starting at 0.
    Virtual,
}

/// The engine clock as other threads see it: turns the monotonic instants they can read
/// (when a device answered) into engine time, the time the process image stamps data
/// with. Cheap to clone; the engine hands one to each driver at start.
///
/// In real time engine time *is* `CLOCK_MONOTONIC`, so the conversion is the identity.
/// In virtual time the engine records, once a cycle before the inputs are read, how far
/// its clock is from the monotonic one; between two cycles the conversion follows the
/// monotonic clock (virtual time does not run at wall-clock speed, so ages computed
/// across cycles are only nominal there).
#[derive(Clone, Debug)]
pub struct EngineClock {
    kind: ClockKind,
    /// Engine time minus monotonic time (virtual time only; written by the scan).
    offset: Arc<AtomicI64>,
}

impl EngineClock {
    /// A clock of `kind`; a virtual one starts at engine time 0 now.
    pub fn new(kind: ClockKind) -> EngineClock {
        let c = EngineClock {
            kind,
            offset: Arc::new(AtomicI64::new(0)),
        };
        c.follow(0, monotonic_ns());
        c
    }

    /// Which clock the engine runs on.
    pub fn kind(&self) -> ClockKind {
        self.kind
    }

    /// Scan thread: engine time `engine_ns` corresponds to monotonic time `mono_ns`.
    /// One relaxed atomic store in virtual time, nothing in real time: no allocation,
    /// locks or syscalls.
    #[inline]
    pub(crate) fn follow(&self, engine_ns: u64, mono_ns: u64) {
        if self.kind == ClockKind::Virtual {
            self.offset
                .store(engine_ns as i64 - mono_ns as i64, Ordering::Relaxed);
        }
    }

    /// The engine time of the monotonic instant `mono_ns`. Any thread, the scan's too:
    /// one relaxed atomic load, no allocation, locks or syscalls.
    #[inline]
    pub fn engine_time(&self, mono_ns: u64) -> u64 {
        match self.kind {
            ClockKind::Real => mono_ns,
            ClockKind::Virtual => {
                (mono_ns as i64 + self.offset.load(Ordering::Relaxed)).max(0) as u64
            }
        }
    }

    /// Engine time now. One vDSO clock read: no allocation, locks or syscalls.
    pub fn now(&self) -> u64 {
        self.engine_time(monotonic_ns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_engine_clock_is_the_monotonic_clock() {
        let c = EngineClock::new(ClockKind::Real);
        assert_eq!(c.engine_time(123_456), 123_456);
        c.follow(5, 7);
        assert_eq!(c.engine_time(123_456), 123_456);
    }

    #[test]
    fn a_virtual_engine_clock_follows_the_last_cycle() {
        let c = EngineClock::new(ClockKind::Virtual);
        let m = monotonic_ns();
        assert!(c.engine_time(m) < 50_000_000, "starts at 0");
        // The scan reached virtual time 5 s at monotonic instant `m`.
        c.follow(5_000_000_000, m);
        assert_eq!(c.engine_time(m + 1_000), 5_000_001_000);
        let clone = c.clone();
        c.follow(9_000_000_000, m);
        assert_eq!(clone.engine_time(m), 9_000_000_000);
    }

    #[test]
    fn sleep_until_a_past_deadline_returns_at_once() {
        let t0 = monotonic_ns();
        sleep_until_ns(t0.saturating_sub(1_000_000));
        assert!(monotonic_ns() - t0 < 50_000_000);
    }
}
