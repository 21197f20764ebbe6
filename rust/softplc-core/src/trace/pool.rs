//! The buffers between the scan thread and the trace writer.
//!
//! A fixed set of row buffers allocated (and pre-faulted) when the trace is attached.
//! Each buffer has an owner, given by its state: FREE and READY buffers belong to no one
//! and to the writer respectively, a FILLING buffer to the sampler. Both sides walk the
//! buffers in the same ring order, so the writer sees them in the order they were
//! filled. Handing a buffer over is one atomic store (Release) seen by one atomic load
//! (Acquire): no locks, no waiting, no allocation on the scan thread.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU8, Ordering};

const FREE: u8 = 0;
const FILLING: u8 = 1;
const READY: u8 = 2;

/// Rows lost because no buffer was free, reported with the next buffer handed over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Gap {
    /// Whole blocks dropped (the last one may be partial when the trace stopped).
    pub blocks: u64,
    /// Rows dropped.
    pub rows: u64,
    /// Cycle of the first dropped row.
    pub first_cycle: u64,
    /// Cycle of the last dropped row.
    pub last_cycle: u64,
    /// Time of the first dropped row (engine clock, ns).
    pub t_first_ns: u64,
    /// Time of the last dropped row.
    pub t_last_ns: u64,
}

impl Gap {
    /// Counts one dropped row.
    #[inline]
    pub fn add_row(&mut self, cycle: u64, t_ns: u64) {
        if self.rows == 0 {
            self.first_cycle = cycle;
            self.t_first_ns = t_ns;
        }
        self.rows += 1;
        self.last_cycle = cycle;
        self.t_last_ns = t_ns;
    }

    /// True when nothing was dropped.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }
}

/// Where a capture's trigger row is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TriggerMark {
    /// Capture number, from 0.
    pub capture: u64,
    /// Rows before the trigger row in this capture.
    pub pre_rows: usize,
    /// Cycle of the trigger row.
    pub cycle: u64,
    /// Time of the trigger row (engine clock, ns).
    pub t_ns: u64,
    /// True when the trigger was forced rather than met.
    pub forced: bool,
    /// False when the trace stopped before all post-trigger rows were taken.
    pub complete: bool,
}

/// Written by the sampler before it hands a buffer over; read by the writer after.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Meta {
    /// Ring position of the first row (0 for continuous blocks).
    pub start: usize,
    /// Rows in the buffer.
    pub rows: usize,
    /// Block sequence number (dropped blocks use numbers too).
    pub seq: u64,
    /// Rows dropped just before this buffer.
    pub gap: Gap,
    /// Set for a triggered capture.
    pub trigger: Option<TriggerMark>,
}

struct Buf {
    state: AtomicU8,
    meta: UnsafeCell<Meta>,
    data: UnsafeCell<Box<[u8]>>,
}

/// A ring of row buffers shared by one sampler and one writer.
pub(crate) struct Pool {
    bufs: Box<[Buf]>,
    /// Bytes per row.
    pub row_size: usize,
    /// Rows per buffer.
    pub cap_rows: usize,
}

// SAFETY: the data and meta of a buffer are only touched by the side that owns it
// according to its state, and ownership changes through Release/Acquire pairs.
unsafe impl Sync for Pool {}
// SAFETY: as above; the pool holds plain bytes.
unsafe impl Send for Pool {}

