//! Requests and responses of the XGT dedicated protocol: encoding and decoding of whole
//! frames (header and instruction), with no I/O. The client and the server share it.
//!
//! Instruction layouts (all numbers u16 little-endian unless said otherwise):
//! ```text
//! individual read    54 | type | 0 | n | n x (name len, name)
//! continuous read    54 | 14   | 0 | 1 | name len, name | byte count
//! individual write   58 | type | 0 | n | n x (name len, name) | n x (size, data)
//! continuous write   58 | 14   | 0 | 1 | name len, name | byte count | data
//! read response      55 | type | reserved | status 0 | n | n x (size, data)
//! continuous answer  55 | 14   | reserved | status 0 | 1 | byte count | data
//! write response     59 | type | reserved | status 0 | n
//! negative answer    cmd+1 | type | reserved | status != 0 | error code
//! ```
//! An individual write lists all names first, then all data (not interleaved). The
//! reserved word of a response is not always 0 (LS's own example has 0x0108), so it is
//! kept and never checked. Decoding checks every length, count and offset and never
//! panics; see the `xgt_codec` integration tests for the fuzzing.

use std::fmt;

use super::cpu::MAX_CONTINUOUS;
use super::error::{DecodeError, EncodeError, NakCode};
use super::header::{Header, HEADER_LEN};

/// Most blocks of an individual read or write.
pub const MAX_BLOCKS: usize = 16;
/// Shortest name (`%MX0`).
pub const NAME_MIN: usize = 4;
/// Longest name.
pub const NAME_MAX: usize = 16;
/// Data type code of a continuous transfer (a block of bytes).
pub const CONTINUOUS: u16 = 0x0014;

const READ: u16 = 0x0054;
const WRITE: u16 = 0x0058;
const READ_ANSWER: u16 = READ + 1;
const WRITE_ANSWER: u16 = WRITE + 1;

/// The data type of an individual transfer; its letter is the size letter of a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataType {
    /// X: a bit, one byte on the wire (0 or 1).
    Bit,
    /// B: a byte.
    Byte,
    /// W: a word (16 bits).
    Word,
    /// D: a double word (32 bits).
    DWord,
    /// L: a long word (64 bits).
    LWord,
}

/// One row per data type: the type, its code, its size letter, bytes on the wire, name.
const TYPES: [(DataType, u16, u8, usize, &str); 5] = [
    (DataType::Bit, 0x00, b'X', 1, "bit"),
    (DataType::Byte, 0x01, b'B', 1, "byte"),
    (DataType::Word, 0x02, b'W', 2, "word"),
    (DataType::DWord, 0x03, b'D', 4, "double word"),
    (DataType::LWord, 0x04, b'L', 8, "long word"),
];

impl DataType {
    /// Every data type, in code order.
    pub const ALL: [DataType; 5] = [
        DataType::Bit,
        DataType::Byte,
        DataType::Word,
        DataType::DWord,
        DataType::LWord,
    ];

    fn row(self) -> &'static (DataType, u16, u8, usize, &'static str) {
        // TYPES holds one row per variant in declaration order.
        &TYPES[self as usize]
    }

    /// The data type code of the instruction.
    pub fn code(self) -> u16 {
        self.row().1
    }

    /// The data type with code `code` (0x14, continuous, is not one).
    pub fn from_code(code: u16) -> Option<DataType> {
        TYPES.iter().find(|r| r.1 == code).map(|r| r.0)
    }

    /// The size letter in a direct variable name (`X`, `B`, `W`, `D`, `L`).
    pub fn letter(self) -> char {
        self.row().2 as char
    }

    /// The data type of size letter `c` (upper case).
    pub fn from_letter(c: u8) -> Option<DataType> {
        TYPES.iter().find(|r| r.2 == c).map(|r| r.0)
    }

    /// Bytes of one value on the wire.
    pub fn size(self) -> usize {
        self.row().3
    }

    /// Bits of memory one value covers (1 for a bit).
    pub fn bits(self) -> u64 {
        match self {
            DataType::Bit => 1,
            t => 8 * t.size() as u64,
        }
    }

    /// The largest value a block of this type carries.
    pub fn max_value(self) -> u64 {
        match self {
            DataType::Bit => 1,
            DataType::LWord => u64::MAX,
            t => (1u64 << (8 * t.size())) - 1,
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.row().4)
    }
}

