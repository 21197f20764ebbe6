//! The device memory an XGT server serves, shared between the scan thread and client
//! connections.
//!
//! Each served device is an array of bytes; every byte is an atomic that also carries
//! one "pending" flag per bit, so that nobody waits on a lock held for long. The
//! sequence lock ([`crate::server::seqlock`]) keeps multi-byte values whole: the scan
//! publishes under a *try*-lock (it skips a cycle rather than wait), connections take
//! it by spinning for the length of one publication, readers retry when a publication
//! ran while they copied.
//!
//! A client write sets the pending flags of the bits it touches. The scan applies
//! flagged values to the image at its next `read_inputs` and clears the flags; until
//! then its publication leaves them alone, so a client reading back what it wrote sees
//! its own value. Flags are per bit because a BOOL variable is one bit: a client
//! writing `%MX3` must not hold back the program's value of `%MX4` in the same byte.

use std::sync::atomic::{AtomicU16, Ordering};

use crate::server::seqlock::{SeqLock, WriteGuard};
use crate::xgt::device::Device;

/// All pending flags of a byte.
const ALL_PENDING: u16 = 0xFF00;

/// The served devices' bytes plus the sequence lock.
#[derive(Debug)]
pub struct Memory {
    lock: SeqLock,
    /// By device, in [`Device::ALL`] order: None for a device not served.
    devices: Vec<Option<Box<[AtomicU16]>>>,
}

impl Memory {
    /// Memory serving `sizes` (device, bytes); devices not listed are not served.
    pub fn new(sizes: &[(Device, usize)]) -> Memory {
        let mut devices: Vec<Option<Box<[AtomicU16]>>> = Device::ALL.iter().map(|_| None).collect();
        for (d, n) in sizes {
            devices[*d as usize] = Some((0..*n).map(|_| AtomicU16::new(0)).collect());
        }
        Memory {
            lock: SeqLock::default(),
            devices,
        }
    }

    /// The bytes of `device`, if it is served.
    fn bytes(&self, device: Device) -> Option<&[AtomicU16]> {
        self.devices.get(device as usize)?.as_deref()
    }

    /// Bytes of `device`, or None when it is not served.
    pub fn len(&self, device: Device) -> Option<usize> {
        self.bytes(device).map(|b| b.len())
    }

    /// True when no device is served.
    pub fn is_empty(&self) -> bool {
        self.devices.iter().all(|d| d.is_none())
    }

    /// Scan thread: the write lock if it is free, never waits.
    pub fn try_lock(&self) -> Option<WriteGuard<'_>> {
        self.lock.try_lock()
    }

    /// Connections: the write lock, spinning while the scan publishes.
    pub fn lock(&self) -> WriteGuard<'_> {
        self.lock.lock()
    }

    /// Runs `f` until it saw a consistent snapshot.
    pub fn read<R>(&self, mut f: impl FnMut(&Memory) -> R) -> R {
        self.lock.read(|| f(self))
    }

    /// Byte `at` of `device` (served, in range). One atomic load.
    pub fn byte(&self, device: Device, at: usize) -> u8 {
        self.bytes(device)
            .map_or(0, |b| b[at].load(Ordering::Relaxed) as u8)
    }

    /// True when a client write to byte `at` of `device` (only bit `bit` of it, if
    /// given) has not reached the image yet. One atomic load.
    pub fn pending(&self, device: Device, at: usize, bit: Option<u8>) -> bool {
        let Some(b) = self.bytes(device) else {
            return false;
        };
        let flags = b[at].load(Ordering::Relaxed) & ALL_PENDING;
        match bit {
            Some(k) => flags & (0x100 << k) != 0,
            None => flags != 0,
        }
    }

    /// Publication (scan, under the lock): stores a byte, clearing its flags. One
    /// atomic store.
    pub fn publish_byte(&self, _g: &WriteGuard<'_>, device: Device, at: usize, v: u8) {
        if let Some(b) = self.bytes(device) {
            b[at].store(v as u16, Ordering::Relaxed);
        }
    }

    /// Publication (scan, under the lock): sets one bit, leaving the others and their
    /// flags alone. Two atomic operations.
    pub fn publish_bit(&self, _g: &WriteGuard<'_>, device: Device, at: usize, bit: u8, on: bool) {
        if let Some(b) = self.bytes(device) {
            let cur = b[at].load(Ordering::Relaxed);
            let v = if on {
                cur | (1 << bit)
            } else {
                cur & !(1 << bit)
            };
            b[at].store(v, Ordering::Relaxed);
        }
    }

    /// A client write (under the lock): a byte, every bit flagged pending.
    pub fn client_byte(&self, _g: &WriteGuard<'_>, device: Device, at: usize, v: u8) {
        if let Some(b) = self.bytes(device) {
            b[at].store(v as u16 | ALL_PENDING, Ordering::Relaxed);
            self.lock.set_dirty();
        }
    }

    /// A client write (under the lock): one bit, flagged pending.
    pub fn client_bit(&self, _g: &WriteGuard<'_>, device: Device, at: usize, bit: u8, on: bool) {
        if let Some(b) = self.bytes(device) {
            let cur = b[at].load(Ordering::Relaxed);
            let v = if on {
                cur | (1 << bit)
            } else {
                cur & !(1 << bit)
            };
            b[at].store(v | (0x100 << bit), Ordering::Relaxed);
            self.lock.set_dirty();
        }
    }

    /// Clears the flags of byte `at` (only of bit `bit`, if given), after the scan
    /// applied it (under the lock). One atomic operation.
    pub fn clear_pending(&self, _g: &WriteGuard<'_>, device: Device, at: usize, bit: Option<u8>) {
        if let Some(b) = self.bytes(device) {
            let mask = match bit {
                Some(k) => !(0x100u16 << k),
                None => !ALL_PENDING,
            };
            b[at].fetch_and(mask, Ordering::Relaxed);
        }
    }

    /// Scan thread: true (and reset) when client writes may be waiting. One atomic
    /// swap.
    pub fn take_dirty(&self) -> bool {
        self.lock.take_dirty()
    }

    /// Marks writes as waiting again (the scan could not take the lock).
    pub fn set_dirty(&self) {
        self.lock.set_dirty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_bit_write_flags_only_its_bit() {
        let m = Memory::new(&[(Device::M, 4)]);
        let g = m.lock();
        m.publish_byte(&g, Device::M, 1, 0b0001_0000);
        m.client_bit(&g, Device::M, 1, 3, true);
        drop(g);
        assert!(m.take_dirty());
        assert_eq!(m.byte(Device::M, 1), 0b0001_1000);
        assert!(m.pending(Device::M, 1, Some(3)));
        assert!(!m.pending(Device::M, 1, Some(4)));
        // The scan may still publish the other bits of the byte.
        let g = m.try_lock().unwrap();
        m.publish_bit(&g, Device::M, 1, 4, false);
        m.clear_pending(&g, Device::M, 1, Some(3));
        drop(g);
        assert_eq!(m.byte(Device::M, 1), 0b0000_1000);
        assert!(!m.pending(Device::M, 1, None));
        assert_eq!(m.len(Device::D), None);
        assert_eq!(m.len(Device::M), Some(4));
    }
}
