//! The operation vocabulary of the intermediate form: every operation name and the
//! kind of each of its operands.
//!
//! This table is the one the verifier checks operand counts against, and the one the
//! Python compiler's copy (`python/softplc/compiler/ops.py`) is held equal to by a test
//! (through `softplc._native.vm_operations()`), as the function block layouts are.
//! What each operation does to its operands' types is the verifier's business
//! ([`crate::verify`]); this table only says how many there are and what they index.

use crate::fb;
use crate::num::MathFn;

/// What an operand of an operation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// A cell index.
    Cell,
    /// A process-image variable index.
    Var,
    /// An image table index (an array of variables).
    Table,
    /// A cell table index (an array of cells, or of block instances).
    CellTable,
    /// A jump target after the instruction.
    Forward,
    /// A jump target at or before the instruction.
    Back,
    /// A message index.
    Message,
    /// A non-negative number (a stride, a length, a lower bound).
    Count,
    /// Any integer.
    Int,
    /// Any number of further operands, of the kind the operation documents.
    Rest,
}

impl Operand {
    /// The name the Python side uses (`cell`, `var`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Operand::Cell => "cell",
            Operand::Var => "var",
            Operand::Table => "table",
            Operand::CellTable => "ctable",
            Operand::Forward => "fwd",
            Operand::Back => "back",
            Operand::Message => "msg",
            Operand::Count => "count",
            Operand::Int => "int",
            Operand::Rest => "rest",
        }
    }
}

/// One operation: its name and operand kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpSpec {
    /// Name as the document writes it.
    pub name: &'static str,
    /// Operand kinds, in order.
    pub operands: &'static [Operand],
}

use Operand::{Back, Cell, CellTable, Count, Forward, Int, Message, Rest, Table, Var};

const D_A: &[Operand] = &[Cell, Cell];
const D_A_B: &[Operand] = &[Cell, Cell, Cell];

const fn op(name: &'static str, operands: &'static [Operand]) -> OpSpec {
    OpSpec { name, operands }
}

/// The operations other than the families of [`operations`] (math functions and the
/// `fb.`/`fbx.`/`fbt.` block calls).
pub const OPS: &[OpSpec] = &[
    op("mov", D_A),
    op("conv", D_A),
    op("add", D_A_B),
    op("sub", D_A_B),
    op("mul", D_A_B),
    op("div", D_A_B),
    op("mod", D_A_B),
    op("trunc", D_A),
    op("floordiv", D_A_B),
    op("floormod", D_A_B),
    op("neg", D_A),
    op("abs", D_A),
    op("and", D_A_B),
    op("or", D_A_B),
    op("xor", D_A_B),
    op("not", D_A),
    op("shl", D_A_B),
    op("shr", D_A_B),
    op("rol", D_A_B),
    op("ror", D_A_B),
    op("eq", D_A_B),
    op("ne", D_A_B),
    op("lt", D_A_B),
    op("le", D_A_B),
    op("gt", D_A_B),
    op("ge", D_A_B),
    op("min", D_A_B),
    op("max", D_A_B),
    op("sel", &[Cell, Cell, Cell, Cell]),
    op("getbit", D_A_B),
    op("setbit", &[Cell, Cell, Cell, Cell]),
    op("ld", &[Cell, Var]),
    op("st", &[Var, Cell]),
    op("ldx", &[Cell, Table, Cell]),
    op("stx", &[Table, Cell, Cell]),
    op("ldc", &[Cell, Cell, Count, Count, Cell]),
    op("stc", &[Cell, Count, Count, Cell, Cell]),
    op("jmp", &[Forward]),
    op("jz", &[Cell, Forward]),
    op("jnz", &[Cell, Forward]),
    op("loop", &[Back]),
    // jtab x lo t0 .. t(n-1) default: jump to t(x - lo), or default outside 0..n.
    op("jtab", &[Cell, Int, Rest]),
    op("quality", &[Cell, Var]),
    op("age", &[Cell, Var]),
    op("qualityx", &[Cell, Table, Cell]),
    op("agex", &[Cell, Table, Cell]),
    op("now", &[Cell]),
    op("trap", &[Message]),
    op("chk", &[Cell, Count, Message]),
    op("ldt", &[Cell, CellTable, Cell]),
    op("stt", &[CellTable, Cell, Cell]),
    // STRINGs: operands are header cells (see `crate::text`), counts LINT cells.
    op("smov", D_A),
    op("scat", D_A_B),
    op("slen", D_A),
    op("sleft", D_A_B),
    op("sright", D_A_B),
    op("smid", &[Cell, Cell, Cell, Cell]),
    op("sfind", D_A_B),
    // scmp d a b k: k = 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge.
    op("scmp", &[Cell, Cell, Cell, Count]),
    op("sld", &[Cell, Var]),
    op("sst", &[Var, Cell]),
    op("sldx", &[Cell, Table, Cell]),
    op("sstx", &[Table, Cell, Cell]),
    op("sldc", &[Cell, Cell, Count, Count, Cell]),
    op("sstc", &[Cell, Count, Count, Cell, Cell]),
    op("sldt", &[Cell, CellTable, Cell]),
    op("sstt", &[CellTable, Cell, Cell]),
    op("stoi", D_A),
    op("stof", D_A),
    op("tostr", D_A),
];

/// Operands of a math function (`sqrt d a`).
pub const MATH_OPERANDS: &[Operand] = D_A;
/// Operands of `fb.<KIND> base`.
pub const FB_OPERANDS: &[Operand] = &[Cell];
/// Operands of `fbx.<KIND> base stride len index`.
pub const FBX_OPERANDS: &[Operand] = &[Cell, Count, Count, Cell];
/// Operands of `fbt.<KIND> table index`.
pub const FBT_OPERANDS: &[Operand] = &[CellTable, Cell];

/// The operand kinds of operation `name`, or None for an unknown operation.
pub fn spec(name: &str) -> Option<&'static [Operand]> {
    if let Some(s) = OPS.iter().find(|s| s.name == name) {
        return Some(s.operands);
    }
    if MathFn::from_name(name).is_some() {
        return Some(MATH_OPERANDS);
    }
    let (family, kind) = name.split_once('.')?;
    fb::FbKind::from_name(kind)?;
    match family {
        "fb" => Some(FB_OPERANDS),
        "fbx" => Some(FBX_OPERANDS),
        "fbt" => Some(FBT_OPERANDS),
        _ => None,
    }
}

/// Every operation with its operand kinds by name, families expanded (one entry per
/// math function and per block kind): what the Python compiler checks its table
/// against.
pub fn operations() -> Vec<(String, Vec<&'static str>)> {
    let names = |ops: &[Operand]| ops.iter().map(|o| o.name()).collect::<Vec<_>>();
    let mut out: Vec<(String, Vec<&'static str>)> = OPS
        .iter()
        .map(|s| (s.name.to_string(), names(s.operands)))
        .collect();
    for m in MathFn::ALL {
        out.push((m.name().to_string(), names(MATH_OPERANDS)));
    }
    for k in fb::ALL {
        out.push((format!("fb.{}", k.name()), names(FB_OPERANDS)));
        out.push((format!("fbx.{}", k.name()), names(FBX_OPERANDS)));
        out.push((format!("fbt.{}", k.name()), names(FBT_OPERANDS)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_name_is_listed_once() {
        let all = operations();
        let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        for (n, ops) in &all {
            assert_eq!(
                spec(n).map(|s| s.len()),
                Some(ops.len()),
                "{n} has a spec of its own size"
            );
        }
        assert!(spec("fb.NOPE").is_none() && spec("nope").is_none());
    }
}
