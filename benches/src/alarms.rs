//! The alarm-handler benchmark (tests/benchmarks/alarms.py) written out by hand: 256
//! channels of (value, hi, lo, enabled) inputs, each with an on-delay of 50 ms and a
//! rising edge, latched until acknowledged. Reads and writes the image through the
//! layout's slots, as the VM does, so the two are compared on the same work.

use std::time::Instant;

use softplc_core::{Area, IecType, Image, Layout, LayoutBuilder, Program, ScanCtx, Slot, VarDecl};
use softplc_vm::ir::Document;

use crate::{rb, stats, wb, Ton, CYCLE_NS, NO_ABORT};

const CHANNELS: usize = 256;
const DELAY_NS: i64 = 50_000_000;

/// A rising-edge detector, by hand.
#[derive(Default, Clone, Copy)]
struct RTrig {
    m: bool,
}

impl RTrig {
    #[inline]
    fn call(&mut self, clk: bool) -> bool {
        let q = clk && !self.m;
        self.m = clk;
        q
    }
}

/// One channel's block: the on-delay, the edge, the latch and the count.
#[derive(Default, Clone, Copy)]
struct Alarm {
    delay: Ton,
    edge: RTrig,
    latched: bool,
    count: i32,
}

struct Slots {
    value: Vec<Slot>,
    hi: Vec<Slot>,
    lo: Vec<Slot>,
    enabled: Vec<Slot>,
    ack: Slot,
    active: Vec<Slot>,
    latched: Vec<Slot>,
    total: Slot,
}

#[inline(always)]
fn rf(img: &Image, s: Slot) -> f32 {
    let o = s.offset as usize;
    let a = &img.areas[s.area.index()];
    f32::from_le_bytes([a[o], a[o + 1], a[o + 2], a[o + 3]])
}

#[inline(always)]
fn wf(img: &mut Image, s: Slot, v: f32) {
    let o = s.offset as usize;
    img.areas[s.area.index()][o..o + 4].copy_from_slice(&v.to_le_bytes());
}

impl Slots {
    fn new(layout: &Layout) -> Slots {
        let one = |name: &str| layout.var(layout.find(name).expect("bench variable")).slot;
        let per = |field: &str| -> Vec<Slot> {
            (0..CHANNELS)
                .map(|i| one(&format!("alarms.ch[{i}].{field}")))
                .collect()
        };
        let arr = |name: &str| -> Vec<Slot> {
            (0..CHANNELS)
                .map(|i| one(&format!("alarms.{name}[{i}]")))
                .collect()
        };
        Slots {
            value: per("value"),
            hi: per("hi"),
            lo: per("lo"),
            enabled: per("enabled"),
            ack: one("alarms.ack"),
            active: arr("active"),
            latched: arr("latched"),
            total: one("alarms.total"),
        }
    }
}

struct Native {
    s: Slots,
    units: Vec<Alarm>,
}

impl Native {
    fn scan(&mut self, img: &mut Image, now: i64) {
        let ack = rb(img, self.s.ack);
        let mut n = 0i32;
        for i in 0..CHANNELS {
            let u = &mut self.units[i];
            if rb(img, self.s.enabled[i]) {
                let v = rf(img, self.s.value[i]);
                let out = v > rf(img, self.s.hi[i]) || v < rf(img, self.s.lo[i]);
                u.delay.call(out, DELAY_NS, now);
                if u.edge.call(u.delay.q) {
                    u.latched = true;
                    u.count = u.count.wrapping_add(1);
                }
                if ack && !u.delay.q {
                    u.latched = false;
                }
            }
            wb(img, self.s.active[i], u.delay.q);
            wb(img, self.s.latched[i], u.latched);
            n += u.latched as i32;
        }
        let o = self.s.total.offset as usize;
        img.areas[self.s.total.area.index()][o..o + 4].copy_from_slice(&n.to_le_bytes());
    }
}

fn layout_for(doc: &Document) -> Layout {
    let mut b = LayoutBuilder::new();
    for (name, ty) in &doc.vars {
        let area = if name.starts_with("alarms.ch[") || name == "alarms.ack" {
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

/// The same inputs for both runs, a function of the cycle number only: each value
/// drifts across its limits every few hundred milliseconds, a few channels are
/// disabled, and the acknowledge button is pressed now and then.
fn set_inputs(img: &mut Image, s: &Slots, k: u64) {
    for i in 0..CHANNELS {
        let phase = ((k / 7 + i as u64 * 13) % 64) as f32;
        wf(img, s.value[i], 10.0 + phase * 1.5);
        wf(img, s.hi[i], 80.0);
        wf(img, s.lo[i], 20.0);
        wb(img, s.enabled[i], i % 31 != 0);
    }
    wb(img, s.ack, k % 50 < 3);
}

/// Runs the benchmark and prints its JSON line.
pub fn main(ir_path: &str, cycles: u64) {
    let ir = std::fs::read(ir_path).expect("read IR file");
    let doc = Document::decode(&ir).expect("IR");
    let layout = layout_for(&doc);
    let mut vm = softplc_vm::load_document(&doc, &layout).expect("load");
    let mut native = Native {
        s: Slots::new(&layout),
        units: vec![Alarm::default(); CHANNELS],
    };
    let mut img_vm = Image::new(&layout);
    let mut img_native = Image::new(&layout);
    let (mut t_vm, mut t_native) = (Vec::new(), Vec::new());
    let mut equal = true;
    for k in 0..cycles {
        let now = k * CYCLE_NS;
        set_inputs(&mut img_vm, &native.s, k);
        set_inputs(&mut img_native, &native.s, k);
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
        equal &= img_vm.areas[Area::Output.index()] == img_native.areas[Area::Output.index()];
    }
    let (vm_med, vm_mean) = stats(t_vm);
    let (nat_med, nat_mean) = stats(t_native);
    println!(
        "{{\"cycles\": {cycles}, \"instructions\": {}, \"vm_median_ns\": {vm_med}, \"vm_mean_ns\": {vm_mean:.1}, \
         \"native_median_ns\": {nat_med}, \"native_mean_ns\": {nat_mean:.1}, \"outputs_equal\": {equal}}}",
        vm.code_len()
    );
}
