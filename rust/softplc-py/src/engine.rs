//! The native engine class and the I/O object Python programs and plants receive.
//!
//! Locking rule: the engine's state sits behind a mutex, and every method takes that
//! mutex only with the GIL released (`lock` below). The virtual clock runs cycles while
//! holding the mutex and, for Python programs, takes the GIL inside each call; a second
//! Python thread waiting for the mutex therefore never holds the GIL against it.

use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use softplc_core::engine::TaskConfig;
use softplc_core::rt::RtRequest;
use softplc_core::stats::Percentiles;
use softplc_core::{
    Area, ClockKind, ConfigError as CoreConfigError, CycleObserver, Driver, Engine, EngineBuilder,
    EngineError, IecType, Image, Interrupt, Layout, LayoutBuilder, OverrunPolicy, Plant, Program,
    ProgramFault, ProgramKind, ScanCtx, SimDriver, Value, VarDecl, VarId, WriteRule,
};

use crate::driver::NativeDriver;
use crate::errors::{self, ConfigError, InvalidValue, StateError};

// ---------------------------------------------------------------------------------
// Values between Python and the image

/// Converts a Python object for a write from the user API: out-of-range integers and
/// wrong kinds are errors naming the variable.
pub fn py_to_value_strict(name: &str, ty: IecType, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let bad = |why: String| InvalidValue::new_err(format!("{name} ({ty}): {why}"));
    let is_bool = obj.is_instance_of::<pyo3::types::PyBool>()
        || obj.get_type().name().map(|n| n == "bool_").unwrap_or(false);
    if ty == IecType::Bool {
        if is_bool {
            return Ok(Value::Bool(obj.is_truthy()?));
        }
        if let Ok(i) = obj.extract::<i64>() {
            return Value::from_i128(ty, i as i128).map_err(|e| bad(e.reason));
        }
        return Err(bad(format!("expected a bool, got {}", type_name(obj))));
    }
    if let Ok(i) = obj.extract::<i128>() {
        if obj.is_instance_of::<pyo3::types::PyFloat>() {
            // numpy floats may extract as ints; fall through to the float path
        } else {
            return Value::from_i128(ty, i).map_err(|e| bad(e.reason));
        }
    }
    if let Ok(f) = obj.extract::<f64>() {
        return Value::from_f64(ty, f).map_err(|e| bad(e.reason));
    }
    Err(bad(format!("expected a number, got {}", type_name(obj))))
}

/// Converts a Python object written by a program or a plant: integers wrap to the
/// type's width (IEC overflow), floats round to REAL. Wrong kinds are errors.
pub fn py_to_value_wrapping(name: &str, ty: IecType, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let bad = |why: String| PyTypeError::new_err(format!("{name} ({ty}): {why}"));
    match ty {
        IecType::Bool => {
            if let Ok(b) = obj.extract::<bool>() {
                return Ok(Value::Bool(b));
            }
            if let Ok(i) = obj.extract::<i64>() {
                if i == 0 || i == 1 {
                    return Ok(Value::Bool(i == 1));
                }
            }
            Err(bad(format!("expected a bool, got {}", type_name(obj))))
        }
        IecType::Real | IecType::Lreal => {
            let f: f64 = obj
                .extract()
                .map_err(|_| bad(format!("expected a number, got {}", type_name(obj))))?;
            Ok(if ty == IecType::Real {
                Value::Real(f as f32)
            } else {
                Value::Lreal(f)
            })
        }
        _ => {
            if obj.is_instance_of::<pyo3::types::PyFloat>() {
                return Err(bad(format!(
                    "expected an integer, got float {} (convert explicitly)",
                    obj.repr()?
                )));
            }
            let i: i128 = obj
                .extract()
                .map_err(|_| bad(format!("expected an integer, got {}", type_name(obj))))?;
            Ok(Value::from_bits(ty, i as u128 as u64))
        }
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Converts a value to Python: bool, int (TIME in ns) or float.
pub fn value_to_py(py: Python<'_>, v: Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Bool(b) => pyo3::types::PyBool::new(py, b)
            .to_owned()
            .into_any()
            .unbind(),
        Value::Int(_, i) | Value::Time(i) => i.into_pyobject(py)?.into_any().unbind(),
        Value::UInt(_, u) => u.into_pyobject(py)?.into_any().unbind(),
        Value::Real(f) => (f as f64).into_pyobject(py)?.into_any().unbind(),
        Value::Lreal(f) => f.into_pyobject(py)?.into_any().unbind(),
    })
}

