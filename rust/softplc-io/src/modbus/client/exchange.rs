//! What the scan and the poller exchange for one device: the newest inputs (poller ->
//! scan), the newest outputs (scan -> poller), and the safe values the watchdog's
//! override ([`crate::client::safe::SafeLatch`]) makes pollers write while the scan
//! thread is stuck.
//!
//! Both sides only copy into and out of triple buffers of these samples, allocated at
//! start: no allocation, locks or syscalls on the scan thread.

use crate::client::quality::SampleState;
use crate::client::safe::Patch;

/// Newest device data, poller -> scan.
#[derive(Clone, Debug, Default)]
pub(crate) struct InSample {
    /// Registers of the last good poll (read plan layout).
    pub words: Vec<u16>,
    /// Bits of the last good poll.
    pub bits: Vec<bool>,
    /// When the data was acquired, and whether the device is bad.
    pub state: SampleState,
}

/// Newest outputs, scan -> poller.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutSample {
    /// Registers in write-plan layout.
    pub words: Vec<u16>,
    /// Coils in write-plan layout.
    pub bits: Vec<bool>,
    /// Publications so far (0: the scan has not run yet: write nothing).
    pub seq: u64,
}

/// Safe values of one device's outputs, as positions in its write-plan buffers.
#[derive(Clone, Debug, Default)]
pub(crate) struct SafePatch {
    /// Register offsets and safe register values.
    pub words: Patch<u16>,
    /// Coil offsets and safe coil values.
    pub bits: Patch<bool>,
}

impl SafePatch {
    /// Overwrites the output positions of a sample with their safe values.
    pub fn apply(&self, words: &mut [u16], bits: &mut [bool]) {
        self.words.apply(words);
        self.bits.apply(bits);
    }
}
