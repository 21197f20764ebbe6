//! The native engine class: configuration (variables, tasks, programs, drivers, the
//! plant), the life cycle, commands and reports. Conversion only: the engine itself is
//! softplc-core's, Python values go through [`crate::value`], reports through
//! [`crate::dicts`], Python code on the scan thread through [`crate::pycode`], errors
//! through [`crate::errors`] and every wait through [`crate::wait`].
//!
//! Locking rule: the engine's state sits behind a mutex, and every method takes that
//! mutex only with the GIL released (`lock` below). The virtual clock runs cycles while
//! holding the mutex and, for Python programs, takes the GIL inside each call; a second
//! Python thread waiting for the mutex therefore never holds the GIL against it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use softplc_core::engine::{NewProgram, QualityHold, Swap};
use softplc_core::retain::{RestartLevel, RetainConfig, RetainKind};
use softplc_core::rt::RtRequest;
use softplc_core::{
    Area, ClockKind, Domain, Driver, Engine, EngineBuilder, IecType, Layout, LayoutBuilder,
    OverrunPolicy, PlcState, Program, Quality, SimDriver, TaskConfig, TaskId, Value, VarDecl,
    VarId, WriteRule,
};

use crate::dicts;
use crate::driver::NativeDriver;
use crate::errors::{self, ConfigError, OrRaise, ProgramError, StateError};
use crate::pycode::{PyInterrupter, PyPlant, PyProgram, PyScan};
use crate::scanio::ScanIo;
use crate::value::{text_from_py, text_to_py, to_py, to_value, type_from_name, Fit};
use crate::wait;

enum Pending {
    Python(String, Py<PyAny>),
    Compiled(String, Vec<u8>),
}

struct Config {
    layout: LayoutBuilder,
    tasks: Vec<(TaskConfig, Vec<Pending>)>,
    drivers: Vec<Box<dyn Driver>>,
    plant: Option<Py<PyAny>>,
    rt: RtRequest,
    retain: Option<RetainConfig>,
}

enum Inner {
    Config(Box<Config>),
    Built(Box<Engine>),
    /// Start failed; nothing is running.
    Failed,
}

/// The native engine. Configure (declare, add_task, add_*_program, add_driver,
/// set_plant), then `start`.
#[pyclass(module = "softplc._native", name = "Engine", frozen)]
pub struct PyEngine {
    inner: Mutex<Inner>,
    clock: ClockKind,
    layout: Mutex<Option<Arc<Layout>>>,
    /// After start: the programs as loaded, per task (name, compiled form if any), and
    /// the Python call tracker; an online change builds on them.
    loaded: Mutex<Option<Loaded>>,
}

/// A checkpoint of a virtual-time engine (opaque to Python: restore it into an engine
/// built the same way).
#[pyclass(module = "softplc._native", name = "Checkpoint", frozen)]
pub struct PyCheckpoint {
    inner: Arc<softplc_core::engine::Checkpoint>,
}

#[pymethods]
impl PyCheckpoint {
    /// The first task's cycle count when it was taken.
    #[getter]
    fn cycle(&self) -> u64 {
        self.inner.tasks.first().map_or(0, |t| t.1)
    }

    fn __repr__(&self) -> String {
        format!("<Checkpoint at cycle {}>", self.cycle())
    }
}

/// What an online change needs to know about the programs running.
struct Loaded {
    programs: Vec<Vec<(String, Option<Vec<u8>>)>>,
    scan: Arc<PyScan>,
}

/// One program of an online change, as Python hands it over: its name, `compiled`
/// (payload: the IR bytes) or `python` (payload: the callable), and the name of the
/// program it replaces, if any.
type ChangeProgram = (String, String, Py<PyAny>, Option<String>);

/// A new variable of an online change: the arguments of `declare`.
type ChangeVar = (
    String,
    String,
    String,
    Option<String>,
    Option<Py<PyAny>>,
    Option<Py<PyAny>>,
    String,
    Option<Py<PyAny>>,
    Option<Py<PyAny>>,
    bool,
    Option<Vec<i64>>,
    Option<String>,
);

impl PyEngine {
    /// Takes the state lock without holding the GIL while waiting (see module docs); a
    /// Ctrl-C while waiting raises KeyboardInterrupt.
    fn lock<'a>(&'a self, py: Python<'_>) -> PyResult<MutexGuard<'a, Inner>> {
        loop {
            match self.inner.try_lock() {
                Ok(g) => return Ok(g),
                Err(std::sync::TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {
                    wait::blocking(py, || std::thread::sleep(Duration::from_micros(50)))?;
                }
            }
        }
    }

    fn config<'a>(g: &'a mut MutexGuard<'_, Inner>) -> PyResult<&'a mut Config> {
        match &mut **g {
            Inner::Config(c) => Ok(c),
            _ => Err(StateError::new_err(
                "the engine is already started: declare variables and tasks before start()",
            )),
        }
    }

    fn built<'a>(g: &'a mut MutexGuard<'_, Inner>) -> PyResult<&'a mut Engine> {
        match &mut **g {
            Inner::Built(e) => Ok(e),
            Inner::Config(_) => Err(StateError::new_err("the engine is not started")),
            Inner::Failed => Err(StateError::new_err("the engine failed to start")),
        }
    }

    fn layout(&self) -> PyResult<Arc<Layout>> {
        self.layout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| StateError::new_err("the engine is not started"))
    }

