//! The interpreter: runs verified code on the program's cells and the process image.
//!
//! Real-time notes: [`CompiledProgram::execute`] does not allocate, lock or make
//! syscalls on a healthy scan. A fault (division by zero, index out of range, math
//! error, trap) builds its message, which allocates, and leaves RUN.

use std::sync::atomic::{AtomicBool, Ordering};

use softplc_core::{IecType, Image, Program, ProgramFault, ProgramKind, ScanCtx, Slot, Value};

use crate::fb::{self, FbKind};
use crate::instr::{Instr, TextOf};
use crate::num::{f64_to_int, int_to_f32, int_to_f64, MathFn, Norm};
use crate::text;
use crate::verify::{CellSymbol, Checked, JumpTable};

/// Backward jumps allowed in one scan. The compiler only emits bounded `for` loops, so
/// this is a safety net against hand-made IR that would otherwise hang the scan.
pub const LOOP_BUDGET: u64 = 100_000_000;

/// Why a scan stopped. `Copy`; the message is built only on the fault path.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    DivZero,
    Index {
        index: i64,
        len: u32,
    },
    Math(MathFn),
    ShiftCount(i64),
    BitNumber {
        k: i64,
        bits: u32,
    },
    Trap(u32),
    /// An index out of the range of a named dimension (`chk`).
    Check {
        index: i64,
        len: u32,
        m: u32,
    },
    LoopBudget,
    /// The watchdog thread raised the abort flag (seen at a backward jump).
    Watchdog,
    ImageTooSmall,
}

/// A compiled program bound to an engine's layout.
pub struct CompiledProgram {
    name: String,
    source: String,
    code: Box<[Instr]>,
    cells: Box<[u64]>,
    init: Box<[u64]>,
    cell_types: Box<[IecType]>,
    tables: Box<[Box<[Slot]>]>,
    table_vars: Box<[Box<[u32]>]>,
    lines: Box<[u32]>,
    files: Box<[String]>,
    file_of: Box<[u32]>,
    messages: Box<[String]>,
    ctables: Box<[Box<[u32]>]>,
    index_names: Box<[(u32, u32)]>,
    symbols: Box<[CellSymbol]>,
    jump_tables: Box<[JumpTable]>,
    need: [usize; 3],
    need_vars: usize,
}

impl CompiledProgram {
    /// Builds the program from verified code; cells start at their initial values.
    pub fn new(c: Checked) -> CompiledProgram {
        CompiledProgram {
            name: c.name,
            source: c.source,
            code: c.code.into_boxed_slice(),
            cells: c.init.clone().into_boxed_slice(),
            init: c.init.into_boxed_slice(),
            cell_types: c.cell_types.into_boxed_slice(),
            tables: c.tables.into_iter().map(Vec::into_boxed_slice).collect(),
            table_vars: c
                .table_vars
                .into_iter()
                .map(Vec::into_boxed_slice)
                .collect(),
            lines: c.lines.into_boxed_slice(),
            files: c.files.into_boxed_slice(),
            file_of: c.file_of.into_boxed_slice(),
            messages: c.messages.into_boxed_slice(),
            ctables: c.ctables.into_iter().map(Vec::into_boxed_slice).collect(),
            index_names: c.index_names.into_boxed_slice(),
            symbols: c.symbols.into_boxed_slice(),
            jump_tables: c.jump_tables.into_boxed_slice(),
            need: c.need,
            need_vars: c.need_vars,
        }
    }

    /// Number of instructions.
    pub fn code_len(&self) -> usize {
        self.code.len()
    }

    /// Number of cells.
    pub fn cell_count(&self) -> usize {
        self.cells.len()
    }

    /// The value of a cell (for tests and debugging).
    pub fn cell(&self, i: usize) -> Value {
        Value::from_bits(self.cell_types[i], self.cells[i])
    }

    /// Every cell's bits (canonical: see [`crate::num`]), in cell order. The symbol
    /// table ([`CompiledProgram::symbols`]) says which of them hold state.
    pub fn cells(&self) -> &[u64] {
        &self.cells
    }

    /// The type of every cell.
    pub fn cell_types(&self) -> &[IecType] {
        &self.cell_types
    }

    /// The program's stateful cells: the fields of its block instances (standard and
    /// user blocks, arrays of them included), with instance path, type and role.
    pub fn symbols(&self) -> &[CellSymbol] {
        &self.symbols
    }

    /// The symbol of the stateful cell at `path` (`mixer.step_timer.ET`).
    pub fn symbol(&self, path: &str) -> Option<&CellSymbol> {
        self.symbols.iter().find(|s| s.path == path)
    }

    /// Writes cell `i` (between scans: a restored checkpoint, migrated state). The
    /// value is converted to the cell's type with [`Value::convert`] (exact: out of
    /// range is an error, nothing is written).
    pub fn write_cell(&mut self, i: usize, v: Value) -> Result<(), String> {
        let ty = *self
            .cell_types
            .get(i)
            .ok_or_else(|| format!("cell {i} does not exist ({} cells)", self.cells.len()))?;
        if let IecType::String(_) = ty {
            return Err(format!(
                "cell {i} belongs to a STRING: write it with write_text on its header cell"
            ));
        }
        let v = v.convert(ty).map_err(|e| format!("cell {i}: {e}"))?;
        self.cells[i] = canonical_bits(v);
        Ok(())
    }