impl Pool {
    /// Allocates `n` buffers of `cap_rows` rows and touches every page, so the scan
    /// thread never takes a page fault writing into them. Off the scan thread. Fails
    /// with a message, instead of aborting the process, when the memory is not there.
    pub fn try_new(n: usize, cap_rows: usize, row_size: usize) -> Result<Pool, String> {
        let bytes = cap_rows.checked_mul(row_size.max(1)).ok_or_else(|| {
            format!("trace buffers of {cap_rows} rows of {row_size} bytes are too large")
        })?;
        let mut bufs = Vec::new();
        bufs.try_reserve_exact(n)
            .map_err(|e| format!("cannot allocate {n} trace buffers: {e}"))?;
        for _ in 0..n {
            let mut data: Vec<u8> = Vec::new();
            data.try_reserve_exact(bytes)
                .map_err(|e| format!("cannot allocate {n} trace buffers of {bytes} bytes: {e}"))?;
            data.resize(bytes, 0);
            let mut data = data.into_boxed_slice();
            for i in (0..data.len()).step_by(4096) {
                // SAFETY: i is in bounds; a volatile write makes the kernel back the
                // page now rather than on the scan thread's first write.
                unsafe { std::ptr::write_volatile(data.as_mut_ptr().add(i), 0) };
            }
            bufs.push(Buf {
                state: AtomicU8::new(FREE),
                meta: UnsafeCell::new(Meta::default()),
                data: UnsafeCell::new(data),
            });
        }
        Ok(Pool {
            bufs: bufs.into_boxed_slice(),
            row_size,
            cap_rows,
        })
    }

    /// Number of buffers.
    pub fn len(&self) -> usize {
        self.bufs.len()
    }

    /// Sampler: takes buffer `i` if it is free. Lock-free.
    #[inline]
    pub fn try_acquire(&self, i: usize) -> bool {
        self.bufs[i]
            .state
            .compare_exchange(FREE, FILLING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Sampler: the rows of a buffer it holds.
    ///
    /// # Safety
    /// The caller holds buffer `i` (acquired, not yet published or given back) and
    /// keeps no other reference to its data.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn rows_mut(&self, i: usize) -> &mut [u8] {
        // SAFETY: the caller owns the buffer (see above).
        unsafe { &mut *self.bufs[i].data.get() }
    }

    /// Sampler: hands a held buffer to the writer with its metadata.
    ///
    /// # Safety
    /// The caller holds buffer `i`.
    #[inline]
    pub unsafe fn publish(&self, i: usize, meta: Meta) {
        // SAFETY: the caller owns the buffer, so nobody reads the meta concurrently.
        unsafe { *self.bufs[i].meta.get() = meta };
        self.bufs[i].state.store(READY, Ordering::Release);
    }

    /// Sampler: gives a held buffer back unused.
    pub fn give_back(&self, i: usize) {
        self.bufs[i].state.store(FREE, Ordering::Release);
    }

    /// Writer: true when buffer `i` has been handed over.
    #[inline]
    pub fn is_ready(&self, i: usize) -> bool {
        self.bufs[i].state.load(Ordering::Acquire) == READY
    }

    /// Writer: the metadata and rows of a ready buffer.
    ///
    /// # Safety
    /// `is_ready(i)` returned true and `release(i)` has not been called since.
    pub unsafe fn ready(&self, i: usize) -> (Meta, &[u8]) {
        // SAFETY: the buffer is READY, so the sampler does not touch it.
        unsafe { (*self.bufs[i].meta.get(), &**self.bufs[i].data.get()) }
    }

    /// Writer: returns a ready buffer to the sampler.
    pub fn release(&self, i: usize) {
        self.bufs[i].state.store(FREE, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_moves_free_filling_ready_free() {
        let p = Pool::try_new(2, 4, 8).unwrap();
        assert!(p.try_acquire(0));
        assert!(!p.try_acquire(0));
        assert!(!p.is_ready(0));
        // SAFETY: buffer 0 is held.
        unsafe {
            p.rows_mut(0)[0] = 7;
            p.publish(
                0,
                Meta {
                    rows: 1,
                    ..Meta::default()
                },
            );
        }
        assert!(p.is_ready(0));
        assert!(!p.try_acquire(0));
        // SAFETY: ready and not released.
        let (m, rows) = unsafe { p.ready(0) };
        assert_eq!((m.rows, rows[0]), (1, 7));
        p.release(0);
        assert!(p.try_acquire(0));
    }

    #[test]
    fn memory_that_cannot_be_had_is_an_error_not_an_abort() {
        let e = Pool::try_new(2, usize::MAX / 2, 3).err().unwrap();
        assert!(e.contains("too large"), "{e}");
        // More than any address space: try_reserve says no instead of aborting.
        let e = Pool::try_new(1, 1 << 62, 1).err().unwrap();
        assert!(e.contains("cannot allocate"), "{e}");
    }
}
