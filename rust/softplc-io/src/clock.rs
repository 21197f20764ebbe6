//! Relating the I/O threads' monotonic time to the engine clock.
//!
//! Device data is acquired on I/O threads, which know only the monotonic clock; the
//! process image stamps data in engine-clock nanoseconds. The scan thread publishes the
//! offset between the two once a cycle (one atomic store), and both sides convert with
//! it. With a virtual engine clock the offset still orders events, but ages are only
//! meaningful on the real clock.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// `CLOCK_MONOTONIC` in nanoseconds, the clock the engine's real-time scan runs on (so
/// the offset is zero in real time). One vDSO read: no allocation, locks or syscall.
#[inline]
pub fn mono_ns() -> u64 {
    softplc_core::clock::monotonic_ns()
}

/// The engine-clock offset, written by the scan thread, read by I/O threads.
#[derive(Debug, Default)]
pub struct ClockLink {
    offset: AtomicI64,
    known: AtomicBool,
}

impl ClockLink {
    /// A link with no offset known yet (engine time reads as monotonic time, which is
    /// right for the real-time engine).
    pub fn new() -> ClockLink {
        ClockLink::default()
    }

    /// Scan thread: records `engine now - monotonic now` and returns it. No allocation,
    /// no locks.
    pub fn update(&self, engine_now_ns: u64) -> i64 {
        let off = engine_now_ns as i64 - mono_ns() as i64;
        self.offset.store(off, Ordering::Relaxed);
        self.known.store(true, Ordering::Release);
        off
    }

    /// The engine time of a monotonic instant.
    pub fn engine_time(&self, mono: u64) -> u64 {
        if !self.known.load(Ordering::Acquire) {
            return mono;
        }
        (mono as i64 + self.offset.load(Ordering::Relaxed)).max(0) as u64
    }

    /// The engine time now.
    pub fn engine_now(&self) -> u64 {
        self.engine_time(mono_ns())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_translate_monotonic_instants_into_engine_time() {
        let c = ClockLink::new();
        let m = mono_ns();
        assert_eq!(c.engine_time(m), m);
        // The engine clock reads 5 s "now" (a moment after `m`).
        c.update(5_000_000_000);
        let t = c.engine_time(m);
        assert!(t <= 5_000_000_000 && t + 50_000_000 >= 5_000_000_000, "{t}");
    }
}
