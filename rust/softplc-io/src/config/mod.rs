//! The I/O configuration file (TOML): devices to poll (Modbus TCP or RTU, or LS
//! Electric XGT with `protocol = "xgt"`), serial lines (`[[port]]`) and the servers
//! (`[server]`, Modbus TCP; `[[rtu_server]]`, Modbus RTU; `[server.xgt]`, XGT;
//! `[server.opcua]`, OPC UA).
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
//! checks), `serial` (`[[port]]`, devices on a serial line, `[[rtu_server]]`), `opcua`
//! (the OPC UA server's table), `source` (places in the text for messages), `xgt` and
//! `xgt_model` (the XGT parts: `[[device]]` with `protocol = "xgt"` and `[server.xgt]`;
//! see [`crate::xgt`]).

mod model;
mod opcua;
mod parse;
mod serial;
mod source;
mod xgt;
mod xgt_model;

pub use model::{
    DeviceConfig, IoConfig, OnFail, Parity, PointConfig, RtuServerConfig, SerialPortConfig,
    ServerConfig, WriteMode,
};
pub use opcua::{
    select, EndpointUrl, Host, OpcuaConfig, OpcuaUser, Role, DEFAULT_PORT, MIN_SAMPLING,
};
pub use parse::{load, parse, parse_listen};
pub use source::Loc;
pub use xgt_model::{XgtDeviceConfig, XgtPointConfig, XgtServerConfig, XGT_PORT};

// Where these lived before; they are not configuration, but old paths still resolve.
pub use crate::modbus::Table;
pub use crate::net::IpNet;