    /// The text of the STRING whose header is cell `i` (None for another cell).
    pub fn text(&self, i: usize) -> Option<Vec<u8>> {
        match self.cell_types.get(i) {
            Some(IecType::String(cap)) if *cap > 0 => {
                Some(text::get(&self.cells, i).as_bytes().to_vec())
            }
            _ => None,
        }
    }

    /// Writes the STRING whose header is cell `i`, truncated to its capacity.
    pub fn write_text(&mut self, i: usize, bytes: &[u8]) -> Result<(), String> {
        match self.cell_types.get(i) {
            Some(IecType::String(cap)) if *cap > 0 => {
                text::put(&mut self.cells, i, *cap, bytes);
                Ok(())
            }
            Some(t) => Err(format!(
                "cell {i} is {}, not a STRING's header",
                t.full_name()
            )),
            None => Err(format!(
                "cell {i} does not exist ({} cells)",
                self.cells.len()
            )),
        }
    }

    fn fault(&self, pc: usize, f: Fault) -> ProgramFault {
        let what = match f {
            Fault::DivZero => "division by zero".to_string(),
            Fault::Index { index, len } => {
                let named = self
                    .index_names
                    .binary_search_by_key(&(pc as u32), |&(p, _)| p)
                    .ok()
                    .map(|k| &self.messages[self.index_names[k].1 as usize]);
                match named {
                    Some(name) => format!(
                        "index {index} of {name} is out of range 0..{}",
                        len.saturating_sub(1)
                    ),
                    None => format!(
                        "array index {index} out of range 0..{}",
                        len.saturating_sub(1)
                    ),
                }
            }
            Fault::Check { index, len, m } => format!(
                "index {index} of {} is out of range 0..{}",
                self.messages[m as usize],
                len.saturating_sub(1)
            ),
            Fault::Math(m) => format!(
                "math error in {} (argument out of its domain or result overflows)",
                m.name().to_uppercase()
            ),
            Fault::ShiftCount(n) => format!("negative shift count {n}"),
            Fault::BitNumber { k, bits } => format!("bit number {k} out of range 0..{}", bits - 1),
            Fault::Trap(m) => self.messages[m as usize].clone(),
            Fault::LoopBudget => format!("more than {LOOP_BUDGET} loop iterations in one scan"),
            Fault::Watchdog => "stopped by the watchdog in a loop".to_string(),
            Fault::ImageTooSmall => {
                "the process image does not match the layout the program was loaded for".to_string()
            }
        };
        let line = self.lines.get(pc).copied().unwrap_or(0);
        // The line's own file when a helper from another module was inlined there.
        let file = match self.file_of.get(pc) {
            Some(&f) => &self.files[f as usize],
            None => &self.source,
        };
        let place = match (file.is_empty(), line) {
            (true, 0) => String::new(),
            (false, 0) => format!(" ({file})"),
            (true, l) => format!(" (line {l})"),
            (false, l) => format!(" ({file}:{l})"),
        };
        ProgramFault::new(format!("program {:?}: {what}{place}", self.name))
    }
}

impl Program for CompiledProgram {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ProgramKind {
        ProgramKind::Compiled
    }

    fn execute(&mut self, cx: &mut ScanCtx<'_>) -> Result<(), ProgramFault> {
        for (area, need) in self.need.iter().enumerate() {
            if cx.image.areas[area].len() < *need {
                return Err(self.fault(usize::MAX, Fault::ImageTooSmall));
            }
        }
        if cx.image.quality.len() < self.need_vars || cx.image.stamp_ns.len() < self.need_vars {
            return Err(self.fault(usize::MAX, Fault::ImageTooSmall));
        }
        match run(
            &self.code,
            &mut self.cells,
            &Tables {
                slots: &self.tables,
                vars: &self.table_vars,
                cells: &self.ctables,
                jumps: &self.jump_tables,
            },
            cx.image,
            cx.now_ns as i64,
            cx.abort,
        ) {
            Ok(()) => Ok(()),
            Err((pc, f)) => Err(self.fault(pc, f)),
        }
    }

    fn reset(&mut self) {
        self.cells.copy_from_slice(&self.init);
    }

    fn state(&self) -> &[u64] {
        &self.cells
    }

    /// Copies the mapped cells of the program this one replaces. Scan thread: no
    /// allocation; pairs out of either program's range are skipped (the map was
    /// computed for these two programs, but a stale one must not panic).
    fn adopt(&mut self, old: &[u64], map: &[(u32, u32)]) {
        for &(o, n) in map {
            if let (Some(v), Some(c)) = (old.get(o as usize), self.cells.get_mut(n as usize)) {
                *c = *v;
            }
        }
    }
}

