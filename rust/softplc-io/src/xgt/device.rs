//! Device names: what users write (`D100`, `M172C`, `P0010A`, `%MW100`, `%IX0.2.5`),
//! the [`Address`] it means, and the name that goes on the wire.
//!
//! Direct variables are `%` + device letter + size letter (X/B/W/D/L) + address, and
//! the address counts in units of the size: `%DW1234` is word 1234, `%DB2468` its first
//! byte, `%DD617` the double word of words 1234-1235, `%MX2764` bit 2764. XGK-family
//! CPUs (XGK, XGB-MK) also take the user forms of XG5000:
//! - bit devices P, M, L, K, F: the last character of a bit name is the bit in hex, the
//!   rest the word in decimal, so `M172C` is bit 12 of word 172 = `%MX2764` (16 bits a
//!   word) and `P0010A` is `%PX170`; any other type takes the word: `M172` as a word is
//!   `%MW172`, as bytes `%MB344` (byte = word * 2);
//! - word devices D, N, R, Z: `D100` is a word, `D100.C` bit 12 of it (`%DX1612`);
//! - T and C: as a bit the contact (`T5` = `%TX5`), as a word the current value
//!   (`%TW5`);
//! - S and U: words only (their dotted forms number steps and slots, not bits).
//!
//! An address is kept as a bit position in the device's flat memory, so that one
//! mapping's values and continuous byte ranges line up; T and C contacts are numbered
//! in their own plane. XGI/XGR/XGB-IEC hierarchical I/Q names (`%IX0.2.5`) are kept as
//! paths and only travel as individual names.
//!
//! Some tools write XGK bit names with a hex bit digit (`%MX172C` for `%MX2764`).
//! [`Naming::hex_bit`] selects that form for bit names on the wire and when reading
//! direct variables; only a real PLC can tell which one it expects.

use std::fmt;

use super::codec::{DataType, Name};
use super::cpu::{Cpu, Family};
use super::error::NakCode;

/// A device (memory area) of an XGT PLC, by its letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    /// P: I/O relay (XGK).
    P,
    /// M: internal relay (XGK) or memory (IEC).
    M,
    /// L: link relay (XGK).
    L,
    /// K: keep relay (XGK).
    K,
    /// F: special relay, system flags (XGK).
    F,
    /// T: timer; bit = contact, word = current value (XGK).
    T,
    /// C: counter; bit = contact, word = current value (XGK).
    C,
    /// D: data register (XGK).
    D,
    /// S: step controller (XGK).
    S,
    /// N: communication data register (XGK).
    N,
    /// R: file register (XGK).
    R,
    /// U: special module register (XGK).
    U,
    /// Z: index register (XGK).
    Z,
    /// I: input (IEC).
    I,
    /// Q: output (IEC).
    Q,
}

/// How XGK user forms number a device's bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// P, M, L, K, F: word digits then a hex bit digit.
    Bits,
    /// T, C: the bit is the contact, the word the current value.
    Counter,
    /// D, N, R, Z: `D100.C` for a bit.
    Words,
    /// S, U: words only in user forms.
    Special,
    /// I, Q: IEC only, no user forms.
    Iec,
}

/// One row per device: which families have it, which carry continuous transfers.
struct Row {
    device: Device,
    letter: u8,
    xgk: bool,
    iec: bool,
    continuous: bool,
    kind: Kind,
    what: &'static str,
}

const fn row(
    device: Device,
    letter: u8,
    (xgk, iec, continuous): (bool, bool, bool),
    kind: Kind,
    what: &'static str,
) -> Row {
    Row {
        device,
        letter,
        xgk,
        iec,
        continuous,
        kind,
        what,
    }
}

