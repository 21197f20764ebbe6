//! The sequence lock of a server's shared data (Modbus tables, XGT device memory).
//!
//! The data itself is atomics, so nobody ever waits on a lock held for long. The lock
//! only keeps multi-item values whole: the scan publishes under it with a *try*-lock
//! (if a connection is writing at that instant, the scan skips publishing for one cycle
//! and counts it; it never waits); connections take it by spinning, which lasts at most
//! one publication, a few microseconds. Readers retry when a publication ran while they
//! copied. A `dirty` flag tells the scan that client writes wait to be applied.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};

/// The lock and the dirty flag.
#[derive(Debug, Default)]
pub struct SeqLock {
    seq: AtomicU64,
    dirty: AtomicBool,
}

/// Proof of holding the write side of the sequence lock.
#[derive(Debug)]
pub struct WriteGuard<'a> {
    lock: &'a SeqLock,
    start: u64,
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.lock.seq.store(self.start + 2, Ordering::Release);
    }
}

impl SeqLock {
    /// Scan thread: takes the write lock if it is free, never waits (one
    /// compare-exchange; no allocation or syscalls).
    pub fn try_lock(&self) -> Option<WriteGuard<'_>> {
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 == 1 {
            return None;
        }
        self.seq
            .compare_exchange(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        fence(Ordering::Release);
        Some(WriteGuard {
            lock: self,
            start: s,
        })
    }

    /// Connections: takes the write lock, spinning while the scan publishes.
    pub fn lock(&self) -> WriteGuard<'_> {
        let mut spins = 0u32;
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Runs `f` until it saw a consistent snapshot (no publication in between).
    pub fn read<R>(&self, mut f: impl FnMut() -> R) -> R {
        let mut spins = 0u32;
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let r = f();
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == s1 {
                    return r;
                }
            }
            spins += 1;
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// A client wrote: the scan has writes to apply. One atomic store.
    pub fn set_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Scan thread: true (and reset) when client writes may be waiting. One atomic
    /// swap: no allocation, locks or syscalls.
    pub fn take_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire) && self.dirty.swap(false, Ordering::AcqRel)
    }
}
