//! Traces from Python: start and stop a trace on a running engine, and record a trace
//! file from arrays through the same sampler and writer (for conversions and tests).
//!
//! The public API is `softplc.trace`; these functions are private.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use pyo3::create_exception;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use softplc_core::trace::{
    new_trace, TraceConfig, TraceHandle, TraceMode, TraceStart, TraceStats, Trigger,
};
use softplc_core::{
    Area, CycleInfo, CycleObserver, Event, EventKind, EventSink, Image, LayoutBuilder, PlcState,
    Value, VarDecl,
};

use crate::engine::{type_from_name, PyEngine};
use crate::errors::{self, ConfigError, SoftPlcError};

create_exception!(
    _native,
    TraceError,
    SoftPlcError,
    "A trace cannot be recorded, or a trace file cannot be read."
);

/// Options shared by `trace_start` and `trace_record`, as Python passes them.
struct Options {
    signals: Vec<String>,
    timing: bool,
    task: Option<String>,
    decimate: u32,
    mode: String,
    trigger: Option<String>,
    pre: u32,
    post: u32,
    captures: u32,
    block_rows: u32,
    buffer_blocks: u32,
    max_buffer_bytes: u64,
    backpressure: bool,
    flush_interval_s: f64,
    program: Vec<(String, String)>,
    meta: Vec<(String, String)>,
}

impl Options {
    fn config(self) -> PyResult<TraceConfig> {
        let mode = match self.mode.as_str() {
            "continuous" => {
                if self.trigger.is_some() {
                    return Err(ConfigError::new_err(
                        "a trigger needs mode='triggered' (continuous traces record everything)",
                    ));
                }
                TraceMode::Continuous
            }
            "triggered" => TraceMode::Triggered {
                trigger: Trigger::parse(self.trigger.as_deref().unwrap_or("manual"))
                    .map_err(errors::config)?,
                pre: self.pre,
                post: self.post,
                captures: self.captures,
            },
            other => {
                return Err(ConfigError::new_err(format!(
                    "unknown trace mode {other:?} (expected 'continuous' or 'triggered')"
                )))
            }
        };
        if !(self.flush_interval_s.is_finite() && self.flush_interval_s > 0.0) {
            return Err(ConfigError::new_err(
                "flush_interval must be a positive number of seconds",
            ));
        }
        let config = TraceConfig {
            signals: self.signals,
            timing: self.timing,
            task: self.task,
            decimate: self.decimate,
            mode,
            block_rows: self.block_rows,
            buffer_blocks: self.buffer_blocks,
            max_buffer_bytes: self.max_buffer_bytes,
            backpressure: self.backpressure,
            flush_interval: Duration::from_secs_f64(self.flush_interval_s),
            program: self.program,
            meta: self.meta,
            start: None,
        };
        config.validate().map_err(errors::config)?;
        Ok(config)
    }
}

/// The trace file, opened for writing but not emptied: the writer empties it once the
/// trace has started, so a trace that fails to start leaves an existing file as it was.
/// The flag says whether this call created the file (only then may a failed start
/// remove it). Opening a FIFO waits for a reader, so it runs without the GIL.
fn open_file(py: Python<'_>, path: &Path) -> PyResult<(File, bool)> {
    let p = path.to_path_buf();
    let opened = py.detach(move || {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => Ok((f, true)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .map(|f| (f, false)),
            Err(e) => Err(e),
        }
    });
    opened.map_err(|e| {
        TraceError::new_err(format!("cannot create trace file {}: {e}", path.display()))
    })
}

/// Removes the file of a trace that failed to start, if this trace created it.
fn discard_file(path: &Path, created: bool) {
    if created {
        std::fs::remove_file(path).ok();
    }
}

fn stats_dict<'py>(py: Python<'py>, s: &TraceStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rows_sampled", s.rows_sampled)?;
    d.set_item("rows_written", s.rows_written)?;
    d.set_item("blocks_written", s.blocks_written)?;
    d.set_item("dropped_blocks", s.dropped_blocks)?;
    d.set_item("dropped_rows", s.dropped_rows)?;
    d.set_item("triggers", s.triggers)?;
    d.set_item("captures_written", s.captures_written)?;
    d.set_item("events_written", s.events_written)?;
    d.set_item("events_lost", s.events_lost)?;
    d.set_item("incomplete_captures", s.incomplete_captures)?;
    d.set_item("bytes_written", s.bytes_written)?;
    Ok(d)
}

/// A trace recording on an engine. Stop it with `stop(engine)`.
#[pyclass(module = "softplc._native", name = "TraceRecorder", frozen)]
pub struct NativeTrace {
    handle: TraceHandle,
    /// Observer id in the engine; None once stopped.
    observer: Mutex<Option<u64>>,
    path: PathBuf,
    final_stats: Mutex<Option<TraceStats>>,
}