#[inline(always)]
fn bytes<const N: usize>(img: &Image, area: u8, off: u32) -> [u8; N] {
    let o = off as usize;
    let mut out = [0u8; N];
    out.copy_from_slice(&img.areas[area as usize][o..o + N]);
    out
}

#[inline(always)]
fn put(img: &mut Image, area: u8, off: u32, b: &[u8]) {
    let o = off as usize;
    img.areas[area as usize][o..o + b.len()].copy_from_slice(b);
}

/// Bit `bit` of byte `off` of an area (a BOOL's slot).
#[inline(always)]
fn bit_of(img: &Image, area: u8, off: u32, bit: u8) -> u64 {
    ((img.areas[area as usize][off as usize] >> bit) & 1) as u64
}

/// Loads a slot as canonical cell bits.
#[inline]
fn load_slot(img: &Image, s: Slot) -> u64 {
    let (a, o) = (s.area.index() as u8, s.offset);
    match s.ty {
        IecType::Bool => bit_of(img, a, o, s.bit),
        IecType::Sint => i8::from_le_bytes(bytes(img, a, o)) as i64 as u64,
        IecType::Usint | IecType::Byte => bytes::<1>(img, a, o)[0] as u64,
        IecType::Int => i16::from_le_bytes(bytes(img, a, o)) as i64 as u64,
        IecType::Uint | IecType::Word => u16::from_le_bytes(bytes(img, a, o)) as u64,
        IecType::Dint => i32::from_le_bytes(bytes(img, a, o)) as i64 as u64,
        IecType::Udint | IecType::Real | IecType::Dword => {
            u32::from_le_bytes(bytes(img, a, o)) as u64
        }
        IecType::Lint | IecType::Ulint | IecType::Lreal | IecType::Time | IecType::Lword => {
            u64::from_le_bytes(bytes(img, a, o))
        }
        // A STRING's length (string variables are read by `SLd`, never through here).
        IecType::String(_) => bytes::<1>(img, a, o)[0] as u64,
    }
}

#[inline]
fn store_slot(img: &mut Image, s: Slot, v: u64) {
    let (a, o) = (s.area.index() as u8, s.offset);
    match s.ty.size() {
        0 => store_bit(img, a, o, s.bit, v),
        n => put(img, a, o, &v.to_le_bytes()[..n]),
    }
}

#[inline(always)]
fn store_bit(img: &mut Image, area: u8, off: u32, bit: u8, v: u64) {
    let byte = &mut img.areas[area as usize][off as usize];
    *byte = (*byte & !(1 << bit)) | (((v != 0) as u8) << bit);
}

/// The `N` cells of a block instance from `at` (verified to lie inside the cells).
#[inline(always)]
fn fixed_cells<const N: usize>(c: &mut [u64], at: usize) -> &mut [u64; N] {
    (&mut c[at..at + N])
        .try_into()
        .expect("a block instance lies inside the cells (verified)")
}

#[inline(always)]
fn index(c: &[u64], i: u32, len: u32) -> Result<usize, Fault> {
    let k = c[i as usize] as i64;
    if k < 0 || k >= len as i64 {
        Err(Fault::Index { index: k, len })
    } else {
        Ok(k as usize)
    }
}

#[inline(always)]
fn count(c: &[u64], i: u32, signed: bool) -> Result<u64, Fault> {
    let v = c[i as usize];
    if signed && (v as i64) < 0 {
        Err(Fault::ShiftCount(v as i64))
    } else {
        Ok(v)
    }
}

/// `x` (an unsigned value of `n`'s width) rotated left by `k` modulo the width.
#[inline(always)]
fn rotate_left(x: u64, k: u64, n: Norm) -> u64 {
    let w = n.bits() as u64;
    let k = k % w;
    if k == 0 {
        x
    } else {
        n.apply((x << k) | (x >> (w - k)))
    }
}

#[inline(always)]
fn of_f32(v: f32) -> u64 {
    v.to_bits() as u64
}

/// Age of data stamped `stamp` at `now` (both engine-clock ns) as TIME bits: never
/// negative (a stamp ahead of `now` gives 0) and at most the largest TIME.
#[inline(always)]
fn age(now: i64, stamp: u64) -> u64 {
    (now as u64).saturating_sub(stamp).min(i64::MAX as u64)
}

/// The image tables of a program: slots for values, layout indices for quality and
/// age.
struct Tables<'a> {
    slots: &'a [Box<[Slot]>],
    vars: &'a [Box<[u32]>],
    cells: &'a [Box<[u32]>],
    jumps: &'a [JumpTable],
}

/// The bits a cell holds for `v`: integers sign- or zero-extended to 64 bits (the
/// interpreter's canonical form), floats as their bit patterns.
fn canonical_bits(v: Value) -> u64 {
    match v {
        Value::Int(_, i) | Value::Time(i) => i as u64,
        other => other.to_bits(),
    }
}