/// Why bytes are not a name of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameFault {
    /// Fewer than 4 or more than 16 bytes.
    Length(usize),
    /// A byte that is not printable ASCII.
    Byte(u8),
}

impl fmt::Display for NameFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameFault::Length(n) => write!(
                f,
                "{n} characters; names on the wire have {NAME_MIN} to {NAME_MAX}"
            ),
            NameFault::Byte(b) => write!(f, "byte 0x{b:02X} is not printable ASCII"),
        }
    }
}

/// The name of a block as it travels (`%MW100`): 4 to 16 printable ASCII bytes. What
/// the name means is [`super::device`]'s business; this type only guarantees that it
/// can be sent. `Copy`, no allocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name {
    len: u8,
    bytes: [u8; NAME_MAX],
}

impl Name {
    /// Checks and copies a name.
    pub fn new(name: &[u8]) -> Result<Name, NameFault> {
        if !(NAME_MIN..=NAME_MAX).contains(&name.len()) {
            return Err(NameFault::Length(name.len()));
        }
        if let Some(b) = name.iter().find(|b| !b.is_ascii_graphic()) {
            return Err(NameFault::Byte(*b));
        }
        let mut bytes = [0u8; NAME_MAX];
        bytes[..name.len()].copy_from_slice(name);
        Ok(Name {
            len: name.len() as u8,
            bytes,
        })
    }

    /// The bytes of the name.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII gets in (see `new`), so this never falls back.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One block of an individual write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteItem {
    /// Where to write.
    pub name: Name,
    /// The value, in the low bytes (a bit is 0 or 1).
    pub value: u64,
}

/// The instruction of a client's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Individual read of 1 to 16 names of one data type.
    Read {
        /// Data type of every block.
        ty: DataType,
        /// The names.
        names: Vec<Name>,
    },
    /// Continuous read of `len` bytes from a byte name (`%DB2468`).
    ReadContinuous {
        /// First byte.
        name: Name,
        /// Bytes to read.
        len: u16,
    },
    /// Individual write of 1 to 16 values of one data type.
    Write {
        /// Data type of every block.
        ty: DataType,
        /// Names and values.
        items: Vec<WriteItem>,
    },
    /// Continuous write of bytes from a byte name.
    WriteContinuous {
        /// First byte.
        name: Name,
        /// The bytes.
        data: Vec<u8>,
    },
}

/// The instruction of a PLC's response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Answer to an individual read: one value per block, in request order.
    Read {
        /// Data type of every block.
        ty: DataType,
        /// Values, in the low bytes.
        values: Vec<u64>,
    },
    /// Answer to a continuous read.
    ReadContinuous {
        /// The bytes.
        data: Vec<u8>,
    },
    /// Answer to an individual write.
    Write {
        /// Data type.
        ty: DataType,
        /// Blocks written.
        blocks: u16,
    },
    /// Answer to a continuous write.
    WriteContinuous,
    /// A negative answer (NAK) to any request.
    Nak {
        /// The command word of the answer (the request's plus one).
        command: u16,
        /// The data type word, as the PLC sent it.
        type_code: u16,
        /// The error status (0xFFFF or 0x00FF in practice; never 0).
        status: u16,
        /// LS's error code.
        code: NakCode,
    },
}

/// A whole request frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFrame {
    /// The header.
    pub header: Header,
    /// The instruction.
    pub request: Request,
}

/// A whole response frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseFrame {
    /// The header.
    pub header: Header,
    /// The reserved word after the data type, as the PLC sent it.
    pub reserved: u16,
    /// The instruction.
    pub response: Response,
}

/// Appends little-endian words and raw bytes.
struct Out<'a>(&'a mut Vec<u8>);

impl Out<'_> {
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn name(&mut self, n: &Name) {
        self.u16(n.as_bytes().len() as u16);
        self.0.extend_from_slice(n.as_bytes());
    }

    fn value(&mut self, ty: DataType, v: u64) {
        self.u16(ty.size() as u16);
        self.0.extend_from_slice(&v.to_le_bytes()[..ty.size()]);
    }
}

