//! The checked configuration the drivers are built from: devices polled as a client,
//! the server, and their mappings. Plain data; parsing is in [`super::parse`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::modbus::{RegType, Table, WordOrder};
use crate::net::IpNet;

use super::source::Loc;
use super::xgt_model::{XgtDeviceConfig, XgtServerConfig};

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
    /// On a serial line (Modbus RTU): the `[[port]]` it hangs on; `host` and `port` are
    /// then unused. None: a Modbus TCP device.
    pub serial: Option<SerialPortConfig>,
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
    /// `host:port` (`serial:NAME` on a serial line), the key devices share a
    /// connection by.
    pub fn endpoint(&self) -> String {
        if let Some(p) = &self.serial {
            return format!("serial:{}", p.name);
        }
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
    /// Serve only the mapped addresses (exception 02 elsewhere) instead of the full
    /// OpenPLC-size tables.
    pub strict_map: bool,
    /// Explicit map; empty: the OpenPLC-compatible default map.
    pub map: Vec<PointConfig>,
    /// Answer as an RTU slave on this serial line instead of listening on TCP
    /// (`listen`, `allow`, `max_connections` and `idle_timeout` then do not apply).
    pub serial: Option<SerialPortConfig>,
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
            strict_map: false,
            map: Vec::new(),
            serial: None,
            loc: Loc {
                file: Arc::from("<command line>"),
                line: 0,
                col: 0,
            },
        }
    }
}

// --- Serial lines (Modbus RTU) -------------------------------------------------------

/// Parity of a serial line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parity {
    /// No parity bit.
    None,
    /// Even parity.
    Even,
    /// Odd parity.
    Odd,
}

impl Parity {
    /// Lower-case name, as the file spells it.
    pub fn name(self) -> &'static str {
        match self {
            Parity::None => "none",
            Parity::Even => "even",
            Parity::Odd => "odd",
        }
    }
}

/// A serial port (`[[port]]`) shared by the RTU devices and servers that name it.
#[derive(Clone, Debug, PartialEq)]
pub struct SerialPortConfig {
    /// Name devices refer to it by.
    pub name: String,
    /// Device path (`/dev/ttyUSB0`).
    pub path: String,
    /// Bits per second.
    pub baud: u32,
    /// Parity.
    pub parity: Parity,
    /// Data bits (7 or 8).
    pub data_bits: u8,
    /// Stop bits (1 or 2).
    pub stop_bits: u8,
    /// Time the master waits after a broadcast before the next request, for the
    /// slaves to process it (the specification's turnaround delay).
    pub turnaround: Duration,
    /// Where the port is declared.
    pub loc: Loc,
}

impl SerialPortConfig {
    /// Bits on the line per character: start, data, parity, stop.
    pub fn char_bits(&self) -> u32 {
        1 + self.data_bits as u32 + (self.parity != Parity::None) as u32 + self.stop_bits as u32
    }

    /// The silent interval that ends a frame: 3.5 character times, fixed at 1.75 ms
    /// above 19,200 baud (Modbus over serial line, 2.5.1.1).
    pub fn t35(&self) -> Duration {
        if self.baud > 19_200 {
            Duration::from_micros(1750)
        } else {
            Duration::from_nanos(3_500_000_000u64 * self.char_bits() as u64 / self.baud as u64)
        }
    }

    /// Time `n` bytes take on the wire.
    pub fn wire_time(&self, n: usize) -> Duration {
        Duration::from_nanos(
            1_000_000_000u64 * (n as u64) * self.char_bits() as u64 / self.baud as u64,
        )
    }
}

/// The runtime answering as a Modbus RTU slave on a serial port (`[[rtu_server]]`).
#[derive(Clone, Debug, PartialEq)]
pub struct RtuServerConfig {
    /// The port it answers on.
    pub port: SerialPortConfig,
    /// Its unit id (1..=247); other units' requests get no answer, broadcasts (0) are
    /// applied without one.
    pub unit_id: u8,
    /// Tables masters may not write, by [`Table::index`].
    pub read_only: [bool; 4],
    /// Serve only the mapped addresses (exception 02 elsewhere) instead of the full
    /// OpenPLC-size tables.
    pub strict_map: bool,
    /// Explicit map; empty: the OpenPLC-compatible default map.
    pub map: Vec<PointConfig>,
    /// Where it is declared.
    pub loc: Loc,
}

impl RtuServerConfig {
    /// The server configuration the driver runs (the TCP server's, on a serial line).
    pub fn server_config(&self) -> ServerConfig {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            unit_id: self.unit_id,
            allow: Vec::new(),
            read_only: self.read_only,
            max_connections: 1,
            idle_timeout: None,
            strict_map: self.strict_map,
            map: self.map.clone(),
            serial: Some(self.port.clone()),
            loc: self.loc.clone(),
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
    /// Serial ports (`[[port]]`).
    pub ports: Vec<SerialPortConfig>,
    /// RTU slaves (`[[rtu_server]]`).
    pub rtu_servers: Vec<RtuServerConfig>,
    /// XGT PLCs polled as a client (`[[device]]` with `protocol = "xgt"`).
    pub xgt_devices: Vec<XgtDeviceConfig>,
    /// The XGT server (`[server.xgt]`), if configured.
    pub xgt_server: Option<XgtServerConfig>,
    /// The OPC UA server (`[server.opcua]`), if configured.
    pub opcua: Option<super::opcua::OpcuaConfig>,
}
