//! softplc-io: fieldbus drivers of the softplc runtime.
//!
//! Modbus TCP and RTU, both ways ([`modbus`]):
//! - [`ModbusClient`] polls devices listed in an I/O configuration file (see
//!   [`config`] for the format), batching contiguous ranges into as few requests as
//!   the protocol allows, and writes the program's outputs back.
//! - [`ModbusServer`] exposes process-image variables to Modbus clients, with an
//!   explicit map or the OpenPLC-compatible default map; on a serial line it is the
//!   Modbus RTU slave ([`modbus::rtu`]). Client devices may hang on serial lines too.
//!
//! LS Electric's XGT dedicated protocol (FEnet, TCP 2004), both ways ([`xgt`]):
//! [`XgtClient`] polls XGT PLCs named in an I/O configuration file by their native
//! device names (`D100`, `%MW100`), and [`XgtServer`] answers as an XGT PLC.
//!
//! Both implement [`softplc_core::Driver`]. All network I/O happens on one I/O thread
//! per driver (a single-threaded tokio runtime, the only async code of the project);
//! the scan thread only exchanges lock-free buffers with it, so a device that vanishes,
//! answers garbage or answers slowly shows up as input quality, statistics and events,
//! and never delays a scan. Drivers stamp data and events with the engine's clock,
//! which the engine hands them at start.
//!
//! Layout: one module per protocol (`modbus/`, with `client/` and `server/`; `xgt/`,
//! LS Electric's XGT dedicated protocol, with `client/` and `server/`), and what
//! protocols share beside them: the configuration file (`config/`), what client drivers
//! share (`client/`: counters, quality, the safe-output latch, reconnection), what
//! server drivers share (`server/`: connections, events, the sequence lock), number
//! conversions (`convert`), the I/O thread (`runtime`), rate-limited events
//! (`ratelimit`) and IP allowlists (`net`).
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod convert;
pub mod modbus;
pub mod net;
pub mod ratelimit;
pub mod runtime;
pub mod server;
pub mod xgt;

use std::path::Path;

use serde_json::json;
use softplc_core::{ConfigError, Driver, Layout};

use modbus::{bind, plan};

pub use config::{
    load, parse, DeviceConfig, IoConfig, RtuServerConfig, SerialPortConfig, ServerConfig,
};
pub use config::{XgtDeviceConfig, XgtServerConfig};
pub use modbus::{Codec, ModbusClient, ModbusServer, RegType, Table, WordOrder};
pub use net::IpNet;
pub use xgt::client::XgtClient;
pub use xgt::server::XgtServer;

/// Name of the client driver built from a configuration.
pub const CLIENT_DRIVER: &str = "modbus";
/// Name of the server driver.
pub const SERVER_DRIVER: &str = "modbus-server";
/// Name of the XGT client driver built from a configuration.
pub const XGT_CLIENT_DRIVER: &str = "xgt";
/// Name of the XGT server driver.
pub const XGT_SERVER_DRIVER: &str = "xgt-server";

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
    out.extend(rtu_server_drivers(cfg));
    out.extend(xgt_drivers(cfg));
    out
}

/// The XGT drivers a configuration asks for: the client (if it lists XGT devices) and
/// the server (if it has `[server.xgt]`).
pub fn xgt_drivers(cfg: &IoConfig) -> Vec<Box<dyn Driver>> {
    let mut out: Vec<Box<dyn Driver>> = Vec::new();
    if !cfg.xgt_devices.is_empty() {
        out.push(Box::new(XgtClient::new(
            XGT_CLIENT_DRIVER,
            cfg.xgt_devices.clone(),
        )));
    }
    if let Some(s) = &cfg.xgt_server {
        out.push(Box::new(XgtServer::new(XGT_SERVER_DRIVER, s.clone())));
    }
    out
}

/// Name of the RTU server driver on the port named `port`.
pub fn rtu_server_driver_name(port: &str) -> String {
    format!("modbus-rtu-server-{port}")
}