fn check_blocks(n: usize) -> Result<(), EncodeError> {
    if (1..=MAX_BLOCKS).contains(&n) {
        Ok(())
    } else {
        Err(EncodeError::BlockCount(n))
    }
}

fn check_continuous(len: usize, max: usize) -> Result<(), EncodeError> {
    if (1..=max).contains(&len) {
        Ok(())
    } else {
        Err(EncodeError::ContinuousLength { len, max })
    }
}

fn check_value(block: usize, ty: DataType, value: u64) -> Result<(), EncodeError> {
    if value <= ty.max_value() {
        Ok(())
    } else {
        Err(EncodeError::Value { block, value, ty })
    }
}

/// Writes the header in front of the instruction in `out[start..]`.
fn finish(out: &mut [u8], start: usize, header: &Header) {
    // Every instruction that passes the checks above is at most MAX_INSTRUCTION bytes.
    let len = (out.len() - start - HEADER_LEN) as u16;
    out[start..start + HEADER_LEN].copy_from_slice(&header.encode(len));
}

impl RequestFrame {
    /// Appends the frame's bytes to `out`. Checks block counts, value ranges and the
    /// continuous limit of the header's CPU (512 bytes for XGB, otherwise 1,400).
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let max = self.header.cpu.max_continuous();
        match &self.request {
            Request::Read { names, .. } => check_blocks(names.len())?,
            Request::ReadContinuous { len, .. } => check_continuous(*len as usize, max)?,
            Request::Write { ty, items } => {
                check_blocks(items.len())?;
                for (i, it) in items.iter().enumerate() {
                    check_value(i, *ty, it.value)?;
                }
            }
            Request::WriteContinuous { data, .. } => check_continuous(data.len(), max)?,
        }
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        let mut o = Out(out);
        match &self.request {
            Request::Read { ty, names } => {
                o.u16(READ);
                o.u16(ty.code());
                o.u16(0);
                o.u16(names.len() as u16);
                names.iter().for_each(|n| o.name(n));
            }
            Request::ReadContinuous { name, len } => {
                o.u16(READ);
                o.u16(CONTINUOUS);
                o.u16(0);
                o.u16(1);
                o.name(name);
                o.u16(*len);
            }
            Request::Write { ty, items } => {
                o.u16(WRITE);
                o.u16(ty.code());
                o.u16(0);
                o.u16(items.len() as u16);
                items.iter().for_each(|it| o.name(&it.name));
                items.iter().for_each(|it| o.value(*ty, it.value));
            }
            Request::WriteContinuous { name, data } => {
                o.u16(WRITE);
                o.u16(CONTINUOUS);
                o.u16(0);
                o.u16(1);
                o.name(name);
                o.u16(data.len() as u16);
                o.0.extend_from_slice(data);
            }
        }
        finish(out, start, &self.header);
        Ok(())
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(64);
        self.encode_into(&mut v)?;
        Ok(v)
    }

    /// Decodes one whole frame (as [`super::header::frame_len`] delimits it). The
    /// reserved word of the request is not checked.
    pub fn decode(frame: &[u8]) -> Result<RequestFrame, DecodeError> {
        let header = whole_frame(frame)?;
        let mut r = Reader::new(frame);
        let command = r.u16()?;
        if command != READ && command != WRITE {
            return Err(DecodeError::Command(command));
        }
        let type_code = r.u16()?;
        let ty = match type_code {
            CONTINUOUS => None,
            c => Some(DataType::from_code(c).ok_or(DecodeError::DataType(c))?),
        };
        let _reserved = r.u16()?;
        let count = r.u16()?;
        let request = if let Some(ty) = ty {
            let n = r.block_count(count)?;
            let mut names = Vec::with_capacity(n);
            for i in 0..n {
                names.push(r.name(i as u16)?);
            }
            if command == READ {
                Request::Read { ty, names }
            } else {
                let mut items = Vec::with_capacity(n);
                for (i, name) in names.into_iter().enumerate() {
                    let value = r.value(i as u16, ty)?;
                    items.push(WriteItem { name, value });
                }
                Request::Write { ty, items }
            }
        } else {
            if count != 1 {
                return Err(DecodeError::ContinuousBlocks(count));
            }
            let name = r.name(0)?;
            let len = r.continuous_len()?;
            if command == READ {
                Request::ReadContinuous { name, len }
            } else {
                let data = r.bytes(len as usize)?.to_vec();
                Request::WriteContinuous { name, data }
            }
        };
        r.end()?;
        Ok(RequestFrame { header, request })
    }
}

