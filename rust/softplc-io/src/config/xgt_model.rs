//! The checked configuration of the XGT drivers (LS Electric's dedicated protocol):
//! PLCs polled as a client (`[[device]]` with `protocol = "xgt"`), the XGT server
//! (`[server.xgt]`), and their mappings. Plain data; parsing is in [`super::xgt`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::net::IpNet;
use crate::xgt::device::{Device, Naming};
use crate::xgt::value::XgtType;
use crate::xgt::Cpu;

use super::model::{OnFail, WriteMode};
use super::source::Loc;

/// Default TCP port of the XGT dedicated protocol.
pub const XGT_PORT: u16 = 2004;

/// One mapping between program variables and PLC device memory.
#[derive(Clone, Debug, PartialEq)]
pub struct XgtPointConfig {
    /// Variable names or direct addresses; several are laid out one after the other.
    pub vars: Vec<String>,
    /// The PLC address of the first value, as written (`D100`, `M172C`, `%MW100`).
    pub address: String,
    /// PLC-side type; None: derived from each variable's type.
    pub ty: Option<XgtType>,
    /// Variable = PLC value * scale + offset.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// Value on failure (read mappings of devices with `on_fail = "substitute"`).
    pub substitute: Option<f64>,
    /// Where the variables are named, for messages.
    pub loc: Loc,
    /// Where the address is written, for messages.
    pub address_loc: Loc,
    /// Which mapping this is, for messages (`device "press" read #2`).
    pub what: String,
}

impl XgtPointConfig {
    /// The key that names the variables (`var` or `vars`).
    pub fn var_key(&self) -> &'static str {
        if self.vars.len() == 1 {
            "var"
        } else {
            "vars"
        }
    }
}

/// An XGT PLC the runtime polls as a client, over one TCP connection.
#[derive(Clone, Debug, PartialEq)]
pub struct XgtDeviceConfig {
    /// Unique name (among all devices of the file).
    pub name: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port (2004).
    pub port: u16,
    /// CPU type: how the PLC names its memory, its continuous limit, its header code.
    pub cpu: Cpu,
    /// How names are written on the wire (bit names with a hex bit digit or not).
    pub naming: Naming,
    /// Poll period.
    pub poll: Duration,
    /// Time allowed for connecting and for each request.
    pub timeout: Duration,
    /// Extra attempts of a failed poll before it counts as failed.
    pub retries: u32,
    /// First reconnection delay; doubles up to `reconnect_max`.
    pub reconnect_min: Duration,
    /// Longest reconnection delay.
    pub reconnect_max: Duration,
    /// Failed polls in a row after which inputs turn quality=bad.
    pub fail_after: u32,
    /// What failed inputs hold.
    pub on_fail: OnFail,
    /// Age beyond which good data is reported stale.
    pub stale: Duration,
    /// Unmapped bytes a continuous read may span to merge two ranges of a device.
    pub max_gap: u32,
    /// Requests sent before their answers come back (1: one at a time).
    pub pipeline: usize,
    /// When outputs are written.
    pub write_mode: WriteMode,
    /// How often the poller looks for changed outputs between polls.
    pub write_check: Duration,
    /// A BOOL variable the driver sets while the PLC's inputs are good.
    pub health_var: Option<(String, Loc)>,
    /// PLC -> program.
    pub reads: Vec<XgtPointConfig>,
    /// Program -> PLC.
    pub writes: Vec<XgtPointConfig>,
    /// Where the device is declared.
    pub loc: Loc,
}

impl XgtDeviceConfig {
    /// `host:port`.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The runtime's own XGT server: softplc answering as an XGT PLC.
#[derive(Clone, Debug, PartialEq)]
pub struct XgtServerConfig {
    /// Listen address (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The CPU type the server answers as (its header code, names and limits).
    pub cpu: Cpu,
    /// How the server reads bit names (with a hex bit digit or not).
    pub naming: Naming,
    /// Clients allowed to connect; empty: everyone who can reach `listen`.
    pub allow: Vec<IpNet>,
    /// Devices clients may not write.
    pub read_only: Vec<Device>,
    /// Simultaneous connections; more are refused.
    pub max_connections: usize,
    /// A connection that sends no complete request for this long is closed (None: never).
    pub idle_timeout: Option<Duration>,
    /// Explicit map; empty: the default map (device areas to image areas).
    pub map: Vec<XgtPointConfig>,
    /// Where the server is declared.
    pub loc: Loc,
}

impl XgtServerConfig {
    /// A server with the default map on `listen`, answering as a `cpu` PLC.
    pub fn with_default_map(listen: SocketAddr, cpu: Cpu) -> XgtServerConfig {
        XgtServerConfig {
            listen,
            cpu,
            naming: Naming::new(cpu),
            allow: Vec::new(),
            read_only: Vec::new(),
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
