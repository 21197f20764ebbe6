//! What the client drivers share, whatever their protocol (Modbus TCP in
//! [`crate::modbus::client`], XGT in [`crate::xgt::client`]).
//!
//! A client driver polls devices on its own I/O thread and exchanges data with the
//! scan through triple buffers, so a dead device never delays a cycle. The pieces that
//! do not depend on the protocol live here:
//! - [`status`]: the counters of devices and connections the monitors report;
//! - [`quality`]: the quality and age stamp the scan gives a device's inputs, and its
//!   health variable;
//! - [`safe`]: the watchdog's override that makes pollers write safe outputs while the
//!   scan thread is stuck;
//! - [`link`]: a connection's rate-limited events and its reconnection schedule;
//! - [`writes`]: when a write request is due, and its back-off after a failure.

pub(crate) mod link;
pub(crate) mod quality;
pub(crate) mod safe;
pub mod status;
pub(crate) mod writes;

pub use status::{ConnStats, DeviceStats, Health, TransportStats};
