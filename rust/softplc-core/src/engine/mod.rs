//! The scan engine: tasks, the cycle (`read_inputs` -> forces -> `execute` -> forces ->
//! `write_outputs` -> statistics), states, forcing, faults, and the two clocks.
//!
//! Multi-task scheduling is a cyclic executive on one scan thread: at each wake-up the
//! due task runs, highest priority (lowest number) first among those due together.
//! Tasks never preempt each other, so they share one process image without locks, and
//! virtual time replays the exact same interleaving every run.
//!
//! The scan thread owns the `Core` (`scan`). Other threads talk to it through the
//! shared state (`shared`): commands go in a queue the scan drains with `try_lock` at
//! the start of each cycle, and the image is published into a snapshot with `try_lock`
//! at the end of each cycle. The scan never waits on either lock. The watchdog thread
//! (`supervisor`) watches the part of each cycle that runs foreign code through the
//! watch window (`watch`).
//!
//! Files: `builder` (configuration to engine), `handle` ([`Engine`], the caller's
//! side), `scan` (the cycle), `shared`, `watch`, `supervisor` (the watchdog thread),
//! `fault` ([`FaultInfo`]), `link` ([`EngineLink`], the engine as drivers that serve it
//! to clients see it).

mod builder;
mod checkpoint;
mod fault;
mod handle;
mod link;
mod scan;
mod shared;
mod supervisor;
mod watch;

pub use builder::EngineBuilder;
pub use checkpoint::Checkpoint;
pub use fault::{FaultInfo, FaultKind};
pub use handle::{Engine, EngineError, CLOSE_ABANDON_NS, CLOSE_GRACE_NS};
pub use link::EngineLink;
pub use shared::{Command, NewProgram, QualityHold, Swap, SwapDone};

pub use supervisor::REINTERRUPT_NS;

// Where these lived before the task module; kept so existing paths still resolve.
pub use crate::task::{TaskConfig, TaskInfo};
