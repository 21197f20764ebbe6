//! The standard function blocks, run on a block of cells.
//!
//! Each instance of a standard block owns a contiguous run of cells laid out as
//! [`FbKind::fields`] says: inputs first, then outputs, then internal state. The compiler
//! writes inputs into the instance's cells, executes `fb.<KIND> base`, and reads outputs
//! back. Timers, counters, edges and bistables follow `docs/iec-function-blocks.md` (MatIEC);
//! PID, RAMP and HYSTERESIS follow the feedback blocks of IEC 61131-3 ed. 1 annex, with
//! the details documented in `docs/programs.md`. `python/softplc/stdlib/blocks.py` holds
//! the reference twins.
//!
//! Real-time notes: [`exec`] never allocates, locks or makes syscalls.

use softplc_core::IecType;

/// Which standard block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FbKind {
    /// On-delay timer.
    Ton,
    /// Off-delay timer.
    Tof,
    /// Pulse timer.
    Tp,
    /// Up counter.
    Ctu,
    /// Down counter.
    Ctd,
    /// Up-down counter.
    Ctud,
    /// Rising edge.
    RTrig,
    /// Falling edge.
    FTrig,
    /// Set-dominant bistable.
    Sr,
    /// Reset-dominant bistable.
    Rs,
    /// Two-point switch with a dead band.
    Hysteresis,
    /// Linear ramp from X0 to X1 over TR.
    Ramp,
    /// PID controller with output limits, anti-windup and bumpless manual/auto.
    Pid,
}

/// What a field of a block is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Set by the caller (keeps its value between calls).
    Input,
    /// Read by the caller.
    Output,
    /// The block's own memory.
    Internal,
}

/// One field of a standard block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// Name (IEC spelling).
    pub name: &'static str,
    /// Type.
    pub ty: IecType,
    /// Role.
    pub role: Role,
}

const fn f(name: &'static str, ty: IecType, role: Role) -> Field {
    Field { name, ty, role }
}

use IecType::{Bool as B, Int as I, Lreal as LR, Real as R, Time as T, Usint as U8};
use Role::{Input as In, Internal as Mem, Output as Out};

const TIMER: [Field; 7] = [
    f("IN", B, In),
    f("PT", T, In),
    f("Q", B, Out),
    f("ET", T, Out),
    f("STATE", U8, Mem),
    f("PREV_IN", B, Mem),
    f("START", T, Mem),
];
const CTU: [Field; 6] = [
    f("CU", B, In),
    f("R", B, In),
    f("PV", I, In),
    f("Q", B, Out),
    f("CV", I, Out),
    f("CU_M", B, Mem),
];
const CTD: [Field; 6] = [
    f("CD", B, In),
    f("LD", B, In),
    f("PV", I, In),
    f("Q", B, Out),
    f("CV", I, Out),
    f("CD_M", B, Mem),
];
const CTUD: [Field; 10] = [
    f("CU", B, In),
    f("CD", B, In),
    f("R", B, In),
    f("LD", B, In),
    f("PV", I, In),
    f("QU", B, Out),
    f("QD", B, Out),
    f("CV", I, Out),
    f("CU_M", B, Mem),
    f("CD_M", B, Mem),
];
const TRIG: [Field; 3] = [f("CLK", B, In), f("Q", B, Out), f("M", B, Mem)];
const SR: [Field; 3] = [f("S1", B, In), f("R", B, In), f("Q1", B, Out)];
const RS: [Field; 3] = [f("S", B, In), f("R1", B, In), f("Q1", B, Out)];
const HYST: [Field; 4] = [
    f("XIN1", R, In),
    f("XIN2", R, In),
    f("EPS", R, In),
    f("Q", B, Out),
];
const RAMP: [Field; 8] = [
    f("RUN", B, In),
    f("X0", R, In),
    f("X1", R, In),
    f("TR", T, In),
    f("XOUT", R, Out),
    f("BUSY", B, Out),
    f("PREV_RUN", B, Mem),
    f("START", T, Mem),
];
const PID: [Field; 14] = [
    f("AUTO", B, In),
    f("PV", R, In),
    f("SP", R, In),
    f("X0", R, In),
    f("KP", R, In),
    f("TI", T, In),
    f("TD", T, In),
    f("OUT_MIN", R, In),
    f("OUT_MAX", R, In),
    f("XOUT", R, Out),
    f("ITERM", LR, Mem),
    f("E_PREV", LR, Mem),
    f("T_PREV", T, Mem),
    f("INIT", B, Mem),
];

