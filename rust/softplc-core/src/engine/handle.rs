//! The engine handle: starts and stops the scan, sends commands, reads snapshots and
//! statistics. Off the scan thread: everything here may allocate and lock, but never
//! waits on the scan thread except where a method says so (`close`, `remove_observer`,
//! `start` in real time).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::clock::{monotonic_ns, ClockKind};
use crate::driver::{DriverMonitor, IoError, PlcState, StartCtx};
use crate::event::{Event, EventKind, EventSink};
use crate::image::{Image, Layout, VarId};
use crate::observer::CycleObserver;
use crate::program::Interrupt;
use crate::rt::{self, RtRequest, RtStatus};
use crate::stats::{StatsReader, TaskFigures};
use crate::task::{TaskId, TaskInfo};
use crate::types::Value;

use super::checkpoint::Checkpoint;
use super::fault::{panic_text, FaultInfo, FaultKind};
use super::scan::Core;
use super::shared::{Command, QualityHold, Shared, Swap, SwapDone};
use super::supervisor::{Emergency, HardLimit, Supervisor};
use crate::retain::{
    self, Loaded, RestartLevel, RetainConfig, RetainSet, RetainStatus, RetainWriter, Store,
};
use triple_buffer::Output;

/// How long `close` waits for the scan thread to finish its cycle before it forces the
/// outputs safe and interrupts the code the scan is stuck in.
pub const CLOSE_GRACE_NS: u64 = 500_000_000;
/// How long `close` then waits before it abandons a scan thread that never returns.
pub const CLOSE_ABANDON_NS: u64 = 1_500_000_000;

/// The engine handle: starts and stops the scan, sends commands, reads snapshots and
/// statistics. Methods take `&self` where they only talk to the scan through
/// the shared state, so one handle can be used from several threads.
pub struct Engine {
    pub(super) core: Option<Box<Core>>,
    pub(super) thread: Option<JoinHandle<Box<Core>>>,
    pub(super) shared: Arc<Shared>,
    pub(super) layout: Arc<Layout>,
    pub(super) clock: ClockKind,
    pub(super) rt: RtRequest,
    pub(super) readers: Vec<StatsReader>,
    pub(super) tasks: Vec<TaskInfo>,
    pub(super) forced: Arc<Mutex<BTreeMap<VarId, Value>>>,
    pub(super) events: EventSink,
    pub(super) started: bool,
    pub(super) closed: bool,
    pub(super) next_observer: u64,
    pub(super) monitors: Vec<(String, Arc<dyn DriverMonitor>)>,
    /// The watchdog thread (real time, when a task has a watchdog).
    pub(super) supervisor: Option<Supervisor>,
    /// What makes outputs safe without the scan thread (set at start).
    pub(super) emergency: Option<Arc<Emergency>>,
    /// Each task's watchdog as the watchdog thread applies it.
    pub(super) limits: Vec<Option<HardLimit>>,
    pub(super) interrupt: Option<Arc<dyn Interrupt>>,
    /// Retain, until start: the configuration, the retained set and the writer's end
    /// of the capture buffer.
    pub(super) retain: Option<(RetainConfig, Arc<RetainSet>, Output<Vec<u8>>)>,
    /// The retain writer (after start).
    pub(super) retain_writer: Option<RetainWriter>,
    pub(super) retain_status: Arc<RetainStatus>,
    /// The retain configuration in force (kept for online changes).
    pub(super) retain_cfg: Option<RetainConfig>,
}

/// Every output's slot and safe value.
pub(super) fn outputs_of(layout: &Layout) -> Vec<(crate::image::Slot, Value)> {
    layout
        .vars()
        .iter()
        .filter(|v| v.slot.area == crate::address::Area::Output)
        .map(|v| (v.slot, v.safe))
        .collect()
}

/// Errors of the engine handle (wrong state, start-up failures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The call does not fit the engine's life cycle (for example `run_cycles` on a
    /// real-time engine).
    State(String),
    /// A driver failed to start; every driver started before it was stopped again.
    Io(IoError),
}

