//! A client driver's counters, whatever its protocol: per device (polls, timeouts,
//! round trips, health) and per connection. Written by the poller (and the scan, for
//! clamps and degraded cycles) with relaxed atomics; read by the drivers' monitors.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};

/// Device health as the monitor shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Not polled yet.
    Waiting = 0,
    /// Last poll succeeded.
    Good = 1,
    /// Some polls failed, fewer than `fail_after`.
    Failing = 2,
    /// `fail_after` polls failed in a row: inputs are quality=bad.
    Bad = 3,
}

impl Health {
    /// The name the monitors show (`good`) for a stored health value.
    pub fn name(v: u8) -> &'static str {
        match v {
            1 => "good",
            2 => "failing",
            3 => "bad",
            _ => "waiting",
        }
    }
}

/// Counters of one device. Written by the poller (the scan adds clamps), read by monitors.
#[derive(Debug, Default)]
pub struct DeviceStats {
    /// Successful polls.
    pub polls_ok: AtomicU64,
    /// Failed polls.
    pub polls_failed: AtomicU64,
    /// Requests sent.
    pub requests: AtomicU64,
    /// Requests that timed out.
    pub timeouts: AtomicU64,
    /// Negative answers: Modbus exceptions, XGT NAKs.
    pub exceptions: AtomicU64,
    /// Undecodable or mismatching responses.
    pub garbage: AtomicU64,
    /// Connection-level failures while a request was under way.
    pub transport_errors: AtomicU64,
    /// Write requests that succeeded.
    pub writes_ok: AtomicU64,
    /// Write requests that failed.
    pub writes_failed: AtomicU64,
    /// Write requests the device rejected with an exception or NAK (part of
    /// `writes_failed`).
    pub writes_rejected: AtomicU64,
    /// Polls attempted again after a failure (on the device's next turn).
    pub retries: AtomicU64,
    /// Times all outputs were written again after a (re)connection.
    pub rewrites: AtomicU64,
    /// Last poll round trip (ns).
    pub rtt_last_ns: AtomicU64,
    /// Shortest poll round trip (ns).
    pub rtt_min_ns: AtomicU64,
    /// Longest poll round trip (ns).
    pub rtt_max_ns: AtomicU64,
    /// Sum of poll round trips (ns), for the mean.
    pub rtt_sum_ns: AtomicU64,
    /// Failed polls in a row.
    pub failed_in_row: AtomicU64,
    /// [`Health`] as u8.
    pub health: AtomicU8,
    /// Values clamped to their type's range on the way in or out.
    pub clamps: AtomicU64,
    /// Scan cycles that saw this device's inputs bad or stale.
    pub degraded_cycles: AtomicU64,
    /// The last error, for people.
    pub last_error: Mutex<String>,
}

impl DeviceStats {
    pub(crate) fn record_rtt(&self, ns: u64) {
        self.rtt_last_ns.store(ns, Ordering::Relaxed);
        self.rtt_sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.rtt_max_ns.fetch_max(ns, Ordering::Relaxed);
        let min = self.rtt_min_ns.load(Ordering::Relaxed);
        if min == 0 || ns < min {
            self.rtt_min_ns.store(ns, Ordering::Relaxed);
        }
    }

    pub(crate) fn set_error(&self, text: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }

    /// The counters as the monitors show them.
    pub fn json(&self) -> Json {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ok = ld(&self.polls_ok);
        json!({
            "health": Health::name(self.health.load(Ordering::Relaxed)),
            "polls_ok": ok,
            "polls_failed": ld(&self.polls_failed),
            "failed_in_row": ld(&self.failed_in_row),
            "requests": ld(&self.requests),
            "timeouts": ld(&self.timeouts),
            "exceptions": ld(&self.exceptions),
            "garbage": ld(&self.garbage),
            "transport_errors": ld(&self.transport_errors),
            "writes_ok": ld(&self.writes_ok),
            "writes_failed": ld(&self.writes_failed),
            "writes_rejected": ld(&self.writes_rejected),
            "retries": ld(&self.retries),
            "rewrites": ld(&self.rewrites),
            "clamps": ld(&self.clamps),
            "degraded_cycles": ld(&self.degraded_cycles),
            "rtt_last_us": ld(&self.rtt_last_ns) as f64 / 1e3,
            "rtt_min_us": ld(&self.rtt_min_ns) as f64 / 1e3,
            "rtt_max_us": ld(&self.rtt_max_ns) as f64 / 1e3,
            "rtt_mean_us": if ok > 0 { ld(&self.rtt_sum_ns) as f64 / ok as f64 / 1e3 } else { 0.0 },
            "last_error": self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        })
    }
}

/// Counters of one TCP connection (shared by the devices behind one gateway).
#[derive(Debug, Default)]
pub struct ConnStats {
    /// `host:port`.
    pub endpoint: String,
    /// Connected now.
    pub connected: AtomicBool,
    /// Successful connects.
    pub connects: AtomicU64,
    /// Failed connection attempts.
    pub connect_failures: AtomicU64,
    /// Connections lost or dropped after an error.
    pub disconnects: AtomicU64,
    /// Frames received and late answers dropped.
    pub transport: Arc<TransportStats>,
    /// On a serial line: what the RTU master saw on it. (Modbus RTU is the only serial
    /// protocol of a client driver; the counters stay with the connection they describe.)
    pub line: Option<Arc<crate::modbus::rtu::LineStats>>,
}

/// What a connection's transport has seen. Written by the I/O thread.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Whole frames received (answers handed on and late answers dropped).
    pub frames: AtomicU64,
    /// Answers to requests that had timed out already (or that match no request in
    /// flight), dropped.
    pub late: AtomicU64,
}
