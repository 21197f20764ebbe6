//! Retained and persistent variables.
//!
//! `retain=True` variables keep their values across a restart and a power loss (a warm
//! restart); `persistent=True` variables also keep them across a cold restart and the
//! loading of a changed program. The scan thread only copies the retained bytes into a
//! buffer at the end of a cycle (no I/O, no lock it can wait on); a background writer
//! stores them atomically in two alternating slots ([`store`]).

//!
//! Rules (CODESYS's): a warm start (the default) restores retain and persistent
//! variables; a cold start resets retain variables and keeps persistent ones; an origin
//! reset resets both and clears the file. A *changed program* (its signature differs
//! from the one that wrote the file) resets retain variables, as a download does, while
//! persistent ones migrate by name and type. Whatever cannot be kept (a changed type, a
//! variable no longer declared) is reported, never silently reset. Forces are never
//! persisted: a forced variable's entry keeps the value saved before the force.

pub mod set;
pub mod store;
pub mod writer;

pub use set::{restore, RestartLevel, RetainReport, RetainSet, RetainedVar};
pub use store::{Entry, Loaded, RetainKind, Snapshot, Store};
pub use writer::{RetainConfig, RetainStatus, RetainWriter};
