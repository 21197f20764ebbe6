//! Real-time set-up of the scan thread: timer slack, SCHED_FIFO, mlockall and CPU
//! affinity. Each step that the system refuses is recorded; the engine warns once and
//! carries on in a degraded mode that its status shows.

/// What was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RtRequest {
    /// SCHED_FIFO priority 1..=99, or None for the normal scheduler.
    pub priority: Option<i32>,
    /// Lock all memory (mlockall) so page faults never stall the scan.
    pub lock_memory: bool,
    /// Pin the scan thread to this CPU.
    pub cpu: Option<usize>,
}

/// What was obtained. `degraded` lists what was refused and why.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RtStatus {
    /// SCHED_FIFO priority in force, if any.
    pub priority: Option<i32>,
    /// Memory is locked.
    pub memory_locked: bool,
    /// CPU the thread is pinned to.
    pub cpu: Option<usize>,
    /// Timer slack was set to 1 ns.
    pub timer_slack: bool,
    /// `/dev/cpu_dma_latency` holds 0 (no deep CPU idle states while the engine runs).
    pub cpu_dma_latency: bool,
    /// One line per refused step.
    pub degraded: Vec<String>,
}

fn errno_text() -> String {
    std::io::Error::last_os_error().to_string()
}

/// Keeps the PM QoS request open: the kernel honours it while the file stays open.
pub struct DmaLatencyGuard(#[allow(dead_code)] Option<std::fs::File>);

/// Asks the kernel to keep CPUs out of deep idle states (what cyclictest does too):
/// waking from them costs tens to hundreds of microseconds.
fn hold_cpu_dma_latency(st: &mut RtStatus) -> DmaLatencyGuard {
    use std::io::Write;
    match std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/cpu_dma_latency")
    {
        Ok(mut f) => match f.write_all(&0i32.to_ne_bytes()) {
            Ok(()) => {
                st.cpu_dma_latency = true;
                DmaLatencyGuard(Some(f))
            }
            Err(e) => {
                st.degraded
                    .push(format!("/dev/cpu_dma_latency not set: {e}"));
                DmaLatencyGuard(None)
            }
        },
        Err(e) => {
            st.degraded
                .push(format!("/dev/cpu_dma_latency not available: {e}"));
            DmaLatencyGuard(None)
        }
    }
}

/// Applies the request to the calling thread (call it from the scan thread itself).
/// The guard must live as long as the scan runs.
pub fn apply(req: &RtRequest) -> (RtStatus, DmaLatencyGuard) {
    let mut st = RtStatus::default();
    let guard = if req.priority.is_some() {
        hold_cpu_dma_latency(&mut st)
    } else {
        DmaLatencyGuard(None)
    };
    // SAFETY: prctl with PR_SET_TIMERSLACK takes a plain integer argument.
    if unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) } == 0 {
        st.timer_slack = true;
    } else {
        st.degraded
            .push(format!("timer slack not set: {}", errno_text()));
    }
    if req.lock_memory {
        // SAFETY: mlockall has no pointer arguments.
        if unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) } == 0 {
            st.memory_locked = true;
        } else {
            st.degraded
                .push(format!("mlockall refused: {}", errno_text()));
        }
    }
    if let Some(cpu) = req.cpu {
        // SAFETY: cpu_set_t is plain data; CPU_SET indexes within its fixed size, and
        // sched_setaffinity reads exactly size_of::<cpu_set_t>() bytes.
        let ok = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
        };
        if ok {
            st.cpu = Some(cpu);
        } else {
            st.degraded
                .push(format!("CPU affinity {cpu} refused: {}", errno_text()));
        }
    }
    if let Some(prio) = req.priority {
        let param = libc::sched_param {
            sched_priority: prio,
        };
        // SAFETY: `param` is a valid sched_param; 0 means the calling thread.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } == 0 {
            st.priority = Some(prio);
        } else {
            st.degraded.push(format!(
                "SCHED_FIFO priority {prio} refused: {} (running with the normal scheduler)",
                errno_text()
            ));
        }
    }
    (st, guard)
}

/// The last CPU of the machine, a good default home for the scan thread.
pub fn last_cpu() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() - 1)
        .unwrap_or(0)
}
