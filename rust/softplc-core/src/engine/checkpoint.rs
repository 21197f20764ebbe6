//! Checkpoints of a virtual-time engine: everything a scan depends on, captured between
//! two cycles and restored into an engine built the same way, so that a test explores
//! several futures from one state and a restored engine continues bit for bit like the
//! original.
//!
//! Captured: the process image (values, qualities, stamps), every program's state
//! ([`crate::Program::state`]: compiled programs' cells, which hold their function
//! blocks and timers), each task's schedule, cycle count and last start, the PLC state
//! and fault, forces, held qualities and writes not yet applied. Not captured: statistics
//! and the event log (they describe the run, not the machine), drivers' own state (a
//! Python plant model is the bindings' business), and real time (a real-time engine
//! cannot be stopped between two cycles to be copied).

use crate::driver::PlcState;
use crate::image::{Image, Quality, VarId};
use crate::timing::Schedule;
use crate::types::Value;

use super::fault::FaultInfo;
use super::scan::Core;

/// The state of a virtual-time engine between two cycles.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// Number of variables of the layout it was taken on (checked at restore).
    pub vars: usize,
    /// The image.
    pub image: Image,
    /// Per task, per program: its name and state.
    pub programs: Vec<Vec<(String, Vec<u64>)>>,
    /// Per task: schedule, cycle count, last start.
    pub tasks: Vec<(Schedule, u64, Option<u64>)>,
    /// PLC state.
    pub state: PlcState,
    /// The fault, in FAULT.
    pub fault: Option<FaultInfo>,
    /// Forces.
    pub forces: Vec<(VarId, Value)>,
    /// Held qualities.
    pub holds: Vec<(VarId, Quality, Option<u64>)>,
    /// Writes queued for the next cycle.
    pub writes: Vec<(VarId, Value)>,
}

impl Core {
    /// Captures the state (see the module docs). Off the scan path: allocates.
    pub(super) fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            vars: self.layout.len(),
            image: self.image.clone(),
            programs: self
                .tasks
                .iter()
                .map(|t| {
                    t.programs
                        .iter()
                        .map(|p| (p.name().to_string(), p.state().to_vec()))
                        .collect()
                })
                .collect(),
            tasks: self
                .tasks
                .iter()
                .map(|t| (t.schedule, t.cycle, t.last_start))
                .collect(),
            state: self.state,
            fault: self
                .shared
                .fault
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            forces: self
                .forced_ids
                .iter()
                .filter_map(|id| self.forces[id.index()].map(|v| (*id, v)))
                .collect(),
            holds: self.quality_holds.clone(),
            writes: self.writes.clone(),
        }
    }

    /// Restores a checkpoint taken on an engine built the same way (same layout, tasks
    /// and programs); errors say what differs. Off the scan path: allocates.
    pub(super) fn restore(&mut self, cp: &Checkpoint) -> Result<(), String> {
        if cp.vars != self.layout.len() || cp.image.quality.len() != self.image.quality.len() {
            return Err(format!(
                "the checkpoint holds {} variables, this engine {}: it was taken on an \
                 engine built otherwise",
                cp.vars,
                self.layout.len()
            ));
        }
        if cp.tasks.len() != self.tasks.len() {
            return Err("the checkpoint was taken on an engine with other tasks".into());
        }
        for (t, saved) in self.tasks.iter().zip(&cp.programs) {
            let names: Vec<&str> = t.programs.iter().map(|p| p.name()).collect();
            let theirs: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
            if names != theirs {
                return Err(format!(
                    "task {:?} runs {names:?}, the checkpoint {theirs:?}",
                    t.cfg.name
                ));
            }
            for (p, (_, cells)) in t.programs.iter().zip(saved) {
                if p.state().len() != cells.len() {
                    return Err(format!(
                        "program {:?} holds {} cells, the checkpoint {}: its compiled form \
                         differs",
                        p.name(),
                        p.state().len(),
                        cells.len()
                    ));
                }
            }
        }
        self.image.copy_from(&cp.image);
        for (t, saved) in self.tasks.iter_mut().zip(&cp.programs) {
            for (p, (_, cells)) in t.programs.iter_mut().zip(saved) {
                let map: Vec<(u32, u32)> = (0..cells.len() as u32).map(|c| (c, c)).collect();
                p.adopt(cells, &map);
            }
        }
        for (t, (schedule, cycle, last)) in self.tasks.iter_mut().zip(&cp.tasks) {
            t.schedule = *schedule;
            t.cycle = *cycle;
            t.last_start = *last;
        }
        for f in self.forces.iter_mut() {
            *f = None;
        }
        self.forced_ids.clear();
        for (id, v) in &cp.forces {
            self.forces[id.index()] = Some(*v);
            self.forced_ids.push(*id);
        }
        self.quality_holds = cp.holds.clone();
        self.writes = cp.writes.clone();
        *self.shared.fault.lock().unwrap_or_else(|p| p.into_inner()) = cp.fault.clone();
        self.state = cp.state;
        self.shared.publish_state(cp.state);
        let mut snap = self
            .shared
            .snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        snap.image.copy_from(&self.image);
        snap.cycles = self.first_task_cycles();
        Ok(())
    }
}
