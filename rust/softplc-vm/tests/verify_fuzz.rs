//! Crafted and mutated intermediate forms: the verifier and loader answer every one of
//! them with `Ok` or an error, never a panic, and a program that verifies runs without
//! panicking (it may fault). A small deterministic PRNG drives the cases, so a failure
//! names a seed that reproduces it.

use std::panic::{catch_unwind, AssertUnwindSafe};

/// No watchdog here: the abort flag stays down.
static NO_ABORT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

use softplc_core::{Area, IecType, Image, Layout, LayoutBuilder, Program, ScanCtx, Value, VarDecl};
use softplc_vm::fb;
use softplc_vm::ir::{Document, Init};
use softplc_vm::{load_program, verify_bytes};

/// xorshift64*: enough randomness for test cases, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const TYPES: [&str; 12] = [
    "BOOL", "SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT", "REAL", "LREAL",
    "TIME",
];

const OPS: [&str; 50] = [
    "mov", "conv", "add", "sub", "mul", "div", "mod", "trunc", "floordiv", "floormod", "neg",
    "abs", "and", "or", "xor", "not", "shl", "shr", "eq", "ne", "lt", "le", "gt", "ge", "min",
    "max", "sel", "getbit", "setbit", "ld", "st", "ldx", "stx", "ldc", "stc", "jmp", "jz", "jnz",
    "loop", "quality", "age", "qualityx", "agex", "now", "trap", "sqrt", "sin", "exp", "ln",
    "bogus",
];

/// Values that break naive range arithmetic (`base + (len - 1) * stride`, casts to u32).
const EXTREMES: [i64; 14] = [
    i64::MIN,
    i64::MIN + 1,
    -1,
    0,
    1,
    2,
    i64::MAX,
    i64::MAX - 1,
    i64::MAX / 2,
    i64::MAX / 2 + 1,
    u32::MAX as i64,
    u32::MAX as i64 + 1,
    1 << 62,
    -(1 << 62),
];

const VARS: [(&str, Area, IecType); 6] = [
    ("p.b", Area::Input, IecType::Bool),
    ("p.i", Area::Input, IecType::Int),
    ("p.o", Area::Output, IecType::Dint),
    ("p.r", Area::Output, IecType::Real),
    ("p.t", Area::Memory, IecType::Time),
    ("p.u", Area::Memory, IecType::Ulint),
];

fn layout() -> Layout {
    let mut b = LayoutBuilder::new();
    for (n, a, t) in VARS {
        b.declare(VarDecl::new(n, a, t, None)).unwrap();
    }
    b.build().unwrap()
}

fn init_for(rng: &mut Rng, ty: &str) -> Init {
    match (ty, rng.below(6)) {
        (_, 0) => Init::Int(*rng.pick(&EXTREMES)),
        (_, 1) => Init::UInt(rng.next()),
        (_, 2) => Init::Float(f64::from_bits(rng.next())),
        ("BOOL", _) => Init::Bool(rng.chance(2)),
        ("REAL" | "LREAL", _) => Init::Float(rng.below(2000) as f64 / 7.0 - 100.0),
        _ => Init::Int(rng.below(200) as i64 - 100),
    }
}

fn operand(rng: &mut Rng, cells: usize, code: usize) -> i64 {
    match rng.below(10) {
        0 => *rng.pick(&EXTREMES),
        1 => rng.next() as i64,
        2 => rng.below(code + 2) as i64,
        3 => rng.below(16) as i64,
        _ => rng.below(cells.max(1) + 1) as i64,
    }
}

