//! The watchdog's override of a client driver's outputs, whatever its protocol.
//!
//! While the scan thread is stuck, the engine's watchdog calls [`SafeLatch::force_safe`]
//! from its own thread: the driver's pollers then write each device's outputs with
//! their declared safe values patched in ([`Patch`]), whatever the scan last
//! published. The scan thread's next `write_outputs` lowers the latch (the engine is in
//! FAULT by then and publishes safe values itself).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use softplc_core::SafeState;

use crate::runtime::StopHandle;

/// Positions in an output buffer and the value each takes: the safe values of one
/// device's outputs in its write buffer (registers, coils, bytes of device memory).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Patch<T>(pub Vec<(usize, T)>);

impl<T> Default for Patch<T> {
    fn default() -> Self {
        Patch(Vec::new())
    }
}

impl<T: Copy> Patch<T> {
    /// Adds a position and its value.
    pub fn push(&mut self, at: usize, value: T) {
        self.0.push((at, value));
    }

    /// Overwrites the positions in `buf` with their values. No allocation.
    pub fn apply(&self, buf: &mut [T]) {
        for &(at, v) in &self.0 {
            buf[at] = v;
        }
    }
}

/// A client's emergency handle (see [`SafeState`]). While `active`, pollers write
/// each device's outputs with their safe values patched in, whatever the scan last
/// published; the scan thread's next `write_outputs` lowers it.
#[derive(Debug, Default)]
pub(crate) struct SafeLatch {
    /// Raised by the watchdog thread, lowered by the scan thread.
    pub active: AtomicBool,
    /// Wakes the pollers at once instead of at their next write check.
    pub wake: tokio::sync::Notify,
    /// Stops the driver's I/O threads without the driver (set at start): one per
    /// thread (TCP connections share one; each serial line has its own).
    pub stop: Mutex<Vec<StopHandle>>,
}

impl SafeLatch {
    /// Arms the latch for a new run: lowered, stopping through `stops`.
    pub fn arm(&self, stops: Vec<StopHandle>) {
        self.active.store(false, Ordering::Release);
        *self.stop.lock().unwrap_or_else(|p| p.into_inner()) = stops;
    }

    /// Scan thread, after publishing outputs: the override ends. Lowered after the
    /// publication, so that a poller that sees it down reads that publication. One
    /// atomic load (and store): no allocation, locks or syscalls.
    pub fn release(&self) {
        if self.active.load(Ordering::Relaxed) {
            self.active.store(false, Ordering::Release);
        }
    }

    /// True while the watchdog's override holds.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }
}

impl SafeState for SafeLatch {
    fn force_safe(&self) {
        self.active.store(true, Ordering::Release);
        // One waiter per connection: wake them all.
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    fn shutdown(&self) {
        for s in self.stop.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            s.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_overwrites_only_its_positions() {
        let mut p = Patch::default();
        p.push(1, 7u8);
        p.push(3, 9u8);
        let mut buf = [1u8, 2, 3, 4];
        p.apply(&mut buf);
        assert_eq!(buf, [1, 7, 3, 9]);
    }

    #[test]
    fn the_latch_is_raised_by_the_watchdog_and_released_by_the_scan() {
        let l = SafeLatch::default();
        assert!(!l.is_active());
        l.force_safe();
        assert!(l.is_active());
        l.release();
        assert!(!l.is_active());
    }
}
