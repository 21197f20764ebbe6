//! What can go wrong with an XGT frame: LS's own error codes ([`NakCode`], carried by a
//! negative answer), frames that cannot be decoded ([`DecodeError`], each with the code
//! a server answers it with), and values that cannot be encoded ([`EncodeError`]).
//!
//! All three are small `Copy` values: a server decodes hostile frames on its I/O thread
//! and a client reports a PLC's NAK in its status without allocating.

use std::fmt;

use super::codec::DataType;

/// An error code of LS's negative answer (the u16 after a non-zero error status).
/// Unknown codes are kept with their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NakCode(u16);

impl NakCode {
    /// 0x0001: more than 16 blocks (softplc also answers it to 0 blocks).
    pub const TOO_MANY_BLOCKS: NakCode = NakCode(0x0001);
    /// 0x0002: the data type is not X, B, W, D or L.
    pub const DATA_TYPE: NakCode = NakCode(0x0002);
    /// 0x0003: the device is not served.
    pub const DEVICE_NOT_SERVED: NakCode = NakCode(0x0003);
    /// 0x0004: the address is past the end of the device's area.
    pub const AREA_EXCEEDED: NakCode = NakCode(0x0004);
    /// 0x0005: more than 1,400 bytes in one block.
    pub const BLOCK_TOO_LARGE: NakCode = NakCode(0x0005);
    /// 0x0006: more than 1,400 bytes in total.
    pub const TOTAL_TOO_LARGE: NakCode = NakCode(0x0006);
    /// 0x0010: device error (not in the manual; reported by LS support).
    pub const DEVICE: NakCode = NakCode(0x0010);
    /// 0x0011: bad name length (not in the manual; reported by LS support).
    pub const NAME_LENGTH: NakCode = NakCode(0x0011);
    /// 0x0012: a continuous transfer of a type other than bytes (not in the manual;
    /// reported by LS support).
    pub const CONTINUOUS_TYPE: NakCode = NakCode(0x0012);
    /// 0x0075: bad company ID.
    pub const COMPANY_ID: NakCode = NakCode(0x0075);
    /// 0x0076: bad header length.
    pub const HEADER_LENGTH: NakCode = NakCode(0x0076);
    /// 0x0077: bad header checksum (BCC).
    pub const HEADER_CHECKSUM: NakCode = NakCode(0x0077);
    /// 0x0078: bad command.
    pub const COMMAND: NakCode = NakCode(0x0078);

    /// Every code LS documents (or LS support reported), with its meaning.
    pub const KNOWN: [(NakCode, &'static str); 13] = [
        (NakCode::TOO_MANY_BLOCKS, "more than 16 blocks"),
        (NakCode::DATA_TYPE, "data type not X/B/W/D/L"),
        (NakCode::DEVICE_NOT_SERVED, "device not served"),
        (NakCode::AREA_EXCEEDED, "device area exceeded"),
        (
            NakCode::BLOCK_TOO_LARGE,
            "more than 1,400 bytes in one block",
        ),
        (NakCode::TOTAL_TOO_LARGE, "more than 1,400 bytes in total"),
        (NakCode::DEVICE, "device error"),
        (NakCode::NAME_LENGTH, "bad name length"),
        (
            NakCode::CONTINUOUS_TYPE,
            "continuous transfer of a non-byte type",
        ),
        (NakCode::COMPANY_ID, "bad company ID"),
        (NakCode::HEADER_LENGTH, "bad header length"),
        (NakCode::HEADER_CHECKSUM, "bad header checksum"),
        (NakCode::COMMAND, "bad command"),
    ];

    /// The code with number `code` (any u16: unknown codes are kept).
    pub const fn new(code: u16) -> NakCode {
        NakCode(code)
    }

    /// LS's number.
    pub const fn code(self) -> u16 {
        self.0
    }

    /// LS's meaning, or None for a code not in LS's list.
    pub fn meaning(self) -> Option<&'static str> {
        NakCode::KNOWN
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, m)| *m)
    }
}

impl fmt::Display for NakCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.meaning() {
            Some(m) => write!(f, "LS error 0x{:04X}: {m}", self.0),
            None => write!(f, "LS error 0x{:04X} (not in LS's list)", self.0),
        }
    }
}