    /// The variable `name` names (UnknownVariable when none).
    fn var(&self, name: &str) -> PyResult<(Arc<Layout>, VarId)> {
        let l = self.layout()?;
        let id = l.lookup(name).or_raise()?;
        Ok((l, id))
    }

    /// Runs `f` on the started engine, without the GIL (a Ctrl-C meanwhile raises once
    /// it returns): for calls that may wait on the scan thread, which may need the GIL.
    pub fn with_engine_blocking<R, F>(&self, py: Python<'_>, f: F) -> PyResult<R>
    where
        F: Send + FnOnce(&mut Engine) -> R,
        R: Send,
    {
        let mut g = self.lock(py)?;
        let e = Self::built(&mut g)?;
        wait::blocking(py, || f(e))
    }

    /// Calls `step` on the started engine, without the GIL, until it returns `Some`;
    /// between calls (each should return within about [`wait::STEP`]) a Ctrl-C raises
    /// KeyboardInterrupt. Holds the engine's lock throughout.
    pub fn with_engine_steps<R, F>(&self, py: Python<'_>, mut step: F) -> PyResult<R>
    where
        F: Send + FnMut(&mut Engine) -> Option<R>,
        R: Send,
    {
        let mut g = self.lock(py)?;
        let e = Self::built(&mut g)?;
        wait::until(py, || step(e))
    }
}

/// A declaration from the Python arguments of `declare` (values converted to the
/// variable's type; errors name the variable).
#[allow(clippy::too_many_arguments)]
fn make_decl(
    py: Python<'_>,
    name: &str,
    area: &str,
    type_name: &str,
    address: Option<&str>,
    initial: Option<&Bound<'_, PyAny>>,
    safe: Option<&Bound<'_, PyAny>>,
    unit: &str,
    min: Option<&Bound<'_, PyAny>>,
    max: Option<&Bound<'_, PyAny>>,
    writable: bool,
    values: Option<Vec<i64>>,
    retain: Option<&str>,
) -> PyResult<VarDecl> {
    let area = area_of(area)?;
    let ty = type_from_name(type_name)?;
    let conv = |v: Option<&Bound<'_, PyAny>>, what: &str| -> PyResult<Option<Value>> {
        v.map(|v| {
            to_value(&format!("{what} value of {name:?}"), ty, v, Fit::Exact)
                .map_err(|e| ConfigError::new_err(e.value(py).to_string()))
        })
        .transpose()
    };
    let mut decl = VarDecl::new(name, area, ty, address);
    decl.retain = match retain {
        None => None,
        Some("retain") => Some(RetainKind::Retain),
        Some("persistent") => Some(RetainKind::Persistent),
        Some(other) => {
            return Err(ConfigError::new_err(format!(
                "variable {name:?}: unknown retain kind {other:?} (expected retain or \
                     persistent)"
            )))
        }
    };
    if let IecType::String(cap) = ty {
        if safe.is_some() || min.is_some() || max.is_some() || values.is_some() {
            return Err(ConfigError::new_err(format!(
                "variable {name:?}: a STRING has no safe value, range or members"
            )));
        }
        if let Some(init) = initial {
            let text = text_from_py(&format!("initial value of {name:?}"), ty, init)
                .map_err(|e| ConfigError::new_err(e.value(py).to_string()))?;
            if text.len() > cap as usize {
                return Err(ConfigError::new_err(format!(
                    "variable {name:?}: initial text of {} characters for a {ty}",
                    text.len()
                )));
            }
            decl.initial_text = text;
        }
        return Ok(decl);
    }
    decl.initial = conv(initial, "initial")?;
    decl.safe = conv(safe, "safe")?;
    if safe.is_some() && area != Area::Output {
        return Err(ConfigError::new_err(format!(
            "variable {name:?}: only outputs have a safe value"
        )));
    }
    decl.unit = unit.to_string();
    let domain = values
        .map(|v| Domain::of(&v))
        .transpose()
        .map_err(|e| ConfigError::new_err(format!("variable {name:?}: {e}")))?;
    decl.rule = WriteRule {
        writable,
        min: conv(min, "min")?,
        max: conv(max, "max")?,
        domain,
    };
    Ok(decl)
}

fn area_of(s: &str) -> PyResult<Area> {
    Area::parse(s).ok_or_else(|| {
        ConfigError::new_err(format!(
            "unknown area {s:?} (expected input, output or memory)"
        ))
    })
}

#[pymethods]
impl PyEngine {
    #[new]
    #[pyo3(signature = (*, clock, priority=None, lock_memory=false, cpu=None))]
    fn new(
        clock: &str,
        priority: Option<i32>,
        lock_memory: bool,
        cpu: Option<usize>,
    ) -> PyResult<Self> {
        let clock = match clock {
            "real" => ClockKind::Real,
            "virtual" => ClockKind::Virtual,
            other => {
                return Err(ConfigError::new_err(format!(
                    "unknown clock {other:?} (expected 'real' or 'virtual')"
                )))
            }
        };
        if let Some(p) = priority {
            if !(1..=99).contains(&p) {
                return Err(ConfigError::new_err(format!(
                    "priority {p} is out of range 1..99"
                )));
            }
        }
        Ok(PyEngine {
            inner: Mutex::new(Inner::Config(Box::new(Config {
                layout: LayoutBuilder::new(),
                tasks: Vec::new(),
                drivers: Vec::new(),
                plant: None,
                retain: None,
                rt: RtRequest {
                    priority,
                    lock_memory,
                    cpu,
                },
            }))),
            clock,
            layout: Mutex::new(None),
            loaded: Mutex::new(None),
        })
    }

