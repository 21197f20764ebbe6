//! Scan-time benchmarks: a compiled program against a hand-written Rust equivalent.
//!
//! * `rungs`: the generated 1,000-rung program (tests/benchmarks/rungs.py);
//! * `alarms`: 256 alarm channels, an array of structures with a user function block
//!   each (tests/benchmarks/alarms.py).
//!
//! Usage: `softplc-benches rungs|alarms <program.ir> <cycles>`; prints one JSON object
//! with the per-scan medians and means (ns) of both, and whether their outputs agree.
//! Both run on the same layout and the same input sequence (10 ms virtual cycles).

use std::time::Instant;

/// No watchdog here: the abort flag stays down.
pub(crate) static NO_ABORT: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

use softplc_core::{Area, IecType, Image, Layout, LayoutBuilder, Program, ScanCtx, Slot, VarDecl};
use softplc_vm::ir::Document;

mod alarms;

pub(crate) const CYCLE_NS: u64 = 10_000_000;

/// An on-delay timer, written out by hand (MatIEC semantics, docs/iec-function-blocks.md).
#[derive(Default, Clone, Copy)]
pub(crate) struct Ton {
    state: u8,
    prev: bool,
    start: i64,
    q: bool,
    et: i64,
}

impl Ton {
    #[inline]
    fn call(&mut self, inp: bool, pt: i64, now: i64) {
        if self.state == 0 && !self.prev && inp {
            self.state = 1;
            self.q = false;
            self.start = now;
        } else if !inp {
            self.et = 0;
            self.q = false;
            self.state = 0;
        } else if self.state == 1 {
            if now - self.start >= pt {
                self.state = 2;
                self.q = true;
                self.et = pt;
            } else {
                self.et = now - self.start;
            }
        }
        self.prev = inp;
    }
}

/// An up counter, written out by hand.
#[derive(Default, Clone, Copy)]
struct Ctu {
    m: bool,
    cv: i16,
}

impl Ctu {
    #[inline]
    fn call(&mut self, cu: bool, r: bool, pv: i16) -> bool {
        let edge = cu && !self.m;
        self.m = cu;
        if r {
            self.cv = 0;
        } else if edge && self.cv < pv {
            self.cv += 1;
        }
        self.cv >= pv
    }
}

struct Native {
    ib: Vec<Slot>,
    ii: Vec<Slot>,
    ob: Vec<Slot>,
    oc: Vec<Slot>,
    oi: Vec<Slot>,
    ot: Vec<Slot>,
    ocv: Vec<Slot>,
    tm: Vec<Ton>,
    ct: Vec<Ctu>,
}

#[inline(always)]
pub(crate) fn rb(img: &Image, s: Slot) -> bool {
    img.areas[s.area.index()][s.offset as usize] >> s.bit & 1 != 0
}
#[inline(always)]
pub(crate) fn wb(img: &mut Image, s: Slot, v: bool) {
    let b = &mut img.areas[s.area.index()][s.offset as usize];
    *b = (*b & !(1 << s.bit)) | ((v as u8) << s.bit);
}
#[inline(always)]
fn ri(img: &Image, s: Slot) -> i16 {
    let o = s.offset as usize;
    let a = &img.areas[s.area.index()];
    i16::from_le_bytes([a[o], a[o + 1]])
}
#[inline(always)]
fn wi(img: &mut Image, s: Slot, v: i16) {
    let o = s.offset as usize;
    img.areas[s.area.index()][o..o + 2].copy_from_slice(&v.to_le_bytes());
}

/// IEC DIV on INT: truncates toward zero, wraps.
#[inline(always)]
fn div_int(a: i16, b: i16) -> i16 {
    a.wrapping_div(b)
}

impl Native {
    fn new(layout: &Layout) -> Native {
        let arr = |name: &str, n: usize| -> Vec<Slot> {
            (0..n)
                .map(|i| {
                    let id = layout
                        .find(&format!("rungs.{name}[{i}]"))
                        .expect("bench variable");
                    layout.var(id).slot
                })
                .collect()
        };
        Native {
            ib: arr("ib", 32),
            ii: arr("ii", 16),
            ob: arr("ob", 400),
            oc: arr("oc", 200),
            oi: arr("oi", 200),
            ot: arr("ot", 100),
            ocv: arr("ocv", 100),
            tm: vec![Ton::default(); 100],
            ct: vec![Ctu::default(); 100],
        }
    }