/// Devices by family. Continuous transfers: P, M, L, K, T, C, D, N, F per LS's manual
/// (an XGK list); on IEC CPUs softplc allows them on M only, the one letter both lists
/// share (I and Q are named hierarchically there).
const DEVICES: [Row; 15] = [
    row(
        Device::P,
        b'P',
        (true, false, true),
        Kind::Bits,
        "I/O relay",
    ),
    row(
        Device::M,
        b'M',
        (true, true, true),
        Kind::Bits,
        "internal relay / memory",
    ),
    row(
        Device::L,
        b'L',
        (true, false, true),
        Kind::Bits,
        "link relay",
    ),
    row(
        Device::K,
        b'K',
        (true, false, true),
        Kind::Bits,
        "keep relay",
    ),
    row(
        Device::F,
        b'F',
        (true, false, true),
        Kind::Bits,
        "special relay",
    ),
    row(Device::T, b'T', (true, false, true), Kind::Counter, "timer"),
    row(
        Device::C,
        b'C',
        (true, false, true),
        Kind::Counter,
        "counter",
    ),
    row(
        Device::D,
        b'D',
        (true, false, true),
        Kind::Words,
        "data register",
    ),
    row(
        Device::S,
        b'S',
        (true, false, false),
        Kind::Special,
        "step controller",
    ),
    row(
        Device::N,
        b'N',
        (true, false, true),
        Kind::Words,
        "communication data",
    ),
    row(
        Device::R,
        b'R',
        (true, false, false),
        Kind::Words,
        "file register",
    ),
    row(
        Device::U,
        b'U',
        (true, false, false),
        Kind::Special,
        "special module register",
    ),
    row(
        Device::Z,
        b'Z',
        (true, false, false),
        Kind::Words,
        "index register",
    ),
    row(Device::I, b'I', (false, true, false), Kind::Iec, "input"),
    row(Device::Q, b'Q', (false, true, false), Kind::Iec, "output"),
];

impl Device {
    /// Every device, in table order.
    pub const ALL: [Device; 15] = [
        Device::P,
        Device::M,
        Device::L,
        Device::K,
        Device::F,
        Device::T,
        Device::C,
        Device::D,
        Device::S,
        Device::N,
        Device::R,
        Device::U,
        Device::Z,
        Device::I,
        Device::Q,
    ];

    fn row(self) -> &'static Row {
        // DEVICES holds one row per variant in declaration order.
        &DEVICES[self as usize]
    }

    /// The device letter.
    pub fn letter(self) -> char {
        self.row().letter as char
    }

    /// The device with letter `c` (upper case).
    pub fn from_letter(c: u8) -> Option<Device> {
        DEVICES.iter().find(|r| r.letter == c).map(|r| r.device)
    }

    /// What the device holds, in a few words.
    pub fn what(self) -> &'static str {
        self.row().what
    }

    /// True when CPUs of type `cpu` have this device.
    pub fn exists(self, cpu: Cpu) -> bool {
        match cpu.family() {
            Family::Xgk => self.row().xgk,
            Family::Iec => self.row().iec,
        }
    }

    /// True when the device carries continuous (byte block) transfers on `cpu`.
    pub fn continuous(self, cpu: Cpu) -> bool {
        self.exists(cpu) && self.row().continuous
    }

    /// The devices of a CPU type, as letters (for messages).
    pub fn letters(cpu: Cpu) -> String {
        let letters: Vec<String> = Device::ALL
            .iter()
            .filter(|d| d.exists(cpu))
            .map(|d| d.letter().to_string())
            .collect();
        letters.join(", ")
    }

    /// True for T and C, whose bits (contacts) are not bits of their words.
    pub fn has_contacts(self) -> bool {
        self.row().kind == Kind::Counter
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// How names are read and written for one PLC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Naming {
    cpu: Cpu,
    hex_bit: bool,
}

impl Naming {
    /// Names for a PLC of type `cpu`, bit names in decimal (`%MX2764`).
    pub fn new(cpu: Cpu) -> Naming {
        Naming {
            cpu,
            hex_bit: false,
        }
    }

    /// Bit names of XGK-family CPUs as word + hex bit digit (`%MX172C`). Refused for
    /// IEC CPUs, whose bit names have no such form.
    pub fn hex_bit(cpu: Cpu) -> Result<Naming, NameErrorKind> {
        if cpu.family() != Family::Xgk {
            return Err(NameErrorKind::HexBitOnIec(cpu));
        }
        Ok(Naming { cpu, hex_bit: true })
    }

    /// The CPU type.
    pub fn cpu(&self) -> Cpu {
        self.cpu
    }

    /// True when bit names use the hex bit digit.
    pub fn uses_hex_bit(&self) -> bool {
        self.hex_bit
    }

    /// True when bit names of `device` use the hex bit digit (not T/C contacts, which
    /// are plain numbers).
    fn hex_for(&self, device: Device) -> bool {
        self.hex_bit && !device.has_contacts()
    }
}

