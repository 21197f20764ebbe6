//! What every client connection (link) does the same way, whatever its protocol: its
//! rate-limited events ([`LinkLog`]) and its reconnection schedule ([`Reconnect`]).
//!
//! The schedule's rules hold however the connection fails:
//! - a failed connection attempt waits the back-off, which doubles from
//!   `reconnect_min` up to `reconnect_max`;
//! - the back-off is reset only by a connection that has *worked* (answered one
//!   request, even with a negative answer), never by a connect alone: a device that
//!   accepts connections and then garbles or closes them is retried exactly like one
//!   that refuses them;
//! - a connection that worked and is lost is reopened at once (a device restart, a
//!   gateway that closes idle links); if that fails, the back-off applies;
//! - a timeout alone does not drop a connection (the answer may come late, or only one
//!   unit behind a gateway may be silent); a second timeout in a row with nothing at
//!   all received in between does: then the connection itself is dead.

use std::time::Duration;

use softplc_core::{EngineClock, Event, EventSink, IoEvent, IoEventKind};
use tokio::time::Instant;

use crate::ratelimit::{RateLimiter, EVENTS_PER_WINDOW, WINDOW};

/// The kinds of client events, each rate-limited on its own (see
/// [`crate::ratelimit`]); the limiter counts them by their place in this list.
pub(crate) const LIMITED: [IoEventKind; 7] = [
    IoEventKind::Connected,
    IoEventKind::ConnectFailed,
    IoEventKind::Disconnected,
    IoEventKind::DeviceBad,
    IoEventKind::DeviceGood,
    IoEventKind::OutputsRewritten,
    IoEventKind::WriteRejected,
];

fn limiter_slot(kind: IoEventKind) -> usize {
    LIMITED
        .iter()
        .position(|k| *k == kind)
        .expect("every client event kind is rate-limited")
}

/// The summary of `n` events of `kind` left out in a window, by a `label` client
/// (`modbus`, `xgt`) on `endpoint`.
pub(crate) fn summary(label: &str, kind: IoEventKind, n: u64, endpoint: &str) -> String {
    let what = match kind {
        IoEventKind::Connected => "connections",
        IoEventKind::ConnectFailed => "failed connection attempts",
        IoEventKind::Disconnected => "dropped connections",
        IoEventKind::DeviceBad => "devices gone bad",
        IoEventKind::DeviceGood => "devices answering again",
        IoEventKind::OutputsRewritten => "output re-writes after connecting",
        IoEventKind::WriteRejected => "rejected writes",
        _ => "events",
    };
    format!("{label}: {n} more {what} on {endpoint} in the last second")
}

/// The events of one link, rate-limited per kind and window; what a window left out is
/// summed up in one event of its kind once the window is over.
pub(crate) struct LinkLog {
    /// `modbus`, `xgt`: the first word of every event's text.
    pub label: &'static str,
    /// `host:port`.
    pub endpoint: String,
    /// The link's number, as events name it.
    pub link: u32,
    limiter: RateLimiter,
    events: EventSink,
    clock: EngineClock,
}

impl LinkLog {
    /// The log of link number `link` to `endpoint`.
    pub fn new(
        label: &'static str,
        endpoint: String,
        link: u32,
        events: EventSink,
        clock: EngineClock,
    ) -> LinkLog {
        LinkLog {
            label,
            endpoint,
            link,
            limiter: RateLimiter::new(LIMITED.len(), EVENTS_PER_WINDOW, WINDOW),
            events,
            clock,
        }
    }

    /// An event about this link.
    pub fn link_event(&mut self, kind: IoEventKind, text: String) {
        self.event(IoEvent::on_link(kind, self.link), text);
    }

    /// An event about device `device` on this link.
    pub fn device_event(&mut self, kind: IoEventKind, device: u32, text: String) {
        self.event(IoEvent::on_device(kind, device, self.link), text);
    }

    /// An event, unless this window's share of its kind is used up.
    pub fn event(&mut self, ev: IoEvent, text: String) {
        let now = std::time::Instant::now();
        self.report_suppressed(now);
        if self.limiter.admit(limiter_slot(ev.kind), now) {
            self.push(ev, text);
        }
    }

    fn push(&self, ev: IoEvent, text: String) {
        self.events.push(Event::io(self.clock.now(), ev, text));
    }

    /// Once a window is over, one summary event per kind whose events were cut short.
    pub fn report_suppressed(&mut self, now: std::time::Instant) {
        for (k, n) in self.limiter.roll(now) {
            self.push_summary(LIMITED[k], n);
        }
    }

