//! Numbers on their way between a protocol's raw values and program variables,
//! whatever the protocol: scaling, saturation at a type's range, and the clamp flag
//! that drivers count. Modbus registers ([`crate::modbus::encoding`]) and XGT device
//! memory ([`crate::xgt::value`]) both convert through here.
//!
//! Everything here runs on the scan thread: no allocation, no locks, no syscalls.

use softplc_core::{IecType, Value};

/// A number on its way between a raw value and a variable: integers stay exact
/// (64-bit values included), everything else is a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Num {
    /// An integer.
    Int(i128),
    /// A float.
    Float(f64),
}

impl Num {
    /// The number as a float.
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// `self * scale + offset`, unless that is the identity (integers stay exact).
    pub(crate) fn scaled(self, scale: f64, offset: f64) -> Num {
        if scale != 1.0 || offset != 0.0 {
            Num::Float(self.as_f64() * scale + offset)
        } else {
            self
        }
    }

    /// `(self - offset) / scale`, the inverse of [`Num::scaled`].
    pub(crate) fn unscaled(self, scale: f64, offset: f64) -> Num {
        if scale != 1.0 || offset != 0.0 {
            Num::Float((self.as_f64() - offset) / scale)
        } else {
            self
        }
    }
}

/// Range of an integer type as i128 (`TIME` is 64-bit signed nanoseconds).
pub(crate) fn int_bounds(ty: IecType) -> (i128, i128) {
    let bits = if ty == IecType::Time {
        64
    } else {
        ty.size() as u32 * 8
    };
    if ty.is_unsigned_int() || ty.is_bit_string() {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    }
}

/// Rounds a float to an integer of `lo..=hi`, saturating; NaN becomes 0.
/// Returns the integer and whether it had to be clamped.
pub(crate) fn saturate_f64(f: f64, lo: i128, hi: i128) -> (i128, bool) {
    if f.is_nan() {
        return (0, true);
    }
    let r = f.round();
    if r < lo as f64 {
        (lo, true)
    } else if r > hi as f64 {
        (hi, true)
    } else {
        (r as i128, false)
    }
}

/// Clamps an integer to `lo..=hi`. Returns it and whether it had to be clamped.
pub(crate) fn saturate_int(i: i128, lo: i128, hi: i128) -> (i128, bool) {
    if i < lo {
        (lo, true)
    } else if i > hi {
        (hi, true)
    } else {
        (i, false)
    }
}

/// Builds a value of `ty` from a number, saturating instead of failing. Returns the
/// value and whether it was clamped.
pub(crate) fn num_to_value(ty: IecType, n: Num) -> (Value, bool) {
    match ty {
        IecType::Bool => (Value::Bool(n.as_f64() != 0.0), false),
        IecType::Real => (Value::Real(n.as_f64() as f32), false),
        IecType::Lreal => (Value::Lreal(n.as_f64()), false),
        _ => {
            let (lo, hi) = int_bounds(ty);
            let (i, clamped) = match n {
                Num::Int(i) => saturate_int(i, lo, hi),
                Num::Float(f) => saturate_f64(f, lo, hi),
            };
            let v = if ty == IecType::Time {
                Value::Time(i as i64)
            } else if ty.is_signed_int() {
                Value::Int(ty, i as i64)
            } else {
                Value::UInt(ty, i as u64)
            };
            (v, clamped)
        }
    }
}

/// The number a value holds.
pub(crate) fn value_to_num(v: Value) -> Num {
    match v {
        Value::Bool(b) => Num::Int(b as i128),
        Value::Int(_, i) | Value::Time(i) => Num::Int(i as i128),
        Value::UInt(_, u) => Num::Int(u as i128),
        Value::Real(f) => Num::Float(f as f64),
        Value::Lreal(f) => Num::Float(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_is_the_identity_unless_asked_so_64_bit_integers_stay_exact() {
        let n = Num::Int(i64::MAX as i128);
        assert_eq!(n.scaled(1.0, 0.0), n);
        assert_eq!(n.unscaled(1.0, 0.0), n);
        assert_eq!(Num::Int(10).scaled(0.5, 1.0), Num::Float(6.0));
        assert_eq!(Num::Float(6.0).unscaled(0.5, 1.0), Num::Float(10.0));
    }

    #[test]
    fn numbers_saturate_at_the_range_of_the_target_type() {
        assert_eq!(
            num_to_value(IecType::Sint, Num::Int(300)),
            (Value::Int(IecType::Sint, 127), true)
        );
        assert_eq!(
            num_to_value(IecType::Usint, Num::Float(-2.0)),
            (Value::UInt(IecType::Usint, 0), true)
        );
        assert_eq!(
            num_to_value(IecType::Int, Num::Float(f64::NAN)),
            (Value::Int(IecType::Int, 0), true)
        );
        assert_eq!(
            num_to_value(IecType::Ulint, Num::Int(u64::MAX as i128)),
            (Value::UInt(IecType::Ulint, u64::MAX), false)
        );
    }
}
