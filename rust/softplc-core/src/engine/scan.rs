//! The scan: what the scan thread owns ([`Core`]) and one cycle of a task,
//! `read_inputs` -> `execute` -> `write_outputs`, with commands before, forces around
//! the programs, and timing, statistics, observers and the published snapshot after.
//!
//! Real-time notes: everything here runs on the scan thread. A healthy cycle does not
//! allocate, takes no lock it could wait on (the command queue and the snapshot are
//! taken with `try_lock`; a busy one is left for the next cycle) and makes no syscall
//! beyond the monotonic clock reads (vDSO) and, in real time, the sleep to the next
//! deadline. The fault path (building a [`FaultInfo`], state-change texts) allocates
//! and may lock; it leaves RUN, so it never repeats on a healthy scan.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::clock::{monotonic_ns, sleep_until_ns, ClockKind, EngineClock};
use crate::driver::{Driver, IoCtx, IoStatus, PlcState};
use crate::event::{Event, EventKind, EventSink};
use crate::image::{Image, Layout, Slot, VarId};
use crate::observer::{CycleInfo, CycleObserver};
use crate::program::{Program, ScanCtx};
use crate::retain::writer::RetainCapture;
use crate::stats::StatsRecorder;
use crate::task::{TaskConfig, TaskId};
use crate::timing::{Schedule, Watchdog};
use crate::types::Value;

use super::fault::{panic_text, FaultInfo, FaultKind};
use super::shared::{state_code, Command, Shared, Swap, SwapDone};
use super::watch::TRIPPED;

/// One task as the scan runs it.
pub(super) struct TaskRt {
    pub cfg: TaskConfig,
    pub programs: Vec<Box<dyn Program>>,
    pub schedule: Schedule,
    pub watchdog: Option<Watchdog>,
    pub recorder: StatsRecorder,
    /// Cycles run so far.
    pub cycle: u64,
    pub last_start: Option<u64>,
}

/// When a cycle starts, as the clock loop saw it.
#[derive(Clone, Copy, Debug)]
pub(super) struct CycleStart {
    /// The tick the cycle stands for.
    pub scheduled: u64,
    /// The cycle's one `now` (engine clock).
    pub now: u64,
    /// Wake latency (real time).
    pub latency: u64,
    /// Ticks dropped while the task slept.
    pub missed: u64,
    /// Monotonic time the cycle began (for execution time).
    pub t0: u64,
}

/// Everything the scan thread owns.
pub struct Core {
    pub(super) layout: Arc<Layout>,
    pub(super) image: Image,
    pub(super) tasks: Vec<TaskRt>,
    /// Tasks sorted by (priority, declaration order).
    pub(super) order: Vec<TaskId>,
    pub(super) drivers: Vec<Box<dyn Driver>>,
    pub(super) forces: Vec<Option<Value>>,
    pub(super) forced_ids: Vec<VarId>,
    pub(super) writes: Vec<(VarId, Value)>,
    pub(super) local_cmds: Vec<Command>,
    pub(super) observers: Vec<(u64, Box<dyn CycleObserver>)>,
    pub(super) retired: Vec<(u64, Box<dyn CycleObserver>)>,
    /// Every output's slot and safe value.
    pub(super) outputs: Vec<(Slot, Value)>,
    pub(super) state: PlcState,
    pub(super) clock: ClockKind,
    /// The engine clock as drivers see it; followed once a cycle in virtual time.
    pub(super) engine_clock: EngineClock,
    /// The scan thread ends once the first task has done this many cycles.
    pub(super) quit_at: u64,
    pub(super) events: EventSink,
    pub(super) shared: Arc<Shared>,
    /// Copies the retained variables at the end of each cycle (when configured).
    pub(super) retain: Option<RetainCapture>,
    /// Held qualities: variable, quality, stamp (see `Command::Quality`).
    pub(super) quality_holds: Vec<(VarId, crate::image::Quality, Option<u64>)>,
}

