//! IEC 61131-3 elementary types and the values the process image holds.

use std::fmt;

/// An IEC 61131-3 elementary type that a process-image variable can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IecType {
    /// One bit.
    Bool,
    /// 8-bit signed integer.
    Sint,
    /// 16-bit signed integer.
    Int,
    /// 32-bit signed integer.
    Dint,
    /// 64-bit signed integer.
    Lint,
    /// 8-bit unsigned integer.
    Usint,
    /// 16-bit unsigned integer.
    Uint,
    /// 32-bit unsigned integer.
    Udint,
    /// 64-bit unsigned integer.
    Ulint,
    /// 32-bit IEEE float.
    Real,
    /// 64-bit IEEE float.
    Lreal,
    /// A duration, stored as signed 64-bit nanoseconds.
    Time,
    /// A bit string of 8 bits (no arithmetic: bit operations, shifts, comparisons).
    Byte,
    /// A bit string of 16 bits.
    Word,
    /// A bit string of 32 bits.
    Dword,
    /// A bit string of 64 bits.
    Lword,
    /// A character string of fixed capacity (1 to [`MAX_STRING`] single-byte
    /// characters), stored as its length byte followed by the capacity's bytes. Its
    /// [`Value`] is its length only; the text is read and written through
    /// [`crate::Image::text`] and [`crate::Image::set_text`].
    String(u8),
}

/// The largest capacity of a STRING (its length is one byte).
pub const MAX_STRING: u8 = 254;
/// The capacity of a STRING declared without one (IEC's default).
pub const DEFAULT_STRING: u8 = 80;

/// All types, in declaration order (handy for tests and listings).
pub const ALL_TYPES: [IecType; 16] = [
    IecType::Bool,
    IecType::Sint,
    IecType::Int,
    IecType::Dint,
    IecType::Lint,
    IecType::Usint,
    IecType::Uint,
    IecType::Udint,
    IecType::Ulint,
    IecType::Real,
    IecType::Lreal,
    IecType::Time,
    IecType::Byte,
    IecType::Word,
    IecType::Dword,
    IecType::Lword,
];

impl IecType {
    /// The IEC name, upper case (`"LREAL"`).
    pub fn name(self) -> &'static str {
        match self {
            IecType::Bool => "BOOL",
            IecType::Sint => "SINT",
            IecType::Int => "INT",
            IecType::Dint => "DINT",
            IecType::Lint => "LINT",
            IecType::Usint => "USINT",
            IecType::Uint => "UINT",
            IecType::Udint => "UDINT",
            IecType::Ulint => "ULINT",
            IecType::Real => "REAL",
            IecType::Lreal => "LREAL",
            IecType::Time => "TIME",
            IecType::Byte => "BYTE",
            IecType::Word => "WORD",
            IecType::Dword => "DWORD",
            IecType::Lword => "LWORD",
            IecType::String(_) => "STRING",
        }
    }

    /// Parses an IEC type name, case-insensitively: the names of [`ALL_TYPES`], and
    /// `STRING` (capacity 80) or `STRING(n)` with n in 1..=254.
    pub fn from_name(name: &str) -> Option<IecType> {
        let upper = name.trim().to_ascii_uppercase();
        if upper == "STRING" {
            return Some(IecType::String(DEFAULT_STRING));
        }
        if let Some(rest) = upper.strip_prefix("STRING(") {
            let n: u8 = rest.strip_suffix(')')?.trim().parse().ok()?;
            return (1..=MAX_STRING).contains(&n).then_some(IecType::String(n));
        }
        ALL_TYPES.iter().copied().find(|t| t.name() == upper)
    }

    /// The full name: `STRING(20)` for a string, [`IecType::name`] otherwise.
    pub fn full_name(self) -> std::borrow::Cow<'static, str> {
        match self {
            IecType::String(n) => format!("STRING({n})").into(),
            t => t.name().into(),
        }
    }

    /// Storage size in bytes. BOOL is one bit; it reports 0 here.
    pub fn size(self) -> usize {
        match self {
            IecType::Bool => 0,
            IecType::Sint | IecType::Usint | IecType::Byte => 1,
            IecType::Int | IecType::Uint | IecType::Word => 2,
            IecType::Dint | IecType::Udint | IecType::Real | IecType::Dword => 4,
            IecType::Lint | IecType::Ulint | IecType::Lreal | IecType::Time | IecType::Lword => 8,
            IecType::String(n) => n as usize + 1,
        }
    }

    /// The direct-address size letter that fits this type (`X`, `B`, `W`, `D`, `L`; a
    /// STRING is addressed by its first byte, `B`).
    pub fn size_letter(self) -> char {
        if let IecType::String(_) = self {
            return 'B';
        }
        match self.size() {
            0 => 'X',
            1 => 'B',
            2 => 'W',
            4 => 'D',
            _ => 'L',
        }
    }

    /// The capacity of a STRING, None for other types.
    pub fn string_capacity(self) -> Option<u8> {
        match self {
            IecType::String(n) => Some(n),
            _ => None,
        }
    }

    /// True for the signed integer types.
    pub fn is_signed_int(self) -> bool {
        matches!(
            self,
            IecType::Sint | IecType::Int | IecType::Dint | IecType::Lint
        )
    }

    /// True for the unsigned integer types.
    pub fn is_unsigned_int(self) -> bool {
        matches!(
            self,
            IecType::Usint | IecType::Uint | IecType::Udint | IecType::Ulint
        )
    }

    /// True for REAL and LREAL.
    pub fn is_float(self) -> bool {
        matches!(self, IecType::Real | IecType::Lreal)
    }

    /// True for the bit strings BYTE, WORD, DWORD and LWORD (held as unsigned
    /// integers of their width).
    pub fn is_bit_string(self) -> bool {
        matches!(
            self,
            IecType::Byte | IecType::Word | IecType::Dword | IecType::Lword
        )
    }

    /// The zero value of the type (FALSE, 0, 0.0, T#0s).
    pub fn zero(self) -> Value {
        match self {
            IecType::Bool => Value::Bool(false),
            IecType::Real => Value::Real(0.0),
            IecType::Lreal => Value::Lreal(0.0),
            IecType::Time => Value::Time(0),
            t if t.is_signed_int() => Value::Int(t, 0),
            t => Value::UInt(t, 0),
        }
    }
}