/// A random document: cells of random types (with whole block instances among them),
/// variables, tables and instructions whose operands are mostly plausible indices.
fn random_document(rng: &mut Rng) -> Document {
    let mut d = Document::new("p");
    d.source = "fuzz.py".to_string();
    for _ in 0..rng.below(4) {
        let (n, _, t) = *rng.pick(&VARS);
        let tn = if rng.chance(8) { "WORD" } else { t.name() };
        d.var(if rng.chance(10) { "p.nope" } else { n }, tn);
    }
    for _ in 0..rng.below(3) {
        let nv = d.vars.len().max(1);
        let t = (0..1 + rng.below(3))
            .map(|_| rng.below(nv + 1) as u32)
            .collect();
        d.tables.push(t);
    }
    let mut fbs = Vec::new();
    for _ in 0..rng.below(24) {
        if rng.chance(6) {
            let kind = *rng.pick(&fb::ALL);
            fbs.push((kind, d.cells.len()));
            for f in kind.fields() {
                let tn = f.ty.name();
                let init = if f.ty == IecType::Bool {
                    Init::Bool(false)
                } else if f.ty == IecType::Real || f.ty == IecType::Lreal {
                    Init::Float(0.0)
                } else {
                    Init::Int(0)
                };
                d.cell(tn, init);
            }
        } else {
            let tn = if rng.chance(40) {
                "STRING"
            } else {
                *rng.pick(&TYPES)
            };
            let init = init_for(rng, tn);
            d.cell(tn, init);
        }
    }
    let n = rng.below(20);
    for pc in 0..n {
        if !fbs.is_empty() && rng.chance(5) {
            let (kind, at) = *rng.pick(&fbs);
            if rng.chance(2) {
                d.op(&format!("fb.{}", kind.name()), &[at as i64]);
            } else {
                let args = [
                    at as i64,
                    kind.size() as i64,
                    1,
                    operand(rng, d.cells.len(), n),
                ];
                d.op(&format!("fbx.{}", kind.name()), &args);
            }
            continue;
        }
        let op = *rng.pick(&OPS);
        let arity = if rng.chance(12) {
            rng.below(6)
        } else {
            match op {
                "jmp" | "loop" | "now" | "trap" => 1,
                "mov" | "conv" | "trunc" | "neg" | "abs" | "not" | "ld" | "st" | "jz" | "jnz"
                | "quality" | "age" | "sqrt" | "sin" | "exp" | "ln" => 2,
                "sel" | "setbit" => 4,
                "ldc" | "stc" => 5,
                _ => 3,
            }
        };
        let mut args: Vec<i64> = (0..arity).map(|_| operand(rng, d.cells.len(), n)).collect();
        if matches!(op, "jmp" | "jz" | "jnz") && rng.chance(2) {
            if let Some(last) = args.last_mut() {
                *last = (pc + 1 + rng.below(n - pc)) as i64;
            }
        }
        d.op(op, &args);
    }
    if rng.chance(3) {
        d.lines = (0..d.code.len() + rng.below(2)).map(|k| k as u32).collect();
    }
    if rng.chance(2) {
        d.messages.push("trap".to_string());
    }
    if rng.chance(4) {
        d.files = (0..rng.below(3)).map(|k| format!("f{k}.py")).collect();
        d.file_of = (0..d.code.len() + rng.below(2))
            .map(|_| rng.below(d.files.len() + 1) as u32)
            .collect();
    }
    d
}