    /// Declares a variable; returns its index.
    #[pyo3(signature = (name, area, type_name, address=None, initial=None, safe=None, unit="", min=None, max=None, writable=true, values=None, retain=None))]
    #[allow(clippy::too_many_arguments)]
    fn declare(
        &self,
        py: Python<'_>,
        name: &str,
        area: &str,
        type_name: &str,
        address: Option<&str>,
        initial: Option<&Bound<'_, PyAny>>,
        safe: Option<&Bound<'_, PyAny>>,
        unit: &str,
        min: Option<&Bound<'_, PyAny>>,
        max: Option<&Bound<'_, PyAny>>,
        writable: bool,
        values: Option<Vec<i64>>,
        retain: Option<&str>,
    ) -> PyResult<u32> {
        let decl = make_decl(
            py, name, area, type_name, address, initial, safe, unit, min, max, writable, values,
            retain,
        )?;
        let mut g = self.lock(py)?;
        let c = Self::config(&mut g)?;
        c.layout.declare(decl).map(|id| id.0).or_raise()
    }

    /// Keeps retained variables in `<dir>/<stem>.0|1`, written every `cadence_ns`;
    /// `level` is "warm", "cold" or "origin"; `signature` identifies the program.
    #[pyo3(signature = (dir, stem, *, cadence_ns, level, signature))]
    fn set_retain(
        &self,
        py: Python<'_>,
        dir: std::path::PathBuf,
        stem: &str,
        cadence_ns: u64,
        level: &str,
        signature: &str,
    ) -> PyResult<()> {
        let level = match level {
            "warm" => RestartLevel::Warm,
            "cold" => RestartLevel::Cold,
            "origin" => RestartLevel::Origin,
            other => {
                return Err(ConfigError::new_err(format!(
                    "unknown restart level {other:?} (expected warm, cold or origin)"
                )))
            }
        };
        if cadence_ns == 0 {
            return Err(ConfigError::new_err(
                "retain: the cadence must be greater than 0",
            ));
        }
        let mut g = self.lock(py)?;
        Self::config(&mut g)?.retain = Some(RetainConfig {
            dir,
            stem: stem.to_string(),
            cadence_ns,
            level,
            signature: signature.to_string(),
        });
        Ok(())
    }

