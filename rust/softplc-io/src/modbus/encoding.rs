//! How program values are laid out in Modbus registers and bits.
//!
//! A Modbus register is a 16-bit big-endian word. Values wider than one register span
//! two or four consecutive registers, and devices disagree on the order: the four
//! orders are named after the bytes of the 32-bit value `0xAABBCCDD` as they appear in
//! register order (ABCD: big-endian, CDAB: word-swapped, BADC: byte-swapped, DCBA:
//! little-endian); 64-bit values follow the same two rules (words reversed and/or
//! bytes swapped in each word).
//!
//! Everything here runs on the scan thread: no allocation, no locks, no syscalls.

use std::fmt;

use softplc_core::{IecType, Value};

use crate::convert::{num_to_value, saturate_f64, saturate_int, value_to_num, Num};

/// Register and byte order for values spanning more than one register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WordOrder {
    /// Big-endian: high word first, high byte first (the Modbus convention).
    #[default]
    Abcd,
    /// Low word first, high byte first in each word.
    Cdab,
    /// High word first, bytes swapped in each word.
    Badc,
    /// Little-endian: low word first, low byte first.
    Dcba,
}

impl WordOrder {
    /// Parses `ABCD`, `CDAB`, `BADC` or `DCBA` (case-insensitive).
    pub fn parse(text: &str) -> Option<WordOrder> {
        match text.to_ascii_uppercase().as_str() {
            "ABCD" => Some(WordOrder::Abcd),
            "CDAB" => Some(WordOrder::Cdab),
            "BADC" => Some(WordOrder::Badc),
            "DCBA" => Some(WordOrder::Dcba),
            _ => None,
        }
    }

    /// The name (`ABCD`).
    pub fn name(self) -> &'static str {
        match self {
            WordOrder::Abcd => "ABCD",
            WordOrder::Cdab => "CDAB",
            WordOrder::Badc => "BADC",
            WordOrder::Dcba => "DCBA",
        }
    }

    fn reverses_words(self) -> bool {
        matches!(self, WordOrder::Cdab | WordOrder::Dcba)
    }

    fn swaps_bytes(self) -> bool {
        matches!(self, WordOrder::Badc | WordOrder::Dcba)
    }
}

impl fmt::Display for WordOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The data type a value has on the Modbus side (in the device's registers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegType {
    /// One bit: a coil or discrete input, or one bit of a register.
    Bool,
    /// Signed 16-bit integer, one register.
    Int,
    /// Unsigned 16-bit integer, one register.
    Uint,
    /// Signed 32-bit integer, two registers.
    Dint,
    /// Unsigned 32-bit integer, two registers.
    Udint,
    /// Signed 64-bit integer, four registers.
    Lint,
    /// Unsigned 64-bit integer, four registers.
    Ulint,
    /// IEEE 754 single precision, two registers.
    Real,
    /// IEEE 754 double precision, four registers.
    Lreal,
}

impl RegType {
    /// Parses an IEC name; `WORD`, `DWORD` and `LWORD` are accepted as unsigned.
    pub fn parse(text: &str) -> Option<RegType> {
        match text.to_ascii_uppercase().as_str() {
            "BOOL" => Some(RegType::Bool),
            "INT" => Some(RegType::Int),
            "UINT" | "WORD" => Some(RegType::Uint),
            "DINT" => Some(RegType::Dint),
            "UDINT" | "DWORD" => Some(RegType::Udint),
            "LINT" => Some(RegType::Lint),
            "ULINT" | "LWORD" => Some(RegType::Ulint),
            "REAL" => Some(RegType::Real),
            "LREAL" => Some(RegType::Lreal),
            _ => None,
        }
    }