/// Every standard block, in a fixed order.
pub const ALL: [FbKind; 13] = [
    FbKind::Ton,
    FbKind::Tof,
    FbKind::Tp,
    FbKind::Ctu,
    FbKind::Ctd,
    FbKind::Ctud,
    FbKind::RTrig,
    FbKind::FTrig,
    FbKind::Sr,
    FbKind::Rs,
    FbKind::Hysteresis,
    FbKind::Ramp,
    FbKind::Pid,
];

impl FbKind {
    /// The IEC name (`TON`, `R_TRIG`).
    pub fn name(self) -> &'static str {
        match self {
            FbKind::Ton => "TON",
            FbKind::Tof => "TOF",
            FbKind::Tp => "TP",
            FbKind::Ctu => "CTU",
            FbKind::Ctd => "CTD",
            FbKind::Ctud => "CTUD",
            FbKind::RTrig => "R_TRIG",
            FbKind::FTrig => "F_TRIG",
            FbKind::Sr => "SR",
            FbKind::Rs => "RS",
            FbKind::Hysteresis => "HYSTERESIS",
            FbKind::Ramp => "RAMP",
            FbKind::Pid => "PID",
        }
    }

    /// Looks a block up by IEC name.
    pub fn from_name(name: &str) -> Option<FbKind> {
        ALL.iter().copied().find(|k| k.name() == name)
    }

    /// The cell layout of an instance.
    pub fn fields(self) -> &'static [Field] {
        match self {
            FbKind::Ton | FbKind::Tof | FbKind::Tp => &TIMER,
            FbKind::Ctu => &CTU,
            FbKind::Ctd => &CTD,
            FbKind::Ctud => &CTUD,
            FbKind::RTrig | FbKind::FTrig => &TRIG,
            FbKind::Sr => &SR,
            FbKind::Rs => &RS,
            FbKind::Hysteresis => &HYST,
            FbKind::Ramp => &RAMP,
            FbKind::Pid => &PID,
        }
    }

    /// Number of cells an instance takes.
    pub fn size(self) -> usize {
        self.fields().len()
    }
}

#[inline(always)]
fn b(c: &[u64], i: usize) -> bool {
    c[i] != 0
}
#[inline(always)]
fn t(c: &[u64], i: usize) -> i64 {
    c[i] as i64
}
#[inline(always)]
fn r(c: &[u64], i: usize) -> f32 {
    f32::from_bits(c[i] as u32)
}
#[inline(always)]
fn lr(c: &[u64], i: usize) -> f64 {
    f64::from_bits(c[i])
}
#[inline(always)]
fn set_b(c: &mut [u64], i: usize, v: bool) {
    c[i] = v as u64;
}
#[inline(always)]
fn set_t(c: &mut [u64], i: usize, v: i64) {
    c[i] = v as u64;
}
#[inline(always)]
fn set_r(c: &mut [u64], i: usize, v: f32) {
    c[i] = v.to_bits() as u64;
}
#[inline(always)]
fn set_lr(c: &mut [u64], i: usize, v: f64) {
    c[i] = v.to_bits();
}

/// `now - start >= pt`, the reference's `start + pt <= now` without the overflow.
#[inline(always)]
fn expired(now: i64, start: i64, pt: i64) -> bool {
    (now as i128) - (start as i128) >= pt as i128
}

