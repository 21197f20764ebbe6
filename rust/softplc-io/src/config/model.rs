//! The checked configuration the drivers are built from: devices polled as a client,
//! the server, and their mappings. Plain data; parsing is in [`super::parse`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::modbus::{RegType, Table, WordOrder};
use crate::net::IpNet;

use super::source::Loc;

/// What happens to a failed device's inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFail {
    /// Inputs keep their last value (quality bad).
    Keep,
    /// Inputs take their declared substitute (quality bad).
    Substitute,
}

/// When outputs are written to a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// When they change, and all of them again after every (re)connection.
    OnChange,
    /// Every poll, changed or not.
    EveryPoll,
}

/// One mapping between program variables and a device's (or the server's) table.
#[derive(Clone, Debug, PartialEq)]
pub struct PointConfig {
    /// Variable names or direct addresses; several are laid out one after the other.
    pub vars: Vec<String>,
    /// Table.
    pub table: Table,
    /// Address of the first item (0-based protocol address).
    pub address: u16,
    /// Modbus-side type; None: derived from each variable's type.
    pub reg: Option<RegType>,
    /// Word and byte order.
    pub order: WordOrder,
    /// Variable = register * scale + offset.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// Bit of a register, for BOOL variables.
    pub bit: Option<u8>,
    /// Value on failure (read mappings of devices with `on_fail = "substitute"`); None:
    /// not given (the variable type's zero).
    pub substitute: Option<f64>,
    /// Where the mapping is, for messages.
    pub loc: Loc,
    /// Which mapping this is, for messages (`device "pumps" read #2`).
    pub what: String,
}

/// A Modbus device (server) the runtime polls as a client.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceConfig {
    /// Unique name.
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Unit identifier (slave id) behind the address. 0 and 255 address a Modbus TCP
    /// device itself (the Modbus TCP implementation guide allows both).
    pub unit_id: u8,
    /// Poll period.
    pub poll: Duration,
    /// Time allowed for connecting and for each request.
    pub timeout: Duration,
    /// Extra attempts of a failed request before the poll counts as failed.
    pub retries: u32,
    /// First reconnection delay; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest reconnection delay.
    pub reconnect_max: Duration,
    /// Default word order of this device's values.
    pub order: WordOrder,
    /// Failed polls in a row after which inputs turn quality=bad.
    pub fail_after: u32,
    /// What failed inputs hold.
    pub on_fail: OnFail,
    /// Age beyond which good data is reported stale.
    pub stale: Duration,
    /// Unmapped items a read may span to merge two ranges.
    pub max_gap: u16,
    /// When outputs are written.
    pub write_mode: WriteMode,
    /// How often the poller looks for changed outputs between polls.
    pub write_check: Duration,
    /// A BOOL variable the driver sets while the device's inputs are good, so that a
    /// program can react to a communication failure; and where it is named.
    pub health_var: Option<(String, Loc)>,
    /// Device -> program.
    pub reads: Vec<PointConfig>,
    /// Program -> device.
    pub writes: Vec<PointConfig>,
    /// Where the device is declared.
    pub loc: Loc,
}

impl DeviceConfig {
    /// `host:port`, the key devices share a connection by.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The runtime's own Modbus TCP server.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The unit id the server answers to (0 and 255 are answered too: on Modbus TCP they
    /// address the device itself).
    pub unit_id: u8,
    /// Clients allowed to connect; empty: everyone who can reach `listen`.
    pub allow: Vec<IpNet>,
    /// Tables clients may not write, by [`Table::index`].
    pub read_only: [bool; 4],
    /// Simultaneous connections; more are refused.
    pub max_connections: usize,
    /// A connection that sends no complete request for this long is closed (None: never).
    pub idle_timeout: Option<Duration>,
    /// Explicit map; empty: the OpenPLC-compatible default map.
    pub map: Vec<PointConfig>,
    /// Where the server is declared.
    pub loc: Loc,
}

impl ServerConfig {
    /// A server with the default map on `listen`.
    pub fn with_default_map(listen: SocketAddr, unit_id: u8) -> ServerConfig {
        ServerConfig {
            listen,
            unit_id,
            allow: Vec::new(),
            read_only: [false; 4],
            max_connections: 16,
            idle_timeout: Some(Duration::from_secs(60)),
            map: Vec::new(),
            loc: Loc {
                file: Arc::from("<command line>"),
                line: 0,
                col: 0,
            },
        }
    }
}

/// A parsed and checked I/O configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct IoConfig {
    /// The file it came from.
    pub file: Arc<str>,
    /// Devices polled as a client.
    pub devices: Vec<DeviceConfig>,
    /// The server, if configured.
    pub server: Option<ServerConfig>,
    /// The OPC UA server (`[server.opcua]`), if configured.
    pub opcua: Option<super::opcua::OpcuaConfig>,
}
