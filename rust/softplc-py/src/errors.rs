//! The Python exception tree, and the one place where core errors become Python
//! exceptions.
//!
//! ```text
//! SoftPlcError
//! ├── ConfigError          a declaration, address, option or configuration is invalid
//! │   └── UnknownVariable  no variable by that name or index (also KeyError and
//! │                        AttributeError, so `io["x"]`, `io.x` and `getattr` behave)
//! ├── ProgramError         a program cannot be loaded or compiled
//! ├── IoError              a driver or device failed to start
//! ├── RuntimeFaulted       the engine is in FAULT
//! ├── InvalidValue         a value does not fit the variable's type or write rule
//! ├── StateError           the call does not fit the engine's state
//! └── TraceError           a trace cannot be recorded, or a trace file cannot be read
//! WatchdogInterrupt        (a BaseException) raised in Python code past its watchdog
//! ```
//!
//! Core errors convert through [`AsPyErr`] (and [`OrRaise`] on results); the other
//! modules only build these classes for their own argument checks.

use pyo3::create_exception;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use softplc_core::trace::TraceError as CoreTraceError;
use softplc_core::{EngineError, IecType, LookupError, WriteRefused};

create_exception!(
    softplc._native,
    SoftPlcError,
    pyo3::exceptions::PyException,
    "Base of every softplc error."
);
create_exception!(
    softplc._native,
    ConfigError,
    SoftPlcError,
    "A declaration, address, option or configuration is invalid."
);
create_exception!(
    softplc._native,
    ProgramError,
    SoftPlcError,
    "A program cannot be loaded or compiled."
);
create_exception!(
    softplc._native,
    IoError,
    SoftPlcError,
    "A driver or device failed to start."
);
create_exception!(
    softplc._native,
    RuntimeFaulted,
    SoftPlcError,
    "The engine is in FAULT."
);
create_exception!(
    softplc._native,
    InvalidValue,
    SoftPlcError,
    "A value does not fit the variable's type or its write rule."
);
create_exception!(
    softplc._native,
    StateError,
    SoftPlcError,
    "The call does not fit the engine's state."
);
create_exception!(
    softplc._native,
    TraceError,
    SoftPlcError,
    "A trace cannot be recorded, or a trace file cannot be read."
);
create_exception!(
    softplc._native,
    WatchdogInterrupt,
    pyo3::exceptions::PyBaseException,
    "Raised inside Python program code that ran past its task's watchdog. A BaseException, \
     like KeyboardInterrupt, so that `except Exception` in a program does not swallow it."
);

static UNKNOWN_VARIABLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `UnknownVariable(ConfigError, KeyError, AttributeError)`: no variable by that name
/// or index. A ConfigError like every unresolved name, and a KeyError and an
/// AttributeError so that the I/O object's `io["x"]` and `io.x` follow Python's
/// protocols (`getattr(io, "x", None)`, `hasattr`). Its text is the message, without
/// the quotes KeyError would add.
pub fn unknown_variable_type(py: Python<'_>) -> &Bound<'_, PyType> {
    UNKNOWN_VARIABLE
        .get_or_init(py, || {
            let make = || -> PyResult<Py<PyType>> {
                let bases = PyTuple::new(
                    py,
                    [
                        py.get_type::<ConfigError>().into_any(),
                        py.get_type::<pyo3::exceptions::PyKeyError>().into_any(),
                        py.get_type::<pyo3::exceptions::PyAttributeError>()
                            .into_any(),
                    ],
                )?;
                let ns = PyDict::new(py);
                ns.set_item("__module__", "softplc._native")?;
                ns.set_item(
                    "__doc__",
                    "No variable by that name or index (also a KeyError and an \
                     AttributeError).",
                )?;
                let base_str = py
                    .get_type::<pyo3::exceptions::PyBaseException>()
                    .getattr("__str__")?;
                ns.set_item("__str__", base_str)?;
                let t = py
                    .get_type::<PyType>()
                    .call1(("UnknownVariable", bases, ns))?;
                Ok(t.cast_into::<PyType>()?.unbind())
            };
            make().expect("the UnknownVariable class can be created")
        })
        .bind(py)
}

/// A core error as the Python exception it maps to.
pub trait AsPyErr {
    /// The exception.
    fn into_pyerr(self) -> PyErr;
}

impl AsPyErr for softplc_core::ConfigError {
    fn into_pyerr(self) -> PyErr {
        ConfigError::new_err(self.message)
    }
}

impl AsPyErr for softplc_core::IoError {
    fn into_pyerr(self) -> PyErr {
        IoError::new_err(self.message)
    }
}

impl AsPyErr for EngineError {
    fn into_pyerr(self) -> PyErr {
        match self {
            EngineError::State(s) => StateError::new_err(s),
            EngineError::Io(e) => e.into_pyerr(),
        }
    }
}

impl AsPyErr for LookupError {
    fn into_pyerr(self) -> PyErr {
        Python::attach(|py| PyErr::from_type(unknown_variable_type(py).clone(), self.to_string()))
    }
}

impl AsPyErr for CoreTraceError {
    fn into_pyerr(self) -> PyErr {
        match self {
            CoreTraceError::Config(e) => e.into_pyerr(),
            CoreTraceError::Io(m) => TraceError::new_err(m),
        }
    }
}

/// Maps the error of a result to its Python exception.
pub trait OrRaise<T> {
    /// The result, with a core error turned into its Python exception.
    fn or_raise(self) -> PyResult<T>;
}

impl<T, E: AsPyErr> OrRaise<T> for Result<T, E> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(AsPyErr::into_pyerr)
    }
}

/// A compiled program that cannot be loaded (bad intermediate form, a variable the
/// layout lacks): a ProgramError, whatever the core called it.
pub fn program(e: softplc_core::ConfigError) -> PyErr {
    ProgramError::new_err(e.message)
}

/// A value that does not fit variable `name` of type `ty`: InvalidValue, worded
/// `name (TYPE): why` everywhere.
pub fn invalid_value(name: &str, ty: IecType, why: impl std::fmt::Display) -> PyErr {
    InvalidValue::new_err(format!("{name} ({ty}): {why}"))
}

/// An external write refused by the variable's rule (range, `writable=False`).
pub fn write_refused(name: &str, ty: IecType, why: WriteRefused) -> PyErr {
    invalid_value(name, ty, why)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SoftPlcError", py.get_type::<SoftPlcError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("UnknownVariable", unknown_variable_type(py))?;
    m.add("ProgramError", py.get_type::<ProgramError>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("RuntimeFaulted", py.get_type::<RuntimeFaulted>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    m.add("InvalidValue", py.get_type::<InvalidValue>())?;
    m.add("TraceError", py.get_type::<TraceError>())?;
    m.add("WatchdogInterrupt", py.get_type::<WatchdogInterrupt>())?;
    Ok(())
}
