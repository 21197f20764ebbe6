//! The XGT server driver: softplc answers as an LS Electric XGT PLC (FEnet, TCP 2004),
//! so that an LS HMI, a SCADA or any XGT client on a test bench talks to softplc in
//! place of the real PLC.
//!
//! Connections are served on the driver's I/O thread (`listen`), each request answered
//! by the `service` from the shared device `memory`. The scan exchanges data with them
//! only through that memory: `write_outputs` publishes the image (try-lock, skipped for
//! one cycle if a client is writing at that instant), `read_inputs` applies client
//! writes. Neither waits, allocates or makes syscalls.
//!
//! The default map puts each image area in one device, byte for byte
//! ([`crate::xgt::bind::default_device`]); an explicit map (`[[server.xgt.map]]`) puts
//! variables wherever an HMI project expects them (`D100`, `M172C`).
//!
//! Files: this one (the driver and its scan side), `listen` (accept loop and
//! connections), `service` (answering a request, NAK codes, write rules), `memory` (the
//! shared device memory), `stats` (counters).

mod listen;
pub mod memory;
pub mod service;
pub mod stats;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::json;
use softplc_core::{
    Area, ConfigError, Driver, DriverMonitor, Image, IoCtx, IoError, IoStatus, Layout, Quality,
    SafeState, StartCtx,
};
use tokio::net::TcpListener;

use crate::config::XgtServerConfig;
use crate::runtime::{IoThread, StopHandle};
use crate::server::log::ServerLog;
use crate::server::seqlock::WriteGuard;

use super::bind::{bind_points, default_device, default_server_points, place, Usage, XgtPoint};
use super::device::Device;

use listen::{serve, Acceptor};
use memory::Memory;
use service::{Service, WriteRules};
use stats::XgtServerStats;

/// A variable the server serves, and where its value is in device memory.
#[derive(Clone, Debug, PartialEq)]
pub struct ServedPoint {
    /// The variable and its PLC address.
    pub point: XgtPoint,
    /// Its device.
    pub device: Device,
    /// Its first byte.
    pub byte: usize,
    /// For a bit, its bit number.
    pub bit: Option<u8>,
    /// Bytes it covers (a bit: 1).
    pub size: usize,
}

impl ServedPoint {
    fn new(point: XgtPoint) -> Option<ServedPoint> {
        let (byte, bit) = place(&point.address)?;
        Some(ServedPoint {
            device: point.address.device,
            byte: usize::try_from(byte).ok()?,
            bit,
            size: point.address.ty.size(),
            point,
        })
    }

    fn end(&self) -> usize {
        self.byte + self.size
    }

    /// True when a client write to it waits for the scan. Atomic loads only.
    fn pending(&self, m: &Memory) -> bool {
        match self.bit {
            Some(_) => m.pending(self.device, self.byte, self.bit),
            None => (self.byte..self.end()).any(|a| m.pending(self.device, a, None)),
        }
    }

    /// The value in memory, as raw little-endian bits. Atomic loads only.
    fn raw(&self, m: &Memory) -> u64 {
        match self.bit {
            Some(k) => ((m.byte(self.device, self.byte) >> k) & 1) as u64,
            None => (0..self.size).fold(0u64, |v, i| {
                v | (m.byte(self.device, self.byte + i) as u64) << (8 * i)
            }),
        }
    }
}

/// Variable, address, PLC-side type, writable: for the monitor.
type MapEntry = (String, String, String, bool);

struct ServerShared {
    name: String,
    stats: Arc<XgtServerStats>,
    config_listen: SocketAddr,
    cpu: &'static str,
    default_map: bool,
    mapped: Mutex<Vec<MapEntry>>,
    served: Mutex<Vec<(Device, usize)>>,
}