impl Core {
    /// Cycles the first task has run. No allocation, locks or syscalls.
    pub(super) fn first_task_cycles(&self) -> u64 {
        self.tasks[TaskId::FIRST.index()].cycle
    }

    /// Enters `new`. Scan thread; a change (rare, off the healthy path) formats an event
    /// text, which allocates.
    pub(super) fn set_state(&mut self, new: PlcState, now: u64) {
        if self.state == new {
            return;
        }
        let old = self.state;
        self.state = new;
        self.shared.publish_state(new);
        self.state_event(old, new, now);
    }

    fn state_event(&self, old: PlcState, new: PlcState, now: u64) {
        self.events.try_push(
            Event::new(now, EventKind::StateChange, None, format!("{old}->{new}"))
                .with_numbers(state_code(old) as i64, state_code(new) as i64),
        );
    }

    /// The scan thread is back from a cycle the watchdog took: enter FAULT under the
    /// watchdog's cause (already recorded and published), adding the program's own
    /// message (it names the line). Fault path: locks and allocates.
    fn after_trip(&mut self, program_fault: Option<FaultInfo>, now: u64) {
        if let Some(f) = program_fault {
            self.shared.add_to_fault(&f.message);
        }
        self.shared.watch.abort.store(false, Ordering::Release);
        // The watchdog published FAULT already; record it as this thread's state too.
        let old = self.state;
        self.state = PlcState::Fault;
        if old != PlcState::Fault {
            self.state_event(old, PlcState::Fault, now);
        }
        self.shared.publish_state(PlcState::Fault);
    }

    /// Records a fault and enters FAULT. Fault path: locks and allocates.
    fn enter_fault(&mut self, info: FaultInfo) {
        let now = info.t_ns;
        self.events.try_push(
            Event::new(now, EventKind::Fault, info.task, info.to_string())
                .with_numbers(info.cycle as i64, 0),
        );
        *self.shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
        self.set_state(PlcState::Fault, now);
    }