/// Where an address is in its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Location {
    /// A bit position in the device's flat memory (for T/C bits: the contact number).
    Bit(u64),
    /// A hierarchical IEC name `base.slot.index` (`%IX0.2.5`).
    Path([u32; 3]),
}

/// A typed address in a PLC: device, data type, location.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    /// The device.
    pub device: Device,
    /// The data type of one value.
    pub ty: DataType,
    /// Where the first value is.
    pub loc: Location,
}

/// Why a device name is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameErrorKind {
    /// An empty name.
    Empty,
    /// A character that has no place in a device name.
    Character(char),
    /// A letter that is not a device of the CPU type.
    UnknownDevice(char, Cpu),
    /// A direct variable without a size letter X, B, W, D or L.
    SizeLetter(Option<char>),
    /// A direct variable whose size letter is not the mapping's type.
    TypeMismatch {
        /// The type the name gives.
        name: DataType,
        /// The type the mapping asks for.
        mapping: DataType,
    },
    /// No number, or one that is not of the expected form.
    Number(&'static str),
    /// A number too large for any name.
    TooLarge,
    /// A user form (`D100`) on a CPU that only takes direct variables.
    UserFormOnIec(Cpu),
    /// A name on the wire that is not a direct variable (the protocol carries no other).
    NotDirect,
    /// The hex bit option on a CPU whose bit names have no hex form.
    HexBitOnIec(Cpu),
    /// A bit of a device that has no user form for bits.
    NoBitForm(Device),
    /// A hierarchical name (`0.2.5`) on a device or CPU that has none.
    Path(Device),
    /// A value that does not start on a multiple of its size, on a device without
    /// continuous transfers, so no name can carry it.
    Unaligned(DataType),
    /// The name on the wire would be longer than 16 characters.
    TooLong(usize),
}

impl NameErrorKind {
    /// The NAK code a server answers a request with this name with.
    pub fn nak_code(self) -> NakCode {
        match self {
            NameErrorKind::SizeLetter(_) | NameErrorKind::TypeMismatch { .. } => NakCode::DATA_TYPE,
            NameErrorKind::TooLarge | NameErrorKind::Unaligned(_) => NakCode::AREA_EXCEEDED,
            NameErrorKind::Empty | NameErrorKind::TooLong(_) => NakCode::NAME_LENGTH,
            _ => NakCode::DEVICE_NOT_SERVED,
        }
    }
}

impl fmt::Display for NameErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NameErrorKind::Empty => f.write_str("empty name"),
            NameErrorKind::Character(c) => write!(f, "character {c:?} has no place in a device name"),
            NameErrorKind::UnknownDevice(c, cpu) => write!(
                f,
                "{c:?} is not a device of {cpu} CPUs (devices: {})",
                Device::letters(cpu)
            ),
            NameErrorKind::SizeLetter(c) => match c {
                Some(c) => write!(f, "size letter {c:?} is not X, B, W, D or L"),
                None => f.write_str("a direct variable needs a size letter X, B, W, D or L after the device"),
            },
            NameErrorKind::TypeMismatch { name, mapping } => write!(
                f,
                "the name is a {name} name but the mapping's type is {mapping}"
            ),
            NameErrorKind::Number(hint) => f.write_str(hint),
            NameErrorKind::TooLarge => f.write_str("the address is too large"),
            NameErrorKind::NotDirect => {
                f.write_str("names on the wire are direct variables, starting with %")
            }
            NameErrorKind::UserFormOnIec(cpu) => write!(
                f,
                "{cpu} CPUs take direct variables only (%MW100, %IX0.2.5)"
            ),
            NameErrorKind::HexBitOnIec(cpu) => write!(
                f,
                "the hex bit form is for XGK-style names; {cpu} bit names are decimal"
            ),
            NameErrorKind::NoBitForm(d) => write!(
                f,
                "device {d} has no user form for a bit; write the direct variable (%{d}X...)"
            ),
            NameErrorKind::Path(d) => write!(
                f,
                "hierarchical names (base.slot.index) exist only for I and Q of IEC CPUs, not {d}"
            ),
            NameErrorKind::Unaligned(ty) => write!(
                f,
                "a {ty} must start on a multiple of its size on a device without continuous transfers"
            ),
            NameErrorKind::TooLong(n) => {
                write!(f, "the name on the wire would have {n} characters, more than 16")
            }
        }
    }
}