/// Why bytes are not a valid XGT frame. Offsets count from the first byte of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the 20-byte header.
    HeaderShort(usize),
    /// The first ten bytes are neither `LSIS-XGT` nor `LGIS-GLOFA`.
    Company([u8; 10]),
    /// The BCC byte is neither 0 nor the low byte of the sum of bytes 0..19.
    Checksum {
        /// The BCC the frame carries.
        sent: u8,
        /// The sum of its header bytes.
        sum: u8,
    },
    /// The header's Length field is larger than any valid instruction.
    TooLong(usize),
    /// The header's Length field disagrees with the bytes that follow the header.
    Length {
        /// The Length field.
        header: u16,
        /// Bytes after the header.
        actual: usize,
    },
    /// The instruction ends inside a field.
    Truncated {
        /// Where the field starts.
        at: usize,
        /// Its size in bytes.
        need: usize,
    },
    /// Bytes after the instruction's last field.
    Trailing {
        /// Where they start.
        at: usize,
    },
    /// A command other than read (0x0054), write (0x0058) and their answers.
    Command(u16),
    /// A data type code other than 0x00-0x04 (X/B/W/D/L) and 0x14 (continuous).
    DataType(u16),
    /// An individual transfer of 0 or more than 16 blocks.
    BlockCount(u16),
    /// A continuous transfer of other than one block.
    ContinuousBlocks(u16),
    /// A name of fewer than 4 or more than 16 bytes.
    NameLength {
        /// Block number, from 0.
        block: u16,
        /// The length the frame gives.
        len: u16,
    },
    /// A name byte that is not printable ASCII.
    NameByte {
        /// Block number, from 0.
        block: u16,
        /// The byte.
        byte: u8,
    },
    /// A block whose data size is not the size of the data type.
    DataSize {
        /// Block number, from 0.
        block: u16,
        /// The size the frame gives.
        size: u16,
        /// The size of the data type.
        expected: u16,
    },
    /// A continuous block of 0 or more than 1,400 bytes.
    ContinuousLength(u16),
}

impl DecodeError {
    /// The NAK code a server answers this error with. Which code a real PLC gives for
    /// the errors LS's list does not name is not documented; see docs/io.md, "LS Electric XGT".
    pub fn nak_code(self) -> NakCode {
        match self {
            DecodeError::Company(_) => NakCode::COMPANY_ID,
            DecodeError::Checksum { .. } => NakCode::HEADER_CHECKSUM,
            DecodeError::HeaderShort(_)
            | DecodeError::TooLong(_)
            | DecodeError::Length { .. }
            | DecodeError::Truncated { .. }
            | DecodeError::Trailing { .. } => NakCode::HEADER_LENGTH,
            DecodeError::Command(_) => NakCode::COMMAND,
            DecodeError::DataType(_) | DecodeError::DataSize { .. } => NakCode::DATA_TYPE,
            DecodeError::BlockCount(_) | DecodeError::ContinuousBlocks(_) => {
                NakCode::TOO_MANY_BLOCKS
            }
            DecodeError::NameLength { .. } => NakCode::NAME_LENGTH,
            DecodeError::NameByte { .. } => NakCode::DEVICE_NOT_SERVED,
            DecodeError::ContinuousLength(_) => NakCode::BLOCK_TOO_LARGE,
        }
    }