/// A document built to be well typed (so it usually verifies and the interpreter runs
/// it): DINT, BOOL and TIME cells, block instances, and instructions whose operands
/// have the types the operation wants, with an occasional wild operand.
fn typed_document(rng: &mut Rng) -> Document {
    let mut d = Document::new("p");
    let vo = d.var("p.o", "DINT");
    let vb = d.var("p.b", "BOOL");
    let ints: Vec<i64> = (0..6)
        .map(|_| d.cell("DINT", Init::Int(rng.below(64) as i64 - 8)))
        .collect();
    let bools: Vec<i64> = (0..3)
        .map(|_| d.cell("BOOL", Init::Bool(rng.chance(2))))
        .collect();
    let time = d.cell("TIME", Init::Int(0));
    let mut fbs = Vec::new();
    for _ in 0..rng.below(3) {
        let kind = *rng.pick(&fb::ALL);
        let at = d.cells.len() as i64;
        for f in kind.fields() {
            let init = match f.ty {
                IecType::Bool => Init::Bool(false),
                IecType::Real | IecType::Lreal => Init::Float(0.0),
                _ => Init::Int(0),
            };
            d.cell(f.ty.name(), init);
        }
        fbs.push((kind, at));
    }
    d.messages.push("trapped".to_string());
    let n = 1 + rng.below(24);
    for pc in 0..n {
        let i = |rng: &mut Rng| *rng.pick(&ints);
        let b = |rng: &mut Rng| *rng.pick(&bools);
        let fwd = |rng: &mut Rng| (pc + 1 + rng.below(n - pc)) as i64;
        let k = rng.below(14);
        let (op, mut args): (String, Vec<i64>) = match k {
            0 => {
                let op = *rng.pick(&[
                    "add", "sub", "mul", "div", "mod", "and", "or", "xor", "min", "max", "shl",
                    "shr",
                ]);
                (op.into(), vec![i(rng), i(rng), i(rng)])
            }
            1 => {
                let op = *rng.pick(&["neg", "abs", "not", "mov"]);
                (op.into(), vec![i(rng), i(rng)])
            }
            2 => {
                let op = *rng.pick(&["eq", "ne", "lt", "le", "gt", "ge"]);
                (op.into(), vec![b(rng), i(rng), i(rng)])
            }
            3 => ("sel".into(), vec![i(rng), b(rng), i(rng), i(rng)]),
            4 => ("jz".into(), vec![b(rng), fwd(rng)]),
            5 => ("jmp".into(), vec![fwd(rng)]),
            6 => ("getbit".into(), vec![b(rng), i(rng), i(rng)]),
            7 => ("setbit".into(), vec![i(rng), i(rng), i(rng), b(rng)]),
            8 => ("st".into(), vec![vo, i(rng)]),
            9 => ("ld".into(), vec![b(rng), vb]),
            10 => {
                let op = if rng.chance(2) { "ldc" } else { "stc" };
                let len = 1 + rng.below(ints.len()) as i64;
                let base = ints[0] + rng.below(ints.len() - len as usize + 1) as i64;
                let (v, x) = (i(rng), i(rng));
                if op == "ldc" {
                    (op.into(), vec![v, base, 1, len, x])
                } else {
                    (op.into(), vec![base, 1, len, x, v])
                }
            }
            11 if !fbs.is_empty() => {
                let (kind, at) = *rng.pick(&fbs);
                if rng.chance(2) {
                    (format!("fb.{}", kind.name()), vec![at])
                } else {
                    let args = vec![at, kind.size() as i64, 1, i(rng)];
                    (format!("fbx.{}", kind.name()), args)
                }
            }
            12 if rng.chance(4) => ("loop".into(), vec![rng.below(pc + 1) as i64]),
            13 if rng.chance(4) => ("trap".into(), vec![0]),
            _ => ("now".into(), vec![time]),
        };
        if rng.chance(25) {
            let at = rng.below(args.len());
            args[at] = *rng.pick(&EXTREMES);
        }
        d.op(&op, &args);
    }
    d
}

/// A document that verifies: arrays and block arrays read and written with a run-time
/// index, so mutating one operand hits the range checks.
fn valid_document() -> Document {
    let mut d = Document::new("p");
    let vi = d.var("p.i", "INT");
    let vo = d.var("p.o", "DINT");
    let arr = d.cell("DINT", Init::Int(0));
    d.cell("DINT", Init::Int(1));
    d.cell("DINT", Init::Int(2));
    let base = d.cells.len() as i64;
    for _ in 0..2 {
        for f in fb::FbKind::Ctu.fields() {
            let init = if f.ty == IecType::Bool {
                Init::Bool(false)
            } else {
                Init::Int(3)
            };
            d.cell(f.ty.name(), init);
        }
    }
    let stride = fb::FbKind::Ctu.size() as i64;
    let i = d.cell("INT", Init::Int(0));
    let v = d.cell("DINT", Init::Int(0));
    let one = d.cell("INT", Init::Int(1));
    let bad = d.cell("BOOL", Init::Bool(false));
    d.op("ld", &[i, vi]);
    d.op("and", &[i, i, one]);
    d.op("ldc", &[v, arr, 1, 3, i]);
    d.op("stc", &[arr, 1, 3, i, v]);
    d.op("fbx.CTU", &[base, stride, 2, i]);
    d.op("fb.CTU", &[base + stride]);
    d.op("shl", &[v, v, i]);
    d.op("st", &[vo, v]);
    let jz = d.op("jz", &[bad, 0]);
    d.op("trap", &[0]);
    d.code[jz as usize].1[1] = d.code.len() as i64;
    d.messages.push("never".to_string());
    d.lines = (1..=d.code.len() as u32).collect();
    d
}

