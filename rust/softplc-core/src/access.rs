//! What writers outside the programs may do to a variable: the API's `write`, a Modbus
//! client, the control channel, a stimulus file.
//!
//! A variable may declare a range (`Memory(TIME, ms(500), min=ms(10), max=s(10))`),
//! may be closed to outside writes (`writable=False`), and an enumeration variable
//! accepts only the values of its members ([`Domain`]). Every external write is checked
//! against its rule before it is accepted, so that a bus client cannot put a value into
//! the program that the program was never meant to see (a half period of 0 that divides
//! by zero). The programs themselves, forces (a maintenance override) and plant models
//! are not external writes and are not checked.

use std::cmp::Ordering;
use std::fmt;

use crate::types::{IecType, Value};

/// The values an enumeration variable may take: a set of integers within
/// [`Domain::SPAN`] consecutive values. `Copy` and fixed-size, so checking a write never
/// allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain {
    base: i64,
    mask: [u64; 4],
}

impl Domain {
    /// The widest range of values a domain covers (enumerations of PLC programs have
    /// a few dozen members at most).
    pub const SPAN: i64 = 256;

    /// The domain of exactly `values`; an error when they lie farther apart than
    /// [`Domain::SPAN`] or there are none.
    pub fn of(values: &[i64]) -> Result<Domain, String> {
        let (lo, hi) = match (values.iter().min(), values.iter().max()) {
            (Some(&lo), Some(&hi)) => (lo, hi),
            _ => return Err("an enumeration needs at least one value".to_string()),
        };
        if (hi as i128) - (lo as i128) >= Domain::SPAN as i128 {
            return Err(format!(
                "the values {lo}..{hi} lie farther apart than {} (an enumeration's values \
                 must lie within {} consecutive integers)",
                Domain::SPAN - 1,
                Domain::SPAN
            ));
        }
        let mut mask = [0u64; 4];
        for &v in values {
            let k = (v - lo) as usize;
            mask[k / 64] |= 1 << (k % 64);
        }
        Ok(Domain { base: lo, mask })
    }

    /// True when `v` is one of the values.
    pub fn contains(&self, v: i128) -> bool {
        let k = v - self.base as i128;
        (0..Domain::SPAN as i128).contains(&k) && {
            let k = k as usize;
            self.mask[k / 64] >> (k % 64) & 1 == 1
        }
    }
}

/// The rule of one variable. The default allows every value of the type.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WriteRule {
    /// False: external writes are refused (the variable is read-only from outside).
    pub writable: bool,
    /// Smallest value an external write may set (inclusive).
    pub min: Option<Value>,
    /// Largest value an external write may set (inclusive).
    pub max: Option<Value>,
    /// The only values an external write may set (an enumeration's members).
    pub domain: Option<Domain>,
}

impl Default for WriteRule {
    fn default() -> Self {
        WriteRule {
            writable: true,
            min: None,
            max: None,
            domain: None,
        }
    }
}

/// Why an external write was refused. `Copy`: built on a bus thread without allocating.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WriteRefused {
    /// The variable is declared `writable=False`.
    ReadOnly,
    /// The value is below the declared minimum.
    BelowMin {
        /// The value written.
        value: Value,
        /// The minimum.
        min: Value,
    },
    /// The value is above the declared maximum.
    AboveMax {
        /// The value written.
        value: Value,
        /// The maximum.
        max: Value,
    },
    /// The value is not a number (REAL/LREAL NaN) and the variable has a range.
    NotANumber,
    /// The value is not one of the members of the variable's enumeration.
    NotAMember {
        /// The value written.
        value: Value,
    },
}

impl fmt::Display for WriteRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteRefused::ReadOnly => f.write_str("the variable is not writable from outside"),
            WriteRefused::BelowMin { value, min } => {
                write!(f, "{value} is below the declared minimum {min}")
            }
            WriteRefused::AboveMax { value, max } => {
                write!(f, "{value} is above the declared maximum {max}")
            }
            WriteRefused::NotANumber => f.write_str("NaN is outside the declared range"),
            WriteRefused::NotAMember { value } => {
                write!(f, "{value} is not a value of the variable's enumeration")
            }
        }
    }
}