/// Runs one call of a standard block on its cells (`c` starts at the instance).
/// `now` is the cycle's time in nanoseconds. Never allocates.
#[inline]
pub fn exec(kind: FbKind, c: &mut [u64], now: i64) {
    match kind {
        // The timers see an array of their own length, so the cell accesses inside
        // (inlined) need no bounds checks: the hot blocks of a scan.
        FbKind::Ton => ton(fixed::<7>(c), now),
        FbKind::Tof => tof(fixed::<7>(c), now),
        FbKind::Tp => tp(fixed::<7>(c), now),
        FbKind::Ctu => {
            // CU_T(CU) runs on every call, so an edge during R is consumed.
            let edge = b(c, 0) && !b(c, 5);
            set_b(c, 5, b(c, 0));
            let (pv, mut cv) = (c[2] as i64, c[4] as i64);
            if b(c, 1) {
                cv = 0;
            } else if edge && cv < pv {
                cv += 1;
            }
            c[4] = cv as u64;
            set_b(c, 3, cv >= pv);
        }
        FbKind::Ctd => {
            let edge = b(c, 0) && !b(c, 5);
            set_b(c, 5, b(c, 0));
            let (pv, mut cv) = (c[2] as i64, c[4] as i64);
            if b(c, 1) {
                cv = pv;
            } else if edge && cv > 0 {
                cv -= 1;
            }
            c[4] = cv as u64;
            set_b(c, 3, cv <= 0);
        }
        FbKind::Ctud => {
            let down = b(c, 1) && !b(c, 9);
            set_b(c, 9, b(c, 1));
            let up = b(c, 0) && !b(c, 8);
            set_b(c, 8, b(c, 0));
            let (pv, mut cv) = (c[4] as i64, c[7] as i64);
            if b(c, 2) {
                cv = 0;
            } else if b(c, 3) {
                cv = pv;
            } else if !(up && down) {
                if up && cv < pv {
                    cv += 1;
                } else if down && cv > 0 {
                    cv -= 1;
                }
            }
            c[7] = cv as u64;
            set_b(c, 5, cv >= pv);
            set_b(c, 6, cv <= 0);
        }
        FbKind::RTrig => r_trig(fixed::<3>(c)),
        FbKind::FTrig => {
            let c = fixed::<3>(c);
            // M starts TRUE (cell initial value), so there is no first-call pulse.
            let clk = b(c, 0);
            let q = !clk && !b(c, 2);
            set_b(c, 1, q);
            set_b(c, 2, !clk);
        }
        FbKind::Sr => {
            let q = b(c, 0) || (!b(c, 1) && b(c, 2));
            set_b(c, 2, q);
        }
        FbKind::Rs => {
            let q = !b(c, 1) && (b(c, 0) || b(c, 2));
            set_b(c, 2, q);
        }
        FbKind::Hysteresis => {
            let (x1, x2, eps) = (r(c, 0), r(c, 1), r(c, 2));
            if x1 > x2 + eps {
                set_b(c, 3, true);
            } else if x1 < x2 - eps {
                set_b(c, 3, false);
            }
        }
        FbKind::Ramp => ramp(c, now),
        FbKind::Pid => pid(c, now),
    }
}

/// An instance's cells as an array of its layout's length (the verifier checked the
/// layout, so the length always matches).
#[inline(always)]
fn fixed<const N: usize>(c: &mut [u64]) -> &mut [u64; N] {
    c.try_into()
        .expect("a block instance has its layout's length (verified)")
}

/// R_TRIG on its three cells (CLK, Q, M).
#[inline(always)]
pub(crate) fn r_trig(c: &mut [u64; 3]) {
    let clk = b(c, 0);
    let q = clk && !b(c, 2);
    set_b(c, 1, q);
    set_b(c, 2, clk);
}

/// TON on its seven cells (the layout of [`FbKind::Ton`]).
#[inline(always)]
pub(crate) fn ton(c: &mut [u64; 7], now: i64) {
    let (inp, pt, state, prev) = (b(c, 0), t(c, 1), c[4], b(c, 5));
    if state == 0 && !prev && inp {
        c[4] = 1;
        set_b(c, 2, false);
        set_t(c, 6, now);
    } else if !inp {
        set_t(c, 3, 0);
        set_b(c, 2, false);
        c[4] = 0;
    } else if state == 1 {
        let start = t(c, 6);
        if expired(now, start, pt) {
            c[4] = 2;
            set_b(c, 2, true);
            set_t(c, 3, pt);
        } else {
            set_t(c, 3, now.wrapping_sub(start));
        }
    }
    set_b(c, 5, inp);
}

