//! What a client knows about one write request of a device, whatever the protocol,
//! and when it is due.
//!
//! A request is written when its values changed since they were last sent, and all of
//! them again after every (re)connection (nothing is known then about what the device
//! holds). A failed write waits a back-off before it is tried again (from `poll`,
//! doubling up to a cap); one the device *rejected* (a Modbus exception, an XGT NAK)
//! is tried at once when the program changes the value, since the device may accept
//! the next one.

use tokio::time::{Duration, Instant};

/// The state of one write request; `C` is the protocol's rejection code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WriteState<C> {
    /// The device holds the values last sent.
    pub valid: bool,
    /// Written (or rejected) since the last connection: for the re-write event.
    pub since_connect: bool,
    /// Not to be tried again before this, after a failure.
    pub hold_until: Option<Instant>,
    /// The next hold.
    pub backoff: Duration,
    /// The device rejected the last attempt with this code.
    pub rejected: Option<C>,
}

impl<C: Copy + PartialEq> WriteState<C> {
    /// A request never written, backing off from `poll` after failures.
    pub fn new(poll: Duration) -> WriteState<C> {
        WriteState {
            valid: false,
            since_connect: false,
            hold_until: None,
            backoff: poll,
            rejected: None,
        }
    }

    /// True when the request is to be written at `now`; `changed`: its values differ
    /// from the ones last sent; `ignore_holds`: also when held back after a failure.
    pub fn due(&self, now: Instant, changed: bool, ignore_holds: bool) -> bool {
        if self.valid && !changed {
            return false;
        }
        match self.hold_until {
            // A device that rejected a value may accept the next one: try a changed
            // value at once. After a timeout, wait (the device is not answering).
            Some(h) if now < h && !ignore_holds => self.rejected.is_some() && changed,
            _ => true,
        }
    }

    /// The device accepted the write.
    pub fn succeeded(&mut self, poll: Duration) {
        self.valid = true;
        self.since_connect = true;
        self.hold_until = None;
        self.backoff = poll;
        self.rejected = None;
    }

    /// The write failed: hold it back, doubling the back-off up to `cap`.
    pub fn failed(&mut self, cap: Duration) {
        self.valid = false;
        self.hold_until = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(cap);
    }

    /// The device rejected the write with `code` (after [`Self::failed`]). True when
    /// this is news (to be reported): the last attempt was not rejected the same way.
    pub fn rejected_with(&mut self, code: C) -> bool {
        self.since_connect = true;
        self.rejected.replace(code) != Some(code)
    }

    /// A (re)connection: nothing is known about what the device holds. Holds after
    /// timeouts end (the connection is new); holds after rejections stay.
    pub fn reconnected(&mut self, poll: Duration) {
        self.valid = false;
        self.since_connect = false;
        if self.rejected.is_none() {
            self.hold_until = None;
            self.backoff = poll;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_rejected_write_is_retried_at_once_only_with_a_new_value() {
        let mut w: WriteState<u8> = WriteState::new(10 * MS);
        let now = Instant::now();
        assert!(w.due(now, false, false), "never written");
        w.failed(100 * MS);
        assert!(w.rejected_with(3));
        assert!(!w.rejected_with(3), "reported once");
        assert!(!w.due(now, false, false));
        assert!(w.due(now, true, false));
        assert!(w.due(now, false, true));
        w.succeeded(10 * MS);
        assert!(!w.due(now, false, false));
        w.reconnected(10 * MS);
        assert!(w.due(now, false, false));
    }

    #[test]
    fn a_write_that_timed_out_waits_its_back_off_even_with_a_new_value() {
        let mut w: WriteState<u8> = WriteState::new(10 * MS);
        w.failed(100 * MS);
        assert!(!w.due(Instant::now(), true, false));
        assert_eq!(w.backoff, 20 * MS);
        w.reconnected(10 * MS);
        assert!(w.due(Instant::now(), true, false));
    }
}
