//! Modbus: the TCP client driver ([`ModbusClient`]), the TCP server driver
//! ([`ModbusServer`]), and what both share: the data tables, how values sit in
//! registers, MBAP framing, binding mappings to the image and planning requests.
//!
//! A serial (RTU) transport would sit beside `client/transport.rs` and reuse the rest.
//!
//! Files: `table` (the four tables), `encoding` (registers and bits), `frame` (MBAP),
//! `bind` (mappings to image slots), `plan` (batching into requests), `client/`,
//! `server/`.

pub mod bind;
pub mod client;
pub mod encoding;
pub mod frame;
pub mod plan;
pub mod server;
pub mod table;

pub use client::ModbusClient;
pub use encoding::{Codec, RegType, WordOrder};
pub use server::ModbusServer;
pub use table::Table;
