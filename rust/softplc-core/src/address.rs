//! IEC 61131-3 direct addresses (`%IX0.0`, `%QW3`, `%MD10`, ...).
//!
//! Layout follows the byte-addressed convention (CODESYS): the index of a word,
//! double word or long word counts in units of its own size, so `%IW3` covers bytes
//! 6 and 7 of the input area and overlaps `%IB6`, `%IB7` and `%IX6.0`..`%IX7.7`.

use std::fmt;

/// One of the three process-image areas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    /// Inputs (`%I`), written by drivers, read by programs.
    Input,
    /// Outputs (`%Q`), written by programs, read by drivers.
    Output,
    /// Memory (`%M`), internal to programs.
    Memory,
}

impl Area {
    /// The area letter (`I`, `Q`, `M`).
    pub fn letter(self) -> char {
        match self {
            Area::Input => 'I',
            Area::Output => 'Q',
            Area::Memory => 'M',
        }
    }

    /// Index 0, 1, 2 for arrays indexed by area.
    pub fn index(self) -> usize {
        match self {
            Area::Input => 0,
            Area::Output => 1,
            Area::Memory => 2,
        }
    }

    /// The word a user reads (`input`, `output`, `memory`).
    pub fn word(self) -> &'static str {
        match self {
            Area::Input => "input",
            Area::Output => "output",
            Area::Memory => "memory",
        }
    }

    /// Parses `I`/`Q`/`M` or `input`/`output`/`memory`.
    pub fn parse(s: &str) -> Option<Area> {
        match s.to_ascii_lowercase().as_str() {
            "i" | "input" | "inputs" => Some(Area::Input),
            "q" | "output" | "outputs" => Some(Area::Output),
            "m" | "memory" => Some(Area::Memory),
            _ => None,
        }
    }

    /// All areas in order.
    pub const ALL: [Area; 3] = [Area::Input, Area::Output, Area::Memory];
}

/// The size part of a direct address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    /// A bit (`X`), with a bit number 0..=7.
    Bit,
    /// A byte (`B`).
    Byte,
    /// A 16-bit word (`W`).
    Word,
    /// A 32-bit double word (`D`).
    Double,
    /// A 64-bit long word (`L`).
    Long,
}

impl Size {
    /// Bytes covered (a bit covers part of one byte; reports 1).
    pub fn bytes(self) -> usize {
        match self {
            Size::Bit | Size::Byte => 1,
            Size::Word => 2,
            Size::Double => 4,
            Size::Long => 8,
        }
    }

    /// The size letter.
    pub fn letter(self) -> char {
        match self {
            Size::Bit => 'X',
            Size::Byte => 'B',
            Size::Word => 'W',
            Size::Double => 'D',
            Size::Long => 'L',
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Size::Bit => "a bit",
            Size::Byte => "a byte",
            Size::Word => "a 16-bit word",
            Size::Double => "a 32-bit double word",
            Size::Long => "a 64-bit long word",
        }
    }
}

/// A parsed direct address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Address {
    /// Area.
    pub area: Area,
    /// Size.
    pub size: Size,
    /// Index in units of `size` (for bits: the byte number).
    pub index: u32,
    /// Bit number for `Size::Bit`, else 0.
    pub bit: u8,
}

/// Why a string is not a valid direct address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressError {
    /// The text as given.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid address {:?}: {}", self.text, self.reason)
    }
}

impl std::error::Error for AddressError {}

/// Largest byte offset an address may reach (16 MiB per area is far beyond any PLC).
pub const MAX_AREA_BYTES: u64 = 1 << 24;

