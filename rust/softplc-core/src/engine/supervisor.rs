//! The watchdog thread: enforces each task's watchdog from outside the scan thread.
//!
//! The scan thread's own check (`timing::Watchdog`) runs when a cycle ends, so it can
//! never catch a cycle that does not end: a Python loop that never returns, a compiled
//! loop far from its instruction budget, a plant model stuck in a call. This thread
//! can. The scan thread marks the part of each cycle that runs foreign code (inputs and
//! programs) as a *watch window*: it stores the window's start before and clears it
//! after, with one compare-exchange (no lock, no syscall). The watchdog thread reads the
//! window; once a window has been open longer than the task's hard limit, it takes the
//! window with a compare-exchange of its own (so exactly one side wins a cycle that ends
//! right at the deadline) and then, without waiting on the scan thread:
//!
//! 1. records the fault and publishes the FAULT state;
//! 2. has every driver publish its outputs' safe values ([`SafeState::force_safe`]) and
//!    makes the published snapshot show them;
//! 3. raises the abort flag that compiled loops poll on backward jumps, and interrupts
//!    Python code on the scan thread ([`Interrupt`]), again every
//!    [`REINTERRUPT_NS`] while the cycle stays stuck (Python code may swallow one
//!    exception).
//!
//! When the stuck code does return, the scan thread finds its window taken, enters FAULT
//! with the recorded cause (plus the program's own message, which names the line), and
//! keeps cycling in FAULT, outputs safe, until the fault is cleared.
//!
//! The hard limit is CODESYS's rule: a task with limit `L` and tolerance `n` (n breaches
//! in a row tolerated at cycle end) faults at once when one cycle has run `L * (n + 1)`.
//!
//! Real-time notes: this thread runs at a SCHED_FIFO priority one above the scan's and
//! off the scan's CPU where the machine has another, so that a runaway scan thread
//! cannot starve it. It wakes every quarter of the shortest hard limit while idle, and
//! at the deadline of a watched window; the scan thread pays two atomic stores a cycle.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::clock::{monotonic_ns, sleep_until_ns};
use crate::driver::{PlcState, SafeState};
use crate::event::{Event, EventKind, EventSink};
use crate::image::Slot;
use crate::program::Interrupt;
use crate::types::Value;

use super::fault::{FaultInfo, FaultKind};
use super::shared::Shared;
use super::watch::TRIPPED;

/// How often a stuck cycle's Python code is interrupted again.
pub const REINTERRUPT_NS: u64 = 200_000_000;

/// What the watchdog thread (and `close`, when it gives up on a stuck scan) needs to
/// put the machine in a safe state without the scan thread.
pub(crate) struct Emergency {
    pub shared: Arc<Shared>,
    pub safe: Vec<Arc<dyn SafeState>>,
    pub interrupt: Option<Arc<dyn Interrupt>>,
    /// Task names, and each task's program names in order (by task index); replaced by
    /// an online change.
    pub tasks: Mutex<Vec<(String, Vec<String>)>>,
    /// Every output's slot and safe value; replaced by an online change.
    pub outputs: Mutex<Vec<(Slot, Value)>>,
    pub events: EventSink,
}

impl Emergency {
    /// Takes the machine to FAULT with safe outputs, from any thread. `started` is the
    /// stuck cycle's start, `why` the fault message; the task, program and cycle come
    /// from the watch window.
    pub fn trip(&self, started: u64, why: String, now: u64) {
        let w = &self.shared.watch;
        let task = w.task();
        let pi = w.program.load(Ordering::Relaxed);
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let (task_name, source) = match tasks.get(task.index()) {
            Some((t, progs)) => (
                t.clone(),
                progs.get(pi as usize).cloned().unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        };
        drop(tasks);
        let already = self.shared.state_now() == PlcState::Fault;
        if !already {
            let info = FaultInfo {
                kind: FaultKind::Watchdog,
                task: Some(task),
                task_name,
                source,
                cycle: w.cycle.load(Ordering::Relaxed),
                t_ns: now,
                started_ns: started,
                message: why,
            };
            self.events.push(
                Event::new(now, EventKind::Fault, Some(task), info.to_string())
                    .with_numbers(info.cycle as i64, 0),
            );
            self.shared.set_fault(info);
        }
        // Outputs first: nothing below may delay them.
        for s in &self.safe {
            s.force_safe();
        }
        let outputs = self
            .outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.shared.publish_safe_outputs(&outputs);
        w.abort.store(true, Ordering::Release);
        self.interrupt_python();
    }

    /// Interrupts Python code on the scan thread, if any can run there; the place it
    /// was at is added to the fault message.
    pub fn interrupt_python(&self) {
        if let Some(i) = &self.interrupt {
            let shared = self.shared.clone();
            i.interrupt(Box::new(move |place| shared.add_to_fault(&place)));
        }
    }

    /// Abandons a scan thread that never returned: the drivers' threads are told to
    /// end (the scan thread owns the drivers themselves).
    pub fn shutdown_drivers(&self) {
        for s in &self.safe {
            s.shutdown();
        }
    }
}

/// A task's limit as the watchdog thread applies it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HardLimit {
    /// Longest a single cycle may run (`limit * (tolerance + 1)`).
    pub hard_ns: u64,
    /// The configured limit and tolerance, for the message.
    pub limit_ns: u64,
    pub tolerance: u32,
}

impl HardLimit {
    pub fn new(limit_ns: u64, tolerance: u32) -> HardLimit {
        HardLimit {
            hard_ns: limit_ns.saturating_mul(u64::from(tolerance) + 1),
            limit_ns,
            tolerance,
        }
    }
}

