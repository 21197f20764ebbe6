//! Engine and driver events: state changes, faults, forces, overruns, device trouble.
//!
//! An [`Event`] is a time, a typed [`EventKind`] (for drivers, an [`IoEvent`] that
//! names the connection or device it is about), the task it concerns, two
//! kind-specific numbers and a text for people. The vocabulary is written out in
//! `docs/trace-format.md` (section "Event kinds"), where trace files record it.
//!
//! ```
//! use softplc_core::{Event, EventKind, IoEvent, IoEventKind};
//!
//! let ev = Event::io(5, IoEvent::on_device(IoEventKind::DeviceBad, 12, 0), "pumps bad".into());
//! assert_eq!((ev.kind.name(), ev.a, ev.b), ("io", 0, 12));
//! assert_eq!(EventKind::from_name("overrun"), Some(EventKind::Overrun));
//! ```

mod io;
mod log;

pub use io::{IoEvent, IoEventKind};
pub use log::{EventSink, LOG_CAPACITY, QUEUE_CAPACITY};

use crate::task::TaskId;

/// Kind of event. `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The engine state changed; `a` and `b` are the old and new state codes (STOP 0,
    /// RUN 1, FAULT 2), `text` holds `OLD->NEW`.
    StateChange,
    /// A fault; `a` = the task's cycle, `text` holds the cause.
    Fault,
    /// A task overran its period; `a` = missed cycles, `b` = execution time (ns).
    Overrun,
    /// A variable was forced; `a` = its index, `text` holds `name=value`.
    Force,
    /// A force was released; `a` = the variable's index, `text` holds the name.
    Unforce,
    /// A one-time write; `a` = the variable's index, `text` holds `name=value`.
    Write,
    /// A driver or device event, typed; `a` and `b` repeat its link and device (-1
    /// when it has none) for readers that know only the generic fields.
    Io(IoEvent),
    /// Anything else worth keeping.
    Info,
}

impl EventKind {
    /// The names of the kinds, as [`EventKind::name`] gives them.
    pub const NAMES: [&'static str; 8] = [
        "state", "fault", "overrun", "force", "unforce", "write", "io", "info",
    ];

    /// Lower-case name (`state`, `fault`, `overrun`, `force`, `unforce`, `write`, `io`,
    /// `info`). Every I/O event is `io`; [`IoEventKind::name`] says which.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::StateChange => "state",
            EventKind::Fault => "fault",
            EventKind::Overrun => "overrun",
            EventKind::Force => "force",
            EventKind::Unforce => "unforce",
            EventKind::Write => "write",
            EventKind::Io(_) => "io",
            EventKind::Info => "info",
        }
    }

    /// The kind named `name` (as [`EventKind::name`] writes it). `io` alone is an I/O
    /// event of kind [`IoEventKind::Other`]; use [`EventKind::Io`] for a typed one.
    pub fn from_name(name: &str) -> Option<EventKind> {
        Some(match name {
            "state" => EventKind::StateChange,
            "fault" => EventKind::Fault,
            "overrun" => EventKind::Overrun,
            "force" => EventKind::Force,
            "unforce" => EventKind::Unforce,
            "write" => EventKind::Write,
            "io" => EventKind::Io(IoEvent::new(IoEventKind::Other)),
            "info" => EventKind::Info,
            _ => return None,
        })
    }

    /// The I/O event, for kind `io`.
    pub fn io(self) -> Option<IoEvent> {
        match self {
            EventKind::Io(e) => Some(e),
            _ => None,
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
    /// The task it concerns, if any.
    pub task: Option<TaskId>,
    /// Kind-specific number (see [`EventKind`]).
    pub a: i64,
    /// Kind-specific number (see [`EventKind`]).
    pub b: i64,
    /// Text, or empty (events raised on a healthy scan carry no text, so no allocation).
    pub text: String,
}

impl Event {
    /// An event with its numbers at 0, except an I/O event's, which repeat its link and
    /// device. No allocation beyond `text`, which the caller built.
    pub fn new(t_ns: u64, kind: EventKind, task: Option<TaskId>, text: String) -> Event {
        let (a, b) = match kind {
            EventKind::Io(e) => (e.link_code(), e.device_code()),
            _ => (0, 0),
        };
        Event {
            t_ns,
            kind,
            task,
            a,
            b,
            text,
        }
    }

    /// The same event with its kind-specific numbers set.
    pub fn with_numbers(mut self, a: i64, b: i64) -> Event {
        self.a = a;
        self.b = b;
        self
    }

    /// A driver or device event.
    pub fn io(t_ns: u64, event: IoEvent, text: String) -> Event {
        Event::new(t_ns, EventKind::Io(event), None, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_name_reads_back() {
        for name in EventKind::NAMES {
            let k = EventKind::from_name(name).unwrap();
            assert_eq!(k.name(), name);
        }
        assert_eq!(EventKind::from_name("nope"), None);
    }

    #[test]
    fn an_io_event_keeps_its_device_as_a_field_whatever_its_index() {
        // Numeric codes (10 + device) made device 10's health event read as device 0's
        // re-write (20 + 0); a field has no such limit.
        for device in [0u32, 9, 10, 11, 250] {
            let ev = Event::io(
                0,
                IoEvent::on_device(IoEventKind::DeviceBad, device, 1),
                String::new(),
            );
            let io = ev.kind.io().unwrap();
            assert_eq!(
                (io.kind, io.device, io.link),
                (IoEventKind::DeviceBad, Some(device), Some(1))
            );
            assert_eq!((ev.a, ev.b), (1, device as i64));
        }
        let server = Event::io(0, IoEvent::new(IoEventKind::Listening), String::new());
        assert_eq!((server.a, server.b), (-1, -1));
    }
}