    /// Online change: retires variables (renamed to tombstones: a type change), declares
    /// new ones, and switches each listed task to its new program list between two
    /// cycles, waiting up to `timeout_ms` for the scan to take it. Programs and
    /// variables are loaded and checked first: any error leaves everything as it was.
    /// Returns {cycle, t_ns, retired, kept_state}.
    #[pyo3(signature = (retire, declare, tasks, *, convert=Vec::new(), signature=None, timeout_ms=2000))]
    #[allow(clippy::too_many_arguments)]
    fn online_change(
        &self,
        py: Python<'_>,
        retire: Vec<(String, String)>,
        declare: Vec<ChangeVar>,
        tasks: Vec<(String, Vec<ChangeProgram>)>,
        convert: Vec<(String, String)>,
        signature: Option<String>,
        timeout_ms: u64,
    ) -> PyResult<Py<PyAny>> {
        let mut g = self.lock(py)?;
        let e = Self::built(&mut g)?;
        let layout = e.layout().clone();
        let mut retired = Vec::new();
        for (name, tomb) in &retire {
            retired.push((layout.find(name).or_raise()?, tomb.clone()));
        }
        let mut decls = Vec::new();
        for (name, area, ty, address, initial, safe, unit, min, max, writable, values, retain) in
            &declare
        {
            let b = |o: &Option<Py<PyAny>>| o.as_ref().map(|x| x.bind(py).clone());
            decls.push(make_decl(
                py,
                name,
                area,
                ty,
                address.as_deref(),
                b(initial).as_ref(),
                b(safe).as_ref(),
                unit,
                b(min).as_ref(),
                b(max).as_ref(),
                *writable,
                values.clone(),
                retain.as_deref(),
            )?);
        }
        let new_layout = Arc::new(layout.extended(&retired, decls).or_raise()?);
        let mut loaded_g = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        let loaded = loaded_g
            .as_mut()
            .ok_or_else(|| StateError::new_err("the engine is not started"))?;
        let io = Py::new(py, ScanIo::new(new_layout.clone()))?;
        let mut swap_tasks = Vec::new();
        let mut new_record = loaded.programs.clone();
        let mut kept_state = Vec::new();
        for (task_name, programs) in tasks {
            let Some(ti) = e.tasks().iter().position(|t| t.name == task_name) else {
                return Err(ConfigError::new_err(format!(
                    "online change: unknown task {task_name:?} (tasks cannot be added online)"
                )));
            };
            let tid = TaskId::new(ti).expect("an existing task");
            let current = &loaded.programs[ti];
            let mut list = Vec::new();
            let mut rec = Vec::new();
            for (name, kind, payload, replaces) in programs {
                let old_index = match &replaces {
                    None => None,
                    Some(r) => Some(current.iter().position(|(n, _)| n == r).ok_or_else(|| {
                        ConfigError::new_err(format!(
                            "online change: program {r:?} is not in task {task_name:?}"
                        ))
                    })?),
                };
                let (program, ir): (Box<dyn Program>, Option<Vec<u8>>) = match kind.as_str() {
                    "compiled" => {
                        let ir: Vec<u8> = payload.extract(py)?;
                        let p = crate::vm::load_compiled(&name, &ir, &new_layout)
                            .map_err(errors::program)?;
                        (p, Some(ir))
                    }
                    "python" => {
                        if !payload.bind(py).is_callable() {
                            return Err(ProgramError::new_err(format!(
                                "program {name:?} is not callable"
                            )));
                        }
                        let p = Box::new(PyProgram {
                            name: name.clone(),
                            callable: payload,
                            io: io.clone_ref(py),
                            scan: loaded.scan.clone(),
                        });
                        (p, None)
                    }
                    other => {
                        return Err(ConfigError::new_err(format!(
                            "online change: unknown program kind {other:?}"
                        )))
                    }
                };
                // Compiled state carries over when the compiled form is unchanged:
                // the cells then mean the same. (A changed program starts its blocks
                // afresh until the compiled form carries a symbol table of its cells.)
                let map = match (old_index, &ir) {
                    (Some(i), Some(new_ir)) if current[i].1.as_ref() == Some(new_ir) => {
                        kept_state.push(name.clone());
                        let n = softplc_vm::ir::Document::decode(new_ir)
                            .map(|d| d.cells.len())
                            .unwrap_or(0) as u32;
                        (0..n).map(|c| (c, c)).collect()
                    }
                    _ => Vec::new(),
                };
                rec.push((name.clone(), ir));
                list.push(NewProgram {
                    program,
                    replaces: old_index.map(|i| (i, map)),
                });
            }
            new_record[ti] = rec;
            swap_tasks.push((tid, list));
        }
        // (retired name as it was, new name): the value goes from the tombstone's slot
        // to the new variable's, converted.
        let mut conversions = Vec::new();
        for (old, new) in &convert {
            let from = retired
                .iter()
                .find(|(_, t)| t == old)
                .map(|(id, _)| new_layout.var(*id).slot)
                .ok_or_else(|| {
                    ConfigError::new_err(format!("online change: {old:?} is not retired"))
                })?;
            let to = new_layout.var(new_layout.find(new).or_raise()?).slot;
            conversions.push((from, to));
        }
        let swap = Swap {
            layout: new_layout.clone(),
            tasks: swap_tasks,
            outputs: Vec::new(),
            retain: None,
            conversions,
        };
        let timeout = Duration::from_millis(timeout_ms);
        let done = wait::blocking(py, || e.swap(swap, timeout))?.or_raise()?;
        if let Some(sig) = signature {
            e.set_retain_signature(&sig);
        }
        loaded.programs = new_record;
        *self.layout.lock().unwrap_or_else(|p| p.into_inner()) = Some(new_layout);
        let d = PyDict::new(py);
        d.set_item("cycle", done.cycle)?;
        d.set_item("t_ns", done.t_ns)?;
        let names: Vec<String> = done.retired.iter().map(|p| p.name().to_string()).collect();
        d.set_item("retired", names)?;
        d.set_item("kept_state", kept_state)?;
        drop(done);
        Ok(d.into_any().unbind())
    }

    /// Number of variables declared so far.
    fn declared_count(&self, py: Python<'_>) -> PyResult<usize> {
        let mut g = self.lock(py)?;
        Ok(Self::config(&mut g)?.layout.len())
    }

    /// Forgets the declarations after the first `n` (rolls back a partly added program).
    fn rollback_declarations(&self, py: Python<'_>, n: usize) -> PyResult<()> {
        let mut g = self.lock(py)?;
        Self::config(&mut g)?.layout.truncate(n);
        Ok(())
    }

    /// Adds a cyclic task.
    #[pyo3(signature = (name, period_ns, priority=10, watchdog_ns=None, watchdog_tolerance=0, overrun="skip"))]
    #[allow(clippy::too_many_arguments)]
    fn add_task(
        &self,
        py: Python<'_>,
        name: &str,
        period_ns: i64,
        priority: i64,
        watchdog_ns: Option<i64>,
        watchdog_tolerance: u32,
        overrun: &str,
    ) -> PyResult<()> {
        if period_ns <= 0 {
            return Err(ConfigError::new_err(format!(
                "task {name:?}: the period must be greater than 0 (got {period_ns} ns)"
            )));
        }
        if !(0..=255).contains(&priority) {
            return Err(ConfigError::new_err(format!(
                "task {name:?}: priority {priority} is out of range 0..255"
            )));
        }
        let policy = OverrunPolicy::parse(overrun).ok_or_else(|| {
            ConfigError::new_err(format!(
                "task {name:?}: unknown overrun policy {overrun:?} (expected skip, catch-up or fault)"
            ))
        })?;
        let watchdog = match watchdog_ns {
            None => None,
            Some(w) if w <= 0 => {
                return Err(ConfigError::new_err(format!(
                    "task {name:?}: the watchdog limit must be greater than 0 (got {w} ns)"
                )))
            }
            Some(w) => Some((w as u64, watchdog_tolerance)),
        };
        let mut g = self.lock(py)?;
        let c = Self::config(&mut g)?;
        if c.tasks.iter().any(|(t, _)| t.name == name) {
            return Err(ConfigError::new_err(format!(
                "duplicate task name {name:?}"
            )));
        }
        let mut cfg = TaskConfig::new(name, period_ns as u64);
        cfg.priority = priority as u8;
        cfg.watchdog = watchdog;
        cfg.overrun = policy;
        c.tasks.push((cfg, Vec::new()));
        Ok(())
    }

