//! The XGT server's accept loop and connections, on the server's I/O thread.
//!
//! Who may connect: the allowlist, then the connection limit; when `max_connections`
//! are open, a newcomer takes the place of the connection idle longest if that one has
//! sent nothing for [`EVICT_MIN_IDLE`], and is closed otherwise (the protocol has no
//! "busy" answer). Events are rate-limited ([`crate::server::log`]).
//!
//! A connection reads whole frames with the frame decoder, answers each (a NAK for a
//! bad one) and writes the answers of what it read in one piece: some clients read an
//! answer with a single `recv`. A stream that cannot be delimited (no company ID, a
//! length beyond any request) is answered with a NAK and closed; a connection idle for
//! `idle_timeout` is closed.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use softplc_core::{IoEvent, IoEventKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use crate::modbus::server::EVICT_MIN_IDLE;
use crate::net::IpNet;
use crate::runtime::{stopped, Shutdown};
use crate::server::conns::{ConnHandle, Connections};
use crate::server::log::ServerLog;
use crate::xgt::header::FrameDecoder;

use super::service::Service;
use super::stats::XgtServerStats;

/// What the accept loop needs.
pub(super) struct Acceptor {
    pub service: Arc<Service>,
    pub stats: Arc<XgtServerStats>,
    pub conns: Arc<Connections>,
    pub allow: Vec<IpNet>,
    pub max_conn: usize,
    pub idle: Option<Duration>,
    pub log: Arc<ServerLog>,
}

impl Acceptor {
    /// Admits a connection (its entry in the list of open connections) or refuses it.
    fn admit(&self, peer: SocketAddr) -> Option<Arc<ConnHandle>> {
        let stats = &self.stats;
        if !self.allow.is_empty() && !self.allow.iter().any(|n| n.contains(peer.ip())) {
            stats.refused_allowlist.fetch_add(1, Ordering::Relaxed);
            self.log.note(IoEventKind::ClientNotAllowed, || {
                format!("xgt server: refused {peer} (not in the allowlist)")
            });
            return None;
        }
        if self.conns.len() >= self.max_conn {
            match self.conns.evict_idlest(EVICT_MIN_IDLE) {
                Some((victim, idle)) => {
                    stats.evicted.fetch_add(1, Ordering::Relaxed);
                    self.log.note(IoEventKind::ClientEvicted, || {
                        format!(
                            "xgt server: closed the connection from {victim} (idle {} ms) to make room for {peer}",
                            idle.as_millis()
                        )
                    });
                }
                None => {
                    stats.refused_limit.fetch_add(1, Ordering::Relaxed);
                    self.log.note(IoEventKind::ClientRefused, || {
                        format!(
                            "xgt server: refused {peer} ({} connections open, none idle for {} s)",
                            self.max_conn,
                            EVICT_MIN_IDLE.as_secs()
                        )
                    });
                    return None;
                }
            }
        }
        let handle = self.conns.register(peer);
        stats.connections.fetch_add(1, Ordering::Relaxed);
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        self.log.note(IoEventKind::ClientAccepted, || {
            format!("xgt server: connection from {peer}")
        });
        Some(handle)
    }
}

/// Keeps a connection counted and in the list of open connections while it lives
/// (also when its task is cancelled at shutdown).
struct Slot {
    acceptor: Arc<Acceptor>,
    handle: Arc<ConnHandle>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.acceptor.conns.remove(self.handle.id());
        self.acceptor
            .stats
            .connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a connection ended.
enum End {
    /// The client closed it, or the server stops.
    Closed,
    /// The stream could not be delimited (answered with a NAK first).
    Malformed,
    /// No complete request within the idle timeout.
    Idle,
    /// Closed to make room for a newcomer.
    Evicted,
    /// A socket error.
    Error,
}

/// Serves one connection until it ends.
async fn serve_conn(
    mut stream: TcpStream,
    peer: SocketAddr,
    service: Arc<Service>,
    handle: Arc<ConnHandle>,
    idle: Option<Duration>,
) -> End {
    let _ = stream.set_nodelay(true);
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(2048);
    let mut last = Instant::now();
    loop {
        let deadline = idle.map(|d| last + d);
        let evicted = poll_fn(|cx| {
            handle.park(cx.waker());
            if handle.is_evicted() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let idle_over = async {
            match deadline {
                Some(d) => sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let n = tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) => return End::Closed,
                Ok(n) => n,
                Err(_) => return End::Error,
            },
            _ = evicted => return End::Evicted,
            _ = idle_over => return End::Idle,
        };
        decoder.push(&buf[..n]);
        out.clear();
        let mut broken = false;
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    last = Instant::now();
                    handle.touch(last.into_std());
                    service.answer_frame(&frame, peer, &mut out);
                }
                Ok(None) => break,
                Err(e) => {
                    // The stream has lost its framing: say why, then close.
                    service.answer_broken(&buf[..n], e, &mut out);
                    broken = true;
                    break;
                }
            }
        }
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return End::Error;
        }
        if broken {
            linger(&mut stream, &mut buf).await;
            return End::Malformed;
        }
    }
}

/// Closes a connection whose stream broke, so that its NAK arrives: closing a socket
/// with unread bytes resets it, and a reset can overtake the NAK. So: no more writes,
/// then read and drop what the client still sends, for a bounded time and amount.
async fn linger(stream: &mut TcpStream, buf: &mut [u8]) {
    let _ = stream.shutdown().await;
    let until = Instant::now() + Duration::from_millis(200);
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match tokio::time::timeout_at(until, stream.read(buf)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => return,
        }
    }
}

/// Serves connections until `shutdown`, summing up rate-limited events once a second.
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
                format!("xgt server: cannot listen on {local}: {e}"),
            );
            return;
        }
    };
    let cpu = acceptor.service.cpu;
    event(
        IoEventKind::Listening,
        format!("xgt server: listening on {local} (answering as an {cpu} PLC)"),
    );
    let stats = acceptor.stats.clone();
    let acceptor = Arc::new(acceptor);
    let mut tasks: JoinSet<()> = JoinSet::new();
    let accepting = async {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    while tasks.try_join_next().is_some() {}
                    let Some(handle) = acceptor.admit(peer) else {
                        drop(stream);
                        continue;
                    };
                    let a = acceptor.clone();
                    tasks.spawn(async move {
                        let slot = Slot {
                            acceptor: a.clone(),
                            handle: handle.clone(),
                        };
                        let end = serve_conn(stream, peer, a.service.clone(), handle, a.idle).await;
                        match end {
                            End::Malformed => {
                                a.stats.closed_malformed.fetch_add(1, Ordering::Relaxed);
                            }
                            End::Idle => {
                                a.stats.closed_idle.fetch_add(1, Ordering::Relaxed);
                            }
                            End::Error => {
                                a.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            End::Closed | End::Evicted => {}
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Typically out of file descriptors: wait and accept again.
                    event(
                        IoEventKind::AcceptFailed,
                        format!("xgt server: accept failed: {e}"),
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
    tokio::select! {
        _ = stopped(shutdown) => {}
        _ = accepting => {}
        _ = summaries => {}
    }
    tasks.abort_all();
    log.summarise();
    stats.running.store(false, Ordering::Relaxed);
    event(
        IoEventKind::ListenStopped,
        format!("xgt server: stopped listening on {local}"),
    );
}
