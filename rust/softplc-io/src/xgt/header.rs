//! The 20-byte application header, and delimiting frames in a byte stream.
//!
//! ```text
//! offset size field
//!  0     10   company ID: "LSIS-XGT" + 2 NUL (old GLOFA/MK PLCs: "LGIS-GLOFA")
//! 10      2   PLC info (0 in requests; status bits in responses)
//! 12      1   CPU info (XGK 0xA0, XGI 0xA4, XGR 0xA8, XGB-MK 0xB0, XGB-IEC 0xB4)
//! 13      1   source of frame (0x33 client to PLC, 0x11 PLC to client)
//! 14      2   invoke ID (echoed by the PLC)
//! 16      2   length of the instruction that follows the header
//! 18      1   FEnet position ((base << 4) | slot; 0 for built-in ports)
//! 19      1   BCC: low byte of the sum of bytes 0..19
//! ```
//! All numbers little-endian. Several working clients send a BCC of 0 and PLCs are
//! reported to accept it: softplc sends the sum and accepts 0 or the sum; any other
//! value is a [`DecodeError::Checksum`], which a server answers with NAK 0x0077.

use super::cpu::Cpu;
use super::error::DecodeError;

/// Size of the application header.
pub const HEADER_LEN: usize = 20;
/// The largest valid instruction: a continuous write of 1,400 bytes to a 16-byte name
/// (command, type, reserved, block count, name length, name, byte count, data). The
/// frame decoder refuses a Length field beyond it rather than wait for the bytes.
pub const MAX_INSTRUCTION: usize = 8 + 2 + 16 + 2 + super::cpu::MAX_CONTINUOUS;
/// The largest valid frame.
pub const MAX_FRAME: usize = HEADER_LEN + MAX_INSTRUCTION;

const LSIS: &[u8; 8] = b"LSIS-XGT";
const LGIS: &[u8; 10] = b"LGIS-GLOFA";

/// The company ID that opens every frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompanyId {
    /// `LSIS-XGT` and two NUL bytes: current PLCs.
    LsisXgt,
    /// `LGIS-GLOFA`: old GLOFA and MK PLCs.
    LgisGlofa,
}

impl CompanyId {
    /// The ten bytes on the wire.
    pub fn bytes(self) -> [u8; 10] {
        match self {
            CompanyId::LsisXgt => *b"LSIS-XGT\0\0",
            CompanyId::LgisGlofa => *LGIS,
        }
    }

    /// Recognises the first ten bytes of a frame. Bytes 8 and 9 after `LSIS-XGT` are not
    /// checked: one manual version calls them reserved rather than part of the ID.
    pub fn from_bytes(b: &[u8; 10]) -> Option<CompanyId> {
        if b[..8] == LSIS[..] {
            Some(CompanyId::LsisXgt)
        } else if b == LGIS {
            Some(CompanyId::LgisGlofa)
        } else {
            None
        }
    }

    /// True when `prefix` (fewer than ten bytes, or ten) can start a company ID.
    fn could_start(prefix: &[u8]) -> bool {
        let n = prefix.len().min(10);
        prefix[..n.min(8)] == LSIS[..n.min(8)] || prefix[..n] == LGIS[..n]
    }
}

/// The CPU Info byte: a known CPU type or another value (some clients send 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpuInfo {
    /// One of the five documented codes.
    Known(Cpu),
    /// Any other byte, kept as it is.
    Other(u8),
}

impl CpuInfo {
    /// The byte on the wire.
    pub fn code(self) -> u8 {
        match self {
            CpuInfo::Known(c) => c.code(),
            CpuInfo::Other(b) => b,
        }
    }

    /// Recognises a CPU Info byte.
    pub fn from_code(b: u8) -> CpuInfo {
        Cpu::from_code(b).map_or(CpuInfo::Other(b), CpuInfo::Known)
    }

    /// Most bytes of a continuous block for this CPU (1,400 when it is not known).
    pub fn max_continuous(self) -> usize {
        match self {
            CpuInfo::Known(c) => c.max_continuous(),
            CpuInfo::Other(_) => super::cpu::MAX_CONTINUOUS,
        }
    }
}

impl From<Cpu> for CpuInfo {
    fn from(c: Cpu) -> CpuInfo {
        CpuInfo::Known(c)
    }
}

/// Who sent a frame (the "source of frame" byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// 0x33: a client's request.
    Client,
    /// 0x11: a PLC's response.
    Plc,
    /// Any other byte, kept as it is. The codec does not reject it: the command tells
    /// requests and responses apart.
    Other(u8),
}

impl Source {
    /// The byte on the wire.
    pub fn code(self) -> u8 {
        match self {
            Source::Client => 0x33,
            Source::Plc => 0x11,
            Source::Other(b) => b,
        }
    }

    /// Recognises a source byte.
    pub fn from_code(b: u8) -> Source {
        match b {
            0x33 => Source::Client,
            0x11 => Source::Plc,
            b => Source::Other(b),
        }
    }
}

