//! Modbus: the TCP client driver ([`ModbusClient`]), the TCP server driver
//! ([`ModbusServer`]), and what both share: the data tables, how values sit in
//! registers, MBAP framing, binding mappings to the image and planning requests.
//!
//! Modbus RTU (`rtu/`) adds the serial line: the client's devices may hang on a
//! `[[port]]` instead of a TCP endpoint (same poller, another transport), and
//! [`rtu::rtu_server`] answers as a slave with the TCP server's tables and rules.
//!
//! Files: `table` (the four tables), `encoding` (registers and bits), `frame` (MBAP),
//! `bind` (mappings to image slots), `plan` (batching into requests), `client/`,
//! `server/`, `rtu/`.

pub mod bind;
pub mod client;
pub mod encoding;
pub mod frame;
pub mod plan;
pub mod rtu;
pub mod server;
pub mod table;

pub use client::ModbusClient;
pub use encoding::{Codec, RegType, WordOrder};
pub use server::ModbusServer;
pub use table::Table;