    /// Drains the command queue. Never waits: a busy queue is read next cycle. No
    /// allocation, except a burst of writes beyond the reserved capacity (losing a
    /// write would be worse) and state changes.
    pub(super) fn process_commands(&mut self, now: u64) {
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
                Command::Write(id, v) => self.writes.push((id, v)),
                Command::Quality(id, hold) => {
                    self.quality_holds.retain(|(x, _, _)| *x != id);
                    if let Some(h) = hold {
                        // The stamp that makes the held age true now, then growing.
                        let stamp = h.age_ns.map(|a| now.saturating_sub(a));
                        self.quality_holds.push((id, h.quality, stamp));
                    }
                }
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
                Command::Swap(s) => self.swap(*s, now),
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

    /// Switches programs for an online change, between two cycles: the image grows to
    /// the new layout (existing values stay, new variables take their initial values),
    /// replaced programs hand over their state, forces stay on the variables that still
    /// exist (every existing variable keeps its id). Scan thread: allocates (the image,
    /// the force table and the program lists grow), once, at the switch.
    pub(super) fn swap(&mut self, s: Swap, now: u64) {
        self.image.grow_to(&s.layout, now);
        for (from, to) in &s.conversions {
            if let Ok(v) = self.image.load(*from).convert(to.ty) {
                self.image.store(*to, v);
            }
        }
        self.forces.resize(s.layout.len(), None);
        self.layout = s.layout;
        self.outputs = s.outputs;
        let mut retired = Vec::new();
        for (task, programs) in s.tasks {
            let t = &mut self.tasks[task.index()];
            let old = std::mem::take(&mut t.programs);
            let mut new = Vec::with_capacity(programs.len());
            for np in programs {
                let mut p = np.program;
                if let Some((i, map)) = &np.replaces {
                    if let Some(o) = old.get(*i) {
                        p.adopt(o.state(), map);
                    }
                }
                new.push(p);
            }
            t.programs = new;
            retired.extend(old);
        }
        if let Some(r) = s.retain {
            self.retain = r;
        }
        let done = SwapDone {
            cycle: self.first_task_cycles(),
            t_ns: now,
            retired,
        };
        // The handle waits for this; it takes the lock only briefly.
        *self
            .shared
            .swapped
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(done);
        self.events.try_push(Event::new(
            now,
            EventKind::Info,
            None,
            "online change: programs switched".to_string(),
        ));
    }

    /// Task names and each task's program names, in order (for the watchdog).
    pub(super) fn task_programs(&self) -> Vec<(String, Vec<String>)> {
        self.tasks
            .iter()
            .map(|t| {
                (
                    t.cfg.name.clone(),
                    t.programs.iter().map(|p| p.name().to_string()).collect(),
                )
            })
            .collect()
    }

    /// Held qualities (and stamps) over what the drivers reported. No allocation, locks
    /// or syscalls.
    fn apply_quality_holds(&mut self) {
        for &(id, q, stamp) in &self.quality_holds {
            self.image.quality[id.index()] = q;
            if let Some(s) = stamp {
                self.image.stamp_ns[id.index()] = s;
            }
        }
    }

    /// Stores every forced value. No allocation, locks or syscalls.
    fn apply_forces(&mut self) {
        for id in &self.forced_ids {
            if let Some(v) = self.forces[id.index()] {
                self.image.store(self.layout.var(*id).slot, v);
            }
        }
    }

    /// Stores every output's safe value. No allocation, locks or syscalls.
    pub(super) fn safe_outputs(&mut self) {
        for (slot, v) in &self.outputs {
            self.image.store(*slot, *v);
        }
    }

    /// Runs one cycle of `task`: commands, `read_inputs`, one-time writes, `execute`
    /// (forces, programs, forces), `write_outputs`, then timing, statistics, observers
    /// and the published snapshot. See the module docs for its real-time behaviour.
    pub(super) fn cycle(&mut self, task: TaskId, at: CycleStart) {
        let now = at.now;
        self.process_commands(now);
        let t = &self.tasks[task.index()];
        let dt = match t.last_start {
            Some(prev) => now.saturating_sub(prev),
            None => t.cfg.period_ns,
        };
        let cycle = t.cycle;
        // Drivers' threads read engine time through this clock (virtual time only).
        self.engine_clock.follow(now, at.t0);
        // Inputs and programs run foreign code (plants, Python, compiled loops): the
        // watchdog thread watches them from outside (see `supervisor`).
        self.shared.watch.open(task, cycle, at.t0);
        self.read_inputs(task, now, dt);
        self.apply_writes(now);
        self.apply_quality_holds();
        let fault = self.execute(task, now);
        self.after_execute(fault, now);
        // Outputs: safe values in STOP and FAULT, in this same cycle.
        if self.state != PlcState::Run {
            self.safe_outputs();
        }
        self.write_outputs(now, dt);
        self.end_cycle(task, at, dt);
    }

    /// Step 1: every driver latches its inputs into the image. A driver's failure with
    /// a cause faults the engine (fault path: allocates).
    fn read_inputs(&mut self, task: TaskId, now: u64, dt: u64) {
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
        let Some((name, msg)) = driver_fault else {
            return;
        };
        if self.shared.watch.start.load(Ordering::Acquire) == TRIPPED {
            // Interrupted by the watchdog, which recorded the cause already.
            self.shared.add_to_fault(&format!("driver {name}: {msg}"));
        } else if self.state != PlcState::Fault {
            let t = &self.tasks[task.index()];
            let info = FaultInfo {
                kind: FaultKind::Driver,
                task: Some(task),
                task_name: t.cfg.name.clone(),
                source: name,
                cycle: t.cycle,
                t_ns: now,
                started_ns: now,
                message: msg,
            };
            self.enter_fault(info);
        }
    }

    /// One-time writes land after the inputs are latched. No allocation, locks or
    /// syscalls.
    fn apply_writes(&mut self, now: u64) {
        for (id, v) in self.writes.drain(..) {
            let var = self.layout.var(id);
            self.image.store(var.slot, v);
            self.image.stamp_ns[id.index()] = now;
        }
    }

    /// Step 2, in RUN: forces, then the task's programs in order. Returns the first
    /// program's fault (fault path: allocates); the programs' own real-time behaviour
    /// is theirs (see [`Program::execute`]).
    fn execute(&mut self, task: TaskId, now: u64) -> Option<FaultInfo> {
        if self.state != PlcState::Run {
            return None;
        }
        self.apply_forces();
        let t = &mut self.tasks[task.index()];
        let watch = &self.shared.watch;
        for (pi, p) in t.programs.iter_mut().enumerate() {
            watch.program.store(pi as u32, Ordering::Relaxed);
            let mut cx = ScanCtx {
                image: &mut self.image,
                layout: &self.layout,
                now_ns: now,
                cycle: t.cycle,
                period_ns: t.cfg.period_ns,
                abort: &watch.abort,
            };
            let err = match catch_unwind(AssertUnwindSafe(|| p.execute(&mut cx))) {
                Ok(Ok(())) => continue,
                Ok(Err(f)) => (FaultKind::Program, f.message),
                Err(panic) => (FaultKind::Panic, panic_text(&panic)),
            };
            return Some(FaultInfo {
                kind: err.0,
                task: Some(task),
                task_name: t.cfg.name.clone(),
                source: p.name().to_string(),
                cycle: t.cycle,
                t_ns: now,
                started_ns: now,
                message: err.1,
            });
        }
        None
    }

    /// Closes the watch window: a cycle the watchdog took ends in its fault; otherwise
    /// a program's fault is entered, or the forces are applied again over what the
    /// programs wrote. No allocation, locks or syscalls on a healthy cycle.
    fn after_execute(&mut self, fault: Option<FaultInfo>, now: u64) {
        if !self.shared.watch.close() {
            // The watchdog fired while this cycle ran: it recorded the fault and made
            // the outputs safe already. Keep its cause, add what the program said.
            self.after_trip(fault, now);
        } else if self.state == PlcState::Run {
            match fault {
                Some(f) => self.enter_fault(f),
                None => self.apply_forces(),
            }
        }
    }

    /// Step 3: every driver publishes the outputs (in STOP and FAULT they already hold
    /// their safe values). A panicking driver is caught here and skipped.
    pub(super) fn write_outputs(&mut self, now: u64, dt: u64) {
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

    /// Step 4: timing, the watchdog's and the overrun policy's verdicts, statistics and
    /// observers; then the snapshot for readers (`try_lock`: skipped when a reader
    /// holds it). One monotonic clock read; no allocation except on the fault path.
    fn end_cycle(&mut self, task: TaskId, at: CycleStart, dt: u64) {
        let now = at.now;
        let exec = monotonic_ns().saturating_sub(at.t0);
        let state = self.state;
        let clock = self.clock;
        let t = &mut self.tasks[task.index()];
        let end_time = match clock {
            ClockKind::Real => now + exec,
            // Virtual time has no deadlines: a cycle takes no virtual time.
            ClockKind::Virtual => at.scheduled,
        };
        let end = t.schedule.end(end_time);
        let period = t.last_start.map_or(0, |p| now.saturating_sub(p));
        t.last_start = Some(now);
        let missed_total = at.missed + end.missed;
        let overrun = end.overrun || at.missed > 0;
        let measured = (clock == ClockKind::Real).then_some(at.latency);
        t.recorder
            .record(measured, exec, period, overrun, missed_total);
        let cycle = t.cycle;
        t.cycle += 1;
        let breach = match (&mut t.watchdog, clock, state) {
            (Some(w), ClockKind::Real, PlcState::Run) => w.check(exec),
            _ => None,
        };
        if overrun {
            self.events.try_push(
                Event::new(now, EventKind::Overrun, Some(task), String::new())
                    .with_numbers(missed_total as i64, exec as i64),
            );
        }
        if state == PlcState::Run {
            let fault = |kind, message| FaultInfo {
                kind,
                task: Some(task),
                task_name: self.tasks[task.index()].cfg.name.clone(),
                source: String::new(),
                cycle,
                t_ns: now,
                started_ns: now,
                message,
            };
            if let Some(b) = breach {
                let f = fault(FaultKind::Watchdog, b.to_string());
                self.enter_fault(f);
            } else if end.fault {
                let period_ns = self.tasks[task.index()].cfg.period_ns;
                let f = fault(
                    FaultKind::Overrun,
                    format!(
                        "overrun: cycle took {:.3} ms (started {:.3} ms late), period {:.3} ms",
                        exec as f64 / 1e6,
                        at.latency as f64 / 1e6,
                        period_ns as f64 / 1e6
                    ),
                );
                self.enter_fault(f);
            }
            if self.state == PlcState::Fault {
                // Faulted after the outputs were written: make them safe right away.
                self.safe_outputs();
                self.write_outputs(now, dt);
            }
        }
        let info = CycleInfo {
            task,
            cycle,
            scheduled_ns: at.scheduled,
            start_ns: now,
            exec_ns: exec,
            overrun,
            state: self.state,
        };
        for (_, o) in self.observers.iter_mut() {
            o.on_cycle(&self.image, &info);
        }
        if let Some(r) = &mut self.retain {
            r.capture(&self.image);
        }
        if let Ok(mut snap) = self.shared.snapshot.try_lock() {
            snap.image.copy_from(&self.image);
            snap.now_ns = now;
            snap.cycles = self.tasks[TaskId::FIRST.index()].cycle;
        }
    }

    /// The task due next: earliest due time, then priority, then declaration order.
    /// No allocation, locks or syscalls.
    pub(super) fn next_task(&self) -> (TaskId, u64) {
        let mut best = self.order[0];
        let mut due = self.tasks[best.index()].schedule.next_due();
        for &t in &self.order[1..] {
            let d = self.tasks[t.index()].schedule.next_due();
            if d < due {
                best = t;
                due = d;
            }
        }
        (best, due)
    }

    /// Puts every task's first tick at `origin` (at start, off the scan thread).
    pub(super) fn reset_schedules(&mut self, origin: u64) {
        for t in &mut self.tasks {
            t.schedule = Schedule::new(origin, t.cfg.period_ns, t.cfg.overrun);
            t.last_start = None;
        }
        for s in self.image.stamp_ns.iter_mut() {
            *s = origin;
        }
        self.engine_clock.follow(origin, monotonic_ns());
    }

    /// Virtual time: runs one wake-up (the due task), returns the time it stood for.
    pub(super) fn virtual_step(&mut self) -> u64 {
        let (task, due) = self.next_task();
        let t0 = monotonic_ns();
        let b = self.tasks[task.index()].schedule.begin(due);
        self.cycle(
            task,
            CycleStart {
                scheduled: b.scheduled,
                now: b.scheduled,
                latency: 0,
                missed: 0,
                t0,
            },
        );
        due
    }

    /// The real-time loop, run on the scan thread until `quit`.
    pub(super) fn run_realtime(&mut self) {
        const MAX_SLEEP: u64 = 50_000_000;
        loop {
            if self.shared.quit.load(Ordering::Acquire) {
                break;
            }
            let (task, due) = self.next_task();
            let now = monotonic_ns();
            if due > now + MAX_SLEEP {
                // Long periods: wake regularly to notice a quit request.
                sleep_until_ns(now + MAX_SLEEP);
                continue;
            }
            sleep_until_ns(due);
            let woke = monotonic_ns();
            let b = self.tasks[task.index()].schedule.begin(woke);
            self.cycle(
                task,
                CycleStart {
                    scheduled: b.scheduled,
                    now: woke,
                    latency: b.latency,
                    missed: b.missed,
                    t0: woke,
                },
            );
            if self.first_task_cycles() >= self.quit_at {
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
