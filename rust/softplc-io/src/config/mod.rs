//! The I/O configuration file (TOML): Modbus devices to poll, the Modbus server and
//! the OPC UA server (`[server.opcua]`, see `opcua`).
//!
//! Parsing checks everything that can be checked without the program (syntax, keys,
//! ranges, tables, orders); binding against a [`softplc_core::Layout`] (see
//! [`crate::modbus::bind`]) checks variable names, types and address overlaps. Every error
//! names the file, line, column and key.
//!
//! ```toml
//! [[device]]
//! name = "pumps"
//! host = "127.0.0.1"
//! port = 5020
//! unit_id = 1
//! poll_ms = 100
//!
//! [[device.read]]
//! var = "station.level"
//! table = "input_register"
//! address = 0
//! type = "INT"
//! scale = 0.1
//!
//! [[device.write]]
//! vars = ["station.pump1", "station.pump2"]
//! table = "coil"
//! address = 0
//!
//! [server]
//! listen = "127.0.0.1:5020"
//! ```
//!
//! Files: `model` (the checked configuration), `parse` (TOML to model, with the
//! checks), `opcua` (the OPC UA server's table), `source` (places in the text for
//! messages).

mod model;
mod opcua;
mod parse;
mod source;

pub use model::{DeviceConfig, IoConfig, OnFail, PointConfig, ServerConfig, WriteMode};
pub use opcua::{
    select, EndpointUrl, Host, OpcuaConfig, OpcuaUser, Role, DEFAULT_PORT, MIN_SAMPLING,
};
pub use parse::{load, parse, parse_listen};
pub use source::Loc;

// Where these lived before; they are not configuration, but old paths still resolve.
pub use crate::modbus::Table;
pub use crate::net::IpNet;