/// A refused device name, with the text as the user wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameError {
    /// The text.
    pub text: String,
    /// Why.
    pub kind: NameErrorKind,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "device name {:?}: {}", self.text, self.kind)
    }
}

impl std::error::Error for NameError {}

fn decimal(b: &[u8], hint: &'static str) -> Result<u64, NameErrorKind> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return Err(NameErrorKind::Number(hint));
    }
    b.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add((d - b'0') as u64))
            .ok_or(NameErrorKind::TooLarge)
    })
}

/// Word digits (possibly none: word 0) then one hex bit digit: the bit position.
fn word_hex_bit(b: &[u8], hint: &'static str) -> Result<u64, NameErrorKind> {
    let (last, word) = b.split_last().ok_or(NameErrorKind::Number(hint))?;
    let bit = (*last as char)
        .to_digit(16)
        .ok_or(NameErrorKind::Number(hint))? as u64;
    let word = if word.is_empty() {
        0
    } else {
        decimal(word, hint)?
    };
    word_bit(word, bit)
}

fn word_bit(word: u64, bit: u64) -> Result<u64, NameErrorKind> {
    word.checked_mul(16)
        .and_then(|w| w.checked_add(bit))
        .ok_or(NameErrorKind::TooLarge)
}

const HINT_DECIMAL: &str = "expected a decimal address";
const HINT_HEX_BIT: &str =
    "a bit name ends with the bit as one hex digit after the word (M172C: bit C of word 172)";
const HINT_WORD_BIT: &str = "a bit of a word device is written word.bit, bit in hex (D100.C)";

impl Address {
    /// Parses a name as a user writes it, for values of type `ty`: a direct variable
    /// (`%MW100`, whose size letter must be `ty`'s) or, on XGK-family CPUs, a user form
    /// (`D100`, `M172C`). Case is ignored. The address must be expressible on the wire,
    /// as an individual name or by a continuous transfer.
    pub fn parse(text: &str, ty: DataType, naming: &Naming) -> Result<Address, NameError> {
        Address::parse_kind(text, Some(ty), naming).map_err(|kind| NameError {
            text: text.to_string(),
            kind,
        })
    }

    /// Parses a direct variable as a client sent it (the server's side); the type is
    /// the name's size letter.
    pub fn from_wire(name: &Name, naming: &Naming) -> Result<Address, NameErrorKind> {
        Address::parse_kind(name.as_str(), None, naming)
    }

