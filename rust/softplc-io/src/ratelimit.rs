//! Per-kind rate limiting of driver events.
//!
//! A misbehaving peer can make a driver produce events as fast as the network allows (a
//! device that accepts connections and drops them, a flood of clients). The event log
//! must stay readable and bounded: each kind of event gets a share per window; beyond
//! it, events are only counted, and the count is reported once when the window ends
//! ("12 more connections dropped in the last second").

use std::time::{Duration, Instant};

/// Events shown per kind and window by default.
pub const EVENTS_PER_WINDOW: u32 = 5;
/// The default window.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Counts events of `kinds` kinds in fixed windows.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    per_window: u32,
    window: Duration,
    start: Option<Instant>,
    shown: Vec<u32>,
    suppressed: Vec<u64>,
}

impl RateLimiter {
    /// A limiter for kinds `0..kinds`, showing `per_window` of each per `window`.
    pub fn new(kinds: usize, per_window: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            per_window,
            window,
            start: None,
            shown: vec![0; kinds],
            suppressed: vec![0; kinds],
        }
    }

    /// True when one more event of `kind` may be shown in the current window (which
    /// starts with the first event after the previous one ended). Call [`Self::roll`]
    /// first so that a finished window is reported.
    pub fn admit(&mut self, kind: usize, now: Instant) -> bool {
        if self.start.is_none() {
            self.start = Some(now);
        }
        if self.shown[kind] < self.per_window {
            self.shown[kind] += 1;
            true
        } else {
            self.suppressed[kind] += 1;
            false
        }
    }

    /// Ends the window if it is over at `now`: returns the kinds whose events were cut
    /// short in it, with their counts (empty when none were).
    pub fn roll(&mut self, now: Instant) -> Vec<(usize, u64)> {
        match self.start {
            Some(s) if now.duration_since(s) >= self.window => self.end_window(),
            _ => Vec::new(),
        }
    }

    /// Ends the window now (for a periodic timer, or at shutdown).
    pub fn end_window(&mut self) -> Vec<(usize, u64)> {
        self.start = None;
        self.shown.iter_mut().for_each(|n| *n = 0);
        self.suppressed
            .iter_mut()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (k, std::mem::take(n)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_has_its_share_and_the_rest_is_counted_until_the_window_ends() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(2, 5, WINDOW);
        let shown = (0..100).filter(|_| l.admit(0, t0)).count();
        assert_eq!(shown, 5);
        assert!(l.admit(1, t0));
        // Not over yet.
        assert!(l.roll(t0 + Duration::from_millis(999)).is_empty());
        assert_eq!(l.roll(t0 + WINDOW), vec![(0, 95)]);
        // A new window shows events again.
        assert!(l.admit(0, t0 + WINDOW));
        assert!(l.end_window().is_empty());
    }
}
