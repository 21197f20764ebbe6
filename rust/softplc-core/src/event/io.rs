//! The I/O events drivers report: a fixed vocabulary of kinds, each about the driver
//! itself, one of its links (connections) or one of its devices.
//!
//! Links and devices are numbered by the driver in its configuration's order (devices
//! in the order they are declared; links in the order of the devices that first use
//! them), so an event names its device by a field, however many devices there are.
//! Rate-limited drivers sum up what they left out in one event of the same kind with
//! [`IoEvent::suppressed`] set.

use std::fmt;

/// What an I/O event reports. `Copy`; the names are part of the trace format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoEventKind {
    /// A client opened a link to a device or gateway.
    Connected,
    /// A client could not open a link (reported once until it comes up).
    ConnectFailed,
    /// A client's open link was lost, or dropped after an error.
    Disconnected,
    /// A device failed its polls too often: its inputs are bad.
    DeviceBad,
    /// A device that was bad answers again: its inputs are good.
    DeviceGood,
    /// Every output of a device was written again after its link (re)opened.
    OutputsRewritten,
    /// A device refused a write (a protocol exception); it is retried with back-off.
    WriteRejected,
    /// A server listens for clients.
    Listening,
    /// A server cannot listen.
    ListenFailed,
    /// A server stopped listening.
    ListenStopped,
    /// A server failed to accept a connection (out of file descriptors ...) and retries.
    AcceptFailed,
    /// A server accepted a client's connection.
    ClientAccepted,
    /// A server refused a client that its allowlist does not name.
    ClientNotAllowed,
    /// A server refused a client at its connection limit.
    ClientRefused,
    /// A server closed an idle client's connection to make room for a new one.
    ClientEvicted,
    /// A server refused a client's write that broke a variable's range or read-only
    /// rule.
    ClientWriteRefused,
    /// A driver event outside this list; the text says what.
    Other,
}

impl IoEventKind {
    /// Every kind, in declaration order.
    pub const ALL: [IoEventKind; 17] = [
        IoEventKind::Connected,
        IoEventKind::ConnectFailed,
        IoEventKind::Disconnected,
        IoEventKind::DeviceBad,
        IoEventKind::DeviceGood,
        IoEventKind::OutputsRewritten,
        IoEventKind::WriteRejected,
        IoEventKind::Listening,
        IoEventKind::ListenFailed,
        IoEventKind::ListenStopped,
        IoEventKind::AcceptFailed,
        IoEventKind::ClientAccepted,
        IoEventKind::ClientNotAllowed,
        IoEventKind::ClientRefused,
        IoEventKind::ClientEvicted,
        IoEventKind::ClientWriteRefused,
        IoEventKind::Other,
    ];

    /// The name written in event dictionaries and trace files (`device_bad`).
    pub fn name(self) -> &'static str {
        match self {
            IoEventKind::Connected => "connected",
            IoEventKind::ConnectFailed => "connect_failed",
            IoEventKind::Disconnected => "disconnected",
            IoEventKind::DeviceBad => "device_bad",
            IoEventKind::DeviceGood => "device_good",
            IoEventKind::OutputsRewritten => "outputs_rewritten",
            IoEventKind::WriteRejected => "write_rejected",
            IoEventKind::Listening => "listening",
            IoEventKind::ListenFailed => "listen_failed",
            IoEventKind::ListenStopped => "listen_stopped",
            IoEventKind::AcceptFailed => "accept_failed",
            IoEventKind::ClientAccepted => "client_accepted",
            IoEventKind::ClientNotAllowed => "client_not_allowed",
            IoEventKind::ClientRefused => "client_refused",
            IoEventKind::ClientEvicted => "client_evicted",
            IoEventKind::ClientWriteRefused => "client_write_refused",
            IoEventKind::Other => "other",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<IoEventKind> {
        IoEventKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl fmt::Display for IoEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One I/O event: its kind, what it is about, and for a summary how many events of the
/// kind it stands for. `Copy`, so a driver builds it without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoEvent {
    /// What happened.
    pub kind: IoEventKind,
    /// The link (connection) it is about, numbered by the driver.
    pub link: Option<u32>,
    /// The device it is about, numbered by the driver in configuration order.
    pub device: Option<u32>,
    /// 0 for a single event; otherwise this event sums up that many events of `kind`
    /// that rate limiting left out.
    pub suppressed: u64,
}

impl IoEvent {
    /// An event about the driver as a whole.
    pub const fn new(kind: IoEventKind) -> IoEvent {
        IoEvent {
            kind,
            link: None,
            device: None,
            suppressed: 0,
        }
    }

    /// An event about link `link`.
    pub const fn on_link(kind: IoEventKind, link: u32) -> IoEvent {
        IoEvent {
            link: Some(link),
            ..IoEvent::new(kind)
        }
    }

    /// An event about device `device`, reached over link `link`.
    pub const fn on_device(kind: IoEventKind, device: u32, link: u32) -> IoEvent {
        IoEvent {
            device: Some(device),
            link: Some(link),
            ..IoEvent::new(kind)
        }
    }

    /// The same event as the summary of `n` events left out.
    pub const fn summing(self, n: u64) -> IoEvent {
        IoEvent {
            suppressed: n,
            ..self
        }
    }

    /// The link as a number, -1 when none.
    pub fn link_code(&self) -> i64 {
        self.link.map_or(-1, i64::from)
    }

    /// The device as a number, -1 when none.
    pub fn device_code(&self) -> i64 {
        self.device.map_or(-1, i64::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_io_kind_has_its_own_name_and_reads_back() {
        let mut names: Vec<&str> = IoEventKind::ALL.iter().map(|k| k.name()).collect();
        for k in IoEventKind::ALL {
            assert_eq!(IoEventKind::from_name(k.name()), Some(k));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), IoEventKind::ALL.len());
    }
}
