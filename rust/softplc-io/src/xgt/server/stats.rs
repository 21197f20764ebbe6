//! The XGT server's counters, written by the I/O thread (and the scan, for
//! publications) with relaxed atomics and read by the monitor.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::{json, Value as Json};

use crate::xgt::error::NakCode;

/// Server counters. Written by the I/O thread (and the scan for publications), read by
/// the monitor.
#[derive(Debug, Default)]
pub struct XgtServerStats {
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
    /// Connections refused because `max_connections` were open and none was idle long
    /// enough to be closed for them.
    pub refused_limit: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub evicted: AtomicU64,
    /// Connections closed because their stream could not be delimited (after a NAK).
    pub closed_malformed: AtomicU64,
    /// Connections closed for idleness.
    pub closed_idle: AtomicU64,
    /// Connections that ended with an I/O error.
    pub connection_errors: AtomicU64,
    /// Requests answered (NAKs included).
    pub requests: AtomicU64,
    /// NAKs by code, in the order of [`NakCode::KNOWN`].
    pub naks: [AtomicU64; 13],
    /// Blocks (individual) or bytes (continuous) written by clients.
    pub items_written: AtomicU64,
    /// Client-written values applied to the image by the scan.
    pub writes_applied: AtomicU64,
    /// Client writes refused by a variable's range or read-only rule, or a read-only
    /// device.
    pub writes_refused: AtomicU64,
    /// Scan cycles that skipped publication because a client held the lock.
    pub publish_skipped: AtomicU64,
    /// Publications done.
    pub publications: AtomicU64,
}

impl XgtServerStats {
    /// Counts a NAK with `code`.
    pub fn nak(&self, code: NakCode) {
        if let Some(i) = NakCode::KNOWN.iter().position(|(c, _)| *c == code) {
            self.naks[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The NAK counts by code (`"0x0004"`), with their meaning.
    pub fn naks_json(&self) -> Json {
        let m: serde_json::Map<String, Json> = NakCode::KNOWN
            .iter()
            .zip(self.naks.iter())
            .map(|((c, meaning), n)| {
                (
                    format!("0x{:04X}", c.code()),
                    json!({"meaning": meaning, "count": n.load(Ordering::Relaxed)}),
                )
            })
            .collect();
        Json::Object(m)
    }
}
