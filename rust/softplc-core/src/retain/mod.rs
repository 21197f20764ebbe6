//! Retained and persistent variables.
//!
//! `retain=True` variables keep their values across a restart and a power loss (a warm
//! restart); `persistent=True` variables also keep them across a cold restart and the
//! loading of a changed program. The scan thread only copies the retained bytes into a
//! buffer at the end of a cycle (no I/O, no lock it can wait on); a background writer
//! stores them atomically in two alternating slots ([`store`]).

pub mod store;

pub use store::{Entry, Loaded, RetainKind, Snapshot, Store};
