//! The XGT client's monitor: its PLCs and their connections as the status shows them.
//! The counters are the ones every client driver keeps ([`crate::client::status`]);
//! a PLC's negative answers are counted as `naks`, and `last_error` carries LS's error
//! code and meaning.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};
use softplc_core::DriverMonitor;

use crate::client::status::{ConnStats, DeviceStats};
use crate::xgt::Cpu;

/// One PLC as the monitor shows it.
pub(super) struct DeviceEntry {
    pub name: String,
    pub cpu: Cpu,
    pub pipeline: usize,
    pub reads: usize,
    pub writes: usize,
    pub read_requests: usize,
    pub write_requests: usize,
    pub stats: Arc<DeviceStats>,
    pub conn: Arc<ConnStats>,
}

/// What the client monitor reports.
pub(super) struct ClientShared {
    pub name: String,
    pub running: AtomicBool,
    pub devices: Mutex<Vec<DeviceEntry>>,
}

impl DriverMonitor for ClientShared {
    fn status_json(&self) -> String {
        let devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let devs: serde_json::Map<String, Json> = devices
            .iter()
            .map(|d| {
                let mut j = d.stats.json();
                if let Some(o) = j.as_object_mut() {
                    // A PLC's negative answers are NAKs, not Modbus exceptions.
                    if let Some(n) = o.remove("exceptions") {
                        o.insert("naks".to_string(), n);
                    }
                }
                j["endpoint"] = json!(d.conn.endpoint);
                j["connected"] = json!(d.conn.connected.load(Ordering::Relaxed));
                j["cpu"] = json!(d.cpu.name());
                j["pipeline"] = json!(d.pipeline);
                j["mapped_reads"] = json!(d.reads);
                j["mapped_writes"] = json!(d.writes);
                j["read_requests_per_poll"] = json!(d.read_requests);
                j["write_requests"] = json!(d.write_requests);
                (d.name.clone(), j)
            })
            .collect();
        let cs: Vec<Json> = devices
            .iter()
            .map(|d| {
                let c = &d.conn;
                json!({
                    "endpoint": c.endpoint,
                    "connected": c.connected.load(Ordering::Relaxed),
                    "connects": c.connects.load(Ordering::Relaxed),
                    "connect_failures": c.connect_failures.load(Ordering::Relaxed),
                    "disconnects": c.disconnects.load(Ordering::Relaxed),
                    "late_answers": c.transport.late.load(Ordering::Relaxed),
                })
            })
            .collect();
        json!({
            "driver": self.name,
            "kind": "xgt-client",
            "running": self.running.load(Ordering::Relaxed),
            "devices": devs,
            "connections": cs,
        })
        .to_string()
    }
}
