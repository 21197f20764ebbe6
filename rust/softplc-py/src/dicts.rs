//! What the engine reports, as the Python dictionaries `softplc._native.pyi` describes
//! (`_Fault`, `_TaskStats`, `_RtStatus`, `_Event`, `_Variable`): conversion only.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use softplc_core::retain::RetainStatus;
use softplc_core::rt::RtStatus;
use softplc_core::stats::{Percentiles, TaskFigures};
use softplc_core::{Event, FaultInfo, IoEvent, Layout, TaskId, TaskInfo, Value};

use crate::value::to_py;

/// `_RetainStatus`: whether retain is on, its files, saves, the last error and what
/// the start did with the loaded values.
pub fn retain_status(py: Python<'_>, on: bool, st: &RetainStatus) -> PyResult<Py<PyAny>> {
    use std::sync::atomic::Ordering::Relaxed;
    let d = PyDict::new(py);
    d.set_item("enabled", on)?;
    let files: Vec<String> = st
        .files
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    d.set_item("files", files)?;
    d.set_item("saves", st.saves.load(Relaxed))?;
    d.set_item("last_seq", st.last_seq.load(Relaxed))?;
    d.set_item("last_save_unix_ns", st.last_save_unix_ns.load(Relaxed))?;
    d.set_item(
        "error",
        st.error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
    )?;
    let r = st.report.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let rep = PyDict::new(py);
    rep.set_item("level", r.level)?;
    rep.set_item("loaded_seq", r.loaded_seq)?;
    rep.set_item("restored", r.restored)?;
    rep.set_item("reset", r.reset)?;
    rep.set_item("dropped", r.dropped)?;
    rep.set_item("warnings", r.warnings)?;
    d.set_item("report", rep)?;
    Ok(d.into_any().unbind())
}

/// `_Fault`: the fault with its kind's name and the task's name.
pub fn fault(py: Python<'_>, f: &FaultInfo) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("kind", f.kind.name())?;
    d.set_item("task", &f.task_name)?;
    d.set_item("source", &f.source)?;
    d.set_item("cycle", f.cycle)?;
    d.set_item("t_ns", f.t_ns)?;
    d.set_item("started_ns", f.started_ns)?;
    d.set_item("message", &f.message)?;
    d.set_item("summary", f.to_string())?;
    Ok(d.into_any().unbind())
}

fn percentiles(py: Python<'_>, p: &Percentiles) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("p50_ns", p.p50)?;
    d.set_item("p99_ns", p.p99)?;
    d.set_item("p999_ns", p.p999)?;
    d.set_item("max_ns", p.max)?;
    d.set_item("mean_ns", p.mean)?;
    d.set_item("count", p.count)?;
    Ok(d.into_any().unbind())
}

/// `[_TaskStats]`: each task's facts and figures.
pub fn stats(py: Python<'_>, figs: &[TaskFigures], tasks: &[TaskInfo]) -> PyResult<Py<PyAny>> {
    let out = PyList::empty(py);
    for (f, t) in figs.iter().zip(tasks.iter()) {
        let d = PyDict::new(py);
        d.set_item("name", &t.name)?;
        d.set_item("period_ns", t.period_ns)?;
        d.set_item("priority", t.priority)?;
        d.set_item("cycles", f.cycles)?;
        d.set_item("overruns", f.overruns)?;
        d.set_item("missed", f.missed)?;
        d.set_item("latency", percentiles(py, &f.latency)?)?;
        d.set_item("exec", percentiles(py, &f.exec)?)?;
        d.set_item("period", percentiles(py, &f.period)?)?;
        let progs = PyList::empty(py);
        for (n, k) in &t.programs {
            progs.append((n, k.name()))?;
        }
        d.set_item("programs", progs)?;
        out.append(d)?;
    }
    Ok(out.into_any().unbind())
}

/// `_RtStatus`: the scan thread's real-time set-up and the watchdog thread's.
pub fn rt_status(py: Python<'_>, s: &RtStatus, watchdog: &[String]) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("priority", s.priority)?;
    d.set_item("memory_locked", s.memory_locked)?;
    d.set_item("cpu", s.cpu)?;
    d.set_item("timer_slack", s.timer_slack)?;
    d.set_item("cpu_dma_latency", s.cpu_dma_latency)?;
    d.set_item("degraded", s.degraded.clone())?;
    d.set_item("watchdog_degraded", watchdog.to_vec())?;
    Ok(d.into_any().unbind())
}

/// `_IoEvent`: an I/O event's kind, link, device and the count a summary stands for.
fn io_event(py: Python<'_>, e: &IoEvent) -> PyResult<Py<PyAny>> {
    let d = PyDict::new(py);
    d.set_item("kind", e.kind.name())?;
    d.set_item("link", e.link)?;
    d.set_item("device", e.device)?;
    d.set_item("suppressed", e.suppressed)?;
    Ok(d.into_any().unbind())
}

/// `[_Event]`: events with the task as an index (-1 for none) and, for I/O events,
/// the typed event under `io` (None for the others).
pub fn events(py: Python<'_>, evs: Vec<Event>) -> PyResult<Py<PyAny>> {
    let out = PyList::empty(py);
    for e in evs {
        let d = PyDict::new(py);
        d.set_item("t_ns", e.t_ns)?;
        d.set_item("kind", e.kind.name())?;
        d.set_item("task", TaskId::code(e.task))?;
        d.set_item("a", e.a)?;
        d.set_item("b", e.b)?;
        d.set_item("text", e.text)?;
        match e.kind.io() {
            Some(io) => d.set_item("io", io_event(py, &io)?)?,
            None => d.set_item("io", py.None())?,
        }
        out.append(d)?;
    }
    Ok(out.into_any().unbind())
}

/// `[_Variable]`: every variable of the layout with its address and rule.
pub fn variables(py: Python<'_>, l: &Layout) -> PyResult<Py<PyAny>> {
    let out = PyList::empty(py);
    for (i, v) in l.vars().iter().enumerate() {
        let d = PyDict::new(py);
        d.set_item("index", i)?;
        d.set_item("name", &v.name)?;
        d.set_item("area", v.slot.area.word())?;
        d.set_item("type", v.slot.ty.full_name())?;
        d.set_item("address", v.address.to_string())?;
        d.set_item("explicit", v.explicit)?;
        d.set_item("offset", v.slot.offset)?;
        d.set_item("bit", v.slot.bit)?;
        if let softplc_core::IecType::String(_) = v.slot.ty {
            d.set_item("initial", crate::value::text_to_py(py, &v.initial_text))?;
        } else {
            d.set_item("initial", to_py(py, v.initial)?)?;
        }
        d.set_item("safe", to_py(py, v.safe)?)?;
        d.set_item("unit", &v.unit)?;
        let bound = |b: Option<Value>| -> PyResult<Option<Py<PyAny>>> {
            b.map(|x| to_py(py, x)).transpose()
        };
        d.set_item("min", bound(v.rule.min)?)?;
        d.set_item("max", bound(v.rule.max)?)?;
        d.set_item("writable", v.rule.writable)?;
        d.set_item("retain", v.retain.map(|k| k.name()))?;
        out.append(d)?;
    }
    Ok(out.into_any().unbind())
}
