//! How program values sit in XGT device memory: the PLC-side type of a mapping, its
//! data type on the wire, and the conversion with scaling.
//!
//! XGT PLCs store every value little-endian, so there is no byte order to configure:
//! a mapping names the PLC-side type (`INT`, `REAL`, ...), which fixes the size letter
//! of its name (`X` bit, `B` byte, `W` word, `D` double word, `L` long word), and the
//! value converts to and from the program variable's type with saturation, as Modbus
//! values do ([`crate::convert`]).

use std::fmt;

use softplc_core::{IecType, Value};

use crate::convert::{num_to_value, value_to_num};

use super::codec::DataType;

/// The type of a value in the PLC's memory: one of today's IEC types except TIME.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct XgtType(IecType);

impl XgtType {
    /// The names a configuration may use (aliases: BYTE, WORD, DWORD, LWORD).
    pub const NAMES: &'static str =
        "BOOL, SINT, USINT (BYTE), INT, UINT (WORD), DINT, UDINT (DWORD), REAL, LINT, ULINT (LWORD) or LREAL";

    /// Parses a type name (case-insensitive); the bit-string names are unsigned.
    pub fn parse(text: &str) -> Option<XgtType> {
        let ty = match text.to_ascii_uppercase().as_str() {
            "BYTE" => IecType::Usint,
            "WORD" => IecType::Uint,
            "DWORD" => IecType::Udint,
            "LWORD" => IecType::Ulint,
            "TIME" => return None,
            other => match IecType::from_name(other)? {
                // Text has no XGT device-memory form here (not in the protocol's types).
                IecType::String(_) => return None,
                t => t,
            },
        };
        Some(XgtType(ty))
    }

    /// The PLC-side type of a variable of type `ty` when none is given (TIME travels as
    /// LINT nanoseconds).
    pub fn default_for(ty: IecType) -> XgtType {
        XgtType(if ty == IecType::Time {
            IecType::Lint
        } else {
            ty
        })
    }

    /// The IEC type the bits are read as.
    pub fn iec(self) -> IecType {
        self.0
    }

    /// The data type on the wire: the size letter of names of this type.
    pub fn data_type(self) -> DataType {
        match self.0.size() {
            0 => DataType::Bit,
            1 => DataType::Byte,
            2 => DataType::Word,
            4 => DataType::DWord,
            _ => DataType::LWord,
        }
    }
}

impl fmt::Display for XgtType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

/// How one program variable is stored in XGT device memory. `Copy`; built at bind
/// time, used on the scan thread: no allocation, locks or syscalls.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct XgtCodec {
    /// The PLC-side type.
    pub ty: XgtType,
    /// Variable value = PLC value * scale + offset.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// The program variable's type.
    pub var_ty: IecType,
}

impl XgtCodec {
    /// A codec without scaling.
    pub fn plain(ty: XgtType, var_ty: IecType) -> XgtCodec {
        XgtCodec {
            ty,
            scale: 1.0,
            offset: 0.0,
            var_ty,
        }
    }

    /// Bytes of one value on the wire (a bit: 1).
    pub fn size(&self) -> usize {
        self.ty.data_type().size()
    }

    /// The value of the raw little-endian bits `raw` (a bit: 0 or 1), in the variable's
    /// type, and whether it had to be clamped to the variable's range.
    pub fn decode(&self, raw: u64) -> (Value, bool) {
        let n = value_to_num(Value::from_bits(self.ty.iec(), raw)).scaled(self.scale, self.offset);
        num_to_value(self.var_ty, n)
    }

    /// The raw bits of `v` in the PLC-side type, and whether it had to be clamped to
    /// that type's range.
    pub fn encode(&self, v: Value) -> (u64, bool) {
        let n = value_to_num(v).unscaled(self.scale, self.offset);
        let (w, clamped) = num_to_value(self.ty.iec(), n);
        (w.to_bits(), clamped)
    }

    /// A configured substitute number in the variable's type.
    pub fn substitute_value(&self, x: f64) -> Value {
        num_to_value(self.var_ty, crate::convert::Num::Float(x)).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases_fix_the_size_letter() {
        let t = |s: &str| XgtType::parse(s).unwrap().data_type();
        assert_eq!(t("bool"), DataType::Bit);
        assert_eq!(t("BYTE"), DataType::Byte);
        assert_eq!(t("SINT"), DataType::Byte);
        assert_eq!(t("WORD"), DataType::Word);
        assert_eq!(t("int"), DataType::Word);
        assert_eq!(t("REAL"), DataType::DWord);
        assert_eq!(t("DWORD"), DataType::DWord);
        assert_eq!(t("LREAL"), DataType::LWord);
        assert_eq!(XgtType::parse("TIME"), None);
        assert_eq!(XgtType::parse("STRING"), None);
        assert_eq!(
            XgtType::default_for(IecType::Time),
            XgtType::parse("LINT").unwrap()
        );
    }

    #[test]
    fn values_round_trip_little_endian_with_scaling_and_saturate() {
        let mut c = XgtCodec::plain(XgtType::parse("INT").unwrap(), IecType::Real);
        c.scale = 0.1;
        let (raw, clamped) = c.encode(Value::Real(-12.3));
        assert!(!clamped);
        assert_eq!(raw as u16 as i16, -123);
        let (v, _) = c.decode(raw);
        assert!((v.as_f64() + 12.3).abs() < 1e-5, "{v}");
        let c = XgtCodec::plain(XgtType::parse("SINT").unwrap(), IecType::Int);
        assert_eq!(c.encode(Value::Int(IecType::Int, 1000)), (0x7F, true));
        assert_eq!(c.decode(0xFF), (Value::Int(IecType::Int, -1), false));
        let c = XgtCodec::plain(XgtType::parse("REAL").unwrap(), IecType::Real);
        assert_eq!(c.encode(Value::Real(1.5)).0, 1.5f32.to_bits() as u64);
        let c = XgtCodec::plain(XgtType::parse("BOOL").unwrap(), IecType::Bool);
        assert_eq!(c.encode(Value::Bool(true)), (1, false));
        assert_eq!(c.decode(1).0, Value::Bool(true));
        let c = XgtCodec::plain(XgtType::parse("UINT").unwrap(), IecType::Sint);
        assert_eq!(c.decode(300), (Value::Int(IecType::Sint, 127), true));
    }
}
