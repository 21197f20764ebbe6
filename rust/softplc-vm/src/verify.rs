//! The verifier: checks an IR document completely and lowers it to [`Instr`]s.
//!
//! Checked here, so the interpreter never has to:
//! - every cell, variable, table and message index is in range;
//! - every operand has a type the operation accepts, and operands that must agree do;
//! - process-image variables exist in the layout with the declared type, and no
//!   instruction stores into the input area;
//! - `quality`/`age` (and their indexed forms) name a variable or table that exists and
//!   write a USINT (quality) or TIME (age) cell;
//! - indexed accesses (`ldc`/`stc`/`fbx`) stay inside the cell array for every index
//!   below their length, and all elements have the expected type or block layout;
//! - jumps land on an instruction or the end; only `loop` jumps backwards;
//! - the program stays inside the limits below ([`MAX_INSTRUCTIONS`], [`MAX_CELLS`],
//!   [`MAX_VARIABLES`]), checked before anything is allocated in proportion to it, and
//!   checking it costs time in proportion to the document (see [`MAX_INDEXED_CHECKS`]).
//!
//! The machine has no operand stack (operations name their cells), so there is no
//! stack depth to check; the equivalent property, that every operand exists, is the
//! cell-range check above.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use softplc_core::{Area, IecType, Slot, VarId};

use crate::fb::FbKind;
use crate::fb::Role;
use crate::instr::{Instr, TextOf};
use crate::ir::{Document, Init};
use crate::num::{int_bits, is_float, is_int, MathFn, Norm};
use crate::ops::{self, Operand};

/// Most instructions one program may have.
///
/// The Python compiler stops at the same number (`softplc.limits.MAX_INSTRUCTIONS`; a
/// test holds the two equal), so the limit only ever refuses hand-made or damaged IR.
pub const MAX_INSTRUCTIONS: usize = 1 << 18;

/// Most cells (typed program memory: locals, temporaries, constants, block
/// instances) one program may have. Equal to `softplc.limits.MAX_CELLS`.
pub const MAX_CELLS: usize = 1 << 18;

/// Most process-image variables one program may refer to: what one image holds.
/// Equal to `softplc.limits.MAX_VARIABLES`.
pub const MAX_VARIABLES: usize = softplc_core::image::MAX_VARIABLES;

/// Element checks the verifier spends on indexed accesses (`ldc`, `stc`, `fbx`) of
/// one program.
///
/// Each such instruction names a run of cells whose every element must have the right
/// type, so a crafted document of short instructions over long runs would make the
/// check cost instructions x cells. Runs already checked are remembered, which keeps
/// compiled programs (each array checked once as values, once as block instances) far
/// below this; only a document listing many different long runs reaches it.
pub const MAX_INDEXED_CHECKS: u64 = 4 * MAX_CELLS as u64;

/// What every element of an indexed run must be: one cell type, or one block layout.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum RunOf {
    Cells(IecType),
    Block(FbKind),
}

/// A cell that holds state across scans (a field of a block instance), from the
/// program's symbol table.
#[derive(Clone, Debug, PartialEq)]
pub struct CellSymbol {
    /// Instance path: program, block, field (`mixer.step_timer.ET`,
    /// `tracker.gates[2].Q`).
    pub path: String,
    /// IEC type of the cell.
    pub ty: IecType,
    /// What the field is for in its block.
    pub role: Role,
    /// Index of the cell.
    pub cell: u32,
}

/// A jump table (`jtab`): the targets of the values `lo .. lo + n`, and where every
/// other value goes.
#[derive(Clone, Debug, PartialEq)]
pub struct JumpTable {
    /// The value of the first target.
    pub lo: i64,
    /// True when the selecting cell holds a signed type.
    pub signed: bool,
    /// Target of value `lo + k` at index `k`.
    pub targets: Vec<u32>,
    /// Target of every other value.
    pub default: u32,
}

/// A verified program, ready for the interpreter.
#[derive(Clone, Debug)]
pub struct Checked {
    /// Program instance name.
    pub name: String,
    /// Source file (messages only).
    pub source: String,
    /// Lowered code.
    pub code: Vec<Instr>,
    /// Type of each cell.
    pub cell_types: Vec<IecType>,
    /// Initial bits of each cell.
    pub init: Vec<u64>,
    /// Image tables, resolved to slots.
    pub tables: Vec<Vec<Slot>>,
    /// Image tables as layout variable indices (for quality and age of an element).
    pub table_vars: Vec<Vec<u32>>,
    /// Source line per instruction (may be empty).
    pub lines: Vec<u32>,
    /// Source files of the lines (empty: all in `source`).
    pub files: Vec<String>,
    /// Per instruction, its index into `files` (empty with `files`).
    pub file_of: Vec<u32>,
    /// Trap messages and array names.
    pub messages: Vec<String>,
    /// Cell tables (cells, or block instance bases).
    pub ctables: Vec<Vec<u32>>,
    /// `(instruction, message)` sorted by instruction: the array each indexed
    /// instruction reads or writes.
    pub index_names: Vec<(u32, u32)>,
    /// The stateful cells.
    pub symbols: Vec<CellSymbol>,
    /// The jump tables of `jtab` instructions.
    pub jump_tables: Vec<JumpTable>,
    /// Bytes each image area must have (input, output, memory).
    pub need: [usize; 3],
    /// Entries the image's per-variable quality and stamp vectors must have (one more
    /// than the highest layout index the program refers to).
    pub need_vars: usize,
}

/// Resolves variable `index` (engine name, IR type) to its slot and its index in the
/// layout (which selects its entry in [`softplc_core::Image`]'s quality and stamps).
pub type Binder<'a> = dyn FnMut(usize, &str, IecType) -> Result<(Slot, VarId), String> + 'a;

/// The type of the cells that hold a STRING's bytes after its header cell (eight bytes a
/// cell): `STRDATA` in the document. It is no IEC type: no operation but the string ones
/// reads or writes these cells.
pub const STRING_DATA: IecType = IecType::String(0);

fn parse_type(name: &str) -> Option<IecType> {
    if name == "STRDATA" {
        return Some(STRING_DATA);
    }
    IecType::from_name(name)
}

/// Number of data cells after the header of a STRING of capacity `cap`.
pub fn string_cells(cap: u8) -> usize {
    (cap as usize).div_ceil(8)
}

