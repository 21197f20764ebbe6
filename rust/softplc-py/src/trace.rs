//! Traces from Python: start and stop a trace on a running engine, and record a trace
//! file from arrays. Conversion only: the work is softplc-core's
//! ([`softplc_core::trace::LiveTrace`], [`softplc_core::trace::OfflineRecording`]).
//!
//! The public API is `softplc.trace`; these functions are private.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use softplc_core::trace::{LiveTrace, OfflineRecording, TraceOptions, TraceStats};
use softplc_core::{Area, Event, EventKind, IecType, TaskId, VarDecl};

use crate::engine::PyEngine;
use crate::errors::{ConfigError, OrRaise, TraceError};
use crate::value::type_from_name;
use crate::wait;

/// How long `stop` waits for the engine to hand the sampler back.
const DETACH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `stop` waits for the writer to close the file.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);

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
    trace: LiveTrace,
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
        let t = &self.trace;
        if t.is_attached() {
            let end = Instant::now() + DETACH_TIMEOUT;
            let back = engine.get().with_engine_steps(py, |e| {
                let left = end.saturating_duration_since(Instant::now());
                let back = t.detach(e, left.min(wait::STEP));
                (back || left.is_zero()).then_some(back)
            })?;
            if !back {
                return Err(TraceError::new_err(format!(
                    "trace {}: the engine did not hand the trace back in time (a scan \
                     cycle may be stuck); call stop() again to retry",
                    t.path().display()
                )));
            }
        }
        wait::for_condition(py, FINISH_TIMEOUT, || t.is_finished())?;
        let s = wait::blocking(py, || t.finish(Duration::ZERO))?.or_raise()?;
        stats_dict(py, &s)
    }

    /// Forces the trigger at the next cycle of the trace task (triggered mode).
    fn trigger(&self) {
        self.trace.handle().trigger();
    }

    /// Counters so far.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, &self.trace.handle().stats())
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
            None => Duration::MAX,
            Some(t) if t.is_finite() && t >= 0.0 => Duration::from_secs_f64(t),
            Some(t) => return Err(ConfigError::new_err(format!("invalid timeout {t}"))),
        };
        let h = self.trace.handle();
        // A trace that has stopped takes no more captures.
        wait::for_condition(py, timeout, || {
            h.wait_captures(captures, Duration::ZERO) || h.is_finished()
        })?;
        Ok(h.wait_captures(captures, Duration::ZERO))
    }

    /// The first error of the trace (writing the file), if any.
    #[getter]
    fn error(&self) -> Option<String> {
        self.trace.handle().error()
    }

    /// The file path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.trace.path().to_path_buf()
    }

    /// True once the file is closed.
    #[getter]
    fn finished(&self) -> bool {
        self.trace.is_finished()
    }

    fn __repr__(&self) -> String {
        format!(
            "<TraceRecorder {:?}>",
            self.trace.path().display().to_string()
        )
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
    let config = TraceOptions {
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
    .config()
    .or_raise()?;
    // Opening a FIFO waits for its reader, and a real-time engine attaches the sampler
    // at its next cycle, which may need the GIL: both without it.
    let trace = engine
        .get()
        .with_engine_blocking(py, move |e| LiveTrace::start(e, config, &path))?
        .or_raise()?;
    Ok(NativeTrace { trace })
}

/// An event as Python gives it: `(t_ns, kind, task, a, b, text)`.
type EventRow = (u64, String, i64, i64, i64, String);

fn event_from_row((t_ns, kind, task, a, b, text): EventRow) -> PyResult<Event> {
    let kind = EventKind::from_name(&kind)
        .ok_or_else(|| ConfigError::new_err(format!("unknown event kind {kind:?}")))?;
    let task = TaskId::from_code(task)
        .ok_or_else(|| ConfigError::new_err(format!("event task {task} is out of range")))?;
    Ok(Event::new(t_ns, kind, task, text).with_numbers(a, b))
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
    events: Vec<EventRow>,
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
    let config = TraceOptions {
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
    .config()
    .or_raise()?;
    if values.len() != variables.len() {
        return Err(ConfigError::new_err(format!(
            "{} variables but {} value arrays",
            variables.len(),
            values.len()
        )));
    }
    let mut vars = Vec::with_capacity(variables.len());
    for ((name, ty, area, unit, address), v) in variables.into_iter().zip(values) {
        let ty = type_from_name(&ty)?;
        let area = Area::parse(&area)
            .ok_or_else(|| ConfigError::new_err(format!("unknown area {area:?} of {name:?}")))?;
        let mut d = VarDecl::new(&name, area, ty, address.as_deref());
        d.unit = unit;
        vars.push((d, v.as_bytes().to_vec()));
    }
    let recording = OfflineRecording {
        variables: vars,
        cycles,
        period_ns,
        task,
        exec_ns: exec_ns.map(|b| b.as_bytes().to_vec()),
        overrun: overrun.map(|b| b.as_bytes().to_vec()),
        events: events
            .into_iter()
            .map(event_from_row)
            .collect::<PyResult<_>>()?,
        force_trigger_at,
    };
    let stats = wait::blocking(py, move || recording.write(config, &path))?.or_raise()?;
    stats_dict(py, &stats)
}

/// The NumPy type string of each IEC type's trace column, as the trace writer records
/// it (read-only: Python keeps its own table, `softplc.types.NUMPY_DTYPES`, and a test
/// holds the two together).
///
/// `extra` names more types to include (a `STRING(n)`, whose dtype depends on `n`).
#[pyfunction]
#[pyo3(signature = (extra=Vec::new()))]
fn trace_dtypes(extra: Vec<String>) -> PyResult<Vec<(String, String)>> {
    let mut types: Vec<IecType> = softplc_core::types::ALL_TYPES.to_vec();
    for name in &extra {
        types.push(crate::value::type_from_name(name)?);
    }
    Ok(types
        .iter()
        .map(|&ty| {
            (
                ty.full_name().into_owned(),
                softplc_core::trace::dtype(ty).into_owned(),
            )
        })
        .collect())
}

/// The event vocabulary: the names of the event kinds and of the I/O event kinds (a
/// test holds the stubs and docs/trace-format.md to it).
#[pyfunction]
fn event_kinds() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        EventKind::NAMES.to_vec(),
        softplc_core::IoEventKind::ALL
            .iter()
            .map(|k| k.name())
            .collect(),
    )
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeTrace>()?;
    m.add_function(wrap_pyfunction!(trace_start, m)?)?;
    m.add_function(wrap_pyfunction!(trace_record, m)?)?;
    m.add_function(wrap_pyfunction!(trace_dtypes, m)?)?;
    m.add_function(wrap_pyfunction!(event_kinds, m)?)?;
    Ok(())
}
