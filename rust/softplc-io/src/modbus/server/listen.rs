//! The accept loop: who may connect (allowlist, connection limit, evicting an idle
//! connection to make room), how a refused client is told (exception 06), and the
//! listener's own events. Runs on the server's I/O thread.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use softplc_core::{IoEvent, IoEventKind};
use tokio::net::{TcpListener, TcpStream};
use tokio_modbus::server::tcp::Server;

use crate::net::IpNet;
use crate::runtime::{stopped, Shutdown};

use super::guard::{FrameGuard, IdleClose};
use super::rules::WriteRules;
use super::service::{ConnService, ConnSlot};
use super::stats::{ServerStats, StatsHandle};
use super::tables::Tables;
use crate::server::conns::Connections;
use crate::server::log::ServerLog;

/// A connection idle at least this long may be closed to make room for a new client
/// when `max_connections` are open. Long enough that a client polling every second or
/// faster is never pushed out by newcomers; short enough that sockets left open and
/// silent cannot lock clients out until the idle timeout.
pub const EVICT_MIN_IDLE: Duration = Duration::from_secs(1);

/// What the accept loop needs to accept (or refuse) a connection.
pub(super) struct Acceptor {
    pub tables: Arc<Tables>,
    pub stats: Arc<ServerStats>,
    pub conns: Arc<Connections>,
    pub allow: Vec<IpNet>,
    pub max_conn: usize,
    pub idle: Option<Duration>,
    pub unit_id: u8,
    pub writable: [bool; 4],
    pub rules: Arc<WriteRules>,
    pub log: Arc<ServerLog>,
    /// Refused connections being answered with exception 06 right now.
    pub busy_replies: Arc<AtomicUsize>,
}

/// At most this many refused connections are answered at once (with exception 06).
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
            self.log.note(IoEventKind::ClientNotAllowed, || {
                format!("modbus server: refused {peer} (not in the allowlist)")
            });
            return None;
        }
        if self.conns.len() >= self.max_conn {
            match self.conns.evict_idlest(EVICT_MIN_IDLE) {
                Some((victim, idle)) => {
                    stats.evicted.fetch_add(1, Ordering::Relaxed);
                    self.log.note(IoEventKind::ClientEvicted, || {
                        format!(
                            "modbus server: closed the connection from {victim} (idle {} ms) to make room for {peer}",
                            idle.as_millis()
                        )
                    });
                }
                None => {
                    stats.refused_limit.fetch_add(1, Ordering::Relaxed);
                    self.log.note(IoEventKind::ClientRefused, || {
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
        self.log.note(IoEventKind::ClientAccepted, || {
            format!("modbus server: connection from {peer}")
        });
        let service = ConnService {
            tables: self.tables.clone(),
            unit_id: self.unit_id,
            writable: self.writable,
            rules: self.rules.clone(),
            log: self.log.clone(),
            stats: stats.clone(),
            origin: Arc::from(peer.to_string()),
            slot: Some(ConnSlot {
                stats: stats.clone(),
                conns: self.conns.clone(),
                handle: handle.clone(),
            }),
        };
        let guard = FrameGuard::new(stream, StatsHandle(stats.clone()), self.unit_id, self.idle)
            .with_handle(handle);
        Some((service, guard))
    }
}

/// Serves connections until `shutdown`: accepts through the [`Acceptor`], sums up
/// rate-limited events once a second, and reports listening, failures and the stop.
pub(super) async fn serve(
    listener: std::io::Result<TcpListener>,
    acceptor: Acceptor,
    shutdown: Shutdown,
    local: SocketAddr,
) {
    let log = acceptor.log.clone();
    let event = |kind: IoEventKind, text: String| log.push(IoEvent::new(kind), text);
    let listener = match listener {
        Ok(l) => l,
        Err(e) => {
            event(
                IoEventKind::ListenFailed,
                format!("modbus server: cannot listen on {local}: {e}"),
            );
            return;
        }
    };
    let unit_id = acceptor.unit_id;
    event(
        IoEventKind::Listening,
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
            if !IdleClose::is(&e) {
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
                    event(
                        IoEventKind::AcceptFailed,
                        format!("modbus server: accept failed: {e}"),
                    );
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
    event(
        IoEventKind::ListenStopped,
        format!("modbus server: stopped listening on {local}"),
    );
}