    /// The IEC name.
    pub fn name(self) -> &'static str {
        match self {
            RegType::Bool => "BOOL",
            RegType::Int => "INT",
            RegType::Uint => "UINT",
            RegType::Dint => "DINT",
            RegType::Udint => "UDINT",
            RegType::Lint => "LINT",
            RegType::Ulint => "ULINT",
            RegType::Real => "REAL",
            RegType::Lreal => "LREAL",
        }
    }

    /// Registers occupied (BOOL in a register table occupies one).
    pub fn words(self) -> usize {
        match self {
            RegType::Bool | RegType::Int | RegType::Uint => 1,
            RegType::Dint | RegType::Udint | RegType::Real => 2,
            RegType::Lint | RegType::Ulint | RegType::Lreal => 4,
        }
    }

    /// The register type a program variable of type `ty` has when none is given. A
    /// STRING has no register form: binding refuses it before asking (UINT here).
    pub fn default_for(ty: IecType) -> RegType {
        match ty {
            IecType::String(_) => RegType::Uint,
            IecType::Bool => RegType::Bool,
            IecType::Sint | IecType::Int => RegType::Int,
            IecType::Usint | IecType::Uint | IecType::Byte | IecType::Word => RegType::Uint,
            IecType::Dint => RegType::Dint,
            IecType::Udint | IecType::Dword => RegType::Udint,
            IecType::Lint | IecType::Time => RegType::Lint,
            IecType::Ulint | IecType::Lword => RegType::Ulint,
            IecType::Real => RegType::Real,
            IecType::Lreal => RegType::Lreal,
        }
    }
}

impl fmt::Display for RegType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How one program variable is stored in Modbus registers or bits. `Copy`; built at
/// bind time, used on the scan thread.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Codec {
    /// Modbus-side type.
    pub reg: RegType,
    /// Order of multi-register values.
    pub order: WordOrder,
    /// Variable value = register value * scale + offset.
    pub scale: f64,
    /// See `scale`.
    pub offset: f64,
    /// For a BOOL variable read from a register: the bit number (0 = least significant).
    pub bit: Option<u8>,
    /// The program variable's type.
    pub var_ty: IecType,
}

impl Codec {
    /// A codec without scaling.
    pub fn plain(reg: RegType, order: WordOrder, var_ty: IecType) -> Codec {
        Codec {
            reg,
            order,
            scale: 1.0,
            offset: 0.0,
            bit: None,
            var_ty,
        }
    }

    /// Registers this value occupies.
    pub fn words(&self) -> usize {
        self.reg.words()
    }

    fn scaled(&self) -> bool {
        self.scale != 1.0 || self.offset != 0.0
    }

    /// Assembles the raw bits of a multi-register value from registers in device order.
    fn gather(&self, words: &[u16]) -> u64 {
        let n = self.words();
        let mut ws = [0u16; 4];
        ws[..n].copy_from_slice(&words[..n]);
        if self.order.swaps_bytes() {
            for w in &mut ws[..n] {
                *w = w.swap_bytes();
            }
        }
        if self.order.reverses_words() {
            ws[..n].reverse();
        }
        ws[..n].iter().fold(0u64, |acc, w| (acc << 16) | *w as u64)
    }

    /// Splits raw bits into registers in device order (the inverse of `gather`).
    fn scatter(&self, bits: u64, out: &mut [u16]) {
        let n = self.words();
        let mut ws = [0u16; 4];
        for (i, w) in ws[..n].iter_mut().enumerate() {
            *w = (bits >> (16 * (n - 1 - i))) as u16;
        }
        if self.order.reverses_words() {
            ws[..n].reverse();
        }
        if self.order.swaps_bytes() {
            for w in &mut ws[..n] {
                *w = w.swap_bytes();
            }
        }
        out[..n].copy_from_slice(&ws[..n]);
    }

    fn raw_num(&self, words: &[u16]) -> Num {
        let raw = self.gather(words);
        match self.reg {
            RegType::Bool => Num::Int((raw != 0) as i128),
            RegType::Int => Num::Int(raw as u16 as i16 as i128),
            RegType::Uint => Num::Int(raw as u16 as i128),
            RegType::Dint => Num::Int(raw as u32 as i32 as i128),
            RegType::Udint => Num::Int(raw as u32 as i128),
            RegType::Lint => Num::Int(raw as i64 as i128),
            RegType::Ulint => Num::Int(raw as i128),
            RegType::Real => Num::Float(f32::from_bits(raw as u32) as f64),
            RegType::Lreal => Num::Float(f64::from_bits(raw)),
        }
    }

