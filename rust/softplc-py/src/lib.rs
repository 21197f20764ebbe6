//! softplc._native: the only crate that uses pyo3. Private to the `softplc` package;
//! the public Python API wraps these classes.

use pyo3::prelude::*;

mod driver;
pub mod engine;
mod errors;
mod vm;
// helper modules register here
mod modbus;
mod trace;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    driver::register(m)?;
    vm::register(m)?;
    engine::register(m)?;
    // helper registrations here
    modbus::register(m)?;
    trace::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