/// The application header, without the two fields that are computed when a frame is
/// encoded: the instruction length and the BCC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Company ID.
    pub company: CompanyId,
    /// PLC Info: 0 in requests; status bits in responses (informational: two manual
    /// versions disagree on their meaning).
    pub plc_info: u16,
    /// CPU Info.
    pub cpu: CpuInfo,
    /// Source of frame.
    pub source: Source,
    /// Invoke ID: chosen by the client, echoed by the PLC.
    pub invoke_id: u16,
    /// FEnet position: (base << 4) | slot of the Ethernet module; 0 for built-in ports.
    pub position: u8,
}

impl Header {
    /// The header of a client's request to a PLC of type `cpu`.
    pub fn request(cpu: Cpu, invoke_id: u16) -> Header {
        Header {
            company: CompanyId::LsisXgt,
            plc_info: 0,
            cpu: CpuInfo::Known(cpu),
            source: Source::Client,
            invoke_id,
            position: 0,
        }
    }

    /// The header of a PLC of type `cpu` answering `self` (a request's header): the
    /// company ID and invoke ID echoed, PLC Info and position 0.
    pub fn answer(&self, cpu: Cpu) -> Header {
        Header {
            company: self.company,
            plc_info: 0,
            cpu: CpuInfo::Known(cpu),
            source: Source::Plc,
            invoke_id: self.invoke_id,
            position: 0,
        }
    }

    /// The 20 header bytes of a frame whose instruction has `len` bytes, with the BCC.
    pub fn encode(&self, len: u16) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..10].copy_from_slice(&self.company.bytes());
        b[10..12].copy_from_slice(&self.plc_info.to_le_bytes());
        b[12] = self.cpu.code();
        b[13] = self.source.code();
        b[14..16].copy_from_slice(&self.invoke_id.to_le_bytes());
        b[16..18].copy_from_slice(&len.to_le_bytes());
        b[18] = self.position;
        b[19] = bcc(&b);
        b
    }

    /// Decodes the first 20 bytes of `bytes`: the header and its Length field. Checks
    /// the company ID and the BCC (0 or the sum), nothing else.
    pub fn decode(bytes: &[u8]) -> Result<(Header, u16), DecodeError> {
        let b: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::HeaderShort(bytes.len()))?;
        let id: [u8; 10] = b[..10].try_into().unwrap_or([0; 10]);
        let company = CompanyId::from_bytes(&id).ok_or(DecodeError::Company(id))?;
        let sum = bcc(b);
        if b[19] != 0 && b[19] != sum {
            return Err(DecodeError::Checksum { sent: b[19], sum });
        }
        let h = Header {
            company,
            plc_info: u16::from_le_bytes([b[10], b[11]]),
            cpu: CpuInfo::from_code(b[12]),
            source: Source::from_code(b[13]),
            invoke_id: u16::from_le_bytes([b[14], b[15]]),
            position: b[18],
        };
        Ok((h, u16::from_le_bytes([b[16], b[17]])))
    }
}

/// The BCC of a header: the low byte of the sum of its bytes 0..19 (byte 19 itself, the
/// BCC, is not counted).
pub fn bcc(header: &[u8; HEADER_LEN]) -> u8 {
    header[..19].iter().fold(0u8, |s, b| s.wrapping_add(*b))
}

/// How far the start of a buffer is from a whole frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// At least this many more bytes are needed.
    Need(usize),
    /// A whole frame of this many bytes starts the buffer.
    Frame(usize),
}

/// Delimits the frame at the start of `buf`: how many more bytes it needs, or its size.
/// Fails as soon as the bytes cannot start a frame (a company ID that does not match,
/// a Length field beyond [`MAX_INSTRUCTION`]); after such an error the stream has lost
/// its framing. The BCC and the instruction are checked when the frame is decoded.
pub fn frame_len(buf: &[u8]) -> Result<Framing, DecodeError> {
    if !CompanyId::could_start(buf) {
        let mut id = [0u8; 10];
        let n = buf.len().min(10);
        id[..n].copy_from_slice(&buf[..n]);
        return Err(DecodeError::Company(id));
    }
    if buf.len() < HEADER_LEN {
        return Ok(Framing::Need(HEADER_LEN - buf.len()));
    }
    let len = u16::from_le_bytes([buf[16], buf[17]]) as usize;
    if len > MAX_INSTRUCTION {
        return Err(DecodeError::TooLong(len));
    }
    let total = HEADER_LEN + len;
    Ok(if buf.len() < total {
        Framing::Need(total - buf.len())
    } else {
        Framing::Frame(total)
    })
}

