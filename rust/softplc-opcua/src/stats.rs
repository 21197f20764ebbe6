//! The server's counters and its status as the engine's driver monitor reports it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use serde_json::json;
use softplc_core::DriverMonitor;

/// Counters, written by the server's thread, read by anyone.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// True while the server thread runs.
    pub running: AtomicBool,
    /// The address it listens on (port 0 resolved), once started.
    pub listen: Mutex<Option<SocketAddr>>,
    /// Client writes accepted (each applied at the start of the next cycle).
    pub writes_accepted: AtomicU64,
    /// Client writes refused (read-only, out of range, wrong type, not allowed).
    pub writes_refused: AtomicU64,
    /// Method calls accepted.
    pub calls_accepted: AtomicU64,
    /// Method calls refused.
    pub calls_refused: AtomicU64,
    /// Sampling ticks.
    pub samples: AtomicU64,
    /// Ticks at which no cycle answered in time (the engine stopped stepping, or runs
    /// slower than the sampling interval).
    pub samples_without_frame: AtomicU64,
    /// Variable values pushed to the address space (changes only).
    pub values_pushed: AtomicU64,
    /// Frames the scan published.
    pub frames: AtomicU64,
}

/// What the monitor reports besides the counters.
#[derive(Debug)]
pub struct Described {
    /// Driver name.
    pub name: String,
    /// Configured endpoint URL.
    pub endpoint: String,
    /// Security policies offered, as `policy/mode`.
    pub security: Vec<String>,
    /// Variables exposed.
    pub exposed: usize,
    /// Sampling interval (ms).
    pub sampling_ms: u64,
    /// Certificate directory, if any.
    pub pki_dir: Option<String>,
}

/// The monitor: description plus counters.
#[derive(Debug)]
pub struct Monitor {
    /// Fixed facts (set at bind and start).
    pub described: Mutex<Described>,
    /// Counters.
    pub stats: std::sync::Arc<ServerStats>,
}

impl DriverMonitor for Monitor {
    fn status_json(&self) -> String {
        let s = &self.stats;
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let d = self.described.lock().unwrap_or_else(|p| p.into_inner());
        let listen = s
            .listen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|a| a.to_string());
        json!({
            "driver": d.name,
            "kind": "opcua-server",
            "running": s.running.load(Ordering::Relaxed),
            "endpoint": d.endpoint,
            "listen": listen,
            "security": d.security,
            "exposed": d.exposed,
            "sampling_ms": d.sampling_ms,
            "pki_dir": d.pki_dir,
            "writes_accepted": ld(&s.writes_accepted),
            "writes_refused": ld(&s.writes_refused),
            "calls_accepted": ld(&s.calls_accepted),
            "calls_refused": ld(&s.calls_refused),
            "samples": ld(&s.samples),
            "samples_without_frame": ld(&s.samples_without_frame),
            "values_pushed": ld(&s.values_pushed),
            "frames": ld(&s.frames),
        })
        .to_string()
    }
}
