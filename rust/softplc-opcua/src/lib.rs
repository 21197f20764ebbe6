//! softplc-opcua: the runtime's OPC UA server, on async-opcua (its server feature).
//!
//! [`OpcuaServer`] is an engine driver. It serves, in its own namespace
//! ([`NAMESPACE_URI`]):
//! - `Programs/<program>/<fb instance>/.../<variable>`: every exposed variable with its
//!   IEC type mapped to an OPC UA DataType ([`types`]), engineering units and range as
//!   an AnalogItem where declared, and a stable string NodeId, its full name
//!   (`ns=<n>;s=tank.level`); `Globals/<variable>` for names without a dot;
//! - `Engine`: State, Fault, Cycles, Overruns, per task statistics, per driver status,
//!   and the methods Start, Stop and ClearFault (engineer role).
//!
//! Values come from cycle-consistent frames sampled at a configurable interval
//! ([`snapshot`], [`sampler`]), with the cycle's time as SourceTimestamp and the input's
//! quality as StatusCode; subscriptions and monitored items are async-opcua's. Writes
//! are external writes through the engine link: checked against each variable's range
//! and `writable` flag and applied at the start of the next cycle. Security
//! ([`security`], [`auth`]): policy None with anonymous access on loopback only; any
//! other address serves users with a password over Basic256Sha256 Sign&Encrypt, with a
//! certificate created on first start.
//!
//! All network I/O runs on the driver's own I/O thread (softplc-io's runtime); the scan
//! thread only publishes frames into a triple buffer when asked.

pub mod auth;
pub mod nodes;
pub mod safe;
pub mod sampler;
pub mod security;
pub mod server;
pub mod snapshot;
pub mod space;
pub mod stats;
pub mod types;

pub use nodes::NAMESPACE_URI;
pub use server::OpcuaServer;
pub use softplc_io::config::{EndpointUrl, OpcuaConfig, OpcuaUser, Role};

use softplc_core::Driver;

/// Name of the OPC UA server driver.
pub const DRIVER: &str = "opcua";

/// The server driver for a checked configuration.
pub fn driver(cfg: OpcuaConfig) -> Box<dyn Driver> {
    Box::new(OpcuaServer::new(DRIVER, cfg))
}
