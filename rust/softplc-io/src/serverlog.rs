//! The Modbus server's event log: connection and write events, rate-limited per kind
//! so that a flood of connections or refused writes cannot flood the engine's log.

use std::sync::Arc;

use softplc_core::{Event, EventKind, EventSink};

use crate::clock::ClockLink;
use crate::ratelimit::RateLimiter;

/// Connection events shown per kind and second; the rest are summed up once a second,
/// so that a flood of connections cannot flood the event log.
pub const CONN_EVENTS_PER_SECOND: u32 = 5;

/// Kinds of connection events, rate-limited separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    /// A connection was accepted.
    Accepted = 0,
    /// A connection was refused by the allowlist.
    RefusedAllowlist = 1,
    /// A connection was refused at the connection limit.
    RefusedLimit = 2,
    /// An idle connection was closed to make room.
    Evicted = 3,
    /// A client write broke a variable's range or read-only rule.
    WriteRefused = 4,
}

impl ConnEvent {
    /// Every kind, in discriminant order.
    pub const ALL: [ConnEvent; 5] = [
        ConnEvent::Accepted,
        ConnEvent::RefusedAllowlist,
        ConnEvent::RefusedLimit,
        ConnEvent::Evicted,
        ConnEvent::WriteRefused,
    ];

    /// Event code (`b`) of the event.
    pub fn code(self) -> i64 {
        match self {
            ConnEvent::Accepted => 1,
            ConnEvent::RefusedAllowlist => 2,
            ConnEvent::RefusedLimit => 3,
            ConnEvent::Evicted => 4,
            ConnEvent::WriteRefused => 5,
        }
    }

    /// The summary of `n` events cut short in a window.
    pub fn summary(self, n: u64) -> String {
        let what = match self {
            ConnEvent::Accepted => "connections accepted",
            ConnEvent::RefusedAllowlist => "connections refused (not in the allowlist)",
            ConnEvent::RefusedLimit => "connections refused (connection limit)",
            ConnEvent::Evicted => "idle connections closed to make room",
            ConnEvent::WriteRefused => "writes refused (range or read-only)",
        };
        format!("modbus server: {n} more {what} in the last second")
    }
}

/// The server's event log: rate-limited per kind (see [`crate::ratelimit`]), shared
/// by the accept loop and the connections.
pub struct ServerLog {
    events: EventSink,
    clock: Arc<ClockLink>,
    limiter: std::sync::Mutex<RateLimiter>,
}

impl ServerLog {
    /// A log writing to `events`, stamped with the engine clock.
    pub fn new(events: EventSink, clock: Arc<ClockLink>) -> ServerLog {
        ServerLog {
            events,
            clock,
            limiter: std::sync::Mutex::new(RateLimiter::new(
                ConnEvent::ALL.len(),
                CONN_EVENTS_PER_SECOND,
                crate::ratelimit::WINDOW,
            )),
        }
    }

    /// An event, not limited.
    pub fn push(&self, b: i64, text: String) {
        self.events.push(Event {
            t_ns: self.clock.engine_now(),
            kind: EventKind::Io,
            task: -1,
            a: -1,
            b,
            text,
        });
    }

    /// An event of `kind`, unless this second's share of its kind is used up.
    pub fn note(&self, kind: ConnEvent, text: impl FnOnce() -> String) {
        let shown = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(kind as usize, std::time::Instant::now());
        if shown {
            self.push(kind.code(), text());
        }
    }

    /// Ends a rate-limiting window with one summary event per kind that was cut short.
    pub fn summarise(&self) {
        let counts = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .end_window();
        for (k, n) in counts {
            let kind = ConnEvent::ALL[k];
            self.push(kind.code(), kind.summary(n));
        }
    }
}

impl std::fmt::Debug for ServerLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLog").finish_non_exhaustive()
    }
}
