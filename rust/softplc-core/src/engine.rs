//! The scan engine: tasks, the cycle (`read_inputs` -> forces -> `execute` -> forces ->
//! `write_outputs` -> statistics), states, forcing, faults, and the two clocks.
//!
//! Multi-task scheduling is a cyclic executive on one scan thread: at each wake-up the
//! due tasks run one after another, highest priority (lowest number) first. Tasks never
//! preempt each other, so they share one process image without locks, and virtual time
//! replays the exact same interleaving every run.
//!
//! The scan thread owns the [`Core`]. Other threads talk to it through [`Shared`]:
//! commands go in a queue the scan drains with `try_lock` at the start of each cycle,
//! and the image is published into a snapshot with `try_lock` at the end of each cycle.
//! The scan never waits on either lock.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::clock::{monotonic_ns, sleep_until_ns, ClockKind};
use crate::driver::{Driver, DriverMonitor, IoCtx, IoError, IoStatus, PlcState};
use crate::event::{Event, EventKind, EventSink};
use crate::image::{ConfigError, Image, Layout, Slot, VarId};
use crate::observer::{CycleInfo, CycleObserver};
use crate::program::{Interrupt, Program, ProgramKind, ScanCtx};
use crate::rt::{self, RtRequest, RtStatus};
use crate::stats::{task_stats, StatsReader, StatsRecorder, TaskFigures};
use crate::supervisor::{Emergency, HardLimit, Supervisor, Watch, TRIPPED};
use crate::timing::{OverrunPolicy, Schedule, Watchdog};
use crate::types::Value;

/// How long `close` waits for the scan thread to finish its cycle before it forces the
/// outputs safe and interrupts the code the scan is stuck in.
pub const CLOSE_GRACE_NS: u64 = 500_000_000;
/// How long `close` then waits before it abandons a scan thread that never returns.
pub const CLOSE_ABANDON_NS: u64 = 1_500_000_000;

/// Configuration of one cyclic task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskConfig {
    /// Name (unique).
    pub name: String,
    /// Period in nanoseconds (> 0).
    pub period_ns: u64,
    /// Priority: 0 is highest. Orders tasks that are due at the same time.
    pub priority: u8,
    /// Watchdog: execution-time limit (ns) and consecutive breaches tolerated.
    pub watchdog: Option<(u64, u32)>,
    /// Overrun policy.
    pub overrun: OverrunPolicy,
}

impl TaskConfig {
    /// A task with default priority (10), no watchdog and the Skip policy.
    pub fn new(name: &str, period_ns: u64) -> TaskConfig {
        TaskConfig {
            name: name.to_string(),
            period_ns,
            priority: 10,
            watchdog: None,
            overrun: OverrunPolicy::Skip,
        }
    }
}

/// Why the engine is in FAULT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    /// `program`, `watchdog`, `overrun`, `driver` or `panic`.
    pub kind: &'static str,
    /// Task name (empty when not task-related).
    pub task: String,
    /// Program or driver name (empty when not applicable).
    pub source: String,
    /// The task's cycle number when it happened.
    pub cycle: u64,
    /// Engine-clock time it was detected.
    pub t_ns: u64,
    /// Engine-clock time the faulting cycle started (for a watchdog fault, the start
    /// of the cycle that ran too long; `t_ns` is when the watchdog fired).
    pub started_ns: u64,
    /// The cause: a traceback, or the overrun figures.
    pub message: String,
}

impl std::fmt::Display for FaultInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} fault", self.kind)?;
        if !self.task.is_empty() {
            write!(f, " in task {:?}", self.task)?;
        }
        if !self.source.is_empty() {
            write!(f, " ({})", self.source)?;
        }
        write!(f, " at cycle {}: {}", self.cycle, self.message)
    }
}

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
}

struct Snapshot {
    image: Image,
    now_ns: u64,
    cycles: u64,
}

/// State shared between the engine handle, the scan thread and the watchdog thread.
pub(crate) struct Shared {
    commands: Mutex<Vec<Command>>,
    snapshot: Mutex<Snapshot>,
    state: AtomicU8,
    fault: Mutex<Option<FaultInfo>>,
    quit: AtomicBool,
    /// Engine-clock time of the first tick.
    origin: AtomicU64,
    rt: Mutex<Option<RtStatus>>,
    graveyard: Mutex<Vec<(u64, Box<dyn CycleObserver>)>>,
    /// The watch window of the cycle in progress (see `supervisor`).
    pub(crate) watch: Watch,
    /// `close` gave up on a scan thread that never returned.
    abandoned: AtomicBool,
}