impl ResponseFrame {
    /// Appends the frame's bytes to `out`. Checks counts, value ranges, the continuous
    /// limit of the header's CPU, and that a NAK's status is not 0.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let max = self.header.cpu.max_continuous();
        match &self.response {
            Response::Read { ty, values } => {
                check_blocks(values.len())?;
                for (i, v) in values.iter().enumerate() {
                    check_value(i, *ty, *v)?;
                }
            }
            Response::ReadContinuous { data } => check_continuous(data.len(), max)?,
            Response::Write { blocks, .. } => check_blocks(*blocks as usize)?,
            Response::WriteContinuous => {}
            Response::Nak { status, .. } => {
                if *status == 0 {
                    return Err(EncodeError::NakStatus);
                }
            }
        }
        let start = out.len();
        out.resize(start + HEADER_LEN, 0);
        let mut o = Out(out);
        let reserved = self.reserved;
        match &self.response {
            Response::Read { ty, values } => {
                o.u16(READ_ANSWER);
                o.u16(ty.code());
                o.u16(reserved);
                o.u16(0);
                o.u16(values.len() as u16);
                values.iter().for_each(|v| o.value(*ty, *v));
            }
            Response::ReadContinuous { data } => {
                o.u16(READ_ANSWER);
                o.u16(CONTINUOUS);
                o.u16(reserved);
                o.u16(0);
                o.u16(1);
                o.u16(data.len() as u16);
                o.0.extend_from_slice(data);
            }
            Response::Write { ty, blocks } => {
                o.u16(WRITE_ANSWER);
                o.u16(ty.code());
                o.u16(reserved);
                o.u16(0);
                o.u16(*blocks);
            }
            Response::WriteContinuous => {
                o.u16(WRITE_ANSWER);
                o.u16(CONTINUOUS);
                o.u16(reserved);
                o.u16(0);
                o.u16(1);
            }
            Response::Nak {
                command,
                type_code,
                status,
                code,
            } => {
                o.u16(*command);
                o.u16(*type_code);
                o.u16(reserved);
                o.u16(*status);
                o.u16(code.code());
            }
        }
        finish(out, start, &self.header);
        Ok(())
    }

    /// The frame's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(64);
        self.encode_into(&mut v)?;
        Ok(v)
    }

    /// Decodes one whole frame. A non-zero error status makes it a [`Response::Nak`]
    /// whatever the command; the error code is the u16 that follows the status (a
    /// single byte if only one follows, since the code's width is not confirmed), and
    /// anything after it is ignored.
    pub fn decode(frame: &[u8]) -> Result<ResponseFrame, DecodeError> {
        let header = whole_frame(frame)?;
        let mut r = Reader::new(frame);
        let command = r.u16()?;
        let type_code = r.u16()?;
        let reserved = r.u16()?;
        let status = r.u16()?;
        if status != 0 {
            let code = match r.remaining() {
                0 => return Err(DecodeError::Truncated { at: r.at, need: 2 }),
                1 => r.bytes(1)?[0] as u16,
                _ => r.u16()?,
            };
            let response = Response::Nak {
                command,
                type_code,
                status,
                code: NakCode::new(code),
            };
            return Ok(ResponseFrame {
                header,
                reserved,
                response,
            });
        }
        if command != READ_ANSWER && command != WRITE_ANSWER {
            return Err(DecodeError::Command(command));
        }
        let count = r.u16()?;
        let response = if type_code == CONTINUOUS {
            if count != 1 {
                return Err(DecodeError::ContinuousBlocks(count));
            }
            if command == READ_ANSWER {
                let len = r.continuous_len()?;
                Response::ReadContinuous {
                    data: r.bytes(len as usize)?.to_vec(),
                }
            } else {
                Response::WriteContinuous
            }
        } else {
            let ty = DataType::from_code(type_code).ok_or(DecodeError::DataType(type_code))?;
            let n = r.block_count(count)?;
            if command == READ_ANSWER {
                let mut values = Vec::with_capacity(n);
                for i in 0..n {
                    values.push(r.value(i as u16, ty)?);
                }
                Response::Read { ty, values }
            } else {
                Response::Write {
                    ty,
                    blocks: n as u16,
                }
            }
        };
        r.end()?;
        Ok(ResponseFrame {
            header,
            reserved,
            response,
        })
    }
}

