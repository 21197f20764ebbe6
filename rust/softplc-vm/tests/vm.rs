//! Loads hand-built IR documents against real layouts and runs them.

use softplc_core::{
    Area, IecType, Image, Layout, LayoutBuilder, Program, ProgramKind, ScanCtx, Value, VarDecl,
};
use softplc_vm::ir::{Document, Init};
use softplc_vm::{load_program, verify_bytes, CompiledProgram};

fn layout(vars: &[(&str, Area, IecType)]) -> Layout {
    let mut b = LayoutBuilder::new();
    for (n, a, t) in vars {
        b.declare(VarDecl::new(n, *a, *t, None)).unwrap();
    }
    b.build().unwrap()
}

fn scan(
    p: &mut CompiledProgram,
    layout: &Layout,
    img: &mut Image,
    now_ns: u64,
) -> Result<(), String> {
    let mut cx = ScanCtx {
        image: img,
        layout,
        now_ns,
        cycle: 0,
        period_ns: 1_000_000,
    };
    p.execute(&mut cx).map_err(|f| f.message)
}

fn get(layout: &Layout, img: &Image, name: &str) -> Value {
    img.load(layout.var(layout.find(name).unwrap()).slot)
}

fn set(layout: &Layout, img: &mut Image, name: &str, v: Value) {
    img.store(layout.var(layout.find(name).unwrap()).slot, v)
}

#[test]
fn int_addition_wraps_and_real_math_is_f32() {
    let l = layout(&[
        ("p.a", Area::Input, IecType::Int),
        ("p.b", Area::Input, IecType::Int),
        ("p.sum", Area::Output, IecType::Int),
        ("p.r", Area::Output, IecType::Real),
    ]);
    let mut d = Document::new("p");
    let (va, vb, vs, vr) = (
        d.var("p.a", "INT"),
        d.var("p.b", "INT"),
        d.var("p.sum", "INT"),
        d.var("p.r", "REAL"),
    );
    let (a, b, s) = (
        d.cell("INT", Init::Int(0)),
        d.cell("INT", Init::Int(0)),
        d.cell("INT", Init::Int(0)),
    );
    let (x, tenth) = (
        d.cell("REAL", Init::Float(0.0)),
        d.cell("REAL", Init::Float(0.1)),
    );
    d.op("ld", &[a, va]);
    d.op("ld", &[b, vb]);
    d.op("add", &[s, a, b]);
    d.op("st", &[vs, s]);
    d.op("conv", &[x, s]);
    d.op("mul", &[x, x, tenth]);
    d.op("st", &[vr, x]);
    let mut p = load_program(&d.encode(), &l).unwrap();
    assert_eq!(p.kind(), ProgramKind::Compiled);
    let mut img = Image::new(&l);
    set(&l, &mut img, "p.a", Value::Int(IecType::Int, 32767));
    set(&l, &mut img, "p.b", Value::Int(IecType::Int, 2));
    scan(&mut p, &l, &mut img, 0).unwrap();
    assert_eq!(get(&l, &img, "p.sum"), Value::Int(IecType::Int, -32767));
    assert_eq!(get(&l, &img, "p.r"), Value::Real(-32767.0f32 * 0.1f32));
}

#[test]
fn division_by_zero_faults_with_the_source_line() {
    let l = layout(&[("p.q", Area::Output, IecType::Dint)]);
    let mut d = Document::new("p");
    d.source = "prog.py".into();
    let vq = d.var("p.q", "DINT");
    let (x, z) = (d.cell("DINT", Init::Int(7)), d.cell("DINT", Init::Int(0)));
    d.op("div", &[x, x, z]);
    d.op("st", &[vq, x]);
    d.lines = vec![12, 13];
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    let e = scan(&mut p, &l, &mut img, 0).unwrap_err();
    assert!(
        e.contains("division by zero") && e.contains("prog.py:12"),
        "{e}"
    );
}