    /// Decodes registers (`words[..self.words()]`) into a value of the variable's type.
    /// Returns the value and whether it was clamped to the variable's range.
    pub fn decode_words(&self, words: &[u16]) -> (Value, bool) {
        if let Some(bit) = self.bit {
            return (Value::Bool(words[0] >> bit & 1 != 0), false);
        }
        let raw = self.raw_num(words);
        let n = if self.scaled() {
            Num::Float(raw.as_f64() * self.scale + self.offset)
        } else {
            raw
        };
        num_to_value(self.var_ty, n)
    }

    /// Encodes a value into registers (`out[..self.words()]`). Returns whether the value
    /// had to be clamped to the register type's range.
    pub fn encode_words(&self, v: Value, out: &mut [u16]) -> bool {
        let n = value_to_num(v);
        let n = if self.scaled() {
            Num::Float((n.as_f64() - self.offset) / self.scale)
        } else {
            n
        };
        let (bits, clamped) = match self.reg {
            RegType::Real => ((n.as_f64() as f32).to_bits() as u64, false),
            RegType::Lreal => (n.as_f64().to_bits(), false),
            reg => {
                let (lo, hi) = match reg {
                    RegType::Bool => (0, 1),
                    RegType::Int => (i16::MIN as i128, i16::MAX as i128),
                    RegType::Uint => (0, u16::MAX as i128),
                    RegType::Dint => (i32::MIN as i128, i32::MAX as i128),
                    RegType::Udint => (0, u32::MAX as i128),
                    RegType::Lint => (i64::MIN as i128, i64::MAX as i128),
                    _ => (0, u64::MAX as i128),
                };
                let (i, c) = match n {
                    Num::Int(i) if reg == RegType::Bool => ((i != 0) as i128, false),
                    Num::Float(f) if reg == RegType::Bool => ((f != 0.0) as i128, false),
                    Num::Int(i) => saturate_int(i, lo, hi),
                    Num::Float(f) => saturate_f64(f, lo, hi),
                };
                (i as u64, c)
            }
        };
        self.scatter(bits, out);
        clamped
    }

    /// Decodes a coil or discrete input.
    pub fn decode_bit(&self, bit: bool) -> Value {
        num_to_value(self.var_ty, Num::Int(bit as i128)).0
    }

    /// Encodes a value into a coil: true when non-zero.
    pub fn encode_bit(&self, v: Value) -> bool {
        value_to_num(v).as_f64() != 0.0
    }