#[pymethods]
impl NativeTrace {
    /// Detaches the sampler from `engine`, waits for the writer to close the file, and
    /// returns the final counters. Calling it again returns the same counters. When the
    /// engine cannot hand the sampler back yet (a scan stuck in a long cycle), it raises
    /// and keeps the recorder attached, so that calling it again retries.
    fn stop<'py>(
        &self,
        py: Python<'py>,
        engine: &Bound<'py, PyEngine>,
    ) -> PyResult<Bound<'py, PyDict>> {
        // The id stays until the engine has handed the sampler back. The lock is not held
        // across the detach (which may wait for the engine, and for the GIL).
        let id = *self.observer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(id) = id {
            let detached = match engine.get().detach_observer(py, id)? {
                // Dropping the sampler hands its last rows to the writer.
                Some(o) => {
                    drop(o);
                    true
                }
                // Already gone from the engine (closed, or a concurrent stop): the writer
                // is closing the file.
                None => self.handle.sampler_dropped(),
            };
            if !detached {
                return Err(TraceError::new_err(format!(
                    "trace {}: the engine did not hand the trace back in time (a scan \
                     cycle may be stuck); call stop() again to retry",
                    self.path.display()
                )));
            }
            *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        if let Some(s) = *self.final_stats.lock().unwrap_or_else(|p| p.into_inner()) {
            return stats_dict(py, &s);
        }
        let handle = self.handle.clone();
        let result = py.detach(move || handle.finish(Some(Duration::from_secs(60))));
        match result {
            Ok(s) => {
                *self.final_stats.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
                stats_dict(py, &s)
            }
            Err(e) => Err(TraceError::new_err(format!(
                "trace {}: {e}",
                self.path.display()
            ))),
        }
    }

    /// Forces the trigger at the next cycle of the trace task (triggered mode).
    fn trigger(&self) {
        self.handle.trigger();
    }

    /// Counters so far.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.handle.stats())
    }

    /// Waits (without the GIL) until `captures` captures are written; False on timeout.
    #[pyo3(signature = (captures=1, timeout_s=None))]
    fn wait_for_trigger(
        &self,
        py: Python<'_>,
        captures: u64,
        timeout_s: Option<f64>,
    ) -> PyResult<bool> {
        let timeout = match timeout_s {
            None => Duration::from_secs(u64::MAX / 4),
            Some(t) if t.is_finite() && t >= 0.0 => Duration::from_secs_f64(t),
            Some(t) => return Err(ConfigError::new_err(format!("invalid timeout {t}"))),
        };
        let handle = self.handle.clone();
        // Sleep in short slices so Ctrl-C gets through.
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let slice = left.min(Duration::from_millis(100));
            let h = handle.clone();
            if py.detach(move || h.wait_captures(captures, slice)) {
                return Ok(true);
            }
            py.check_signals()?;
            if left.is_zero() || handle.is_finished() {
                return Ok(false);
            }
        }
    }

    /// The first error of the trace (writing the file), if any.
    #[getter]
    fn error(&self) -> Option<String> {
        self.handle.error()
    }

    /// The file path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// True once the file is closed.
    #[getter]
    fn finished(&self) -> bool {
        self.handle.is_finished()
    }

    fn __repr__(&self) -> String {
        format!("<TraceRecorder {:?}>", self.path.display().to_string())
    }
}