impl std::error::Error for WriteRefused {}

/// Orders two values of one type (integers exactly, floats as IEEE numbers; None for a
/// NaN or values of different kinds).
pub fn compare(a: Value, b: Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(&y)),
        (Value::Real(_) | Value::Lreal(_), _) | (_, Value::Real(_) | Value::Lreal(_)) => {
            a.as_f64().partial_cmp(&b.as_f64())
        }
        _ => Some(as_i128(a)?.cmp(&as_i128(b)?)),
    }
}

fn as_i128(v: Value) -> Option<i128> {
    match v {
        Value::Bool(b) => Some(b as i128),
        Value::Int(_, i) | Value::Time(i) => Some(i as i128),
        Value::UInt(_, u) => Some(u as i128),
        Value::Real(_) | Value::Lreal(_) => None,
    }
}

impl WriteRule {
    /// True when the rule restricts anything.
    pub fn is_restricted(&self) -> bool {
        !self.writable || self.min.is_some() || self.max.is_some() || self.domain.is_some()
    }

    /// Checks an external write of `v`. No allocation.
    pub fn check(&self, v: Value) -> Result<(), WriteRefused> {
        if !self.writable {
            return Err(WriteRefused::ReadOnly);
        }
        if let Some(min) = self.min {
            match compare(v, min) {
                Some(Ordering::Less) => return Err(WriteRefused::BelowMin { value: v, min }),
                None => return Err(WriteRefused::NotANumber),
                _ => {}
            }
        }
        if let Some(max) = self.max {
            match compare(v, max) {
                Some(Ordering::Greater) => return Err(WriteRefused::AboveMax { value: v, max }),
                None => return Err(WriteRefused::NotANumber),
                _ => {}
            }
        }
        if let Some(d) = self.domain {
            if !as_i128(v).is_some_and(|i| d.contains(i)) {
                return Err(WriteRefused::NotAMember { value: v });
            }
        }
        Ok(())
    }