impl DriverMonitor for ServerShared {
    fn status_json(&self) -> String {
        let s = &self.stats;
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let listen = s
            .listen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|a| a.to_string());
        let map: Vec<_> = self
            .mapped
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(v, a, t, w)| json!({"var": v, "address": a, "type": t, "writable": w}))
            .collect();
        let served: serde_json::Map<String, serde_json::Value> = self
            .served
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(d, n)| (d.letter().to_string(), json!(n)))
            .collect();
        json!({
            "driver": self.name,
            "kind": "xgt-server",
            "running": s.running.load(Ordering::Relaxed),
            "listen": listen,
            "configured_listen": self.config_listen.to_string(),
            "cpu": self.cpu,
            "default_map": self.default_map,
            "served_bytes": served,
            "connections": ld(&s.connections),
            "accepted": ld(&s.accepted),
            "refused_allowlist": ld(&s.refused_allowlist),
            "refused_limit": ld(&s.refused_limit),
            "evicted": ld(&s.evicted),
            "closed_malformed": ld(&s.closed_malformed),
            "closed_idle": ld(&s.closed_idle),
            "connection_errors": ld(&s.connection_errors),
            "requests": ld(&s.requests),
            "naks": s.naks_json(),
            "items_written": ld(&s.items_written),
            "writes_applied": ld(&s.writes_applied),
            "writes_refused": ld(&s.writes_refused),
            "publications": ld(&s.publications),
            "publish_skipped": ld(&s.publish_skipped),
            "map": map,
        })
        .to_string()
    }
}

/// Memory, the output points, and an image holding each output's safe value.
type SafeTarget = (Arc<Memory>, Vec<ServedPoint>, Image);

/// The server's emergency handle: publishes the safe values of served outputs straight
/// from the watchdog thread, so clients read safe outputs while the scan is stuck.
#[derive(Default)]
struct ServerSafe {
    at: Mutex<Option<SafeTarget>>,
    stop: Mutex<Option<StopHandle>>,
}

impl SafeState for ServerSafe {
    fn force_safe(&self) {
        let at = self.at.lock().unwrap_or_else(|p| p.into_inner());
        let Some((memory, points, image)) = at.as_ref() else {
            return;
        };
        // Connections hold the lock for one request at most: spin for it (this is the
        // watchdog thread, never the scan).
        let g = memory.lock();
        for p in points {
            publish_point(memory, &g, p, image);
        }
    }

    fn shutdown(&self) {
        if let Some(s) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            s.stop();
        }
    }
}

/// The XGT server driver.
pub struct XgtServer {
    name: String,
    cfg: XgtServerConfig,
    points: Vec<ServedPoint>,
    /// By point: its device takes client writes.
    writable: Vec<bool>,
    memory: Option<Arc<Memory>>,
    shared: Arc<ServerShared>,
    io: Option<IoThread>,
    safe: Arc<ServerSafe>,
    rules: Arc<WriteRules>,
}

impl XgtServer {
    /// A server driver named `name`.
    pub fn new(name: &str, cfg: XgtServerConfig) -> XgtServer {
        let shared = Arc::new(ServerShared {
            name: name.to_string(),
            stats: Arc::default(),
            config_listen: cfg.listen,
            cpu: cfg.cpu.name(),
            default_map: cfg.map.is_empty(),
            mapped: Mutex::default(),
            served: Mutex::default(),
        });
        XgtServer {
            name: name.to_string(),
            cfg,
            points: Vec::new(),
            writable: Vec::new(),
            memory: None,
            shared,
            io: None,
            safe: Arc::default(),
            rules: Arc::default(),
        }
    }

    /// The address the server listens on, once started (port 0 resolved).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *self
            .shared
            .stats
            .listen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration.
    pub fn config(&self) -> &XgtServerConfig {
        &self.cfg
    }
}

/// Served variables and the bytes served per device.
pub type Served = (Vec<ServedPoint>, Vec<(Device, usize)>);

