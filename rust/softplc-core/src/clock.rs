//! Clocks: the monotonic wall clock the real-time scan sleeps on, and virtual time.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_until_a_past_deadline_returns_at_once() {
        let t0 = monotonic_ns();
        sleep_until_ns(t0.saturating_sub(1_000_000));
        assert!(monotonic_ns() - t0 < 50_000_000);
    }
}