fn parse_type(s: &str) -> PyResult<IecType> {
    IecType::from_name(s).ok_or_else(|| {
        ConfigError::new_err(format!(
            "unknown type {s:?} (expected one of BOOL, SINT, INT, DINT, LINT, USINT, UINT, \
             UDINT, ULINT, REAL, LREAL, TIME)"
        ))
    })
}

// ---------------------------------------------------------------------------------
// The I/O object

/// What a Python program or plant gets for one call: access to the image by name or by
/// index, the cycle's `now`, and input quality/age. Valid only during the call.
#[pyclass(module = "softplc._native", name = "ScanIO", frozen)]
pub struct ScanIo {
    image: AtomicPtr<Image>,
    layout: Arc<Layout>,
    now_ns: AtomicU64,
    cycle: AtomicU64,
    period_ns: AtomicU64,
    dt_ns: AtomicU64,
}

impl ScanIo {
    fn new(layout: Arc<Layout>) -> ScanIo {
        ScanIo {
            image: AtomicPtr::new(std::ptr::null_mut()),
            layout,
            now_ns: AtomicU64::new(0),
            cycle: AtomicU64::new(0),
            period_ns: AtomicU64::new(0),
            dt_ns: AtomicU64::new(0),
        }
    }

    // The image belongs to the scan thread, which lends it for the duration of one
    // Python call (see `enter`/`leave`); interior mutability through a raw pointer is the
    // point here, not an accident.
    #[allow(clippy::mut_from_ref)]
    fn image(&self) -> PyResult<&mut Image> {
        let p = self.image.load(Ordering::Acquire);
        if p.is_null() {
            return Err(StateError::new_err(
                "this I/O object is only valid during the scan call it was passed to",
            ));
        }
        // SAFETY: the pointer is set by the scan thread from its `&mut Image` just before
        // calling into Python and cleared right after; the scan thread does not touch
        // the image during the call, and every access here happens with the GIL held,
        // which serializes the Python threads that could reach this object.
        Ok(unsafe { &mut *p })
    }

    fn id(&self, key: &Bound<'_, PyAny>) -> PyResult<VarId> {
        if let Ok(i) = key.extract::<u32>() {
            if (i as usize) < self.layout.len() {
                return Ok(VarId(i));
            }
            return Err(PyKeyError::new_err(format!("no variable with index {i}")));
        }
        let name: String = key.extract()?;
        self.layout
            .find(&name)
            .map_err(|e| PyKeyError::new_err(e.message))
    }

    fn get_id(&self, py: Python<'_>, id: VarId) -> PyResult<Py<PyAny>> {
        let img = self.image()?;
        value_to_py(py, img.load(self.layout.var(id).slot))
    }

    fn set_id(&self, id: VarId, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let var = self.layout.var(id);
        let v = py_to_value_wrapping(&var.name, var.slot.ty, value)?;
        let img = self.image()?;
        img.store(var.slot, v);
        img.stamp_ns[id.index()] = self.now_ns.load(Ordering::Relaxed);
        Ok(())
    }

    fn enter(&self, image: &mut Image, now: u64, cycle: u64, period: u64, dt: u64) {
        self.now_ns.store(now, Ordering::Relaxed);
        self.cycle.store(cycle, Ordering::Relaxed);
        self.period_ns.store(period, Ordering::Relaxed);
        self.dt_ns.store(dt, Ordering::Relaxed);
        self.image.store(image as *mut Image, Ordering::Release);
    }

    fn leave(&self) {
        self.image.store(std::ptr::null_mut(), Ordering::Release);
    }
}

#[pymethods]
impl ScanIo {
    /// Reads a variable by index (fast path for declared programs).
    fn get(&self, py: Python<'_>, index: u32) -> PyResult<Py<PyAny>> {
        if index as usize >= self.layout.len() {
            return Err(PyKeyError::new_err(format!(
                "no variable with index {index}"
            )));
        }
        self.get_id(py, VarId(index))
    }

