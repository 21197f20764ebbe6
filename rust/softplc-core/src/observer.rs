//! Cycle observers: code that sees the image at the end of every task cycle (the trace
//! sampler is one). They run on the scan thread, so they must not allocate, lock, or do
//! I/O in [`CycleObserver::on_cycle`]; they hand their data to their own threads.

use crate::driver::PlcState;
use crate::image::{Image, Layout};
use crate::task::TaskId;

/// What happened in the cycle just finished. `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CycleInfo {
    /// The task whose cycle it was.
    pub task: TaskId,
    /// The task's cycle number, from 0.
    pub cycle: u64,
    /// Scheduled start (engine clock, ns).
    pub scheduled_ns: u64,
    /// Actual start (engine clock, ns). Equal to `scheduled_ns` in virtual time.
    pub start_ns: u64,
    /// Execution time of read-execute-write (ns, measured on the monotonic clock).
    pub exec_ns: u64,
    /// True when this cycle overran its period.
    pub overrun: bool,
    /// Engine state during the cycle.
    pub state: PlcState,
}

/// Sees every task cycle. Added to and removed from a running engine through its handle.
pub trait CycleObserver: Send {
    /// Called once, off the scan thread, when the observer is attached (allocate here).
    fn attach(&mut self, _layout: &Layout, _task_names: &[String], _periods_ns: &[u64]) {}
    /// Called on the scan thread after each task cycle: no allocation, locks or I/O.
    fn on_cycle(&mut self, image: &Image, info: &CycleInfo);
}
