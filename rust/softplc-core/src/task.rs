//! Tasks: their configuration, their static facts, and the [`TaskId`] that names one.
//!
//! A task is referred to by its index in the engine's declaration order everywhere the
//! engine talks about it (cycle observers, events, faults, the watchdog), always as a
//! [`TaskId`], never as a bare integer or a name looked up again.

use std::fmt;

use crate::program::ProgramKind;
use crate::timing::OverrunPolicy;

/// A task of an engine: its index in declaration order. `Copy`, two bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId(u16);

impl TaskId {
    /// The first task declared (an engine has at least one).
    pub const FIRST: TaskId = TaskId(0);

    /// Most tasks an engine may have.
    pub const LIMIT: usize = u16::MAX as usize;

    /// The task at `index` in declaration order; None past [`TaskId::LIMIT`].
    pub fn new(index: usize) -> Option<TaskId> {
        (index < Self::LIMIT).then_some(TaskId(index as u16))
    }

    /// Index into the engine's task list. No allocation, locks or syscalls.
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The number written where a task may be absent (events, trace files): the index,
    /// or -1 for `None`.
    pub fn code(task: Option<TaskId>) -> i64 {
        task.map_or(-1, |t| t.0 as i64)
    }

    /// The inverse of [`TaskId::code`]: negative numbers mean no task; None when the
    /// number is too large to be a task.
    pub fn from_code(code: i64) -> Option<Option<TaskId>> {
        if code < 0 {
            Some(None)
        } else {
            usize::try_from(code).ok().and_then(TaskId::new).map(Some)
        }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task #{}", self.0)
    }
}

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

/// Static facts about a task, for status displays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// Which task.
    pub id: TaskId,
    /// Name.
    pub name: String,
    /// Period (ns).
    pub period_ns: u64,
    /// Priority.
    pub priority: u8,
    /// Programs in order, with how each runs.
    pub programs: Vec<(String, ProgramKind)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_task_is_written_as_minus_one_and_read_back() {
        let t = TaskId::new(3).unwrap();
        assert_eq!(TaskId::code(Some(t)), 3);
        assert_eq!(TaskId::code(None), -1);
        assert_eq!(TaskId::from_code(3), Some(Some(t)));
        assert_eq!(TaskId::from_code(-1), Some(None));
        assert_eq!(TaskId::from_code(1 << 40), None);
        assert!(TaskId::new(TaskId::LIMIT).is_none());
    }
}
