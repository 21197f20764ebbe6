//! The program interface: what a task runs each cycle.
//!
//! Compiled programs (the `softplc-vm` crate) and Python programs (in the bindings
//! crate, which takes the GIL for the call) both implement [`Program`], so one task
//! can mix them in its declared order.

use std::fmt;
use std::sync::atomic::AtomicBool;

use crate::image::{Image, Layout};

/// How a program runs; shown in summaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramKind {
    /// Compiled to the verified intermediate form, run natively without Python.
    Compiled,
    /// A Python callable, called with the GIL held.
    Python,
    /// A program written in Rust against this trait.
    Native,
}

impl ProgramKind {
    /// Lower-case name (`compiled`, `python`, `native`).
    pub fn name(self) -> &'static str {
        match self {
            ProgramKind::Compiled => "compiled",
            ProgramKind::Python => "python",
            ProgramKind::Native => "native",
        }
    }
}

/// What a program sees during one call: the image, the layout, and the cycle's `now`.
pub struct ScanCtx<'a> {
    /// The process image (inputs latched, forces applied).
    pub image: &'a mut Image,
    /// The layout the image follows.
    pub layout: &'a Layout,
    /// The one `now` of this cycle, in engine-clock nanoseconds. In virtual time it is
    /// the scheduled start of the cycle; every program of the cycle sees the same value.
    pub now_ns: u64,
    /// This task's cycle number, from 0.
    pub cycle: u64,
    /// The task's period in nanoseconds.
    pub period_ns: u64,
    /// Set by the watchdog thread when this cycle ran past its limit. Long-running
    /// program code (a compiled loop's backward jump) checks it with a relaxed load and
    /// stops with a fault; the engine clears it once the cycle is over.
    pub abort: &'a AtomicBool,
}

/// Why a program stopped the scan. Built only on the fault path (it allocates), which
/// leaves RUN, so the cost never lands on a healthy cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramFault {
    /// What happened (for Python programs, the formatted traceback).
    pub message: String,
}

impl ProgramFault {
    /// A fault with a message.
    pub fn new(message: impl Into<String>) -> ProgramFault {
        ProgramFault {
            message: message.into(),
        }
    }
}

impl fmt::Display for ProgramFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A control program, run by a task once a cycle.
pub trait Program: Send {
    /// Instance name (unique within the engine).
    fn name(&self) -> &str;
    /// How it runs.
    fn kind(&self) -> ProgramKind;
    /// Runs one scan. Real-time notes: compiled and native programs must not allocate,
    /// lock or make syscalls here; Python programs take the GIL for the call.
    fn execute(&mut self, cx: &mut ScanCtx<'_>) -> Result<(), ProgramFault>;
    /// Called once before the first scan after a (re)start, off the hot path.
    fn reset(&mut self) {}
    /// The state this program carries from scan to scan (compiled programs: their
    /// cells), for an online change to hand over to the program that replaces it.
    fn state(&self) -> &[u64] {
        &[]
    }
    /// Takes over state from the program it replaces, at the switch of an online
    /// change: `map` pairs (old cell, new cell), computed off the scan thread. Scan
    /// thread: must not allocate, lock or make syscalls.
    fn adopt(&mut self, _old: &[u64], _map: &[(u32, u32)]) {}
}

/// Interrupts Python code running on the scan thread, from the watchdog thread.
///
/// Compiled and native programs see [`ScanCtx::abort`]; interpreted code cannot poll a
/// flag, so the bindings register one of these with the engine
/// ([`crate::EngineBuilder::interrupt`]).
pub trait Interrupt: Send + Sync {
    /// Asks the code running on the scan thread to stop (for Python: an asynchronous
    /// exception). Must return at once; work that may block (taking the GIL) happens on
    /// a thread of the implementation's own. `report` is called, possibly later and
    /// from another thread, with where the code was when it was interrupted
    /// (`file:line in function`).
    fn interrupt(&self, report: Box<dyn FnOnce(String) + Send>);
}

/// A program made from a Rust closure (tests and benchmarks).
pub struct FnProgram<F> {
    name: String,
    f: F,
}

impl<F> FnProgram<F>
where
    F: FnMut(&mut ScanCtx<'_>) -> Result<(), ProgramFault> + Send,
{
    /// Wraps a closure as a program called `name`.
    pub fn new(name: &str, f: F) -> FnProgram<F> {
        FnProgram {
            name: name.to_string(),
            f,
        }
    }
}

impl<F> Program for FnProgram<F>
where
    F: FnMut(&mut ScanCtx<'_>) -> Result<(), ProgramFault> + Send,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> ProgramKind {
        ProgramKind::Native
    }
    fn execute(&mut self, cx: &mut ScanCtx<'_>) -> Result<(), ProgramFault> {
        (self.f)(cx)
    }
}
