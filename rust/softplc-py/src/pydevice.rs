//! The native half of Python device drivers (`softplc.io.serial_device`): a driver
//! whose device I/O is done by a Python thread.
//!
//! The scan thread never takes the GIL here. [`PyDeviceDriver`] (the engine's side)
//! and [`PyDeviceLink`] (the Python thread's side) share two triple buffers, as the
//! native fieldbus drivers do with their I/O threads: the Python thread publishes
//! input values (converted to their variables' types on its own side, with the GIL),
//! the scan copies the newest into the image with quality and age and publishes its
//! outputs. The Python side's ends sit behind mutexes that only Python-side calls take.
//!
//! Who writes what: the Python thread writes inputs, health, counters and the last
//! error; the scan writes outputs (and reads inputs); the watchdog raises the safe
//! override, which the Python side applies to the outputs it hands out.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use pyo3::prelude::*;
use serde_json::json;
use softplc_core::clock::monotonic_ns;
use softplc_core::{
    Area, ConfigError, Driver, DriverMonitor, EngineClock, Event, EventSink, IoCtx, IoError,
    IoEvent, IoEventKind, IoStatus, Layout, Quality, SafeState, Slot, StartCtx, Value, VarId,
};
use triple_buffer::triple_buffer;

use crate::driver::NativeDriver;
use crate::errors;
use crate::modbus::IoMonitor;
use crate::value::{to_py, to_value, Fit};

/// Newest inputs, Python thread -> scan.
#[derive(Clone, Debug, Default)]
struct InSample {
    values: Vec<Option<Value>>,
    acquired_mono: u64,
    good_seq: u64,
    bad: bool,
}

/// Newest outputs, scan -> Python thread.
#[derive(Clone, Debug, Default)]
struct OutSample {
    values: Vec<Option<Value>>,
    seq: u64,
}

/// Health as the status shows it.
const WAITING: u8 = 0;
const GOOD: u8 = 1;
const BAD: u8 = 2;

/// Input slots, and output slots with their safe values.
type BoundSlots = (Vec<(VarId, Slot)>, Vec<(VarId, Slot, Value)>);

/// Output values by variable name, as handed to Python.
type Outputs = Vec<(String, Py<PyAny>)>;

/// What both sides share.
struct Shared {
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    stale_ns: u64,
    /// Input and output slots with their variables, set at bind.
    bound: OnceLock<BoundSlots>,
    /// Python-side ends of the buffers (set at bind).
    in_tx: Mutex<Option<triple_buffer::Input<InSample>>>,
    out_rx: Mutex<Option<triple_buffer::Output<OutSample>>>,
    /// Engine events and clock (set at start).
    log: Mutex<Option<(EventSink, EngineClock)>>,
    running: AtomicBool,
    stopped: AtomicBool,
    /// The watchdog's override: outputs handed to Python are the safe values.
    safe: AtomicBool,
    health: AtomicU8,
    good_seq: AtomicU64,
    polls_ok: AtomicU64,
    polls_failed: AtomicU64,
    restarts: AtomicU64,
    writes: AtomicU64,
    port_open: AtomicBool,
    port: Mutex<String>,
    last_error: Mutex<String>,
    last_values: Mutex<Vec<Option<Value>>>,
}

impl Shared {
    fn event(&self, kind: IoEventKind, text: String) {
        if let Some((sink, clock)) = self.log.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            sink.push(Event::io(clock.now(), IoEvent::new(kind), text));
        }
    }
}

impl DriverMonitor for Shared {
    fn status_json(&self) -> String {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "driver": self.name,
            "kind": "python-device",
            "running": self.running.load(Ordering::Relaxed),
            "health": match self.health.load(Ordering::Relaxed) {
                GOOD => "good",
                BAD => "bad",
                _ => "waiting",
            },
            "port": *self.port.lock().unwrap_or_else(|p| p.into_inner()),
            "port_open": self.port_open.load(Ordering::Relaxed),
            "inputs": self.inputs,
            "outputs": self.outputs,
            "polls_ok": ld(&self.polls_ok),
            "polls_failed": ld(&self.polls_failed),
            "restarts": ld(&self.restarts),
            "writes": ld(&self.writes),
            "last_error": *self.last_error.lock().unwrap_or_else(|p| p.into_inner()),
        })
        .to_string()
    }
}

