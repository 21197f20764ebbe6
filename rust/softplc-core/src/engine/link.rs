//! What a driver that serves the engine to clients (an OPC UA server) may know of the
//! engine and ask of it, from its own threads: the state, the fault, the statistics,
//! the other drivers' health, the state commands and external writes.
//!
//! The engine hands an [`EngineLink`] to every driver once, before `start`
//! ([`crate::Driver::engine_link`]); a fieldbus driver ignores it. Everything here runs
//! off the scan thread and talks to the scan only the way the engine handle does (the
//! command queue the scan drains with `try_lock`, the published state and fault), so a
//! client of such a driver never delays a cycle.

use std::sync::Arc;

use crate::driver::{DriverMonitor, PlcState};
use crate::event::{Event, EventKind, EventSink};
use crate::image::{Layout, VarId};
use crate::stats::{StatsReader, TaskFigures};
use crate::task::TaskInfo;
use crate::types::Value;

use super::fault::FaultInfo;
use super::handle::Engine;
use super::scan::Core;
use super::shared::{Command, Shared};

/// A cloneable handle on a running engine for drivers' threads. Every method may lock
/// and allocate (off the scan thread) but never waits on the scan thread.
#[derive(Clone)]
pub struct EngineLink {
    shared: Arc<Shared>,
    layout: Arc<Layout>,
    readers: Vec<StatsReader>,
    tasks: Arc<[TaskInfo]>,
    monitors: Vec<(String, Arc<dyn DriverMonitor>)>,
    events: EventSink,
    /// Per variable, the driver that supplies it as a device input (see
    /// [`crate::Driver::device_inputs`]).
    suppliers: Arc<[Option<Arc<str>>]>,
}

impl EngineLink {
    /// Builds the link (the engine does, at start).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        shared: Arc<Shared>,
        layout: Arc<Layout>,
        readers: Vec<StatsReader>,
        tasks: Arc<[TaskInfo]>,
        monitors: Vec<(String, Arc<dyn DriverMonitor>)>,
        events: EventSink,
        suppliers: Arc<[Option<Arc<str>>]>,
    ) -> EngineLink {
        EngineLink {
            shared,
            layout,
            readers,
            tasks,
            monitors,
            events,
            suppliers,
        }
    }

    /// The layout.
    pub fn layout(&self) -> &Arc<Layout> {
        &self.layout
    }

    /// The tasks, with their programs.
    pub fn tasks(&self) -> &[TaskInfo] {
        &self.tasks
    }

    /// The state as the scan last published it. One atomic load.
    pub fn state(&self) -> PlcState {
        self.shared.state_now()
    }

    /// The fault, while in FAULT. Locks the fault record briefly (the scan writes it
    /// only on its fault path).
    pub fn fault(&self) -> Option<FaultInfo> {
        self.shared
            .fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Statistics of every task, in task order.
    pub fn stats(&self) -> Vec<TaskFigures> {
        self.readers.iter().map(|r| r.figures()).collect()
    }

    /// Each driver's status as JSON, for drivers that offer a monitor.
    pub fn driver_status(&self) -> Vec<(String, String)> {
        self.monitors
            .iter()
            .map(|(n, m)| (n.clone(), m.status_json()))
            .collect()
    }

    /// The names of the drivers that offer a monitor, in the order
    /// [`EngineLink::driver_status`] reports them.
    pub fn driver_names(&self) -> Vec<String> {
        self.monitors.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The driver that supplies `id` from a device, if one does: a write from outside
    /// would be overwritten by the next poll, so servers refuse it.
    pub fn supplied_by(&self, id: VarId) -> Option<&str> {
        self.suppliers.get(id.index()).and_then(|s| s.as_deref())
    }

    fn send(&self, c: Command) {
        self.shared
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(c);
    }

    /// Requests RUN (from STOP), as [`crate::Engine::run`].
    pub fn run(&self) {
        self.send(Command::Run);
    }

    /// Requests STOP, as [`crate::Engine::stop`].
    pub fn stop(&self) {
        self.send(Command::Stop);
    }

    /// Requests leaving FAULT (to STOP), as [`crate::Engine::clear_fault`].
    pub fn clear_fault(&self) {
        self.send(Command::ClearFault);
    }

    /// An external write, as [`crate::Engine::write`]: checked against the variable's
    /// [`WriteRule`](crate::WriteRule), logged as an event, and applied once at the
    /// start of the next cycle (nothing is sent when it is refused). `v` must already
    /// have the variable's type.
    pub fn write(&self, id: VarId, v: Value) -> Result<(), crate::WriteRefused> {
        let var = self.layout.var(id);
        var.rule.check(v)?;
        // The scan publishes the snapshot with `try_lock`: waiting here never delays it.
        let now = self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .now_ns;
        self.events.push(
            Event::new(now, EventKind::Write, None, format!("{}={}", var.name, v))
                .with_numbers(id.0 as i64, 0),
        );
        self.send(Command::Write(id, v));
        Ok(())
    }
}

impl Engine {
    /// The link handed to drivers at start: which variables each driver supplies is
    /// asked of the drivers (bound by now).
    pub(super) fn link_for(&self, core: &Core) -> EngineLink {
        let mut suppliers: Vec<Option<Arc<str>>> = vec![None; self.layout.len()];
        for d in &core.drivers {
            let name: Arc<str> = Arc::from(d.name());
            for id in d.device_inputs() {
                if let Some(s) = suppliers.get_mut(id.index()) {
                    s.get_or_insert_with(|| name.clone());
                }
            }
        }
        EngineLink::new(
            self.shared.clone(),
            self.layout.clone(),
            self.readers.clone(),
            self.tasks.clone().into(),
            self.monitors.clone(),
            self.events.clone(),
            suppliers.into(),
        )
    }
}
