//! Engine and driver events (state changes, faults, forces, overruns, device trouble).
//!
//! Events go into a bounded in-memory log that Python reads and traces record. The
//! scan thread pushes with `try_lock` into pre-reserved space: it never waits, and an
//! event that finds the log busy or full is counted as dropped instead.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Kind of event. `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The engine state changed; `text` holds `OLD->NEW`.
    StateChange,
    /// A fault; `text` holds the cause.
    Fault,
    /// A task overran its period; `a` = missed cycles, `b` = execution time (ns).
    Overrun,
    /// A variable was forced; `text` holds `name=value`.
    Force,
    /// A force was released; `text` holds the name.
    Unforce,
    /// A one-time write; `text` holds `name=value`.
    Write,
    /// A driver or device event; `text` says what.
    Io,
    /// Anything else worth keeping.
    Info,
}

impl EventKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::StateChange => "state",
            EventKind::Fault => "fault",
            EventKind::Overrun => "overrun",
            EventKind::Force => "force",
            EventKind::Unforce => "unforce",
            EventKind::Write => "write",
            EventKind::Io => "io",
            EventKind::Info => "info",
        }
    }
}

/// One event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Engine-clock time (ns).
    pub t_ns: u64,
    /// Kind.
    pub kind: EventKind,
    /// Task index, or -1 when not task-related.
    pub task: i32,
    /// Kind-specific number.
    pub a: i64,
    /// Kind-specific number.
    pub b: i64,
    /// Text, or empty (events raised on a healthy scan carry no text, so no allocation).
    pub text: String,
}

const CAPACITY: usize = 4096;

struct Log {
    events: VecDeque<Event>,
    /// Sequence number of `events[0]`.
    first_seq: u64,
}

/// A cloneable handle that pushes events into the engine's log.
#[derive(Clone)]
pub struct EventSink {
    log: Arc<Mutex<Log>>,
    dropped: Arc<AtomicU64>,
}

impl Default for EventSink {
    fn default() -> Self {
        EventSink::new()
    }
}

impl EventSink {
    /// An empty log holding the last 4096 events.
    pub fn new() -> EventSink {
        EventSink {
            log: Arc::new(Mutex::new(Log {
                events: VecDeque::with_capacity(CAPACITY),
                first_seq: 0,
            })),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Pushes from a non-real-time thread (waits for the lock).
    pub fn push(&self, ev: Event) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        Self::insert(&mut log, ev);
    }

    /// Pushes from the scan thread: never waits. Returns false (and counts a drop)
    /// when the log is busy.
    pub fn try_push(&self, ev: Event) -> bool {
        match self.log.try_lock() {
            Ok(mut log) => {
                Self::insert(&mut log, ev);
                true
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    fn insert(log: &mut Log, ev: Event) {
        if log.events.len() == CAPACITY {
            log.events.pop_front();
            log.first_seq += 1;
        }
        log.events.push_back(ev);
    }

    /// Events with sequence number >= `since`, and the next sequence number to ask for.
    pub fn since(&self, since: u64) -> (Vec<Event>, u64) {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let end = log.first_seq + log.events.len() as u64;
        let start = since.max(log.first_seq);
        let skip = (start - log.first_seq) as usize;
        (log.events.iter().skip(skip).cloned().collect(), end)
    }

    /// Events dropped because the log was busy.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u64) -> Event {
        Event {
            t_ns: t,
            kind: EventKind::Info,
            task: -1,
            a: 0,
            b: 0,
            text: String::new(),
        }
    }

    #[test]
    fn since_returns_only_new_events_and_survives_wraparound() {
        let s = EventSink::new();
        s.push(ev(1));
        let (got, next) = s.since(0);
        assert_eq!((got.len(), next), (1, 1));
        for t in 0..(CAPACITY as u64 + 10) {
            s.push(ev(t));
        }
        let (got, next) = s.since(next);
        assert_eq!(got.len(), CAPACITY);
        assert_eq!(next, CAPACITY as u64 + 11);
    }
}
