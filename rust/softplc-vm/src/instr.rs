//! The verified, specialised instruction set the interpreter runs.
//!
//! The IR's generic operations (`add`, `lt`, `ld`, ...) are lowered by the verifier to
//! one of these, chosen by the operand types, with process-image variables resolved
//! to fixed area offsets. Operands are cell indices (`u32`) already checked to be in
//! range and of the right type.

use crate::fb::FbKind;
use crate::num::{MathFn, Norm};
use softplc_core::{IecType, Slot};

/// One instruction. `d` is the destination cell, `a`, `b`, ... are source cells.
#[derive(Clone, Copy, Debug, PartialEq)]
#[allow(missing_docs)]
pub enum Instr {
    Mov {
        d: u32,
        a: u32,
    },

    // Integers (and TIME) on canonical 64-bit cells, wrapped by `n`.
    IAdd {
        d: u32,
        a: u32,
        b: u32,
        n: Norm,
    },
    ISub {
        d: u32,
        a: u32,
        b: u32,
        n: Norm,
    },
    IMul {
        d: u32,
        a: u32,
        b: u32,
        n: Norm,
    },
    INeg {
        d: u32,
        a: u32,
        n: Norm,
    },
    IAbs {
        d: u32,
        a: u32,
        n: Norm,
    },
    IDivS {
        d: u32,
        a: u32,
        b: u32,
        n: Norm,
    },
    IRemS {
        d: u32,
        a: u32,
        b: u32,
        n: Norm,
    },
    IDivU {
        d: u32,
        a: u32,
        b: u32,
    },
    IRemU {
        d: u32,
        a: u32,
        b: u32,
    },
    /// Python floor division on LINT (untyped integers).
    IFloorDiv {
        d: u32,
        a: u32,
        b: u32,
    },
    /// Python modulo on LINT (untyped integers).
    IFloorMod {
        d: u32,
        a: u32,
        b: u32,
    },
    IAnd {
        d: u32,
        a: u32,
        b: u32,
    },
    IOr {
        d: u32,
        a: u32,
        b: u32,
    },
    IXor {
        d: u32,
        a: u32,
        b: u32,
    },
    INot {
        d: u32,
        a: u32,
        n: Norm,
    },
    /// Shift left; the count cell is signed when `cs`.
    IShl {
        d: u32,
        a: u32,
        b: u32,
        n: Norm,
        cs: bool,
    },
    IShrS {
        d: u32,
        a: u32,
        b: u32,
        cs: bool,
    },
    IShrU {
        d: u32,
        a: u32,
        b: u32,
        cs: bool,
    },
    /// Rotate left within the width of `n` (an unsigned type); the count is taken
    /// modulo the width.
    IRol {
        d: u32,
        a: u32,
        b: u32,
        n: Norm,
        cs: bool,
    },
    /// Rotate right within the width of `n`.
    IRor {
        d: u32,
        a: u32,
        b: u32,
        n: Norm,
        cs: bool,
    },
    IEq {
        d: u32,
        a: u32,
        b: u32,
    },
    INe {
        d: u32,
        a: u32,
        b: u32,
    },
    ILtS {
        d: u32,
        a: u32,
        b: u32,
    },
    ILeS {
        d: u32,
        a: u32,
        b: u32,
    },
    ILtU {
        d: u32,
        a: u32,
        b: u32,
    },
    ILeU {
        d: u32,
        a: u32,
        b: u32,
    },
    IMinS {
        d: u32,
        a: u32,
        b: u32,
    },
    IMaxS {
        d: u32,
        a: u32,
        b: u32,
    },
    IMinU {
        d: u32,
        a: u32,
        b: u32,
    },
    IMaxU {
        d: u32,
        a: u32,
        b: u32,
    },

