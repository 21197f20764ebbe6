//! The watch window of the cycle in progress, shared by the scan thread and the
//! watchdog thread (see [`super::supervisor`] for how the watchdog uses it).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use crate::task::TaskId;

/// `Watch::start` of a window the watchdog has taken.
pub(crate) const TRIPPED: u64 = u64::MAX;
/// `Watch::program` while the drivers, not a program, run.
pub(crate) const NO_PROGRAM: u32 = u32::MAX;

/// The watch window. The scan thread writes every field; the watchdog thread only
/// swaps `start` to [`TRIPPED`] and sets `abort`.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// Monotonic start of the open window; 0 when none is open; [`TRIPPED`] once taken.
    pub start: AtomicU64,
    /// Task of the open window ([`TaskId::index`]).
    task: AtomicU32,
    /// Program of that task running now, or [`NO_PROGRAM`].
    pub program: AtomicU32,
    /// The task's cycle number.
    pub cycle: AtomicU64,
    /// Raised on a trip; compiled code stops at its next backward jump.
    pub abort: AtomicBool,
}

impl Watch {
    /// Scan thread: opens the window of a cycle of `task` started at `t0`. Four atomic
    /// stores: no allocation, locks or syscalls.
    #[inline]
    pub fn open(&self, task: TaskId, cycle: u64, t0: u64) {
        self.task.store(task.index() as u32, Ordering::Relaxed);
        self.cycle.store(cycle, Ordering::Relaxed);
        self.program.store(NO_PROGRAM, Ordering::Relaxed);
        // Release: the fields above are visible to whoever reads this start.
        self.start
            .store(t0.clamp(1, TRIPPED - 1), Ordering::Release);
    }

    /// Scan thread: closes the window. False when the watchdog took it first. One load
    /// and one compare-exchange: no allocation, locks or syscalls.
    #[inline]
    pub fn close(&self) -> bool {
        let s = self.start.load(Ordering::Acquire);
        s != TRIPPED
            && self
                .start
                .compare_exchange(s, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// The task of the open (or last) window.
    pub fn task(&self) -> TaskId {
        TaskId::new(self.task.load(Ordering::Relaxed) as usize).unwrap_or(TaskId::FIRST)
    }

    /// Takes the open window for the watchdog, if it still is the one that started at
    /// `start`. Exactly one side wins a cycle that ends right at the deadline.
    pub fn trip(&self, start: u64) -> bool {
        start != 0
            && start != TRIPPED
            && self
                .start
                .compare_exchange(start, TRIPPED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_closes_unless_the_watchdog_took_it() {
        let w = Watch::default();
        let t = TaskId::new(0).unwrap();
        w.open(t, 7, 1000);
        assert!(w.close());
        w.open(t, 8, 2000);
        assert!(w.trip(2000));
        assert!(!w.close());
        assert!(!w.trip(TRIPPED), "a taken window cannot be taken again");
    }
}