/// Decodes the header of a whole frame and checks that its Length field matches.
fn whole_frame(frame: &[u8]) -> Result<Header, DecodeError> {
    let (header, len) = Header::decode(frame)?;
    let actual = frame.len() - HEADER_LEN;
    if len as usize != actual {
        return Err(DecodeError::Length {
            header: len,
            actual,
        });
    }
    Ok(header)
}

/// Reads an instruction field by field; every read is bounds-checked.
struct Reader<'a> {
    frame: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(frame: &'a [u8]) -> Reader<'a> {
        Reader {
            frame,
            at: HEADER_LEN,
        }
    }

    fn remaining(&self) -> usize {
        self.frame.len().saturating_sub(self.at)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let b = self
            .frame
            .get(self.at..)
            .and_then(|rest| rest.get(..n))
            .ok_or(DecodeError::Truncated {
                at: self.at,
                need: n,
            })?;
        self.at += n;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn block_count(&self, count: u16) -> Result<usize, DecodeError> {
        if (1..=MAX_BLOCKS as u16).contains(&count) {
            Ok(count as usize)
        } else {
            Err(DecodeError::BlockCount(count))
        }
    }

    fn continuous_len(&mut self) -> Result<u16, DecodeError> {
        let len = self.u16()?;
        if (1..=MAX_CONTINUOUS as u16).contains(&len) {
            Ok(len)
        } else {
            Err(DecodeError::ContinuousLength(len))
        }
    }

    fn name(&mut self, block: u16) -> Result<Name, DecodeError> {
        let len = self.u16()?;
        if !(NAME_MIN..=NAME_MAX).contains(&(len as usize)) {
            return Err(DecodeError::NameLength { block, len });
        }
        let b = self.bytes(len as usize)?;
        Name::new(b).map_err(|f| match f {
            NameFault::Byte(byte) => DecodeError::NameByte { block, byte },
            NameFault::Length(_) => DecodeError::NameLength { block, len },
        })
    }

    fn value(&mut self, block: u16, ty: DataType) -> Result<u64, DecodeError> {
        let size = self.u16()?;
        if size as usize != ty.size() {
            return Err(DecodeError::DataSize {
                block,
                size,
                expected: ty.size() as u16,
            });
        }
        let b = self.bytes(ty.size())?;
        let mut v = [0u8; 8];
        v[..b.len()].copy_from_slice(b);
        Ok(u64::from_le_bytes(v))
    }

    fn end(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::Trailing { at: self.at })
        }
    }
}

/// Why a response does not answer the request it was matched with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerError {
    /// The PLC refused the request.
    Nak {
        /// LS's error code.
        code: NakCode,
        /// The error status word.
        status: u16,
    },
    /// A response of another kind (a write answer to a read, ...).
    Kind,
    /// An individual answer of another data type.
    Type {
        /// Asked.
        expected: DataType,
        /// Answered.
        found: DataType,
    },
    /// Another number of blocks or bytes than asked for.
    Count {
        /// Asked.
        expected: usize,
        /// Answered.
        found: usize,
    },
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::Nak { code, status } => {
                write!(f, "{code} (status 0x{status:04X})")
            }
            AnswerError::Kind => f.write_str("the answer is not of the kind of the request"),
            AnswerError::Type { expected, found } => {
                write!(f, "asked for {expected} values, answered {found} values")
            }
            AnswerError::Count { expected, found } => {
                write!(f, "asked for {expected} items, answered {found}")
            }
        }
    }
}

impl std::error::Error for AnswerError {}