    /// Ends the window now (at shutdown), with its summaries.
    pub fn finish(&mut self) {
        for (k, n) in self.limiter.end_window() {
            self.push_summary(LIMITED[k], n);
        }
    }

    fn push_summary(&self, kind: IoEventKind, n: u64) {
        let text = summary(self.label, kind, n, &self.endpoint);
        self.push(IoEvent::on_link(kind, self.link).summing(n), text);
    }
}

/// When a link may next try to connect, and whether its connection works; see the
/// module docs for the rules.
#[derive(Debug)]
pub(crate) struct Reconnect {
    min: Duration,
    max: Duration,
    backoff: Duration,
    /// No connection attempt before this.
    pub next_attempt: Instant,
    /// The connection answered a request since it was opened: it works.
    pub proven: bool,
    /// The failure to connect has been reported (once until it comes up).
    down_reported: bool,
    /// Why the link is down, for the requests that find it so.
    pub last_down: String,
    /// Frames received on the connection as of the last timeout.
    rx_seen: u64,
    /// Timeouts in a row with nothing received in between.
    quiet_timeouts: u32,
}

impl Reconnect {
    /// A link never connected, backing off from `min` to `max`.
    pub fn new(min: Duration, max: Duration) -> Reconnect {
        Reconnect {
            min,
            max,
            backoff: min,
            next_attempt: Instant::now(),
            proven: false,
            down_reported: false,
            last_down: "never connected".to_string(),
            rx_seen: 0,
            quiet_timeouts: 0,
        }
    }

    /// True when a connection attempt is due at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now >= self.next_attempt
    }

    /// The link connected; `rx` frames were received on it so far.
    pub fn connected(&mut self, rx: u64) {
        self.rx_seen = rx;
        self.quiet_timeouts = 0;
        // The back-off is reset once the connection answers (`answered`).
        self.proven = false;
        self.down_reported = false;
    }

    /// A connection attempt failed: back off. True when this failure is the first
    /// since the link was last up (to be reported).
    pub fn connect_failed(&mut self, why: String) -> bool {
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.max);
        self.last_down = why;
        !std::mem::replace(&mut self.down_reported, true)
    }

    /// An open connection was lost or dropped.
    pub fn lost(&mut self, why: String) {
        if self.proven {
            // A connection that worked: reconnect at once; if that fails, back off.
            self.next_attempt = Instant::now();
        } else {
            // It never answered: back off exactly as for a refused connection.
            self.next_attempt = Instant::now() + self.backoff;
            self.backoff = (self.backoff * 2).min(self.max);
        }
        self.last_down = why;
    }

    /// The connection answered a request: it works, and the back-off starts again
    /// from `reconnect_min`.
    pub fn answered(&mut self) {
        if !self.proven {
            self.proven = true;
            self.backoff = self.min;
        }
    }

    /// A request timed out with `rx` frames received on the connection so far. True
    /// when the connection is to be dropped: a second timeout in a row with nothing
    /// received in between (late answers count: they prove the link alive).
    pub fn timed_out(&mut self, rx: u64) -> bool {
        if rx != self.rx_seen {
            self.rx_seen = rx;
            self.quiet_timeouts = 0;
        }
        self.quiet_timeouts += 1;
        self.quiet_timeouts >= 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_back_off_doubles_and_is_reset_only_by_an_answer() {
        let mut r = Reconnect::new(10 * MS, 35 * MS);
        let t0 = Instant::now();
        assert!(r.connect_failed("refused".into()));
        assert!(!r.connect_failed("refused".into()), "reported once");
        assert!(r.next_attempt >= t0 + 20 * MS);
        // Connects, never answers, is dropped: backs off further (capped).
        r.connected(0);
        r.lost("closed".into());
        assert!(r.next_attempt >= t0 + 35 * MS);
        assert_eq!(r.backoff, 35 * MS);
        // A connection that answered is reopened at once, from the minimum.
        r.connected(0);
        r.answered();
        assert_eq!(r.backoff, 10 * MS);
        r.lost("closed".into());
        assert!(r.due(Instant::now()));
    }

    #[test]
    fn only_a_second_quiet_timeout_drops_the_connection() {
        let mut r = Reconnect::new(MS, MS);
        r.connected(5);
        assert!(!r.timed_out(5));
        // Something arrived in between: the count starts again.
        assert!(!r.timed_out(6));
        assert!(r.timed_out(6));
    }

    #[test]
    fn summaries_name_the_protocol_and_the_endpoint() {
        assert_eq!(
            summary("xgt", IoEventKind::Disconnected, 3, "10.0.0.1:2004"),
            "xgt: 3 more dropped connections on 10.0.0.1:2004 in the last second"
        );
    }
}