impl fmt::Display for IecType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full_name())
    }
}

/// A typed value. `Copy`, never allocates: safe to pass around on the scan thread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// BOOL.
    Bool(bool),
    /// A signed integer of the given type (SINT, INT, DINT, LINT), already in range.
    Int(IecType, i64),
    /// An unsigned integer of the given type (USINT, UINT, UDINT, ULINT), or a bit string
    /// (BYTE, WORD, DWORD, LWORD), already in range.
    UInt(IecType, u64),
    /// REAL.
    Real(f32),
    /// LREAL.
    Lreal(f64),
    /// TIME in nanoseconds.
    Time(i64),
}

/// Why a value cannot be stored in a variable of some type.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueError {
    /// The type the value was meant for.
    pub ty: IecType,
    /// What is wrong, in words.
    pub reason: String,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} for {}", self.reason, self.ty)
    }
}

impl std::error::Error for ValueError {}

/// The inclusive integer range of an integer type, as i128 so every type fits.
pub fn int_range(ty: IecType) -> (i128, i128) {
    match ty {
        IecType::Sint => (i8::MIN as i128, i8::MAX as i128),
        IecType::Int => (i16::MIN as i128, i16::MAX as i128),
        IecType::Dint => (i32::MIN as i128, i32::MAX as i128),
        IecType::Lint | IecType::Time => (i64::MIN as i128, i64::MAX as i128),
        IecType::Usint | IecType::Byte => (0, u8::MAX as i128),
        IecType::Uint | IecType::Word => (0, u16::MAX as i128),
        IecType::Udint | IecType::Dword => (0, u32::MAX as i128),
        IecType::Ulint | IecType::Lword => (0, u64::MAX as i128),
        IecType::Bool => (0, 1),
        IecType::String(n) => (0, n as i128),
        IecType::Real | IecType::Lreal => (0, 0),
    }
}

impl Value {
    /// The type of the value.
    pub fn ty(&self) -> IecType {
        match *self {
            Value::Bool(_) => IecType::Bool,
            Value::Int(t, _) | Value::UInt(t, _) => t,
            Value::Real(_) => IecType::Real,
            Value::Lreal(_) => IecType::Lreal,
            Value::Time(_) => IecType::Time,
        }
    }

    /// Builds a value of `ty` from an integer, rejecting values out of the type's range
    /// (the Python API's rule: a write never wraps silently).
    pub fn from_i128(ty: IecType, v: i128) -> Result<Value, ValueError> {
        match ty {
            IecType::Bool => match v {
                0 => Ok(Value::Bool(false)),
                1 => Ok(Value::Bool(true)),
                _ => Err(ValueError {
                    ty,
                    reason: format!("{v} is not 0 or 1"),
                }),
            },
            IecType::Real => Ok(Value::Real(v as f32)),
            IecType::Lreal => Ok(Value::Lreal(v as f64)),
            _ => {
                let (lo, hi) = int_range(ty);
                if v < lo || v > hi {
                    return Err(ValueError {
                        ty,
                        reason: format!("{v} is out of range {lo}..={hi}"),
                    });
                }
                Ok(if ty == IecType::Time {
                    Value::Time(v as i64)
                } else if ty.is_signed_int() {
                    Value::Int(ty, v as i64)
                } else {
                    Value::UInt(ty, v as u64)
                })
            }
        }
    }