impl SafeState for Shared {
    fn force_safe(&self) {
        self.safe.store(true, Ordering::Release);
    }

    fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
    }
}

/// The engine's side.
struct PyDeviceDriver {
    shared: Arc<Shared>,
    input: Option<triple_buffer::Output<InSample>>,
    output: Option<triple_buffer::Input<OutSample>>,
    scratch: Vec<Option<Value>>,
    last: Vec<Option<Value>>,
    seq: u64,
    clock: Option<EngineClock>,
}

impl Driver for PyDeviceDriver {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn bind(&mut self, layout: &Layout) -> Result<(), ConfigError> {
        let what = |n: &str, e: ConfigError| {
            ConfigError::new(format!(
                "python device {:?}: {n}: {}",
                self.shared.name, e.message
            ))
        };
        let mut ins = Vec::new();
        for n in &self.shared.inputs {
            let id = layout.find(n).map_err(|e| what(n, e))?;
            let v = layout.var(id);
            if v.slot.area == Area::Output {
                return Err(ConfigError::new(format!(
                    "python device {:?}: input {n:?} is an output variable; a device's inputs are input or memory variables",
                    self.shared.name
                )));
            }
            ins.push((id, v.slot));
        }
        let mut outs = Vec::new();
        for n in &self.shared.outputs {
            let id = layout.find(n).map_err(|e| what(n, e))?;
            let v = layout.var(id);
            outs.push((id, v.slot, v.safe));
        }
        let (in_tx, in_rx) = triple_buffer(&InSample {
            values: vec![None; ins.len()],
            ..InSample::default()
        });
        let (out_tx, out_rx) = triple_buffer(&OutSample {
            values: vec![None; outs.len()],
            seq: 0,
        });
        self.scratch = vec![None; outs.len()];
        self.last = vec![None; outs.len()];
        *self.shared.in_tx.lock().unwrap_or_else(|p| p.into_inner()) = Some(in_tx);
        *self.shared.out_rx.lock().unwrap_or_else(|p| p.into_inner()) = Some(out_rx);
        *self
            .shared
            .last_values
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = vec![None; ins.len()];
        self.input = Some(in_rx);
        self.output = Some(out_tx);
        // Bound once: a driver object serves one engine.
        let _ = self.shared.bound.set((ins, outs));
        Ok(())
    }

    fn start(&mut self, cx: &StartCtx) -> Result<(), IoError> {
        if self.shared.bound.get().is_none() {
            return Err(IoError {
                message: format!("driver {:?}: start before bind", self.shared.name),
            });
        }
        *self.shared.log.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((cx.events.clone(), cx.clock.clone()));
        self.clock = Some(cx.clock.clone());
        self.shared.safe.store(false, Ordering::Release);
        self.shared.stopped.store(false, Ordering::Release);
        self.shared.running.store(true, Ordering::Release);
        Ok(())
    }