impl Address {
    /// Parses `%IX0.0`, `%QB1`, `%IW3`, `%MD2`, `%ML4` (case-insensitive, `%` required).
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let err = |reason: &str| AddressError {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let t = text.trim().to_ascii_uppercase();
        let rest = t
            .strip_prefix('%')
            .ok_or_else(|| err("a direct address starts with % (for example %IX0.0)"))?;
        let mut chars = rest.chars();
        let area = match chars.next() {
            Some('I') => Area::Input,
            Some('Q') => Area::Output,
            Some('M') => Area::Memory,
            _ => return Err(err("the area must be I, Q or M")),
        };
        let rest = chars.as_str();
        let (size, rest) = match rest.chars().next() {
            Some('X') => (Size::Bit, &rest[1..]),
            Some('B') => (Size::Byte, &rest[1..]),
            Some('W') => (Size::Word, &rest[1..]),
            Some('D') => (Size::Double, &rest[1..]),
            Some('L') => (Size::Long, &rest[1..]),
            Some(c) if c.is_ascii_digit() => (Size::Bit, rest),
            _ => return Err(err("the size must be X, B, W, D or L")),
        };
        let (index_text, bit_text) = match rest.split_once('.') {
            Some((a, b)) => (a, Some(b)),
            None => (rest, None),
        };
        let index: u32 = index_text
            .parse()
            .map_err(|_| err("expected a number after the size letter"))?;
        let bit = match (size, bit_text) {
            (Size::Bit, Some(b)) => {
                let bit: u8 = b.parse().map_err(|_| err("the bit number must be 0..7"))?;
                if bit > 7 {
                    return Err(err("the bit number must be 0..7"));
                }
                bit
            }
            (Size::Bit, None) => return Err(err("a bit address needs a bit number, as in %IX0.3")),
            (_, Some(_)) => return Err(err("only bit (X) addresses take a .bit suffix")),
            (_, None) => 0,
        };
        let a = Address {
            area,
            size,
            index,
            bit,
        };
        if a.byte_offset() as u64 + size.bytes() as u64 > MAX_AREA_BYTES {
            return Err(err("the address is beyond the 16 MiB area limit"));
        }
        Ok(a)
    }

    /// Byte offset of the first byte in the area.
    pub fn byte_offset(&self) -> usize {
        self.index as usize
            * if self.size == Size::Bit {
                1
            } else {
                self.size.bytes()
            }
    }

    /// The address of a variable of `size` at `byte_offset`/`bit`.
    pub fn at(area: Area, size: Size, byte_offset: usize, bit: u8) -> Address {
        let index = if size == Size::Bit {
            byte_offset
        } else {
            byte_offset / size.bytes()
        } as u32;
        Address {
            area,
            size,
            index,
            bit,
        }
    }

    /// True when the two addresses share at least one bit.
    pub fn overlaps(&self, other: &Address) -> bool {
        if self.area != other.area {
            return false;
        }
        let (a0, a1) = (self.byte_offset(), self.byte_offset() + self.size.bytes());
        let (b0, b1) = (
            other.byte_offset(),
            other.byte_offset() + other.size.bytes(),
        );
        if a1 <= b0 || b1 <= a0 {
            return false;
        }
        !(self.size == Size::Bit && other.size == Size::Bit && self.bit != other.bit)
    }

    /// Explains which size letter a type needs, for error messages.
    pub fn size_mismatch(&self, want: Size) -> String {
        format!(
            "{} is {}, but the type needs {} (%{}{}...)",
            self,
            self.size.describe(),
            want.describe(),
            self.area.letter(),
            want.letter()
        )
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.size {
            Size::Bit => write!(f, "%{}X{}.{}", self.area.letter(), self.index, self.bit),
            s => write!(f, "%{}{}{}", self.area.letter(), s.letter(), self.index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_size() {
        assert_eq!(Address::parse("%IX0.3").unwrap().bit, 3);
        assert_eq!(Address::parse("%qw3").unwrap().byte_offset(), 6);
        assert_eq!(Address::parse("%MD2").unwrap().byte_offset(), 8);
        assert_eq!(Address::parse("%ML4").unwrap().byte_offset(), 32);
        assert_eq!(Address::parse("%IB1").unwrap().to_string(), "%IB1");
    }

    #[test]
    fn rejects_malformed_addresses_with_a_reason() {
        for bad in ["IX0.0", "%ZX0.0", "%IX0", "%IX0.8", "%IW1.2", "%IWx", "%I"] {
            let e = Address::parse(bad).unwrap_err();
            assert_eq!(e.text, bad);
        }
    }

    #[test]
    fn word_overlaps_its_bytes_and_bits_but_not_neighbours() {
        let w = Address::parse("%IW3").unwrap();
        assert!(w.overlaps(&Address::parse("%IB7").unwrap()));
        assert!(w.overlaps(&Address::parse("%IX6.5").unwrap()));
        assert!(!w.overlaps(&Address::parse("%IB8").unwrap()));
        assert!(!w.overlaps(&Address::parse("%QW3").unwrap()));
        let b0 = Address::parse("%IX0.0").unwrap();
        assert!(!b0.overlaps(&Address::parse("%IX0.1").unwrap()));
    }
}