impl Response {
    /// Checks that this response answers `request`: a NAK is an error carrying LS's
    /// code; otherwise kind, data type and counts must match.
    pub fn answers(&self, request: &Request) -> Result<(), AnswerError> {
        let count = |expected: usize, found: usize| {
            if expected == found {
                Ok(())
            } else {
                Err(AnswerError::Count { expected, found })
            }
        };
        let same_type = |expected: DataType, found: DataType| {
            if expected == found {
                Ok(())
            } else {
                Err(AnswerError::Type { expected, found })
            }
        };
        match (request, self) {
            (_, Response::Nak { code, status, .. }) => Err(AnswerError::Nak {
                code: *code,
                status: *status,
            }),
            (Request::Read { ty, names }, Response::Read { ty: t, values }) => {
                same_type(*ty, *t)?;
                count(names.len(), values.len())
            }
            (Request::ReadContinuous { len, .. }, Response::ReadContinuous { data }) => {
                count(*len as usize, data.len())
            }
            (Request::Write { ty, items }, Response::Write { ty: t, blocks }) => {
                same_type(*ty, *t)?;
                count(items.len(), *blocks as usize)
            }
            (Request::WriteContinuous { .. }, Response::WriteContinuous) => Ok(()),
            _ => Err(AnswerError::Kind),
        }
    }
}

impl Request {
    /// The NAK a server sends for this request: the command plus one and the data type
    /// echoed, status 0xFFFF.
    pub fn nak(&self, code: NakCode) -> Response {
        let (command, type_code) = match self {
            Request::Read { ty, .. } => (READ_ANSWER, ty.code()),
            Request::ReadContinuous { .. } => (READ_ANSWER, CONTINUOUS),
            Request::Write { ty, .. } => (WRITE_ANSWER, ty.code()),
            Request::WriteContinuous { .. } => (WRITE_ANSWER, CONTINUOUS),
        };
        Response::Nak {
            command,
            type_code,
            status: 0xFFFF,
            code,
        }
    }
}

