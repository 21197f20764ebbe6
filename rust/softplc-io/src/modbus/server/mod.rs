//! The Modbus TCP server driver: exposes process-image variables to Modbus clients.
//!
//! Connections are served on the driver's I/O thread by tokio-modbus's TCP server,
//! behind a [`guard::FrameGuard`] that answers malformed requests. The scan exchanges data
//! with them only through the atomic [`Tables`]: `write_outputs` publishes the image
//! (try-lock, skipped for one cycle if a client is writing at that instant),
//! `read_inputs` applies client writes. Neither waits, allocates or makes syscalls.
//!
//! The accept loop keeps a list of open connections: when `max_connections` are open, a
//! newcomer takes the place of one idle at least [`EVICT_MIN_IDLE`], and connection
//! events are rate-limited ([`log::CONN_EVENTS_PER_SECOND`]) so that a flood of
//! connections cannot flood the event log.
//!
//! Files: this one (the driver and its scan side), `listen` (the accept loop), `guard`
//! (request frames checked before the codec), `service` (one connection's requests),
//! `tables` (the shared Modbus tables), `rules` (variables' write rules), `stats`
//! (counters). Open connections and the rate-limited event log are shared with the XGT
//! server ([`crate::server`]).

pub mod guard;
mod listen;
pub mod rules;
pub(crate) mod service;
pub mod stats;
pub mod tables;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::json;
use softplc_core::{
    Area, ConfigError, Driver, DriverMonitor, Image, IoCtx, IoError, IoStatus, Layout, Quality,
    SafeState, StartCtx,
};
use tokio::net::TcpListener;

use crate::config::{SerialPortConfig, ServerConfig};
use crate::modbus::bind::{bind_points, default_server_points, BoundPoint, Usage};
use crate::modbus::rtu::slave::{Slave, SlaveStats};
use crate::modbus::Table;
use crate::runtime::{IoThread, StopHandle};
pub use crate::server::log;

use listen::{serve, Acceptor};
pub use listen::{BUSY_REPLY_WAIT, EVICT_MIN_IDLE, MAX_BUSY_REPLIES};
use log::ServerLog;
use rules::WriteRules;
use service::ConnService;
use stats::ServerStats;
use tables::{Tables, WriteGuard};

/// Items per table of the default map unless `strict_map`: OpenPLC v3's fixed tables
/// (coils, discrete inputs, input registers, holding registers), so that a SCADA
/// block read that OpenPLC serves is served here too.
pub const OPENPLC_TABLE_SIZES: [usize; 4] = [8192, 8192, 1024, 8192];

/// Variable, table, address, item count, writable: for the monitor.
type MapEntry = (String, Table, u16, usize, bool);

struct ServerShared {
    name: String,
    stats: Arc<ServerStats>,
    config_listen: SocketAddr,
    unit_id: u8,
    mapped: std::sync::Mutex<Vec<MapEntry>>,
    unmapped: std::sync::Mutex<Vec<String>>,
    default_map: bool,
    /// Table sizes served, by [`Table::index`].
    sizes: std::sync::Mutex<[usize; 4]>,
    /// On a serial line: the port and what the slave saw on it.
    serial: Option<(SerialPortConfig, Arc<SlaveStats>)>,
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
        let mapped = self.mapped.lock().unwrap_or_else(|p| p.into_inner());
        let map: Vec<_> = mapped
            .iter()
            .map(|(n, t, a, len, w)| json!({"var": n, "table": t.name(), "address": a, "count": len, "writable": w}))
            .collect();
        let ex = |c: usize| ld(&s.exceptions[c]);
        let sizes = *self.sizes.lock().unwrap_or_else(|p| p.into_inner());
        let mut j = json!({
            "driver": self.name,
            "kind": if self.serial.is_some() { "modbus-rtu-server" } else { "modbus-server" },
            "tables": {
                "coils": sizes[0],
                "discrete_inputs": sizes[1],
                "input_registers": sizes[2],
                "holding_registers": sizes[3],
            },
            "running": s.running.load(Ordering::Relaxed),
            "listen": listen,
            "configured_listen": if self.serial.is_some() { None } else { Some(self.config_listen.to_string()) },
            "unit_id": self.unit_id,
            "default_map": self.default_map,
            "connections": ld(&s.connections),
            "accepted": ld(&s.accepted),
            "refused_allowlist": ld(&s.refused_allowlist),
            "refused_limit": ld(&s.refused_limit),
            "evicted": ld(&s.evicted),
            "closed_malformed": ld(&s.closed_malformed),
            "closed_idle": ld(&s.closed_idle),
            "connection_errors": ld(&s.connection_errors),
            "requests": ld(&s.requests),
            "exceptions": {
                "illegal_function": ex(1),
                "illegal_data_address": ex(2),
                "illegal_data_value": ex(3),
                "gateway_target": ex(11),
            },
            "wrong_unit": ld(&s.wrong_unit),
            "items_written": ld(&s.items_written),
            "writes_applied": ld(&s.writes_applied),
            "writes_refused": ld(&s.writes_refused),
            "publications": ld(&s.publications),
            "publish_skipped": ld(&s.publish_skipped),
            "map": map,
            "unmapped": *self.unmapped.lock().unwrap_or_else(|p| p.into_inner()),
        });
        if let Some((port, stats)) = &self.serial {
            j["serial"] = stats.json(port);
        }
        j.to_string()
    }
}