    /// Adds a Python program to a task: `callable(io)` each cycle.
    fn add_python_program(
        &self,
        py: Python<'_>,
        task: &str,
        name: &str,
        callable: Py<PyAny>,
    ) -> PyResult<()> {
        if !callable.bind(py).is_callable() {
            return Err(ProgramError::new_err(format!(
                "program {name:?} is not callable"
            )));
        }
        let mut g = self.lock(py)?;
        let c = Self::config(&mut g)?;
        Self::push_program(c, task, Pending::Python(name.to_string(), callable))
    }

    /// Adds a compiled program (serialized intermediate form) to a task.
    fn add_compiled_program(
        &self,
        py: Python<'_>,
        task: &str,
        name: &str,
        ir: Vec<u8>,
    ) -> PyResult<()> {
        let mut g = self.lock(py)?;
        let c = Self::config(&mut g)?;
        Self::push_program(c, task, Pending::Compiled(name.to_string(), ir))
    }

    /// Attaches a native driver.
    fn add_driver(&self, py: Python<'_>, driver: &NativeDriver) -> PyResult<()> {
        let mut g = self.lock(py)?;
        let c = Self::config(&mut g)?;
        let d = driver.take()?;
        if c.drivers.iter().any(|x| x.name() == d.name()) {
            return Err(ConfigError::new_err(format!(
                "duplicate driver name {:?}",
                d.name()
            )));
        }
        c.drivers.push(d);
        Ok(())
    }

    /// Sets the plant model: `step(io, dt_seconds)` each cycle before the programs.
    fn set_plant(&self, py: Python<'_>, step: Py<PyAny>) -> PyResult<()> {
        if !step.bind(py).is_callable() {
            return Err(ConfigError::new_err("the plant's step must be callable"));
        }
        let mut g = self.lock(py)?;
        let c = Self::config(&mut g)?;
        c.plant = Some(step);
        Ok(())
    }

    /// Builds everything and starts (in RUN when `run`). On any error nothing is left
    /// running and the engine cannot be started again.
    #[pyo3(signature = (run=true))]
    fn start(&self, py: Python<'_>, run: bool) -> PyResult<()> {
        let mut g = self.lock(py)?;
        let cfg = match std::mem::replace(&mut *g, Inner::Failed) {
            Inner::Config(c) => c,
            other => {
                *g = other;
                return Err(StateError::new_err("the engine is already started"));
            }
        };
        let cfg = *cfg;
        let layout = cfg.layout.build().or_raise()?;
        let layout_arc = Arc::new(layout.clone());
        let io = Py::new(py, ScanIo::new(layout_arc.clone()))?;
        let mut b = EngineBuilder::new(layout, self.clock);
        b.realtime(cfg.rt.clone());
        if let Some(r) = cfg.retain {
            b.retain(r).or_raise()?;
        }
        let scan = Arc::new(PyScan::default());
        let has_python = cfg.plant.is_some()
            || cfg
                .tasks
                .iter()
                .any(|(_, ps)| ps.iter().any(|p| matches!(p, Pending::Python(..))));
        if has_python {
            b.interrupt(Arc::new(PyInterrupter(scan.clone())));
        }
        if let Some(step) = cfg.plant {
            b.driver(Box::new(SimDriver::new(
                "sim",
                Box::new(PyPlant {
                    step,
                    io: io.clone_ref(py),
                    scan: scan.clone(),
                }),
            )))
            .or_raise()?;
        }
        for d in cfg.drivers {
            b.driver(d).or_raise()?;
        }
        let mut record = Vec::new();
        for (tcfg, pending) in cfg.tasks {
            let mut programs: Vec<Box<dyn Program>> = Vec::new();
            let mut rec = Vec::new();
            for p in pending {
                programs.push(match p {
                    Pending::Python(name, callable) => {
                        rec.push((name.clone(), None));
                        Box::new(PyProgram {
                            name,
                            callable,
                            io: io.clone_ref(py),
                            scan: scan.clone(),
                        })
                    }
                    Pending::Compiled(name, ir) => {
                        let p = crate::vm::load_compiled(&name, &ir, b.layout())
                            .map_err(errors::program)?;
                        rec.push((name, Some(ir)));
                        p
                    }
                });
            }
            record.push(rec);
            b.task(tcfg, programs).or_raise()?;
        }
        let mut engine = b.build().or_raise()?;
        // Real time: the scan thread may need the GIL for Python programs at once.
        wait::blocking(py, || engine.start(run))?.or_raise()?;
        *self.layout.lock().unwrap_or_else(|p| p.into_inner()) = Some(engine.layout().clone());
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = Some(Loaded {
            programs: record,
            scan,
        });
        *g = Inner::Built(Box::new(engine));
        Ok(())
    }