/// The NAK a server sends for a frame it could not decode: the command and data type
/// words echoed from the frame where present (a command of 0 becomes 0x0001), status
/// 0xFFFF, the code of `error`.
pub fn nak_for(frame: &[u8], error: DecodeError) -> Response {
    let word = |at: usize| {
        frame
            .get(at..at + 2)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]))
    };
    Response::Nak {
        command: word(HEADER_LEN).wrapping_add(1),
        type_code: word(HEADER_LEN + 2),
        status: 0xFFFF,
        code: error.nak_code(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::Cpu;
    use super::*;

    fn name(s: &str) -> Name {
        Name::new(s.as_bytes()).unwrap()
    }

    #[test]
    fn data_types_keep_code_letter_and_size_together() {
        for t in DataType::ALL {
            assert_eq!(DataType::from_code(t.code()), Some(t));
            assert_eq!(DataType::from_letter(t.letter() as u8), Some(t));
        }
        assert_eq!(DataType::from_code(CONTINUOUS), None);
        assert_eq!(DataType::Word.max_value(), 0xFFFF);
        assert_eq!(DataType::Bit.bits(), 1);
        assert_eq!(DataType::LWord.bits(), 64);
    }

    #[test]
    fn names_of_4_to_16_printable_bytes_are_accepted() {
        assert_eq!(name("%MX0").as_str(), "%MX0");
        assert_eq!(name("%DW1234567890123").as_bytes().len(), 16);
        assert_eq!(Name::new(b""), Err(NameFault::Length(0)));
        assert_eq!(Name::new(b"%MW"), Err(NameFault::Length(3)));
        assert_eq!(Name::new(&[b'A'; 200]), Err(NameFault::Length(200)));
        assert_eq!(Name::new(b"%MW 1"), Err(NameFault::Byte(b' ')));
        assert_eq!(Name::new(b"%MW\xC31"), Err(NameFault::Byte(0xC3)));
    }

    #[test]
    fn an_individual_write_groups_names_before_data() {
        let f = RequestFrame {
            header: Header::request(Cpu::Xgk, 0),
            request: Request::Write {
                ty: DataType::Word,
                items: vec![
                    WriteItem {
                        name: name("%MW1"),
                        value: 0x0102,
                    },
                    WriteItem {
                        name: name("%MW2"),
                        value: 0x0304,
                    },
                ],
            },
        };
        let b = f.encode().unwrap();
        assert_eq!(
            &b[20..],
            &[
                0x58, 0, 2, 0, 0, 0, 2, 0, 4, 0, b'%', b'M', b'W', b'1', 4, 0, b'%', b'M', b'W',
                b'2', 2, 0, 2, 1, 2, 0, 4, 3
            ]
        );
        assert_eq!(RequestFrame::decode(&b).unwrap(), f);
    }

    #[test]
    fn encoding_refuses_what_the_protocol_cannot_carry() {
        let h = Header::request(Cpu::Xgk, 0);
        let read = |n: usize| RequestFrame {
            header: h,
            request: Request::Read {
                ty: DataType::Word,
                names: vec![name("%MW0"); n],
            },
        };
        assert_eq!(read(0).encode(), Err(EncodeError::BlockCount(0)));
        assert_eq!(read(17).encode(), Err(EncodeError::BlockCount(17)));
        assert!(read(16).encode().is_ok());
        let cont = |cpu: Cpu, len: u16| RequestFrame {
            header: Header::request(cpu, 0),
            request: Request::ReadContinuous {
                name: name("%MB0"),
                len,
            },
        };
        assert!(cont(Cpu::Xgk, 1400).encode().is_ok());
        assert_eq!(
            cont(Cpu::Xgk, 1401).encode(),
            Err(EncodeError::ContinuousLength {
                len: 1401,
                max: 1400
            })
        );
        assert!(cont(Cpu::XgbMk, 512).encode().is_ok());
        assert_eq!(
            cont(Cpu::XgbIec, 513).encode(),
            Err(EncodeError::ContinuousLength { len: 513, max: 512 })
        );
        assert!(cont(Cpu::Xgk, 0).encode().is_err());
        let w = RequestFrame {
            header: h,
            request: Request::Write {
                ty: DataType::Bit,
                items: vec![WriteItem {
                    name: name("%MX0"),
                    value: 2,
                }],
            },
        };
        assert_eq!(
            w.encode(),
            Err(EncodeError::Value {
                block: 0,
                value: 2,
                ty: DataType::Bit
            })
        );
    }

    #[test]
    fn answers_are_checked_against_their_request() {
        let req = Request::Read {
            ty: DataType::Word,
            names: vec![name("%MW0"), name("%MW1")],
        };
        let ok = Response::Read {
            ty: DataType::Word,
            values: vec![1, 2],
        };
        assert_eq!(ok.answers(&req), Ok(()));
        let short = Response::Read {
            ty: DataType::Word,
            values: vec![1],
        };
        assert_eq!(
            short.answers(&req),
            Err(AnswerError::Count {
                expected: 2,
                found: 1
            })
        );
        let other = Response::Read {
            ty: DataType::Byte,
            values: vec![1, 2],
        };
        assert!(matches!(other.answers(&req), Err(AnswerError::Type { .. })));
        assert_eq!(
            Response::WriteContinuous.answers(&req),
            Err(AnswerError::Kind)
        );
        let nak = req.nak(NakCode::AREA_EXCEEDED);
        assert_eq!(
            nak.answers(&req),
            Err(AnswerError::Nak {
                code: NakCode::AREA_EXCEEDED,
                status: 0xFFFF
            })
        );
    }

    #[test]
    fn a_nak_for_an_undecodable_frame_echoes_what_it_can() {
        let h = Header::request(Cpu::Xgk, 0).encode(4);
        let mut f = h.to_vec();
        f.extend_from_slice(&[0x54, 0, 0x09, 0]);
        let e = RequestFrame::decode(&f).unwrap_err();
        assert_eq!(e, DecodeError::DataType(9));
        assert_eq!(
            nak_for(&f, e),
            Response::Nak {
                command: 0x55,
                type_code: 9,
                status: 0xFFFF,
                code: NakCode::DATA_TYPE
            }
        );
        assert!(matches!(
            nak_for(&h, DecodeError::Company([0; 10])),
            Response::Nak { command: 1, .. }
        ));
    }
}
