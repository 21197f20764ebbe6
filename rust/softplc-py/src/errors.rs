//! The Python exception hierarchy, mapped in one place.

use pyo3::create_exception;
use pyo3::prelude::*;

create_exception!(
    _native,
    SoftPlcError,
    pyo3::exceptions::PyException,
    "Base of every softplc error."
);
create_exception!(
    _native,
    ConfigError,
    SoftPlcError,
    "A declaration, address or configuration is invalid."
);
create_exception!(
    _native,
    ProgramError,
    SoftPlcError,
    "A program cannot be loaded or compiled."
);
create_exception!(
    _native,
    IoError,
    SoftPlcError,
    "A driver or device failed to start."
);
create_exception!(
    _native,
    RuntimeFaulted,
    SoftPlcError,
    "The engine is in FAULT."
);
create_exception!(
    _native,
    InvalidValue,
    SoftPlcError,
    "A value does not fit the variable's type."
);
create_exception!(
    _native,
    StateError,
    SoftPlcError,
    "The call does not fit the engine's state."
);

create_exception!(
    _native,
    WatchdogInterrupt,
    pyo3::exceptions::PyBaseException,
    "Raised inside Python program code that ran past its task's watchdog. A BaseException, \
     like KeyboardInterrupt, so that `except Exception` in a program does not swallow it."
);

/// Maps a core configuration error.
pub fn config(e: softplc_core::ConfigError) -> PyErr {
    ConfigError::new_err(e.message)
}

/// Maps a core I/O error.
pub fn io(e: softplc_core::IoError) -> PyErr {
    IoError::new_err(e.message)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("SoftPlcError", py.get_type::<SoftPlcError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("ProgramError", py.get_type::<ProgramError>())?;
    m.add("IoError", py.get_type::<IoError>())?;
    m.add("RuntimeFaulted", py.get_type::<RuntimeFaulted>())?;
    m.add("StateError", py.get_type::<StateError>())?;
    m.add("InvalidValue", py.get_type::<InvalidValue>())?;
    m.add("WatchdogInterrupt", py.get_type::<WatchdogInterrupt>())?;
    Ok(())
}
