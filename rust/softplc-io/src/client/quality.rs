//! What the scan makes of a device's newest sample, whatever the protocol: the quality
//! and age stamp its inputs get, and the device's health variable.
//!
//! A sample carries three facts from the poller: how many polls succeeded so far
//! (`good_seq`, 0: no data yet), when the last good one started (monotonic ns), and
//! whether the device has failed `fail_after` polls in a row (`bad`). Everything here
//! runs on the scan thread: no allocation, locks or syscalls.

use softplc_core::{EngineClock, Image, Quality, Slot, Value, VarId};

/// The poller's verdict on a device, as its sample carries it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SampleState {
    /// Monotonic time the last good poll started.
    pub acquired_mono: u64,
    /// Good polls so far (0: no data yet).
    pub good_seq: u64,
    /// The device has failed `fail_after` polls in a row.
    pub bad: bool,
}

impl SampleState {
    /// The quality of the sample's inputs at engine time `now_ns`, and the engine time
    /// their data was acquired (0 before any): bad after the device failed, stale
    /// before the first answer and once the data is older than `stale_ns`.
    pub fn judge(&self, clock: &EngineClock, now_ns: u64, stale_ns: u64) -> (Quality, u64) {
        let stamp = if self.good_seq == 0 {
            0
        } else {
            clock.engine_time(self.acquired_mono)
        };
        let quality = if self.bad {
            Quality::Bad
        } else if self.good_seq == 0 || now_ns.saturating_sub(stamp) > stale_ns {
            Quality::Stale
        } else {
            Quality::Good
        };
        (quality, stamp)
    }

    /// True when the device is good: its inputs' quality, or for a device without
    /// inputs, whether it answered and is not bad.
    pub fn good(&self, has_inputs: bool, quality: Quality) -> bool {
        if has_inputs {
            quality == Quality::Good
        } else {
            !self.bad && self.good_seq > 0
        }
    }
}

/// Sets a device's health variable (if it has one) to `good`, with good quality and
/// the cycle's time.
pub(crate) fn store_health(
    image: &mut Image,
    now_ns: u64,
    health: Option<(VarId, Slot)>,
    good: bool,
) {
    if let Some((id, slot)) = health {
        image.store(slot, Value::Bool(good));
        image.quality[id.index()] = Quality::Good;
        image.stamp_ns[id.index()] = now_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use softplc_core::ClockKind;

    #[test]
    fn data_is_stale_before_the_first_poll_and_once_older_than_the_limit() {
        let clock = EngineClock::new(ClockKind::Real);
        let fresh = SampleState {
            acquired_mono: 1_000,
            good_seq: 1,
            bad: false,
        };
        assert_eq!(fresh.judge(&clock, 1_500, 1_000), (Quality::Good, 1_000));
        assert_eq!(fresh.judge(&clock, 2_001, 1_000).0, Quality::Stale);
        assert_eq!(
            SampleState::default().judge(&clock, 5, 1_000),
            (Quality::Stale, 0)
        );
        let bad = SampleState { bad: true, ..fresh };
        assert_eq!(bad.judge(&clock, 1_500, 1_000).0, Quality::Bad);
        assert!(!bad.good(false, Quality::Bad));
        assert!(fresh.good(false, Quality::Stale));
    }
}
