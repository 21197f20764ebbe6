//! Python code on the scan thread: programs and plant models called with the GIL held,
//! and the watchdog's way to interrupt them when they run too long.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use softplc_core::{Image, Interrupt, Layout, Plant, Program, ProgramFault, ProgramKind, ScanCtx};

use crate::errors::{StateError, WatchdogInterrupt};
use crate::scanio::ScanIo;

/// A Python exception with its traceback, as a fault message.
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
pub(crate) struct PyScan {
    /// `PyThread_get_thread_ident()` of the thread in the call.
    ident: AtomicU64,
    in_call: AtomicBool,
    pending: AtomicBool,
}

impl PyScan {
    /// Runs `f` (a call into Python) as the scan's current Python call.
    fn call<R>(&self, py: Python<'_>, f: impl FnOnce() -> R) -> R {
        // SAFETY: called with the GIL held; returns the calling thread's identifier.
        let me = unsafe { pyo3::ffi::PyThread_get_thread_ident() } as u64;
        self.ident.store(me, Ordering::Relaxed);
        self.in_call.store(true, Ordering::Relaxed);
        let r = f();
        self.in_call.store(false, Ordering::Relaxed);
        if self.pending.swap(false, Ordering::Relaxed) {
            drain_interrupt(py);
        }
        r
    }
}

/// Takes a watchdog interrupt that is still pending after the call it was meant for
/// returned, so that it cannot hit an innocent later call.
///
/// Not `PyThreadState_SetAsyncExc(thread, NULL)`: in CPython 3.11 that raises the
/// interpreter's "asynchronous exception" signal, and only the delivery of an exception
/// lowers it again, so every later bytecode boundary takes the slow path for good (a
/// Hypothesis shrink then never finishes). Running a statement that does nothing lets
/// the interpreter deliver a pending exception the normal way (and lower the signal);
/// nothing happens when none is pending.
fn drain_interrupt(py: Python<'_>) {
    let Err(e) = py.run(c"pass", None, None) else {
        return;
    };
    if e.is_instance_of::<WatchdogInterrupt>(py) {
        return;
    }
    if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
        // A Ctrl-C that arrived meanwhile: have it raised again at the next check.
        // SAFETY: GIL held; only records a simulated SIGINT.
        unsafe { pyo3::ffi::PyErr_SetInterrupt() };
        return;
    }
    e.write_unraisable(py, None);
}

/// Interrupts the Python code the scan thread is stuck in (see [`PyScan`]).
pub(crate) struct PyInterrupter(pub Arc<PyScan>);

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
                    let exc = py.get_type::<WatchdogInterrupt>();
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
        let frame = chosen.ok_or_else(|| StateError::new_err("no Python frame"))?;
        let code = frame.getattr("f_code")?;
        let file: String = code.getattr("co_filename")?.extract()?;
        let func: String = code.getattr("co_name")?.extract()?;
        let line: i64 = frame.getattr("f_lineno")?.extract()?;
        Ok(format!("Python code was at {file}:{line} in {func}"))
    })();
    found.unwrap_or_else(|_| "Python code was interrupted (location unknown)".to_string())
}

/// A Python callable run as a program: `callable(io)`, with the GIL held for the call.
pub(crate) struct PyProgram {
    pub name: String,
    pub callable: Py<PyAny>,
    pub io: Py<ScanIo>,
    pub scan: Arc<PyScan>,
}

impl Program for PyProgram {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ProgramKind {
        ProgramKind::Python
    }

    /// Calls the callable with the GIL held (see [`Program::execute`] for the scan
    /// thread's rules: a Python program takes the GIL, allocates and may block on it).
    fn execute(&mut self, cx: &mut ScanCtx<'_>) -> Result<(), ProgramFault> {
        Python::attach(|py| {
            let io = self.io.bind(py);
            io.get()
                .enter(cx.image, cx.now_ns, cx.cycle, cx.period_ns, cx.period_ns);
            let r = self.scan.call(py, || self.callable.call1(py, (io,)));
            io.get().leave();
            r.map(|_| ())
                .map_err(|e| ProgramFault::new(format_exception(py, &e)))
        })
    }
}

/// A Python plant model: `step(io, dt_seconds)`.
pub(crate) struct PyPlant {
    pub step: Py<PyAny>,
    pub io: Py<ScanIo>,
    pub scan: Arc<PyScan>,
}

impl Plant for PyPlant {
    /// Calls `step(io, dt)` on the scan thread with the GIL held (it allocates and may
    /// wait for the GIL).
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
                .call(py, || self.step.call1(py, (io, dt_ns as f64 / 1e9)));
            io.get().leave();
            r.map(|_| ())
                .map_err(|e| format!("plant model raised:\n{}", format_exception(py, &e)))
        })
    }
}
