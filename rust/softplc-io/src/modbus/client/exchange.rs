//! What the scan and the poller exchange for one device: the newest inputs (poller ->
//! scan), the newest outputs (scan -> poller), and the watchdog's override that makes
//! pollers write safe outputs while the scan thread is stuck.
//!
//! Both sides only copy into and out of triple buffers of these samples, allocated at
//! start: no allocation, locks or syscalls on the scan thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use softplc_core::SafeState;

use crate::runtime::StopHandle;

/// Newest device data, poller -> scan.
#[derive(Clone, Debug, Default)]
pub(crate) struct InSample {
    /// Registers of the last good poll (read plan layout).
    pub words: Vec<u16>,
    /// Bits of the last good poll.
    pub bits: Vec<bool>,
    /// Monotonic time the last good poll started.
    pub acquired_mono: u64,
    /// Good polls so far (0: no data yet).
    pub good_seq: u64,
    /// The device has failed `fail_after` polls in a row.
    pub bad: bool,
}

/// Newest outputs, scan -> poller.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutSample {
    /// Registers in write-plan layout.
    pub words: Vec<u16>,
    /// Coils in write-plan layout.
    pub bits: Vec<bool>,
    /// Publications so far (0: the scan has not run yet: write nothing).
    pub seq: u64,
}

/// Safe values of one device's outputs, as positions in its write-plan buffers.
#[derive(Clone, Debug, Default)]
pub(crate) struct SafePatch {
    /// (register offset, safe register value).
    pub words: Vec<(usize, u16)>,
    /// (coil offset, safe coil value).
    pub bits: Vec<(usize, bool)>,
}

impl SafePatch {
    /// Overwrites the output positions of a sample with their safe values.
    pub fn apply(&self, words: &mut [u16], bits: &mut [bool]) {
        for &(o, w) in &self.words {
            words[o] = w;
        }
        for &(o, b) in &self.bits {
            bits[o] = b;
        }
    }
}

/// The client's emergency handle (see [`SafeState`]). While `active`, pollers write
/// each device's outputs with their safe values patched in, whatever the scan last
/// published; the scan thread's next `write_outputs` lowers it.
#[derive(Debug, Default)]
pub(crate) struct SafeLatch {
    /// Raised by the watchdog thread.
    pub active: AtomicBool,
    /// Wakes the pollers at once instead of at their next write check.
    pub wake: tokio::sync::Notify,
    /// One handle per I/O thread (TCP connections share one; each serial line has its own).
    pub(super) stop: Mutex<Vec<StopHandle>>,
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