/// The Modbus TCP server driver.
pub struct ModbusServer {
    name: String,
    cfg: ServerConfig,
    points: Vec<BoundPoint>,
    writable: [bool; 4],
    tables: Option<Arc<Tables>>,
    shared: Arc<ServerShared>,
    io: Option<IoThread>,
    safe: Arc<ServerSafe>,
    rules: Arc<WriteRules>,
}

/// Tables, the output points, and an image holding each output's safe value.
type SafeTarget = (Arc<Tables>, Vec<BoundPoint>, Image);

/// The server's emergency handle: publishes the safe values of mapped outputs into the
/// tables straight from the watchdog thread, so clients read safe outputs while the
/// scan thread is stuck.
#[derive(Default)]
struct ServerSafe {
    /// Tables, output points, and an image holding every output's safe value (set at
    /// bind).
    at: Mutex<Option<SafeTarget>>,
    stop: Mutex<Option<StopHandle>>,
}

impl SafeState for ServerSafe {
    fn force_safe(&self) {
        let at = self.at.lock().unwrap_or_else(|p| p.into_inner());
        let Some((tables, points, image)) = at.as_ref() else {
            return;
        };
        // Connections hold the lock for one request's items at most: spin for it
        // (this is the watchdog thread, never the scan).
        let g = tables.lock();
        for p in points {
            publish_point(tables, &g, p, image);
        }
    }

    fn shutdown(&self) {
        if let Some(s) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            s.stop();
        }
    }
}

impl ModbusServer {
    /// A server driver named `name`.
    pub fn new(name: &str, cfg: ServerConfig) -> ModbusServer {
        let shared = Arc::new(ServerShared {
            name: name.to_string(),
            stats: Arc::new(ServerStats::default()),
            config_listen: cfg.listen,
            unit_id: cfg.unit_id,
            mapped: Default::default(),
            unmapped: Default::default(),
            default_map: cfg.map.is_empty(),
            sizes: Default::default(),
            serial: cfg.serial.clone().map(|p| (p, Arc::default())),
        });
        let mut writable = [false; 4];
        for t in Table::ALL {
            writable[t.index()] = t.is_writable() && !cfg.read_only[t.index()];
        }
        ModbusServer {
            name: name.to_string(),
            cfg,
            points: Vec::new(),
            writable,
            tables: None,
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
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }
}

/// True when a client write to any item of `p` waits for the scan. Atomic loads: no
/// allocation, locks or syscalls.
fn is_pending(t: &Tables, p: &BoundPoint) -> bool {
    (p.address as usize..p.end()).any(|a| t.pending(p.table, a))
}

impl Driver for ModbusServer {
    fn name(&self) -> &str {
        &self.name
    }