impl Shared {
    /// The state as last published.
    pub(crate) fn state_now(&self) -> PlcState {
        state_of(self.state.load(Ordering::Acquire))
    }

    /// Records a fault and publishes FAULT (off the scan thread: the watchdog).
    pub(crate) fn set_fault(&self, info: FaultInfo) {
        *self.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
        self.state
            .store(state_code(PlcState::Fault), Ordering::Release);
    }

    /// Appends a line to the recorded fault's message (where stuck code was).
    pub(crate) fn add_to_fault(&self, line: &str) {
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

    /// Makes the published snapshot show every output at its safe value.
    pub(crate) fn publish_safe_outputs(&self, outputs: &[(Slot, Value)]) {
        let mut snap = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        for (slot, v) in outputs {
            snap.image.store(*slot, *v);
        }
    }
}

fn state_code(s: PlcState) -> u8 {
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

struct TaskRt {
    cfg: TaskConfig,
    programs: Vec<Box<dyn Program>>,
    schedule: Schedule,
    watchdog: Option<Watchdog>,
    recorder: StatsRecorder,
    cycle: u64,
    last_start: Option<u64>,
}

/// Everything the scan thread owns.
pub struct Core {
    layout: Arc<Layout>,
    image: Image,
    tasks: Vec<TaskRt>,
    /// Task indices sorted by (priority, declaration order).
    order: Vec<usize>,
    drivers: Vec<Box<dyn Driver>>,
    forces: Vec<Option<Value>>,
    forced_ids: Vec<VarId>,
    writes: Vec<(VarId, Value)>,
    local_cmds: Vec<Command>,
    observers: Vec<(u64, Box<dyn CycleObserver>)>,
    retired: Vec<(u64, Box<dyn CycleObserver>)>,
    outputs: Vec<(crate::image::Slot, Value)>,
    state: PlcState,
    clock: ClockKind,
    /// The scan thread ends once the first task has done this many cycles.
    quit_at: u64,
    events: EventSink,
    shared: Arc<Shared>,
}

/// Builds an [`Engine`]: layout, tasks with their programs, drivers.
pub struct EngineBuilder {
    layout: Layout,
    tasks: Vec<(TaskConfig, Vec<Box<dyn Program>>)>,
    drivers: Vec<Box<dyn Driver>>,
    clock: ClockKind,
    rt: RtRequest,
    interrupt: Option<Arc<dyn Interrupt>>,
}

impl EngineBuilder {
    /// A builder over a finished layout.
    pub fn new(layout: Layout, clock: ClockKind) -> EngineBuilder {
        EngineBuilder {
            layout,
            tasks: Vec::new(),
            drivers: Vec::new(),
            clock,
            rt: RtRequest::default(),
            interrupt: None,
        }
    }

    /// Registers what interrupts interpreted code stuck on the scan thread (the Python
    /// bindings register one when a Python program or plant runs there).
    pub fn interrupt(&mut self, i: Arc<dyn Interrupt>) -> &mut Self {
        self.interrupt = Some(i);
        self
    }

    /// Sets the real-time request for the scan thread (ignored in virtual time).
    pub fn realtime(&mut self, rt: RtRequest) -> &mut Self {
        self.rt = rt;
        self
    }

    /// Adds a task; its programs run in the order given.
    pub fn task(
        &mut self,
        cfg: TaskConfig,
        programs: Vec<Box<dyn Program>>,
    ) -> Result<&mut Self, ConfigError> {
        if cfg.period_ns == 0 {
            return Err(ConfigError::new(format!(
                "task {:?}: the period must be greater than 0",
                cfg.name
            )));
        }
        if self.tasks.iter().any(|(c, _)| c.name == cfg.name) {
            return Err(ConfigError::new(format!(
                "duplicate task name {:?}",
                cfg.name
            )));
        }
        if let Some((limit, _)) = cfg.watchdog {
            if limit == 0 {
                return Err(ConfigError::new(format!(
                    "task {:?}: the watchdog limit must be greater than 0",
                    cfg.name
                )));
            }
        }
        let mut names: Vec<&str> = self
            .tasks
            .iter()
            .flat_map(|(_, ps)| ps.iter().map(|p| p.name()))
            .collect();
        for p in &programs {
            if names.contains(&p.name()) {
                return Err(ConfigError::new(format!(
                    "duplicate program name {:?}",
                    p.name()
                )));
            }
            names.push(p.name());
        }
        self.tasks.push((cfg, programs));
        Ok(self)
    }

    /// Adds a driver, binding it to the layout now (errors name the driver's culprit).
    pub fn driver(&mut self, mut d: Box<dyn Driver>) -> Result<&mut Self, ConfigError> {
        if self.drivers.iter().any(|x| x.name() == d.name()) {
            return Err(ConfigError::new(format!(
                "duplicate driver name {:?}",
                d.name()
            )));
        }
        d.bind(&self.layout)?;
        self.drivers.push(d);
        Ok(self)
    }

    /// The layout being built on.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Builds the engine (in STOP, not started).
    pub fn build(self) -> Result<Engine, ConfigError> {
        if self.tasks.is_empty() {
            return Err(ConfigError::new("the engine has no task"));
        }
        let layout = Arc::new(self.layout);
        let image = Image::new(&layout);
        let events = EventSink::new();
        let shared = Arc::new(Shared {
            commands: Mutex::new(Vec::with_capacity(256)),
            snapshot: Mutex::new(Snapshot {
                image: image.clone(),
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
        });
        let mut readers = Vec::new();
        let mut tasks = Vec::new();
        let mut task_info = Vec::new();
        for (cfg, programs) in self.tasks {
            let (recorder, reader) = task_stats();
            readers.push(reader);
            task_info.push(TaskInfo {
                name: cfg.name.clone(),
                period_ns: cfg.period_ns,
                priority: cfg.priority,
                programs: programs
                    .iter()
                    .map(|p| (p.name().to_string(), p.kind()))
                    .collect(),
            });
            tasks.push(TaskRt {
                schedule: Schedule::new(0, cfg.period_ns, cfg.overrun),
                watchdog: cfg.watchdog.map(|(l, t)| Watchdog::new(l, t)),
                cfg,
                programs,
                recorder,
                cycle: 0,
                last_start: None,
            });
        }
        let mut order: Vec<usize> = (0..tasks.len()).collect();
        order.sort_by_key(|&i| (tasks[i].cfg.priority, i));
        let outputs = layout
            .vars()
            .iter()
            .filter(|v| v.slot.area == crate::address::Area::Output)
            .map(|v| (v.slot, v.safe))
            .collect();
        let n = layout.len();
        let monitors = self
            .drivers
            .iter()
            .filter_map(|d| d.monitor().map(|m| (d.name().to_string(), m)))
            .collect();
        let core = Core {
            image,
            tasks,
            order,
            drivers: self.drivers,
            forces: vec![None; n],
            forced_ids: Vec::with_capacity(n),
            writes: Vec::with_capacity(256),
            local_cmds: Vec::with_capacity(256),
            observers: Vec::with_capacity(8),
            retired: Vec::with_capacity(8),
            outputs,
            state: PlcState::Stop,
            clock: self.clock,
            quit_at: u64::MAX,
            events: events.clone(),
            shared: shared.clone(),
            layout: layout.clone(),
        };
        let limits = tasks_limits(&core.tasks);
        let interrupt = self.interrupt;
        Ok(Engine {
            core: Some(Box::new(core)),
            thread: None,
            supervisor: None,
            emergency: None,
            limits,
            interrupt,
            shared,
            layout,
            clock: self.clock,
            rt: self.rt,
            readers,
            tasks: task_info,
            forced: Mutex::new(BTreeMap::new()),
            events,
            started: false,
            closed: false,
            next_observer: 1,
            monitors,
        })
    }
}

/// Static facts about a task, for status displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// Name.
    pub name: String,
    /// Period (ns).
    pub period_ns: u64,
    /// Priority.
    pub priority: u8,
    /// Programs in order, with how each runs.
    pub programs: Vec<(String, ProgramKind)>,
}

impl Core {
    fn set_state(&mut self, new: PlcState, now: u64) {
        if self.state == new {
            return;
        }
        let old = self.state;
        self.state = new;
        self.shared.state.store(state_code(new), Ordering::Release);
        // A state change is rare and off the healthy path; the text may allocate.
        self.events.try_push(Event {
            t_ns: now,
            kind: EventKind::StateChange,
            task: -1,
            a: state_code(old) as i64,
            b: state_code(new) as i64,
            text: format!("{old}->{new}"),
        });
    }

    /// The scan thread is back from a cycle the watchdog took: enter FAULT under the
    /// watchdog's cause (already recorded and published), adding the program's own
    /// message (it names the line).
    fn after_trip(&mut self, program_fault: Option<FaultInfo>, now: u64) {
        if let Some(f) = program_fault {
            self.shared.add_to_fault(&f.message);
        }
        self.shared.watch.abort.store(false, Ordering::Release);
        // The watchdog published FAULT already; record it as this thread's state too.
        let old = self.state;
        self.state = PlcState::Fault;
        if old != PlcState::Fault {
            self.events.try_push(Event {
                t_ns: now,
                kind: EventKind::StateChange,
                task: -1,
                a: state_code(old) as i64,
                b: state_code(PlcState::Fault) as i64,
                text: format!("{old}->{}", PlcState::Fault),
            });
        }
        self.shared
            .state
            .store(state_code(PlcState::Fault), Ordering::Release);
    }

    fn enter_fault(&mut self, info: FaultInfo) {
        let now = info.t_ns;
        self.events.try_push(Event {
            t_ns: now,
            kind: EventKind::Fault,
            task: self
                .tasks
                .iter()
                .position(|t| t.cfg.name == info.task)
                .map_or(-1, |i| i as i32),
            a: info.cycle as i64,
            b: 0,
            text: info.to_string(),
        });
        // The fault path may lock: the programs are stopping anyway.
        *self.shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
        self.set_state(PlcState::Fault, now);
    }

    /// Drains the command queue. Never waits: a busy queue is read next cycle.
    fn process_commands(&mut self, now: u64) {
        if let Ok(mut q) = self.shared.commands.try_lock() {
            std::mem::swap(&mut *q, &mut self.local_cmds);
        }
        let mut cmds = std::mem::take(&mut self.local_cmds);
        for c in cmds.drain(..) {
            match c {
                Command::Force(id, v) => {
                    if self.forces[id.index()].is_none() {
                        self.forced_ids.push(id);
                    }
                    self.forces[id.index()] = Some(v);
                }
                Command::Unforce(id) => {
                    self.forces[id.index()] = None;
                    self.forced_ids.retain(|x| *x != id);
                }
                Command::UnforceAll => {
                    for id in self.forced_ids.drain(..) {
                        self.forces[id.index()] = None;
                    }
                }
                // Bursts beyond the reserved capacity allocate; losing a write would be
                // worse.
                Command::Write(id, v) => self.writes.push((id, v)),
                Command::Run => {
                    if self.state == PlcState::Stop {
                        for t in &mut self.tasks {
                            if let Some(w) = &mut t.watchdog {
                                w.reset();
                            }
                        }
                        self.set_state(PlcState::Run, now);
                    }
                }
                Command::Stop => {
                    if self.state == PlcState::Run {
                        self.set_state(PlcState::Stop, now);
                    }
                }
                Command::ClearFault => {
                    if self.state == PlcState::Fault {
                        *self.shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        self.set_state(PlcState::Stop, now);
                    }
                }
                Command::AddObserver(id, obs) => self.observers.push((id, obs)),
                Command::StopAtCycle(n) => self.quit_at = n,
                Command::RemoveObserver(id) => {
                    if let Some(i) = self.observers.iter().position(|(x, _)| *x == id) {
                        let o = self.observers.swap_remove(i);
                        self.retired.push(o);
                    }
                }
            }
        }
        self.local_cmds = cmds;
        if !self.retired.is_empty() {
            if let Ok(mut g) = self.shared.graveyard.try_lock() {
                g.append(&mut self.retired);
            }
        }
    }

    fn apply_forces(&mut self) {
        for id in &self.forced_ids {
            if let Some(v) = self.forces[id.index()] {
                self.image.store(self.layout.var(*id).slot, v);
            }
        }
    }

    fn safe_outputs(&mut self) {
        for (slot, v) in &self.outputs {
            self.image.store(*slot, *v);
        }
    }

    /// Runs one cycle of task `ti`. `now` is the cycle's one `now`; `latency` the wake
    /// latency; `t0` the monotonic time the cycle began (for execution time).
    fn cycle(&mut self, ti: usize, scheduled: u64, now: u64, latency: u64, missed: u64, t0: u64) {
        self.process_commands(now);
        let dt = match self.tasks[ti].last_start {
            Some(prev) => now.saturating_sub(prev),
            None => self.tasks[ti].cfg.period_ns,
        };
        // Inputs and programs run foreign code (plants, Python, compiled loops): the
        // watchdog thread watches them from outside (see `supervisor`).
        self.shared.watch.open(ti, self.tasks[ti].cycle, t0);
        // 1. read inputs
        let mut driver_fault = None;
        for d in self.drivers.iter_mut() {
            let mut cx = IoCtx {
                image: &mut self.image,
                layout: &self.layout,
                now_ns: now,
                dt_ns: dt,
                state: self.state,
            };
            let st = catch_unwind(AssertUnwindSafe(|| d.read_inputs(&mut cx)))
                .unwrap_or(IoStatus::Failed);
            if st == IoStatus::Failed && driver_fault.is_none() {
                if let Some(msg) = d.take_fault() {
                    driver_fault = Some((d.name().to_string(), msg));
                }
            }
        }
        if let Some((name, msg)) = driver_fault {
            if self.shared.watch.start.load(Ordering::Acquire) == TRIPPED {
                // Interrupted by the watchdog, which recorded the cause already.
                self.shared.add_to_fault(&format!("driver {name}: {msg}"));
            } else if self.state != PlcState::Fault {
                let cycle = self.tasks[ti].cycle;
                self.enter_fault(FaultInfo {
                    kind: "driver",
                    task: self.tasks[ti].cfg.name.clone(),
                    source: name,
                    cycle,
                    t_ns: now,
                    started_ns: now,
                    message: msg,
                });
            }
        }
        // One-time writes land after the inputs are latched.
        for (id, v) in self.writes.drain(..) {
            let var = self.layout.var(id);
            self.image.store(var.slot, v);
            self.image.stamp_ns[id.index()] = now;
        }
        // 2. forces, programs, forces
        let mut fault = None;
        if self.state == PlcState::Run {
            self.apply_forces();
            let task = &mut self.tasks[ti];
            let watch = &self.shared.watch;
            for (pi, p) in task.programs.iter_mut().enumerate() {
                watch.program.store(pi as u32, Ordering::Relaxed);
                let mut cx = ScanCtx {
                    image: &mut self.image,
                    layout: &self.layout,
                    now_ns: now,
                    cycle: task.cycle,
                    period_ns: task.cfg.period_ns,
                    abort: &watch.abort,
                };
                let r = catch_unwind(AssertUnwindSafe(|| p.execute(&mut cx)));
                let err = match r {
                    Ok(Ok(())) => None,
                    Ok(Err(f)) => Some(("program", f.message)),
                    Err(panic) => Some(("panic", panic_text(&panic))),
                };
                if let Some((kind, message)) = err {
                    fault = Some(FaultInfo {
                        kind,
                        task: task.cfg.name.clone(),
                        source: p.name().to_string(),
                        cycle: task.cycle,
                        t_ns: now,
                        started_ns: now,
                        message,
                    });
                    break;
                }
            }
        }
        if !self.shared.watch.close() {
            // The watchdog fired while this cycle ran: it recorded the fault and made
            // the outputs safe already. Keep its cause, add what the program said.
            self.after_trip(fault.take(), now);
        } else if self.state == PlcState::Run {
            match fault {
                Some(f) => self.enter_fault(f),
                None => self.apply_forces(),
            }
        }
        // 3. outputs: safe values in STOP and FAULT, in this same cycle.
        if self.state != PlcState::Run {
            self.safe_outputs();
        }
        self.write_outputs(now, dt);
        // 4. timing, watchdog, statistics
        let t1 = monotonic_ns();
        let exec = t1.saturating_sub(t0);
        let state = self.state;
        let task = &mut self.tasks[ti];
        let end_time = match self.clock {
            ClockKind::Real => now + exec,
            // Virtual time has no deadlines: a cycle takes no virtual time.
            ClockKind::Virtual => scheduled,
        };
        let end = task.schedule.end(end_time);
        let period = task.last_start.map_or(0, |p| now.saturating_sub(p));
        task.last_start = Some(now);
        let missed_total = missed + end.missed;
        let overrun = end.overrun || missed > 0;
        let measured = (self.clock == ClockKind::Real).then_some(latency);
        task.recorder
            .record(measured, exec, period, overrun, missed_total);
        let cycle = task.cycle;
        task.cycle += 1;
        let mut breach = None;
        if self.clock == ClockKind::Real && state == PlcState::Run {
            if let Some(w) = &mut task.watchdog {
                breach = w.check(exec);
            }
        }
        if overrun {
            self.events.try_push(Event {
                t_ns: now,
                kind: EventKind::Overrun,
                task: ti as i32,
                a: missed_total as i64,
                b: exec as i64,
                text: String::new(),
            });
        }
        if state == PlcState::Run {
            if let Some(b) = breach {
                let task_name = self.tasks[ti].cfg.name.clone();
                self.enter_fault(FaultInfo {
                    kind: "watchdog",
                    task: task_name,
                    source: String::new(),
                    cycle,
                    t_ns: now,
                    started_ns: now,
                    message: b.to_string(),
                });
            } else if end.fault {
                let task_name = self.tasks[ti].cfg.name.clone();
                let period_ns = self.tasks[ti].cfg.period_ns;
                self.enter_fault(FaultInfo {
                    kind: "overrun",
                    task: task_name,
                    source: String::new(),
                    cycle,
                    t_ns: now,
                    started_ns: now,
                    message: format!(
                        "overrun: cycle took {:.3} ms (started {:.3} ms late), period {:.3} ms",
                        exec as f64 / 1e6,
                        latency as f64 / 1e6,
                        period_ns as f64 / 1e6
                    ),
                });
            }
            if self.state == PlcState::Fault {
                // Faulted after the outputs were written: make them safe right away.
                self.safe_outputs();
                self.write_outputs(now, dt);
            }
        }
        let info = CycleInfo {
            task: ti as u16,
            cycle,
            scheduled_ns: scheduled,
            start_ns: now,
            exec_ns: exec,
            overrun,
            state: self.state,
        };
        for (_, o) in self.observers.iter_mut() {
            o.on_cycle(&self.image, &info);
        }
        // 5. publish a consistent snapshot for readers
        if let Ok(mut snap) = self.shared.snapshot.try_lock() {
            snap.image.copy_from(&self.image);
            snap.now_ns = now;
            snap.cycles = self.tasks[0].cycle;
        }
    }

    fn write_outputs(&mut self, now: u64, dt: u64) {
        for d in self.drivers.iter_mut() {
            let mut cx = IoCtx {
                image: &mut self.image,
                layout: &self.layout,
                now_ns: now,
                dt_ns: dt,
                state: self.state,
            };
            let _ = catch_unwind(AssertUnwindSafe(|| d.write_outputs(&mut cx)));
        }
    }

    /// The task due next: earliest due time, then priority, then declaration order.
    fn next_task(&self) -> (usize, u64) {
        let mut best = self.order[0];
        let mut due = self.tasks[best].schedule.next_due();
        for &i in &self.order[1..] {
            let d = self.tasks[i].schedule.next_due();
            if d < due {
                best = i;
                due = d;
            }
        }
        (best, due)
    }

    fn reset_schedules(&mut self, origin: u64) {
        for t in &mut self.tasks {
            t.schedule = Schedule::new(origin, t.cfg.period_ns, t.cfg.overrun);
            t.last_start = None;
        }
        for s in self.image.stamp_ns.iter_mut() {
            *s = origin;
        }
    }

    /// Virtual time: runs one wake-up (the due tasks), returns the time it stood for.
    fn virtual_step(&mut self) -> u64 {
        let (ti, due) = self.next_task();
        let t0 = monotonic_ns();
        let b = self.tasks[ti].schedule.begin(due);
        self.cycle(ti, b.scheduled, b.scheduled, 0, 0, t0);
        due
    }

    /// The real-time loop, run on the scan thread until `quit`.
    fn run_realtime(&mut self) {
        const MAX_SLEEP: u64 = 50_000_000;
        loop {
            if self.shared.quit.load(Ordering::Acquire) {
                break;
            }
            let (ti, due) = self.next_task();
            let now = monotonic_ns();
            if due > now + MAX_SLEEP {
                // Long periods: wake regularly to notice a quit request.
                sleep_until_ns(now + MAX_SLEEP);
                continue;
            }
            sleep_until_ns(due);
            let woke = monotonic_ns();
            let b = self.tasks[ti].schedule.begin(woke);
            self.cycle(ti, b.scheduled, woke, b.latency, b.missed, woke);
            if self.tasks[0].cycle >= self.quit_at {
                break;
            }
        }
        // The scan is over: no sample may stay pending behind a reader's lock.
        for t in self.tasks.iter_mut() {
            t.recorder.flush();
        }
        // Last cycle: outputs to their safe values, drivers told.
        let now = monotonic_ns();
        self.set_state(
            if self.state == PlcState::Fault {
                PlcState::Fault
            } else {
                PlcState::Stop
            },
            now,
        );
        self.safe_outputs();
        self.write_outputs(now, 0);
        self.process_commands(now);
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_string()
    }
}

/// The engine handle: starts and stops the scan, sends commands, reads snapshots and
/// statistics. Methods take `&self` where they only talk to the scan through
/// [`Shared`], so one handle can be used from several threads.
pub struct Engine {
    core: Option<Box<Core>>,
    thread: Option<JoinHandle<Box<Core>>>,
    shared: Arc<Shared>,
    layout: Arc<Layout>,
    clock: ClockKind,
    rt: RtRequest,
    readers: Vec<StatsReader>,
    tasks: Vec<TaskInfo>,
    forced: Mutex<BTreeMap<VarId, Value>>,
    events: EventSink,
    started: bool,
    closed: bool,
    next_observer: u64,
    monitors: Vec<(String, Arc<dyn DriverMonitor>)>,
    /// The watchdog thread (real time, when a task has a watchdog).
    supervisor: Option<Supervisor>,
    /// What makes outputs safe without the scan thread (set at start).
    emergency: Option<Arc<Emergency>>,
    /// Each task's watchdog as the watchdog thread applies it.
    limits: Vec<Option<HardLimit>>,
    interrupt: Option<Arc<dyn Interrupt>>,
}

fn tasks_limits(tasks: &[TaskRt]) -> Vec<Option<HardLimit>> {
    tasks
        .iter()
        .map(|t| t.cfg.watchdog.map(|(l, n)| HardLimit::new(l, n)))
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
        for i in 0..core.drivers.len() {
            if let Err(e) = core.drivers[i].start(self.events.clone()) {
                for d in core.drivers[..i].iter_mut() {
                    d.stop();
                }
                self.core = Some(core);
                self.closed = true;
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
            tasks: core
                .tasks
                .iter()
                .map(|t| {
                    (
                        t.cfg.name.clone(),
                        t.programs.iter().map(|p| p.name().to_string()).collect(),
                    )
                })
                .collect(),
            outputs: core.outputs.clone(),
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
                                    kind: "panic",
                                    task: String::new(),
                                    source: "scan thread".into(),
                                    cycle: 0,
                                    t_ns: monotonic_ns(),
                                    started_ns: 0,
                                    message: panic_text(&p),
                                });
                            shared
                                .state
                                .store(state_code(PlcState::Fault), Ordering::Release);
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
        let target = core.tasks[0].cycle + n;
        let mut t = core.next_task().1;
        while core.tasks[0].cycle < target {
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
        self.events.push(Event {
            t_ns: self.now_ns(),
            kind: EventKind::Force,
            task: -1,
            a: id.0 as i64,
            b: 0,
            text: format!("{}={}", self.layout.var(id).name, v),
        });
        self.send(Command::Force(id, v));
    }

    /// Releases a force.
    pub fn unforce(&self, id: VarId) {
        self.forced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        self.events.push(Event {
            t_ns: self.now_ns(),
            kind: EventKind::Unforce,
            task: -1,
            a: id.0 as i64,
            b: 0,
            text: self.layout.var(id).name.clone(),
        });
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
        self.events.push(Event {
            t_ns: self.now_ns(),
            kind: EventKind::Write,
            task: -1,
            a: id.0 as i64,
            b: 0,
            text: format!("{}={}", self.layout.var(id).name, v),
        });
        self.send(Command::Write(id, v));
        Ok(())
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
        state_of(self.shared.state.load(Ordering::Acquire))
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
                    return;
                }
            }
        } else if let Some(core) = self.core.as_mut() {
            if self.started {
                let now = core.tasks[0].schedule.next_due();
                if core.state == PlcState::Run {
                    core.set_state(PlcState::Stop, now);
                }
                core.safe_outputs();
                core.write_outputs(now, 0);
            }
        }
        if let Some(core) = self.core.as_mut() {
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
                let took = s != 0
                    && s != TRIPPED
                    && w.start
                        .compare_exchange(s, TRIPPED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                if took {
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
                    em.shared.publish_safe_outputs(&em.outputs);
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
