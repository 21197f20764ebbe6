//! What the engine handle, the scan thread and the watchdog thread share: the command
//! queue, the published snapshot, the state, the fault, and the watch window.
//!
//! Which side writes what: the handle pushes commands; the scan drains them with
//! `try_lock` at the start of a cycle and publishes the snapshot, state and fault; the
//! watchdog thread (and a `close` that gives up waiting) publishes FAULT, the fault and
//! safe outputs when the scan thread cannot.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crate::driver::PlcState;
use crate::image::{Image, Layout, Slot, VarId};
use crate::observer::CycleObserver;
use crate::program::Program;
use crate::retain::writer::RetainCapture;
use crate::rt::RtStatus;
use crate::task::TaskId;
use crate::types::Value;

use super::fault::FaultInfo;
use super::watch::Watch;

/// A request from another thread, applied by the scan at the start of a cycle.
pub enum Command {
    /// Hold a variable at a value (before and after the programs) until released.
    Force(VarId, Value),
    /// Release one force.
    Unforce(VarId),
    /// Release every force.
    UnforceAll,
    /// Write a value once, after inputs are latched.
    Write(VarId, Value),
    /// Go to RUN (from STOP only; FAULT needs `ClearFault` first).
    Run,
    /// Go to STOP.
    Stop,
    /// Leave FAULT for STOP.
    ClearFault,
    /// Attach a cycle observer.
    AddObserver(u64, Box<dyn CycleObserver>),
    /// Detach a cycle observer (it is handed back through the graveyard).
    RemoveObserver(u64),
    /// Real time: end the scan once the first task has run this many cycles in all.
    StopAtCycle(u64),
    /// Online change: switch programs (and the layout they need) between two cycles.
    Swap(Box<Swap>),
    /// Holds a variable's quality (and the age of its data) from now on, whatever the
    /// drivers report, until released with `None`: fault injection in test benches.
    Quality(VarId, Option<QualityHold>),
}

/// A quality held on a variable (see [`Command::Quality`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QualityHold {
    /// The quality programs see.
    pub quality: crate::image::Quality,
    /// The age of the data programs see (`AGE`), growing from the moment it is held;
    /// None keeps the stamps the drivers write.
    pub age_ns: Option<u64>,
}

/// An online change, prepared off the scan thread (programs loaded and verified,
/// layout grown, cell maps computed) so that the switch itself only moves pointers and
/// grows the image.
pub struct Swap {
    /// The layout after the change (an extension of the current one).
    pub layout: Arc<Layout>,
    /// Per task: its program list after the change; a program that replaces one names
    /// the old one's index in the current list and the (old cell, new cell) map.
    pub tasks: Vec<(TaskId, Vec<NewProgram>)>,
    /// Every output's slot and safe value after the change.
    pub outputs: Vec<(Slot, Value)>,
    /// The retain capture after the change, when the retained set changed.
    pub retain: Option<Option<RetainCapture>>,
    /// Values carried from a retired variable to its successor, converted to the new
    /// type at the switch (a retained variable whose type widened).
    pub conversions: Vec<(Slot, Slot)>,
}

/// A program after an online change, and what it takes over.
pub struct NewProgram {
    /// The program.
    pub program: Box<dyn Program>,
    /// The program it replaces (its index in the task's current list) and the cell map.
    pub replaces: Option<(usize, Vec<(u32, u32)>)>,
}

/// What the scan reports about a switch it made.
pub struct SwapDone {
    /// The first task's cycle count at the switch.
    pub cycle: u64,
    /// Engine-clock time of the cycle that switched.
    pub t_ns: u64,
    /// The programs that were replaced or removed (dropped off the scan thread).
    pub retired: Vec<Box<dyn Program>>,
}

/// The image as the scan last published it.
pub(crate) struct Snapshot {
    pub image: Image,
    pub now_ns: u64,
    pub cycles: u64,
}

/// State shared between the engine handle, the scan thread and the watchdog thread.
pub(crate) struct Shared {
    pub commands: Mutex<Vec<Command>>,
    pub snapshot: Mutex<Snapshot>,
    state: AtomicU8,
    pub fault: Mutex<Option<FaultInfo>>,
    pub quit: AtomicBool,
    /// Engine-clock time of the first tick.
    pub origin: AtomicU64,
    pub rt: Mutex<Option<RtStatus>>,
    pub graveyard: Mutex<Vec<(u64, Box<dyn CycleObserver>)>>,
    /// The watch window of the cycle in progress (see `supervisor`).
    pub watch: Watch,
    /// `close` gave up on a scan thread that never returned.
    pub abandoned: AtomicBool,
    /// The last online change the scan made, until the handle takes it.
    pub swapped: Mutex<Option<SwapDone>>,
}

impl Shared {
    /// Shared state around the engine's initial image, in STOP.
    pub fn new(image: Image) -> Shared {
        Shared {
            commands: Mutex::new(Vec::with_capacity(256)),
            snapshot: Mutex::new(Snapshot {
                image,
                now_ns: 0,
                cycles: 0,
            }),
            state: AtomicU8::new(state_code(PlcState::Stop)),
            fault: Mutex::new(None),
            quit: AtomicBool::new(false),
            origin: AtomicU64::new(0),
            rt: Mutex::new(None),
            graveyard: Mutex::new(Vec::new()),
            watch: Watch::default(),
            abandoned: AtomicBool::new(false),
            swapped: Mutex::new(None),
        }
    }

    /// The state as last published. Any thread: one atomic load.
    pub fn state_now(&self) -> PlcState {
        state_of(self.state.load(Ordering::Acquire))
    }

    /// Publishes the state. Scan thread: one atomic store, no allocation, locks or
    /// syscalls.
    pub fn publish_state(&self, s: PlcState) {
        self.state.store(state_code(s), Ordering::Release);
    }

    /// Records a fault and publishes FAULT. Locks: off the healthy path (the watchdog
    /// thread, a panicking scan thread, the scan's fault path).
    pub fn set_fault(&self, info: FaultInfo) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
        self.publish_state(PlcState::Fault);
    }

    /// Appends a line to the recorded fault's message (where stuck code was). Locks
    /// and allocates: off the scan thread, or on its fault path.
    pub fn add_to_fault(&self, line: &str) {
        if let Some(f) = self
            .fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            f.message.push('\n');
            f.message.push_str(line);
        }
    }

    /// Makes the published snapshot show every output at its safe value. Locks: off the
    /// scan thread (the watchdog thread, `close`).
    pub fn publish_safe_outputs(&self, outputs: &[(Slot, Value)]) {
        let mut snap = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        for (slot, v) in outputs {
            snap.image.store(*slot, *v);
        }
    }
}

/// The number a state is published as (and written in state-change events).
pub(crate) fn state_code(s: PlcState) -> u8 {
    match s {
        PlcState::Stop => 0,
        PlcState::Run => 1,
        PlcState::Fault => 2,
    }
}

fn state_of(c: u8) -> PlcState {
    match c {
        1 => PlcState::Run,
        2 => PlcState::Fault,
        _ => PlcState::Stop,
    }
}
