//! softplc-io: fieldbus drivers of the softplc runtime.
//!
//! Modbus TCP, both ways, on tokio-modbus ([`modbus`]):
//! - [`ModbusClient`] polls devices listed in an I/O configuration file (see
//!   [`config`] for the format), batching contiguous ranges into as few requests as
//!   the protocol allows, and writes the program's outputs back.
//! - [`ModbusServer`] exposes process-image variables to Modbus clients, with an
//!   explicit map or the OpenPLC-compatible default map.
//!
//! Both implement [`softplc_core::Driver`]. All network I/O happens on one I/O thread
//! per driver (a single-threaded tokio runtime, the only async code of the project);
//! the scan thread only exchanges lock-free buffers with it, so a device that vanishes,
//! answers garbage or answers slowly shows up as input quality, statistics and events,
//! and never delays a scan. Drivers stamp data and events with the engine's clock,
//! which the engine hands them at start.
//!
//! Layout: one module per protocol (`modbus/`, with `client/` and `server/`; `xgt/`,
//! LS Electric's XGT dedicated protocol), and what
//! protocols share beside them: the configuration file (`config/`), the I/O thread
//! (`runtime`), rate-limited events (`ratelimit`) and IP allowlists (`net`).
#![deny(missing_docs)]

pub mod config;
pub mod modbus;
pub mod net;
pub mod ratelimit;
pub mod runtime;
pub mod xgt;

use std::path::Path;

use serde_json::json;
use softplc_core::{ConfigError, Driver, Layout};

use modbus::{bind, plan};

pub use config::{load, parse, DeviceConfig, IoConfig, ServerConfig};
pub use modbus::{Codec, ModbusClient, ModbusServer, RegType, Table, WordOrder};
pub use net::IpNet;

/// Name of the client driver built from a configuration.
pub const CLIENT_DRIVER: &str = "modbus";
/// Name of the server driver.
pub const SERVER_DRIVER: &str = "modbus-server";

/// The drivers a configuration asks for: the client (if it lists devices) and the
/// server (if it has a `[server]` table).
pub fn drivers(cfg: &IoConfig) -> Vec<Box<dyn Driver>> {
    let mut out: Vec<Box<dyn Driver>> = Vec::new();
    if !cfg.devices.is_empty() {
        out.push(Box::new(ModbusClient::new(
            CLIENT_DRIVER,
            cfg.devices.clone(),
        )));
    }
    if let Some(s) = &cfg.server {
        out.push(Box::new(ModbusServer::new(SERVER_DRIVER, s.clone())));
    }
    out
}

/// Loads a file and builds its drivers.
pub fn load_drivers(path: &Path) -> Result<Vec<Box<dyn Driver>>, ConfigError> {
    Ok(drivers(&load(path)?))
}

/// Checks a configuration (and, given a layout, binds it) and describes it as JSON:
/// devices with their endpoints and mappings, requests per poll once bound, and the
/// server. Errors name file, line and key.
pub fn check(cfg: &IoConfig, layout: Option<&Layout>) -> Result<String, ConfigError> {
    let mut devices = Vec::new();
    let mut bound_requests: Vec<Option<(usize, usize)>> = vec![None; cfg.devices.len()];
    if let Some(l) = layout {
        for (i, d) in cfg.devices.iter().enumerate() {
            let reads = bind::bind_points(l, &d.reads, bind::Usage::DeviceRead)?;
            let writes = bind::bind_points(l, &d.writes, bind::Usage::DeviceWrite)?;
            bind::bind_health(l, d)?;
            let rs: Vec<_> = reads
                .iter()
                .map(|p| (p.table, p.address, p.len()))
                .collect();
            let ws: Vec<_> = writes
                .iter()
                .map(|p| (p.table, p.address, p.len()))
                .collect();
            bound_requests[i] = Some((
                plan::plan(&rs, d.max_gap, false).requests.len(),
                plan::plan(&ws, 0, true).requests.len(),
            ));
        }
        if let Some(s) = &cfg.server {
            if !s.map.is_empty() {
                bind::bind_points(l, &s.map, bind::Usage::Server)?;
            }
        }
    }
    for (i, d) in cfg.devices.iter().enumerate() {
        let mut j = json!({
            "name": d.name,
            "endpoint": d.endpoint(),
            "unit_id": d.unit_id,
            "poll_ms": d.poll.as_millis() as u64,
            "timeout_ms": d.timeout.as_millis() as u64,
            "retries": d.retries,
            "fail_after": d.fail_after,
            "reads": d.reads.iter().map(|p| p.vars.len()).sum::<usize>(),
            "writes": d.writes.iter().map(|p| p.vars.len()).sum::<usize>(),
        });
        if let Some((r, w)) = bound_requests[i] {
            j["read_requests_per_poll"] = json!(r);
            j["write_requests"] = json!(w);
        }
        devices.push(j);
    }
    let server = cfg.server.as_ref().map(|s| {
        let mut entries: Option<usize> = None;
        if let Some(l) = layout {
            entries = Some(if s.map.is_empty() {
                bind::default_server_points(l).0.len()
            } else {
                s.map.iter().map(|p| p.vars.len()).sum()
            });
        }
        json!({
            "listen": s.listen.to_string(),
            "unit_id": s.unit_id,
            "default_map": s.map.is_empty(),
            "map_entries": entries,
            "allow": s.allow.iter().map(|n| format!("{}/{}", n.addr, n.prefix)).collect::<Vec<_>>(),
            "read_only": Table::ALL.iter().filter(|t| s.read_only[t.index()]).map(|t| t.name()).collect::<Vec<_>>(),
        })
    });
    let opcua = match &cfg.opcua {
        None => None,
        Some(o) => Some(opcua_json(o, layout)?),
    };
    Ok(json!({
        "file": &*cfg.file,
        "bound": layout.is_some(),
        "devices": devices,
        "server": server,
        "opcua": opcua,
    })
    .to_string())
}

/// The `[server.opcua]` table as `check` describes it; with a layout, the exposed
/// patterns are resolved (one that selects nothing is an error naming it).
fn opcua_json(
    o: &config::OpcuaConfig,
    layout: Option<&Layout>,
) -> Result<serde_json::Value, ConfigError> {
    let exposed = match layout {
        None => None,
        Some(l) => Some(
            config::select(l, &o.expose)
                .map_err(|e| o.loc.error("server.opcua", "expose", e.message))?
                .len(),
        ),
    };
    Ok(json!({
        "endpoint": o.endpoint.to_string(),
        "loopback": o.endpoint.is_loopback(),
        "pki_dir": o.pki_dir.as_ref().map(|p| p.display().to_string()),
        "anonymous": o.anonymous.map(|r| r.name()),
        "users": o.users.iter().map(|u| json!({"name": u.name, "role": u.role.name()})).collect::<Vec<_>>(),
        "expose": o.expose,
        "exposed": exposed,
        "sampling_ms": o.sampling.as_millis() as u64,
    }))
}