    fn parse_kind(
        text: &str,
        ty: Option<DataType>,
        naming: &Naming,
    ) -> Result<Address, NameErrorKind> {
        if text.is_empty() {
            return Err(NameErrorKind::Empty);
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '%' || *c == '.'))
        {
            return Err(NameErrorKind::Character(c));
        }
        let up = text.to_ascii_uppercase();
        let a = match (up.as_bytes(), ty) {
            ([b'%', rest @ ..], ty) => direct(rest, ty, naming)?,
            (_, None) => return Err(NameErrorKind::NotDirect),
            (rest, Some(ty)) => {
                if naming.cpu.family() == Family::Iec {
                    return Err(NameErrorKind::UserFormOnIec(naming.cpu));
                }
                user(rest, ty, naming)?
            }
        };
        a.check_expressible(naming)?;
        Ok(a)
    }

    fn check_expressible(&self, naming: &Naming) -> Result<(), NameErrorKind> {
        match self.wire_name(naming) {
            Ok(_) => Ok(()),
            Err(NameErrorKind::Unaligned(_)) if self.continuous(naming) => {
                // A continuous transfer carries it: its first byte needs a name.
                self.byte_range(1)
                    .map(|(start, _)| byte_name(self.device, start).map(|_| ()))
                    .unwrap_or(Err(NameErrorKind::TooLarge))
            }
            Err(e) => Err(e),
        }
    }

    /// The individual name on the wire (`%MW100`, `%MX2764`, or `%MX172C` with the hex
    /// bit option). Errors when the value does not start on a multiple of its size or
    /// the name would exceed 16 characters.
    pub fn wire_name(&self, naming: &Naming) -> Result<Name, NameErrorKind> {
        let d = self.device.letter();
        let t = self.ty.letter();
        let text = match self.loc {
            Location::Path([a, b, c]) => format!("%{d}{t}{a}.{b}.{c}"),
            Location::Bit(pos) => {
                let bits = self.ty.bits();
                if pos % bits != 0 {
                    return Err(NameErrorKind::Unaligned(self.ty));
                }
                let index = pos / bits;
                if self.ty == DataType::Bit && naming.hex_for(self.device) {
                    format!("%{d}{t}{}{:X}", index / 16, index % 16)
                } else {
                    format!("%{d}{t}{index}")
                }
            }
        };
        Name::new(text.as_bytes()).map_err(|_| NameErrorKind::TooLong(text.len()))
    }

    /// True when this address can be carried by a continuous (byte block) transfer:
    /// a flat address on a device that has them, and not a T/C contact.
    pub fn continuous(&self, naming: &Naming) -> bool {
        matches!(self.loc, Location::Bit(_))
            && self.device.continuous(naming.cpu)
            && !(self.device.has_contacts() && self.ty == DataType::Bit)
    }

    /// The bytes `[start, end)` that `count` values from here cover in the device's
    /// memory (None for a hierarchical name or on overflow).
    pub fn byte_range(&self, count: u64) -> Option<(u64, u64)> {
        let Location::Bit(pos) = self.loc else {
            return None;
        };
        let end_bit = count.checked_mul(self.ty.bits())?.checked_add(pos)?;
        Some((pos / 8, end_bit.div_ceil(8)))
    }

    /// The `i`-th value of a run of values from here (None past the end of the
    /// address space, or for `i > 0` of a hierarchical name).
    pub fn element(&self, i: u64) -> Option<Address> {
        let loc = match self.loc {
            Location::Bit(pos) => Location::Bit(i.checked_mul(self.ty.bits())?.checked_add(pos)?),
            Location::Path(_) if i == 0 => self.loc,
            Location::Path(_) => return None,
        };
        Some(Address { loc, ..*self })
    }
}

impl fmt::Display for Address {
    /// The direct variable in decimal form, or the byte it starts at for a value that
    /// does not start on a multiple of its size.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.device.letter();
        let t = self.ty.letter();
        match self.loc {
            Location::Path([a, b, c]) => write!(f, "%{d}{t}{a}.{b}.{c}"),
            Location::Bit(pos) if pos % self.ty.bits() == 0 => {
                write!(f, "%{d}{t}{}", pos / self.ty.bits())
            }
            Location::Bit(pos) => write!(f, "{} at %{d}B{}", self.ty, pos / 8),
        }
    }
}

/// The name of byte `byte` of `device` for a continuous transfer (`%DB2468`).
pub fn byte_name(device: Device, byte: u64) -> Result<Name, NameErrorKind> {
    let text = format!("%{}B{byte}", device.letter());
    Name::new(text.as_bytes()).map_err(|_| NameErrorKind::TooLong(text.len()))
}

fn device_of(letter: Option<&u8>, naming: &Naming) -> Result<Device, NameErrorKind> {
    let c = *letter.ok_or(NameErrorKind::Number("expected a device letter"))?;
    match Device::from_letter(c) {
        Some(d) if d.exists(naming.cpu) => Ok(d),
        _ => Err(NameErrorKind::UnknownDevice(c as char, naming.cpu)),
    }
}