/// Starts a trace on a started engine.
#[pyfunction]
#[pyo3(signature = (
    engine, path, *, signals=Vec::new(), timing=true, task=None, decimate=1,
    mode="continuous".to_string(), trigger=None, pre=0, post=0, captures=1, block_rows=1024,
    buffer_blocks=8, max_buffer_bytes=softplc_core::trace::DEFAULT_MAX_BUFFER_BYTES,
    backpressure=false, flush_interval_s=0.5, program=Vec::new(), meta=Vec::new()
))]
#[allow(clippy::too_many_arguments)]
fn trace_start(
    py: Python<'_>,
    engine: &Bound<'_, PyEngine>,
    path: PathBuf,
    signals: Vec<String>,
    timing: bool,
    task: Option<String>,
    decimate: u32,
    mode: String,
    trigger: Option<String>,
    pre: u32,
    post: u32,
    captures: u32,
    block_rows: u32,
    buffer_blocks: u32,
    max_buffer_bytes: u64,
    backpressure: bool,
    flush_interval_s: f64,
    program: Vec<(String, String)>,
    meta: Vec<(String, String)>,
) -> PyResult<NativeTrace> {
    let mut config = Options {
        signals,
        timing,
        task,
        decimate,
        mode,
        trigger,
        pre,
        post,
        captures,
        block_rows,
        buffer_blocks,
        max_buffer_bytes,
        backpressure,
        flush_interval_s,
        program,
        meta,
    }
    .config()?;
    let eng = engine.get();
    // Everything is resolved and checked against the engine before the file is touched.
    let (start, checked) = eng.with_engine(py, |e| {
        let tasks: Vec<String> = e.tasks().iter().map(|t| t.name.clone()).collect();
        let periods: Vec<u64> = e.tasks().iter().map(|t| t.period_ns).collect();
        (
            TraceStart::of(e),
            config.check(e.layout(), &tasks, &periods),
        )
    })?;
    checked.map_err(errors::config)?;
    config.start = Some(start);
    let events = eng.event_sink(py)?;
    let (file, created) = open_file(py, &path)?;
    let (sampler, handle) = match new_trace(config, Box::new(file), Some(events)) {
        Ok(t) => t,
        Err(e) => {
            discard_file(&path, created);
            return Err(errors::config(e));
        }
    };
    let id = eng.attach_observer(py, Box::new(sampler))?;
    if let Err(e) = handle.wait_attached(Duration::from_secs(5)) {
        if let Some(o) = eng.detach_observer(py, id)? {
            drop(o);
        }
        discard_file(&path, created);
        return Err(ConfigError::new_err(e));
    }
    Ok(NativeTrace {
        handle,
        observer: Mutex::new(Some(id)),
        path,
        final_stats: Mutex::new(None),
    })
}

fn event_kind(name: &str) -> PyResult<EventKind> {
    let all = [
        EventKind::StateChange,
        EventKind::Fault,
        EventKind::Overrun,
        EventKind::Force,
        EventKind::Unforce,
        EventKind::Write,
        EventKind::Io,
        EventKind::Info,
    ];
    all.into_iter()
        .find(|k| k.name() == name)
        .ok_or_else(|| ConfigError::new_err(format!("unknown event kind {name:?}")))
}

