//! What the server drivers share, whatever their protocol (Modbus TCP in
//! [`crate::modbus::server`], XGT in [`crate::xgt::server`]):
//! - [`conns`]: the open connections, so that a newcomer can take the place of an idle
//!   one at the connection limit;
//! - [`log`]: connection and write events, rate-limited per kind;
//! - [`seqlock`]: the sequence lock that keeps multi-byte values whole between the
//!   scan, which publishes without ever waiting, and client connections.

pub mod conns;
pub mod log;
pub mod seqlock;
