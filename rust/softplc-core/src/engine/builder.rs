//! Building an engine: the layout, tasks with their programs, drivers, the real-time
//! request. Load time: allocation is fine, every error names its culprit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::clock::{ClockKind, EngineClock};
use crate::driver::{Driver, PlcState};
use crate::event::EventSink;
use crate::image::{ConfigError, Image, Layout};
use crate::program::{Interrupt, Program};
use crate::retain::{self, RetainConfig, RetainSet};
use crate::rt::RtRequest;
use crate::stats::task_stats;
use crate::task::{TaskConfig, TaskId, TaskInfo};
use crate::timing::{Schedule, Watchdog};

use super::handle::Engine;
use super::scan::{Core, TaskRt};
use super::shared::Shared;
use super::supervisor::HardLimit;

/// Builds an [`Engine`]: layout, tasks with their programs, drivers.
pub struct EngineBuilder {
    layout: Layout,
    tasks: Vec<(TaskConfig, Vec<Box<dyn Program>>)>,
    drivers: Vec<Box<dyn Driver>>,
    clock: ClockKind,
    rt: RtRequest,
    interrupt: Option<Arc<dyn Interrupt>>,
    retain: Option<RetainConfig>,
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
            retain: None,
        }
    }

    /// Keeps the retained and persistent variables in files (see [`crate::retain`]).
    /// Without it, `retain=True` variables behave as plain memory variables.
    pub fn retain(&mut self, cfg: RetainConfig) -> Result<&mut Self, ConfigError> {
        if cfg.cadence_ns == 0 {
            return Err(ConfigError::new(
                "retain: the cadence must be greater than 0",
            ));
        }
        if cfg.stem.is_empty() || cfg.stem.contains('/') {
            return Err(ConfigError::new(format!(
                "retain: invalid file name {:?}",
                cfg.stem
            )));
        }
        self.retain = Some(cfg);
        Ok(self)
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
        if TaskId::new(self.tasks.len()).is_none() {
            return Err(ConfigError::new(format!(
                "task {:?}: an engine has at most {} tasks",
                cfg.name,
                TaskId::LIMIT
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
        let shared = Arc::new(Shared::new(image.clone()));
        let mut readers = Vec::new();
        let mut tasks = Vec::new();
        let mut task_info = Vec::new();
        for (i, (cfg, programs)) in self.tasks.into_iter().enumerate() {
            let id = TaskId::new(i).expect("checked when the task was added");
            let (recorder, reader) = task_stats();
            readers.push(reader);
            task_info.push(TaskInfo {
                id,
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
        let mut order: Vec<TaskId> = task_info.iter().map(|t| t.id).collect();
        order.sort_by_key(|&t| (tasks[t.index()].cfg.priority, t));
        let outputs = super::handle::outputs_of(&layout);
        let n = layout.len();
        let retain_set = Arc::new(RetainSet::new(&layout));
        let (retain_capture, retain) = match self.retain {
            Some(cfg) if !retain_set.is_empty() => {
                let (capture, output) = retain::writer::channel(retain_set.clone());
                (Some(capture), Some((cfg, retain_set, output)))
            }
            _ => (None, None),
        };
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
            engine_clock: EngineClock::new(self.clock),
            quit_at: u64::MAX,
            events: events.clone(),
            shared: shared.clone(),
            layout: layout.clone(),
            retain: retain_capture,
            quality_holds: Vec::with_capacity(16),
        };
        let limits = task_info
            .iter()
            .map(|t| {
                core.tasks[t.id.index()]
                    .cfg
                    .watchdog
                    .map(|(l, n)| HardLimit::new(l, n))
            })
            .collect();
        Ok(Engine {
            core: Some(Box::new(core)),
            thread: None,
            supervisor: None,
            emergency: None,
            limits,
            interrupt: self.interrupt,
            shared,
            layout,
            clock: self.clock,
            rt: self.rt,
            readers,
            tasks: task_info,
            forced: Arc::new(Mutex::new(BTreeMap::new())),
            retain,
            retain_writer: None,
            retain_status: Arc::default(),
            retain_cfg: None,
            events,
            started: false,
            closed: false,
            next_observer: 1,
            monitors,
        })
    }
}