    fn bind(&mut self, layout: &Layout) -> Result<(), ConfigError> {
        let (points, unmapped) = if self.cfg.map.is_empty() {
            default_server_points(layout)
        } else {
            (
                bind_points(layout, &self.cfg.map, Usage::Server)?,
                Vec::new(),
            )
        };
        let mut sizes = [0usize; 4];
        for p in &points {
            let i = p.table.index();
            sizes[i] = sizes[i].max(p.end());
        }
        if self.cfg.map.is_empty() && !self.cfg.strict_map {
            // The default map serves OpenPLC's full-size tables: addresses no variable
            // is bound to read 0 and take writes (scratch), as OpenPLC's do.
            for (s, full) in sizes.iter_mut().zip(OPENPLC_TABLE_SIZES) {
                *s = (*s).max(full);
            }
        }
        *self.shared.sizes.lock().unwrap_or_else(|p| p.into_inner()) = sizes;
        *self.shared.mapped.lock().unwrap_or_else(|p| p.into_inner()) = points
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.table,
                    p.address,
                    p.len(),
                    self.writable[p.table.index()],
                )
            })
            .collect();
        *self
            .shared
            .unmapped
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = unmapped;
        let tables = Arc::new(Tables::new(sizes));
        // Publish initial values so that clients connecting before the first scan see
        // the variables' initial values, not zeros.
        let image = Image::new(layout);
        if let Some(g) = tables.try_lock() {
            for p in &points {
                publish_point(&tables, &g, p, &image);
            }
        }
        let mut safe_image = Image::new(layout);
        let outputs: Vec<BoundPoint> = points
            .iter()
            .filter(|p| p.slot.area == Area::Output)
            .cloned()
            .collect();
        for p in &outputs {
            safe_image.store(p.slot, layout.var(p.var).safe);
        }
        *self.safe.at.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((tables.clone(), outputs, safe_image));
        self.rules = Arc::new(WriteRules::new(layout, &points));
        self.tables = Some(tables);
        self.points = points;
        Ok(())
    }

    fn start(&mut self, cx: &StartCtx) -> Result<(), IoError> {
        self.stop();
        let Some(tables) = self.tables.clone() else {
            return Err(IoError {
                message: format!("driver {:?}: start before bind", self.name),
            });
        };
        if let Some((port, stats)) = self.shared.serial.clone() {
            return self.start_serial(cx, tables, port, stats);
        }
        let std_listener = std::net::TcpListener::bind(self.cfg.listen).map_err(|e| IoError {
            message: format!("modbus server: cannot listen on {}: {e}", self.cfg.listen),
        })?;
        let local = std_listener.local_addr().map_err(|e| IoError {
            message: format!("modbus server: {e}"),
        })?;
        std_listener.set_nonblocking(true).map_err(|e| IoError {
            message: format!("modbus server: {e}"),
        })?;
        *self
            .shared
            .stats
            .listen
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(local);
        let acceptor = Acceptor {
            tables,
            stats: self.shared.stats.clone(),
            conns: Arc::default(),
            allow: self.cfg.allow.clone(),
            max_conn: self.cfg.max_connections,
            idle: self.cfg.idle_timeout,
            unit_id: self.cfg.unit_id,
            writable: self.writable,
            rules: self.rules.clone(),
            log: Arc::new(ServerLog::new(
                "modbus server",
                cx.events.clone(),
                cx.clock.clone(),
            )),
            busy_replies: Default::default(),
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

    /// Applies client writes. Scan thread: `try_lock` on the tables (a client writing
    /// at this instant leaves its writes for the next cycle); no allocation or syscalls.
    fn read_inputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        let Some(t) = self.tables.as_deref() else {
            return IoStatus::Ok;
        };
        if !t.take_dirty() {
            return IoStatus::Ok;
        }
        let Some(g) = t.try_lock() else {
            t.set_dirty();
            return IoStatus::Ok;
        };
        let mut applied = 0u64;
        let mut words = [0u16; 4];
        for p in &self.points {
            if !self.writable[p.table.index()] || !is_pending(t, p) {
                continue;
            }
            let v = if p.table.is_bits() {
                p.codec.decode_bit(t.bit(p.table, p.address as usize))
            } else {
                let n = p.len();
                for (k, w) in words[..n].iter_mut().enumerate() {
                    *w = t.reg(p.table, p.address as usize + k);
                }
                p.codec.decode_words(&words[..n]).0
            };
            cx.image.store(p.slot, v);
            if p.slot.area == Area::Input {
                cx.image.quality[p.var.index()] = Quality::Good;
                cx.image.stamp_ns[p.var.index()] = cx.now_ns;
            }
            for a in p.address as usize..p.end() {
                t.clear_pending(&g, p.table, a);
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

    /// Publishes the image into the tables. Scan thread: `try_lock` on the tables (a
    /// client holding them skips one publication, counted); no allocation or syscalls.
    fn write_outputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        let Some(t) = self.tables.as_deref() else {
            return IoStatus::Ok;
        };
        let Some(g) = t.try_lock() else {
            self.shared
                .stats
                .publish_skipped
                .fetch_add(1, Ordering::Relaxed);
            return IoStatus::Ok;
        };
        for p in &self.points {
            publish_point(t, &g, p, cx.image);
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

impl ModbusServer {
    /// Starts the RTU slave's line thread (its own: sending ends in a blocking drain).
    fn start_serial(
        &mut self,
        cx: &StartCtx,
        tables: Arc<Tables>,
        port: SerialPortConfig,
        stats: Arc<SlaveStats>,
    ) -> Result<(), IoError> {
        let log = Arc::new(ServerLog::new(
            "modbus rtu server",
            cx.events.clone(),
            cx.clock.clone(),
        ));
        let service = ConnService {
            tables,
            unit_id: self.cfg.unit_id,
            writable: self.writable,
            rules: self.rules.clone(),
            log: log.clone(),
            stats: self.shared.stats.clone(),
            slot: None,
            origin: Arc::from(format!("serial port {}", port.name)),
        };
        let slave = Slave {
            service,
            port: port.clone(),
            stats,
            log,
        };
        let io = IoThread::spawn(&format!("softplc-rtu-{}", port.name), move |shutdown| {
            slave.run(shutdown)
        })?;
        self.shared.stats.running.store(true, Ordering::Relaxed);
        *self.safe.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(io.stop_handle());
        self.io = Some(io);
        Ok(())
    }
}

impl Drop for ModbusServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Publishes one variable unless a client write to it is still pending. Atomic stores
/// under the caller's lock: no allocation, locks or syscalls.
fn publish_point(t: &Tables, g: &WriteGuard<'_>, p: &BoundPoint, image: &Image) {
    if is_pending(t, p) {
        return;
    }
    let v = image.load(p.slot);
    if p.table.is_bits() {
        t.publish_bit(g, p.table, p.address as usize, p.codec.encode_bit(v));
    } else {
        let mut words = [0u16; 4];
        let n = p.len();
        p.codec.encode_words(v, &mut words[..n]);
        for (k, w) in words[..n].iter().enumerate() {
            t.publish_reg(g, p.table, p.address as usize + k, *w);
        }
    }
}