/// Collects the bytes of a stream and hands out whole frames.
///
/// The owner pushes what it reads and takes frames until none is left; [`Self::need`]
/// says how many bytes to read next at least. Nothing is trusted: a frame is never
/// larger than [`MAX_FRAME`], and after an error the decoder stays failed (the stream
/// cannot be resynchronised; close the connection).
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    failed: Option<DecodeError>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes buffered and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// How many more bytes complete the next frame (0: a frame is ready).
    pub fn need(&mut self) -> Result<usize, DecodeError> {
        match self.status()? {
            Framing::Need(n) => Ok(n),
            Framing::Frame(_) => Ok(0),
        }
    }

    /// The next whole frame, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, DecodeError> {
        match self.status()? {
            Framing::Need(_) => Ok(None),
            Framing::Frame(n) => {
                let rest = self.buf.split_off(n);
                Ok(Some(std::mem::replace(&mut self.buf, rest)))
            }
        }
    }

    fn status(&mut self) -> Result<Framing, DecodeError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        frame_len(&self.buf).inspect_err(|e| {
            self.failed = Some(*e);
            self.buf = Vec::new();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(len: u16) -> [u8; HEADER_LEN] {
        Header::request(Cpu::Xgk, 7).encode(len)
    }

    #[test]
    fn the_bcc_is_the_low_byte_of_the_sum_of_the_first_19_bytes() {
        let b = hdr(14);
        let sum: u32 = b[..19].iter().map(|x| *x as u32).sum();
        assert_eq!(b[19] as u32, sum & 0xFF);
    }

    #[test]
    fn a_bcc_of_zero_or_the_sum_is_accepted_and_anything_else_refused() {
        let mut b = hdr(14);
        assert!(Header::decode(&b).is_ok());
        let sum = b[19];
        b[19] = 0;
        assert!(Header::decode(&b).is_ok());
        b[19] = sum.wrapping_add(1);
        assert_eq!(
            Header::decode(&b),
            Err(DecodeError::Checksum {
                sent: sum.wrapping_add(1),
                sum
            })
        );
    }

    #[test]
    fn both_company_ids_are_recognised_and_others_refused() {
        let mut h = Header::request(Cpu::XgbMk, 1);
        h.company = CompanyId::LgisGlofa;
        let b = h.encode(3);
        assert_eq!(&b[..10], b"LGIS-GLOFA");
        assert_eq!(Header::decode(&b).unwrap(), (h, 3));
        let mut b = hdr(3);
        b[..10].copy_from_slice(b"LSIS-XGX\0\0");
        b[19] = 0;
        assert!(matches!(Header::decode(&b), Err(DecodeError::Company(_))));
    }

    #[test]
    fn unknown_cpu_and_source_bytes_are_kept() {
        let mut b = hdr(0);
        b[12] = 0x00;
        b[13] = 0x44;
        b[19] = 0;
        let (h, _) = Header::decode(&b).unwrap();
        assert_eq!(h.cpu, CpuInfo::Other(0));
        assert_eq!(h.source, Source::Other(0x44));
        assert_eq!(h.cpu.max_continuous(), 1400);
    }

    #[test]
    fn framing_asks_for_the_header_then_the_instruction() {
        let mut f = hdr(5).to_vec();
        assert_eq!(frame_len(&f[..0]), Ok(Framing::Need(20)));
        assert_eq!(frame_len(&f[..7]), Ok(Framing::Need(13)));
        assert_eq!(frame_len(&f), Ok(Framing::Need(5)));
        f.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(frame_len(&f), Ok(Framing::Need(1)));
        f.extend_from_slice(&[5, 9, 9]);
        assert_eq!(frame_len(&f), Ok(Framing::Frame(25)));
    }

    #[test]
    fn framing_fails_at_the_first_byte_that_cannot_start_a_company_id() {
        assert!(frame_len(b"LSIS").is_ok());
        assert!(frame_len(b"LGIS-GL").is_ok());
        assert_eq!(
            frame_len(b"LSX"),
            Err(DecodeError::Company(*b"LSX\0\0\0\0\0\0\0"))
        );
        assert!(frame_len(b"\x00\x01").is_err());
    }

    #[test]
    fn framing_never_trusts_a_length_beyond_the_largest_instruction() {
        assert_eq!(
            frame_len(&hdr(MAX_INSTRUCTION as u16)),
            Ok(Framing::Need(MAX_INSTRUCTION))
        );
        assert_eq!(
            frame_len(&hdr(MAX_INSTRUCTION as u16 + 1)),
            Err(DecodeError::TooLong(MAX_INSTRUCTION + 1))
        );
        assert_eq!(frame_len(&hdr(u16::MAX)), Err(DecodeError::TooLong(65535)));
    }

    #[test]
    fn the_decoder_hands_out_frames_fed_one_byte_at_a_time() {
        let mut stream = hdr(2).to_vec();
        stream.extend_from_slice(&[0xAA, 0xBB]);
        stream.extend_from_slice(&hdr(0));
        let mut d = FrameDecoder::new();
        let mut frames = Vec::new();
        for b in &stream {
            assert!(d.need().unwrap() > 0);
            d.push(std::slice::from_ref(b));
            while let Some(f) = d.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].len(), 22);
        assert_eq!(&frames[0][20..], &[0xAA, 0xBB]);
        assert_eq!(frames[1].len(), 20);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn the_decoder_stays_failed_after_garbage() {
        let mut d = FrameDecoder::new();
        d.push(b"GET / HTTP/1.1\r\n");
        assert!(matches!(d.next_frame(), Err(DecodeError::Company(_))));
        d.push(&hdr(0));
        assert!(d.next_frame().is_err());
        assert_eq!(d.buffered(), 0);
    }
}