    /// Scan thread: copies only; no allocation, locks, syscalls or GIL.
    fn read_inputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        let (Some(input), Some((ins, _)), Some(clock)) = (
            self.input.as_mut(),
            self.shared.bound.get(),
            self.clock.as_ref(),
        ) else {
            return IoStatus::Ok;
        };
        let s = input.read();
        let stamp = if s.good_seq == 0 {
            0
        } else {
            clock.engine_time(s.acquired_mono)
        };
        let quality = if s.bad {
            Quality::Bad
        } else if s.good_seq == 0 || cx.now_ns.saturating_sub(stamp) > self.shared.stale_ns {
            Quality::Stale
        } else {
            Quality::Good
        };
        for ((id, slot), v) in ins.iter().zip(&s.values) {
            if let Some(v) = v {
                cx.image.store(*slot, *v);
            }
            cx.image.quality[id.index()] = quality;
            cx.image.stamp_ns[id.index()] = stamp;
        }
        if quality == Quality::Good {
            IoStatus::Ok
        } else {
            IoStatus::Degraded
        }
    }

    /// Scan thread: copies only; no allocation, locks, syscalls or GIL.
    fn write_outputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        if let (Some(output), Some((_, outs))) = (self.output.as_mut(), self.shared.bound.get()) {
            if !outs.is_empty() {
                for (k, (_, slot, _)) in outs.iter().enumerate() {
                    self.scratch[k] = Some(cx.image.load(*slot));
                }
                if self.seq == 0 || self.scratch != self.last {
                    self.last.copy_from_slice(&self.scratch);
                    self.seq += 1;
                    let buf = output.input_buffer_mut();
                    buf.values.copy_from_slice(&self.scratch);
                    buf.seq = self.seq;
                    output.publish();
                }
            }
        }
        if self.shared.safe.load(Ordering::Relaxed) {
            self.shared.safe.store(false, Ordering::Release);
        }
        IoStatus::Ok
    }

    fn stop(&mut self) {
        self.shared.running.store(false, Ordering::Release);
        self.shared.stopped.store(true, Ordering::Release);
    }

    fn monitor(&self) -> Option<Arc<dyn DriverMonitor>> {
        Some(self.shared.clone())
    }

    fn safe_state(&self) -> Option<Arc<dyn SafeState>> {
        Some(self.shared.clone())
    }

    fn device_inputs(&self) -> Vec<VarId> {
        self.shared
            .bound
            .get()
            .map(|(ins, _)| ins.iter().map(|(id, _)| *id).collect())
            .unwrap_or_default()
    }
}

/// The Python thread's side of one Python device driver.
#[pyclass(module = "softplc._native", frozen)]
pub struct PyDeviceLink {
    shared: Arc<Shared>,
}

#[pymethods]
impl PyDeviceLink {
    /// The driver's name.
    #[getter]
    fn name(&self) -> &str {
        &self.shared.name
    }