/// Records a trace file from arrays through the real sampler and writer, one engine
/// cycle per row of the arrays, in virtual time (cycle i starts at i * period_ns).
///
/// `variables` are (name, type, area, unit, address or None); `values[k]` holds the raw
/// little-endian values of variable k for every cycle (BOOL: one byte, 0 or 1).
#[pyfunction]
#[pyo3(signature = (
    path, variables, values, cycles, *, period_ns=1_000_000, task="main".to_string(),
    exec_ns=None, overrun=None, events=Vec::new(), force_trigger_at=Vec::new(),
    signals=Vec::new(), timing=true, decimate=1, mode="continuous".to_string(), trigger=None,
    pre=0, post=0, captures=1, block_rows=1024, buffer_blocks=8,
    max_buffer_bytes=softplc_core::trace::DEFAULT_MAX_BUFFER_BYTES, program=Vec::new(),
    meta=Vec::new()
))]
#[allow(clippy::too_many_arguments)]
fn trace_record<'py>(
    py: Python<'py>,
    path: PathBuf,
    variables: Vec<(String, String, String, String, Option<String>)>,
    values: Vec<Bound<'py, PyBytes>>,
    cycles: u64,
    period_ns: u64,
    task: String,
    exec_ns: Option<Bound<'py, PyBytes>>,
    overrun: Option<Bound<'py, PyBytes>>,
    events: Vec<(u64, String, i32, i64, i64, String)>,
    force_trigger_at: Vec<u64>,
    signals: Vec<String>,
    timing: bool,
    decimate: u32,
    mode: String,
    trigger: Option<String>,
    pre: u32,
    post: u32,
    captures: u32,
    block_rows: u32,
    buffer_blocks: u32,
    max_buffer_bytes: u64,
    program: Vec<(String, String)>,
    meta: Vec<(String, String)>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut config = Options {
        signals,
        timing,
        task: None,
        decimate,
        mode,
        trigger,
        pre,
        post,
        captures,
        block_rows,
        buffer_blocks,
        max_buffer_bytes,
        backpressure: true,
        flush_interval_s: 0.5,
        program,
        meta,
    }
    .config()?;
    if values.len() != variables.len() {
        return Err(ConfigError::new_err(format!(
            "{} variables but {} value arrays",
            variables.len(),
            values.len()
        )));
    }
    let mut b = LayoutBuilder::new();
    let mut slots = Vec::new();
    for (name, ty, area, unit, address) in &variables {
        let ty = type_from_name(ty)?;
        let area = Area::parse(area)
            .ok_or_else(|| ConfigError::new_err(format!("unknown area {area:?} of {name:?}")))?;
        let mut d = VarDecl::new(name, area, ty, address.as_deref());
        d.unit = unit.clone();
        b.declare(d).map_err(errors::config)?;
        slots.push(ty);
    }
    let layout = b.build().map_err(errors::config)?;
    let mut data = Vec::with_capacity(values.len());
    for (k, v) in values.iter().enumerate() {
        let bytes = v.as_bytes();
        let w = slots[k].size().max(1);
        if bytes.len() as u64 != cycles * w as u64 {
            return Err(ConfigError::new_err(format!(
                "values of {:?}: {} bytes, expected {} ({} cycles of {w} bytes)",
                variables[k].0,
                bytes.len(),
                cycles * w as u64,
                cycles
            )));
        }
        data.push(bytes.to_vec());
    }
    let exec: Option<Vec<u8>> = exec_ns.map(|b| b.as_bytes().to_vec());
    let over: Option<Vec<u8>> = overrun.map(|b| b.as_bytes().to_vec());
    if exec.as_ref().is_some_and(|e| e.len() as u64 != cycles * 8) {
        return Err(ConfigError::new_err("exec_ns must hold one u64 per cycle"));
    }
    if over.as_ref().is_some_and(|o| o.len() as u64 != cycles) {
        return Err(ConfigError::new_err("overrun must hold one byte per cycle"));
    }
    let mut evs = Vec::new();
    for (t_ns, kind, task, a, b, text) in events {
        evs.push(Event {
            t_ns,
            kind: event_kind(&kind)?,
            task,
            a,
            b,
            text,
        });
    }
    let task_list = std::slice::from_ref(&task);
    config
        .check(&layout, task_list, &[period_ns])
        .map_err(errors::config)?;
    config.start = Some(TraceStart {
        clock: softplc_core::ClockKind::Virtual,
        engine_ns: 0,
        unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
        state: PlcState::Run,
    });
    let (file, created) = open_file(py, &path)?;
    let sink = EventSink::new();
    let (mut sampler, handle) = match new_trace(config, Box::new(file), Some(sink.clone())) {
        Ok(t) => t,
        Err(e) => {
            discard_file(&path, created);
            return Err(errors::config(e));
        }
    };
    let result = py.detach(move || {
        sampler.attach(&layout, std::slice::from_ref(&task), &[period_ns]);
        handle
            .wait_attached(Duration::from_secs(5))
            .map_err(|e| (true, e))?;
        for e in evs {
            sink.push(e);
        }
        let mut image = Image::new(&layout);
        for i in 0..cycles {
            for (k, v) in layout.vars().iter().enumerate() {
                let w = v.slot.ty.size().max(1);
                let mut raw = [0u8; 8];
                raw[..w].copy_from_slice(&data[k][i as usize * w..(i as usize + 1) * w]);
                image.store(v.slot, Value::from_bits(v.slot.ty, u64::from_le_bytes(raw)));
            }
            if force_trigger_at.contains(&i) {
                handle.trigger();
            }
            let t = i * period_ns;
            let exec_i = exec.as_ref().map_or(0, |e| {
                u64::from_le_bytes(e[i as usize * 8..i as usize * 8 + 8].try_into().expect("8"))
            });
            let info = CycleInfo {
                task: 0,
                cycle: i,
                scheduled_ns: t,
                start_ns: t,
                exec_ns: exec_i,
                overrun: over.as_ref().is_some_and(|o| o[i as usize] != 0),
                state: PlcState::Run,
            };
            sampler.on_cycle(&image, &info);
        }
        drop(sampler);
        handle.finish(None).map_err(|e| (false, e))
    });
    match result {
        Ok(s) => stats_dict(py, &s),
        Err((true, e)) => {
            discard_file(&path, created);
            Err(ConfigError::new_err(e))
        }
        Err((false, e)) => Err(TraceError::new_err(e)),
    }
}

/// The NumPy type string of each IEC type's trace column, as the trace writer records
/// it (read-only: Python keeps its own table, `softplc.types.NUMPY_DTYPES`, and a test
/// holds the two together).
#[pyfunction]
fn trace_dtypes() -> Vec<(&'static str, &'static str)> {
    softplc_core::types::ALL_TYPES
        .iter()
        .map(|&ty| (ty.name(), softplc_core::trace::dtype(ty)))
        .collect()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("TraceError", py.get_type::<TraceError>())?;
    m.add_class::<NativeTrace>()?;
    m.add_function(wrap_pyfunction!(trace_start, m)?)?;
    m.add_function(wrap_pyfunction!(trace_record, m)?)?;
    m.add_function(wrap_pyfunction!(trace_dtypes, m)?)?;
    Ok(())
}