/// Checks that every STRING header is followed by exactly its data cells and every
/// data cell belongs to a header, and puts each header's initial text into them.
fn check_strings(doc: &Document, types: &[IecType], init: &mut [u64]) -> Result<(), String> {
    let mut i = 0;
    while i < types.len() {
        match types[i] {
            IecType::String(0) => {
                return Err(format!("cell {i}: STRDATA outside a STRING's cells"));
            }
            IecType::String(cap) => {
                let k = string_cells(cap);
                if i + k >= types.len() || types[i + 1..=i + k].iter().any(|t| *t != STRING_DATA) {
                    return Err(format!(
                        "cell {i}: a STRING({cap}) is followed by {k} STRDATA cells"
                    ));
                }
                let text = match &doc.cells[i].1 {
                    Init::Text(t) => t.as_str(),
                    Init::Int(0) => "",
                    other => return Err(format!("cell {i}: initial value {other:?} is not text")),
                };
                let mut bytes = Vec::with_capacity(text.len());
                for ch in text.chars() {
                    let b = u8::try_from(ch as u32).map_err(|_| {
                        format!("cell {i}: {ch:?} is not a single-byte (Latin-1) character")
                    })?;
                    bytes.push(b);
                }
                if bytes.len() > cap as usize {
                    return Err(format!(
                        "cell {i}: initial text of {} characters for a STRING({cap})",
                        bytes.len()
                    ));
                }
                init[i] = bytes.len() as u64;
                for (n, b) in bytes.iter().enumerate() {
                    init[i + 1 + n / 8] |= (*b as u64) << (8 * (n % 8));
                }
                i += k + 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn init_bits(ty: IecType, init: &Init) -> Result<u64, String> {
    let bad = || format!("initial value {init:?} does not fit {ty}");
    if let IecType::String(_) = ty {
        return Ok(0); // set by check_strings
    }
    Ok(match ty {
        IecType::Bool => match *init {
            Init::Bool(b) => b as u64,
            Init::Int(0) => 0,
            Init::Int(1) => 1,
            _ => return Err(bad()),
        },
        IecType::Real => match *init {
            Init::Float(f) => (f as f32).to_bits() as u64,
            Init::Int(v) => (v as f64 as f32).to_bits() as u64,
            _ => return Err(bad()),
        },
        IecType::Lreal => match *init {
            Init::Float(f) => f.to_bits(),
            Init::Int(v) => (v as f64).to_bits(),
            _ => return Err(bad()),
        },
        _ => {
            let v: i128 = match *init {
                Init::Int(v) => v as i128,
                Init::UInt(v) => v as i128,
                _ => return Err(bad()),
            };
            let (lo, hi) = softplc_core::types::int_range(ty);
            if v < lo || v > hi {
                return Err(bad());
            }
            v as i64 as u64
        }
    })
}

struct Lowerer<'d> {
    doc: &'d Document,
    types: Vec<IecType>,
    slots: Vec<Slot>,
    ids: Vec<u32>,
    tables: Vec<Vec<Slot>>,
    pc: usize,
    /// Indexed runs already checked: (base, stride, len, element kind).
    runs_checked: RefCell<HashSet<(i64, i64, i64, RunOf)>>,
    /// Element checks left of [`MAX_INDEXED_CHECKS`].
    checks_left: Cell<u64>,
    /// Cell tables already checked, per element kind.
    ctables_checked: RefCell<HashSet<(i64, RunOf)>>,
    /// Jump tables of the `jtab` instructions lowered so far.
    jump_tables: RefCell<Vec<JumpTable>>,
}

impl Lowerer<'_> {
    fn err(&self, msg: impl std::fmt::Display) -> String {
        let (op, _) = &self.doc.code[self.pc];
        let line = self.doc.lines.get(self.pc).copied().unwrap_or(0);
        if line > 0 {
            format!("instruction {} ({op}, line {line}): {msg}", self.pc)
        } else {
            format!("instruction {} ({op}): {msg}", self.pc)
        }
    }

    fn cell(&self, v: i64) -> Result<(u32, IecType), String> {
        if v < 0 || v as usize >= self.types.len() {
            return Err(self.err(format!(
                "cell {v} does not exist (the program has {} cells)",
                self.types.len()
            )));
        }
        let ty = self.types[v as usize];
        if let IecType::String(_) = ty {
            return Err(self.err(format!(
                "cell {v} is {} (only string operations use a STRING's cells)",
                ty.full_name()
            )));
        }
        Ok((v as u32, ty))
    }

    /// The header cell `v` of a STRING, and its capacity.
    fn string(&self, v: i64) -> Result<(u32, u8), String> {
        match usize::try_from(v).ok().and_then(|i| self.types.get(i)) {
            Some(IecType::String(cap)) if *cap > 0 => Ok((v as u32, *cap)),
            Some(t) => Err(self.err(format!("cell {v} is {}, expected a STRING", t.full_name()))),
            None => Err(self.err(format!(
                "cell {v} does not exist (the program has {} cells)",
                self.types.len()
            ))),
        }
    }

    /// A LINT cell (the counts and positions of the string functions).
    fn lint(&self, v: i64) -> Result<u32, String> {
        Ok(self.want(v, |t| t == IecType::Lint, "LINT")?.0)
    }

    /// The STRING variable `v` and its capacity.
    fn string_var(&self, v: i64) -> Result<(Slot, u8), String> {
        let s = self.var(v)?;
        match s.ty {
            IecType::String(cap) => Ok((s, cap)),
            t => Err(self.err(format!("variable {v} is {t}, expected a STRING"))),
        }
    }

    /// Image table `v` of STRING variables, and their capacity.
    fn string_table(&self, v: i64) -> Result<(u32, u8), String> {
        let (t, ty) = self.table(v)?;
        match ty {
            IecType::String(cap) => Ok((t, cap)),
            ty => Err(self.err(format!("table {t} holds {ty}, expected STRINGs"))),
        }
    }

    fn want(
        &self,
        v: i64,
        pred: impl Fn(IecType) -> bool,
        what: &str,
    ) -> Result<(u32, IecType), String> {
        let (c, ty) = self.cell(v)?;
        if !pred(ty) {
            return Err(self.err(format!("cell {c} is {ty}, expected {what}")));
        }
        Ok((c, ty))
    }

    fn same(&self, vs: &[i64]) -> Result<(Vec<u32>, IecType), String> {
        let (first, ty) = self.cell(vs[0])?;
        let mut out = vec![first];
        for &v in &vs[1..] {
            let (c, t) = self.cell(v)?;
            if t != ty {
                return Err(self.err(format!(
                    "operands disagree: cell {first} is {ty} but cell {c} is {t}"
                )));
            }
            out.push(c);
        }
        Ok((out, ty))
    }

    fn target(&self, v: i64, backward: bool) -> Result<u32, String> {
        let len = self.doc.code.len() as i64;
        let ok = if backward {
            v >= 0 && v <= self.pc as i64
        } else {
            v > self.pc as i64 && v <= len
        };
        if !ok {
            return Err(self.err(if backward {
                format!("loop target {v} must be at or before this instruction")
            } else {
                format!("jump target {v} must be after this instruction and at most {len}")
            }));
        }
        Ok(v as u32)
    }

    fn var(&self, v: i64) -> Result<Slot, String> {
        if v < 0 || v as usize >= self.slots.len() {
            return Err(self.err(format!("variable {v} does not exist")));
        }
        Ok(self.slots[v as usize])
    }

    fn var_id(&self, v: i64) -> Result<u32, String> {
        self.var(v)?;
        Ok(self.ids[v as usize])
    }

    fn table(&self, v: i64) -> Result<(u32, IecType), String> {
        if v < 0 || v as usize >= self.tables.len() {
            return Err(self.err(format!("table {v} does not exist")));
        }
        Ok((v as u32, self.tables[v as usize][0].ty))
    }

    /// Checks `len` elements from `base` every `stride` cells against `check`, which
    /// tests the element kind `of` (a run already checked for `of` is not checked again).
    fn run_of_cells(
        &self,
        base: i64,
        stride: i64,
        len: i64,
        of: RunOf,
        check: impl Fn(usize) -> Option<String>,
    ) -> Result<(u32, u32, u32), String> {
        if len <= 0 || stride <= 0 || base < 0 {
            return Err(self.err("an indexed access needs base >= 0, stride > 0 and len > 0"));
        }
        let n = self.types.len() as i64;
        // Every operand comes from the document, so the arithmetic is checked: a crafted
        // base, stride or length must give an error, never an overflow.
        let inside = (len - 1)
            .checked_mul(stride)
            .and_then(|span| span.checked_add(base))
            .is_some_and(|last| last < n);
        if !inside || stride > n {
            return Err(self.err(format!(
                "indexed access from cell {base}, {len} elements every {stride} cells, runs past the end ({n} cells)"
            )));
        }
        // base, stride and len are all at most n <= MAX_CELLS (checked before
        // lowering), so they fit the instruction's u32 fields.
        let fit = |v: i64| u32::try_from(v).map_err(|_| self.err("operand out of range"));
        let (b32, s32, l32) = (fit(base)?, fit(stride)?, fit(len)?);
        if self
            .runs_checked
            .borrow()
            .contains(&(base, stride, len, of))
        {
            return Ok((b32, s32, l32));
        }
        let left = self.checks_left.get();
        if len as u64 > left {
            return Err(self.err(format!(
                "the indexed accesses of this program cover more than {MAX_INDEXED_CHECKS} \
                 elements in distinct runs of cells; a compiled program never does"
            )));
        }
        self.checks_left.set(left - len as u64);
        for k in 0..len {
            // base + k * stride <= the last element, computed above without overflow.
            if let Some(m) = check((base + k * stride) as usize) {
                return Err(self.err(m));
            }
        }
        self.runs_checked
            .borrow_mut()
            .insert((base, stride, len, of));
        Ok((b32, s32, l32))
    }

    fn message(&self, v: i64) -> Result<u32, String> {
        if v < 0 || v as usize >= self.doc.messages.len() {
            return Err(self.err(format!("message {v} does not exist")));
        }
        Ok(v as u32)
    }

    /// Checks that every entry of cell table `v` is a cell of the element kind `of`
    /// (each table is checked once per kind: its size is bounded by the document).
    fn ctable(&self, v: i64, of: RunOf) -> Result<u32, String> {
        let tab = usize::try_from(v)
            .ok()
            .and_then(|i| self.doc.ctables.get(i))
            .ok_or_else(|| self.err(format!("cell table {v} does not exist")))?;
        if self.ctables_checked.borrow().contains(&(v, of)) {
            return Ok(v as u32);
        }
        for &at in tab {
            let bad = match of {
                RunOf::Cells(ty) => match self.types.get(at as usize) {
                    Some(&t) if t == ty => None,
                    Some(&t) => Some(format!("cell table {v}: cell {at} is {t}, expected {ty}")),
                    None => Some(format!("cell table {v}: cell {at} does not exist")),
                },
                RunOf::Block(kind) => self.fb_at(kind, at as usize),
            };
            if let Some(m) = bad {
                return Err(self.err(m));
            }
        }
        self.ctables_checked.borrow_mut().insert((v, of));
        Ok(v as u32)
    }

    fn fb_at(&self, kind: FbKind, at: usize) -> Option<String> {
        for (k, f) in kind.fields().iter().enumerate() {
            match self.types.get(at + k) {
                Some(t) if *t == f.ty => {}
                Some(t) => {
                    return Some(format!(
                        "{} instance at cell {at}: field {} (cell {}) is {t}, expected {}",
                        kind.name(),
                        f.name,
                        at + k,
                        f.ty
                    ))
                }
                None => {
                    return Some(format!(
                        "{} instance at cell {at} runs past the end of the cells",
                        kind.name()
                    ))
                }
            }
        }
        None
    }

    fn lower(&mut self, op: &str, a: &[i64]) -> Result<Instr, String> {
        // Operand counts come from the one operation table (`crate::ops`).
        let kinds = ops::spec(op).ok_or_else(|| self.err(format!("unknown operation {op:?}")))?;
        let rest = kinds.last() == Some(&Operand::Rest);
        let n = kinds.len() - rest as usize;
        if a.len() < n || (!rest && a.len() != n) {
            return Err(self.err(format!(
                "expected {}{n} operands, got {}",
                if rest { "at least " } else { "" },
                a.len()
            )));
        }
        let plain_int = |t: IecType| is_int(t) && t != IecType::Time;
        if let Some(f) = MathFn::from_name(op) {
            let (c, ty) = self.same(a)?;
            return match ty {
                IecType::Real => Ok(Instr::FMath {
                    d: c[0],
                    a: c[1],
                    f,
                }),
                IecType::Lreal => Ok(Instr::DMath {
                    d: c[0],
                    a: c[1],
                    f,
                }),
                t => Err(self.err(format!("{op} needs REAL or LREAL, got {t}"))),
            };
        }
        if let Some(name) = op.strip_prefix("fb.") {
            let kind = FbKind::from_name(name)
                .ok_or_else(|| self.err(format!("unknown function block {name:?}")))?;
            let (base, _, _) =
                self.run_of_cells(a[0], 1, 1, RunOf::Block(kind), |at| self.fb_at(kind, at))?;
            return Ok(match kind {
                FbKind::Ton => Instr::Ton { base },
                FbKind::RTrig => Instr::RTrig { base },
                _ => Instr::Fb { kind, base },
            });
        }
        if let Some(name) = op.strip_prefix("fbt.") {
            let kind = FbKind::from_name(name)
                .ok_or_else(|| self.err(format!("unknown function block {name:?}")))?;
            let t = self.ctable(a[0], RunOf::Block(kind))?;
            let (i, _) = self.want(a[1], plain_int, "an integer index")?;
            return Ok(Instr::FbT { kind, t, i });
        }
        if let Some(name) = op.strip_prefix("fbx.") {
            let kind = FbKind::from_name(name)
                .ok_or_else(|| self.err(format!("unknown function block {name:?}")))?;
            if a[1] < kind.size() as i64 {
                return Err(self.err(format!(
                    "stride {} is smaller than a {} instance ({} cells)",
                    a[1],
                    kind.name(),
                    kind.size()
                )));
            }
            let (base, stride, len) =
                self.run_of_cells(a[0], a[1], a[2], RunOf::Block(kind), |at| {
                    self.fb_at(kind, at)
                })?;
            let (i, _) = self.want(a[3], plain_int, "an integer index")?;
            return Ok(Instr::FbX {
                kind,
                base,
                stride,
                len,
                i,
            });
        }
        Ok(match op {
            "mov" => {
                let (c, _) = self.same(a)?;
                Instr::Mov { d: c[0], a: c[1] }
            }
            "conv" => {
                let (d, to) = self.cell(a[0])?;
                let (s, from) = self.cell(a[1])?;
                self.conv(d, to, s, from)?
            }
            "add" | "sub" | "mul" | "div" | "mod" => {
                let (c, ty) = self.same(a)?;
                let (d, x, y) = (c[0], c[1], c[2]);
                if let Some(n) = Norm::of(ty) {
                    let signed = n.signed();
                    match op {
                        "add" => Instr::IAdd { d, a: x, b: y, n },
                        "sub" => Instr::ISub { d, a: x, b: y, n },
                        "mul" => Instr::IMul { d, a: x, b: y, n },
                        "div" if signed => Instr::IDivS { d, a: x, b: y, n },
                        "div" => Instr::IDivU { d, a: x, b: y },
                        _ if signed => Instr::IRemS { d, a: x, b: y, n },
                        _ => Instr::IRemU { d, a: x, b: y },
                    }
                } else if ty == IecType::Real {
                    match op {
                        "add" => Instr::FAdd { d, a: x, b: y },
                        "sub" => Instr::FSub { d, a: x, b: y },
                        "mul" => Instr::FMul { d, a: x, b: y },
                        "div" => Instr::FDiv { d, a: x, b: y },
                        _ => return Err(self.err("mod needs integers")),
                    }
                } else if ty == IecType::Lreal {
                    match op {
                        "add" => Instr::DAdd { d, a: x, b: y },
                        "sub" => Instr::DSub { d, a: x, b: y },
                        "mul" => Instr::DMul { d, a: x, b: y },
                        "div" => Instr::DDiv { d, a: x, b: y },
                        _ => return Err(self.err("mod needs integers")),
                    }
                } else {
                    return Err(self.err(format!("{op} needs numbers or TIME, got {ty}")));
                }
            }
            "trunc" => {
                let (d, _) = self.want(a[0], |t| t == IecType::Lint, "LINT")?;
                let (x, xt) = self.want(a[1], is_float, "REAL or LREAL")?;
                if xt == IecType::Real {
                    Instr::FTrunc { d, a: x }
                } else {
                    Instr::DTrunc { d, a: x }
                }
            }
            "floordiv" | "floormod" => {
                let (c, ty) = self.same(a)?;
                if ty != IecType::Lint {
                    return Err(self.err(format!("{op} is for untyped integers (LINT), got {ty}")));
                }
                if op == "floordiv" {
                    Instr::IFloorDiv {
                        d: c[0],
                        a: c[1],
                        b: c[2],
                    }
                } else {
                    Instr::IFloorMod {
                        d: c[0],
                        a: c[1],
                        b: c[2],
                    }
                }
            }
            "neg" | "abs" => {
                let (c, ty) = self.same(a)?;
                let (d, x) = (c[0], c[1]);
                match (op, ty) {
                    (_, t) if is_int(t) => {
                        let n = Norm::of(t).expect("integer");
                        if op == "neg" {
                            Instr::INeg { d, a: x, n }
                        } else if n.signed() {
                            Instr::IAbs { d, a: x, n }
                        } else {
                            Instr::Mov { d, a: x }
                        }
                    }
                    ("neg", IecType::Real) => Instr::FNeg { d, a: x },
                    ("abs", IecType::Real) => Instr::FAbs { d, a: x },
                    ("neg", IecType::Lreal) => Instr::DNeg { d, a: x },
                    ("abs", IecType::Lreal) => Instr::DAbs { d, a: x },
                    (_, t) => return Err(self.err(format!("{op} needs a number, got {t}"))),
                }
            }
            "and" | "or" | "xor" => {
                let (c, ty) = self.same(a)?;
                let (d, x, y) = (c[0], c[1], c[2]);
                match (op, ty) {
                    ("and", IecType::Bool) => Instr::BAnd { d, a: x, b: y },
                    ("or", IecType::Bool) => Instr::BOr { d, a: x, b: y },
                    ("xor", IecType::Bool) => Instr::BXor { d, a: x, b: y },
                    ("and", t) if plain_int(t) => Instr::IAnd { d, a: x, b: y },
                    ("or", t) if plain_int(t) => Instr::IOr { d, a: x, b: y },
                    ("xor", t) if plain_int(t) => Instr::IXor { d, a: x, b: y },
                    (_, t) => return Err(self.err(format!("{op} needs BOOL or integers, got {t}"))),
                }
            }
            "not" => {
                let (c, ty) = self.same(a)?;
                match ty {
                    IecType::Bool => Instr::BNot { d: c[0], a: c[1] },
                    t if plain_int(t) => Instr::INot {
                        d: c[0],
                        a: c[1],
                        n: Norm::of(t).expect("integer"),
                    },
                    t => return Err(self.err(format!("not needs BOOL or an integer, got {t}"))),
                }
            }
            "shl" | "shr" => {
                let (c, ty) = self.same(&a[..2])?;
                if !plain_int(ty) {
                    return Err(self.err(format!("{op} needs an integer, got {ty}")));
                }
                let (b, bt) = self.want(a[2], plain_int, "an integer shift count")?;
                let cs = int_bits(bt).map(|(_, s)| s).unwrap_or(false);
                let n = Norm::of(ty).expect("integer");
                match (op, n.signed()) {
                    ("shl", _) => Instr::IShl {
                        d: c[0],
                        a: c[1],
                        b,
                        n,
                        cs,
                    },
                    (_, true) => Instr::IShrS {
                        d: c[0],
                        a: c[1],
                        b,
                        cs,
                    },
                    (_, false) => Instr::IShrU {
                        d: c[0],
                        a: c[1],
                        b,
                        cs,
                    },
                }
            }
            "rol" | "ror" => {
                let (c, ty) = self.same(&a[..2])?;
                let n = Norm::of(ty)
                    .filter(|n| !n.signed())
                    .ok_or_else(|| self.err(format!("{op} needs a bit string, got {ty}")))?;
                let (b, bt) = self.want(a[2], plain_int, "an integer rotate count")?;
                let cs = int_bits(bt).map(|(_, s)| s).unwrap_or(false);
                if op == "rol" {
                    Instr::IRol {
                        d: c[0],
                        a: c[1],
                        b,
                        n,
                        cs,
                    }
                } else {
                    Instr::IRor {
                        d: c[0],
                        a: c[1],
                        b,
                        n,
                        cs,
                    }
                }
            }
            "eq" | "ne" | "lt" | "le" | "gt" | "ge" => {
                let (d, _) = self.want(a[0], |t| t == IecType::Bool, "BOOL")?;
                let (c, ty) = self.same(&a[1..])?;
                let (x, y) = (c[0], c[1]);
                // gt/ge are lt/le with the operands swapped.
                let (rel, x, y) = match op {
                    "gt" => ("lt", y, x),
                    "ge" => ("le", y, x),
                    r => (r, x, y),
                };
                match ty {
                    IecType::Real => match rel {
                        "eq" => Instr::FEq { d, a: x, b: y },
                        "ne" => Instr::FNe { d, a: x, b: y },
                        "lt" => Instr::FLt { d, a: x, b: y },
                        _ => Instr::FLe { d, a: x, b: y },
                    },
                    IecType::Lreal => match rel {
                        "eq" => Instr::DEq { d, a: x, b: y },
                        "ne" => Instr::DNe { d, a: x, b: y },
                        "lt" => Instr::DLt { d, a: x, b: y },
                        _ => Instr::DLe { d, a: x, b: y },
                    },
                    t => {
                        let signed = int_bits(t).map(|(_, s)| s).unwrap_or(false);
                        if t == IecType::Bool && !matches!(rel, "eq" | "ne") {
                            return Err(self.err("BOOL values compare only with eq/ne"));
                        }
                        match (rel, signed) {
                            ("eq", _) => Instr::IEq { d, a: x, b: y },
                            ("ne", _) => Instr::INe { d, a: x, b: y },
                            ("lt", true) => Instr::ILtS { d, a: x, b: y },
                            ("lt", false) => Instr::ILtU { d, a: x, b: y },
                            (_, true) => Instr::ILeS { d, a: x, b: y },
                            (_, false) => Instr::ILeU { d, a: x, b: y },
                        }
                    }
                }
            }
            "min" | "max" => {
                let (c, ty) = self.same(a)?;
                let (d, x, y) = (c[0], c[1], c[2]);
                let min = op == "min";
                match ty {
                    IecType::Real if min => Instr::FMin { d, a: x, b: y },
                    IecType::Real => Instr::FMax { d, a: x, b: y },
                    IecType::Lreal if min => Instr::DMin { d, a: x, b: y },
                    IecType::Lreal => Instr::DMax { d, a: x, b: y },
                    t if is_int(t) => match (min, int_bits(t).expect("int").1) {
                        (true, true) => Instr::IMinS { d, a: x, b: y },
                        (false, true) => Instr::IMaxS { d, a: x, b: y },
                        (true, false) => Instr::IMinU { d, a: x, b: y },
                        (false, false) => Instr::IMaxU { d, a: x, b: y },
                    },
                    t => return Err(self.err(format!("{op} needs numbers or TIME, got {t}"))),
                }
            }
            "sel" => {
                let (g, _) = self.want(a[1], |t| t == IecType::Bool, "BOOL")?;
                let (c, _) = self.same(&[a[0], a[2], a[3]])?;
                Instr::Sel {
                    d: c[0],
                    g,
                    a: c[1],
                    b: c[2],
                }
            }
            "getbit" => {
                let (d, _) = self.want(a[0], |t| t == IecType::Bool, "BOOL")?;
                let (x, xt) = self.want(a[1], plain_int, "an integer")?;
                let (k, kt) = self.want(a[2], plain_int, "an integer bit number")?;
                let bits = int_bits(xt).expect("int").0;
                let cs = int_bits(kt).expect("int").1;
                Instr::GetBit { d, x, k, bits, cs }
            }
            "setbit" => {
                let (c, ty) = self.same(&a[..2])?;
                if !plain_int(ty) {
                    return Err(self.err(format!("setbit needs an integer, got {ty}")));
                }
                let (k, kt) = self.want(a[2], plain_int, "an integer bit number")?;
                let (v, _) = self.want(a[3], |t| t == IecType::Bool, "BOOL")?;
                let cs = int_bits(kt).expect("int").1;
                Instr::SetBit {
                    d: c[0],
                    x: c[1],
                    k,
                    v,
                    n: Norm::of(ty).expect("int"),
                    cs,
                }
            }
            "ld" => {
                let (d, ty) = self.cell(a[0])?;
                let s = self.var(a[1])?;
                if s.ty != ty {
                    return Err(
                        self.err(format!("variable {} is {}, cell {d} is {ty}", a[1], s.ty))
                    );
                }
                load_instr(d, s)
            }
            "st" => {
                let s = self.var(a[0])?;
                let (c, ty) = self.cell(a[1])?;
                if s.ty != ty {
                    return Err(
                        self.err(format!("variable {} is {}, cell {c} is {ty}", a[0], s.ty))
                    );
                }
                if s.area == Area::Input {
                    let name = &self.doc.vars[a[0] as usize].0;
                    return Err(self.err(format!("stores into input variable {name:?}")));
                }
                store_instr(c, s)
            }
            "ldx" => {
                let (d, ty) = self.cell(a[0])?;
                let (t, tt) = self.table(a[1])?;
                if tt != ty {
                    return Err(self.err(format!("table {t} holds {tt}, cell {d} is {ty}")));
                }
                let (i, _) = self.want(a[2], plain_int, "an integer index")?;
                Instr::LdX { d, t, i }
            }
            "stx" => {
                let (t, tt) = self.table(a[0])?;
                let (i, _) = self.want(a[1], plain_int, "an integer index")?;
                let (c, ty) = self.cell(a[2])?;
                if tt != ty {
                    return Err(self.err(format!("table {t} holds {tt}, cell {c} is {ty}")));
                }
                if self.tables[t as usize]
                    .iter()
                    .any(|s| s.area == Area::Input)
                {
                    return Err(self.err(format!("stores into table {t}, which holds inputs")));
                }
                Instr::StX { t, i, a: c }
            }
            "ldc" | "stc" => {
                let (v, ty) = if op == "ldc" {
                    self.cell(a[0])?
                } else {
                    self.cell(a[4])?
                };
                let (base_i, stride_i, len_i, idx_i) = if op == "ldc" {
                    (a[1], a[2], a[3], a[4])
                } else {
                    (a[0], a[1], a[2], a[3])
                };
                let types = &self.types;
                let (base, stride, len) =
                    self.run_of_cells(base_i, stride_i, len_i, RunOf::Cells(ty), |at| match types
                        .get(at)
                    {
                        Some(&t) if t == ty => None,
                        Some(&t) => Some(format!("array element cell {at} is {t}, expected {ty}")),
                        None => Some(format!("array element cell {at} does not exist")),
                    })?;
                let (i, _) = self.want(idx_i, plain_int, "an integer index")?;
                if op == "ldc" {
                    Instr::LdC {
                        d: v,
                        base,
                        stride,
                        len,
                        i,
                    }
                } else {
                    Instr::StC {
                        a: v,
                        base,
                        stride,
                        len,
                        i,
                    }
                }
            }
            "jmp" => Instr::Jmp {
                t: self.target(a[0], false)?,
            },
            "jz" | "jnz" => {
                let (c, _) = self.want(a[0], |t| t == IecType::Bool, "BOOL")?;
                let t = self.target(a[1], false)?;
                if op == "jz" {
                    Instr::Jz { c, t }
                } else {
                    Instr::Jnz { c, t }
                }
            }
            "jtab" => {
                let (x, ty) = self.want(a[0], plain_int, "an integer")?;
                if a.len() < 4 {
                    return Err(self.err("a jump table needs at least one target and a default"));
                }
                let targets = a[2..a.len() - 1]
                    .iter()
                    .map(|&t| self.target(t, false))
                    .collect::<Result<Vec<_>, _>>()?;
                let default = self.target(a[a.len() - 1], false)?;
                let signed = int_bits(ty).is_some_and(|(_, s)| s);
                if !signed && a[1] < 0 {
                    return Err(self.err(format!(
                        "jump table from {} on unsigned {ty}: no value is below 0",
                        a[1]
                    )));
                }
                let mut tables = self.jump_tables.borrow_mut();
                tables.push(JumpTable {
                    lo: a[1],
                    signed,
                    targets,
                    default,
                });
                Instr::JTab {
                    x,
                    t: (tables.len() - 1) as u32,
                }
            }
            "loop" => Instr::Loop {
                t: self.target(a[0], true)?,
            },
            "quality" | "age" => {
                let (d, v) = (self.quality_dest(op, a[0])?, self.var_id(a[1])?);
                if op == "quality" {
                    Instr::Quality { d, v }
                } else {
                    Instr::Age { d, v }
                }
            }
            "qualityx" | "agex" => {
                let d = self.quality_dest(op, a[0])?;
                let (t, _) = self.table(a[1])?;
                let (i, _) = self.want(a[2], plain_int, "an integer index")?;
                if op == "qualityx" {
                    Instr::QualityX { d, t, i }
                } else {
                    Instr::AgeX { d, t, i }
                }
            }
            "now" => {
                let (d, _) = self.want(a[0], |t| t == IecType::Time, "TIME")?;
                Instr::Now { d }
            }
            "trap" => Instr::Trap {
                m: self.message(a[0])?,
            },
            "chk" => {
                let (i, _) = self.want(a[0], plain_int, "an integer index")?;
                let n = u32::try_from(a[1])
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| self.err(format!("length {} must be 1..2^32", a[1])))?;
                Instr::Chk {
                    i,
                    n,
                    m: self.message(a[2])?,
                }
            }
            "ldt" => {
                let (d, ty) = self.cell(a[0])?;
                let t = self.ctable(a[1], RunOf::Cells(ty))?;
                let (i, _) = self.want(a[2], plain_int, "an integer index")?;
                Instr::LdT { d, t, i }
            }
            "stt" => {
                let (c, ty) = self.cell(a[2])?;
                let t = self.ctable(a[0], RunOf::Cells(ty))?;
                let (i, _) = self.want(a[1], plain_int, "an integer index")?;
                Instr::StT { t, i, a: c }
            }
            "smov" => {
                let (d, cap) = self.string(a[0])?;
                Instr::SMov {
                    d,
                    s: self.string(a[1])?.0,
                    cap,
                }
            }
            "scat" => {
                let (d, cap) = self.string(a[0])?;
                Instr::SCat {
                    d,
                    a: self.string(a[1])?.0,
                    b: self.string(a[2])?.0,
                    cap,
                }
            }
            "slen" => Instr::SLen {
                d: self.want(a[0], |t| t == IecType::Int, "INT")?.0,
                s: self.string(a[1])?.0,
            },
            "sleft" | "sright" => {
                let (d, cap) = self.string(a[0])?;
                let (s, n) = (self.string(a[1])?.0, self.lint(a[2])?);
                if op == "sleft" {
                    Instr::SLeft { d, s, n, cap }
                } else {
                    Instr::SRight { d, s, n, cap }
                }
            }
            "smid" => {
                let (d, cap) = self.string(a[0])?;
                Instr::SMid {
                    d,
                    s: self.string(a[1])?.0,
                    l: self.lint(a[2])?,
                    p: self.lint(a[3])?,
                    cap,
                }
            }
            "sfind" => Instr::SFind {
                d: self.want(a[0], |t| t == IecType::Int, "INT")?.0,
                a: self.string(a[1])?.0,
                b: self.string(a[2])?.0,
            },
            "scmp" => {
                let k = u8::try_from(a[3])
                    .ok()
                    .filter(|k| *k <= 5)
                    .ok_or_else(|| self.err(format!("comparison {} is not 0..5", a[3])))?;
                Instr::SCmp {
                    d: self.want(a[0], |t| t == IecType::Bool, "BOOL")?.0,
                    a: self.string(a[1])?.0,
                    b: self.string(a[2])?.0,
                    k,
                }
            }
            "sld" => {
                let (d, cap) = self.string(a[0])?;
                let (s, _) = self.string_var(a[1])?;
                Instr::SLd { d, cap, s }
            }
            "sst" => {
                let (s, _) = self.string_var(a[0])?;
                if s.area == Area::Input {
                    let name = &self.doc.vars[a[0] as usize].0;
                    return Err(self.err(format!("stores into input variable {name:?}")));
                }
                Instr::SSt {
                    a: self.string(a[1])?.0,
                    s,
                }
            }
            "sldx" => {
                let (d, cap) = self.string(a[0])?;
                let (t, _) = self.string_table(a[1])?;
                let (i, _) = self.want(a[2], plain_int, "an integer index")?;
                Instr::SLdX { d, cap, t, i }
            }
            "sstx" => {
                let (t, _) = self.string_table(a[0])?;
                let (i, _) = self.want(a[1], plain_int, "an integer index")?;
                if self.tables[t as usize]
                    .iter()
                    .any(|s| s.area == Area::Input)
                {
                    return Err(self.err(format!("stores into table {t}, which holds inputs")));
                }
                Instr::SStX {
                    t,
                    i,
                    a: self.string(a[2])?.0,
                }
            }
            "sldc" | "sstc" => {
                let (v, base_i, stride_i, len_i, idx_i) = if op == "sldc" {
                    (a[0], a[1], a[2], a[3], a[4])
                } else {
                    (a[4], a[0], a[1], a[2], a[3])
                };
                let (v, cap) = self.string(v)?;
                let ety = usize::try_from(base_i)
                    .ok()
                    .and_then(|b| self.types.get(b).copied())
                    .filter(|t| matches!(t, IecType::String(c) if *c > 0))
                    .ok_or_else(|| self.err(format!("cell {base_i} is no STRING header")))?;
                let ecap = ety.string_capacity().expect("a STRING");
                if stride_i < 1 + string_cells(ecap) as i64 {
                    return Err(self.err(format!(
                        "stride {stride_i} is smaller than a {}",
                        ety.full_name()
                    )));
                }
                let types = &self.types;
                let (base, stride, len) = self.run_of_cells(
                    base_i,
                    stride_i,
                    len_i,
                    RunOf::Cells(ety),
                    |at| match types.get(at) {
                        Some(&t) if t == ety => None,
                        Some(&t) => Some(format!(
                            "array element cell {at} is {}, expected {}",
                            t.full_name(),
                            ety.full_name()
                        )),
                        None => Some(format!("array element cell {at} does not exist")),
                    },
                )?;
                let (i, _) = self.want(idx_i, plain_int, "an integer index")?;
                if op == "sldc" {
                    Instr::SLdC {
                        d: v,
                        cap,
                        base,
                        stride,
                        len,
                        i,
                    }
                } else {
                    Instr::SStC {
                        a: v,
                        ecap,
                        base,
                        stride,
                        len,
                        i,
                    }
                }
            }
            "sldt" | "sstt" => {
                let (v, tab_i, idx_i) = if op == "sldt" {
                    (a[0], a[1], a[2])
                } else {
                    (a[2], a[0], a[1])
                };
                let (v, cap) = self.string(v)?;
                let ety = usize::try_from(tab_i)
                    .ok()
                    .and_then(|k| self.doc.ctables.get(k))
                    .and_then(|tab| tab.first())
                    .and_then(|&at| self.types.get(at as usize).copied())
                    .filter(|t| matches!(t, IecType::String(c) if *c > 0))
                    .ok_or_else(|| self.err(format!("cell table {tab_i} holds no STRINGs")))?;
                let t = self.ctable(tab_i, RunOf::Cells(ety))?;
                let (i, _) = self.want(idx_i, plain_int, "an integer index")?;
                if op == "sldt" {
                    Instr::SLdT { d: v, cap, t, i }
                } else {
                    Instr::SStT {
                        t,
                        ecap: ety.string_capacity().expect("a STRING"),
                        i,
                        a: v,
                    }
                }
            }
            "stoi" => {
                let (d, ty) = self.want(a[0], plain_int, "an integer")?;
                Instr::SToI {
                    d,
                    s: self.string(a[1])?.0,
                    n: Norm::of(ty).expect("int"),
                }
            }
            "stof" => {
                let (d, ty) = self.want(a[0], is_float, "REAL or LREAL")?;
                Instr::SToF {
                    d,
                    s: self.string(a[1])?.0,
                    single: ty == IecType::Real,
                }
            }
            "tostr" => {
                let (d, cap) = self.string(a[0])?;
                let (s, ty) = self.cell(a[1])?;
                let from = match ty {
                    IecType::Bool => TextOf::Bool,
                    IecType::Real => TextOf::Real,
                    IecType::Lreal => TextOf::Lreal,
                    IecType::Time => {
                        return Err(self.err("no conversion from TIME to STRING"));
                    }
                    t => match int_bits(t) {
                        Some((_, true)) => TextOf::Signed,
                        Some((_, false)) => TextOf::Unsigned,
                        None => return Err(self.err(format!("no conversion from {t} to STRING"))),
                    },
                };
                Instr::ToS { d, s, cap, from }
            }
            other => {
                return Err(self.err(format!("unknown operation {other:?}")));
            }
        })
    }

    /// The destination of `quality[x]` (a USINT cell) or `age[x]` (a TIME cell).
    fn quality_dest(&self, op: &str, v: i64) -> Result<u32, String> {
        let (want, what) = if op.starts_with("quality") {
            (IecType::Usint, "USINT")
        } else {
            (IecType::Time, "TIME")
        };
        Ok(self.want(v, |t| t == want, what)?.0)
    }

    fn conv(&self, d: u32, to: IecType, s: u32, from: IecType) -> Result<Instr, String> {
        let from_int = is_int(from) || from == IecType::Bool;
        let from_signed = int_bits(from).map(|(_, sg)| sg).unwrap_or(false);
        Ok(match (from, to) {
            (f, t) if f == t => Instr::Mov { d, a: s },
            (_, IecType::Bool) if is_int(from) => Instr::IToBool { d, a: s },
            (_, t) if from_int && is_int(t) => Instr::Wrap {
                d,
                a: s,
                n: Norm::of(t).expect("int"),
            },
            (_, IecType::Real) if from_int => Instr::IToF {
                d,
                a: s,
                signed: from_signed,
            },
            (_, IecType::Lreal) if from_int => Instr::IToD {
                d,
                a: s,
                signed: from_signed,
            },
            (IecType::Real, IecType::Lreal) => Instr::FToD { d, a: s },
            (IecType::Lreal, IecType::Real) => Instr::DToF { d, a: s },
            (IecType::Real, t) if is_int(t) => Instr::FToI { d, a: s, ty: t },
            (IecType::Lreal, t) if is_int(t) => Instr::DToI { d, a: s, ty: t },
            (f, t) => return Err(self.err(format!("no conversion from {f} to {t}"))),
        })
    }
}

/// Runs pairs of frequent neighbours as one dispatch: at `k`, an instruction that does
/// the work of `k` and `k + 1` and continues at `k + 2` (or jumps). The instruction at
/// `k + 1` stays as it was, so a jump that lands on it runs it alone; each pair is
/// read from the code as lowered, so a fused `k` never depends on another fusion.
pub fn fuse(code: &mut [Instr]) {
    for k in 0..code.len().saturating_sub(1) {
        let fused = match (code[k], code[k + 1]) {
            (Instr::LdB { d, area, off, bit }, Instr::Jz { c, t }) if c == d => {
                Some(Instr::LdBJz {
                    d,
                    area,
                    off,
                    bit,
                    t,
                })
            }
            (
                Instr::Ld4U { d, area, off },
                Instr::Ld4U {
                    d: d2,
                    area: area2,
                    off: off2,
                },
            ) if area == area2 => Some(Instr::Ld4U2 {
                d,
                off,
                d2,
                off2,
                area,
            }),
            (
                Instr::LdB { d, area, off, bit },
                Instr::LdB {
                    d: d2,
                    area: area2,
                    off: off2,
                    bit: bit2,
                },
            ) if area == area2 => Some(Instr::LdB2 {
                d,
                off,
                d2,
                off2,
                area,
                bit,
                bit2,
            }),
            (
                Instr::Mov { d, a },
                Instr::StB {
                    a: s,
                    area,
                    off,
                    bit,
                },
            ) if s == d => Some(Instr::MovStB {
                d,
                a,
                area,
                off,
                bit,
            }),
            (
                Instr::StB { a, area, off, bit },
                Instr::StB {
                    a: a2,
                    area: area2,
                    off: off2,
                    bit: bit2,
                },
            ) if area == area2 => Some(Instr::StB2 {
                a,
                off,
                a2,
                off2,
                area,
                bit,
                bit2,
            }),
            (Instr::Mov { d, a }, Instr::RTrig { base }) if base == d => {
                Some(Instr::MovRTrig { d, a })
            }
            (Instr::StB { a, area, off, bit }, Instr::Jz { c, t }) if c == a => {
                Some(Instr::StBJz {
                    a,
                    area,
                    off,
                    bit,
                    t,
                })
            }
            (Instr::Jz { c, t }, Instr::Jnz { c: c2, t: t2 }) if t == t2 => {
                Some(Instr::JzJnz { c, c2, t })
            }
            _ => None,
        };
        if let Some(f) = fused {
            code[k] = f;
        }
    }
}

fn load_instr(d: u32, s: Slot) -> Instr {
    let (area, off) = (s.area.index() as u8, s.offset);
    match s.ty {
        IecType::Bool => Instr::LdB {
            d,
            area,
            off,
            bit: s.bit,
        },
        IecType::Sint => Instr::Ld1S { d, area, off },
        IecType::Usint | IecType::Byte => Instr::Ld1U { d, area, off },
        IecType::Int => Instr::Ld2S { d, area, off },
        IecType::Uint | IecType::Word => Instr::Ld2U { d, area, off },
        IecType::Dint => Instr::Ld4S { d, area, off },
        IecType::Udint | IecType::Real | IecType::Dword => Instr::Ld4U { d, area, off },
        IecType::Lint | IecType::Ulint | IecType::Lreal | IecType::Time | IecType::Lword => {
            Instr::Ld8 { d, area, off }
        }
        IecType::String(_) => unreachable!("STRING cells are refused by Lowerer::cell"),
    }
}

fn store_instr(a: u32, s: Slot) -> Instr {
    let (area, off) = (s.area.index() as u8, s.offset);
    match s.ty.size() {
        0 => Instr::StB {
            a,
            area,
            off,
            bit: s.bit,
        },
        1 => Instr::St1 { a, area, off },
        2 => Instr::St2 { a, area, off },
        4 => Instr::St4 { a, area, off },
        _ => Instr::St8 { a, area, off },
    }
}

/// Verifies `doc` and lowers it, resolving variables with `bind`.
pub fn check(doc: &Document, bind: &mut Binder<'_>) -> Result<Checked, String> {
    // The limits first: nothing below allocates more than the document already holds,
    // but the interpreter sizes its cells and code from these counts.
    let limit = |what: &str, n: usize, max: usize| -> Result<(), String> {
        if n > max {
            Err(format!(
                "{n} {what}; a program may have at most {max} (split it into several programs)"
            ))
        } else {
            Ok(())
        }
    };
    limit("instructions", doc.code.len(), MAX_INSTRUCTIONS)?;
    limit("cells", doc.cells.len(), MAX_CELLS)?;
    limit("process-image variables", doc.vars.len(), MAX_VARIABLES)?;
    let mut types = Vec::with_capacity(doc.cells.len());
    let mut init = Vec::with_capacity(doc.cells.len());
    for (i, (tn, iv)) in doc.cells.iter().enumerate() {
        let ty = parse_type(tn).ok_or_else(|| format!("cell {i}: unknown type {tn:?}"))?;
        init.push(init_bits(ty, iv).map_err(|e| format!("cell {i}: {e}"))?);
        types.push(ty);
    }
    check_strings(doc, &types, &mut init)?;
    let mut slots = Vec::with_capacity(doc.vars.len());
    let mut ids = Vec::with_capacity(doc.vars.len());
    let mut need = [0usize; 3];
    let mut need_vars = 0usize;
    for (i, (name, tn)) in doc.vars.iter().enumerate() {
        let ty = parse_type(tn).ok_or_else(|| format!("variable {name:?}: unknown type {tn:?}"))?;
        let (s, id) = bind(i, name, ty)?;
        ids.push(id.0);
        need_vars = need_vars.max(id.index() + 1);
        if s.ty != ty {
            return Err(format!(
                "variable {name:?} is {} in the engine but {ty} in the compiled program; recompile it",
                s.ty
            ));
        }
        let end = s.offset as usize + ty.size().max(1);
        need[s.area.index()] = need[s.area.index()].max(end);
        slots.push(s);
    }
    let mut tables = Vec::with_capacity(doc.tables.len());
    let mut table_vars = Vec::with_capacity(doc.tables.len());
    for (i, t) in doc.tables.iter().enumerate() {
        if t.is_empty() {
            return Err(format!("table {i} is empty"));
        }
        let mut v = Vec::with_capacity(t.len());
        let mut tv = Vec::with_capacity(t.len());
        for &k in t {
            let s = *slots
                .get(k as usize)
                .ok_or_else(|| format!("table {i}: variable {k} does not exist"))?;
            if s.ty != slots[t[0] as usize].ty {
                return Err(format!(
                    "table {i} mixes types {} and {}",
                    slots[t[0] as usize].ty, s.ty
                ));
            }
            v.push(s);
            tv.push(ids[k as usize]);
        }
        tables.push(v);
        table_vars.push(tv);
    }
    if !doc.lines.is_empty() && doc.lines.len() != doc.code.len() {
        return Err(format!(
            "{} line numbers for {} instructions",
            doc.lines.len(),
            doc.code.len()
        ));
    }
    if doc.file_of.len()
        != if doc.files.is_empty() {
            0
        } else {
            doc.code.len()
        }
    {
        return Err(format!(
            "{} file indices for {} instructions and {} files",
            doc.file_of.len(),
            doc.code.len(),
            doc.files.len()
        ));
    }
    if let Some(bad) = doc.file_of.iter().find(|&&f| f as usize >= doc.files.len()) {
        return Err(format!(
            "file index {bad} does not exist ({} files)",
            doc.files.len()
        ));
    }
    for (i, t) in doc.ctables.iter().enumerate() {
        if t.is_empty() {
            return Err(format!("cell table {i} is empty"));
        }
        if let Some(bad) = t.iter().find(|&&c| c as usize >= types.len()) {
            return Err(format!("cell table {i}: cell {bad} does not exist"));
        }
    }
    let mut index_names = doc.index_names.clone();
    for &(pc, m) in &index_names {
        if pc as usize >= doc.code.len() || m as usize >= doc.messages.len() {
            return Err(format!(
                "array name entry ({pc}, {m}) names no instruction or no message"
            ));
        }
    }
    index_names.sort_unstable();
    let symbols = check_symbols(doc, &types)?;
    let mut lw = Lowerer {
        doc,
        types,
        slots,
        ids,
        tables,
        pc: 0,
        runs_checked: RefCell::new(HashSet::new()),
        checks_left: Cell::new(MAX_INDEXED_CHECKS),
        ctables_checked: RefCell::new(HashSet::new()),
        jump_tables: RefCell::new(Vec::new()),
    };
    let mut code = Vec::with_capacity(doc.code.len());
    for (pc, (op, args)) in doc.code.iter().enumerate() {
        lw.pc = pc;
        code.push(lw.lower(op, args)?);
    }
    fuse(&mut code);
    Ok(Checked {
        name: doc.program.clone(),
        source: doc.source.clone(),
        code,
        cell_types: lw.types,
        init,
        tables: lw.tables,
        table_vars,
        lines: doc.lines.clone(),
        files: doc.files.clone(),
        file_of: doc.file_of.clone(),
        messages: doc.messages.clone(),
        ctables: doc.ctables.clone(),
        index_names,
        symbols,
        jump_tables: lw.jump_tables.into_inner(),
        need,
        need_vars,
    })
}

/// Checks the symbol table: each entry names an existing cell of its type, with a
/// known role, and no path appears twice.
fn check_symbols(doc: &Document, types: &[IecType]) -> Result<Vec<CellSymbol>, String> {
    let mut seen = HashSet::with_capacity(doc.symbols.len());
    let mut out = Vec::with_capacity(doc.symbols.len());
    for (path, tn, role, cell) in &doc.symbols {
        let bad = |why: String| format!("symbol {path:?}: {why}");
        let ty = parse_type(tn).ok_or_else(|| bad(format!("unknown type {tn:?}")))?;
        let actual = types
            .get(*cell as usize)
            .ok_or_else(|| bad(format!("cell {cell} does not exist")))?;
        if *actual != ty {
            return Err(bad(format!("cell {cell} is {actual}, not {ty}")));
        }
        let role = match role.as_str() {
            "input" => Role::Input,
            "output" => Role::Output,
            "internal" => Role::Internal,
            r => return Err(bad(format!("unknown role {r:?}"))),
        };
        if path.is_empty() || !seen.insert(path.as_str()) {
            return Err(bad("empty or repeated path".to_string()));
        }
        out.push(CellSymbol {
            path: path.clone(),
            ty,
            role,
            cell: *cell,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Document;

    /// Checks `doc`, binding each variable to its own memory slot.
    fn verify(doc: &Document) -> Result<Checked, String> {
        let mut bind = |i: usize, _: &str, ty: IecType| -> Result<(Slot, VarId), String> {
            let slot = Slot {
                area: Area::Memory,
                offset: 8 * i as u32,
                bit: 0,
                ty,
            };
            Ok((slot, VarId(i as u32)))
        };
        check(doc, &mut bind)
    }

    fn with_cells(n: usize) -> Document {
        let mut d = Document::new("p");
        d.cells = vec![("INT".to_string(), Init::Int(0)); n];
        d
    }

    #[test]
    fn instructions_up_to_the_limit_verify_and_one_more_is_refused() {
        let mut d = with_cells(1);
        d.code = vec![("mov".to_string(), vec![0, 0]); MAX_INSTRUCTIONS];
        assert_eq!(verify(&d).unwrap().code.len(), MAX_INSTRUCTIONS);
        d.code.push(("mov".to_string(), vec![0, 0]));
        let e = verify(&d).unwrap_err();
        assert!(
            e.contains(&format!("{} instructions", MAX_INSTRUCTIONS + 1))
                && e.contains(&format!("at most {MAX_INSTRUCTIONS}")),
            "{e}"
        );
    }

    #[test]
    fn cells_up_to_the_limit_verify_and_one_more_is_refused() {
        let mut d = with_cells(MAX_CELLS);
        assert_eq!(verify(&d).unwrap().init.len(), MAX_CELLS);
        d.cell("INT", Init::Int(0));
        let e = verify(&d).unwrap_err();
        assert!(e.contains(&format!("{} cells", MAX_CELLS + 1)), "{e}");
    }

    #[test]
    fn more_variables_than_an_image_holds_are_refused() {
        let mut d = with_cells(1);
        for i in 0..=MAX_VARIABLES {
            d.var(&format!("p.v[{i}]"), "INT");
        }
        let e = verify(&d).unwrap_err();
        assert!(e.contains("process-image variables"), "{e}");
        d.vars.pop();
        assert!(verify(&d).is_ok());
    }

    #[test]
    fn an_indexed_run_used_many_times_is_checked_once() {
        // As compiled programs do: every access to one array names the same run.
        // Checked element by element each time, this would be 2^16 x 2^18 checks.
        let mut d = with_cells(MAX_CELLS);
        let n = MAX_CELLS as i64;
        d.code = vec![("ldc".to_string(), vec![0, 1, 1, n - 1, 0]); 1 << 16];
        assert!(verify(&d).is_ok());
    }

    #[test]
    fn many_distinct_long_runs_are_refused_within_the_check_budget() {
        let mut d = with_cells(MAX_CELLS);
        let n = MAX_CELLS as i64;
        // Each run starts one cell later: all distinct, each nearly all the cells.
        for k in 1..1000 {
            d.op("ldc", &[0, k, 1, n - k, 0]);
        }
        let e = verify(&d).unwrap_err();
        assert!(
            e.contains("indexed accesses") && e.contains("distinct runs"),
            "{e}"
        );
    }
}
