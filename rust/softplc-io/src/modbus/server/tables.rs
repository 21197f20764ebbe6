//! The server's Modbus tables, shared between the scan thread and client connections.
//!
//! Every item is an atomic, so nobody ever waits on a lock the scan holds for long.
//! A sequence lock ([`crate::server::seqlock`]) keeps multi-register values whole: the
//! scan publishes under it with a *try*-lock (if a connection is writing at that
//! instant, the scan skips publishing for one cycle and counts it; it never waits);
//! connections take it by spinning, which lasts at most one publication, a few
//! microseconds. Readers retry when a publication ran while they copied.
//!
//! Client writes set a pending flag on each item they touch. The scan applies flagged
//! items to the image at its next `read_inputs` and clears the flags; until then its
//! publication leaves flagged items alone, so a client reading back what it wrote sees
//! its own value, never the older image value.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

use crate::modbus::Table;
use crate::server::seqlock::SeqLock;
pub use crate::server::seqlock::WriteGuard;

const PENDING_BIT: u8 = 0b10;
const PENDING_REG: u32 = 1 << 16;

/// The four tables plus the sequence lock.
#[derive(Debug)]
pub struct Tables {
    lock: SeqLock,
    coils: Box<[AtomicU8]>,
    discrete: Box<[AtomicU8]>,
    input: Box<[AtomicU32]>,
    holding: Box<[AtomicU32]>,
}

fn bits(n: usize) -> Box<[AtomicU8]> {
    (0..n).map(|_| AtomicU8::new(0)).collect()
}

fn regs(n: usize) -> Box<[AtomicU32]> {
    (0..n).map(|_| AtomicU32::new(0)).collect()
}

impl Tables {
    /// Tables of the given sizes (items per table, by [`Table::index`]).
    pub fn new(sizes: [usize; 4]) -> Tables {
        Tables {
            lock: SeqLock::default(),
            coils: bits(sizes[0]),
            discrete: bits(sizes[1]),
            input: regs(sizes[2]),
            holding: regs(sizes[3]),
        }
    }

    /// Items in `table`.
    pub fn len(&self, table: Table) -> usize {
        match table {
            Table::Coil => self.coils.len(),
            Table::DiscreteInput => self.discrete.len(),
            Table::InputRegister => self.input.len(),
            Table::HoldingRegister => self.holding.len(),
        }
    }

    fn bit_table(&self, table: Table) -> &[AtomicU8] {
        if table == Table::Coil {
            &self.coils
        } else {
            &self.discrete
        }
    }

    fn reg_table(&self, table: Table) -> &[AtomicU32] {
        if table == Table::InputRegister {
            &self.input
        } else {
            &self.holding
        }
    }