    /// Converts a configured substitute number into the variable's type.
    pub fn substitute_value(&self, x: f64) -> Value {
        num_to_value(self.var_ty, Num::Float(x)).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec(reg: RegType, order: WordOrder, ty: IecType) -> Codec {
        Codec::plain(reg, order, ty)
    }

    #[test]
    fn the_four_orders_lay_out_0xaabbccdd_as_named() {
        let cases = [
            (WordOrder::Abcd, [0xAABB, 0xCCDD]),
            (WordOrder::Cdab, [0xCCDD, 0xAABB]),
            (WordOrder::Badc, [0xBBAA, 0xDDCC]),
            (WordOrder::Dcba, [0xDDCC, 0xBBAA]),
        ];
        for (order, want) in cases {
            let c = codec(RegType::Udint, order, IecType::Udint);
            let mut out = [0u16; 2];
            c.encode_words(Value::UInt(IecType::Udint, 0xAABB_CCDD), &mut out);
            assert_eq!(out, want, "{order}");
            assert_eq!(
                c.decode_words(&out).0,
                Value::UInt(IecType::Udint, 0xAABB_CCDD)
            );
        }
    }

    #[test]
    fn sixty_four_bit_values_round_trip_in_every_order() {
        for order in [
            WordOrder::Abcd,
            WordOrder::Cdab,
            WordOrder::Badc,
            WordOrder::Dcba,
        ] {
            let c = codec(RegType::Lreal, order, IecType::Lreal);
            let mut out = [0u16; 4];
            c.encode_words(Value::Lreal(-1234.5678), &mut out);
            assert_eq!(c.decode_words(&out).0, Value::Lreal(-1234.5678), "{order}");
        }
        let c = codec(RegType::Lint, WordOrder::Abcd, IecType::Lint);
        let mut out = [0u16; 4];
        c.encode_words(Value::Int(IecType::Lint, 0x0102_0304_0506_0708), &mut out);
        assert_eq!(out, [0x0102, 0x0304, 0x0506, 0x0708]);
    }

    #[test]
    fn float_in_abcd_matches_ieee_big_endian() {
        let c = codec(RegType::Real, WordOrder::Abcd, IecType::Real);
        let mut out = [0u16; 2];
        c.encode_words(Value::Real(1.0), &mut out);
        assert_eq!(out, [0x3F80, 0x0000]);
    }

    #[test]
    fn scaling_maps_raw_tenths_to_engineering_units_and_back() {
        let mut c = codec(RegType::Int, WordOrder::Abcd, IecType::Real);
        c.scale = 0.1;
        c.offset = -5.0;
        let (v, clamped) = c.decode_words(&[(-123i16) as u16]);
        assert!(!clamped);
        assert!((v.as_f64() - (-17.3)).abs() < 1e-5, "{v}");
        let mut out = [0u16; 1];
        c.encode_words(Value::Real(-17.3), &mut out);
        assert_eq!(out[0] as i16, -123);
    }

    #[test]
    fn out_of_range_values_saturate_and_report_it() {
        let c = codec(RegType::Int, WordOrder::Abcd, IecType::Dint);
        let mut out = [0u16; 1];
        assert!(c.encode_words(Value::Int(IecType::Dint, 100_000), &mut out));
        assert_eq!(out[0] as i16, i16::MAX);
        let c = codec(RegType::Uint, WordOrder::Abcd, IecType::Sint);
        let (v, clamped) = c.decode_words(&[300]);
        assert!(clamped);
        assert_eq!(v, Value::Int(IecType::Sint, 127));
        let c = codec(RegType::Real, WordOrder::Abcd, IecType::Int);
        let mut w = [0u16; 2];
        codec(RegType::Real, WordOrder::Abcd, IecType::Real)
            .encode_words(Value::Real(f32::NAN), &mut w);
        assert_eq!(c.decode_words(&w), (Value::Int(IecType::Int, 0), true));
    }

    #[test]
    fn bool_from_a_register_bit() {
        let mut c = codec(RegType::Uint, WordOrder::Abcd, IecType::Bool);
        c.bit = Some(3);
        assert_eq!(c.decode_words(&[0b1000]).0, Value::Bool(true));
        assert_eq!(c.decode_words(&[0b0111]).0, Value::Bool(false));
    }

    #[test]
    fn bit_strings_take_unsigned_registers_of_their_width() {
        let word = codec(
            RegType::default_for(IecType::Word),
            WordOrder::Abcd,
            IecType::Word,
        );
        let mut out = [0u16; 1];
        word.encode_words(Value::UInt(IecType::Word, 0xBEEF), &mut out);
        assert_eq!(out, [0xBEEF]);
        assert_eq!(
            word.decode_words(&[0xFFFF]),
            (Value::UInt(IecType::Word, 0xFFFF), false)
        );
        let lword = codec(
            RegType::default_for(IecType::Lword),
            WordOrder::Abcd,
            IecType::Lword,
        );
        let mut out = [0u16; 4];
        lword.encode_words(Value::UInt(IecType::Lword, u64::MAX), &mut out);
        assert_eq!(
            lword.decode_words(&out).0,
            Value::UInt(IecType::Lword, u64::MAX)
        );
        let byte = codec(RegType::Uint, WordOrder::Abcd, IecType::Byte);
        assert_eq!(
            byte.decode_words(&[300]),
            (Value::UInt(IecType::Byte, 255), true)
        );
    }

    #[test]
    fn signed_register_into_unsigned_variable_clamps_at_zero() {
        let c = codec(RegType::Int, WordOrder::Abcd, IecType::Uint);
        assert_eq!(
            c.decode_words(&[0xFFFF]),
            (Value::UInt(IecType::Uint, 0), true)
        );
    }
}