impl std::fmt::Display for EngineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineError::State(s) => f.write_str(s),
            EngineError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl Engine {
    /// The layout.
    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// Which clock the engine runs on.
    pub fn clock(&self) -> ClockKind {
        self.clock
    }

    /// The tasks.
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }

    /// The event log.
    pub fn events(&self) -> &EventSink {
        &self.events
    }

    /// True once started and not yet closed.
    pub fn is_started(&self) -> bool {
        self.started && !self.closed
    }

    /// Engine-clock time of the first tick.
    pub fn origin_ns(&self) -> u64 {
        self.shared.origin.load(Ordering::Acquire)
    }

    /// Starts the drivers and, in real time, the scan thread; enters `state`
    /// (RUN or STOP). If a driver fails, the ones already started are stopped and
    /// nothing is left running.
    pub fn start(&mut self, run: bool) -> Result<(), EngineError> {
        if self.closed {
            return Err(EngineError::State("the engine is closed".into()));
        }
        if self.started {
            return Err(EngineError::State("the engine is already started".into()));
        }
        let mut core = self.core.take().expect("core present before start");
        if let Err(e) = self.start_retain(&mut core) {
            self.core = Some(core);
            self.closed = true;
            return Err(e);
        }
        let cx = StartCtx {
            events: self.events.clone(),
            clock: core.engine_clock.clone(),
        };
        let link = self.link_for(&core);
        for d in core.drivers.iter_mut() {
            d.engine_link(&link);
        }
        for i in 0..core.drivers.len() {
            if let Err(e) = core.drivers[i].start(&cx) {
                for d in core.drivers[..i].iter_mut() {
                    d.stop();
                }
                self.core = Some(core);
                self.closed = true;
                if let Some(w) = self.retain_writer.as_mut() {
                    w.stop();
                }
                return Err(EngineError::Io(e));
            }
        }
        for t in core.tasks.iter_mut() {
            for p in t.programs.iter_mut() {
                p.reset();
            }
        }
        let emergency = Arc::new(Emergency {
            shared: self.shared.clone(),
            safe: core.drivers.iter().filter_map(|d| d.safe_state()).collect(),
            interrupt: self.interrupt.clone(),
            tasks: Mutex::new(core.task_programs()),
            outputs: Mutex::new(core.outputs.clone()),
            events: self.events.clone(),
        });
        self.emergency = Some(emergency.clone());
        // Virtual time starts at 0; the real-time grid is set by the scan thread.
        let origin = match self.clock {
            ClockKind::Virtual => 0,
            ClockKind::Real => monotonic_ns() + 1_000_000,
        };
        self.shared.origin.store(origin, Ordering::Release);
        core.reset_schedules(origin);
        if run {
            core.set_state(PlcState::Run, origin);
        }
        self.started = true;
        match self.clock {
            ClockKind::Virtual => {
                self.core = Some(core);
            }
            ClockKind::Real => {
                let rt = self.rt.clone();
                let shared = self.shared.clone();
                let spawn = std::thread::Builder::new()
                    .name("softplc-scan".into())
                    .spawn(move || {
                        let (status, _dma_guard) = rt::apply(&rt);
                        // Start the tick grid only now: locking memory can take tens of
                        // milliseconds, which would otherwise show as a late first cycle.
                        let origin = monotonic_ns() + 1_000_000;
                        core.reset_schedules(origin);
                        shared.origin.store(origin, Ordering::Release);
                        *shared.rt.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
                        let r = catch_unwind(AssertUnwindSafe(|| core.run_realtime()));
                        if let Err(p) = r {
                            *shared.fault.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(FaultInfo {
                                    kind: FaultKind::Panic,
                                    task: None,
                                    task_name: String::new(),
                                    source: "scan thread".into(),
                                    cycle: 0,
                                    t_ns: monotonic_ns(),
                                    started_ns: 0,
                                    message: panic_text(&p),
                                });
                            shared.publish_state(PlcState::Fault);
                        }
                        core
                    });
                match spawn {
                    Ok(h) => self.thread = Some(h),
                    Err(e) => {
                        self.started = false;
                        self.closed = true;
                        return Err(EngineError::Io(IoError {
                            message: format!("cannot start the scan thread: {e}"),
                        }));
                    }
                }
                if self.limits.iter().any(Option::is_some) {
                    match Supervisor::spawn(
                        emergency,
                        self.limits.clone(),
                        self.rt.priority,
                        self.rt.cpu,
                    ) {
                        Ok(s) => self.supervisor = Some(s),
                        Err(e) => {
                            // No watchdog, no run: stop the scan that just started.
                            self.close();
                            return Err(EngineError::Io(IoError {
                                message: format!("cannot start the watchdog thread: {e}"),
                            }));
                        }
                    }
                }
                // Wait until the thread reports its real-time set-up.
                while self
                    .shared
                    .rt
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_none()
                {
                    if self.thread.as_ref().is_some_and(|h| h.is_finished()) {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            }
        }
        Ok(())
    }

    /// Virtual time: runs until the first task has done `n` more cycles (other tasks
    /// run as their periods fall in between). Returns the virtual time reached.
    pub fn run_cycles(&mut self, n: u64) -> Result<u64, EngineError> {
        let core = self.virtual_core()?;
        let target = core.first_task_cycles() + n;
        let mut t = core.next_task().1;
        while core.first_task_cycles() < target {
            t = core.virtual_step();
        }
        Ok(t)
    }

    /// Virtual time: runs every cycle scheduled before `now + duration`.
    pub fn run_virtual_for(&mut self, duration_ns: u64) -> Result<u64, EngineError> {
        let core = self.virtual_core()?;
        let (_, start) = core.next_task();
        let end = start + duration_ns;
        let mut n = 0;
        while core.next_task().1 < end {
            core.virtual_step();
            n += 1;
        }
        Ok(n)
    }

    /// Real time: ends the scan (as `close` does: outputs safe in a last cycle) once
    /// the first task has run `total` cycles since start. Use [`Engine::scan_finished`]
    /// to wait for it.
    pub fn stop_at_cycle(&self, total: u64) {
        self.send(Command::StopAtCycle(total));
    }

    /// True when a real-time scan thread has ended (after `stop_at_cycle`, or a panic).
    pub fn scan_finished(&self) -> bool {
        self.thread.as_ref().is_some_and(|h| h.is_finished())
    }

    /// Virtual time: when the next wake-up is due.
    pub fn virtual_now(&self) -> Option<u64> {
        self.core.as_ref().map(|c| c.next_task().1)
    }

    fn virtual_core(&mut self) -> Result<&mut Core, EngineError> {
        if self.clock != ClockKind::Virtual {
            return Err(EngineError::State(
                "run_cycles needs a virtual-time engine; a real-time engine runs on its own".into(),
            ));
        }
        if !self.started || self.closed {
            return Err(EngineError::State("the engine is not started".into()));
        }
        Ok(self.core.as_mut().expect("virtual core present"))
    }

    fn send(&self, c: Command) {
        self.shared
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
    }

    /// Forces a variable (value already converted to its type).
    pub fn force(&self, id: VarId, v: Value) {
        self.forced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, v);
        self.events.push(
            Event::new(
                self.now_ns(),
                EventKind::Force,
                None,
                format!("{}={}", self.layout.var(id).name, v),
            )
            .with_numbers(id.0 as i64, 0),
        );
        self.send(Command::Force(id, v));
    }

    /// Releases a force.
    pub fn unforce(&self, id: VarId) {
        self.forced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.events.push(
            Event::new(
                self.now_ns(),
                EventKind::Unforce,
                None,
                self.layout.var(id).name.clone(),
            )
            .with_numbers(id.0 as i64, 0),
        );
        self.send(Command::Unforce(id));
    }

    /// Releases every force.
    pub fn unforce_all(&self) {
        self.forced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.send(Command::UnforceAll);
    }

    /// The forced variables and their values.
    pub fn forced(&self) -> Vec<(VarId, Value)> {
        self.forced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect()
    }

    /// Writes a value once, at the start of the next cycle: an external write, checked
    /// against the variable's [`WriteRule`](crate::WriteRule) (nothing is sent when it
    /// is refused).
    pub fn write(&self, id: VarId, v: Value) -> Result<(), crate::WriteRefused> {
        self.layout.var(id).rule.check(v)?;
        self.events.push(
            Event::new(
                self.now_ns(),
                EventKind::Write,
                None,
                format!("{}={}", self.layout.var(id).name, v),
            )
            .with_numbers(id.0 as i64, 0),
        );
        self.send(Command::Write(id, v));
        Ok(())
    }

    /// Virtual time, between two `run_cycles` calls: the engine's state (see
    /// [`Checkpoint`]). Allocates.
    pub fn checkpoint(&mut self) -> Result<Checkpoint, EngineError> {
        let started = self.is_started();
        match self.core.as_mut() {
            Some(core) if self.clock == ClockKind::Virtual && started => {
                // Requests still queued belong to the state: the next cycle would apply
                // them first thing; apply them now so the checkpoint holds them.
                let now = core.tasks[TaskId::FIRST.index()].schedule.next_due();
                core.process_commands(now);
                Ok(core.checkpoint())
            }
            _ => Err(EngineError::State(
                "checkpoints are taken of a started virtual-time engine, between cycles".into(),
            )),
        }
    }

    /// Virtual time: puts back a checkpoint taken on an engine built the same way; the
    /// engine then continues bit for bit as the one it was taken on did. Allocates.
    pub fn restore(&mut self, cp: &Checkpoint) -> Result<(), EngineError> {
        let started = self.is_started();
        let Some(core) = self
            .core
            .as_mut()
            .filter(|_| started && self.clock == ClockKind::Virtual)
        else {
            return Err(EngineError::State(
                "checkpoints are restored into a started virtual-time engine".into(),
            ));
        };
        core.restore(cp).map_err(EngineError::State)?;
        let mut forced = self.forced.lock().unwrap_or_else(|p| p.into_inner());
        forced.clear();
        forced.extend(cp.forces.iter().copied());
        Ok(())
    }

    /// Holds a variable's quality (and the age of its data) from the next cycle on,
    /// over what drivers report, until released with `None` (fault injection in test
    /// benches: programs see it through `QUALITY`/`AGE` exactly as from a driver).
    pub fn hold_quality(&self, id: VarId, hold: Option<QualityHold>) {
        self.send(Command::Quality(id, hold));
    }

    /// Requests RUN (from STOP).
    pub fn run(&self) {
        self.send(Command::Run);
    }

    /// Requests STOP.
    pub fn stop(&self) {
        self.send(Command::Stop);
    }

    /// Requests leaving FAULT (to STOP).
    pub fn clear_fault(&self) {
        self.send(Command::ClearFault);
    }

    /// Reads a variable from the latest snapshot.
    pub fn read(&self, id: VarId) -> Value {
        let snap = self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        snap.image.load(self.layout.var(id).slot)
    }

    /// A copy of the latest published image, with its `now` and task-0 cycle count.
    pub fn snapshot(&self) -> (Image, u64, u64) {
        let snap = self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        (snap.image.clone(), snap.now_ns, snap.cycles)
    }

    /// Engine-clock time of the latest published cycle.
    pub fn now_ns(&self) -> u64 {
        self.shared
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .now_ns
    }

    /// Current state.
    pub fn state(&self) -> PlcState {
        self.shared.state_now()
    }

    /// The fault, while in FAULT.
    pub fn fault(&self) -> Option<FaultInfo> {
        self.shared
            .fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Each driver's status as JSON, for drivers that offer a monitor.
    pub fn driver_status(&self) -> Vec<(String, String)> {
        self.monitors
            .iter()
            .map(|(n, m)| (n.clone(), m.status_json()))
            .collect()
    }

    /// Statistics of every task.
    pub fn stats(&self) -> Vec<TaskFigures> {
        self.readers.iter().map(|r| r.figures()).collect()
    }

    /// Clears statistics.
    pub fn reset_stats(&self) {
        for r in &self.readers {
            r.reset();
        }
    }

    /// What real-time set-up the scan thread obtained (None before start or in
    /// virtual time).
    pub fn rt_status(&self) -> Option<RtStatus> {
        self.shared
            .rt
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True when a real-time scan thread has stopped on its own (a panic).
    pub fn thread_died(&self) -> bool {
        self.thread.as_ref().is_some_and(|h| h.is_finished())
    }

    /// Attaches a cycle observer; returns its id.
    pub fn add_observer(&mut self, mut obs: Box<dyn CycleObserver>) -> u64 {
        let names: Vec<String> = self.tasks.iter().map(|t| t.name.clone()).collect();
        let periods: Vec<u64> = self.tasks.iter().map(|t| t.period_ns).collect();
        obs.attach(&self.layout, &names, &periods);
        let id = self.next_observer;
        self.next_observer += 1;
        match self.core.as_mut() {
            Some(core) => core.observers.push((id, obs)),
            None => self.send(Command::AddObserver(id, obs)),
        }
        id
    }

    /// Detaches an observer and hands it back. On a running real-time engine this waits
    /// (off the scan thread) until the scan has let go of it, up to `timeout`.
    pub fn remove_observer(
        &mut self,
        id: u64,
        timeout: std::time::Duration,
    ) -> Option<Box<dyn CycleObserver>> {
        if let Some(core) = self.core.as_mut() {
            if let Some(i) = core.observers.iter().position(|(x, _)| *x == id) {
                return Some(core.observers.remove(i).1);
            }
            // Still queued (added while the thread ran, then stopped): look there.
            let mut q = self
                .shared
                .commands
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(i) = q
                .iter()
                .position(|c| matches!(c, Command::AddObserver(x, _) if *x == id))
            {
                if let Command::AddObserver(_, o) = q.remove(i) {
                    return Some(o);
                }
            }
            return None;
        }
        self.send(Command::RemoveObserver(id));
        let deadline = std::time::Instant::now() + timeout;
        loop {
            {
                let mut g = self
                    .shared
                    .graveyard
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if let Some(i) = g.iter().position(|(x, _)| *x == id) {
                    return Some(g.remove(i).1);
                }
            }
            if std::time::Instant::now() > deadline || self.thread_died() {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Retain at start: loads the newest valid slot, applies it to the image by the
    /// restart level and the program's signature, and starts the writer. Load time:
    /// file I/O and allocation.
    fn start_retain(&mut self, core: &mut Core) -> Result<(), EngineError> {
        let Some((cfg, set, output)) = self.retain.take() else {
            return Ok(());
        };
        let mut store = Store::new(&cfg.dir, &cfg.stem);
        let loaded = if cfg.level == RestartLevel::Origin {
            store.clear().map_err(|e| {
                EngineError::Io(IoError {
                    message: format!("retain: cannot clear {}: {e}", store.slot_path(0).display()),
                })
            })?;
            Loaded::default()
        } else {
            store.load()
        };
        let snap = loaded.snapshot.as_ref();
        let same = snap.is_some_and(|s| s.signature == cfg.signature);
        let mut report = retain::restore(&set, &mut core.image, snap, cfg.level, same);
        report.warnings = loaded.warnings.clone();
        let values = snap.map(|s| s.entries.clone());
        self.shared
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .image
            .copy_from(&core.image);
        let st = &self.retain_status;
        st.last_seq
            .store(report.loaded_seq, std::sync::atomic::Ordering::Relaxed);
        *st.files.lock().unwrap_or_else(|p| p.into_inner()) =
            vec![store.slot_path(0), store.slot_path(1)];
        *st.report.lock().unwrap_or_else(|p| p.into_inner()) = report;
        let writer = RetainWriter::spawn(
            set,
            output,
            store,
            &cfg,
            self.forced.clone(),
            st.clone(),
            values,
        )
        .map_err(|e| {
            EngineError::Io(IoError {
                message: format!("retain: cannot start the writer thread: {e}"),
            })
        })?;
        self.retain_writer = Some(writer);
        self.retain_cfg = Some(cfg);
        Ok(())
    }

    /// An online change: switches programs between two cycles (see [`Swap`]). Real
    /// time: the scan applies it at the start of its next cycle and this waits for that,
    /// up to `timeout`; virtual time: applied at once (between `run_cycles` calls).
    /// `swap.layout` must extend the current layout ([`Layout::extended`]); a changed
    /// set of retained variables switches the retain writer too (the old one saves its
    /// last values first). Off the scan thread; allocates.
    pub fn swap(
        &mut self,
        mut swap: Swap,
        timeout: std::time::Duration,
    ) -> Result<SwapDone, EngineError> {
        if !self.started || self.closed {
            return Err(EngineError::State("the engine is not running".into()));
        }
        let old = &self.layout;
        let extends = swap.layout.len() >= old.len()
            && old
                .vars()
                .iter()
                .zip(swap.layout.vars())
                .all(|(a, b)| a.slot == b.slot);
        if !extends {
            return Err(EngineError::State(
                "an online change must keep every variable where it is".into(),
            ));
        }
        let layout = swap.layout.clone();
        swap.outputs = outputs_of(&layout);
        // The retain writer follows the retained set.
        let mut new_writer = None;
        if let Some(cfg) = &self.retain_cfg {
            let set = Arc::new(RetainSet::new(&layout));
            let same = self.retain_writer.is_some() && RetainSet::new(old).vars() == set.vars();
            if !same && !set.is_empty() {
                let (capture, output) = retain::writer::channel(set.clone());
                swap.retain = Some(Some(capture));
                new_writer = Some((cfg.clone(), set, output));
            } else if !same {
                swap.retain = Some(None);
            }
        }
        let names: Vec<(TaskId, Vec<String>)> = swap
            .tasks
            .iter()
            .map(|(t, ps)| {
                (
                    *t,
                    ps.iter().map(|p| p.program.name().to_string()).collect(),
                )
            })
            .collect();
        let kinds: Vec<(TaskId, Vec<(String, crate::program::ProgramKind)>)> = swap
            .tasks
            .iter()
            .map(|(t, ps)| {
                (
                    *t,
                    ps.iter()
                        .map(|p| (p.program.name().to_string(), p.program.kind()))
                        .collect(),
                )
            })
            .collect();
        let outputs = swap.outputs.clone();
        let done = match self.core.as_mut() {
            Some(core) => {
                let now = core.tasks[TaskId::FIRST.index()].schedule.next_due();
                core.swap(swap, now);
                self.shared
                    .swapped
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take()
            }
            None => {
                self.send(Command::Swap(Box::new(swap)));
                let deadline = std::time::Instant::now() + timeout;
                loop {
                    if let Some(d) = self
                        .shared
                        .swapped
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take()
                    {
                        break Some(d);
                    }
                    if std::time::Instant::now() > deadline || self.thread_died() {
                        break None;
                    }
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            }
        };
        let Some(done) = done else {
            // The command stays queued; a scan that wakes again applies it then.
            return Err(EngineError::State(format!(
                "the scan did not take the change within {} ms (stuck in a cycle?)",
                timeout.as_millis()
            )));
        };
        self.layout = layout;
        for (t, ps) in kinds {
            self.tasks[t.index()].programs = ps;
        }
        if let Some(em) = &self.emergency {
            *em.outputs.lock().unwrap_or_else(|p| p.into_inner()) = outputs;
            let mut tasks = em.tasks.lock().unwrap_or_else(|p| p.into_inner());
            for (t, ps) in names {
                if let Some(entry) = tasks.get_mut(t.index()) {
                    entry.1 = ps;
                }
            }
        }
        if let Some((cfg, set, output)) = new_writer {
            if let Some(mut w) = self.retain_writer.take() {
                w.stop();
            }
            let store = Store::new(&cfg.dir, &cfg.stem);
            let mut store = store;
            // Continue the sequence after the slots written so far.
            let _ = store.load();
            let writer = RetainWriter::spawn(
                set,
                output,
                store,
                &cfg,
                self.forced.clone(),
                self.retain_status.clone(),
                None,
            )
            .map_err(|e| {
                EngineError::Io(IoError {
                    message: format!("retain: cannot start the writer thread: {e}"),
                })
            })?;
            self.retain_writer = Some(writer);
        }
        Ok(done)
    }

    /// What retain did and does: the start's report, saves, errors (a default status
    /// when nothing is retained).
    pub fn retain_status(&self) -> &Arc<RetainStatus> {
        &self.retain_status
    }

    /// Replaces the program signature written with retained values (after an online
    /// change: a restart of the changed program then counts as the same program).
    pub fn set_retain_signature(&mut self, signature: &str) {
        if let Some(cfg) = self.retain_cfg.as_mut() {
            cfg.signature = signature.to_string();
        }
        *self
            .retain_status
            .signature
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = signature.to_string();
    }

    /// True when the engine keeps retained variables in files.
    pub fn retains(&self) -> bool {
        self.retain_writer.is_some()
    }

    /// Stops the scan: outputs go to their safe values in a last cycle, the scan
    /// thread is joined and the drivers are stopped. Idempotent.
    ///
    /// Bounded in time whatever the programs do: a scan thread still inside a cycle
    /// after [`CLOSE_GRACE_NS`] has its outputs forced safe through the drivers and its
    /// Python code interrupted (as the watchdog does); one that has still not returned
    /// [`CLOSE_ABANDON_NS`] later is abandoned, its drivers' threads told to end, and
    /// [`Engine::scan_abandoned`] turns true.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Some(h) = self.thread.take() {
            self.shared.quit.store(true, Ordering::Release);
            match self.join_bounded(h) {
                Some(core) => self.core = Some(core),
                None => {
                    if let Some(s) = self.supervisor.as_mut() {
                        s.stop();
                    }
                    // The last values the scan captured are saved.
                    if let Some(w) = self.retain_writer.as_mut() {
                        w.stop();
                    }
                    return;
                }
            }
        } else if let Some(core) = self.core.as_mut() {
            if self.started {
                let now = core.tasks[TaskId::FIRST.index()].schedule.next_due();
                if core.state == PlcState::Run {
                    core.set_state(PlcState::Stop, now);
                }
                core.safe_outputs();
                core.write_outputs(now, 0);
            }
        }
        if let Some(core) = self.core.as_mut() {
            // A clean stop saves the final values (retained variables are memory
            // variables: the safe outputs of the last cycle do not touch them).
            if let Some(r) = core.retain.as_mut() {
                r.capture(&core.image);
            }
            if let Some(w) = self.retain_writer.as_mut() {
                w.stop();
            }
            for t in core.tasks.iter_mut() {
                t.recorder.flush();
            }
            if self.started {
                for d in core.drivers.iter_mut() {
                    d.stop();
                }
            }
            // Publish the final (safe) image.
            let mut snap = self
                .shared
                .snapshot
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            snap.image.copy_from(&core.image);
        }
        if let Some(s) = self.supervisor.as_mut() {
            s.stop();
        }
    }

    /// Joins the scan thread within [`CLOSE_GRACE_NS`] + [`CLOSE_ABANDON_NS`]; None
    /// when it had to be abandoned (see [`Engine::close`]).
    fn join_bounded(&mut self, h: JoinHandle<Box<Core>>) -> Option<Box<Core>> {
        let wait = |limit_ns: u64| {
            let until = monotonic_ns() + limit_ns;
            while !h.is_finished() && monotonic_ns() < until {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            h.is_finished()
        };
        let mut done = wait(CLOSE_GRACE_NS);
        if !done {
            if let Some(em) = &self.emergency {
                let w = &self.shared.watch;
                let s = w.start.load(Ordering::Acquire);
                let now = monotonic_ns();
                if w.trip(s) {
                    em.trip(
                        s,
                        format!(
                            "close: the scan was still in a cycle after {:.3} ms; outputs \
                             forced to their safe values",
                            now.saturating_sub(s) as f64 / 1e6
                        ),
                        now,
                    );
                } else {
                    for sf in &em.safe {
                        sf.force_safe();
                    }
                    let outputs = em.outputs.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    em.shared.publish_safe_outputs(&outputs);
                    w.abort.store(true, Ordering::Release);
                    em.interrupt_python();
                }
            }
            done = wait(CLOSE_ABANDON_NS);
        }
        if done {
            return h.join().ok();
        }
        // The scan thread owns the drivers; it keeps them. Their threads end here.
        if let Some(em) = &self.emergency {
            em.shutdown_drivers();
        }
        self.shared.abandoned.store(true, Ordering::Release);
        drop(h);
        None
    }

    /// True when `close` had to abandon a scan thread stuck in foreign code (see
    /// [`Engine::close`]). The process should exit soon: that thread may still run.
    pub fn scan_abandoned(&self) -> bool {
        self.shared.abandoned.load(Ordering::Acquire)
    }

    /// Why the watchdog thread runs degraded (refused scheduling), if it does.
    pub fn watchdog_degraded(&self) -> Vec<String> {
        self.supervisor
            .as_ref()
            .map(|s| s.degraded.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.close();
    }
}