/// The running watchdog thread.
pub(crate) struct Supervisor {
    quit: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Why the thread could not get its scheduling (for the status).
    pub degraded: Arc<Mutex<Vec<String>>>,
}

impl Supervisor {
    /// Starts the watchdog thread for tasks with a limit (`None`: no watchdog).
    pub fn spawn(
        em: Arc<Emergency>,
        limits: Vec<Option<HardLimit>>,
        scan_priority: Option<i32>,
        scan_cpu: Option<usize>,
    ) -> std::io::Result<Supervisor> {
        let quit = Arc::new(AtomicBool::new(false));
        let degraded = Arc::new(Mutex::new(Vec::new()));
        let q = quit.clone();
        let d = degraded.clone();
        let handle = std::thread::Builder::new()
            .name("softplc-watchdog".into())
            .spawn(move || {
                let notes = setup_thread(scan_priority, scan_cpu);
                *d.lock().unwrap_or_else(|p| p.into_inner()) = notes;
                run(&em, &limits, &q);
            })?;
        Ok(Supervisor {
            quit,
            handle: Some(handle),
            degraded,
        })
    }

    /// Stops and joins the thread (it wakes at least every 10 ms).
    pub fn stop(&mut self) {
        self.quit.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sleep while no window is open: a quarter of the shortest hard limit, so a window is
/// always seen well before its deadline, within 50 us .. 10 ms.
fn idle_poll(limits: &[Option<HardLimit>]) -> u64 {
    let shortest = limits
        .iter()
        .flatten()
        .map(|l| l.hard_ns)
        .min()
        .unwrap_or(40_000_000);
    (shortest / 4).clamp(50_000, 10_000_000)
}

fn run(em: &Emergency, limits: &[Option<HardLimit>], quit: &AtomicBool) {
    let poll = idle_poll(limits);
    let w = &em.shared.watch;
    let mut last_interrupt = 0u64;
    while !quit.load(Ordering::Acquire) {
        let now = monotonic_ns();
        let s = w.start.load(Ordering::Acquire);
        if s == TRIPPED {
            // Still stuck after a trip: interrupt again now and then.
            if now.saturating_sub(last_interrupt) >= REINTERRUPT_NS {
                em.interrupt_python();
                last_interrupt = now;
            }
            sleep_until_ns(now + poll);
            continue;
        }
        let limit = match s {
            0 => None,
            _ => limits.get(w.task().index()).copied().flatten(),
        };
        let Some(limit) = limit else {
            sleep_until_ns(now + poll);
            continue;
        };
        let deadline = s.saturating_add(limit.hard_ns);
        if now < deadline {
            sleep_until_ns(deadline.min(now + 10_000_000));
            continue;
        }
        if w.trip(s) {
            let why = if limit.tolerance == 0 {
                format!(
                    "watchdog: cycle still running after {:.3} ms (limit {:.3} ms); \
                     outputs forced to their safe values",
                    (now - s) as f64 / 1e6,
                    limit.limit_ns as f64 / 1e6,
                )
            } else {
                format!(
                    "watchdog: cycle still running after {:.3} ms (limit {:.3} ms with \
                     tolerance {}: at most {:.3} ms for one cycle); outputs forced to \
                     their safe values",
                    (now - s) as f64 / 1e6,
                    limit.limit_ns as f64 / 1e6,
                    limit.tolerance,
                    limit.hard_ns as f64 / 1e6,
                )
            };
            em.trip(s, why, now);
            last_interrupt = now;
        }
    }
}

/// Scheduling for the watchdog thread: one SCHED_FIFO level above the scan, and every
/// CPU but the scan's. Returns what was refused.
fn setup_thread(scan_priority: Option<i32>, scan_cpu: Option<usize>) -> Vec<String> {
    let mut notes = Vec::new();
    // SAFETY: prctl with PR_SET_TIMERSLACK takes a plain integer argument.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    if let Some(cpu) = scan_cpu {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if n > 1 {
            // SAFETY: cpu_set_t is plain data; CPU_SET/CPU_CLR index within its fixed
            // size; sched_setaffinity reads exactly size_of::<cpu_set_t>() bytes.
            let ok = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                for c in 0..n.min(libc::CPU_SETSIZE as usize) {
                    libc::CPU_SET(c, &mut set);
                }
                libc::CPU_CLR(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
            };
            if !ok {
                notes.push(format!(
                    "watchdog thread: CPU affinity refused: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    if let Some(p) = scan_priority {
        let param = libc::sched_param {
            sched_priority: (p + 1).min(99),
        };
        // SAFETY: `param` is a valid sched_param; 0 means the calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
            notes.push(format!(
                "watchdog thread: SCHED_FIFO refused: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hard_limit_follows_the_tolerance() {
        assert_eq!(HardLimit::new(5_000_000, 0).hard_ns, 5_000_000);
        assert_eq!(HardLimit::new(5_000_000, 2).hard_ns, 15_000_000);
        assert_eq!(HardLimit::new(u64::MAX, 3).hard_ns, u64::MAX);
    }

    #[test]
    fn idle_polls_see_a_window_well_before_its_deadline() {
        assert_eq!(idle_poll(&[Some(HardLimit::new(5_000_000, 0))]), 1_250_000);
        assert_eq!(idle_poll(&[Some(HardLimit::new(100_000, 0))]), 50_000);
        assert_eq!(idle_poll(&[None]), 10_000_000);
    }
}
