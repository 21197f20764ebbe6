//! A minimal scan loop for driving drivers in tests (the engine lives elsewhere).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use softplc_core::{
    Area, ClockKind, Driver, EngineClock, Event, EventSink, IecType, Image, IoCtx, Layout,
    LayoutBuilder, PlcState, Quality, StartCtx, Value, VarDecl,
};

pub struct Rig {
    pub layout: Layout,
    pub image: Image,
    pub drivers: Vec<Box<dyn Driver>>,
    pub events: EventSink,
    /// What the drivers were started with (for drivers added later).
    pub cx: StartCtx,
    t0: Instant,
    last: u64,
}

pub fn layout(decls: &[(&str, Area, IecType, &str)]) -> Layout {
    let mut b = LayoutBuilder::new();
    for (n, a, t, addr) in decls {
        b.declare(VarDecl::new(n, *a, *t, Some(addr))).unwrap();
    }
    b.build().unwrap()
}

impl Rig {
    pub fn new(layout: Layout, mut drivers: Vec<Box<dyn Driver>>) -> Rig {
        let events = EventSink::new();
        // The rig's clock starts at 0 now and runs at wall-clock speed: a virtual engine
        // clock that is never moved again is exactly that.
        let cx = StartCtx {
            events: events.clone(),
            clock: EngineClock::new(ClockKind::Virtual),
        };
        let t0 = Instant::now();
        for d in &mut drivers {
            d.bind(&layout).unwrap();
            d.start(&cx).unwrap();
        }
        Rig {
            image: Image::new(&layout),
            layout,
            drivers,
            events,
            cx,
            t0,
            last: 0,
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    /// One cycle: read inputs, apply `program`, write outputs.
    pub fn cycle_with(&mut self, program: impl FnOnce(&mut Image, &Layout)) {
        let now = self.now_ns();
        let dt = now - self.last;
        self.last = now;
        for d in &mut self.drivers {
            let mut cx = IoCtx {
                image: &mut self.image,
                layout: &self.layout,
                now_ns: now,
                dt_ns: dt,
                state: PlcState::Run,
            };
            d.read_inputs(&mut cx);
        }
        program(&mut self.image, &self.layout);
        for d in &mut self.drivers {
            let mut cx = IoCtx {
                image: &mut self.image,
                layout: &self.layout,
                now_ns: now,
                dt_ns: dt,
                state: PlcState::Run,
            };
            d.write_outputs(&mut cx);
        }
    }

    pub fn cycle(&mut self) {
        self.cycle_with(|_, _| {});
    }

    pub fn get(&self, name: &str) -> Value {
        let id = self.layout.find(name).unwrap();
        self.image.load(self.layout.var(id).slot)
    }

    pub fn quality(&self, name: &str) -> Quality {
        self.image.quality[self.layout.find(name).unwrap().index()]
    }

    pub fn age_ns(&self, name: &str) -> u64 {
        let id = self.layout.find(name).unwrap();
        self.now_ns()
            .saturating_sub(self.image.stamp_ns[id.index()])
    }

    pub fn set(&mut self, name: &str, v: Value) {
        let id = self.layout.find(name).unwrap();
        let slot = self.layout.var(id).slot;
        self.image.store(slot, v.convert(slot.ty).unwrap());
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.since(0).0
    }

    pub fn status(&self, i: usize) -> serde_json::Value {
        serde_json::from_str(&self.drivers[i].monitor().unwrap().status_json()).unwrap()
    }
}

/// Cycles the rigs every `period` until `cond` holds or `limit` passes.
pub fn run_until(
    rigs: &mut [&mut Rig],
    limit: Duration,
    period: Duration,
    mut cond: impl FnMut(&[&mut Rig]) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        for r in rigs.iter_mut() {
            r.cycle();
        }
        if cond(rigs) {
            return true;
        }
        std::thread::sleep(period);
    }
    false
}
