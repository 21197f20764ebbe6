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

/// The operation vocabulary of the intermediate form: `(name, [operand kind])` for
/// every operation, as the verifier checks them.
#[pyfunction]
fn vm_operations() -> Vec<(String, Vec<&'static str>)> {
    softplc_vm::ops::operations()
}

/// The symbol table of a serialized program, as the verifier checked it:
/// `(path, type, role, cell)` of every stateful cell.
#[pyfunction]
fn vm_symbols(py: Python<'_>, ir: Vec<u8>) -> PyResult<Vec<(String, String, &'static str, u32)>> {
    let doc = softplc_vm::Document::decode(&ir).map_err(ProgramError::new_err)?;
    let checked = wait::blocking(py, || softplc_vm::check_standalone(&doc))?
        .map_err(|e| ProgramError::new_err(e.message))?;
    Ok(checked
        .symbols
        .iter()
        .map(|s| {
            let role = match s.role {
                softplc_vm::fb::Role::Input => "input",
                softplc_vm::fb::Role::Output => "output",
                softplc_vm::fb::Role::Internal => "internal",
            };
            (s.path.clone(), s.ty.to_string(), role, s.cell)
        })
        .collect())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(vm_verify, m)?)?;
    m.add_function(wrap_pyfunction!(vm_fb_layouts, m)?)?;
    m.add_function(wrap_pyfunction!(vm_operations, m)?)?;
    m.add_function(wrap_pyfunction!(vm_symbols, m)?)?;
    Ok(())
}