    /// Scan thread: takes the write lock if it is free, never waits (one
    /// compare-exchange; no allocation or syscalls).
    pub fn try_lock(&self) -> Option<WriteGuard<'_>> {
        self.lock.try_lock()
    }

    /// Connections: takes the write lock, spinning while the scan publishes.
    pub fn lock(&self) -> WriteGuard<'_> {
        self.lock.lock()
    }

    /// Runs `f` until it saw a consistent snapshot (no publication in between).
    pub fn read<R>(&self, mut f: impl FnMut(&Tables) -> R) -> R {
        self.lock.read(|| f(self))
    }

    /// A bit's value. One atomic load: no allocation, locks or syscalls.
    pub fn bit(&self, table: Table, addr: usize) -> bool {
        self.bit_table(table)[addr].load(Ordering::Relaxed) & 1 != 0
    }

    /// A register's value. One atomic load: no allocation, locks or syscalls.
    pub fn reg(&self, table: Table, addr: usize) -> u16 {
        self.reg_table(table)[addr].load(Ordering::Relaxed) as u16
    }

    /// True when a client write to the item has not reached the image yet. One atomic
    /// load: no allocation, locks or syscalls.
    pub fn pending(&self, table: Table, addr: usize) -> bool {
        if table.is_bits() {
            self.bit_table(table)[addr].load(Ordering::Relaxed) & PENDING_BIT != 0
        } else {
            self.reg_table(table)[addr].load(Ordering::Relaxed) & PENDING_REG != 0
        }
    }

    /// Publication (scan, under the lock): stores a value, keeping no flag. One atomic
    /// store: no allocation or syscalls.
    pub fn publish_bit(&self, _g: &WriteGuard<'_>, table: Table, addr: usize, v: bool) {
        self.bit_table(table)[addr].store(v as u8, Ordering::Relaxed);
    }

    /// Publication (scan, under the lock): stores a register. One atomic store: no
    /// allocation or syscalls.
    pub fn publish_reg(&self, _g: &WriteGuard<'_>, table: Table, addr: usize, v: u16) {
        self.reg_table(table)[addr].store(v as u32, Ordering::Relaxed);
    }

    /// A client write (under the lock): stores the value and flags it pending.
    pub fn client_bit(&self, _g: &WriteGuard<'_>, table: Table, addr: usize, v: bool) {
        self.bit_table(table)[addr].store(v as u8 | PENDING_BIT, Ordering::Relaxed);
        self.lock.set_dirty();
    }

    /// A client write (under the lock): stores a register and flags it pending.
    pub fn client_reg(&self, _g: &WriteGuard<'_>, table: Table, addr: usize, v: u16) {
        self.reg_table(table)[addr].store(v as u32 | PENDING_REG, Ordering::Relaxed);
        self.lock.set_dirty();
    }

    /// Clears an item's pending flag (scan, under the lock, after applying it). One
    /// atomic operation: no allocation or syscalls.
    pub fn clear_pending(&self, _g: &WriteGuard<'_>, table: Table, addr: usize) {
        if table.is_bits() {
            self.bit_table(table)[addr].fetch_and(!PENDING_BIT, Ordering::Relaxed);
        } else {
            self.reg_table(table)[addr].fetch_and(!PENDING_REG, Ordering::Relaxed);
        }
    }

    /// Scan thread: true (and reset) when client writes may be waiting. One atomic
    /// swap: no allocation, locks or syscalls.
    pub fn take_dirty(&self) -> bool {
        self.lock.take_dirty()
    }

    /// Marks writes as waiting again (when the scan could not take the lock). One
    /// atomic store: no allocation, locks or syscalls.
    pub fn set_dirty(&self) {
        self.lock.set_dirty();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_scan_never_waits_for_a_writer_and_readers_see_whole_values() {
        let t = Arc::new(Tables::new([0, 0, 0, 2]));
        let g = t.lock();
        assert!(t.try_lock().is_none(), "a second writer must not get in");
        drop(g);
        let writer = {
            let t = t.clone();
            std::thread::spawn(move || {
                for i in 0..200_000u32 {
                    let g = t.try_lock().unwrap();
                    t.publish_reg(&g, Table::HoldingRegister, 0, i as u16);
                    t.publish_reg(&g, Table::HoldingRegister, 1, i as u16);
                }
            })
        };
        for _ in 0..200_000 {
            let (a, b) = t.read(|t| {
                (
                    t.reg(Table::HoldingRegister, 0),
                    t.reg(Table::HoldingRegister, 1),
                )
            });
            assert_eq!(a, b);
        }
        writer.join().unwrap();
    }

    #[test]
    fn client_writes_are_flagged_until_cleared() {
        let t = Tables::new([4, 0, 0, 4]);
        let g = t.lock();
        t.client_reg(&g, Table::HoldingRegister, 2, 77);
        t.client_bit(&g, Table::Coil, 1, true);
        drop(g);
        assert!(t.take_dirty());
        assert!(!t.take_dirty());
        assert!(t.pending(Table::HoldingRegister, 2));
        assert_eq!(t.reg(Table::HoldingRegister, 2), 77);
        assert!(t.bit(Table::Coil, 1) && t.pending(Table::Coil, 1));
        let g = t.try_lock().unwrap();
        t.clear_pending(&g, Table::HoldingRegister, 2);
        t.clear_pending(&g, Table::Coil, 1);
        drop(g);
        assert!(!t.pending(Table::HoldingRegister, 2) && !t.pending(Table::Coil, 1));
        assert_eq!(t.reg(Table::HoldingRegister, 2), 77);
        assert!(t.bit(Table::Coil, 1));
    }
}