#[test]
fn a_timer_array_runs_in_a_loop_and_reset_restores_the_cells() {
    // for i in range(3): timers[i](IN=start); done[i] = timers[i].Q
    let l = layout(&[
        ("p.start", Area::Input, IecType::Bool),
        ("p.done[0]", Area::Output, IecType::Bool),
        ("p.done[1]", Area::Output, IecType::Bool),
        ("p.done[2]", Area::Output, IecType::Bool),
    ]);
    let mut d = Document::new("p");
    let vstart = d.var("p.start", "BOOL");
    let dones: Vec<i64> = (0..3)
        .map(|k| d.var(&format!("p.done[{k}]"), "BOOL"))
        .collect();
    d.tables.push(dones.iter().map(|v| *v as u32).collect());
    let base = d.cells.len() as i64;
    for k in 0..3 {
        for (j, (_, ty, _)) in softplc_vm::fb_layouts()[0].1.iter().enumerate() {
            let init = if j == 1 {
                Init::Int((k + 1) * 10_000_000)
            } else if *ty == "BOOL" {
                Init::Bool(false)
            } else {
                Init::Int(0)
            };
            d.cell(ty, init);
        }
    }
    let i = d.cell("LINT", Init::Int(0));
    let n = d.cell("LINT", Init::Int(3));
    let one = d.cell("LINT", Init::Int(1));
    let zero = d.cell("LINT", Init::Int(0));
    let cond = d.cell("BOOL", Init::Bool(false));
    let start = d.cell("BOOL", Init::Bool(false));
    let q = d.cell("BOOL", Init::Bool(false));
    d.op("ld", &[start, vstart]);
    d.op("mov", &[i, zero]);
    let top = d.op("lt", &[cond, i, n]);
    let jz = d.op("jz", &[cond, 0]);
    d.op("stc", &[base, 7, 3, i, start]);
    d.op("fbx.TON", &[base, 7, 3, i]);
    d.op("ldc", &[q, base + 2, 7, 3, i]);
    d.op("stx", &[0, i, q]);
    d.op("add", &[i, i, one]);
    d.op("loop", &[top]);
    let end = d.code.len() as i64;
    d.code[jz as usize].1[1] = end;
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    set(&l, &mut img, "p.start", Value::Bool(true));
    let ms = 1_000_000u64;
    let mut seen = vec![];
    for k in 0..5 {
        scan(&mut p, &l, &mut img, k * 10 * ms).unwrap();
        seen.push(
            (0..3)
                .map(|j| get(&l, &img, &format!("p.done[{j}]")) == Value::Bool(true))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(seen[0], [false, false, false]);
    assert_eq!(seen[1], [true, false, false]);
    assert_eq!(seen[2], [true, true, false]);
    assert_eq!(seen[3], [true, true, true]);
    p.reset();
    assert_eq!(p.cell(base as usize + 2), Value::Bool(false));
}

#[test]
fn index_out_of_range_faults() {
    let l = layout(&[("p.x", Area::Memory, IecType::Int)]);
    let mut d = Document::new("p");
    let arr = d.cell("INT", Init::Int(0));
    d.cell("INT", Init::Int(0));
    let i = d.cell("DINT", Init::Int(2));
    let v = d.cell("INT", Init::Int(0));
    d.op("ldc", &[v, arr, 1, 2, i]);
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    let e = scan(&mut p, &l, &mut img, 0).unwrap_err();
    assert!(e.contains("array index 2 out of range 0..1"), "{e}");
}

#[test]
fn verifier_rejects_bad_ir_with_clear_messages() {
    let l = layout(&[
        ("p.in", Area::Input, IecType::Bool),
        ("p.n", Area::Output, IecType::Int),
    ]);
    type Case = (Box<dyn Fn(&mut Document)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            Box::new(|d| {
                d.op("mov", &[0, 99]);
            }),
            "cell 99 does not exist",
        ),
        (
            Box::new(|d| {
                d.op("add", &[0, 0, 1]);
            }),
            "operands disagree",
        ),
        (
            Box::new(|d| {
                d.op("jmp", &[57]);
            }),
            "jump target 57",
        ),
        (
            Box::new(|d| {
                d.op("jz", &[1, 0]);
            }),
            "jump target 0 must be after",
        ),
        (
            Box::new(|d| {
                d.op("loop", &[5]);
            }),
            "loop target 5",
        ),
        (
            Box::new(|d| {
                d.op("st", &[0, 1]);
            }),
            "stores into input variable \"p.in\"",
        ),
        (
            Box::new(|d| {
                d.op("ld", &[1, 1]);
            }),
            "variable 1 is INT, cell 1 is BOOL",
        ),
        (
            Box::new(|d| {
                d.op("fb.TON", &[0]);
            }),
            "TON instance at cell 0",
        ),
        (
            Box::new(|d| {
                d.op("ldc", &[0, 0, 1, 5, 0]);
            }),
            "past the end",
        ),
        (
            Box::new(|d| {
                d.op("frobnicate", &[]);
            }),
            "unknown operation",
        ),
        (
            Box::new(|d| {
                d.op("sqrt", &[0, 0]);
            }),
            "needs REAL or LREAL",
        ),
        (
            Box::new(|d| {
                d.op("add", &[0]);
            }),
            "expected 3 operands",
        ),
        (
            Box::new(|d| {
                d.op("trap", &[3]);
            }),
            "message 3 does not exist",
        ),
        (
            Box::new(|d| {
                d.op("conv", &[1, 2]);
            }),
            "no conversion from REAL to BOOL",
        ),
    ];
    for (build, want) in cases {
        let mut d = Document::new("p");
        d.var("p.in", "BOOL");
        d.var("p.n", "INT");
        d.cell("INT", Init::Int(0));
        d.cell("BOOL", Init::Bool(false));
        d.cell("REAL", Init::Float(0.0));
        build(&mut d);
        let e = match load_program(&d.encode(), &l) {
            Ok(_) => panic!("accepted bad IR, expected {want:?}"),
            Err(e) => e.message,
        };
        assert!(e.contains(want), "expected {want:?} in {e:?}");
    }
    let mut d = Document::new("p");
    d.var("p.gone", "INT");
    let e = load_program(&d.encode(), &l).err().unwrap().message;
    assert!(e.contains("\"p.gone\" is not declared"), "{e}");
    let mut d = Document::new("p");
    d.var("p.n", "DINT");
    let e = load_program(&d.encode(), &l).err().unwrap().message;
    assert!(e.contains("is INT in the engine but DINT"), "{e}");
    let mut d = Document::new("p");
    d.cell("SINT", Init::Int(300));
    assert!(verify_bytes(&d.encode())
        .unwrap_err()
        .message
        .contains("does not fit SINT"));
}

#[test]
fn math_errors_and_bit_access() {
    let l = layout(&[
        ("p.b", Area::Output, IecType::Bool),
        ("p.w", Area::Output, IecType::Uint),
    ]);
    let mut d = Document::new("p");
    let (vb, vw) = (d.var("p.b", "BOOL"), d.var("p.w", "UINT"));
    let w = d.cell("UINT", Init::Int(0b1010));
    let k = d.cell("SINT", Init::Int(3));
    let b = d.cell("BOOL", Init::Bool(false));
    let t = d.cell("BOOL", Init::Bool(true));
    let k15 = d.cell("SINT", Init::Int(15));
    d.op("getbit", &[b, w, k]);
    d.op("st", &[vb, b]);
    d.op("setbit", &[w, w, k15, t]);
    d.op("st", &[vw, w]);
    let neg = d.cell("REAL", Init::Float(-1.0));
    d.op("sqrt", &[neg, neg]);
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    let e = scan(&mut p, &l, &mut img, 0).unwrap_err();
    assert!(e.contains("math error in SQRT"), "{e}");
    assert_eq!(get(&l, &img, "p.b"), Value::Bool(true));
    assert_eq!(
        get(&l, &img, "p.w"),
        Value::UInt(IecType::Uint, 0b1000_0000_0000_1010)
    );
}
