//! The Modbus client's monitor: its devices and connections as the status shows them.
//! The counters themselves are protocol-neutral ([`crate::client::status`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};
use softplc_core::DriverMonitor;

use crate::client::status::{ConnStats, DeviceStats};

pub(super) struct DeviceEntry {
    pub name: String,
    pub unit_id: u8,
    pub conn: usize,
    pub reads: usize,
    pub writes: usize,
    pub read_requests: usize,
    pub write_requests: usize,
    pub stats: Arc<DeviceStats>,
}

/// What the client monitor reports.
pub(super) struct ClientShared {
    pub name: String,
    pub running: AtomicBool,
    pub devices: Mutex<Vec<DeviceEntry>>,
    pub conns: Mutex<Vec<Arc<ConnStats>>>,
}

impl DriverMonitor for ClientShared {
    fn status_json(&self) -> String {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let devs: serde_json::Map<String, Json> = devices
            .iter()
            .map(|d| {
                let mut j = d.stats.json();
                let c = &conns.get(d.conn);
                j["endpoint"] = json!(c.map(|c| c.endpoint.clone()));
                j["connected"] = json!(c
                    .map(|c| c.connected.load(Ordering::Relaxed))
                    .unwrap_or(false));
                j["unit_id"] = json!(d.unit_id);
                j["mapped_reads"] = json!(d.reads);
                j["mapped_writes"] = json!(d.writes);
                j["read_requests_per_poll"] = json!(d.read_requests);
                j["write_requests"] = json!(d.write_requests);
                (d.name.clone(), j)
            })
            .collect();
        let cs: Vec<Json> = conns
            .iter()
            .map(|c| {
                let mut j = json!({
                    "endpoint": c.endpoint,
                    "connected": c.connected.load(Ordering::Relaxed),
                    "connects": c.connects.load(Ordering::Relaxed),
                    "connect_failures": c.connect_failures.load(Ordering::Relaxed),
                    "disconnects": c.disconnects.load(Ordering::Relaxed),
                    "late_answers": c.transport.late.load(Ordering::Relaxed),
                });
                if let Some(l) = &c.line {
                    let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                    j["serial"] = json!({
                        "frames_sent": ld(&l.frames_sent),
                        "frames_received": ld(&l.frames_received),
                        "crc_errors": ld(&l.crc_errors),
                        "cut_frames": ld(&l.cut_frames),
                        "wrong_unit": ld(&l.wrong_unit),
                        "wrong_function": ld(&l.wrong_function),
                        "stray_bytes": ld(&l.stray_bytes),
                        "broadcasts": ld(&l.broadcasts),
                    });
                }
                j
            })
            .collect();
        json!({
            "driver": self.name,
            "kind": "modbus-client",
            "running": self.running.load(Ordering::Relaxed),
            "devices": devs,
            "connections": cs,
        })
        .to_string()
    }
}