    /// Virtual time: runs `n` wake-ups; returns the virtual time reached (ns).
    fn run_cycles(&self, py: Python<'_>, n: u64) -> PyResult<u64> {
        let mut g = self.lock(py)?;
        let e = Self::built(&mut g)?;
        // Chunks keep Ctrl-C responsive on long runs.
        let mut left = n;
        let mut t = e.virtual_now().unwrap_or(0);
        while left > 0 {
            let k = left.min(10_000);
            t = wait::blocking(py, || e.run_cycles(k))?.or_raise()?;
            left -= k;
        }
        Ok(t)
    }

    /// Virtual time: runs every cycle scheduled in the next `duration_ns`; returns the
    /// number of wake-ups.
    fn run_virtual_for(&self, py: Python<'_>, duration_ns: u64) -> PyResult<u64> {
        let mut g = self.lock(py)?;
        let e = Self::built(&mut g)?;
        wait::blocking(py, || e.run_virtual_for(duration_ns))?.or_raise()
    }

    /// Virtual time of the next wake-up.
    fn virtual_now(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        let mut g = self.lock(py)?;
        Ok(Self::built(&mut g)?.virtual_now())
    }

    /// Engine-clock time of the latest published cycle and of the first tick.
    fn clock_ns(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        let mut g = self.lock(py)?;
        let e = Self::built(&mut g)?;
        Ok((e.now_ns(), e.origin_ns()))
    }

    /// Real time: waits `duration_ns` (or until `cycles` cycles of the first task, or
    /// until FAULT when `stop_on_fault`), with the GIL released; Ctrl-C raises
    /// KeyboardInterrupt. Returns the reason: "time", "cycles", "fault", or "stopped"
    /// when the scan ended (after `stop_at_cycle`).
    #[pyo3(signature = (duration_ns=None, cycles=None, stop_on_fault=false))]
    fn wait(
        &self,
        py: Python<'_>,
        duration_ns: Option<u64>,
        cycles: Option<u64>,
        stop_on_fault: bool,
    ) -> PyResult<&'static str> {
        let start = std::time::Instant::now();
        let target = {
            let mut g = self.lock(py)?;
            let e = Self::built(&mut g)?;
            cycles.map(|c| e.stats()[0].cycles + c)
        };
        loop {
            let (state, done_cycles, finished) = {
                let mut g = self.lock(py)?;
                let e = Self::built(&mut g)?;
                (e.state(), e.stats()[0].cycles, e.scan_finished())
            };
            if finished {
                return Ok(if state == PlcState::Fault {
                    "fault"
                } else {
                    "stopped"
                });
            }
            if stop_on_fault && state == PlcState::Fault {
                return Ok("fault");
            }
            if let Some(t) = target {
                if done_cycles >= t {
                    return Ok("cycles");
                }
            }
            let elapsed = start.elapsed().as_nanos() as u64;
            if let Some(d) = duration_ns {
                if elapsed >= d {
                    return Ok("time");
                }
            }
            let nap = duration_ns
                .map(|d| d.saturating_sub(elapsed))
                .unwrap_or(u64::MAX)
                .min(20_000_000);
            wait::sleep(py, Duration::from_nanos(nap.max(100_000)))?;
        }
    }

    /// Real time: ends the scan once the first task has run `total` cycles since start
    /// (outputs safe in a last cycle, as on close).
    fn stop_at_cycle(&self, py: Python<'_>, total: u64) -> PyResult<()> {
        let mut g = self.lock(py)?;
        Self::built(&mut g)?.stop_at_cycle(total);
        Ok(())
    }

    /// The full name of the variable `name` names (a full name, a unique bare name or
    /// a direct address).
    fn resolve(&self, name: &str) -> PyResult<String> {
        let (l, id) = self.var(name)?;
        Ok(l.var(id).name.clone())
    }

    /// Reads a variable from the latest published cycle.
    fn read(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let (l, id) = self.var(name)?;
        let slot = l.var(id).slot;
        if let IecType::String(_) = slot.ty {
            let (img, _, _) = {
                let mut g = self.lock(py)?;
                Self::built(&mut g)?.snapshot()
            };
            return Ok(text_to_py(py, img.text(slot)));
        }
        let v = {
            let mut g = self.lock(py)?;
            Self::built(&mut g)?.read(id)
        };
        to_py(py, v)
    }

    /// Writes a value once, applied at the start of the next cycle.
    fn write(&self, py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (l, id) = self.var(name)?;
        let var = l.var(id);
        let v = to_value(&var.name, var.slot.ty, value, Fit::Exact)?;
        let mut g = self.lock(py)?;
        let e = Self::built(&mut g)?;
        e.write(id, v)
            .map_err(|why| errors::write_refused(&var.name, var.slot.ty, why))
    }

    /// Forces a variable until released.
    fn force(&self, py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (l, id) = self.var(name)?;
        let var = l.var(id);
        let v = to_value(&var.name, var.slot.ty, value, Fit::Exact)?;
        let mut g = self.lock(py)?;
        Self::built(&mut g)?.force(id, v);
        Ok(())
    }