/// The served points of a configuration bound to `layout`, and the bytes served per
/// device; errors name the map entry's file, line and key.
pub fn served_points(layout: &Layout, cfg: &XgtServerConfig) -> Result<Served, ConfigError> {
    let points = if cfg.map.is_empty() {
        default_server_points(layout, cfg.cpu)
    } else {
        bind_points(layout, &cfg.map, &cfg.naming, Usage::Server)?.points
    };
    let served: Vec<ServedPoint> = points.into_iter().filter_map(ServedPoint::new).collect();
    let mut sizes: Vec<(Device, usize)> = Vec::new();
    if cfg.map.is_empty() {
        // The default map serves each area whole: a client may read any of its bytes.
        for area in [Area::Input, Area::Output, Area::Memory] {
            sizes.push((default_device(cfg.cpu, area), layout.area_bytes(area)));
        }
    } else {
        for p in &served {
            match sizes.iter_mut().find(|(d, _)| *d == p.device) {
                Some((_, n)) => *n = (*n).max(p.end()),
                None => sizes.push((p.device, p.end())),
            }
        }
    }
    Ok((served, sizes))
}

impl Driver for XgtServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn bind(&mut self, layout: &Layout) -> Result<(), ConfigError> {
        let (points, sizes) = served_points(layout, &self.cfg)?;
        let writable: Vec<bool> = points
            .iter()
            .map(|p| !self.cfg.read_only.contains(&p.device))
            .collect();
        *self.shared.mapped.lock().unwrap_or_else(|p| p.into_inner()) = points
            .iter()
            .zip(&writable)
            .map(|(p, w)| {
                let a = match p.point.address.wire_name(&self.cfg.naming) {
                    Ok(n) => n.to_string(),
                    Err(_) => p.point.address.to_string(),
                };
                (p.point.name.clone(), a, p.point.codec.ty.to_string(), *w)
            })
            .collect();
        *self.shared.served.lock().unwrap_or_else(|p| p.into_inner()) = sizes.clone();
        let memory = Arc::new(Memory::new(&sizes));
        // Publish initial values, so that clients connecting before the first scan
        // see the variables' initial values, not zeros.
        let image = Image::new(layout);
        if let Some(g) = memory.try_lock() {
            for p in &points {
                publish_point(&memory, &g, p, &image);
            }
        }
        let outputs: Vec<ServedPoint> = points
            .iter()
            .filter(|p| p.point.slot.area == Area::Output)
            .cloned()
            .collect();
        let mut safe_image = Image::new(layout);
        for p in &outputs {
            safe_image.store(p.point.slot, layout.var(p.point.var).safe);
        }
        *self.safe.at.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((memory.clone(), outputs, safe_image));
        let restricted: Vec<ServedPoint> = points
            .iter()
            .zip(&writable)
            .filter(|(_, w)| **w)
            .map(|(p, _)| p.clone())
            .collect();
        self.rules = Arc::new(WriteRules::new(layout, &restricted));
        self.memory = Some(memory);
        self.points = points;
        self.writable = writable;
        Ok(())
    }

    fn start(&mut self, cx: &StartCtx) -> Result<(), IoError> {
        self.stop();
        let Some(memory) = self.memory.clone() else {
            return Err(IoError {
                message: format!("driver {:?}: start before bind", self.name),
            });
        };
        let listen = self.cfg.listen;
        let std_listener = std::net::TcpListener::bind(listen).map_err(|e| IoError {
            message: format!("xgt server: cannot listen on {listen}: {e}"),
        })?;
        let local = std_listener.local_addr().map_err(|e| IoError {
            message: format!("xgt server: {e}"),
        })?;
        std_listener.set_nonblocking(true).map_err(|e| IoError {
            message: format!("xgt server: {e}"),
        })?;
        *self
            .shared
            .stats
            .listen
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(local);
        let log = Arc::new(ServerLog::new(
            "xgt server",
            cx.events.clone(),
            cx.clock.clone(),
        ));
        let stats = self.shared.stats.clone();
        let acceptor = Acceptor {
            service: Arc::new(Service {
                memory,
                cpu: self.cfg.cpu,
                naming: self.cfg.naming,
                read_only: self.cfg.read_only.clone(),
                rules: self.rules.clone(),
                log: log.clone(),
                stats: stats.clone(),
            }),
            stats,
            conns: Arc::default(),
            allow: self.cfg.allow.clone(),
            max_conn: self.cfg.max_connections,
            idle: self.cfg.idle_timeout,
            log,
        };
        let io = IoThread::spawn(&format!("softplc-{}", self.name), move |shutdown| {
            let listener = TcpListener::from_std(std_listener);
            serve(listener, acceptor, shutdown, local)
        })?;
        self.shared.stats.running.store(true, Ordering::Relaxed);
        *self.safe.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(io.stop_handle());
        self.io = Some(io);
        Ok(())
    }

    /// Applies client writes. Scan thread: `try_lock` on the memory (a client writing
    /// at this instant leaves its writes for the next cycle); no allocation or syscalls.
    fn read_inputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        let Some(m) = self.memory.as_deref() else {
            return IoStatus::Ok;
        };
        if !m.take_dirty() {
            return IoStatus::Ok;
        }
        let Some(g) = m.try_lock() else {
            m.set_dirty();
            return IoStatus::Ok;
        };
        let mut applied = 0u64;
        for (p, w) in self.points.iter().zip(&self.writable) {
            if !*w || !p.pending(m) {
                continue;
            }
            let (v, _) = p.point.codec.decode(p.raw(m));
            cx.image.store(p.point.slot, v);
            if p.point.slot.area == Area::Input {
                let i = p.point.var.index();
                cx.image.quality[i] = Quality::Good;
                cx.image.stamp_ns[i] = cx.now_ns;
            }
            match p.bit {
                Some(_) => m.clear_pending(&g, p.device, p.byte, p.bit),
                None => (p.byte..p.end()).for_each(|a| m.clear_pending(&g, p.device, a, None)),
            }
            applied += 1;
        }
        drop(g);
        if applied > 0 {
            self.shared
                .stats
                .writes_applied
                .fetch_add(applied, Ordering::Relaxed);
        }
        IoStatus::Ok
    }

    /// Publishes the image into the memory. Scan thread: `try_lock` (a client holding
    /// the memory skips one publication, counted); no allocation or syscalls.
    fn write_outputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        let Some(m) = self.memory.as_deref() else {
            return IoStatus::Ok;
        };
        let Some(g) = m.try_lock() else {
            self.shared
                .stats
                .publish_skipped
                .fetch_add(1, Ordering::Relaxed);
            return IoStatus::Ok;
        };
        for p in &self.points {
            publish_point(m, &g, p, cx.image);
        }
        drop(g);
        self.shared
            .stats
            .publications
            .fetch_add(1, Ordering::Relaxed);
        IoStatus::Ok
    }

    fn stop(&mut self) {
        if let Some(mut io) = self.io.take() {
            io.stop();
        }
        self.shared.stats.running.store(false, Ordering::Relaxed);
    }

    fn monitor(&self) -> Option<Arc<dyn DriverMonitor>> {
        Some(self.shared.clone())
    }

    fn safe_state(&self) -> Option<Arc<dyn SafeState>> {
        Some(self.safe.clone())
    }
}

impl Drop for XgtServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Publishes one variable unless a client write to it is still pending. Atomic
/// operations under the caller's lock: no allocation, locks or syscalls.
fn publish_point(m: &Memory, g: &WriteGuard<'_>, p: &ServedPoint, image: &Image) {
    if p.pending(m) {
        return;
    }
    let (raw, _) = p.point.codec.encode(image.load(p.point.slot));
    match p.bit {
        Some(k) => m.publish_bit(g, p.device, p.byte, k, raw != 0),
        None => {
            let bytes = raw.to_le_bytes();
            for (i, b) in bytes[..p.size].iter().enumerate() {
                m.publish_byte(g, p.device, p.byte + i, *b);
            }
        }
    }
}
