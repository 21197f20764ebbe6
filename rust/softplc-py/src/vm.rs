//! Compiled programs: loads the intermediate form produced by `softplc.compiler` into a
//! `softplc_core::Program` (the `softplc-vm` crate), and exposes the verifier to Python
//! for `softplc check`.

use pyo3::prelude::*;
use softplc_core::{ConfigError, Layout, Program};

use crate::errors::ProgramError;
use crate::wait;

/// Builds a compiled program from its serialized intermediate form, binding its
/// variables (full engine names) to the layout's slots.
pub fn load_compiled(
    name: &str,
    ir: &[u8],
    layout: &Layout,
) -> Result<Box<dyn Program>, ConfigError> {
    let program = softplc_vm::load(ir, layout)?;
    if program.name() != name {
        return Err(ConfigError::new(format!(
            "compiled program is named {:?}, but it is added as {name:?}",
            program.name()
        )));
    }
    Ok(program)
}

/// Verifies an intermediate form without an engine; returns (instructions, cells).
#[pyfunction]
fn vm_verify(py: Python<'_>, ir: Vec<u8>) -> PyResult<(usize, usize)> {
    wait::blocking(py, || softplc_vm::verify_bytes(&ir))?
        .map_err(|e| ProgramError::new_err(e.message))
}

/// The cell layouts of the standard function blocks, as the VM defines them.
#[pyfunction]
fn vm_fb_layouts() -> Vec<softplc_vm::FbLayout> {
    softplc_vm::fb_layouts()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(vm_verify, m)?)?;
    m.add_function(wrap_pyfunction!(vm_fb_layouts, m)?)?;
    Ok(())
}
