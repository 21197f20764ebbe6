//! softplc-vm: the compiled program form.
//!
//! A control program written in Python is compiled (by `softplc.compiler`) to a typed
//! intermediate form ([`ir::Document`], MessagePack). This crate verifies that form
//! completely ([`verify`]), lowers it to specialised instructions with every
//! process-image variable resolved to a fixed offset, and runs it with an interpreter
//! ([`interp::CompiledProgram`]) that implements [`softplc_core::Program`]: no Python,
//! no allocation and no locks on the scan path. The IEC standard function blocks live
//! in [`fb`], the numeric rules in [`num`].
#![deny(missing_docs)]

pub mod fb;
pub mod instr;
pub mod interp;
pub mod ir;
pub mod num;
pub mod ops;
pub mod text;
pub mod verify;

use std::collections::HashMap;

use softplc_core::{Area, ConfigError, IecType, Layout, Program, Slot, VarId};

pub use interp::CompiledProgram;
pub use ir::Document;
pub use verify::CellSymbol;

/// Verifies the serialized form `ir` and binds its variables (full engine names) to
/// the slots of `layout`. Errors name the program and what is wrong.
pub fn load(ir: &[u8], layout: &Layout) -> Result<Box<dyn Program>, ConfigError> {
    Ok(Box::new(load_program(ir, layout)?))
}

/// Like [`load`], returning the concrete type (tests and benchmarks inspect cells).
pub fn load_program(ir: &[u8], layout: &Layout) -> Result<CompiledProgram, ConfigError> {
    let doc = Document::decode(ir).map_err(ConfigError::new)?;
    load_document(&doc, layout)
}

/// Verifies and binds an already decoded document.
pub fn load_document(doc: &Document, layout: &Layout) -> Result<CompiledProgram, ConfigError> {
    // One index of the layout's names, so that binding n variables costs n lookups,
    // not n passes over the layout.
    let index: HashMap<&str, usize> = layout
        .vars()
        .iter()
        .enumerate()
        .map(|(i, v)| (v.name.as_str(), i))
        .collect();
    let mut bind = |_: usize, name: &str, _: IecType| -> Result<(Slot, VarId), String> {
        match index.get(name).copied() {
            Some(i) => Ok((layout.vars()[i].slot, VarId(i as u32))),
            None => Err(format!(
                "variable {name:?} is not declared in the engine (the program was compiled for other declarations)"
            )),
        }
    };
    let checked = verify::check(doc, &mut bind)
        .map_err(|e| ConfigError::new(format!("program {:?}: {e}", doc.program)))?;
    Ok(CompiledProgram::new(checked))
}

/// Verifies `ir` on its own, without an engine (for `softplc check`). Returns the
/// number of instructions and cells.
pub fn verify_bytes(ir: &[u8]) -> Result<(usize, usize), ConfigError> {
    let doc = Document::decode(ir).map_err(ConfigError::new)?;
    let checked = check_standalone(&doc)?;
    Ok((checked.code.len(), checked.init.len()))
}

/// Verifies a decoded document without an engine: its variables are bound to private
/// slots of the memory area (enough to check types and indices; the real areas are
/// checked when the program is loaded).
pub fn check_standalone(doc: &Document) -> Result<verify::Checked, ConfigError> {
    let mut offset = 0u32;
    let mut bind = |i: usize, _: &str, ty: IecType| -> Result<(Slot, VarId), String> {
        let s = Slot {
            area: Area::Memory,
            offset,
            bit: 0,
            ty,
        };
        offset = offset
            .checked_add(8)
            .ok_or_else(|| "too many variables".to_string())?;
        let id = u32::try_from(i).map_err(|_| "too many variables".to_string())?;
        Ok((s, VarId(id)))
    };
    verify::check(doc, &mut bind)
        .map_err(|e| ConfigError::new(format!("program {:?}: {e}", doc.program)))
}

/// One block's layout for [`fb_layouts`]: name and `(field, type, role)` rows.
pub type FbLayout = (
    &'static str,
    Vec<(&'static str, &'static str, &'static str)>,
);

/// The cell layout of every standard function block: `(block, [(field, type, role)])`,
/// role being `input`, `output` or `internal`. The Python compiler checks its own copy
/// against this.
pub fn fb_layouts() -> Vec<FbLayout> {
    fb::ALL
        .iter()
        .map(|k| {
            let fields = k
                .fields()
                .iter()
                .map(|f| {
                    let role = match f.role {
                        fb::Role::Input => "input",
                        fb::Role::Output => "output",
                        fb::Role::Internal => "internal",
                    };
                    (f.name, f.ty.name(), role)
                })
                .collect();
            (k.name(), fields)
        })
        .collect()
}
