//! A Python handle that carries a native driver into an engine.
//!
//! Driver crates (softplc-io, ...) build a `Box<dyn Driver>` and wrap it in
//! [`NativeDriver`]; `Engine.add_driver` takes the box out, so one driver object can be
//! used by one engine only.

use std::sync::Mutex;

use pyo3::prelude::*;
use softplc_core::Driver;

use crate::errors::ConfigError;

/// A native I/O driver not yet handed to an engine.
#[pyclass(module = "softplc._native")]
pub struct NativeDriver {
    name: String,
    inner: Mutex<Option<Box<dyn Driver>>>,
}

impl NativeDriver {
    /// Wraps a driver.
    pub fn from_box(driver: Box<dyn Driver>) -> NativeDriver {
        NativeDriver {
            name: driver.name().to_string(),
            inner: Mutex::new(Some(driver)),
        }
    }

    /// Takes the driver out (once).
    pub fn take(&self) -> PyResult<Box<dyn Driver>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| {
                ConfigError::new_err(format!(
                    "driver {:?} is already attached to an engine",
                    self.name
                ))
            })
    }
}

#[pymethods]
impl NativeDriver {
    /// The driver's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    fn __repr__(&self) -> String {
        format!("<NativeDriver {:?}>", self.name)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeDriver>()
}