    fn scan(&mut self, img: &mut Image, now: i64) {
        for i in 0..400 {
            let (a, b, c) = (i % 32, (i * 7 + 3) % 32, (i * 13 + 5) % 32);
            let v = (rb(img, self.ib[a]) && rb(img, self.ib[b])) || !rb(img, self.ib[c]);
            wb(img, self.ob[i], v);
        }
        for j in 0..200 {
            let rhs = ri(img, self.ii[(j * 5 + 1) % 16]).wrapping_add(j as i16);
            let v = ri(img, self.ii[j % 16]) > rhs;
            wb(img, self.oc[j], v);
        }
        for j in 0..200 {
            let x = ri(img, self.ii[j % 16])
                .wrapping_mul(3)
                .wrapping_add(ri(img, self.ii[(j + 1) % 16]));
            wi(img, self.oi[j], div_int(x, 7).wrapping_sub(j as i16));
        }
        for k in 0..100 {
            let pt = 10_000_000 * (k as i64 % 10 + 1);
            self.tm[k].call(rb(img, self.ib[k % 32]), pt, now);
            wb(img, self.ot[k], self.tm[k].q);
        }
        for k in 0..100 {
            let (cu, r) = (
                rb(img, self.ib[(k + 3) % 32]),
                rb(img, self.ib[(k + 11) % 32]),
            );
            self.ct[k].call(cu, r, (k % 20 + 5) as i16);
            wi(img, self.ocv[k], self.ct[k].cv);
        }
    }
}

fn layout_for(doc: &Document) -> Layout {
    let mut b = LayoutBuilder::new();
    for (name, ty) in &doc.vars {
        let area = if name.starts_with("rungs.ib[") || name.starts_with("rungs.ii[") {
            Area::Input
        } else {
            Area::Output
        };
        let ty = IecType::from_name(ty).expect("type");
        b.declare(VarDecl::new(name, area, ty, None))
            .expect("declare");
    }
    b.build().expect("layout")
}

/// The same pseudo-random inputs for both runs: a function of the cycle number only.
fn set_inputs(img: &mut Image, slots_b: &[Slot], slots_i: &[Slot], k: u64) {
    let mut x = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    for s in slots_b {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Inputs change slowly (about every 8th cycle) so timers and counters run.
        wb(img, *s, ((k / 8 + (x >> 60)) & 1) == 1 || (x & 7) == 0);
    }
    for s in slots_i {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        wi(img, *s, (x >> 48) as i16);
    }
}

pub(crate) fn stats(mut v: Vec<u64>) -> (u64, f64) {
    let mean = v.iter().sum::<u64>() as f64 / v.len() as f64;
    v.sort_unstable();
    (v[v.len() / 2], mean)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 || !matches!(args[1].as_str(), "rungs" | "alarms") {
        eprintln!("usage: softplc-benches rungs|alarms <program.ir> <cycles>");
        std::process::exit(2);
    }
    if args[1] == "alarms" {
        alarms::main(&args[2], args[3].parse().expect("cycles"));
        return;
    }
    let ir = std::fs::read(&args[2]).expect("read IR file");
    let cycles: u64 = args[3].parse().expect("cycles");
    let doc = Document::decode(&ir).expect("IR");
    let layout = layout_for(&doc);
    let mut vm = softplc_vm::load_document(&doc, &layout).expect("load");
    let mut native = Native::new(&layout);
    let (ib, ii) = (native.ib.clone(), native.ii.clone());

    let mut img_vm = Image::new(&layout);
    let mut img_native = Image::new(&layout);
    let mut t_vm = Vec::with_capacity(cycles as usize);
    let mut t_native = Vec::with_capacity(cycles as usize);
    let mut equal = true;
    for k in 0..cycles {
        let now = k * CYCLE_NS;
        set_inputs(&mut img_vm, &ib, &ii, k);
        set_inputs(&mut img_native, &ib, &ii, k);
        let t0 = Instant::now();
        {
            let mut cx = ScanCtx {
                image: &mut img_vm,
                layout: &layout,
                now_ns: now,
                cycle: k,
                period_ns: CYCLE_NS,
                abort: &NO_ABORT,
            };
            vm.execute(&mut cx).expect("scan");
        }
        let t1 = Instant::now();
        native.scan(&mut img_native, now as i64);
        let t2 = Instant::now();
        t_vm.push((t1 - t0).as_nanos() as u64);
        t_native.push((t2 - t1).as_nanos() as u64);
        if k % 1000 == 0 || k + 1 == cycles {
            equal &= img_vm.areas[Area::Output.index()] == img_native.areas[Area::Output.index()];
        }
    }
    let (vm_med, vm_mean) = stats(t_vm);
    let (nat_med, nat_mean) = stats(t_native);
    println!(
        "{{\"cycles\": {cycles}, \"instructions\": {}, \"vm_median_ns\": {vm_med}, \"vm_mean_ns\": {vm_mean:.1}, \
         \"native_median_ns\": {nat_med}, \"native_mean_ns\": {nat_mean:.1}, \"outputs_equal\": {equal}}}",
        vm.code_len()
    );
}