    // REAL (f32).
    FAdd {
        d: u32,
        a: u32,
        b: u32,
    },
    FSub {
        d: u32,
        a: u32,
        b: u32,
    },
    FMul {
        d: u32,
        a: u32,
        b: u32,
    },
    FDiv {
        d: u32,
        a: u32,
        b: u32,
    },
    FNeg {
        d: u32,
        a: u32,
    },
    FAbs {
        d: u32,
        a: u32,
    },
    FEq {
        d: u32,
        a: u32,
        b: u32,
    },
    FNe {
        d: u32,
        a: u32,
        b: u32,
    },
    FLt {
        d: u32,
        a: u32,
        b: u32,
    },
    FLe {
        d: u32,
        a: u32,
        b: u32,
    },
    FMin {
        d: u32,
        a: u32,
        b: u32,
    },
    FMax {
        d: u32,
        a: u32,
        b: u32,
    },
    FMath {
        d: u32,
        a: u32,
        f: MathFn,
    },

    // LREAL (f64).
    DAdd {
        d: u32,
        a: u32,
        b: u32,
    },
    DSub {
        d: u32,
        a: u32,
        b: u32,
    },
    DMul {
        d: u32,
        a: u32,
        b: u32,
    },
    DDiv {
        d: u32,
        a: u32,
        b: u32,
    },
    DNeg {
        d: u32,
        a: u32,
    },
    DAbs {
        d: u32,
        a: u32,
    },
    DEq {
        d: u32,
        a: u32,
        b: u32,
    },
    DNe {
        d: u32,
        a: u32,
        b: u32,
    },
    DLt {
        d: u32,
        a: u32,
        b: u32,
    },
    DLe {
        d: u32,
        a: u32,
        b: u32,
    },
    DMin {
        d: u32,
        a: u32,
        b: u32,
    },
    DMax {
        d: u32,
        a: u32,
        b: u32,
    },
    DMath {
        d: u32,
        a: u32,
        f: MathFn,
    },

    // BOOL.
    BAnd {
        d: u32,
        a: u32,
        b: u32,
    },
    BOr {
        d: u32,
        a: u32,
        b: u32,
    },
    BXor {
        d: u32,
        a: u32,
        b: u32,
    },
    BNot {
        d: u32,
        a: u32,
    },

    // Conversions.
    Wrap {
        d: u32,
        a: u32,
        n: Norm,
    },
    IToBool {
        d: u32,
        a: u32,
    },
    IToF {
        d: u32,
        a: u32,
        signed: bool,
    },
    IToD {
        d: u32,
        a: u32,
        signed: bool,
    },
    FToI {
        d: u32,
        a: u32,
        ty: IecType,
    },
    DToI {
        d: u32,
        a: u32,
        ty: IecType,
    },
    FToD {
        d: u32,
        a: u32,
    },
    /// REAL to LINT, truncated toward zero (saturating, NaN gives 0).
    FTrunc {
        d: u32,
        a: u32,
    },
    /// LREAL to LINT, truncated toward zero (saturating, NaN gives 0).
    DTrunc {
        d: u32,
        a: u32,
    },
    DToF {
        d: u32,
        a: u32,
    },

    Sel {
        d: u32,
        g: u32,
        a: u32,
        b: u32,
    },
    GetBit {
        d: u32,
        x: u32,
        k: u32,
        bits: u32,
        cs: bool,
    },
    SetBit {
        d: u32,
        x: u32,
        k: u32,
        v: u32,
        n: Norm,
        cs: bool,
    },