    /// Writes a variable by index (integers wrap, as in IEC arithmetic).
    fn set(&self, index: u32, value: &Bound<'_, PyAny>) -> PyResult<()> {
        if index as usize >= self.layout.len() {
            return Err(PyKeyError::new_err(format!(
                "no variable with index {index}"
            )));
        }
        self.set_id(VarId(index), value)
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let id = self.id(key)?;
        self.get_id(py, id)
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = self.id(key)?;
        self.set_id(id, value)
    }

    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let id = self
            .layout
            .find(name)
            .map_err(|e| pyo3::exceptions::PyAttributeError::new_err(e.message))?;
        self.get_id(py, id)
    }

    fn __setattr__(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = self
            .layout
            .find(name)
            .map_err(|e| pyo3::exceptions::PyAttributeError::new_err(e.message))?;
        self.set_id(id, value)
    }

    /// Data quality of an input: "good", "bad" or "stale".
    fn quality(&self, key: &Bound<'_, PyAny>) -> PyResult<&'static str> {
        let id = self.id(key)?;
        Ok(self.image()?.quality[id.index()].name())
    }

    /// Age of a variable's data in nanoseconds (now minus its acquisition time).
    fn age_ns(&self, key: &Bound<'_, PyAny>) -> PyResult<u64> {
        let id = self.id(key)?;
        let stamp = self.image()?.stamp_ns[id.index()];
        Ok(self.now_ns.load(Ordering::Relaxed).saturating_sub(stamp))
    }

    /// The cycle's `now` (engine clock, ns).
    #[getter]
    fn now_ns(&self) -> u64 {
        self.now_ns.load(Ordering::Relaxed)
    }

    /// The task's cycle number.
    #[getter]
    fn cycle(&self) -> u64 {
        self.cycle.load(Ordering::Relaxed)
    }

    /// The task's period (ns).
    #[getter]
    fn period_ns(&self) -> u64 {
        self.period_ns.load(Ordering::Relaxed)
    }

    /// Time since the previous cycle (ns).
    #[getter]
    fn dt_ns(&self) -> u64 {
        self.dt_ns.load(Ordering::Relaxed)
    }
}

fn format_exception(py: Python<'_>, e: &PyErr) -> String {
    let tb = (|| -> PyResult<String> {
        let m = py.import("traceback")?;
        let lines = m.call_method1("format_exception", (e.value(py),))?;
        let s: Vec<String> = lines.extract()?;
        Ok(s.concat())
    })();
    tb.unwrap_or_else(|_| e.to_string()).trim_end().to_string()
}

/// The Python thread the scan runs Python code on, for the watchdog's interrupts.
///
/// `in_call` and `pending` change only with the GIL held (by the scan thread around each
/// call, by the interrupting thread around `PyThreadState_SetAsyncExc`), so the two can
/// never disagree about whether the exception landed in the stuck call: an exception
/// still pending after the call returned is withdrawn before it could hit an innocent
/// later call.
#[derive(Default)]
struct PyScan {
    /// `PyThread_get_thread_ident()` of the thread in the call.
    ident: AtomicU64,
    in_call: AtomicBool,
    pending: AtomicBool,
}

impl PyScan {
    /// Runs `f` (a call into Python) as the scan's current Python call. GIL held.
    fn call<R>(&self, f: impl FnOnce() -> R) -> R {
        // SAFETY: called with the GIL held; returns the calling thread's identifier.
        let me = unsafe { pyo3::ffi::PyThread_get_thread_ident() } as u64;
        self.ident.store(me, Ordering::Relaxed);
        self.in_call.store(true, Ordering::Relaxed);
        let r = f();
        self.in_call.store(false, Ordering::Relaxed);
        if self.pending.swap(false, Ordering::Relaxed) {
            // SAFETY: GIL held; a null exception clears any pending asynchronous
            // exception of that thread.
            unsafe { pyo3::ffi::PyThreadState_SetAsyncExc(me as _, std::ptr::null_mut()) };
        }
        r
    }
}

/// Interrupts the Python code the scan thread is stuck in (see [`PyScan`]).
struct PyInterrupter(Arc<PyScan>);

impl Interrupt for PyInterrupter {
    fn interrupt(&self, report: Box<dyn FnOnce(String) + Send>) {
        let scan = self.0.clone();
        // Taking the GIL can take a switch interval, or forever if the stuck code holds
        // it in C: never on the watchdog thread.
        let _ = std::thread::Builder::new()
            .name("softplc-interrupt".into())
            .spawn(move || {
                let place = Python::attach(|py| -> Option<String> {
                    if !scan.in_call.load(Ordering::Relaxed) {
                        return None;
                    }
                    let ident = scan.ident.load(Ordering::Relaxed);
                    let place = python_place(py, ident);
                    let exc = py.get_type::<errors::WatchdogInterrupt>();
                    scan.pending.store(true, Ordering::Relaxed);
                    // SAFETY: GIL held; `exc` is a live type object, borrowed for the
                    // call (the function takes its own reference).
                    unsafe { pyo3::ffi::PyThreadState_SetAsyncExc(ident as _, exc.as_ptr()) };
                    Some(place)
                });
                if let Some(p) = place {
                    report(p);
                }
            });
    }
}