/// One RTU server driver per `[[rtu_server]]`.
fn rtu_server_drivers(cfg: &IoConfig) -> Vec<Box<dyn Driver>> {
    cfg.rtu_servers
        .iter()
        .map(|s| {
            Box::new(modbus::rtu::rtu_server(
                &rtu_server_driver_name(&s.port.name),
                s,
            )) as Box<dyn Driver>
        })
        .collect()
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
        for s in &cfg.rtu_servers {
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
            "strict_map": s.strict_map,
        })
    });
    let (ports, rtu_servers) = serial_json(cfg);
    let (xgt_devices, xgt_server) = xgt_check(cfg, layout)?;
    let opcua = match &cfg.opcua {
        None => None,
        Some(o) => Some(opcua_json(o, layout)?),
    };
    Ok(json!({
        "file": &*cfg.file,
        "bound": layout.is_some(),
        "devices": devices,
        "server": server,
        "ports": ports,
        "rtu_servers": rtu_servers,
        "xgt_devices": xgt_devices,
        "xgt_server": xgt_server,
        "opcua": opcua,
    })
    .to_string())
}

/// The serial part of [`check`]'s description: ports and RTU servers.
fn serial_json(cfg: &IoConfig) -> (serde_json::Value, serde_json::Value) {
    let ports: Vec<_> = cfg
        .ports
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "path": p.path,
                "baud": p.baud,
                "parity": p.parity.name(),
                "data_bits": p.data_bits,
                "stop_bits": p.stop_bits,
                "t35_us": p.t35().as_micros() as u64,
                "devices": cfg.devices.iter().filter(|d| d.serial.as_ref().is_some_and(|s| s.name == p.name)).map(|d| d.name.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let servers: Vec<_> = cfg
        .rtu_servers
        .iter()
        .map(|s| {
            json!({
                "port": s.port.name,
                "unit_id": s.unit_id,
                "default_map": s.map.is_empty(),
                "strict_map": s.strict_map,
            })
        })
        .collect();
    (json!(ports), json!(servers))
}

/// The XGT part of [`check`]: PLCs (with their requests per poll once bound) and the
/// XGT server (with its served variables once bound).
fn xgt_check(
    cfg: &IoConfig,
    layout: Option<&Layout>,
) -> Result<(serde_json::Value, serde_json::Value), ConfigError> {
    let mut devices = Vec::new();
    for d in &cfg.xgt_devices {
        let mut j = json!({
            "name": d.name,
            "endpoint": d.endpoint(),
            "cpu": d.cpu.name(),
            "hex_bit": d.naming.uses_hex_bit(),
            "poll_ms": d.poll.as_millis() as u64,
            "timeout_ms": d.timeout.as_millis() as u64,
            "retries": d.retries,
            "fail_after": d.fail_after,
            "pipeline": d.pipeline,
            "reads": d.reads.iter().map(|p| p.vars.len()).sum::<usize>(),
            "writes": d.writes.iter().map(|p| p.vars.len()).sum::<usize>(),
        });
        if let Some(l) = layout {
            let (r, w) = xgt::client::plan_counts(l, d)?;
            j["read_requests_per_poll"] = json!(r);
            j["write_requests"] = json!(w);
        }
        devices.push(j);
    }
    let server = match &cfg.xgt_server {
        None => serde_json::Value::Null,
        Some(s) => {
            let entries = match layout {
                Some(l) => Some(xgt::server::served_points(l, s)?.0.len()),
                None => None,
            };
            json!({
                "listen": s.listen.to_string(),
                "cpu": s.cpu.name(),
                "default_map": s.map.is_empty(),
                "map_entries": entries,
                "allow": s.allow.iter().map(|n| format!("{}/{}", n.addr, n.prefix)).collect::<Vec<_>>(),
                "read_only": s.read_only.iter().map(|d| d.letter().to_string()).collect::<Vec<_>>(),
                "max_connections": s.max_connections,
            })
        }
    };
    Ok((json!(devices), server))
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