/// Loads `bytes` both ways; a program that loads runs a few scans, unless it has a
/// backward jump (a random loop usually spins until the interpreter's budget of 10^8
/// iterations runs out: correct, but too slow for a test). Panics propagate.
fn exercise(bytes: &[u8], l: &Layout, rng: &mut Rng) -> bool {
    let _ = verify_bytes(bytes);
    let Ok(mut p) = load_program(bytes, l) else {
        return false;
    };
    let loops = Document::decode(bytes)
        .map(|d| d.code.iter().any(|(op, _)| op == "loop"))
        .unwrap_or(true);
    if loops {
        return true;
    }
    let mut img = Image::new(l);
    let (b, i) = (l.find("p.b").unwrap(), l.find("p.i").unwrap());
    for k in 0..3u64 {
        let bits = rng.next();
        img.store(l.var(b).slot, Value::Bool(bits & 1 == 1));
        img.store(
            l.var(i).slot,
            Value::Int(IecType::Int, (bits >> 8) as i16 as i64),
        );
        let mut cx = ScanCtx {
            image: &mut img,
            layout: l,
            now_ns: k * 7_000_000,
            cycle: k,
            period_ns: 1_000_000,
            abort: &NO_ABORT,
        };
        if p.execute(&mut cx).is_err() {
            break;
        }
    }
    true
}

fn run_case(seed: u64, what: &str, f: impl FnOnce() -> bool) -> bool {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(loaded) => loaded,
        Err(_) => panic!("{what} with seed {seed} panicked"),
    }
}

#[test]
fn random_documents_give_errors_never_panics() {
    let l = layout();
    let mut loaded = 0;
    for seed in 1..=600u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let doc = if seed % 2 == 0 {
            typed_document(&mut rng)
        } else {
            random_document(&mut rng)
        };
        let bytes = doc.encode();
        loaded += run_case(seed, "random document", || exercise(&bytes, &l, &mut rng)) as usize;
    }
    // Guards the generator: many documents must verify, or the interpreter goes untested.
    assert!(loaded > 100, "only {loaded} random documents verified");
}

#[test]
fn mutated_operands_give_errors_never_panics() {
    let l = layout();
    let base = valid_document();
    assert!(
        load_program(&base.encode(), &l).is_ok(),
        "the base document must verify"
    );
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1);
        let mut doc = base.clone();
        for _ in 0..1 + rng.below(3) {
            let pc = rng.below(doc.code.len());
            let args = &mut doc.code[pc].1;
            if args.is_empty() {
                continue;
            }
            let k = rng.below(args.len());
            args[k] = if rng.chance(3) {
                rng.next() as i64
            } else {
                *rng.pick(&EXTREMES)
            };
        }
        let bytes = doc.encode();
        run_case(seed, "mutated document", || exercise(&bytes, &l, &mut rng));
    }
}

#[test]
fn overflowing_array_ranges_are_errors() {
    let l = layout();
    for (base, stride, len) in [
        (0, i64::MAX, 3),
        (i64::MAX, 1, 2),
        (1, 1 << 62, 5),
        (0, 1, i64::MAX),
        (0, u32::MAX as i64 + 1, 1),
    ] {
        let mut d = Document::new("p");
        let v = d.cell("DINT", Init::Int(0));
        let i = d.cell("DINT", Init::Int(0));
        d.op("ldc", &[v, base, stride, len, i]);
        let e = load_program(&d.encode(), &l)
            .err()
            .expect("must be rejected");
        assert!(e.to_string().contains("past the end"), "{e}");
    }
}

#[test]
fn mutated_bytes_give_errors_never_panics() {
    let l = layout();
    let good = valid_document().encode();
    for seed in 1..=400u64 {
        let mut rng = Rng(seed.wrapping_mul(0xA076_1D64_78BD_642F) | 1);
        let mut bytes = good.clone();
        match rng.below(3) {
            0 => bytes.truncate(rng.below(bytes.len())),
            _ => {
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.next() as u8;
                }
            }
        }
        run_case(seed, "mutated bytes", || exercise(&bytes, &l, &mut rng));
    }
}
