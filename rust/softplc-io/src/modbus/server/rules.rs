//! The write rules of the variables a Modbus server maps: every client write is
//! checked against the declared range and `writable` flag of each variable it touches,
//! before anything reaches the tables (see [`softplc_core::access`]).
//!
//! A request that breaks a rule is refused whole, so a multi-register write never
//! lands in part. A register write that covers only part of a multi-register value
//! (one word of a REAL) is checked on the value it would make together with the words
//! the table holds.

use softplc_core::{Layout, Value, WriteRefused, WriteRule};

use crate::modbus::bind::BoundPoint;
use crate::modbus::Table;

use super::tables::Tables;

/// One restricted variable.
#[derive(Clone, Debug)]
struct RulePoint {
    point: BoundPoint,
    rule: WriteRule,
}

/// A refused write: which variable, where, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The variable.
    pub var: String,
    /// Its table and first address.
    pub table: Table,
    /// First address of the variable.
    pub address: u16,
    /// The value the write would have set, decoded.
    pub value: Value,
    /// Why it was refused.
    pub why: WriteRefused,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "write of {} {} ({} = {}) refused: {}",
            self.table, self.address, self.var, self.value, self.why
        )
    }
}

/// The restricted variables among a server's mapped points.
#[derive(Clone, Debug, Default)]
pub struct WriteRules {
    points: Vec<RulePoint>,
}

impl WriteRules {
    /// The rules of `points` that restrict anything (most variables restrict nothing,
    /// and cost nothing here).
    pub fn new(layout: &Layout, points: &[BoundPoint]) -> WriteRules {
        WriteRules {
            points: points
                .iter()
                .filter(|p| p.table.is_writable())
                .filter_map(|p| {
                    let rule = layout.var(p.var).rule;
                    rule.is_restricted().then(|| RulePoint {
                        point: p.clone(),
                        rule,
                    })
                })
                .collect(),
        }
    }

    /// True when no mapped variable is restricted.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    fn touched(&self, table: Table, addr: u16, n: usize) -> impl Iterator<Item = &RulePoint> {
        let (lo, hi) = (addr as usize, addr as usize + n);
        self.points.iter().filter(move |r| {
            r.point.table == table && (r.point.address as usize) < hi && r.point.end() > lo
        })
    }

    /// Checks a coil write of `vals` at `addr`.
    pub fn check_bits(&self, addr: u16, vals: &[bool]) -> Result<(), Refusal> {
        for r in self.touched(Table::Coil, addr, vals.len()) {
            let bit = vals[(r.point.address - addr) as usize];
            let v = r.point.codec.decode_bit(bit);
            check(r, v)?;
        }
        Ok(())
    }

    /// Checks a holding-register write of `vals` at `addr`; words of a value outside
    /// the write are taken from `tables` (call under the tables' write lock).
    pub fn check_regs(&self, tables: &Tables, addr: u16, vals: &[u16]) -> Result<(), Refusal> {
        let end = addr as usize + vals.len();
        for r in self.touched(Table::HoldingRegister, addr, vals.len()) {
            let n = r.point.len();
            let mut words = [0u16; 4];
            for (k, w) in words[..n].iter_mut().enumerate() {
                let a = r.point.address as usize + k;
                *w = if (addr as usize..end).contains(&a) {
                    vals[a - addr as usize]
                } else {
                    tables.reg(Table::HoldingRegister, a)
                };
            }
            let v = r.point.codec.decode_words(&words[..n]).0;
            check(r, v)?;
        }
        Ok(())
    }
}

fn check(r: &RulePoint, v: Value) -> Result<(), Refusal> {
    r.rule.check(v).map_err(|why| Refusal {
        var: r.point.name.clone(),
        table: r.point.table,
        address: r.point.address,
        value: v,
        why,
    })
}
