//! A server driver's event log, whatever its protocol: connection and write events,
//! rate-limited per kind so that a flood of connections or refused writes cannot flood
//! the engine's log.

use softplc_core::{EngineClock, Event, EventSink, IoEvent, IoEventKind};

use crate::ratelimit::{RateLimiter, WINDOW};

/// Connection events shown per kind and second; the rest are summed up once a second,
/// so that a flood of connections cannot flood the event log.
pub const CONN_EVENTS_PER_SECOND: u32 = 5;

/// The kinds of server events that are rate-limited, each on its own; the limiter
/// counts them by their place in this list.
pub const LIMITED: [IoEventKind; 5] = [
    IoEventKind::ClientAccepted,
    IoEventKind::ClientNotAllowed,
    IoEventKind::ClientRefused,
    IoEventKind::ClientEvicted,
    IoEventKind::ClientWriteRefused,
];

/// The summary of `n` events of `kind` cut short in a window, by a `label` server
/// (`modbus server`, `xgt server`).
pub fn summary(label: &str, kind: IoEventKind, n: u64) -> String {
    let what = match kind {
        IoEventKind::ClientAccepted => "connections accepted",
        IoEventKind::ClientNotAllowed => "connections refused (not in the allowlist)",
        IoEventKind::ClientRefused => "connections refused (connection limit)",
        IoEventKind::ClientEvicted => "idle connections closed to make room",
        IoEventKind::ClientWriteRefused => "writes refused (range or read-only)",
        _ => "events",
    };
    format!("{label}: {n} more {what} in the last second")
}

/// The server's event log: rate-limited per kind (see [`crate::ratelimit`]), shared
/// by the accept loop and the connections.
pub struct ServerLog {
    label: &'static str,
    events: EventSink,
    clock: EngineClock,
    limiter: std::sync::Mutex<RateLimiter>,
}

impl ServerLog {
    /// The log of a `label` server (`modbus server`), writing to `events`, stamped with
    /// the engine clock.
    pub fn new(label: &'static str, events: EventSink, clock: EngineClock) -> ServerLog {
        ServerLog {
            label,
            events,
            clock,
            limiter: std::sync::Mutex::new(RateLimiter::new(
                LIMITED.len(),
                CONN_EVENTS_PER_SECOND,
                WINDOW,
            )),
        }
    }

    /// An event, not limited.
    pub fn push(&self, ev: IoEvent, text: String) {
        self.events.push(Event::io(self.clock.now(), ev, text));
    }

    /// An event of `kind`, unless this second's share of its kind is used up. `kind`
    /// must be one of [`LIMITED`].
    pub fn note(&self, kind: IoEventKind, text: impl FnOnce() -> String) {
        let Some(slot) = LIMITED.iter().position(|k| *k == kind) else {
            debug_assert!(false, "{kind} is not a rate-limited server event");
            return self.push(IoEvent::new(kind), text());
        };
        let shown = self
            .limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(slot, std::time::Instant::now());
        if shown {
            self.push(IoEvent::new(kind), text());
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
            let kind = LIMITED[k];
            self.push(IoEvent::new(kind).summing(n), summary(self.label, kind, n));
        }
    }
}

impl std::fmt::Debug for ServerLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerLog").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_events_are_summed_up_per_kind() {
        assert_eq!(
            summary("modbus server", IoEventKind::ClientNotAllowed, 95),
            "modbus server: 95 more connections refused (not in the allowlist) in the last second"
        );
    }

    #[test]
    fn a_summary_is_an_event_of_the_kind_it_sums_up() {
        let sink = EventSink::new();
        let log = ServerLog::new(
            "xgt server",
            sink.clone(),
            EngineClock::new(softplc_core::ClockKind::Real),
        );
        for _ in 0..(CONN_EVENTS_PER_SECOND + 3) {
            log.note(IoEventKind::ClientNotAllowed, || "refused".to_string());
        }
        log.summarise();
        let (evs, _) = sink.since(0);
        let io: Vec<IoEvent> = evs.iter().filter_map(|e| e.kind.io()).collect();
        assert_eq!(io.len(), CONN_EVENTS_PER_SECOND as usize + 1);
        assert!(io.iter().all(|e| e.kind == IoEventKind::ClientNotAllowed));
        assert_eq!(io.last().unwrap().suppressed, 3);
        assert_eq!(io[0].suppressed, 0);
    }
}
