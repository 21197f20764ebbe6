//! Compiled programs: loads the intermediate form produced by `softplc.compiler` into a
//! `softplc_core::Program`. (Filled in by the compiled-programs work.)

use pyo3::prelude::*;
use softplc_core::{ConfigError, Layout, Program};

/// Builds a compiled program from its serialized intermediate form, binding its
/// variables to the layout's slots.
pub fn load_compiled(
    name: &str,
    _ir: &[u8],
    _layout: &Layout,
) -> Result<Box<dyn Program>, ConfigError> {
    Err(ConfigError::new(format!(
        "program {name:?}: compiled programs are not available in this build"
    )))
}

pub fn register(_m: &Bound<'_, PyModule>) -> PyResult<()> {
    Ok(())
}