    /// Checks the rule itself for a variable of type `ty` with initial value `initial`
    /// (load time): bounds of the variable's type, in order, containing the initial
    /// value. Returns the rule with its bounds converted to `ty`.
    pub fn validated(self, ty: IecType, initial: Value) -> Result<WriteRule, String> {
        let conv = |b: Option<Value>, what: &str| -> Result<Option<Value>, String> {
            b.map(|v| {
                v.convert(ty)
                    .map_err(|e| format!("{what} {v} does not fit {ty}: {}", e.reason))
            })
            .transpose()
        };
        let min = conv(self.min, "min")?;
        let max = conv(self.max, "max")?;
        for (b, what) in [(min, "min"), (max, "max")] {
            if let Some(v) = b {
                if compare(v, v).is_none() {
                    return Err(format!("{what} must be a number, not NaN"));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (min, max) {
            if compare(lo, hi) == Some(Ordering::Greater) {
                return Err(format!("min {lo} is greater than max {hi}"));
            }
        }
        if self.domain.is_some() && !(ty.is_signed_int() || ty.is_unsigned_int()) {
            return Err(format!("an enumeration is stored as an integer, not {ty}"));
        }
        let rule = WriteRule {
            writable: self.writable,
            min,
            max,
            domain: self.domain,
        };
        let open = WriteRule {
            writable: true,
            ..rule
        };
        if let Err(e) = open.check(initial) {
            return Err(format!("the initial value is outside the range: {e}"));
        }
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(ms: i64) -> Value {
        Value::Time(ms * 1_000_000)
    }

    #[test]
    fn a_range_refuses_values_outside_it_and_names_the_bound() {
        let r = WriteRule {
            min: Some(time(10)),
            max: Some(time(10_000)),
            ..WriteRule::default()
        };
        assert!(r.check(time(500)).is_ok());
        assert!(r.check(time(10)).is_ok());
        assert_eq!(
            r.check(time(0)),
            Err(WriteRefused::BelowMin {
                value: time(0),
                min: time(10)
            })
        );
        assert!(matches!(
            r.check(time(10_001)),
            Err(WriteRefused::AboveMax { .. })
        ));
    }

    #[test]
    fn floats_compare_as_numbers_and_nan_is_refused_by_a_range() {
        let r = WriteRule {
            min: Some(Value::Real(-1.5)),
            max: None,
            ..WriteRule::default()
        };
        assert!(r.check(Value::Real(-1.5)).is_ok());
        assert!(r.check(Value::Real(-1.6)).is_err());
        assert_eq!(
            r.check(Value::Real(f32::NAN)),
            Err(WriteRefused::NotANumber)
        );
        assert!(WriteRule::default().check(Value::Real(f32::NAN)).is_ok());
    }

    #[test]
    fn unsigned_64_bit_values_compare_exactly() {
        let r = WriteRule {
            min: None,
            max: Some(Value::UInt(IecType::Ulint, u64::MAX - 1)),
            ..WriteRule::default()
        };
        assert!(r.check(Value::UInt(IecType::Ulint, u64::MAX)).is_err());
    }

    #[test]
    fn an_enumeration_refuses_values_that_are_not_members() {
        let d = Domain::of(&[0, 1, 2, 10, -5]).unwrap();
        let r = WriteRule {
            domain: Some(d),
            ..WriteRule::default()
        }
        .validated(IecType::Int, Value::Int(IecType::Int, 0))
        .unwrap();
        assert!(r.check(Value::Int(IecType::Int, 10)).is_ok());
        assert!(r.check(Value::Int(IecType::Int, -5)).is_ok());
        let e = r.check(Value::Int(IecType::Int, 3)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "3 is not a value of the variable's enumeration"
        );
        assert!(r.check(Value::Int(IecType::Int, 251)).is_err());
        let e = WriteRule {
            domain: Some(d),
            ..WriteRule::default()
        }
        .validated(IecType::Int, Value::Int(IecType::Int, 4))
        .unwrap_err();
        assert!(e.contains("initial value"), "{e}");
        assert!(Domain::of(&[0, 256])
            .unwrap_err()
            .contains("256 consecutive"));
        assert!(Domain::of(&[0, 255]).is_ok());
    }

    #[test]
    fn a_read_only_variable_refuses_every_write() {
        let r = WriteRule {
            writable: false,
            ..WriteRule::default()
        };
        assert_eq!(r.check(Value::Bool(true)), Err(WriteRefused::ReadOnly));
    }

    #[test]
    fn a_rule_is_checked_when_declared() {
        let ok = WriteRule {
            min: Some(Value::Int(IecType::Lint, 0)),
            max: Some(Value::Int(IecType::Lint, 100)),
            ..WriteRule::default()
        }
        .validated(IecType::Int, Value::Int(IecType::Int, 5))
        .unwrap();
        assert_eq!(ok.min, Some(Value::Int(IecType::Int, 0)));
        let swapped = WriteRule {
            min: Some(Value::Int(IecType::Int, 9)),
            max: Some(Value::Int(IecType::Int, 1)),
            ..WriteRule::default()
        };
        let e = swapped
            .validated(IecType::Int, Value::Int(IecType::Int, 5))
            .unwrap_err();
        assert!(e.contains("greater than max"), "{e}");
        let outside = WriteRule {
            min: Some(Value::Int(IecType::Int, 9)),
            max: None,
            ..WriteRule::default()
        };
        let e = outside
            .validated(IecType::Int, Value::Int(IecType::Int, 5))
            .unwrap_err();
        assert!(e.contains("initial value"), "{e}");
        let too_big = WriteRule {
            min: None,
            max: Some(Value::Int(IecType::Lint, 1 << 20)),
            ..WriteRule::default()
        };
        assert!(too_big
            .validated(IecType::Int, Value::Int(IecType::Int, 0))
            .is_err());
    }
}