    // Process image (area index, byte offset).
    LdB {
        d: u32,
        area: u8,
        off: u32,
        bit: u8,
    },
    Ld1S {
        d: u32,
        area: u8,
        off: u32,
    },
    Ld1U {
        d: u32,
        area: u8,
        off: u32,
    },
    Ld2S {
        d: u32,
        area: u8,
        off: u32,
    },
    Ld2U {
        d: u32,
        area: u8,
        off: u32,
    },
    Ld4S {
        d: u32,
        area: u8,
        off: u32,
    },
    Ld4U {
        d: u32,
        area: u8,
        off: u32,
    },
    Ld8 {
        d: u32,
        area: u8,
        off: u32,
    },
    StB {
        a: u32,
        area: u8,
        off: u32,
        bit: u8,
    },
    St1 {
        a: u32,
        area: u8,
        off: u32,
    },
    St2 {
        a: u32,
        area: u8,
        off: u32,
    },
    St4 {
        a: u32,
        area: u8,
        off: u32,
    },
    St8 {
        a: u32,
        area: u8,
        off: u32,
    },
    /// Load element `c[i]` of image table `t`.
    LdX {
        d: u32,
        t: u32,
        i: u32,
    },
    StX {
        t: u32,
        i: u32,
        a: u32,
    },
    /// Load cell `base + c[i] * stride`, checking `c[i] < len`.
    LdC {
        d: u32,
        base: u32,
        stride: u32,
        len: u32,
        i: u32,
    },
    StC {
        a: u32,
        base: u32,
        stride: u32,
        len: u32,
        i: u32,
    },

    Fb {
        kind: FbKind,
        base: u32,
    },
    /// `fb.TON` and `fb.R_TRIG`, the most frequent blocks, without the dispatch on
    /// the kind.
    Ton {
        base: u32,
    },
    RTrig {
        base: u32,
    },
    FbX {
        kind: FbKind,
        base: u32,
        stride: u32,
        len: u32,
        i: u32,
    },

    /// Execute the block whose base is entry `c[i]` of cell table `t`.
    FbT {
        kind: FbKind,
        t: u32,
        i: u32,
    },
    /// Check `c[i] < n`; the fault names the array `messages[m]`.
    Chk {
        i: u32,
        n: u32,
        m: u32,
    },
    /// Load the cell entry `c[i]` of cell table `t` names.
    LdT {
        d: u32,
        t: u32,
        i: u32,
    },
    /// Store into the cell entry `c[i]` of cell table `t` names.
    StT {
        t: u32,
        i: u32,
        a: u32,
    },

    Jmp {
        t: u32,
    },
    Jz {
        c: u32,
        t: u32,
    },
    Jnz {
        c: u32,
        t: u32,
    },
    /// Jump through jump table `t` on the value of cell `x`.
    JTab {
        x: u32,
        t: u32,
    },
    /// Backward jump, charged against the per-scan loop budget.
    Loop {
        t: u32,
    },
    Now {
        d: u32,
    },
    /// Quality of layout variable `v` as USINT (0 good, 1 bad, 2 stale).
    Quality {
        d: u32,
        v: u32,
    },
    /// Age of layout variable `v`'s data as TIME: `now - stamp`, never negative.
    Age {
        d: u32,
        v: u32,
    },
    /// Quality of element `c[i]` of image table `t`.
    QualityX {
        d: u32,
        t: u32,
        i: u32,
    },
    /// Age of element `c[i]` of image table `t`.
    AgeX {
        d: u32,
        t: u32,
        i: u32,
    },
    Trap {
        m: u32,
    },