    /// "waiting" (not started yet), "running", or "stopped" (the engine stopped it).
    fn state(&self) -> &'static str {
        if self.shared.stopped.load(Ordering::Acquire) {
            "stopped"
        } else if self.shared.running.load(Ordering::Acquire) {
            "running"
        } else {
            "waiting"
        }
    }

    /// Publishes one poll's input values (one per input variable, in order; None keeps
    /// a value) as good data acquired now.
    fn publish(&self, values: Vec<Bound<'_, PyAny>>) -> PyResult<()> {
        let Some((ins, _)) = self.shared.bound.get() else {
            return Err(errors::IoError::new_err(
                "the driver is not bound to an engine yet",
            ));
        };
        if values.len() != ins.len() {
            return Err(errors::ConfigError::new_err(format!(
                "python device {:?}: poll gave {} values for {} inputs",
                self.shared.name,
                values.len(),
                ins.len()
            )));
        }
        let mut converted = Vec::with_capacity(values.len());
        for ((_, slot), (obj, name)) in ins.iter().zip(values.iter().zip(&self.shared.inputs)) {
            converted.push(if obj.is_none() {
                None
            } else {
                Some(to_value(name, slot.ty, obj, Fit::Exact)?)
            });
        }
        let mut last = self
            .shared
            .last_values
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (l, c) in last.iter_mut().zip(&converted) {
            if c.is_some() {
                *l = *c;
            }
        }
        let seq = self.shared.good_seq.fetch_add(1, Ordering::Relaxed) + 1;
        self.send(&last, seq, false);
        self.shared.polls_ok.fetch_add(1, Ordering::Relaxed);
        if self.shared.health.swap(GOOD, Ordering::Relaxed) == BAD {
            self.shared.event(
                IoEventKind::DeviceGood,
                format!(
                    "python device {:?} answers again; inputs good",
                    self.shared.name
                ),
            );
        }
        Ok(())
    }

    /// A failed poll: counts it, keeps `error` (a traceback, say) for the status, and
    /// with `bad` turns the inputs BAD (keeping their last values) with an event.
    fn fail(&self, error: String, bad: bool) {
        self.shared.polls_failed.fetch_add(1, Ordering::Relaxed);
        // A traceback's last line says what was raised.
        let summary = error.lines().last().unwrap_or("").to_string();
        *self
            .shared
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = error;
        if bad {
            let last = self
                .shared
                .last_values
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let seq = self.shared.good_seq.load(Ordering::Relaxed);
            self.send(&last, seq, true);
            if self.shared.health.swap(BAD, Ordering::Relaxed) != BAD {
                self.shared.event(
                    IoEventKind::DeviceBad,
                    format!(
                        "python device {:?}: {summary}; inputs bad",
                        self.shared.name
                    ),
                );
            }
        }
    }

    /// The driver thread was restarted (after an error or a hang).
    fn restarted(&self) {
        self.shared.restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Records whether the port is open, and what it is.
    fn port_state(&self, port: String, open: bool) {
        let was = self.shared.port_open.swap(open, Ordering::Relaxed);
        *self.shared.port.lock().unwrap_or_else(|p| p.into_inner()) = port.clone();
        if open && !was {
            self.shared.event(
                IoEventKind::Connected,
                format!("python device {:?}: opened {port}", self.shared.name),
            );
        }
    }

    /// The scan's outputs as `{name: value}` when they changed since the last call
    /// (or the watchdog forces safe values), else None.
    fn take_outputs(&self, py: Python<'_>) -> PyResult<Option<Outputs>> {
        let Some((_, outs)) = self.shared.bound.get() else {
            return Ok(None);
        };
        let mut rx = self.shared.out_rx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(rx) = rx.as_mut() else {
            return Ok(None);
        };
        let safe = self.shared.safe.load(Ordering::Acquire);
        if !rx.update() && !safe {
            return Ok(None);
        }
        let o = rx.output_buffer();
        if o.seq == 0 && !safe {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(outs.len());
        for (k, ((_, _, safe_v), name)) in outs.iter().zip(&self.shared.outputs).enumerate() {
            let v = if safe { Some(*safe_v) } else { o.values[k] };
            if let Some(v) = v {
                out.push((name.clone(), to_py(py, v)?));
            }
        }
        self.shared.writes.fetch_add(1, Ordering::Relaxed);
        Ok(Some(out))
    }
}

impl PyDeviceLink {
    fn send(&self, values: &[Option<Value>], seq: u64, bad: bool) {
        let mut tx = self.shared.in_tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = tx.as_mut() {
            let buf = tx.input_buffer_mut();
            buf.values.copy_from_slice(values);
            if !bad {
                buf.acquired_mono = monotonic_ns();
            }
            buf.good_seq = seq;
            buf.bad = bad;
            tx.publish();
        }
    }
}

/// A Python device driver: `(driver for the engine, link for the Python thread,
/// monitor)`.
#[pyfunction]
#[pyo3(signature = (name, inputs, outputs, *, stale_ms))]
fn io_python_device(
    name: String,
    inputs: Vec<String>,
    outputs: Vec<String>,
    stale_ms: u64,
) -> PyResult<(NativeDriver, PyDeviceLink, IoMonitor)> {
    let shared = Arc::new(Shared {
        name: name.clone(),
        inputs,
        outputs,
        stale_ns: stale_ms.saturating_mul(1_000_000),
        bound: OnceLock::new(),
        in_tx: Mutex::new(None),
        out_rx: Mutex::new(None),
        log: Mutex::new(None),
        running: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        safe: AtomicBool::new(false),
        health: AtomicU8::new(WAITING),
        good_seq: AtomicU64::new(0),
        polls_ok: AtomicU64::new(0),
        polls_failed: AtomicU64::new(0),
        restarts: AtomicU64::new(0),
        writes: AtomicU64::new(0),
        port_open: AtomicBool::new(false),
        port: Mutex::new(String::new()),
        last_error: Mutex::new(String::new()),
        last_values: Mutex::new(Vec::new()),
    });
    let driver = PyDeviceDriver {
        shared: shared.clone(),
        input: None,
        output: None,
        scratch: Vec::new(),
        last: Vec::new(),
        seq: 0,
        clock: None,
    };
    Ok((
        NativeDriver::from_box(Box::new(driver)),
        PyDeviceLink {
            shared: shared.clone(),
        },
        IoMonitor::new(name, shared),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyDeviceLink>()?;
    m.add_function(wrap_pyfunction!(io_python_device, m)?)?;
    Ok(())
}
