//! The Modbus TCP server driver: exposes process-image variables to Modbus clients.
//!
//! Connections are served on the driver's I/O thread by tokio-modbus's TCP server,
//! behind a [`FrameGuard`] that answers malformed requests. The scan exchanges data
//! with them only through the atomic [`Tables`]: `write_outputs` publishes the image
//! (try-lock, skipped for one cycle if a client is writing at that instant),
//! `read_inputs` applies client writes. Neither waits, allocates or makes syscalls.
//!
//! The accept loop keeps a list of open connections: when `max_connections` are open, a
//! newcomer takes the place of one idle at least [`EVICT_MIN_IDLE`], and connection
//! events are rate-limited ([`CONN_EVENTS_PER_SECOND`]) so that a flood of connections
//! cannot flood the event log.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use softplc_core::{
    Area, ConfigError, Driver, DriverMonitor, EventSink, Image, IoCtx, IoError, IoStatus, Layout,
    Quality, SafeState,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::server::tcp::Server;

use crate::bind::{bind_points, default_server_points, BoundPoint, Usage};
use crate::clock::ClockLink;
use crate::config::{IpNet, ServerConfig, Table};
use crate::guard::FrameGuard;
use crate::rules::WriteRules;
use crate::runtime::{stopped, IoThread, StopHandle};
use crate::serverlog::{ConnEvent, ServerLog};
use crate::service::{ConnService, ConnSlot, Connections, ServerStats, StatsHandle};
use crate::tables::Tables;

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
        json!({
            "driver": self.name,
            "kind": "modbus-server",
            "running": s.running.load(Ordering::Relaxed),
            "listen": listen,
            "configured_listen": self.config_listen.to_string(),
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
        })
        .to_string()
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
    clock: Arc<ClockLink>,
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
            clock: Arc::new(ClockLink::new()),
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
        let image = softplc_core::Image::new(layout);
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

    fn start(&mut self, events: EventSink) -> Result<(), IoError> {
        self.stop();
        let Some(tables) = self.tables.clone() else {
            return Err(IoError {
                message: format!("driver {:?}: start before bind", self.name),
            });
        };
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
            conns: Arc::new(Connections::default()),
            allow: self.cfg.allow.clone(),
            max_conn: self.cfg.max_connections,
            idle: self.cfg.idle_timeout,
            unit_id: self.cfg.unit_id,
            writable: self.writable,
            rules: self.rules.clone(),
            log: Arc::new(ServerLog::new(events.clone(), self.clock.clone())),
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

    fn read_inputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        self.clock.update(cx.now_ns);
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

impl Drop for ModbusServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Publishes one variable unless a client write to it is still pending.
fn publish_point(
    t: &Tables,
    g: &crate::tables::WriteGuard<'_>,
    p: &BoundPoint,
    image: &softplc_core::Image,
) {
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

/// A connection idle at least this long may be closed to make room for a new client
/// when `max_connections` are open. Long enough that a client polling every second or
/// faster is never pushed out by newcomers; short enough that sockets left open and
/// silent cannot lock clients out until the idle timeout.
pub const EVICT_MIN_IDLE: Duration = Duration::from_secs(1);

/// What the accept loop needs to accept (or refuse) a connection.
struct Acceptor {
    tables: Arc<Tables>,
    stats: Arc<ServerStats>,
    conns: Arc<Connections>,
    allow: Vec<IpNet>,
    max_conn: usize,
    idle: Option<Duration>,
    unit_id: u8,
    writable: [bool; 4],
    rules: Arc<WriteRules>,
    log: Arc<ServerLog>,
    /// Refused connections being answered with exception 06 right now.
    busy_replies: Arc<std::sync::atomic::AtomicUsize>,
}

/// At most this many refused connections are answered at once (see [`answer_busy`]).
pub const MAX_BUSY_REPLIES: usize = 8;

/// How long a refused connection has to send its first request.
pub const BUSY_REPLY_WAIT: Duration = Duration::from_millis(500);

/// Answers the first request of a connection refused at the connection limit with
/// exception 06 (server device busy), then closes it. A client that sends nothing
/// within [`BUSY_REPLY_WAIT`], or not a plausible MBAP header, is closed silently.
async fn answer_busy(mut stream: TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = [0u8; 8];
    let got = tokio::time::timeout(BUSY_REPLY_WAIT, stream.read_exact(&mut head)).await;
    // Transaction id, protocol 0, a length a request can have, unit, function.
    if matches!(got, Ok(Ok(_))) && head[2..4] == [0, 0] {
        let len = u16::from_be_bytes([head[4], head[5]]);
        if (2..=254).contains(&len) && head[7] & 0x80 == 0 {
            let reply = [head[0], head[1], 0, 0, 0, 3, head[6], head[7] | 0x80, 0x06];
            let _ = tokio::time::timeout(BUSY_REPLY_WAIT, stream.write_all(&reply)).await;
        }
    }
    let _ = stream.shutdown().await;
}

impl Acceptor {
    fn accept(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<(ConnService, FrameGuard<TcpStream, StatsHandle>)> {
        let stats = &self.stats;
        if !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(peer.ip())) {
            stats.refused_allowlist.fetch_add(1, Ordering::Relaxed);
            self.log.note(ConnEvent::RefusedAllowlist, || {
                format!("modbus server: refused {peer} (not in the allowlist)")
            });
            return None;
        }
        if self.conns.len() >= self.max_conn {
            match self.conns.evict_idlest(EVICT_MIN_IDLE) {
                Some((victim, idle)) => {
                    stats.evicted.fetch_add(1, Ordering::Relaxed);
                    self.log.note(ConnEvent::Evicted, || {
                        format!(
                            "modbus server: closed the connection from {victim} (idle {} ms) to make room for {peer}",
                            idle.as_millis()
                        )
                    });
                }
                None => {
                    stats.refused_limit.fetch_add(1, Ordering::Relaxed);
                    self.log.note(ConnEvent::RefusedLimit, || {
                        format!(
                            "modbus server: refused {peer} ({} connections open, none idle for {} s)",
                            self.max_conn,
                            EVICT_MIN_IDLE.as_secs()
                        )
                    });
                    // Tell the client why, so that it retries later instead of taking a
                    // bare close for a broken device (bounded: under a flood, the rest
                    // are closed silently).
                    if self.busy_replies.fetch_add(1, Ordering::AcqRel) < MAX_BUSY_REPLIES {
                        let count = self.busy_replies.clone();
                        tokio::spawn(async move {
                            answer_busy(stream).await;
                            count.fetch_sub(1, Ordering::AcqRel);
                        });
                    } else {
                        self.busy_replies.fetch_sub(1, Ordering::AcqRel);
                    }
                    return None;
                }
            }
        }
        let _ = stream.set_nodelay(true);
        let handle = self.conns.register(peer);
        stats.connections.fetch_add(1, Ordering::Relaxed);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.log.note(ConnEvent::Accepted, || {
            format!("modbus server: connection from {peer}")
        });
        let service = ConnService {
            tables: self.tables.clone(),
            unit_id: self.unit_id,
            writable: self.writable,
            rules: self.rules.clone(),
            log: self.log.clone(),
            stats: stats.clone(),
            slot: ConnSlot {
                stats: stats.clone(),
                conns: self.conns.clone(),
                handle: handle.clone(),
            },
        };
        let guard = FrameGuard::new(stream, StatsHandle(stats.clone()), self.unit_id, self.idle)
            .with_handle(handle);
        Some((service, guard))
    }
}

async fn serve(
    listener: std::io::Result<TcpListener>,
    acceptor: Acceptor,
    shutdown: crate::runtime::Shutdown,
    local: SocketAddr,
) {
    let log = acceptor.log.clone();
    let event = |b: i64, text: String| log.push(b, text);
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            event(9, format!("modbus server: cannot listen on {local}: {e}"));
            return;
        }
    };
    let unit_id = acceptor.unit_id;
    event(
        0,
        format!("modbus server: listening on {local} (unit id {unit_id}; 0 and 255 too)"),
    );
    let stats = acceptor.stats.clone();
    let server = Server::new(listener);
    let on_connected =
        |stream: TcpStream, peer: SocketAddr| std::future::ready(Ok(acceptor.accept(stream, peer)));
    let on_error = {
        let stats = stats.clone();
        move |e: std::io::Error| {
            // Idle closes are counted as such by the frame guard.
            if !crate::guard::IdleClose::is(&e) {
                stats.connection_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    let serving = async {
        loop {
            match server.serve(&on_connected, on_error.clone()).await {
                Ok(()) => break,
                Err(e) => {
                    // Typically out of file descriptors: wait and accept again.
                    event(8, format!("modbus server: accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    let summaries = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            log.summarise();
        }
    };
    // Dropping `serving` ends every connection task (tokio-modbus cancels them).
    tokio::select! {
        _ = stopped(shutdown) => {}
        _ = serving => {}
        _ = summaries => {}
    }
    log.summarise();
    stats.running.store(false, Ordering::Relaxed);
    event(0, format!("modbus server: stopped listening on {local}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_events_are_summed_up_per_kind() {
        assert_eq!(
            ConnEvent::RefusedAllowlist.summary(95),
            "modbus server: 95 more connections refused (not in the allowlist) in the last second"
        );
        for (i, k) in ConnEvent::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "ALL is in discriminant order");
        }
    }
}