    /// True when the header itself is bad, so that the stream cannot be trusted to
    /// continue at the next frame (a server answers, then closes the connection).
    pub fn breaks_stream(self) -> bool {
        matches!(
            self,
            DecodeError::HeaderShort(_) | DecodeError::Company(_) | DecodeError::TooLong(_)
        )
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::HeaderShort(n) => {
                write!(f, "frame of {n} bytes, shorter than the 20-byte header")
            }
            DecodeError::Company(id) => write!(
                f,
                "company ID {:?} is neither LSIS-XGT nor LGIS-GLOFA",
                String::from_utf8_lossy(&id)
            ),
            DecodeError::Checksum { sent, sum } => write!(
                f,
                "header checksum 0x{sent:02X} is neither 0 nor the byte sum 0x{sum:02X}"
            ),
            DecodeError::TooLong(n) => write!(
                f,
                "header length {n} is beyond the largest instruction ({} bytes)",
                super::header::MAX_INSTRUCTION
            ),
            DecodeError::Length { header, actual } => write!(
                f,
                "header length {header} but {actual} bytes follow the header"
            ),
            DecodeError::Truncated { at, need } => write!(
                f,
                "instruction ends inside a {need}-byte field at offset {at}"
            ),
            DecodeError::Trailing { at } => {
                write!(f, "unexpected bytes after the instruction at offset {at}")
            }
            DecodeError::Command(c) => write!(f, "unknown command 0x{c:04X}"),
            DecodeError::DataType(t) => write!(f, "unknown data type 0x{t:04X}"),
            DecodeError::BlockCount(n) => {
                write!(f, "{n} blocks; an individual transfer has 1 to 16")
            }
            DecodeError::ContinuousBlocks(n) => {
                write!(f, "{n} blocks; a continuous transfer has exactly 1")
            }
            DecodeError::NameLength { block, len } => {
                write!(f, "block {block}: name of {len} bytes; names have 4 to 16")
            }
            DecodeError::NameByte { block, byte } => write!(
                f,
                "block {block}: name byte 0x{byte:02X} is not printable ASCII"
            ),
            DecodeError::DataSize {
                block,
                size,
                expected,
            } => write!(
                f,
                "block {block}: data size {size}, but the data type has {expected}"
            ),
            DecodeError::ContinuousLength(n) => write!(
                f,
                "continuous block of {n} bytes; 1 to {} allowed",
                super::cpu::MAX_CONTINUOUS
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a request or response cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// An individual transfer of 0 or more than 16 blocks.
    BlockCount(usize),
    /// A continuous block of 0 bytes or more than the CPU allows.
    ContinuousLength {
        /// Bytes asked for.
        len: usize,
        /// Most the CPU carries in one block.
        max: usize,
    },
    /// A value that does not fit its data type (bits are 0 or 1).
    Value {
        /// Block number, from 0.
        block: usize,
        /// The value.
        value: u64,
        /// The data type.
        ty: DataType,
    },
    /// A negative answer with error status 0 (which means success).
    NakStatus,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BlockCount(n) => {
                write!(f, "{n} blocks; an individual transfer has 1 to 16")
            }
            EncodeError::ContinuousLength { len, max } => {
                write!(f, "continuous block of {len} bytes; 1 to {max} allowed")
            }
            EncodeError::Value { block, value, ty } => {
                write!(f, "block {block}: value {value} does not fit a {ty}")
            }
            EncodeError::NakStatus => f.write_str("a negative answer needs a non-zero status"),
        }
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_codes_keep_their_number_and_meaning() {
        for (c, m) in NakCode::KNOWN {
            assert_eq!(NakCode::new(c.code()), c);
            assert_eq!(c.meaning(), Some(m));
            assert!(c.to_string().contains(m));
            assert!(c.to_string().contains(&format!("0x{:04X}", c.code())));
        }
        assert_eq!(NakCode::AREA_EXCEEDED.code(), 4);
        assert_eq!(
            NakCode::AREA_EXCEEDED.to_string(),
            "LS error 0x0004: device area exceeded"
        );
    }

    #[test]
    fn an_unknown_code_is_passed_through_with_its_number() {
        let c = NakCode::new(0x1234);
        assert_eq!(c.code(), 0x1234);
        assert_eq!(c.meaning(), None);
        assert_eq!(c.to_string(), "LS error 0x1234 (not in LS's list)");
    }

    #[test]
    fn header_errors_break_the_stream_body_errors_do_not() {
        assert!(DecodeError::Company(*b"MODBUS-TCP").breaks_stream());
        assert!(DecodeError::TooLong(60000).breaks_stream());
        assert!(!DecodeError::Checksum { sent: 1, sum: 2 }.breaks_stream());
        assert!(!DecodeError::BlockCount(1000).breaks_stream());
    }

    #[test]
    fn decode_errors_map_to_the_codes_the_issue_names() {
        assert_eq!(
            DecodeError::Checksum { sent: 1, sum: 2 }.nak_code(),
            NakCode::HEADER_CHECKSUM
        );
        assert_eq!(
            DecodeError::Company([0; 10]).nak_code(),
            NakCode::COMPANY_ID
        );
        assert_eq!(DecodeError::Command(0x99).nak_code(), NakCode::COMMAND);
        assert_eq!(
            DecodeError::BlockCount(1000).nak_code(),
            NakCode::TOO_MANY_BLOCKS
        );
        assert_eq!(
            DecodeError::ContinuousLength(1401).nak_code(),
            NakCode::BLOCK_TOO_LARGE
        );
        assert_eq!(DecodeError::DataType(9).nak_code(), NakCode::DATA_TYPE);
        assert_eq!(
            DecodeError::NameLength { block: 0, len: 200 }.nak_code(),
            NakCode::NAME_LENGTH
        );
    }
}
