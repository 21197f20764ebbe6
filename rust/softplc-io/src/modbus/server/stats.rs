//! The server's counters, written by the I/O thread (and the scan, for publications)
//! with relaxed atomics and read by the monitor; the frame guard reports into them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::guard::GuardStats;

/// Server counters. Written by the I/O thread (and the scan for publication skips),
/// read by the monitor.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// The address actually listened on (after binding port 0).
    pub listen: Mutex<Option<std::net::SocketAddr>>,
    /// Listening now.
    pub running: AtomicBool,
    /// Open connections.
    pub connections: AtomicU64,
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections refused by the allowlist.
    pub refused_allowlist: AtomicU64,
    /// Connections refused because `max_connections` were open and none was idle
    /// long enough to be closed for them.
    pub refused_limit: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub evicted: AtomicU64,
    /// Connections closed because a frame could not be delimited.
    pub closed_malformed: AtomicU64,
    /// Connections closed for idleness.
    pub closed_idle: AtomicU64,
    /// Connections that ended with an I/O error.
    pub connection_errors: AtomicU64,
    /// Requests answered (including exceptions).
    pub requests: AtomicU64,
    /// Exception answers by code 1..=11 (index = code).
    pub exceptions: [AtomicU64; 12],
    /// Requests for another unit id.
    pub wrong_unit: AtomicU64,
    /// Items written by clients.
    pub items_written: AtomicU64,
    /// Client-written values applied to the image by the scan.
    pub writes_applied: AtomicU64,
    /// Scan cycles that skipped publication because a client held the table lock.
    pub publish_skipped: AtomicU64,
    /// Publications done.
    pub publications: AtomicU64,
    /// Client writes refused by a variable's range or read-only rule.
    pub writes_refused: AtomicU64,
}

impl ServerStats {
    /// Counts an exception answer with `code`.
    pub fn exception(&self, code: u8) {
        if let Some(c) = self.exceptions.get(code as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A shared handle, for the frame guard.
#[derive(Clone, Debug)]
pub struct StatsHandle(pub Arc<ServerStats>);

impl GuardStats for StatsHandle {
    fn rejected(&self, code: u8) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0.exception(code);
    }
    fn closed_malformed(&self) {
        self.0.closed_malformed.fetch_add(1, Ordering::Relaxed);
    }
    fn closed_idle(&self) {
        self.0.closed_idle.fetch_add(1, Ordering::Relaxed);
    }
    fn wrong_unit(&self) {
        self.0.wrong_unit.fetch_add(1, Ordering::Relaxed);
    }
}
