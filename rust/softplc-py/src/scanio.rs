//! The I/O object Python programs and plants receive: the image by name or index, the
//! cycle's `now`, and input quality and age. Valid only during the call it is passed
//! to; the scan thread lends it the image for that call.

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use softplc_core::{IecType, Image, Layout, VarId};

use crate::errors::{OrRaise, StateError};
use crate::value::{text_from_py, text_to_py, to_py, to_value, Fit};

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
    pub(crate) fn new(layout: Arc<Layout>) -> ScanIo {
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

    /// The variable a key names: an index, or a name or direct address.
    fn id(&self, key: &Bound<'_, PyAny>) -> PyResult<VarId> {
        if let Ok(i) = key.extract::<i64>() {
            return self.layout.id_at(i).or_raise();
        }
        let name: String = key.extract()?;
        self.layout.lookup(&name).or_raise()
    }

    fn get_id(&self, py: Python<'_>, id: VarId) -> PyResult<Py<PyAny>> {
        let img = self.image()?;
        let slot = self.layout.var(id).slot;
        if let IecType::String(_) = slot.ty {
            return Ok(text_to_py(py, img.text(slot)));
        }
        to_py(py, img.load(slot))
    }

    fn set_id(&self, id: VarId, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let var = self.layout.var(id);
        if let IecType::String(_) = var.slot.ty {
            // A program's write: truncated to the capacity, as IEC assigns strings.
            let text = text_from_py(&var.name, var.slot.ty, value)?;
            let img = self.image()?;
            img.set_text(var.slot, &text);
            img.stamp_ns[id.index()] = self.now_ns.load(Ordering::Relaxed);
            return Ok(());
        }
        let v = to_value(&var.name, var.slot.ty, value, Fit::Wrap)?;
        let img = self.image()?;
        img.store(var.slot, v);
        img.stamp_ns[id.index()] = self.now_ns.load(Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn enter(&self, image: &mut Image, now: u64, cycle: u64, period: u64, dt: u64) {
        self.now_ns.store(now, Ordering::Relaxed);
        self.cycle.store(cycle, Ordering::Relaxed);
        self.period_ns.store(period, Ordering::Relaxed);
        self.dt_ns.store(dt, Ordering::Relaxed);
        self.image.store(image as *mut Image, Ordering::Release);
    }

    pub(crate) fn leave(&self) {
        self.image.store(std::ptr::null_mut(), Ordering::Release);
    }
}

#[pymethods]
impl ScanIo {
    /// Reads a variable by index (fast path for declared programs).
    fn get(&self, py: Python<'_>, index: u32) -> PyResult<Py<PyAny>> {
        let id = self.layout.id_at(index.into()).or_raise()?;
        self.get_id(py, id)
    }

    /// Writes a variable by index (integers wrap, as in IEC arithmetic).
    fn set(&self, index: u32, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = self.layout.id_at(index.into()).or_raise()?;
        self.set_id(id, value)
    }

    fn __getitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let id = self.id(key)?;
        self.get_id(py, id)
    }

    fn __setitem__(&self, key: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = self.id(key)?;
        self.set_id(id, value)
    }

    /// `io.level`: the variable (UnknownVariable, an AttributeError, when there is
    /// none).
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let id = self.layout.lookup(name).or_raise()?;
        self.get_id(py, id)
    }

    fn __setattr__(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = self.layout.lookup(name).or_raise()?;
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