    // STRINGs (see `crate::text`): `d`, `s`, `a`, `b` are header cells, `cap` the
    // destination's capacity (every write truncates to it).
    SMov {
        d: u32,
        s: u32,
        cap: u8,
    },
    SCat {
        d: u32,
        a: u32,
        b: u32,
        cap: u8,
    },
    /// `LEN(s)` into the INT cell `d`.
    SLen {
        d: u32,
        s: u32,
    },
    /// `LEFT(s, c[n])` (`n` a LINT cell).
    SLeft {
        d: u32,
        s: u32,
        n: u32,
        cap: u8,
    },
    SRight {
        d: u32,
        s: u32,
        n: u32,
        cap: u8,
    },
    /// `MID(s, c[l], c[p])` (LINT cells).
    SMid {
        d: u32,
        s: u32,
        l: u32,
        p: u32,
        cap: u8,
    },
    /// `FIND(a, b)` into the INT cell `d`.
    SFind {
        d: u32,
        a: u32,
        b: u32,
    },
    /// Comparison `k` (0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge) into the BOOL cell `d`.
    SCmp {
        d: u32,
        a: u32,
        b: u32,
        k: u8,
    },
    /// Load the STRING image variable at `s`.
    SLd {
        d: u32,
        cap: u8,
        s: Slot,
    },
    SSt {
        a: u32,
        s: Slot,
    },
    /// Load element `c[i]` of image table `t` (STRING variables).
    SLdX {
        d: u32,
        cap: u8,
        t: u32,
        i: u32,
    },
    SStX {
        t: u32,
        i: u32,
        a: u32,
    },
    /// Load the STRING whose header is cell `base + c[i] * stride` (`c[i] < len`).
    SLdC {
        d: u32,
        cap: u8,
        base: u32,
        stride: u32,
        len: u32,
        i: u32,
    },
    /// Store into it; `ecap` is the elements' capacity.
    SStC {
        a: u32,
        ecap: u8,
        base: u32,
        stride: u32,
        len: u32,
        i: u32,
    },
    /// Load the STRING whose header cell entry `c[i]` of cell table `t` names.
    SLdT {
        d: u32,
        cap: u8,
        t: u32,
        i: u32,
    },
    SStT {
        t: u32,
        ecap: u8,
        i: u32,
        a: u32,
    },
    /// A STRING to an integer of `n`'s type.
    SToI {
        d: u32,
        s: u32,
        n: Norm,
    },
    /// A STRING to REAL (`single`) or LREAL.
    SToF {
        d: u32,
        s: u32,
        single: bool,
    },
    // Pairs of instructions run as one dispatch (see `crate::verify::fuse`): each does
    // the work of the instruction it replaces and of the one after it (which stays in
    // place, for jumps that land on it), then continues after both.
    /// `LdB d` then `Jz d, t`.
    LdBJz {
        d: u32,
        area: u8,
        off: u32,
        bit: u8,
        t: u32,
    },
    /// Two `Ld4U` from one area.
    Ld4U2 {
        d: u32,
        off: u32,
        d2: u32,
        off2: u32,
        area: u8,
    },
    /// Two `LdB` from one area.
    LdB2 {
        d: u32,
        off: u32,
        d2: u32,
        off2: u32,
        area: u8,
        bit: u8,
        bit2: u8,
    },
    /// `Mov d, a` then `StB` of `d`.
    MovStB {
        d: u32,
        a: u32,
        area: u8,
        off: u32,
        bit: u8,
    },
    /// Two `StB` into one area.
    StB2 {
        a: u32,
        off: u32,
        a2: u32,
        off2: u32,
        area: u8,
        bit: u8,
        bit2: u8,
    },
    /// `Mov d, a` into an R_TRIG's CLK (cell `d` is its base), then the R_TRIG.
    MovRTrig {
        d: u32,
        a: u32,
    },
    /// `StB` of cell `a`, then `Jz a, t`.
    StBJz {
        a: u32,
        area: u8,
        off: u32,
        bit: u8,
        t: u32,
    },
    /// `Jz c, t` then `Jnz c2, t` (jump unless `c` and not `c2`).
    JzJnz {
        c: u32,
        c2: u32,
        t: u32,
    },
    /// A value to a STRING: `from` says how cell `s` reads.
    ToS {
        d: u32,
        s: u32,
        cap: u8,
        from: TextOf,
    },
}

/// How a value converted to a STRING reads its cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextOf {
    /// `TRUE` / `FALSE`.
    Bool,
    /// A signed integer.
    Signed,
    /// An unsigned integer or bit string.
    Unsigned,
    /// REAL.
    Real,
    /// LREAL.
    Lreal,
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_instruction_takes_at_most_24_bytes() {
        // The interpreter's speed depends on the code staying compact.
        assert_eq!(std::mem::size_of::<super::Instr>(), 24);
    }
}
