//! Why the engine is in FAULT: the kind of fault, where and when it happened, and the
//! cause. Built only on the fault path (it allocates), which leaves RUN, so the cost
//! never lands on a healthy cycle.

use std::fmt;

use crate::task::TaskId;

/// What faulted the engine. `Copy`; the names are what Python's fault dict and the
/// fault events show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// A program returned an error (a Python exception, a compiled program's fault).
    Program,
    /// Code panicked on the scan thread (a program, or the scan loop itself).
    Panic,
    /// A cycle ran past its task's watchdog.
    Watchdog,
    /// A task overran its period under the `fault` overrun policy.
    Overrun,
    /// A driver's exchange failed with a cause that stops the programs (a plant model
    /// that raised).
    Driver,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::Program,
        FaultKind::Panic,
        FaultKind::Watchdog,
        FaultKind::Overrun,
        FaultKind::Driver,
    ];

    /// Lower-case name (`program`, `panic`, `watchdog`, `overrun`, `driver`).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Program => "program",
            FaultKind::Panic => "panic",
            FaultKind::Watchdog => "watchdog",
            FaultKind::Overrun => "overrun",
            FaultKind::Driver => "driver",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why the engine is in FAULT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    /// What faulted.
    pub kind: FaultKind,
    /// The task it happened in, if any.
    pub task: Option<TaskId>,
    /// That task's name (empty when not task-related), for people.
    pub task_name: String,
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

impl fmt::Display for FaultInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} fault", self.kind)?;
        if !self.task_name.is_empty() {
            write!(f, " in task {:?}", self.task_name)?;
        }
        if !self.source.is_empty() {
            write!(f, " ({})", self.source)?;
        }
        write!(f, " at cycle {}: {}", self.cycle, self.message)
    }
}

/// The message of a caught panic.
pub(crate) fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_reads_as_kind_task_source_and_cause() {
        let f = FaultInfo {
            kind: FaultKind::Program,
            task: TaskId::new(0),
            task_name: "main".into(),
            source: "bomb".into(),
            cycle: 2,
            t_ns: 0,
            started_ns: 0,
            message: "ZeroDivisionError".into(),
        };
        assert_eq!(
            f.to_string(),
            "program fault in task \"main\" (bomb) at cycle 2: ZeroDivisionError"
        );
        let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["program", "panic", "watchdog", "overrun", "driver"]);
    }
}
