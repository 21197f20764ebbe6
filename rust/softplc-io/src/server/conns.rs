//! A server's open connections, whatever its protocol, so that a new client can take
//! the place of one that sits idle when `max_connections` are open. Written by each
//! connection's task (activity) and by the accept loop (eviction).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

/// One open connection, as the server's list of connections sees it. Written by the
/// connection's task (activity) and by the accept loop (eviction).
#[derive(Debug)]
pub struct ConnHandle {
    id: u64,
    /// The client.
    pub peer: SocketAddr,
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last complete request (or the accept).
    last_active: AtomicU64,
    evicted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl ConnHandle {
    /// The connection's number in the server's list.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Records a complete request at `now`.
    pub fn touch(&self, now: Instant) {
        let ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.last_active.store(ns, Ordering::Relaxed);
    }

    /// How long the connection has been without a complete request.
    pub fn idle_for(&self, now: Instant) -> Duration {
        let last = self.epoch + Duration::from_nanos(self.last_active.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }

    /// True once the server has closed this connection to make room.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// The connection's task waits for bytes: wake it through `w` on eviction.
    pub fn park(&self, w: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(|p| p.into_inner());
        if !slot.as_ref().is_some_and(|old| old.will_wake(w)) {
            *slot = Some(w.clone());
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        let w = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// The server's open connections, so that a new client can take the place of one that
/// sits idle when `max_connections` are open.
#[derive(Debug)]
pub struct Connections {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<Vec<Arc<ConnHandle>>>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
        }
    }
}

impl Connections {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConnHandle>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open connections (not counting evicted ones still closing).
    pub fn len(&self) -> usize {
        self.list().len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.list().is_empty()
    }

    /// Adds a connection from `peer`, active now.
    pub fn register(&self, peer: SocketAddr) -> Arc<ConnHandle> {
        let h = Arc::new(ConnHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            peer,
            epoch: self.epoch,
            last_active: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        h.touch(Instant::now());
        self.list().push(h.clone());
        h
    }

    /// Forgets connection `id` (it closed).
    pub fn remove(&self, id: u64) {
        self.list().retain(|h| h.id != id);
    }

    /// Closes the connection that has been without a request the longest, if that is
    /// at least `min_idle`, and returns its peer and idle time. Connections in use
    /// are never closed for a newcomer.
    pub fn evict_idlest(&self, min_idle: Duration) -> Option<(SocketAddr, Duration)> {
        let now = Instant::now();
        let mut list = self.list();
        let (i, idle) = list
            .iter()
            .enumerate()
            .map(|(i, h)| (i, h.idle_for(now)))
            .max_by_key(|(_, idle)| *idle)?;
        if idle < min_idle {
            return None;
        }
        let h = list.swap_remove(i);
        drop(list);
        h.evict();
        Some((h.peer, idle))
    }
}
