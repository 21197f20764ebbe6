//! softplc._native: the only crate that uses pyo3. Private to the `softplc` package;
//! the public API wraps these classes.
//!
//! The bindings only convert: Python values (`value`), reports as dicts (`dicts`),
//! core errors as the exception tree (`errors`, the one place they are mapped), and
//! every wait without the GIL with Ctrl-C as KeyboardInterrupt (`wait`). The classes:
//! the engine (`engine`), the I/O object of Python programs (`scanio`), Python code on
//! the scan thread (`pycode`), drivers (`driver`, `modbus`, `xgt`, `opcua`, and `pydevice` for
//! Python device drivers), compiled programs (`vm`) and traces (`trace`).

use pyo3::prelude::*;

mod dicts;
mod driver;
pub mod engine;
mod errors;
mod modbus;
mod opcua;
mod pycode;
mod pydevice;
mod scanio;
mod trace;
mod value;
mod vm;
mod wait;
mod xgt;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    driver::register(m)?;
    vm::register(m)?;
    engine::register(m)?;
    modbus::register(m)?;
    pydevice::register(m)?;
    xgt::register(m)?;
    opcua::register(m)?;
    trace::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