#[inline(always)]
fn tof(c: &mut [u64; 7], now: i64) {
    let (inp, pt, state, prev) = (b(c, 0), t(c, 1), c[4], b(c, 5));
    if state == 0 && prev && !inp {
        c[4] = 1;
        set_t(c, 6, now);
    } else if inp {
        set_t(c, 3, 0);
        c[4] = 0;
    } else if state == 1 {
        let start = t(c, 6);
        if expired(now, start, pt) {
            c[4] = 2;
            set_t(c, 3, pt);
        } else {
            set_t(c, 3, now.wrapping_sub(start));
        }
    }
    let q = inp || c[4] == 1;
    set_b(c, 2, q);
    set_b(c, 5, inp);
}

#[inline(always)]
fn tp(c: &mut [u64; 7], now: i64) {
    let (inp, pt, prev) = (b(c, 0), t(c, 1), b(c, 5));
    if c[4] == 0 && !prev && inp {
        c[4] = 1;
        set_b(c, 2, true);
        set_t(c, 6, now);
    } else if c[4] == 1 {
        let start = t(c, 6);
        if expired(now, start, pt) {
            c[4] = 2;
            set_b(c, 2, false);
            set_t(c, 3, pt);
        } else {
            set_t(c, 3, now.wrapping_sub(start));
        }
    }
    if c[4] == 2 && !inp {
        set_t(c, 3, 0);
        c[4] = 0;
    }
    set_b(c, 5, inp);
}

/// RAMP: while RUN, XOUT goes linearly from X0 to X1 over TR (timed from the rising
/// edge of RUN) and then holds X1; while not RUN, XOUT follows X0. BUSY is TRUE while ramping.
fn ramp(c: &mut [u64], now: i64) {
    let run = b(c, 0);
    if run && !b(c, 6) {
        set_t(c, 7, now);
    }
    let (x0, x1, tr) = (r(c, 1), r(c, 2), t(c, 3));
    if !run {
        set_r(c, 4, x0);
        set_b(c, 5, false);
    } else {
        let elapsed = now.wrapping_sub(t(c, 7));
        if tr <= 0 || elapsed >= tr {
            set_r(c, 4, x1);
            set_b(c, 5, false);
        } else {
            let frac = elapsed as f64 / tr as f64;
            let (x0, x1) = (x0 as f64, x1 as f64);
            set_r(c, 4, (x0 + (x1 - x0) * frac) as f32);
            set_b(c, 5, true);
        }
    }
    set_b(c, 6, run);
}