/// Where the Python thread `ident` is: `file:line in function` of the innermost frame
/// outside the softplc package (the user's line, not a softplc helper it called).
fn python_place(py: Python<'_>, ident: u64) -> String {
    let found = (|| -> PyResult<String> {
        let frames = py.import("sys")?.call_method0("_current_frames")?;
        let ours: String = py
            .import("os.path")?
            .call_method1("dirname", (py.import("softplc")?.getattr("__file__")?,))?
            .extract()?;
        let mut frame = frames.get_item(ident)?;
        let mut chosen = None;
        while !frame.is_none() {
            let file: String = frame.getattr("f_code")?.getattr("co_filename")?.extract()?;
            if chosen.is_none() {
                chosen = Some(frame.clone());
            }
            if !file.starts_with(&ours) {
                chosen = Some(frame.clone());
                break;
            }
            frame = frame.getattr("f_back")?;
        }
        let frame = chosen.ok_or_else(|| StateError::new_err("no frame"))?;
        let code = frame.getattr("f_code")?;
        let file: String = code.getattr("co_filename")?.extract()?;
        let func: String = code.getattr("co_name")?.extract()?;
        let line: i64 = frame.getattr("f_lineno")?.extract()?;
        Ok(format!("Python code was at {file}:{line} in {func}"))
    })();
    found.unwrap_or_else(|_| "Python code was interrupted (location unknown)".to_string())
}

/// A Python callable run as a program: `callable(io)`, with the GIL held for the call.
struct PyProgram {
    name: String,
    callable: Py<PyAny>,
    io: Py<ScanIo>,
    scan: Arc<PyScan>,
}

impl Program for PyProgram {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ProgramKind {
        ProgramKind::Python
    }

    fn execute(&mut self, cx: &mut ScanCtx<'_>) -> Result<(), ProgramFault> {
        Python::attach(|py| {
            let io = self.io.bind(py);
            io.get()
                .enter(cx.image, cx.now_ns, cx.cycle, cx.period_ns, cx.period_ns);
            let r = self.scan.call(|| self.callable.call1(py, (io,)));
            io.get().leave();
            r.map(|_| ())
                .map_err(|e| ProgramFault::new(format_exception(py, &e)))
        })
    }
}

/// A Python plant model: `step(io, dt_seconds)`.
struct PyPlant {
    step: Py<PyAny>,
    io: Py<ScanIo>,
    scan: Arc<PyScan>,
}

impl Plant for PyPlant {
    fn step(
        &mut self,
        image: &mut Image,
        _layout: &Arc<Layout>,
        now_ns: u64,
        dt_ns: u64,
    ) -> Result<(), String> {
        Python::attach(|py| {
            let io = self.io.bind(py);
            io.get().enter(image, now_ns, 0, dt_ns, dt_ns);
            let r = self
                .scan
                .call(|| self.step.call1(py, (io, dt_ns as f64 / 1e9)));
            io.get().leave();
            r.map(|_| ())
                .map_err(|e| format!("plant model raised:\n{}", format_exception(py, &e)))
        })
    }
}

// ---------------------------------------------------------------------------------
// The engine

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
}