/// `%` already taken: device, size letter, address.
fn direct(b: &[u8], ty: Option<DataType>, naming: &Naming) -> Result<Address, NameErrorKind> {
    let device = device_of(b.first(), naming)?;
    let size = b.get(1).copied();
    let name_ty = size
        .and_then(DataType::from_letter)
        .ok_or(NameErrorKind::SizeLetter(size.map(|c| c as char)))?;
    if let Some(mapping) = ty {
        if mapping != name_ty {
            return Err(NameErrorKind::TypeMismatch {
                name: name_ty,
                mapping,
            });
        }
    }
    let rest = &b[2..];
    let loc = if rest.contains(&b'.') {
        if naming.cpu.family() != Family::Iec || !matches!(device, Device::I | Device::Q) {
            return Err(NameErrorKind::Path(device));
        }
        let mut parts = [0u32; 3];
        let mut n = 0;
        for p in rest.split(|c| *c == b'.') {
            const HINT: &str = "a hierarchical name has three decimal parts: base.slot.index";
            let v = decimal(p, HINT)?;
            *parts.get_mut(n).ok_or(NameErrorKind::Number(HINT))? =
                u32::try_from(v).map_err(|_| NameErrorKind::TooLarge)?;
            n += 1;
        }
        if n != 3 {
            return Err(NameErrorKind::Number(
                "a hierarchical name has three decimal parts: base.slot.index",
            ));
        }
        Location::Path(parts)
    } else if name_ty == DataType::Bit && naming.hex_for(device) {
        Location::Bit(word_hex_bit(rest, HINT_HEX_BIT)?)
    } else {
        let index = decimal(rest, HINT_DECIMAL)?;
        Location::Bit(
            index
                .checked_mul(name_ty.bits())
                .ok_or(NameErrorKind::TooLarge)?,
        )
    };
    Ok(Address {
        device,
        ty: name_ty,
        loc,
    })
}