/// PID in position form, computed in f64, with
/// - the time step taken from `now` (0 on the first call, so no I or D contribution);
/// - D on the error, with the previous error tracked in manual too (no kick on switch);
/// - output limits with back-calculation anti-windup: when the sum leaves
///   [OUT_MIN, OUT_MAX] the integral is corrected so that P + I + D equals the limit;
/// - bumpless transfer: in manual (AUTO = FALSE) XOUT follows X0 (limited) and the
///   integral tracks `XOUT - KP*e`, so the first automatic call continues from XOUT.
fn pid(c: &mut [u64], now: i64) {
    let e = r(c, 2) as f64 - r(c, 1) as f64;
    let (lo, hi) = (r(c, 7) as f64, r(c, 8) as f64);
    let kp = r(c, 4) as f64;
    let (ti, td) = (t(c, 5), t(c, 6));
    let dt = if b(c, 13) {
        now.wrapping_sub(t(c, 12)) as f64 * 1e-9
    } else {
        0.0
    };
    let mut i_term = lr(c, 10);
    let out;
    if !b(c, 0) {
        let mut x = r(c, 3) as f64;
        if x > hi {
            x = hi;
        } else if x < lo {
            x = lo;
        }
        out = x;
        i_term = out - kp * e;
    } else {
        let p = kp * e;
        let mut d = 0.0;
        if td > 0 && dt > 0.0 {
            d = kp * (td as f64 * 1e-9) * (e - lr(c, 11)) / dt;
        }
        if ti > 0 && dt > 0.0 {
            i_term += kp * dt / (ti as f64 * 1e-9) * e;
        }
        let mut x = p + i_term + d;
        if x > hi {
            i_term -= x - hi;
            x = hi;
        } else if x < lo {
            i_term += lo - x;
            x = lo;
        }
        out = x;
    }
    set_lr(c, 10, i_term);
    set_lr(c, 11, e);
    set_t(c, 12, now);
    set_b(c, 13, true);
    set_r(c, 9, out as f32);
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn inst(kind: FbKind) -> Vec<u64> {
        let mut v = vec![0u64; kind.size()];
        if kind == FbKind::FTrig {
            v[2] = 1;
        }
        v
    }

    #[test]
    fn ton_starts_on_first_call_with_in_true_and_expires_inclusively() {
        let mut c = inst(FbKind::Ton);
        c[0] = 1;
        c[1] = (100 * MS) as u64;
        exec(FbKind::Ton, &mut c, 0);
        assert_eq!((c[2], c[3]), (0, 0));
        exec(FbKind::Ton, &mut c, 50 * MS);
        assert_eq!((c[2], c[3] as i64), (0, 50 * MS));
        exec(FbKind::Ton, &mut c, 100 * MS);
        assert_eq!((c[2], c[3] as i64), (1, 100 * MS));
    }

    #[test]
    fn tof_holds_et_after_expiry() {
        let mut c = inst(FbKind::Tof);
        c[1] = (10 * MS) as u64;
        c[0] = 1;
        exec(FbKind::Tof, &mut c, 0);
        assert_eq!(c[2], 1);
        c[0] = 0;
        exec(FbKind::Tof, &mut c, MS);
        assert_eq!(c[2], 1);
        exec(FbKind::Tof, &mut c, 11 * MS);
        assert_eq!((c[2], c[3] as i64), (0, 10 * MS));
        exec(FbKind::Tof, &mut c, 20 * MS);
        assert_eq!(c[3] as i64, 10 * MS);
    }

    #[test]
    fn ctud_simultaneous_edges_cancel() {
        let mut c = inst(FbKind::Ctud);
        c[4] = 5;
        c[0] = 1;
        c[1] = 1;
        exec(FbKind::Ctud, &mut c, 0);
        assert_eq!(c[7], 0);
        c[0] = 0;
        c[1] = 0;
        exec(FbKind::Ctud, &mut c, 0);
        c[0] = 1;
        exec(FbKind::Ctud, &mut c, 0);
        assert_eq!(c[7], 1);
    }

    #[test]
    fn f_trig_gives_no_pulse_on_first_call() {
        let mut c = inst(FbKind::FTrig);
        exec(FbKind::FTrig, &mut c, 0);
        assert_eq!(c[1], 0);
        c[0] = 1;
        exec(FbKind::FTrig, &mut c, 0);
        c[0] = 0;
        exec(FbKind::FTrig, &mut c, 0);
        assert_eq!(c[1], 1);
    }

    #[test]
    fn pid_limits_output_and_unwinds_at_once_when_error_reverses() {
        let mut c = inst(FbKind::Pid);
        let set_r = |c: &mut Vec<u64>, i: usize, v: f32| c[i] = v.to_bits() as u64;
        c[0] = 1;
        set_r(&mut c, 1, 0.0);
        set_r(&mut c, 2, 100.0);
        set_r(&mut c, 4, 1.0);
        c[5] = (1000 * MS) as u64;
        set_r(&mut c, 7, 0.0);
        set_r(&mut c, 8, 10.0);
        for k in 0..100 {
            exec(FbKind::Pid, &mut c, k * 100 * MS);
        }
        assert_eq!(f32::from_bits(c[9] as u32), 10.0);
        // Integral was held so that P + I = 10, so the error reversing leaves the
        // limit at once instead of after a long unwinding.
        set_r(&mut c, 1, 101.0);
        exec(FbKind::Pid, &mut c, 100 * 100 * MS);
        assert!(f32::from_bits(c[9] as u32) < 10.0);
    }
}
