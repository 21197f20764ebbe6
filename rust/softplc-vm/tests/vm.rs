//! Loads hand-built IR documents against real layouts and runs them.

use softplc_core::{
    Area, IecType, Image, Layout, LayoutBuilder, Program, ProgramKind, Quality, ScanCtx, Value,
    VarDecl,
};
use softplc_vm::ir::{Document, Init};
use softplc_vm::{load_program, verify_bytes, CompiledProgram};

/// No watchdog here: the abort flag stays down.
static NO_ABORT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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
        abort: &NO_ABORT,
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
        (
            Box::new(|d| {
                d.op("quality", &[0, 0]);
            }),
            "cell 0 is INT, expected USINT",
        ),
        (
            Box::new(|d| {
                d.op("age", &[1, 0]);
            }),
            "cell 1 is BOOL, expected TIME",
        ),
        (
            Box::new(|d| {
                let q = d.cell("USINT", Init::Int(0));
                d.op("quality", &[q, 7]);
            }),
            "variable 7 does not exist",
        ),
        (
            Box::new(|d| {
                let t = d.cell("TIME", Init::Int(0));
                d.op("agex", &[t, 4, 0]);
            }),
            "table 4 does not exist",
        ),
        (
            Box::new(|d| {
                let q = d.cell("USINT", Init::Int(0));
                d.tables.push(vec![1]);
                d.op("qualityx", &[q, 0, 2]);
            }),
            "cell 2 is REAL, expected an integer index",
        ),
        (
            Box::new(|d| {
                d.op("age", &[0]);
            }),
            "expected 2 operands",
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

#[test]
fn quality_and_age_read_the_layout_entry_of_the_variable_not_its_ir_index() {
    // The layout has other variables first, so IR variable 0 is layout variable 2.
    let l = layout(&[
        ("other.a", Area::Input, IecType::Int),
        ("other.b", Area::Input, IecType::Int),
        ("p.level", Area::Input, IecType::Real),
        ("p.sw[0]", Area::Input, IecType::Bool),
        ("p.sw[1]", Area::Input, IecType::Bool),
    ]);
    let mut d = Document::new("p");
    let vlevel = d.var("p.level", "REAL");
    let sw: Vec<u32> = (0..2)
        .map(|k| d.var(&format!("p.sw[{k}]"), "BOOL") as u32)
        .collect();
    d.tables.push(sw);
    let q = d.cell("USINT", Init::Int(9));
    let a = d.cell("TIME", Init::Int(-1));
    let i = d.cell("INT", Init::Int(1));
    let qx = d.cell("USINT", Init::Int(9));
    let ax = d.cell("TIME", Init::Int(-1));
    d.op("quality", &[q, vlevel]);
    d.op("age", &[a, vlevel]);
    d.op("qualityx", &[qx, 0, i]);
    d.op("agex", &[ax, 0, i]);
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    img.quality[2] = Quality::Bad;
    img.stamp_ns[2] = 1_000;
    img.quality[4] = Quality::Stale;
    img.stamp_ns[4] = 250;
    scan(&mut p, &l, &mut img, 41_000).unwrap();
    assert_eq!(p.cell(q as usize), Value::UInt(IecType::Usint, 1));
    assert_eq!(p.cell(a as usize), Value::Time(40_000));
    assert_eq!(p.cell(qx as usize), Value::UInt(IecType::Usint, 2));
    assert_eq!(p.cell(ax as usize), Value::Time(40_750));
    // A stamp ahead of now (a driver clock offset) gives age 0, never a negative age.
    img.quality[2] = Quality::Good;
    img.stamp_ns[2] = 50_000;
    scan(&mut p, &l, &mut img, 41_000).unwrap();
    assert_eq!(p.cell(q as usize), Value::UInt(IecType::Usint, 0));
    assert_eq!(p.cell(a as usize), Value::Time(0));
}

#[test]
fn an_indexed_quality_out_of_range_faults_and_a_short_image_is_refused() {
    let l = layout(&[
        ("p.sw[0]", Area::Input, IecType::Bool),
        ("p.sw[1]", Area::Input, IecType::Bool),
    ]);
    let mut d = Document::new("p");
    let sw: Vec<u32> = (0..2)
        .map(|k| d.var(&format!("p.sw[{k}]"), "BOOL") as u32)
        .collect();
    d.tables.push(sw);
    let q = d.cell("USINT", Init::Int(0));
    let i = d.cell("DINT", Init::Int(2));
    d.op("qualityx", &[q, 0, i]);
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    let e = scan(&mut p, &l, &mut img, 0).unwrap_err();
    assert!(e.contains("array index 2 out of range 0..1"), "{e}");
    img.quality.truncate(1);
    let e = scan(&mut p, &l, &mut img, 0).unwrap_err();
    assert!(e.contains("does not match the layout"), "{e}");
}

#[test]
fn a_fault_names_the_file_of_the_instruction_when_helpers_come_from_other_files() {
    let l = layout(&[("p.x", Area::Memory, IecType::Int)]);
    let mut d = Document::new("p");
    d.source = "main.py".to_string();
    let a = d.cell("INT", Init::Int(1));
    let z = d.cell("INT", Init::Int(0));
    d.op("add", &[a, a, a]);
    d.op("div", &[a, a, z]);
    d.lines = vec![7, 3];
    d.files = vec!["main.py".to_string(), "helpers.py".to_string()];
    d.file_of = vec![0, 1];
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    let e = scan(&mut p, &l, &mut img, 0).unwrap_err();
    assert!(e.contains("division by zero (helpers.py:3)"), "{e}");
    // Without the optional fields every line is in `source`.
    d.files.clear();
    d.file_of.clear();
    let mut p = load_program(&d.encode(), &l).unwrap();
    let e = scan(&mut p, &l, &mut img, 0).unwrap_err();
    assert!(e.contains("division by zero (main.py:3)"), "{e}");
    // The file table is checked like every other index.
    for (files, file_of, want) in [
        (
            vec!["main.py"],
            vec![0],
            "1 file indices for 2 instructions",
        ),
        (vec!["main.py"], vec![0, 1], "file index 1 does not exist"),
        (
            vec![],
            vec![0, 0],
            "2 file indices for 2 instructions and 0 files",
        ),
    ] {
        d.files = files.into_iter().map(String::from).collect();
        d.file_of = file_of;
        let e = load_program(&d.encode(), &l)
            .err()
            .expect("must be rejected");
        assert!(e.message.contains(want), "{want:?} in {:?}", e.message);
    }
}

#[test]
fn a_raised_abort_flag_stops_an_endless_loop_at_its_backward_jump() {
    let l = layout(&[("p.x", Area::Memory, IecType::Dint)]);
    let mut d = Document::new("p");
    let _ = d.var("p.x", "DINT");
    let one = d.cell("LINT", Init::Int(1));
    let i = d.cell("LINT", Init::Int(0));
    let top = d.op("add", &[i, i, one]);
    d.op("loop", &[top]);
    d.lines = vec![7, 8];
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    // The watchdog thread raised the flag while the loop ran.
    let abort = std::sync::atomic::AtomicBool::new(true);
    let mut cx = ScanCtx {
        image: &mut img,
        layout: &l,
        now_ns: 0,
        cycle: 0,
        period_ns: 1_000_000,
        abort: &abort,
    };
    let e = p.execute(&mut cx).unwrap_err().message;
    assert!(
        e.contains("stopped by the watchdog") && e.contains("line 8"),
        "{e}"
    );
    // One pass of the body ran, no more: the flag is checked on every backward jump.
    assert_eq!(p.cell(i as usize), Value::Int(IecType::Lint, 1));
}

#[test]
fn the_symbol_table_lists_the_stateful_cells_and_a_cell_can_be_written() {
    let l = layout(&[("p.q", Area::Output, IecType::Bool)]);
    let mut d = Document::new("p");
    let vq = d.var("p.q", "BOOL");
    // A TON instance: IN, PT, Q, ET, STATE, PREV_IN, START.
    let base = d.cell("BOOL", Init::Bool(false));
    d.cell("TIME", Init::Int(5_000_000));
    for (ty, init) in [
        ("BOOL", Init::Bool(false)),
        ("TIME", Init::Int(0)),
        ("USINT", Init::Int(0)),
        ("BOOL", Init::Bool(false)),
        ("TIME", Init::Int(0)),
    ] {
        d.cell(ty, init);
    }
    for (k, (f, ty, role)) in [
        ("IN", "BOOL", "input"),
        ("PT", "TIME", "input"),
        ("Q", "BOOL", "output"),
        ("ET", "TIME", "output"),
        ("STATE", "USINT", "internal"),
        ("PREV_IN", "BOOL", "internal"),
        ("START", "TIME", "internal"),
    ]
    .iter()
    .enumerate()
    {
        d.symbols.push((
            format!("p.step_timer.{f}"),
            ty.to_string(),
            role.to_string(),
            (base + k as i64) as u32,
        ));
    }
    d.op("fb.TON", &[base]);
    d.op("st", &[vq, base + 2]);
    let mut p = load_program(&d.encode(), &l).unwrap();
    assert_eq!(p.symbols().len(), 7);
    let et = p.symbol("p.step_timer.ET").unwrap().clone();
    assert_eq!(
        (et.ty, et.role, et.cell),
        (IecType::Time, softplc_vm::fb::Role::Output, base as u32 + 3)
    );
    // Migrated state: the timer was already running at IN = TRUE.
    let in_cell = p.symbol("p.step_timer.IN").unwrap().cell as usize;
    p.write_cell(in_cell, Value::Bool(true)).unwrap();
    let mut img = Image::new(&l);
    scan(&mut p, &l, &mut img, 0).unwrap();
    scan(&mut p, &l, &mut img, 6_000_000).unwrap();
    assert_eq!(get(&l, &img, "p.q"), Value::Bool(true));
    assert_eq!(p.cells()[et.cell as usize], 5_000_000);
    // A value that does not fit the cell's type is refused, and nothing is written.
    let state = p.symbol("p.step_timer.STATE").unwrap().cell as usize;
    let e = p
        .write_cell(state, Value::Int(IecType::Int, 300))
        .unwrap_err();
    assert!(e.contains("USINT"), "{e}");
    assert_eq!(p.cell(state), Value::UInt(IecType::Usint, 2));
    assert!(p.write_cell(99, Value::Bool(true)).is_err());
}

#[test]
fn a_symbol_of_the_wrong_type_or_a_repeated_path_is_refused() {
    let l = layout(&[]);
    let mut d = Document::new("p");
    let c = d.cell("INT", Init::Int(0));
    d.symbols
        .push(("p.b.x".into(), "REAL".into(), "internal".into(), c as u32));
    let e = load_program(&d.encode(), &l).err().unwrap().message;
    assert!(e.contains("\"p.b.x\"") && e.contains("INT"), "{e}");
    d.symbols[0].1 = "INT".into();
    d.symbols.push(d.symbols[0].clone());
    let e = load_program(&d.encode(), &l).err().unwrap().message;
    assert!(e.contains("repeated"), "{e}");
}

#[test]
fn an_index_fault_names_the_array_and_each_dimension_is_checked() {
    let l = layout(&[]);
    let mut d = Document::new("p");
    let i = d.cell("DINT", Init::Int(5));
    let j = d.cell("DINT", Init::Int(1));
    let v = d.cell("INT", Init::Int(0));
    let arr = d.cell("INT", Init::Int(0));
    for _ in 0..3 {
        d.cell("INT", Init::Int(0));
    }
    d.messages.push("p.grid (dimension 1)".into());
    d.messages.push("p.vals".into());
    d.ctables.push(vec![
        arr as u32,
        arr as u32 + 1,
        arr as u32 + 2,
        arr as u32 + 3,
    ]);
    d.op("chk", &[j, 2, 0]);
    d.op("ldt", &[v, 0, j]);
    let pc = d.op("ldc", &[v, arr, 1, 4, i]);
    d.index_names.push((pc as u32, 1));
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    let e = scan(&mut p, &l, &mut img, 0).unwrap_err();
    assert!(e.contains("index 5 of p.vals is out of range 0..3"), "{e}");
    p.write_cell(j as usize, Value::Int(IecType::Dint, 2))
        .unwrap();
    let e = scan(&mut p, &l, &mut img, 0).unwrap_err();
    assert!(
        e.contains("index 2 of p.grid (dimension 1) is out of range 0..1"),
        "{e}"
    );
}

#[test]
fn a_jump_table_jumps_on_the_value_and_takes_the_default_outside_it() {
    let l = layout(&[]);
    let mut d = Document::new("p");
    let x = d.cell("INT", Init::Int(0));
    let out = d.cell("INT", Init::Int(0));
    let (k10, k20, k99) = (
        d.cell("INT", Init::Int(10)),
        d.cell("INT", Init::Int(20)),
        d.cell("INT", Init::Int(99)),
    );
    // jtab x -1 [t(-1), t(0)] default
    d.op("jtab", &[x, -1, 2, 4, 6]);
    d.op("mov", &[out, k10]); // 1: unreachable filler
    d.op("mov", &[out, k10]); // 2: x == -1
    d.op("jmp", &[7]);
    d.op("mov", &[out, k20]); // 4: x == 0
    d.op("jmp", &[7]);
    d.op("mov", &[out, k99]); // 6: default
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    for (v, want) in [(0, 20), (-1, 10), (1, 99), (-2, 99), (i16::MIN as i64, 99)] {
        p.write_cell(x as usize, Value::Int(IecType::Int, v))
            .unwrap();
        scan(&mut p, &l, &mut img, 0).unwrap();
        assert_eq!(
            p.cell(out as usize),
            Value::Int(IecType::Int, want),
            "x = {v}"
        );
    }
    // A backward target or a REAL selector is refused.
    d.code[0].1 = vec![x, -1, 0, 4, 6];
    assert!(load_program(&d.encode(), &l)
        .err()
        .unwrap()
        .message
        .contains("jump target"));
    let r = d.cell("REAL", Init::Float(0.0));
    d.code[0].1 = vec![r, -1, 2, 4, 6];
    assert!(load_program(&d.encode(), &l).is_err());
}

/// A STRING(cap) in the document: its header cell with the initial text, then its data
/// cells.
fn string_cell(d: &mut Document, cap: u8, text: &str) -> i64 {
    let h = d.cell(&format!("STRING({cap})"), Init::Text(text.to_string()));
    for _ in 0..(cap as usize).div_ceil(8) {
        d.cell("STRDATA", Init::Int(0));
    }
    h
}

#[test]
fn strings_load_store_concatenate_and_truncate_to_the_destination() {
    let l = layout(&[
        ("p.name", Area::Input, IecType::String(20)),
        ("p.label", Area::Output, IecType::String(10)),
        ("p.n", Area::Output, IecType::Int),
        ("p.at", Area::Output, IecType::Int),
        ("p.less", Area::Output, IecType::Bool),
        ("p.v", Area::Output, IecType::Dint),
    ]);
    let mut d = Document::new("p");
    let (vname, vlabel, vn, vat, vless, vv) = (
        d.var("p.name", "STRING(20)"),
        d.var("p.label", "STRING(10)"),
        d.var("p.n", "INT"),
        d.var("p.at", "INT"),
        d.var("p.less", "BOOL"),
        d.var("p.v", "DINT"),
    );
    let name = string_cell(&mut d, 20, "");
    let prefix = string_cell(&mut d, 4, "id: ");
    let out = string_cell(&mut d, 10, "");
    let digits = string_cell(&mut d, 8, "");
    let (n, at, less, v) = (
        d.cell("INT", Init::Int(0)),
        d.cell("INT", Init::Int(0)),
        d.cell("BOOL", Init::Bool(false)),
        d.cell("DINT", Init::Int(0)),
    );
    let three = d.cell("LINT", Init::Int(3));
    d.op("sld", &[name, vname]);
    d.op("scat", &[out, prefix, name]);
    d.op("sst", &[vlabel, out]);
    d.op("slen", &[n, name]);
    d.op("st", &[vn, n]);
    d.op("sfind", &[at, name, prefix]);
    d.op("st", &[vat, at]);
    d.op("scmp", &[less, prefix, name, 2]);
    d.op("st", &[vless, less]);
    d.op("sright", &[digits, name, three]);
    d.op("stoi", &[v, digits]);
    d.op("st", &[vv, v]);
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    let slot = |n: &str| l.var(l.find(n).unwrap()).slot;
    img.set_text(slot("p.name"), b"conveyor 417");
    scan(&mut p, &l, &mut img, 0).unwrap();
    // "id: conveyor 417" truncated to the label's 10 characters.
    assert_eq!(img.text(slot("p.label")), b"id: convey");
    assert_eq!(get(&l, &img, "p.n"), Value::Int(IecType::Int, 12));
    assert_eq!(get(&l, &img, "p.at"), Value::Int(IecType::Int, 0));
    assert_eq!(get(&l, &img, "p.less"), Value::Bool(false)); // "id: " > "conveyor 417"
    assert_eq!(get(&l, &img, "p.v"), Value::Int(IecType::Dint, 417));
    assert_eq!(p.text(prefix as usize).unwrap(), b"id: ");
    p.write_text(prefix as usize, b"#12345").unwrap();
    assert_eq!(p.text(prefix as usize).unwrap(), b"#123");
    assert!(p
        .write_cell(prefix as usize, Value::Int(IecType::Int, 1))
        .is_err());
}

#[test]
fn the_verifier_keeps_string_cells_to_string_operations() {
    let l = layout(&[("p.s", Area::Output, IecType::String(8))]);
    let bad = |build: &dyn Fn(&mut Document)| {
        let mut d = Document::new("p");
        build(&mut d);
        match load_program(&d.encode(), &l) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    };
    let e = bad(&|d| {
        let s = string_cell(d, 8, "");
        let x = d.cell("INT", Init::Int(0));
        d.op("mov", &[x, s]);
    });
    assert!(e.contains("only string operations"), "{e}");
    let e = bad(&|d| {
        d.cell("STRING(9)", Init::Text(String::new()));
        d.cell("STRDATA", Init::Int(0));
    });
    assert!(e.contains("followed by 2 STRDATA cells"), "{e}");
    let e = bad(&|d| {
        string_cell(d, 3, "long text");
    });
    assert!(
        e.contains("initial text of 9 characters for a STRING(3)"),
        "{e}"
    );
    let e = bad(&|d| {
        let v = d.var("p.s", "STRING(8)");
        let x = d.cell("INT", Init::Int(0));
        d.op("ld", &[x, v]);
    });
    assert!(e.contains("STRING(8)"), "{e}");
    let e = bad(&|d| {
        let s = string_cell(d, 8, "");
        let x = d.cell("INT", Init::Int(0));
        d.op("sleft", &[s, s, x]);
    });
    assert!(e.contains("expected LINT"), "{e}");
}

#[test]
fn numbers_become_strings_and_strings_in_cell_arrays_index_at_run_time() {
    let l = layout(&[("p.out", Area::Output, IecType::String(12))]);
    let mut d = Document::new("p");
    let vout = d.var("p.out", "STRING(12)");
    let x = d.cell("REAL", Init::Float(0.1));
    let s = string_cell(&mut d, 12, "");
    // Two elements of STRING(4), stride 2.
    let e0 = string_cell(&mut d, 4, "ab");
    string_cell(&mut d, 4, "cd");
    let i = d.cell("DINT", Init::Int(1));
    let e = string_cell(&mut d, 4, "");
    d.op("sldc", &[e, e0, 2, 2, i]);
    d.op("tostr", &[s, x]);
    d.op("scat", &[s, s, e]);
    d.op("sst", &[vout, s]);
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    scan(&mut p, &l, &mut img, 0).unwrap();
    assert_eq!(img.text(l.var(l.find("p.out").unwrap()).slot), b"0.1cd");
}

#[test]
fn a_jump_onto_the_second_instruction_of_a_fused_pair_runs_it_alone() {
    let l = layout(&[
        ("p.a", Area::Input, IecType::Bool),
        ("p.f", Area::Input, IecType::Bool),
        ("p.out", Area::Output, IecType::Int),
    ]);
    let mut d = Document::new("p");
    let (va, vf, vout) = (
        d.var("p.a", "BOOL"),
        d.var("p.f", "BOOL"),
        d.var("p.out", "INT"),
    );
    let (x, f, out) = (
        d.cell("BOOL", Init::Bool(false)),
        d.cell("BOOL", Init::Bool(false)),
        d.cell("INT", Init::Int(0)),
    );
    let (one, two) = (d.cell("INT", Init::Int(1)), d.cell("INT", Init::Int(2)));
    d.op("ld", &[f, vf]); // 0
    d.op("jnz", &[f, 3]); // 1: past the load, onto the jz
    d.op("ld", &[x, va]); // 2: ld + jz run as one (LdBJz)
    d.op("jz", &[x, 6]); // 3
    d.op("mov", &[out, one]); // 4
    d.op("jmp", &[7]); // 5
    d.op("mov", &[out, two]); // 6
    d.op("st", &[vout, out]); // 7
    let mut p = load_program(&d.encode(), &l).unwrap();
    let mut img = Image::new(&l);
    set(&l, &mut img, "p.a", Value::Bool(true));
    scan(&mut p, &l, &mut img, 0).unwrap();
    assert_eq!(get(&l, &img, "p.out"), Value::Int(IecType::Int, 1));
    // Jumping onto the jz: x keeps its old value (false), so it jumps.
    p.reset();
    set(&l, &mut img, "p.f", Value::Bool(true));
    scan(&mut p, &l, &mut img, 0).unwrap();
    assert_eq!(get(&l, &img, "p.out"), Value::Int(IecType::Int, 2));
}
