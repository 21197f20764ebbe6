//! Batching mappings into as few Modbus requests as the protocol allows.
//!
//! Mappings of one table are sorted by address and merged while they are contiguous
//! (or, for reads, separated by at most `max_gap` unmapped items) and the request stays
//! within the protocol's limit (125 registers or 2000 bits a read, 123 registers or 1968
//! coils a write). Each request owns a region of a flat buffer of registers or bits;
//! each mapping learns its offset there, so the scan thread decodes by index.

use crate::modbus::Table;

/// One request of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedRequest {
    /// Table.
    pub table: Table,
    /// First address.
    pub start: u16,
    /// Items.
    pub count: u16,
    /// Offset of the first item in the plan's register or bit buffer.
    pub offset: usize,
}

/// A set of requests covering a set of mappings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Requests, in table then address order.
    pub requests: Vec<PlannedRequest>,
    /// Size of the register buffer.
    pub words: usize,
    /// Size of the bit buffer.
    pub bits: usize,
    /// For each input span (in the order given), its offset in the register or bit buffer.
    pub offsets: Vec<usize>,
}

/// A span of a table to cover: table, first address, item count.
pub type Span = (Table, u16, usize);

/// Plans reads (`write = false`) or writes of `spans`. Writes never bridge gaps: that
/// would overwrite registers nobody mapped.
pub fn plan(spans: &[Span], max_gap: u16, write: bool) -> Plan {
    let gap = if write { 0 } else { max_gap as usize };
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|i| (spans[*i].0, spans[*i].1));
    let mut p = Plan {
        offsets: vec![0; spans.len()],
        ..Plan::default()
    };
    // Open request: table, start, end (exclusive).
    let mut open: Option<(Table, usize, usize)> = None;
    let mut members: Vec<usize> = Vec::new();
    let close = |p: &mut Plan, open: (Table, usize, usize), members: &mut Vec<usize>| {
        let (table, start, end) = open;
        let buf = if table.is_bits() {
            &mut p.bits
        } else {
            &mut p.words
        };
        let offset = *buf;
        *buf += end - start;
        for m in members.drain(..) {
            p.offsets[m] = offset + (spans[m].1 as usize - start);
        }
        p.requests.push(PlannedRequest {
            table,
            start: start as u16,
            count: (end - start) as u16,
            offset,
        });
    };
    for i in order {
        let (table, addr, len) = spans[i];
        let (a, b) = (addr as usize, addr as usize + len);
        let limit = if write {
            table.max_write()
        } else {
            table.max_read()
        };
        match open {
            Some((t, s, e)) if t == table && a <= e + gap && b.max(e) - s <= limit => {
                open = Some((t, s, e.max(b)));
            }
            Some(o) => {
                close(&mut p, o, &mut members);
                open = Some((table, a, b));
            }
            None => open = Some((table, a, b)),
        }
        members.push(i);
    }
    if let Some(o) = open {
        close(&mut p, o, &mut members);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_registers_become_one_request() {
        let p = plan(
            &[
                (Table::HoldingRegister, 2, 2),
                (Table::HoldingRegister, 0, 2),
                (Table::HoldingRegister, 4, 1),
            ],
            0,
            false,
        );
        assert_eq!(p.requests.len(), 1);
        assert_eq!((p.requests[0].start, p.requests[0].count), (0, 5));
        assert_eq!(p.offsets, vec![2, 0, 4]);
    }

    #[test]
    fn requests_split_at_125_registers_and_2000_bits() {
        let regs: Vec<Span> = (0..300).map(|a| (Table::InputRegister, a, 1)).collect();
        let p = plan(&regs, 0, false);
        let counts: Vec<u16> = p.requests.iter().map(|r| r.count).collect();
        assert_eq!(counts, vec![125, 125, 50]);
        let bits: Vec<Span> = (0..4500).map(|a| (Table::Coil, a, 1)).collect();
        let p = plan(&bits, 0, false);
        let counts: Vec<u16> = p.requests.iter().map(|r| r.count).collect();
        assert_eq!(counts, vec![2000, 2000, 500]);
        let p = plan(&bits, 0, true);
        assert_eq!(p.requests[0].count, 1968);
    }

    #[test]
    fn a_multi_register_value_is_never_split_between_requests() {
        let regs: Vec<Span> = (0..70)
            .map(|a| (Table::HoldingRegister, a * 2, 2))
            .collect();
        let p = plan(&regs, 0, false);
        assert_eq!(p.requests[0].count, 124);
        assert_eq!(p.requests[1].start, 124);
    }

    #[test]
    fn gaps_split_unless_bridging_is_allowed_and_writes_never_bridge() {
        let s = [
            (Table::HoldingRegister, 0, 1),
            (Table::HoldingRegister, 3, 1),
        ];
        assert_eq!(plan(&s, 0, false).requests.len(), 2);
        let p = plan(&s, 2, false);
        assert_eq!(p.requests.len(), 1);
        assert_eq!(p.offsets, vec![0, 3]);
        assert_eq!(plan(&s, 2, true).requests.len(), 2);
    }

    #[test]
    fn tables_get_separate_requests_and_buffers() {
        let s = [
            (Table::Coil, 0, 1),
            (Table::HoldingRegister, 0, 1),
            (Table::DiscreteInput, 1, 1),
            (Table::Coil, 1, 1),
        ];
        let p = plan(&s, 0, false);
        assert_eq!(p.requests.len(), 3);
        assert_eq!((p.bits, p.words), (3, 1));
    }

    #[test]
    fn overlapping_reads_share_items() {
        let s = [
            (Table::HoldingRegister, 0, 1),
            (Table::HoldingRegister, 0, 1),
        ];
        let p = plan(&s, 0, false);
        assert_eq!(
            (p.requests.len(), p.words, p.offsets.clone()),
            (1, 1, vec![0, 0])
        );
    }
}