impl PyEngine {
    /// Takes the state lock without holding the GIL while waiting (see module docs).
    fn lock<'a>(&'a self, py: Python<'_>) -> MutexGuard<'a, Inner> {
        loop {
            match self.inner.try_lock() {
                Ok(g) => return g,
                Err(std::sync::TryLockError::Poisoned(p)) => return p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    py.detach(|| std::thread::sleep(Duration::from_micros(50)));
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

    fn var(&self, name: &str) -> PyResult<(Arc<Layout>, VarId)> {
        let l = self.layout()?;
        let id = l.find(name).map_err(errors::config)?;
        Ok((l, id))
    }

    /// Attaches a cycle observer (trace sampler, ...) to the started engine.
    pub fn attach_observer(&self, py: Python<'_>, obs: Box<dyn CycleObserver>) -> PyResult<u64> {
        let mut g = self.lock(py);
        let e = Self::built(&mut g)?;
        Ok(e.add_observer(obs))
    }

    /// Detaches an observer and hands it back once the scan has let go of it.
    pub fn detach_observer(
        &self,
        py: Python<'_>,
        id: u64,
    ) -> PyResult<Option<Box<dyn CycleObserver>>> {
        let mut g = self.lock(py);
        let e = Self::built(&mut g)?;
        // The scan thread may need the GIL to finish a Python program before it lets go.
        Ok(py.detach(|| e.remove_observer(id, Duration::from_secs(5))))
    }

    /// The started engine's event log (for writers that record events).
    pub fn event_sink(&self, py: Python<'_>) -> PyResult<softplc_core::EventSink> {
        let mut g = self.lock(py);
        Ok(Self::built(&mut g)?.events().clone())
    }

    /// Runs `f` on the started engine.
    pub fn with_engine<R>(&self, py: Python<'_>, f: impl FnOnce(&mut Engine) -> R) -> PyResult<R> {
        let mut g = self.lock(py);
        Ok(f(Self::built(&mut g)?))
    }
}

fn area_of(s: &str) -> PyResult<Area> {
    Area::parse(s).ok_or_else(|| {
        ConfigError::new_err(format!(
            "unknown area {s:?} (expected input, output or memory)"
        ))
    })
}

fn engine_err(e: EngineError) -> PyErr {
    match e {
        EngineError::State(s) => StateError::new_err(s),
        EngineError::Io(e) => errors::io(e),
    }
}

fn pct(py: Python<'_>, p: &Percentiles) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("p50_ns", p.p50)?;
    d.set_item("p99_ns", p.p99)?;
    d.set_item("p999_ns", p.p999)?;
    d.set_item("max_ns", p.max)?;
    d.set_item("mean_ns", p.mean)?;
    d.set_item("count", p.count)?;
    Ok(d.into_any().unbind())
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
                rt: RtRequest {
                    priority,
                    lock_memory,
                    cpu,
                },
            }))),
            clock,
            layout: Mutex::new(None),
        })
    }

    /// Declares a variable; returns its index.
    #[pyo3(signature = (name, area, type_name, address=None, initial=None, safe=None, unit="", min=None, max=None, writable=true))]
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
    ) -> PyResult<u32> {
        let area = area_of(area)?;
        let ty = parse_type(type_name)?;
        let conv = |v: Option<&Bound<'_, PyAny>>, what: &str| -> PyResult<Option<Value>> {
            v.map(|v| {
                py_to_value_strict(&format!("{what} value of {name:?}"), ty, v)
                    .map_err(|e| ConfigError::new_err(e.value(py).to_string()))
            })
            .transpose()
        };
        let mut decl = VarDecl::new(name, area, ty, address);
        decl.initial = conv(initial, "initial")?;
        decl.safe = conv(safe, "safe")?;
        if safe.is_some() && area != Area::Output {
            return Err(ConfigError::new_err(format!(
                "variable {name:?}: only outputs have a safe value"
            )));
        }
        decl.unit = unit.to_string();
        decl.rule = WriteRule {
            writable,
            min: conv(min, "min")?,
            max: conv(max, "max")?,
        };
        let mut g = self.lock(py);
        let c = Self::config(&mut g)?;
        c.layout
            .declare(decl)
            .map(|id| id.0)
            .map_err(errors::config)
    }

    /// Number of variables declared so far.
    fn declared_count(&self, py: Python<'_>) -> PyResult<usize> {
        let mut g = self.lock(py);
        Ok(Self::config(&mut g)?.layout.len())
    }

    /// Forgets the declarations after the first `n` (rolls back a partly added program).
    fn rollback_declarations(&self, py: Python<'_>, n: usize) -> PyResult<()> {
        let mut g = self.lock(py);
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
        let mut g = self.lock(py);
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
            return Err(PyTypeError::new_err(format!(
                "program {name:?} is not callable"
            )));
        }
        let mut g = self.lock(py);
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
        let mut g = self.lock(py);
        let c = Self::config(&mut g)?;
        Self::push_program(c, task, Pending::Compiled(name.to_string(), ir))
    }

    /// Attaches a native driver.
    fn add_driver(&self, py: Python<'_>, driver: &NativeDriver) -> PyResult<()> {
        let mut g = self.lock(py);
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
            return Err(PyTypeError::new_err("the plant's step must be callable"));
        }
        let mut g = self.lock(py);
        let c = Self::config(&mut g)?;
        c.plant = Some(step);
        Ok(())
    }

    /// Builds everything and starts (in RUN when `run`). On any error nothing is left
    /// running and the engine cannot be started again.
    #[pyo3(signature = (run=true))]
    fn start(&self, py: Python<'_>, run: bool) -> PyResult<()> {
        let mut g = self.lock(py);
        let cfg = match std::mem::replace(&mut *g, Inner::Failed) {
            Inner::Config(c) => c,
            other => {
                *g = other;
                return Err(StateError::new_err("the engine is already started"));
            }
        };
        let cfg = *cfg;
        let layout = cfg.layout.build().map_err(errors::config)?;
        let layout_arc = Arc::new(layout.clone());
        let io = Py::new(py, ScanIo::new(layout_arc.clone()))?;
        let mut b = EngineBuilder::new(layout, self.clock);
        b.realtime(cfg.rt.clone());
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
            .map_err(errors::config)?;
        }
        for d in cfg.drivers {
            b.driver(d).map_err(errors::config)?;
        }
        for (tcfg, pending) in cfg.tasks {
            let mut programs: Vec<Box<dyn Program>> = Vec::new();
            for p in pending {
                programs.push(match p {
                    Pending::Python(name, callable) => Box::new(PyProgram {
                        name,
                        callable,
                        io: io.clone_ref(py),
                        scan: scan.clone(),
                    }),
                    Pending::Compiled(name, ir) => crate::vm::load_compiled(&name, &ir, b.layout())
                        .map_err(|e: CoreConfigError| errors::ProgramError::new_err(e.message))?,
                });
            }
            b.task(tcfg, programs).map_err(errors::config)?;
        }
        let mut engine = b.build().map_err(errors::config)?;
        // Real time: the scan thread may need the GIL for Python programs at once.
        py.detach(|| engine.start(run)).map_err(engine_err)?;
        *self.layout.lock().unwrap_or_else(|p| p.into_inner()) = Some(engine.layout().clone());
        *g = Inner::Built(Box::new(engine));
        Ok(())
    }

    /// Virtual time: runs `n` wake-ups; returns the virtual time reached (ns).
    fn run_cycles(&self, py: Python<'_>, n: u64) -> PyResult<u64> {
        let mut g = self.lock(py);
        let e = Self::built(&mut g)?;
        // Chunks keep Ctrl-C responsive on long runs.
        let mut left = n;
        let mut t = e.virtual_now().unwrap_or(0);
        while left > 0 {
            let k = left.min(10_000);
            t = py.detach(|| e.run_cycles(k)).map_err(engine_err)?;
            left -= k;
            py.check_signals()?;
        }
        Ok(t)
    }

    /// Virtual time: runs every cycle scheduled in the next `duration_ns`; returns the
    /// number of wake-ups.
    fn run_virtual_for(&self, py: Python<'_>, duration_ns: u64) -> PyResult<u64> {
        let mut g = self.lock(py);
        let e = Self::built(&mut g)?;
        py.detach(|| e.run_virtual_for(duration_ns))
            .map_err(engine_err)
    }

    /// Virtual time of the next wake-up.
    fn virtual_now(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        let mut g = self.lock(py);
        Ok(Self::built(&mut g)?.virtual_now())
    }

    /// Engine-clock time of the latest published cycle and of the first tick.
    fn clock_ns(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        let mut g = self.lock(py);
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
            let mut g = self.lock(py);
            let e = Self::built(&mut g)?;
            cycles.map(|c| e.stats()[0].cycles + c)
        };
        loop {
            let (state, done_cycles, finished) = {
                let mut g = self.lock(py);
                let e = Self::built(&mut g)?;
                (e.state(), e.stats()[0].cycles, e.scan_finished())
            };
            if finished {
                return Ok(if state == softplc_core::PlcState::Fault {
                    "fault"
                } else {
                    "stopped"
                });
            }
            if stop_on_fault && state == softplc_core::PlcState::Fault {
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
            py.detach(|| std::thread::sleep(Duration::from_nanos(nap.max(100_000))));
            py.check_signals()?;
        }
    }

    /// Real time: ends the scan once the first task has run `total` cycles since start
    /// (outputs safe in a last cycle, as on close).
    fn stop_at_cycle(&self, py: Python<'_>, total: u64) -> PyResult<()> {
        let mut g = self.lock(py);
        Self::built(&mut g)?.stop_at_cycle(total);
        Ok(())
    }

    /// Reads a variable from the latest published cycle.
    fn read(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let (_, id) = self.var(name)?;
        let v = {
            let mut g = self.lock(py);
            Self::built(&mut g)?.read(id)
        };
        value_to_py(py, v)
    }

    /// Writes a value once, applied at the start of the next cycle.
    fn write(&self, py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (l, id) = self.var(name)?;
        let var = l.var(id);
        let v = py_to_value_strict(&var.name, var.slot.ty, value)?;
        let mut g = self.lock(py);
        let e = Self::built(&mut g)?;
        e.write(id, v)
            .map_err(|why| InvalidValue::new_err(format!("{} ({}): {why}", var.name, var.slot.ty)))
    }

    /// Forces a variable until released.
    fn force(&self, py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let (l, id) = self.var(name)?;
        let var = l.var(id);
        let v = py_to_value_strict(&var.name, var.slot.ty, value)?;
        let mut g = self.lock(py);
        Self::built(&mut g)?.force(id, v);
        Ok(())
    }

    /// Releases a force (all of them when `name` is None).
    #[pyo3(signature = (name=None))]
    fn unforce(&self, py: Python<'_>, name: Option<&str>) -> PyResult<()> {
        match name {
            Some(n) => {
                let (_, id) = self.var(n)?;
                let mut g = self.lock(py);
                let e = Self::built(&mut g)?;
                if !e.forced().iter().any(|(x, _)| *x == id) {
                    return Err(StateError::new_err(format!("{n:?} is not forced")));
                }
                e.unforce(id);
            }
            None => {
                let mut g = self.lock(py);
                Self::built(&mut g)?.unforce_all();
            }
        }
        Ok(())
    }

    /// The forced variables: {name: value}.
    fn forced(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let l = self.layout()?;
        let list = {
            let mut g = self.lock(py);
            Self::built(&mut g)?.forced()
        };
        let d = PyDict::new(py);
        for (id, v) in list {
            d.set_item(&l.var(id).name, value_to_py(py, v)?)?;
        }
        Ok(d.into_any().unbind())
    }

    /// Requests RUN (from STOP; FAULT must be cleared first).
    fn set_run(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py);
        let e = Self::built(&mut g)?;
        if e.state() == softplc_core::PlcState::Fault {
            return Err(StateError::new_err(
                "the engine is in FAULT: clear_fault() first, then run()",
            ));
        }
        e.run();
        Ok(())
    }

    /// Requests STOP.
    fn set_stop(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py);
        Self::built(&mut g)?.stop();
        Ok(())
    }

    /// Requests leaving FAULT (to STOP).
    fn clear_fault(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py);
        Self::built(&mut g)?.clear_fault();
        Ok(())
    }

    /// "RUN", "STOP" or "FAULT"; "CONFIG" before start.
    #[getter]
    fn state(&self, py: Python<'_>) -> &'static str {
        let mut g = self.lock(py);
        match &mut *g {
            Inner::Built(e) => e.state().name(),
            Inner::Config(_) => "CONFIG",
            Inner::Failed => "STOP",
        }
    }

    /// The fault as a dict, or None.
    fn fault(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let f = {
            let mut g = self.lock(py);
            match &mut *g {
                Inner::Built(e) => e.fault(),
                _ => None,
            }
        };
        f.map(|f| -> PyResult<Py<PyAny>> {
            let d = PyDict::new(py);
            d.set_item("kind", f.kind)?;
            d.set_item("task", &f.task)?;
            d.set_item("source", &f.source)?;
            d.set_item("cycle", f.cycle)?;
            d.set_item("t_ns", f.t_ns)?;
            d.set_item("started_ns", f.started_ns)?;
            d.set_item("message", &f.message)?;
            d.set_item("summary", f.to_string())?;
            Ok(d.into_any().unbind())
        })
        .transpose()
    }

    /// Per-task statistics.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let (figs, tasks) = {
            let mut g = self.lock(py);
            let e = Self::built(&mut g)?;
            (e.stats(), e.tasks().to_vec())
        };
        let out = PyList::empty(py);
        for (f, t) in figs.iter().zip(tasks.iter()) {
            let d = PyDict::new(py);
            d.set_item("name", &t.name)?;
            d.set_item("period_ns", t.period_ns)?;
            d.set_item("priority", t.priority)?;
            d.set_item("cycles", f.cycles)?;
            d.set_item("overruns", f.overruns)?;
            d.set_item("missed", f.missed)?;
            d.set_item("latency", pct(py, &f.latency)?)?;
            d.set_item("exec", pct(py, &f.exec)?)?;
            d.set_item("period", pct(py, &f.period)?)?;
            let progs = PyList::empty(py);
            for (n, k) in &t.programs {
                progs.append((n, k.name()))?;
            }
            d.set_item("programs", progs)?;
            out.append(d)?;
        }
        Ok(out.into_any().unbind())
    }

    /// Clears statistics.
    fn reset_stats(&self, py: Python<'_>) -> PyResult<()> {
        let mut g = self.lock(py);
        Self::built(&mut g)?.reset_stats();
        Ok(())
    }

    /// Real-time set-up obtained: dict, or None (virtual time / not started).
    fn rt_status(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let (st, wd) = {
            let mut g = self.lock(py);
            match &mut *g {
                Inner::Built(e) => (e.rt_status(), e.watchdog_degraded()),
                _ => (None, Vec::new()),
            }
        };
        st.map(|s| -> PyResult<Py<PyAny>> {
            let d = PyDict::new(py);
            d.set_item("priority", s.priority)?;
            d.set_item("memory_locked", s.memory_locked)?;
            d.set_item("cpu", s.cpu)?;
            d.set_item("timer_slack", s.timer_slack)?;
            d.set_item("cpu_dma_latency", s.cpu_dma_latency)?;
            d.set_item("degraded", s.degraded.clone())?;
            d.set_item("watchdog_degraded", wd.clone())?;
            Ok(d.into_any().unbind())
        })
        .transpose()
    }

    /// Events since sequence number `since`: (list of dicts, next sequence number).
    #[pyo3(signature = (since=0))]
    fn events(&self, py: Python<'_>, since: u64) -> PyResult<(Py<PyAny>, u64)> {
        let (evs, next) = {
            let mut g = self.lock(py);
            Self::built(&mut g)?.events().since(since)
        };
        let out = PyList::empty(py);
        for e in evs {
            let d = PyDict::new(py);
            d.set_item("t_ns", e.t_ns)?;
            d.set_item("kind", e.kind.name())?;
            d.set_item("task", e.task)?;
            d.set_item("a", e.a)?;
            d.set_item("b", e.b)?;
            d.set_item("text", e.text)?;
            out.append(d)?;
        }
        Ok((out.into_any().unbind(), next))
    }

    /// The variables: list of dicts (name, area, type, address, explicit, index, offset,
    /// bit, initial, safe, unit). Available after start, or from `layout_preview()`.
    fn variables(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let l = self.layout()?;
        vars_to_py(py, &l)
    }

    /// Builds the layout as start() would and returns the variables, without starting.
    fn layout_preview(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut g = self.lock(py);
        // Built from a copy, so the configuration stays usable; the same declarations
        // build the same layout in start().
        let builder = Self::config(&mut g)?.layout.clone();
        drop(g);
        let l = builder.build().map_err(errors::config)?;
        vars_to_py(py, &l)
    }

    /// A consistent copy of the latest image: dict with "input", "output", "memory"
    /// (uint8 arrays), "quality" (uint8 per variable), "stamp_ns" (uint64 per variable),
    /// "now_ns" and "cycles".
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (img, now, cycles) = {
            let mut g = self.lock(py);
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

    /// Input quality of a variable ("good", "bad", "stale") in the latest snapshot.
    fn quality(&self, py: Python<'_>, name: &str) -> PyResult<&'static str> {
        let (_, id) = self.var(name)?;
        let (img, _, _) = {
            let mut g = self.lock(py);
            Self::built(&mut g)?.snapshot()
        };
        Ok(img.quality[id.index()].name())
    }

    /// Age of a variable's data at the latest snapshot (ns).
    fn age_ns(&self, py: Python<'_>, name: &str) -> PyResult<u64> {
        let (_, id) = self.var(name)?;
        let (img, now, _) = {
            let mut g = self.lock(py);
            Self::built(&mut g)?.snapshot()
        };
        Ok(now.saturating_sub(img.stamp_ns[id.index()]))
    }

    /// Driver status monitors: {driver name: JSON text}.
    fn driver_status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let list = {
            let mut g = self.lock(py);
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
        let mut g = self.lock(py);
        match &mut *g {
            Inner::Built(e) => py.detach(|| e.close()),
            Inner::Config(_) => *g = Inner::Failed,
            Inner::Failed => {}
        }
        Ok(())
    }

    /// True when `close` had to abandon a scan thread stuck in Python code that never
    /// returned (outputs were forced safe first); the process should exit.
    #[getter]
    fn scan_abandoned(&self, py: Python<'_>) -> bool {
        let mut g = self.lock(py);
        match &mut *g {
            Inner::Built(e) => e.scan_abandoned(),
            _ => false,
        }
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

fn vars_to_py(py: Python<'_>, l: &Layout) -> PyResult<Py<PyAny>> {
    let out = PyList::empty(py);
    for (i, v) in l.vars().iter().enumerate() {
        let d = PyDict::new(py);
        d.set_item("index", i)?;
        d.set_item("name", &v.name)?;
        d.set_item("area", v.slot.area.word())?;
        d.set_item("type", v.slot.ty.name())?;
        d.set_item("address", v.address.to_string())?;
        d.set_item("explicit", v.explicit)?;
        d.set_item("offset", v.slot.offset)?;
        d.set_item("bit", v.slot.bit)?;
        d.set_item("initial", value_to_py(py, v.initial)?)?;
        d.set_item("safe", value_to_py(py, v.safe)?)?;
        d.set_item("unit", &v.unit)?;
        let bound = |b: Option<Value>| -> PyResult<Option<Py<PyAny>>> {
            b.map(|x| value_to_py(py, x)).transpose()
        };
        d.set_item("min", bound(v.rule.min)?)?;
        d.set_item("max", bound(v.rule.max)?)?;
        d.set_item("writable", v.rule.writable)?;
        out.append(d)?;
    }
    Ok(out.into_any().unbind())
}

/// Parses an IEC type name for other binding modules.
pub fn type_from_name(s: &str) -> PyResult<IecType> {
    parse_type(s)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyEngine>()?;
    m.add_class::<ScanIo>()?;
    Ok(())
}