    /// Builds a value of `ty` from a float. Integer types accept only integral floats.
    pub fn from_f64(ty: IecType, v: f64) -> Result<Value, ValueError> {
        match ty {
            IecType::Real => Ok(Value::Real(v as f32)),
            IecType::Lreal => Ok(Value::Lreal(v)),
            _ => {
                if v.fract() != 0.0 || !v.is_finite() {
                    return Err(ValueError {
                        ty,
                        reason: format!("{v} is not an integer"),
                    });
                }
                Value::from_i128(ty, v as i128)
            }
        }
    }

    /// Converts the value to another type, with the range rules of [`Value::from_i128`].
    pub fn convert(self, ty: IecType) -> Result<Value, ValueError> {
        if self.ty() == ty {
            return Ok(self);
        }
        match self {
            Value::Bool(b) => Value::from_i128(ty, b as i128),
            Value::Int(_, v) | Value::Time(v) => Value::from_i128(ty, v as i128),
            Value::UInt(_, v) => Value::from_i128(ty, v as i128),
            Value::Real(f) => Value::from_f64(ty, f as f64),
            Value::Lreal(f) => Value::from_f64(ty, f),
        }
    }

    /// The value as f64 (for statistics and plots).
    pub fn as_f64(&self) -> f64 {
        match *self {
            Value::Bool(b) => b as u8 as f64,
            Value::Int(_, v) | Value::Time(v) => v as f64,
            Value::UInt(_, v) => v as f64,
            Value::Real(f) => f as f64,
            Value::Lreal(f) => f,
        }
    }

    /// The raw little-endian bit pattern, zero-extended to 64 bits.
    pub fn to_bits(&self) -> u64 {
        match *self {
            Value::Bool(b) => b as u64,
            Value::Int(t, v) => (v as u64) & mask(t),
            Value::UInt(_, v) => v,
            Value::Real(f) => f.to_bits() as u64,
            Value::Lreal(f) => f.to_bits(),
            Value::Time(v) => v as u64,
        }
    }

    /// Rebuilds a value of `ty` from the bit pattern [`Value::to_bits`] gives.
    pub fn from_bits(ty: IecType, bits: u64) -> Value {
        match ty {
            IecType::Bool => Value::Bool(bits & 1 != 0),
            IecType::Sint => Value::Int(ty, bits as u8 as i8 as i64),
            IecType::Int => Value::Int(ty, bits as u16 as i16 as i64),
            IecType::Dint => Value::Int(ty, bits as u32 as i32 as i64),
            IecType::Lint => Value::Int(ty, bits as i64),
            IecType::Usint | IecType::Byte => Value::UInt(ty, bits as u8 as u64),
            IecType::Uint | IecType::Word => Value::UInt(ty, bits as u16 as u64),
            IecType::Udint | IecType::Dword => Value::UInt(ty, bits as u32 as u64),
            IecType::Ulint | IecType::Lword => Value::UInt(ty, bits),
            IecType::Real => Value::Real(f32::from_bits(bits as u32)),
            IecType::Lreal => Value::Lreal(f64::from_bits(bits)),
            IecType::Time => Value::Time(bits as i64),
            IecType::String(_) => Value::UInt(ty, bits & 0xff),
        }
    }
}

fn mask(t: IecType) -> u64 {
    match t.size() {
        0 => 1,
        8 => u64::MAX,
        n => (1u64 << (n * 8)) - 1,
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Bool(b) => f.write_str(if b { "TRUE" } else { "FALSE" }),
            Value::Int(_, v) => write!(f, "{v}"),
            Value::UInt(_, v) => write!(f, "{v}"),
            Value::Real(v) => write!(f, "{v}"),
            Value::Lreal(v) => write!(f, "{v}"),
            Value::Time(ns) => write!(f, "T#{}ms", ns as f64 / 1e6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip_for_every_type() {
        for ty in ALL_TYPES {
            let v = match ty {
                IecType::Bool => Value::Bool(true),
                IecType::Real => Value::Real(-1.5),
                IecType::Lreal => Value::Lreal(2.25),
                _ => {
                    let (lo, _) = int_range(ty);
                    Value::from_i128(ty, lo).unwrap()
                }
            };
            assert_eq!(Value::from_bits(ty, v.to_bits()), v, "{ty}");
        }
    }

    #[test]
    fn out_of_range_integer_is_rejected_with_the_range() {
        let e = Value::from_i128(IecType::Sint, 200).unwrap_err();
        assert!(e.to_string().contains("-128..=127"), "{e}");
    }

    #[test]
    fn type_names_parse_case_insensitively() {
        assert_eq!(IecType::from_name("lreal"), Some(IecType::Lreal));
        assert_eq!(IecType::from_name("word"), Some(IecType::Word));
        assert_eq!(IecType::from_name("STRING8"), None);
        assert_eq!(IecType::from_name("string(12)"), Some(IecType::String(12)));
        assert_eq!(IecType::from_name("STRING"), Some(IecType::String(80)));
        assert_eq!(IecType::from_name("STRING(255)"), None);
        assert_eq!(IecType::String(12).to_string(), "STRING(12)");
        assert_eq!(IecType::String(12).size(), 13);
    }
}