    /// Releases a force (all of them when `name` is None).
    #[pyo3(signature = (name=None))]
    fn unforce(&self, py: Python<'_>, name: Option<&str>) -> PyResult<()> {
        match name {
            Some(n) => {
                let (_, id) = self.var(n)?;
                let mut g = self.lock(py)?;
                let e = Self::built(&mut g)?;
                if !e.forced().iter().any(|(x, _)| *x == id) {
                    return Err(StateError::new_err(format!("{n:?} is not forced")));
                }
                e.unforce(id);
            }
            None => {
                let mut g = self.lock(py)?;
                Self::built(&mut g)?.unforce_all();
            }
        }
        Ok(())
    }

    /// The forced variables: {name: value}.
    fn forced(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let l = self.layout()?;
        let list = {
            let mut g = self.lock(py)?;
            Self::built(&mut g)?.forced()
        };
        let d = PyDict::new(py);
        for (id, v) in list {
            d.set_item(&l.var(id).name, to_py(py, v)?)?;
        }
        Ok(d.into_any().unbind())
    }

    /// Requests RUN (from STOP; FAULT must be cleared first).
    fn set_run(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py)?;
        let e = Self::built(&mut g)?;
        if e.state() == PlcState::Fault {
            return Err(StateError::new_err(
                "the engine is in FAULT: clear_fault() first, then run()",
            ));
        }
        e.run();
        Ok(())
    }

    /// Requests STOP.
    fn set_stop(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py)?;
        Self::built(&mut g)?.stop();
        Ok(())
    }

    /// Requests leaving FAULT (to STOP).
    fn clear_fault(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py)?;
        Self::built(&mut g)?.clear_fault();
        Ok(())
    }

    /// "RUN", "STOP" or "FAULT"; "CONFIG" before start.
    #[getter]
    fn state(&self, py: Python<'_>) -> PyResult<&'static str> {
        let mut g = self.lock(py)?;
        Ok(match &mut *g {
            Inner::Built(e) => e.state().name(),
            Inner::Config(_) => "CONFIG",
            Inner::Failed => "STOP",
        })
    }

    /// The fault as a dict, or None.
    fn fault(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let f = {
            let mut g = self.lock(py)?;
            match &mut *g {
                Inner::Built(e) => e.fault(),
                _ => None,
            }
        };
        f.map(|f| dicts::fault(py, &f)).transpose()
    }

    /// Per-task statistics.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (figs, tasks) = {
            let mut g = self.lock(py)?;
            let e = Self::built(&mut g)?;
            (e.stats(), e.tasks().to_vec())
        };
        dicts::stats(py, &figs, &tasks)
    }

    /// Clears statistics.
    fn reset_stats(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py)?;
        Self::built(&mut g)?.reset_stats();
        Ok(())
    }

    /// Retain: whether it is on, the files, saves, the last error and the start's
    /// report. None before start.
    fn retain_status(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let mut g = self.lock(py)?;
        let Inner::Built(e) = &mut *g else {
            return Ok(None);
        };
        let on = e.retains();
        let st = e.retain_status().clone();
        drop(g);
        dicts::retain_status(py, on, &st).map(Some)
    }

    /// Real-time set-up obtained: dict, or None (virtual time / not started).
    fn rt_status(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let (st, wd) = {
            let mut g = self.lock(py)?;
            match &mut *g {
                Inner::Built(e) => (e.rt_status(), e.watchdog_degraded()),
                _ => (None, Vec::new()),
            }
        };
        st.map(|s| dicts::rt_status(py, &s, &wd)).transpose()
    }

    /// Events since sequence number `since`: (list of dicts, next sequence number).
    #[pyo3(signature = (since=0))]
    fn events(&self, py: Python<'_>, since: u64) -> PyResult<(Py<PyAny>, u64)> {
        let (evs, next) = {
            let mut g = self.lock(py)?;
            Self::built(&mut g)?.events().since(since)
        };
        Ok((dicts::events(py, evs)?, next))
    }

    /// The variables: list of dicts (name, area, type, address, explicit, index, offset,
    /// bit, initial, safe, unit). Available after start, or from `layout_preview()`.
    fn variables(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let l = self.layout()?;
        dicts::variables(py, &l)
    }

    /// Builds the layout as start() would and returns the variables, without starting.
    fn layout_preview(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut g = self.lock(py)?;
        // Built from a copy, so the configuration stays usable; the same declarations
        // build the same layout in start().
        let builder = Self::config(&mut g)?.layout.clone();
        drop(g);
        let l = builder.build().or_raise()?;
        dicts::variables(py, &l)
    }

    /// A consistent copy of the latest image: dict with "input", "output", "memory"
    /// (uint8 arrays), "quality" (uint8 per variable), "stamp_ns" (uint64 per variable),
    /// "now_ns" and "cycles".
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (img, now, cycles) = {
            let mut g = self.lock(py)?;
            Self::built(&mut g)?.snapshot()
        };
        let d = PyDict::new(py);
        let [i, q, m] = img.areas;
        d.set_item("input", PyArray1::from_vec(py, i))?;
        d.set_item("output", PyArray1::from_vec(py, q))?;
        d.set_item("memory", PyArray1::from_vec(py, m))?;
        let qual: Vec<u8> = img.quality.iter().map(|q| *q as u8).collect();
        d.set_item("quality", PyArray1::from_vec(py, qual))?;
        let stamps = PyArray1::from_vec(py, img.stamp_ns);
        stamps.readonly();
        d.set_item("stamp_ns", stamps)?;
        d.set_item("now_ns", now)?;
        d.set_item("cycles", cycles)?;
        Ok(d)
    }

    /// Holds a variable's quality ("good", "bad", "stale"; None releases it) and,
    /// with `age_ns`, the age of its data, from the next cycle on (fault injection).
    #[pyo3(signature = (name, quality, age_ns=None))]
    fn hold_quality(
        &self,
        py: Python<'_>,
        name: &str,
        quality: Option<&str>,
        age_ns: Option<u64>,
    ) -> PyResult<()> {
        let (_, id) = self.var(name)?;
        let hold = match quality {
            None => None,
            Some(q) => {
                let quality = match q {
                    "good" => Quality::Good,
                    "bad" => Quality::Bad,
                    "stale" => Quality::Stale,
                    other => {
                        return Err(ConfigError::new_err(format!(
                            "unknown quality {other:?} (expected good, bad or stale)"
                        )))
                    }
                };
                Some(QualityHold { quality, age_ns })
            }
        };
        let mut g = self.lock(py)?;
        Self::built(&mut g)?.hold_quality(id, hold);
        Ok(())
    }

    /// Virtual time, between cycles: the engine's state as an opaque checkpoint.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<PyCheckpoint> {
        let mut g = self.lock(py)?;
        let cp = Self::built(&mut g)?.checkpoint().or_raise()?;
        Ok(PyCheckpoint {
            inner: Arc::new(cp),
        })
    }

    /// Virtual time: restores a checkpoint taken on an engine built the same way.
    fn restore(&self, py: Python<'_>, cp: &PyCheckpoint) -> PyResult<()> {
        let mut g = self.lock(py)?;
        Self::built(&mut g)?.restore(&cp.inner).or_raise()
    }

    /// Input quality of a variable ("good", "bad", "stale") in the latest snapshot.
    fn quality(&self, py: Python<'_>, name: &str) -> PyResult<&'static str> {
        let (_, id) = self.var(name)?;
        let (img, _, _) = {
            let mut g = self.lock(py)?;
            Self::built(&mut g)?.snapshot()
        };
        Ok(img.quality[id.index()].name())
    }

    /// Age of a variable's data at the latest snapshot (ns).
    fn age_ns(&self, py: Python<'_>, name: &str) -> PyResult<u64> {
        let (_, id) = self.var(name)?;
        let (img, now, _) = {
            let mut g = self.lock(py)?;
            Self::built(&mut g)?.snapshot()
        };
        Ok(now.saturating_sub(img.stamp_ns[id.index()]))
    }

    /// Driver status monitors: {driver name: JSON text}.
    fn driver_status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let list = {
            let mut g = self.lock(py)?;
            Self::built(&mut g)?.driver_status()
        };
        let d = PyDict::new(py);
        for (name, json) in list {
            d.set_item(name, json)?;
        }
        Ok(d.into_any().unbind())
    }

    /// Stops (outputs safe in a last cycle), joins the scan thread, stops drivers.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py)?;
        match &mut *g {
            Inner::Built(e) => wait::blocking(py, || e.close())?,
            Inner::Config(_) => *g = Inner::Failed,
            Inner::Failed => {}
        }
        Ok(())
    }

    /// True when `close` had to abandon a scan thread stuck in Python code that never
    /// returned (outputs were forced safe first); the process should exit.
    #[getter]
    fn scan_abandoned(&self, py: Python<'_>) -> PyResult<bool> {
        let mut g = self.lock(py)?;
        Ok(match &mut *g {
            Inner::Built(e) => e.scan_abandoned(),
            _ => false,
        })
    }

    /// "real" or "virtual".
    #[getter]
    fn clock(&self) -> &'static str {
        match self.clock {
            ClockKind::Real => "real",
            ClockKind::Virtual => "virtual",
        }
    }
}

impl PyEngine {
    fn push_program(c: &mut Config, task: &str, p: Pending) -> PyResult<()> {
        let name = match &p {
            Pending::Python(n, _) | Pending::Compiled(n, _) => n.clone(),
        };
        if c.tasks
            .iter()
            .flat_map(|(_, ps)| ps.iter())
            .any(|q| matches!(q, Pending::Python(n, _) | Pending::Compiled(n, _) if *n == name))
        {
            return Err(ConfigError::new_err(format!(
                "duplicate program name {name:?}"
            )));
        }
        let Some((_, ps)) = c.tasks.iter_mut().find(|(t, _)| t.name == task) else {
            return Err(ConfigError::new_err(format!(
                "program {name:?}: unknown task {task:?}"
            )));
        };
        ps.push(p);
        Ok(())
    }
}

impl Drop for PyEngine {
    /// Dropped without `close()`: close here, with the GIL released, because the scan
    /// thread may be waiting for the GIL to finish a Python program's call.
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Inner::Built(e) = inner {
            if e.is_started() {
                Python::attach(|py| py.detach(|| e.close()));
            }
        }
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEngine>()?;
    m.add_class::<PyCheckpoint>()?;
    m.add_class::<ScanIo>()?;
    Ok(())
}