/// A spot check of the verifier's guarantee for debug builds: the cell operands of the
/// most common instructions (moves and additions) are below `n`.
fn code_in_range(code: &[Instr], n: usize) -> bool {
    let ok = |i: u32| (i as usize) < n;
    code.iter().all(|ins| match *ins {
        Instr::Mov { d, a } => ok(d) && ok(a),
        Instr::IAdd { d, a, b, .. } | Instr::FAdd { d, a, b } | Instr::DAdd { d, a, b } => {
            ok(d) && ok(a) && ok(b)
        }
        _ => true,
    })
}

/// The interpreter loop. Returns the faulting instruction's index and the reason.
fn run(
    code: &[Instr],
    c: &mut [u64],
    tables: &Tables<'_>,
    img: &mut Image,
    now: i64,
    abort: &AtomicBool,
) -> Result<(), (usize, Fault)> {
    let (tables, table_vars, ctables, jumps) =
        (tables.slots, tables.vars, tables.cells, tables.jumps);
    let mut pc = 0usize;
    let mut budget = LOOP_BUDGET;
    // Cell operands are read and written without a bounds check: the verifier checked
    // every cell operand of `code` against the number of cells (verify::check), and
    // `c` holds exactly that many (CompiledProgram::new, and reset copies the same
    // length back); debug builds spot-check it. Indices computed at run time (ldc,
    // stc, tables) keep their checks below.
    debug_assert!(code_in_range(code, c.len()));
    macro_rules! r {
        ($i:expr) => {
            // SAFETY: a verified cell operand (see above).
            *unsafe { c.get_unchecked_mut($i as usize) }
        };
    }
    macro_rules! fr {
        ($i:expr) => {
            f32::from_bits(r!($i) as u32)
        };
    }
    macro_rules! dr {
        ($i:expr) => {
            f64::from_bits(r!($i))
        };
    }
    macro_rules! fail {
        ($f:expr) => {
            return Err((pc, $f))
        };
    }
    while pc < code.len() {
        match code[pc] {
            Instr::Mov { d, a } => r!(d) = r!(a),
            Instr::IAdd { d, a, b, n } => r!(d) = n.apply(r!(a).wrapping_add(r!(b))),
            Instr::ISub { d, a, b, n } => r!(d) = n.apply(r!(a).wrapping_sub(r!(b))),
            Instr::IMul { d, a, b, n } => r!(d) = n.apply(r!(a).wrapping_mul(r!(b))),
            Instr::INeg { d, a, n } => r!(d) = n.apply(r!(a).wrapping_neg()),
            Instr::IAbs { d, a, n } => r!(d) = n.apply((r!(a) as i64).wrapping_abs() as u64),
            Instr::IDivS { d, a, b, n } => {
                let y = r!(b) as i64;
                if y == 0 {
                    fail!(Fault::DivZero);
                }
                r!(d) = n.apply((r!(a) as i64).wrapping_div(y) as u64);
            }
            Instr::IRemS { d, a, b, n } => {
                let y = r!(b) as i64;
                if y == 0 {
                    fail!(Fault::DivZero);
                }
                r!(d) = n.apply((r!(a) as i64).wrapping_rem(y) as u64);
            }
            Instr::IDivU { d, a, b } => {
                let y = r!(b);
                if y == 0 {
                    fail!(Fault::DivZero);
                }
                r!(d) = r!(a) / y;
            }
            Instr::IRemU { d, a, b } => {
                let y = r!(b);
                if y == 0 {
                    fail!(Fault::DivZero);
                }
                r!(d) = r!(a) % y;
            }
            Instr::IFloorDiv { d, a, b } => {
                let (x, y) = (r!(a) as i64, r!(b) as i64);
                if y == 0 {
                    fail!(Fault::DivZero);
                }
                let q = x.wrapping_div(y);
                let adjust = (x.wrapping_rem(y) != 0) && ((x < 0) != (y < 0));
                r!(d) = q.wrapping_sub(adjust as i64) as u64;
            }
            Instr::IFloorMod { d, a, b } => {
                let (x, y) = (r!(a) as i64, r!(b) as i64);
                if y == 0 {
                    fail!(Fault::DivZero);
                }
                let m = x.wrapping_rem(y);
                r!(d) = (if m != 0 && ((m < 0) != (y < 0)) {
                    m.wrapping_add(y)
                } else {
                    m
                }) as u64;
            }
            Instr::IAnd { d, a, b } => r!(d) = r!(a) & r!(b),
            Instr::IOr { d, a, b } => r!(d) = r!(a) | r!(b),
            Instr::IXor { d, a, b } => r!(d) = r!(a) ^ r!(b),
            Instr::INot { d, a, n } => r!(d) = n.apply(!r!(a)),
            Instr::IShl { d, a, b, n, cs } => {
                let k = match count(c, b, cs) {
                    Ok(k) => k,
                    Err(f) => fail!(f),
                };
                r!(d) = if k >= 64 { 0 } else { n.apply(r!(a) << k) };
            }
            Instr::IShrS { d, a, b, cs } => {
                let k = match count(c, b, cs) {
                    Ok(k) => k,
                    Err(f) => fail!(f),
                };
                r!(d) = ((r!(a) as i64) >> k.min(63)) as u64;
            }
            Instr::IShrU { d, a, b, cs } => {
                let k = match count(c, b, cs) {
                    Ok(k) => k,
                    Err(f) => fail!(f),
                };
                r!(d) = if k >= 64 { 0 } else { r!(a) >> k };
            }
            Instr::IRol { d, a, b, n, cs } => {
                let k = match count(c, b, cs) {
                    Ok(k) => k,
                    Err(f) => fail!(f),
                };
                r!(d) = rotate_left(r!(a), k, n);
            }
            Instr::IRor { d, a, b, n, cs } => {
                let k = match count(c, b, cs) {
                    Ok(k) => k,
                    Err(f) => fail!(f),
                };
                let w = n.bits() as u64;
                r!(d) = rotate_left(r!(a), w - k % w, n);
            }
            Instr::IEq { d, a, b } => r!(d) = (r!(a) == r!(b)) as u64,
            Instr::INe { d, a, b } => r!(d) = (r!(a) != r!(b)) as u64,
            Instr::ILtS { d, a, b } => r!(d) = ((r!(a) as i64) < (r!(b) as i64)) as u64,
            Instr::ILeS { d, a, b } => r!(d) = ((r!(a) as i64) <= (r!(b) as i64)) as u64,
            Instr::ILtU { d, a, b } => r!(d) = (r!(a) < r!(b)) as u64,
            Instr::ILeU { d, a, b } => r!(d) = (r!(a) <= r!(b)) as u64,
            // MIN keeps the first operand unless the second is smaller (Python's min).
            Instr::IMinS { d, a, b } => {
                r!(d) = if (r!(b) as i64) < (r!(a) as i64) {
                    r!(b)
                } else {
                    r!(a)
                }
            }
            Instr::IMaxS { d, a, b } => {
                r!(d) = if (r!(b) as i64) > (r!(a) as i64) {
                    r!(b)
                } else {
                    r!(a)
                }
            }
            Instr::IMinU { d, a, b } => r!(d) = if r!(b) < r!(a) { r!(b) } else { r!(a) },
            Instr::IMaxU { d, a, b } => r!(d) = if r!(b) > r!(a) { r!(b) } else { r!(a) },

            Instr::FAdd { d, a, b } => r!(d) = of_f32(fr!(a) + fr!(b)),
            Instr::FSub { d, a, b } => r!(d) = of_f32(fr!(a) - fr!(b)),
            Instr::FMul { d, a, b } => r!(d) = of_f32(fr!(a) * fr!(b)),
            Instr::FDiv { d, a, b } => {
                let y = fr!(b);
                if y == 0.0 {
                    fail!(Fault::DivZero);
                }
                r!(d) = of_f32(fr!(a) / y);
            }
            Instr::FNeg { d, a } => r!(d) = of_f32(-fr!(a)),
            Instr::FAbs { d, a } => r!(d) = of_f32(fr!(a).abs()),
            Instr::FEq { d, a, b } => r!(d) = (fr!(a) == fr!(b)) as u64,
            Instr::FNe { d, a, b } => r!(d) = (fr!(a) != fr!(b)) as u64,
            Instr::FLt { d, a, b } => r!(d) = (fr!(a) < fr!(b)) as u64,
            Instr::FLe { d, a, b } => r!(d) = (fr!(a) <= fr!(b)) as u64,
            Instr::FMin { d, a, b } => r!(d) = if fr!(b) < fr!(a) { r!(b) } else { r!(a) },
            Instr::FMax { d, a, b } => r!(d) = if fr!(b) > fr!(a) { r!(b) } else { r!(a) },
            Instr::FMath { d, a, f } => match f.eval(fr!(a) as f64) {
                Some(v) => r!(d) = of_f32(v as f32),
                None => fail!(Fault::Math(f)),
            },

            Instr::DAdd { d, a, b } => r!(d) = (dr!(a) + dr!(b)).to_bits(),
            Instr::DSub { d, a, b } => r!(d) = (dr!(a) - dr!(b)).to_bits(),
            Instr::DMul { d, a, b } => r!(d) = (dr!(a) * dr!(b)).to_bits(),
            Instr::DDiv { d, a, b } => {
                let y = dr!(b);
                if y == 0.0 {
                    fail!(Fault::DivZero);
                }
                r!(d) = (dr!(a) / y).to_bits();
            }
            Instr::DNeg { d, a } => r!(d) = (-dr!(a)).to_bits(),
            Instr::DAbs { d, a } => r!(d) = dr!(a).abs().to_bits(),
            Instr::DEq { d, a, b } => r!(d) = (dr!(a) == dr!(b)) as u64,
            Instr::DNe { d, a, b } => r!(d) = (dr!(a) != dr!(b)) as u64,
            Instr::DLt { d, a, b } => r!(d) = (dr!(a) < dr!(b)) as u64,
            Instr::DLe { d, a, b } => r!(d) = (dr!(a) <= dr!(b)) as u64,
            Instr::DMin { d, a, b } => r!(d) = if dr!(b) < dr!(a) { r!(b) } else { r!(a) },
            Instr::DMax { d, a, b } => r!(d) = if dr!(b) > dr!(a) { r!(b) } else { r!(a) },
            Instr::DMath { d, a, f } => match f.eval(dr!(a)) {
                Some(v) => r!(d) = v.to_bits(),
                None => fail!(Fault::Math(f)),
            },

            Instr::BAnd { d, a, b } => r!(d) = r!(a) & r!(b),
            Instr::BOr { d, a, b } => r!(d) = r!(a) | r!(b),
            Instr::BXor { d, a, b } => r!(d) = r!(a) ^ r!(b),
            Instr::BNot { d, a } => r!(d) = r!(a) ^ 1,

            Instr::Wrap { d, a, n } => r!(d) = n.apply(r!(a)),
            Instr::IToBool { d, a } => r!(d) = (r!(a) != 0) as u64,
            Instr::IToF { d, a, signed } => r!(d) = of_f32(int_to_f32(r!(a), signed)),
            Instr::IToD { d, a, signed } => r!(d) = int_to_f64(r!(a), signed).to_bits(),
            Instr::FToI { d, a, ty } => r!(d) = f64_to_int(fr!(a) as f64, ty),
            Instr::DToI { d, a, ty } => r!(d) = f64_to_int(dr!(a), ty),
            Instr::FTrunc { d, a } => r!(d) = (fr!(a) as i64) as u64,
            Instr::DTrunc { d, a } => r!(d) = (dr!(a) as i64) as u64,
            Instr::FToD { d, a } => r!(d) = (fr!(a) as f64).to_bits(),
            Instr::DToF { d, a } => r!(d) = of_f32(dr!(a) as f32),

            Instr::Sel { d, g, a, b } => r!(d) = if r!(g) != 0 { r!(b) } else { r!(a) },
            Instr::GetBit { d, x, k, bits, cs } => {
                let n = r!(k);
                if (cs && (n as i64) < 0) || n >= bits as u64 {
                    fail!(Fault::BitNumber { k: n as i64, bits });
                }
                r!(d) = (r!(x) >> n) & 1;
            }
            Instr::SetBit { d, x, k, v, n, cs } => {
                let bit = r!(k);
                if (cs && (bit as i64) < 0) || bit >= n.bits() as u64 {
                    fail!(Fault::BitNumber {
                        k: bit as i64,
                        bits: n.bits()
                    });
                }
                let m = 1u64 << bit;
                let val = if r!(v) != 0 { r!(x) | m } else { r!(x) & !m };
                r!(d) = n.apply(val);
            }

            Instr::LdB { d, area, off, bit } => r!(d) = bit_of(img, area, off, bit),
            Instr::Ld1S { d, area, off } => {
                r!(d) = i8::from_le_bytes(bytes(img, area, off)) as i64 as u64
            }
            Instr::Ld1U { d, area, off } => r!(d) = bytes::<1>(img, area, off)[0] as u64,
            Instr::Ld2S { d, area, off } => {
                r!(d) = i16::from_le_bytes(bytes(img, area, off)) as i64 as u64
            }
            Instr::Ld2U { d, area, off } => {
                r!(d) = u16::from_le_bytes(bytes(img, area, off)) as u64
            }
            Instr::Ld4S { d, area, off } => {
                r!(d) = i32::from_le_bytes(bytes(img, area, off)) as i64 as u64
            }
            Instr::Ld4U { d, area, off } => {
                r!(d) = u32::from_le_bytes(bytes(img, area, off)) as u64
            }
            Instr::Ld8 { d, area, off } => r!(d) = u64::from_le_bytes(bytes(img, area, off)),
            Instr::StB { a, area, off, bit } => store_bit(img, area, off, bit, r!(a)),
            Instr::St1 { a, area, off } => put(img, area, off, &r!(a).to_le_bytes()[..1]),
            Instr::St2 { a, area, off } => put(img, area, off, &r!(a).to_le_bytes()[..2]),
            Instr::St4 { a, area, off } => put(img, area, off, &r!(a).to_le_bytes()[..4]),
            Instr::St8 { a, area, off } => put(img, area, off, &r!(a).to_le_bytes()),
            Instr::LdX { d, t, i } => {
                let tab = &tables[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => r!(d) = load_slot(img, tab[k]),
                    Err(f) => fail!(f),
                }
            }
            Instr::StX { t, i, a } => {
                let tab = &tables[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => store_slot(img, tab[k], r!(a)),
                    Err(f) => fail!(f),
                }
            }
            Instr::LdC {
                d,
                base,
                stride,
                len,
                i,
            } => match index(c, i, len) {
                Ok(k) => r!(d) = c[base as usize + k * stride as usize],
                Err(f) => fail!(f),
            },
            Instr::StC {
                a,
                base,
                stride,
                len,
                i,
            } => match index(c, i, len) {
                Ok(k) => c[base as usize + k * stride as usize] = r!(a),
                Err(f) => fail!(f),
            },
            Instr::Ton { base } => {
                let at = base as usize;
                fb::ton(fixed_cells(c, at), now);
            }
            Instr::RTrig { base } => {
                let at = base as usize;
                fb::r_trig(fixed_cells(c, at));
            }
            Instr::LdBJz {
                d,
                area,
                off,
                bit,
                t,
            } => {
                let v = bit_of(img, area, off, bit);
                r!(d) = v;
                pc = if v == 0 { t as usize } else { pc + 2 };
                continue;
            }
            Instr::Ld4U2 {
                d,
                off,
                d2,
                off2,
                area,
            } => {
                r!(d) = u32::from_le_bytes(bytes(img, area, off)) as u64;
                r!(d2) = u32::from_le_bytes(bytes(img, area, off2)) as u64;
                pc += 2;
                continue;
            }
            Instr::LdB2 {
                d,
                off,
                d2,
                off2,
                area,
                bit,
                bit2,
            } => {
                r!(d) = bit_of(img, area, off, bit);
                r!(d2) = bit_of(img, area, off2, bit2);
                pc += 2;
                continue;
            }
            Instr::MovStB {
                d,
                a,
                area,
                off,
                bit,
            } => {
                let v = r!(a);
                r!(d) = v;
                store_bit(img, area, off, bit, v);
                pc += 2;
                continue;
            }
            Instr::StB2 {
                a,
                off,
                a2,
                off2,
                area,
                bit,
                bit2,
            } => {
                store_bit(img, area, off, bit, r!(a));
                store_bit(img, area, off2, bit2, r!(a2));
                pc += 2;
                continue;
            }
            Instr::MovRTrig { d, a } => {
                r!(d) = r!(a);
                fb::r_trig(fixed_cells(c, d as usize));
                pc += 2;
                continue;
            }
            Instr::StBJz {
                a,
                area,
                off,
                bit,
                t,
            } => {
                let v = r!(a);
                store_bit(img, area, off, bit, v);
                pc = if v == 0 { t as usize } else { pc + 2 };
                continue;
            }
            Instr::JzJnz { c: x, c2, t } => {
                pc = if r!(x) == 0 || r!(c2) != 0 {
                    t as usize
                } else {
                    pc + 2
                };
                continue;
            }
            Instr::Fb { kind, base } => {
                let at = base as usize;
                fb::exec(kind, &mut c[at..at + kind.size()], now);
            }
            Instr::FbX {
                kind,
                base,
                stride,
                len,
                i,
            } => match index(c, i, len) {
                Ok(k) => {
                    let at = base as usize + k * stride as usize;
                    fb::exec(kind, &mut c[at..at + FbKind::size(kind)], now);
                }
                Err(f) => fail!(f),
            },
            Instr::FbT { kind, t, i } => {
                let tab = &ctables[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => {
                        let at = tab[k] as usize;
                        fb::exec(kind, &mut c[at..at + FbKind::size(kind)], now);
                    }
                    Err(f) => fail!(f),
                }
            }
            Instr::Chk { i, n, m } => {
                if let Err(Fault::Index { index, len }) = index(c, i, n) {
                    fail!(Fault::Check { index, len, m });
                }
            }
            Instr::LdT { d, t, i } => {
                let tab = &ctables[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => r!(d) = c[tab[k] as usize],
                    Err(f) => fail!(f),
                }
            }
            Instr::StT { t, i, a } => {
                let tab = &ctables[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => c[tab[k] as usize] = r!(a),
                    Err(f) => fail!(f),
                }
            }
            Instr::SMov { d, s, cap } => {
                let t = text::get(c, s as usize);
                text::put(c, d as usize, cap, t.as_bytes());
            }
            Instr::SCat { d, a, b, cap } => {
                let mut t = text::get(c, a as usize);
                t.append(text::get(c, b as usize).as_bytes());
                text::put(c, d as usize, cap, t.as_bytes());
            }
            Instr::SLen { d, s } => r!(d) = text::get(c, s as usize).as_bytes().len() as u64,
            Instr::SLeft { d, s, n, cap } => {
                let t = text::get(c, s as usize);
                let n = r!(n) as i64;
                text::put(c, d as usize, cap, text::left(t.as_bytes(), n));
            }
            Instr::SRight { d, s, n, cap } => {
                let t = text::get(c, s as usize);
                let n = r!(n) as i64;
                text::put(c, d as usize, cap, text::right(t.as_bytes(), n));
            }
            Instr::SMid { d, s, l, p, cap } => {
                let t = text::get(c, s as usize);
                let (l, p) = (r!(l) as i64, r!(p) as i64);
                text::put(c, d as usize, cap, text::mid(t.as_bytes(), l, p));
            }
            Instr::SFind { d, a, b } => {
                let (x, y) = (text::get(c, a as usize), text::get(c, b as usize));
                r!(d) = text::find(x.as_bytes(), y.as_bytes()) as u64;
            }
            Instr::SCmp { d, a, b, k } => {
                let (x, y) = (text::get(c, a as usize), text::get(c, b as usize));
                let o = x.as_bytes().cmp(y.as_bytes());
                r!(d) = match k {
                    0 => o.is_eq(),
                    1 => o.is_ne(),
                    2 => o.is_lt(),
                    3 => o.is_le(),
                    4 => o.is_gt(),
                    _ => o.is_ge(),
                } as u64;
            }
            Instr::SLd { d, cap, s } => text::put(c, d as usize, cap, img.text(s)),
            Instr::SSt { a, s } => img.set_text(s, text::get(c, a as usize).as_bytes()),
            Instr::SLdX { d, cap, t, i } => {
                let tab = &tables[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => text::put(c, d as usize, cap, img.text(tab[k])),
                    Err(f) => fail!(f),
                }
            }
            Instr::SStX { t, i, a } => {
                let tab = &tables[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => img.set_text(tab[k], text::get(c, a as usize).as_bytes()),
                    Err(f) => fail!(f),
                }
            }
            Instr::SLdC {
                d,
                cap,
                base,
                stride,
                len,
                i,
            } => match index(c, i, len) {
                Ok(k) => {
                    let t = text::get(c, base as usize + k * stride as usize);
                    text::put(c, d as usize, cap, t.as_bytes());
                }
                Err(f) => fail!(f),
            },
            Instr::SStC {
                a,
                ecap,
                base,
                stride,
                len,
                i,
            } => match index(c, i, len) {
                Ok(k) => {
                    let t = text::get(c, a as usize);
                    text::put(c, base as usize + k * stride as usize, ecap, t.as_bytes());
                }
                Err(f) => fail!(f),
            },
            Instr::SLdT { d, cap, t, i } => {
                let tab = &ctables[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => {
                        let t = text::get(c, tab[k] as usize);
                        text::put(c, d as usize, cap, t.as_bytes());
                    }
                    Err(f) => fail!(f),
                }
            }
            Instr::SStT { t, ecap, i, a } => {
                let tab = &ctables[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => {
                        let t = text::get(c, a as usize);
                        text::put(c, tab[k] as usize, ecap, t.as_bytes());
                    }
                    Err(f) => fail!(f),
                }
            }
            Instr::SToI { d, s, n } => {
                r!(d) = n.apply(text::parse_int(text::get(c, s as usize).as_bytes()))
            }
            Instr::SToF { d, s, single } => {
                let x = text::parse_float(text::get(c, s as usize).as_bytes());
                r!(d) = if single {
                    of_f32(x as f32)
                } else {
                    x.to_bits()
                };
            }
            Instr::ToS { d, s, cap, from } => {
                let v = r!(s);
                let t = match from {
                    TextOf::Bool => text::format_bool(v != 0),
                    TextOf::Signed => text::format_int(v, true),
                    TextOf::Unsigned => text::format_int(v, false),
                    TextOf::Real => text::format_float(f32::from_bits(v as u32) as f64, true),
                    TextOf::Lreal => text::format_float(f64::from_bits(v), false),
                };
                text::put(c, d as usize, cap, t.as_bytes());
            }
            Instr::Jmp { t } => {
                pc = t as usize;
                continue;
            }
            Instr::JTab { x, t } => {
                let jt = &jumps[t as usize];
                let v = if jt.signed {
                    r!(x) as i64 as i128
                } else {
                    r!(x) as i128
                };
                let k = v - jt.lo as i128;
                pc = if (0..jt.targets.len() as i128).contains(&k) {
                    jt.targets[k as usize]
                } else {
                    jt.default
                } as usize;
                continue;
            }
            Instr::Jz { c: cond, t } => {
                if r!(cond) == 0 {
                    pc = t as usize;
                    continue;
                }
            }
            Instr::Jnz { c: cond, t } => {
                if r!(cond) != 0 {
                    pc = t as usize;
                    continue;
                }
            }
            Instr::Loop { t } => {
                if budget == 0 {
                    fail!(Fault::LoopBudget);
                }
                // Every backward jump: a relaxed load of a flag that stays in cache
                // until the watchdog thread writes it, so it costs about nothing.
                if abort.load(Ordering::Relaxed) {
                    fail!(Fault::Watchdog);
                }
                budget -= 1;
                pc = t as usize;
                continue;
            }
            Instr::Now { d } => r!(d) = now as u64,
            Instr::Quality { d, v } => r!(d) = img.quality[v as usize] as u8 as u64,
            Instr::Age { d, v } => r!(d) = age(now, img.stamp_ns[v as usize]),
            Instr::QualityX { d, t, i } => {
                let tab = &table_vars[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => r!(d) = img.quality[tab[k] as usize] as u8 as u64,
                    Err(f) => fail!(f),
                }
            }
            Instr::AgeX { d, t, i } => {
                let tab = &table_vars[t as usize];
                match index(c, i, tab.len() as u32) {
                    Ok(k) => r!(d) = age(now, img.stamp_ns[tab[k] as usize]),
                    Err(f) => fail!(f),
                }
            }
            Instr::Trap { m } => fail!(Fault::Trap(m)),
        }
        pc += 1;
    }
    Ok(())
}