/// An XGK user form: device letter, then the address in the device's own notation.
fn user(b: &[u8], ty: DataType, naming: &Naming) -> Result<Address, NameErrorKind> {
    let device = device_of(b.first(), naming)?;
    let rest = &b[1..];
    let bit = ty == DataType::Bit;
    let words = |rest: &[u8]| word_bit(decimal(rest, HINT_DECIMAL)?, 0);
    let pos = match device.row().kind {
        Kind::Bits if bit => word_hex_bit(rest, HINT_HEX_BIT)?,
        Kind::Counter if bit => decimal(rest, HINT_DECIMAL)?,
        Kind::Words if bit => {
            let dot = rest
                .iter()
                .position(|c| *c == b'.')
                .ok_or(NameErrorKind::Number(HINT_WORD_BIT))?;
            let (word, b) = (&rest[..dot], &rest[dot + 1..]);
            if word.is_empty() || b.len() != 1 {
                return Err(NameErrorKind::Number(HINT_WORD_BIT));
            }
            word_hex_bit(&[word, b].concat(), HINT_WORD_BIT)?
        }
        Kind::Special if bit => return Err(NameErrorKind::NoBitForm(device)),
        _ => words(rest)?,
    };
    Ok(Address {
        device,
        ty,
        loc: Location::Bit(pos),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xgk() -> Naming {
        Naming::new(Cpu::Xgk)
    }

    fn wire(text: &str, ty: DataType, naming: &Naming) -> String {
        Address::parse(text, ty, naming)
            .unwrap_or_else(|e| panic!("{e}"))
            .wire_name(naming)
            .unwrap()
            .to_string()
    }

    fn err(text: &str, ty: DataType, naming: &Naming) -> NameErrorKind {
        Address::parse(text, ty, naming).unwrap_err().kind
    }

    #[test]
    fn the_device_table_has_one_row_per_device_in_order() {
        for (i, d) in Device::ALL.iter().enumerate() {
            assert_eq!(DEVICES[i].device, *d);
            assert_eq!(Device::from_letter(d.letter() as u8), Some(*d));
        }
        assert_eq!(Device::letters(Cpu::Xgi), "M, I, Q");
        assert_eq!(
            Device::letters(Cpu::XgbMk),
            "P, M, L, K, F, T, C, D, S, N, R, U, Z"
        );
    }

    #[test]
    fn continuous_devices_are_the_ones_of_the_manual() {
        let cont: String = Device::ALL
            .iter()
            .filter(|d| d.continuous(Cpu::Xgk))
            .map(|d| d.letter())
            .collect();
        assert_eq!(cont, "PMLKFTCDN");
        let cont: String = Device::ALL
            .iter()
            .filter(|d| d.continuous(Cpu::XgbIec))
            .map(|d| d.letter())
            .collect();
        assert_eq!(cont, "M");
    }

    #[test]
    fn xgk_bit_forms_become_word_times_16_plus_bit() {
        assert_eq!(wire("M172C", DataType::Bit, &xgk()), "%MX2764");
        assert_eq!(wire("P0010A", DataType::Bit, &xgk()), "%PX170");
        assert_eq!(wire("m5", DataType::Bit, &xgk()), "%MX5");
        assert_eq!(wire("D100.C", DataType::Bit, &xgk()), "%DX1612");
        assert_eq!(wire("K0", DataType::Bit, &xgk()), "%KX0");
    }

    #[test]
    fn the_hex_bit_option_keeps_the_hex_digit_on_the_wire() {
        let hex = Naming::hex_bit(Cpu::Xgk).unwrap();
        assert_eq!(wire("M172C", DataType::Bit, &hex), "%MX172C");
        assert_eq!(wire("%MX172C", DataType::Bit, &hex), "%MX172C");
        let a = Address::parse("%MX172C", DataType::Bit, &hex).unwrap();
        assert_eq!(a, Address::parse("%MX2764", DataType::Bit, &xgk()).unwrap());
        // T and C contacts are plain numbers either way.
        assert_eq!(wire("T12", DataType::Bit, &hex), "%TX12");
        // Words are unaffected.
        assert_eq!(wire("%MW172", DataType::Word, &hex), "%MW172");
        assert_eq!(
            Naming::hex_bit(Cpu::Xgi),
            Err(NameErrorKind::HexBitOnIec(Cpu::Xgi))
        );
        // Without the option a hex digit in a direct variable is an error.
        assert!(matches!(
            err("%MX172C", DataType::Bit, &xgk()),
            NameErrorKind::Number(_)
        ));
    }

    #[test]
    fn word_user_forms_count_words_and_bytes_are_words_times_two() {
        assert_eq!(wire("D100", DataType::Word, &xgk()), "%DW100");
        assert_eq!(wire("D1234", DataType::Byte, &xgk()), "%DB2468");
        assert_eq!(wire("D1234", DataType::DWord, &xgk()), "%DD617");
        assert_eq!(wire("D1232", DataType::LWord, &xgk()), "%DL308");
        assert_eq!(wire("M172", DataType::Word, &xgk()), "%MW172");
        assert_eq!(wire("P0010", DataType::Word, &xgk()), "%PW10");
        assert_eq!(wire("T5", DataType::Word, &xgk()), "%TW5");
        assert_eq!(wire("C7", DataType::Bit, &xgk()), "%CX7");
        assert_eq!(wire("U3", DataType::Word, &xgk()), "%UW3");
        let a = Address::parse("D1234", DataType::Word, &xgk()).unwrap();
        assert_eq!(a.byte_range(1), Some((2468, 2470)));
    }

    #[test]
    fn direct_variables_are_normalised() {
        assert_eq!(wire("%mw0100", DataType::Word, &xgk()), "%MW100");
        assert_eq!(wire("%DB2468", DataType::Byte, &xgk()), "%DB2468");
        let xgi = Naming::new(Cpu::Xgi);
        assert_eq!(wire("%IX0.2.5", DataType::Bit, &xgi), "%IX0.2.5");
        assert_eq!(wire("%MD10", DataType::DWord, &xgi), "%MD10");
        let a = Address::parse("%MD10", DataType::DWord, &xgi).unwrap();
        assert_eq!(a.byte_range(2), Some((40, 48)));
    }

    #[test]
    fn an_unaligned_value_is_refused_unless_a_continuous_transfer_carries_it() {
        let a = Address::parse("D101", DataType::DWord, &xgk()).unwrap();
        assert_eq!(
            a.wire_name(&xgk()),
            Err(NameErrorKind::Unaligned(DataType::DWord))
        );
        assert!(a.continuous(&xgk()));
        assert_eq!(a.byte_range(1), Some((202, 206)));
        assert_eq!(a.to_string(), "double word at %DB202");
        assert_eq!(
            err("R101", DataType::DWord, &xgk()),
            NameErrorKind::Unaligned(DataType::DWord)
        );
    }

    #[test]
    fn names_the_protocol_cannot_express_are_refused_with_the_reason() {
        let n = xgk();
        assert_eq!(err("", DataType::Word, &n), NameErrorKind::Empty);
        assert_eq!(
            err("D 100", DataType::Word, &n),
            NameErrorKind::Character(' ')
        );
        assert_eq!(
            err("D100é", DataType::Word, &n),
            NameErrorKind::Character('é')
        );
        assert_eq!(
            err("W100", DataType::Word, &n),
            NameErrorKind::UnknownDevice('W', Cpu::Xgk)
        );
        assert_eq!(
            err("%IX0.0.1", DataType::Bit, &n),
            NameErrorKind::UnknownDevice('I', Cpu::Xgk)
        );
        assert_eq!(
            err("%MQ100", DataType::Word, &n),
            NameErrorKind::SizeLetter(Some('Q'))
        );
        assert_eq!(
            err("%M", DataType::Word, &n),
            NameErrorKind::SizeLetter(None)
        );
        assert_eq!(
            err("%MW100", DataType::DWord, &n),
            NameErrorKind::TypeMismatch {
                name: DataType::Word,
                mapping: DataType::DWord
            }
        );
        assert!(matches!(
            err("%MW", DataType::Word, &n),
            NameErrorKind::Number(_)
        ));
        assert!(matches!(
            err("M172C", DataType::Word, &n),
            NameErrorKind::Number(_)
        ));
        assert!(matches!(
            err("MG", DataType::Bit, &n),
            NameErrorKind::Number(_)
        ));
        assert!(matches!(
            err("D100", DataType::Bit, &n),
            NameErrorKind::Number(_)
        ));
        assert!(matches!(
            err("D100.CC", DataType::Bit, &n),
            NameErrorKind::Number(_)
        ));
        for bad in ["D.5", "%", "M", "D1.", "%MX"] {
            assert!(
                matches!(err(bad, DataType::Bit, &n), NameErrorKind::Number(_)),
                "{bad}"
            );
        }
        assert_eq!(
            err("S10", DataType::Bit, &n),
            NameErrorKind::NoBitForm(Device::S)
        );
        assert_eq!(
            err("%MX0.1.2", DataType::Bit, &n),
            NameErrorKind::Path(Device::M)
        );
        assert_eq!(
            err("D99999999999999999999999", DataType::Word, &n),
            NameErrorKind::TooLarge
        );
        assert_eq!(
            wire("D9999999999999", DataType::Word, &n),
            "%DW9999999999999"
        );
        assert_eq!(
            err("D99999999999999", DataType::Word, &n),
            NameErrorKind::TooLong(17)
        );
        let xgi = Naming::new(Cpu::Xgi);
        assert_eq!(
            err("D100", DataType::Word, &xgi),
            NameErrorKind::UserFormOnIec(Cpu::Xgi)
        );
        assert!(matches!(
            err("%IX0.2", DataType::Bit, &xgi),
            NameErrorKind::Number(_)
        ));
        assert!(matches!(
            err("%IX0.2.5.1", DataType::Bit, &xgi),
            NameErrorKind::Number(_)
        ));
        let long = "D".to_string() + &"1".repeat(199);
        assert_eq!(err(&long, DataType::Word, &n), NameErrorKind::TooLarge);
        let e = Address::parse("W100", DataType::Word, &n)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("device name \"W100\": "), "{e}");
    }

    #[test]
    fn the_server_reads_direct_variables_only_with_their_own_type() {
        let n = xgk();
        let name = Name::new(b"%DW1100").unwrap();
        let a = Address::from_wire(&name, &n).unwrap();
        assert_eq!(a.ty, DataType::Word);
        assert_eq!(a.loc, Location::Bit(1100 * 16));
        let user = Name::new(b"D1100").unwrap();
        assert_eq!(Address::from_wire(&user, &n), Err(NameErrorKind::NotDirect));
        let bad = Name::new(b"%XW10").unwrap();
        assert_eq!(
            Address::from_wire(&bad, &n).unwrap_err().nak_code(),
            NakCode::DEVICE_NOT_SERVED
        );
    }

    #[test]
    fn elements_step_by_the_size_of_the_type() {
        let a = Address::parse("%MW10", DataType::Word, &xgk()).unwrap();
        assert_eq!(
            a.element(3).unwrap().wire_name(&xgk()).unwrap().as_str(),
            "%MW13"
        );
        let p = Address::parse("%IX0.2.5", DataType::Bit, &Naming::new(Cpu::Xgi)).unwrap();
        assert_eq!(p.element(0), Some(p));
        assert_eq!(p.element(1), None);
        let far = Address {
            device: Device::D,
            ty: DataType::LWord,
            loc: Location::Bit(u64::MAX - 10),
        };
        assert_eq!(far.element(1), None);
        assert_eq!(far.byte_range(1), None);
    }
}
