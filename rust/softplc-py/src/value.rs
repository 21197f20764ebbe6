//! Values between Python and the process image, with one converter for every writer.
//!
//! A Python number becomes a value of the variable's type by one of two rules
//! ([`Fit`]); what does not fit is always [`crate::errors::InvalidValue`], worded
//! `name (TYPE): why`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyString};
use softplc_core::{IecType, Value};

use crate::errors::{self, ConfigError};

/// How a Python number is fitted to a variable's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// Writes from outside the programs (`Engine.write`, `force`, declarations): an
    /// integer out of the type's range, a fraction for an integer type, a BOOL other
    /// than 0 or 1 are refused.
    Exact,
    /// Writes by a program or a plant: integers wrap to the type's width (IEC
    /// overflow), floats round to REAL; a float for an integer type is refused (convert
    /// explicitly).
    Wrap,
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Converts `obj` for variable `name` of type `ty` by rule `fit`.
pub fn to_value(name: &str, ty: IecType, obj: &Bound<'_, PyAny>, fit: Fit) -> PyResult<Value> {
    let bad = |why: String| errors::invalid_value(name, ty, why);
    if let IecType::String(_) = ty {
        return Err(bad(
            "a STRING is written by programs only (no external write, force or bus write)"
                .to_string(),
        ));
    }
    // numpy.bool_ is not a Python bool, but it is one for a BOOL.
    let is_bool = obj.is_instance_of::<PyBool>()
        || obj.get_type().name().map(|n| n == "bool_").unwrap_or(false);
    let is_float = obj.is_instance_of::<PyFloat>();
    if ty == IecType::Bool {
        if is_bool {
            return Ok(Value::Bool(obj.is_truthy()?));
        }
        if let Ok(i) = obj.extract::<i64>() {
            return match fit {
                Fit::Exact => Value::from_i128(ty, i as i128).map_err(|e| bad(e.reason)),
                Fit::Wrap if i == 0 || i == 1 => Ok(Value::Bool(i == 1)),
                Fit::Wrap => Err(bad(format!("expected a bool, got {}", type_name(obj)))),
            };
        }
        return Err(bad(format!("expected a bool, got {}", type_name(obj))));
    }
    if matches!(ty, IecType::Real | IecType::Lreal) || (fit == Fit::Exact && is_float) {
        if fit == Fit::Exact && !is_float {
            // An integer converts straight to the float type, not through f64.
            if let Ok(i) = obj.extract::<i128>() {
                return Value::from_i128(ty, i).map_err(|e| bad(e.reason));
            }
        }
        let f: f64 = obj
            .extract()
            .map_err(|_| bad(format!("expected a number, got {}", type_name(obj))))?;
        return Value::from_f64(ty, f).map_err(|e| bad(e.reason));
    }
    match fit {
        Fit::Exact => {
            if let Ok(i) = obj.extract::<i128>() {
                return Value::from_i128(ty, i).map_err(|e| bad(e.reason));
            }
            // A number that is neither an int nor a float (numpy.float32): through f64.
            let f: f64 = obj
                .extract()
                .map_err(|_| bad(format!("expected a number, got {}", type_name(obj))))?;
            Value::from_f64(ty, f).map_err(|e| bad(e.reason))
        }
        Fit::Wrap => {
            if is_float {
                return Err(bad(format!(
                    "expected an integer, got float {} (convert explicitly)",
                    obj.repr()?
                )));
            }
            let i: i128 = obj
                .extract()
                .map_err(|_| bad(format!("expected an integer, got {}", type_name(obj))))?;
            Ok(Value::from_bits(ty, i as u128 as u64))
        }
    }
}

/// Converts a value to Python: bool, int (TIME in ns) or float.
pub fn to_py(py: Python<'_>, v: Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::Bool(b) => PyBool::new(py, b).to_owned().into_any().unbind(),
        Value::Int(_, i) | Value::Time(i) => i.into_pyobject(py)?.into_any().unbind(),
        Value::UInt(_, u) => u.into_pyobject(py)?.into_any().unbind(),
        Value::Real(f) => (f as f64).into_pyobject(py)?.into_any().unbind(),
        Value::Lreal(f) => f.into_pyobject(py)?.into_any().unbind(),
    })
}

/// The IEC type named `s` (`REAL`), or a ConfigError listing the names.
pub fn type_from_name(s: &str) -> PyResult<IecType> {
    IecType::from_name(s).ok_or_else(|| {
        ConfigError::new_err(format!(
            "unknown type {s:?} (expected one of {})",
            softplc_core::types::ALL_TYPES
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

/// A STRING's bytes as a Python `str` (single-byte characters: Latin-1).
pub fn text_to_py(py: Python<'_>, bytes: &[u8]) -> Py<PyAny> {
    let s: String = bytes.iter().map(|b| *b as char).collect();
    PyString::new(py, &s).into_any().unbind()
}

/// A Python `str` as a STRING's bytes: every character must be Latin-1 (code point
/// below 256); the caller truncates to the capacity.
pub fn text_from_py(name: &str, ty: IecType, obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let bad = |why: String| errors::invalid_value(name, ty, why);
    let s: String = obj
        .extract()
        .map_err(|_| bad(format!("expected a str, got {}", type_name(obj))))?;
    s.chars()
        .map(|c| {
            u8::try_from(c as u32).map_err(|_| {
                bad(format!(
                    "{c:?} is not a single-byte (Latin-1) character, which a STRING holds"
                ))
            })
        })
        .collect()
}
