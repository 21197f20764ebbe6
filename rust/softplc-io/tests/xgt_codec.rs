//! The XGT codec against the reference's test vectors (byte for byte, both ways), round
//! trips of every request and response form, every NAK code, hostile and mutated frames
//! (never a panic, always a typed error), and the planner (fewest frames, limits, and
//! the offsets a driver scatters by, checked against a simulated PLC memory).
//!
//! A small deterministic PRNG drives the generated cases, so a failure names a seed
//! that reproduces it.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use softplc_io::xgt::codec::{AnswerError, NAME_MAX, NAME_MIN};
use softplc_io::xgt::device::{Location, NameErrorKind};
use softplc_io::xgt::header::{
    frame_len, CompanyId, CpuInfo, Framing, Source, HEADER_LEN, MAX_FRAME, MAX_INSTRUCTION,
};
use softplc_io::xgt::plan::{plan, Direction, Mapping, Plan, PlanErrorKind, Planned};
use softplc_io::xgt::{
    Address, Cpu, DataType, DecodeError, Device, EncodeError, FrameDecoder, Header, NakCode, Name,
    Naming, Request, RequestFrame, Response, ResponseFrame, WriteItem,
};

// ---------------------------------------------------------------------------------
// Helpers

/// xorshift64*: enough randomness for test cases, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn name(s: &str) -> Name {
    Name::new(s.as_bytes()).unwrap()
}

fn header(cpu: Cpu, invoke_id: u16, source: Source) -> Header {
    Header {
        company: CompanyId::LsisXgt,
        plc_info: 0,
        cpu: CpuInfo::Known(cpu),
        source,
        invoke_id,
        position: 0,
    }
}

fn no_panic<T>(what: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => panic!("panicked on {what}"),
    }
}

// ---------------------------------------------------------------------------------
// The reference's test vectors, both ways

const V1_READ_MW0: &str = "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 33 00 00 0E 00 00 3C 54 00 02 00 00 00 01 00 04 00 25 4D 57 30";
const V2_READ_MW0_ANSWER: &str = "4C 53 49 53 2D 58 47 54 00 00 11 01 A0 11 00 00 0E 00 03 2F 55 00 02 00 08 01 00 00 01 00 02 00 00 00";
const V3_READ_MB0_2: &str = "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 33 00 01 10 00 00 3F 54 00 14 00 00 00 01 00 04 00 25 4D 42 30 02 00";
const V4_READ_MB0_2_ANSWER: &str = "4C 53 49 53 2D 58 47 54 00 00 02 08 A0 11 00 01 0E 00 01 26 55 00 14 00 00 00 00 00 01 00 02 00 00 00";
const WRITE_MW100: &str = "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 33 01 00 14 00 00 43 58 00 02 00 00 00 01 00 06 00 25 4D 57 31 30 30 02 00 34 12";
const WRITE_MW100_ACK: &str =
    "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 11 01 00 0A 00 00 17 59 00 02 00 00 00 00 00 01 00";
const NAK_AREA_EXCEEDED: &str =
    "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 11 01 00 0A 00 00 17 55 00 02 00 00 00 FF FF 04 00";
const BCC0_READ_DW1100: &str = "4C 53 49 53 2D 58 47 54 00 00 00 00 A0 33 00 00 11 00 00 00 54 00 02 00 00 00 01 00 07 00 25 44 57 31 31 30 30";

fn check_request_vector(bytes: &str, expected: RequestFrame) {
    let bytes = hex(bytes);
    assert_eq!(RequestFrame::decode(&bytes), Ok(expected.clone()));
    assert_eq!(expected.encode().unwrap(), bytes);
    assert_eq!(frame_len(&bytes), Ok(Framing::Frame(bytes.len())));
}

fn check_response_vector(bytes: &str, expected: ResponseFrame) {
    let bytes = hex(bytes);
    assert_eq!(ResponseFrame::decode(&bytes), Ok(expected.clone()));
    assert_eq!(expected.encode().unwrap(), bytes);
    assert_eq!(frame_len(&bytes), Ok(Framing::Frame(bytes.len())));
}

#[test]
fn vector_1_individual_read_of_mw0_both_ways() {
    check_request_vector(
        V1_READ_MW0,
        RequestFrame {
            header: header(Cpu::Xgk, 0, Source::Client),
            request: Request::Read {
                ty: DataType::Word,
                names: vec![name("%MW0")],
            },
        },
    );
}

#[test]
fn vector_1_with_the_manuals_misprinted_bcc_is_refused_naming_both_sums() {
    let mut b = hex(V1_READ_MW0);
    b[19] = 0x4E;
    assert_eq!(
        RequestFrame::decode(&b),
        Err(DecodeError::Checksum {
            sent: 0x4E,
            sum: 0x3C
        })
    );
    assert_eq!(
        DecodeError::Checksum {
            sent: 0x4E,
            sum: 0x3C
        }
        .nak_code(),
        NakCode::HEADER_CHECKSUM
    );
}

#[test]
fn vector_2_read_answer_keeps_plc_info_position_and_the_reserved_word() {
    check_response_vector(
        V2_READ_MW0_ANSWER,
        ResponseFrame {
            header: Header {
                plc_info: 0x0111,
                position: 3,
                ..header(Cpu::Xgk, 0, Source::Plc)
            },
            reserved: 0x0108,
            response: Response::Read {
                ty: DataType::Word,
                values: vec![0],
            },
        },
    );
}

#[test]
fn vector_3_continuous_read_of_two_bytes_both_ways() {
    check_request_vector(
        V3_READ_MB0_2,
        RequestFrame {
            header: header(Cpu::Xgk, 0x0100, Source::Client),
            request: Request::ReadContinuous {
                name: name("%MB0"),
                len: 2,
            },
        },
    );
}

#[test]
fn vector_4_continuous_read_answer_both_ways() {
    check_response_vector(
        V4_READ_MB0_2_ANSWER,
        ResponseFrame {
            header: Header {
                plc_info: 0x0802,
                position: 1,
                ..header(Cpu::Xgk, 0x0100, Source::Plc)
            },
            reserved: 0,
            response: Response::ReadContinuous { data: vec![0, 0] },
        },
    );
}

#[test]
fn composed_write_of_mw100_both_ways() {
    check_request_vector(
        WRITE_MW100,
        RequestFrame {
            header: header(Cpu::Xgk, 1, Source::Client),
            request: Request::Write {
                ty: DataType::Word,
                items: vec![WriteItem {
                    name: name("%MW100"),
                    value: 0x1234,
                }],
            },
        },
    );
}

#[test]
fn composed_write_acknowledgement_both_ways() {
    check_response_vector(
        WRITE_MW100_ACK,
        ResponseFrame {
            header: header(Cpu::Xgk, 1, Source::Plc),
            reserved: 0,
            response: Response::Write {
                ty: DataType::Word,
                blocks: 1,
            },
        },
    );
}

#[test]
fn composed_nak_area_exceeded_both_ways() {
    let frame = ResponseFrame {
        header: header(Cpu::Xgk, 1, Source::Plc),
        reserved: 0,
        response: Response::Nak {
            command: 0x0055,
            type_code: 0x0002,
            status: 0xFFFF,
            code: NakCode::AREA_EXCEEDED,
        },
    };
    check_response_vector(NAK_AREA_EXCEEDED, frame.clone());
    // A server builds the same answer from the request it refuses.
    let req = Request::Read {
        ty: DataType::Word,
        names: vec![name("%MW0")],
    };
    assert_eq!(req.nak(NakCode::AREA_EXCEEDED), frame.response);
    assert_eq!(
        frame.response.answers(&req),
        Err(AnswerError::Nak {
            code: NakCode::AREA_EXCEEDED,
            status: 0xFFFF
        })
    );
}

#[test]
fn a_public_clients_frame_with_bcc_0_is_accepted_and_answered_with_the_sum() {
    let b = hex(BCC0_READ_DW1100);
    let f = RequestFrame::decode(&b).unwrap();
    assert_eq!(
        f,
        RequestFrame {
            header: header(Cpu::Xgk, 0, Source::Client),
            request: Request::Read {
                ty: DataType::Word,
                names: vec![name("%DW1100")],
            },
        }
    );
    let again = f.encode().unwrap();
    assert_eq!(again[..19], b[..19]);
    assert_eq!(again[20..], b[20..]);
    let sum = b[..19].iter().fold(0u8, |s, x| s.wrapping_add(*x));
    assert_eq!(again[19], sum);
    let a = Address::from_wire(&name("%DW1100"), &Naming::new(Cpu::Xgk)).unwrap();
    assert_eq!((a.device, a.ty), (Device::D, DataType::Word));
}

// ---------------------------------------------------------------------------------
// Round trips of every form

fn gen_name(rng: &mut Rng) -> Name {
    let n = rng.range(NAME_MIN, NAME_MAX);
    let b: Vec<u8> = (0..n).map(|_| 0x21 + rng.below(0x5E) as u8).collect();
    Name::new(&b).unwrap()
}

fn gen_header(rng: &mut Rng, source: Source) -> Header {
    let cpu = if rng.chance(5) {
        CpuInfo::from_code(rng.next() as u8)
    } else {
        CpuInfo::Known(Cpu::ALL[rng.below(5)])
    };
    Header {
        company: if rng.chance(4) {
            CompanyId::LgisGlofa
        } else {
            CompanyId::LsisXgt
        },
        plc_info: rng.next() as u16,
        cpu,
        source: if rng.chance(8) {
            Source::from_code(rng.next() as u8)
        } else {
            source
        },
        invoke_id: rng.next() as u16,
        position: rng.next() as u8,
    }
}

fn gen_type(rng: &mut Rng) -> DataType {
    DataType::ALL[rng.below(5)]
}

fn gen_value(rng: &mut Rng, ty: DataType) -> u64 {
    rng.next() & ty.max_value()
}

fn gen_request(rng: &mut Rng, max: usize) -> Request {
    match rng.below(4) {
        0 => Request::Read {
            ty: gen_type(rng),
            names: (0..rng.range(1, 16)).map(|_| gen_name(rng)).collect(),
        },
        1 => Request::ReadContinuous {
            name: gen_name(rng),
            len: rng.range(1, max) as u16,
        },
        2 => {
            let ty = gen_type(rng);
            Request::Write {
                ty,
                items: (0..rng.range(1, 16))
                    .map(|_| WriteItem {
                        name: gen_name(rng),
                        value: gen_value(rng, ty),
                    })
                    .collect(),
            }
        }
        _ => {
            let n = rng.range(1, max);
            Request::WriteContinuous {
                name: gen_name(rng),
                data: rng.bytes(n),
            }
        }
    }
}

fn gen_response(rng: &mut Rng, max: usize) -> Response {
    match rng.below(5) {
        0 => {
            let ty = gen_type(rng);
            Response::Read {
                ty,
                values: (0..rng.range(1, 16)).map(|_| gen_value(rng, ty)).collect(),
            }
        }
        1 => {
            let n = rng.range(1, max);
            Response::ReadContinuous { data: rng.bytes(n) }
        }
        2 => Response::Write {
            ty: gen_type(rng),
            blocks: rng.range(1, 16) as u16,
        },
        3 => Response::WriteContinuous,
        _ => Response::Nak {
            command: rng.next() as u16,
            type_code: rng.next() as u16,
            status: [0xFFFF, 0x00FF, rng.range(1, 0xFFFF) as u16][rng.below(3)],
            code: NakCode::new(rng.next() as u16),
        },
    }
}

fn gen_request_frame(rng: &mut Rng) -> RequestFrame {
    let header = gen_header(rng, Source::Client);
    let request = gen_request(rng, header.cpu.max_continuous());
    RequestFrame { header, request }
}

fn gen_response_frame(rng: &mut Rng) -> ResponseFrame {
    let header = gen_header(rng, Source::Plc);
    let response = gen_response(rng, header.cpu.max_continuous());
    ResponseFrame {
        header,
        reserved: rng.next() as u16,
        response,
    }
}

#[test]
fn every_request_form_round_trips_through_bytes() {
    for seed in 1..=3000u64 {
        let mut rng = Rng(seed);
        let f = gen_request_frame(&mut rng);
        let b = f.encode().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(b.len() <= MAX_FRAME, "seed {seed}");
        assert_eq!(frame_len(&b), Ok(Framing::Frame(b.len())), "seed {seed}");
        assert_eq!(RequestFrame::decode(&b), Ok(f), "seed {seed}");
    }
}

#[test]
fn every_response_form_round_trips_through_bytes() {
    for seed in 1..=3000u64 {
        let mut rng = Rng(seed);
        let f = gen_response_frame(&mut rng);
        let b = f.encode().unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert!(b.len() <= MAX_FRAME, "seed {seed}");
        assert_eq!(ResponseFrame::decode(&b), Ok(f), "seed {seed}");
    }
}

#[test]
fn the_largest_frames_fit_the_framing_limit_exactly() {
    let f = RequestFrame {
        header: header(Cpu::Xgk, 0, Source::Client),
        request: Request::WriteContinuous {
            name: name("%DB1234567890123"),
            data: vec![0xAB; 1400],
        },
    };
    let b = f.encode().unwrap();
    assert_eq!(b.len(), MAX_FRAME);
    assert_eq!(b.len() - HEADER_LEN, MAX_INSTRUCTION);
    assert_eq!(RequestFrame::decode(&b), Ok(f));
}

// ---------------------------------------------------------------------------------
// NAK codes

#[test]
fn every_known_nak_code_travels_with_its_number_and_meaning() {
    for (code, meaning) in NakCode::KNOWN {
        for status in [0xFFFF, 0x00FF] {
            let f = ResponseFrame {
                header: header(Cpu::Xgi, 9, Source::Plc),
                reserved: 0,
                response: Response::Nak {
                    command: 0x59,
                    type_code: 0x14,
                    status,
                    code,
                },
            };
            let b = f.encode().unwrap();
            assert_eq!(u16::from_le_bytes([b[28], b[29]]), code.code());
            let d = ResponseFrame::decode(&b).unwrap();
            assert_eq!(d, f);
            let Response::Nak { code: c, .. } = d.response else {
                unreachable!()
            };
            assert_eq!(c.meaning(), Some(meaning));
            assert!(c.to_string().contains(meaning));
        }
    }
    let codes: Vec<u16> = NakCode::KNOWN.iter().map(|(c, _)| c.code()).collect();
    assert_eq!(
        codes,
        vec![1, 2, 3, 4, 5, 6, 0x10, 0x11, 0x12, 0x75, 0x76, 0x77, 0x78]
    );
}

#[test]
fn unknown_nak_codes_are_passed_through_with_their_number() {
    for code in [0x0000, 0x0007, 0x0013, 0x0079, 0x1234, 0xFFFF] {
        let f = ResponseFrame {
            header: header(Cpu::Xgk, 0, Source::Plc),
            reserved: 0,
            response: Response::Nak {
                command: 0x55,
                type_code: 2,
                status: 0xFFFF,
                code: NakCode::new(code),
            },
        };
        let d = ResponseFrame::decode(&f.encode().unwrap()).unwrap();
        let Response::Nak { code: c, .. } = d.response else {
            unreachable!()
        };
        assert_eq!(c.code(), code);
        if NakCode::KNOWN.iter().all(|(k, _)| k.code() != code) {
            assert_eq!(c.meaning(), None);
            assert!(c.to_string().contains(&format!("0x{code:04X}")));
        }
    }
}

#[test]
fn a_nak_with_a_one_byte_code_or_trailing_bytes_is_still_read() {
    let mut b = hex(NAK_AREA_EXCEEDED);
    b.pop();
    b[16] = 9;
    b[19] = 0;
    let Response::Nak { code, .. } = ResponseFrame::decode(&b).unwrap().response else {
        panic!()
    };
    assert_eq!(code, NakCode::AREA_EXCEEDED);
    let mut b = hex(NAK_AREA_EXCEEDED);
    b.extend_from_slice(&[0xEE, 0xEE]);
    b[16] = 12;
    b[19] = 0;
    let Response::Nak { code, .. } = ResponseFrame::decode(&b).unwrap().response else {
        panic!()
    };
    assert_eq!(code, NakCode::AREA_EXCEEDED);
    let mut b = hex(NAK_AREA_EXCEEDED);
    b.truncate(28);
    b[16] = 8;
    b[19] = 0;
    assert_eq!(
        ResponseFrame::decode(&b),
        Err(DecodeError::Truncated { at: 28, need: 2 })
    );
}

#[test]
fn a_nak_with_status_0_cannot_be_encoded() {
    let f = ResponseFrame {
        header: header(Cpu::Xgk, 0, Source::Plc),
        reserved: 0,
        response: Response::Nak {
            command: 0x55,
            type_code: 2,
            status: 0,
            code: NakCode::COMMAND,
        },
    };
    assert_eq!(f.encode(), Err(EncodeError::NakStatus));
}

// ---------------------------------------------------------------------------------
// Hostile frames

/// A frame with a valid header (BCC 0) around `body`.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut b = Header::request(Cpu::Xgk, 0x4242)
        .encode(body.len() as u16)
        .to_vec();
    b.extend_from_slice(body);
    b
}

#[test]
fn a_request_claiming_1000_blocks_is_refused_before_reading_them() {
    let mut body = vec![0x54, 0, 0x02, 0, 0, 0];
    body.extend_from_slice(&1000u16.to_le_bytes());
    body.extend_from_slice(&[4, 0, b'%', b'M', b'W', b'0']);
    let e = RequestFrame::decode(&framed(&body)).unwrap_err();
    assert_eq!(e, DecodeError::BlockCount(1000));
    assert_eq!(e.nak_code(), NakCode::TOO_MANY_BLOCKS);
    let mut body = vec![0x55, 0, 0x02, 0, 0, 0, 0, 0];
    body.extend_from_slice(&1000u16.to_le_bytes());
    assert_eq!(
        ResponseFrame::decode(&framed(&body)),
        Err(DecodeError::BlockCount(1000))
    );
    let mut body = vec![0x54, 0, 0x14, 0, 0, 0];
    body.extend_from_slice(&1000u16.to_le_bytes());
    assert_eq!(
        RequestFrame::decode(&framed(&body)),
        Err(DecodeError::ContinuousBlocks(1000))
    );
}

#[test]
fn names_of_0_and_200_characters_are_refused_with_their_length() {
    let body = [0x54, 0, 0x02, 0, 0, 0, 1, 0, 0, 0];
    let e = RequestFrame::decode(&framed(&body)).unwrap_err();
    assert_eq!(e, DecodeError::NameLength { block: 0, len: 0 });
    assert_eq!(e.nak_code(), NakCode::NAME_LENGTH);
    let mut body = vec![
        0x54, 0, 0x02, 0, 0, 0, 2, 0, 4, 0, b'%', b'M', b'W', b'0', 200, 0,
    ];
    body.extend_from_slice(&[b'A'; 200]);
    let f = framed(&body);
    assert_eq!(frame_len(&f), Ok(Framing::Frame(f.len())));
    assert_eq!(
        RequestFrame::decode(&f),
        Err(DecodeError::NameLength { block: 1, len: 200 })
    );
    assert_eq!(
        Address::parse(&"M".repeat(200), DataType::Word, &Naming::new(Cpu::Xgk))
            .unwrap_err()
            .kind,
        NameErrorKind::Number("expected a decimal address")
    );
}

#[test]
fn lying_lengths_are_refused_with_both_numbers() {
    let mut b = hex(V1_READ_MW0);
    b[16] = 100;
    b[19] = 0;
    assert_eq!(
        RequestFrame::decode(&b),
        Err(DecodeError::Length {
            header: 100,
            actual: 14
        })
    );
    b[16] = 10;
    assert_eq!(
        RequestFrame::decode(&b),
        Err(DecodeError::Length {
            header: 10,
            actual: 14
        })
    );
    // Through the stream decoder: the lie cuts the frame short, the rest is garbage.
    let mut d = FrameDecoder::new();
    d.push(&b);
    let first = d.next_frame().unwrap().unwrap();
    assert_eq!(first.len(), 30);
    assert_eq!(
        RequestFrame::decode(&first),
        Err(DecodeError::Truncated { at: 30, need: 4 })
    );
    assert!(matches!(d.next_frame(), Err(DecodeError::Company(_))));
    // A length no frame can have is refused before any byte of it arrives.
    b[16] = 0xFF;
    b[17] = 0xFF;
    assert_eq!(frame_len(&b[..20]), Err(DecodeError::TooLong(65535)));
}

#[test]
fn bodies_that_end_early_or_late_are_refused_with_the_offset() {
    let b = hex(WRITE_MW100);
    let mut short = b[..b.len() - 1].to_vec();
    short[16] -= 1;
    short[19] = 0;
    assert_eq!(
        RequestFrame::decode(&short),
        Err(DecodeError::Truncated { at: 38, need: 2 })
    );
    let mut long = b.clone();
    long.push(0);
    long[16] += 1;
    long[19] = 0;
    assert_eq!(
        RequestFrame::decode(&long),
        Err(DecodeError::Trailing { at: 40 })
    );
}

#[test]
fn bad_commands_types_sizes_and_names_get_their_nak_codes() {
    let cases: Vec<(Vec<u8>, DecodeError, NakCode)> = vec![
        (
            vec![0x99, 0, 2, 0, 0, 0, 1, 0],
            DecodeError::Command(0x99),
            NakCode::COMMAND,
        ),
        (
            vec![0x54, 0, 7, 0, 0, 0, 1, 0],
            DecodeError::DataType(7),
            NakCode::DATA_TYPE,
        ),
        (
            vec![
                0x58, 0, 2, 0, 0, 0, 1, 0, 4, 0, b'%', b'M', b'W', b'0', 4, 0, 1, 2, 3, 4,
            ],
            DecodeError::DataSize {
                block: 0,
                size: 4,
                expected: 2,
            },
            NakCode::DATA_TYPE,
        ),
        (
            vec![0x54, 0, 2, 0, 0, 0, 1, 0, 4, 0, b'%', b'M', 0xFF, b'0'],
            DecodeError::NameByte {
                block: 0,
                byte: 0xFF,
            },
            NakCode::DEVICE_NOT_SERVED,
        ),
        (
            vec![
                0x54, 0, 0x14, 0, 0, 0, 1, 0, 4, 0, b'%', b'M', b'B', b'0', 0x79, 0x05,
            ],
            DecodeError::ContinuousLength(1401),
            NakCode::BLOCK_TOO_LARGE,
        ),
        (
            vec![0x54, 0, 2, 0, 0, 0, 0, 0],
            DecodeError::BlockCount(0),
            NakCode::TOO_MANY_BLOCKS,
        ),
    ];
    for (body, err, code) in cases {
        let e = RequestFrame::decode(&framed(&body)).unwrap_err();
        assert_eq!(e, err);
        assert_eq!(e.nak_code(), code, "{e}");
        assert!(!e.to_string().is_empty());
    }
    let mut b = framed(&[0x54, 0, 2, 0, 0, 0, 1, 0]);
    b[..10].copy_from_slice(b"LSIS-XGX\0\0");
    let e = RequestFrame::decode(&b).unwrap_err();
    assert_eq!(e.nak_code(), NakCode::COMPANY_ID);
    assert!(e.breaks_stream());
}

fn mutate(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.range(1, 4) {
        match rng.below(7) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            1 => {
                let n = rng.below(b.len() + 1);
                b.truncate(n);
            }
            2 => {
                let n = rng.range(1, 40);
                b.extend(rng.bytes(n));
            }
            // The fields a liar would change: length, block count, name length.
            3 if b.len() >= 18 => {
                let v = [0u16, 1, 14, 1000, 1428, 1429, 0xFFFF][rng.below(7)];
                b[16..18].copy_from_slice(&v.to_le_bytes());
            }
            4 if b.len() >= 30 => {
                let at = [26, 28][rng.below(2)];
                let v = [0u16, 1, 16, 17, 1000, 0xFFFF][rng.below(6)];
                b[at..at + 2].copy_from_slice(&v.to_le_bytes());
            }
            5 if b.len() >= 30 => {
                let v = [0u16, 3, 4, 16, 17, 200, 0xFFFF][rng.below(7)];
                b[28..30].copy_from_slice(&v.to_le_bytes());
            }
            _ => {
                // Keep the Length field honest so the body checks are reached.
                if b.len() >= 20 {
                    let n = (b.len() - 20) as u16;
                    b[16..18].copy_from_slice(&n.to_le_bytes());
                }
            }
        }
        if b.len() >= 20 && rng.chance(2) {
            b[19] = 0;
        }
    }
    b
}

#[test]
fn mutated_and_random_frames_never_panic_and_decode_consistently() {
    let mut accepted = 0;
    for seed in 1..=20_000u64 {
        let mut rng = Rng(seed);
        let bytes = match rng.below(4) {
            0 => {
                let n = rng.below(80);
                rng.bytes(n)
            }
            1 => {
                let b = gen_request_frame(&mut rng).encode().unwrap();
                mutate(&mut rng, b)
            }
            2 => {
                let b = gen_response_frame(&mut rng).encode().unwrap();
                mutate(&mut rng, b)
            }
            _ => {
                // A valid header in front of random instruction bytes.
                let n = rng.below(60);
                framed(&rng.bytes(n))
            }
        };
        let what = format!("seed {seed}: {bytes:02X?}");
        let req = no_panic(&what, || RequestFrame::decode(&bytes));
        let resp = no_panic(&what, || ResponseFrame::decode(&bytes));
        let fl = no_panic(&what, || frame_len(&bytes));
        if let Ok(Framing::Frame(n)) = fl {
            assert!(n <= MAX_FRAME, "{what}");
        }
        for e in [req.as_ref().err(), resp.as_ref().err()]
            .into_iter()
            .flatten()
        {
            // Every error has a message and a NAK code, and neither panics.
            no_panic(&what, || (e.to_string(), e.nak_code(), e.breaks_stream()));
        }
        // What decodes, and can be encoded again, decodes to the same value.
        if let Ok(f) = req {
            accepted += 1;
            if let Ok(b) = f.encode() {
                assert_eq!(RequestFrame::decode(&b), Ok(f), "{what}");
            }
        }
        if let Ok(f) = resp {
            accepted += 1;
            if let Ok(b) = f.encode() {
                assert_eq!(ResponseFrame::decode(&b), Ok(f), "{what}");
            }
        }
    }
    // The mutations leave some frames valid: the decode paths past the checks run.
    assert!(accepted > 500, "only {accepted} mutated frames decoded");
}

#[test]
fn the_stream_decoder_survives_random_chunking_and_garbage() {
    for seed in 1..=500u64 {
        let mut rng = Rng(seed);
        let frames: Vec<Vec<u8>> = (0..rng.range(1, 6))
            .map(|_| gen_request_frame(&mut rng).encode().unwrap())
            .collect();
        let mut stream: Vec<u8> = frames.concat();
        let garbage = rng.chance(3);
        if garbage {
            let at = rng.below(stream.len());
            let n = rng.range(1, 30);
            let junk = rng.bytes(n);
            stream.splice(at..at, junk);
        }
        let mut d = FrameDecoder::new();
        let mut got = Vec::new();
        let mut failed = false;
        let mut at = 0;
        while at < stream.len() && !failed {
            let n = rng.range(1, 64).min(stream.len() - at);
            d.push(&stream[at..at + n]);
            at += n;
            loop {
                match no_panic(&format!("seed {seed}"), || d.next_frame()) {
                    Ok(Some(f)) => {
                        assert!(f.len() <= MAX_FRAME, "seed {seed}");
                        got.push(f);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
        }
        if !garbage {
            assert!(!failed, "seed {seed}");
            assert_eq!(got, frames, "seed {seed}");
            assert_eq!(d.buffered(), 0);
        }
    }
}

// ---------------------------------------------------------------------------------
// Planning

fn naming(cpu: Cpu) -> Naming {
    Naming::new(cpu)
}

fn m(text: &str, ty: DataType, count: u16, n: &Naming) -> Mapping {
    Mapping {
        address: Address::parse(text, ty, n).unwrap_or_else(|e| panic!("{e}")),
        count,
    }
}

fn kinds(p: &Plan) -> Vec<String> {
    p.requests
        .iter()
        .map(|r| match &r.kind {
            Planned::Continuous { name, len, .. } => format!("{name}+{len}"),
            Planned::Individual { ty, names } => format!(
                "{}[{}]",
                ty.letter(),
                names
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        })
        .collect()
}

#[test]
fn contiguous_words_of_a_device_become_one_continuous_read() {
    let n = naming(Cpu::Xgk);
    let maps: Vec<Mapping> = (0..100)
        .map(|i| m(&format!("D{i}"), DataType::Word, 1, &n))
        .collect();
    let p = plan(&maps, &n, Direction::Read, 0).unwrap();
    assert_eq!(kinds(&p), vec!["%DB0+200"]);
    assert_eq!(p.places[37].offset, 74);
    assert_eq!(p.buffer_len, 200);
}

#[test]
fn continuous_reads_split_at_1400_bytes_and_512_on_xgb() {
    let n = naming(Cpu::Xgk);
    let maps: Vec<Mapping> = (0..800)
        .map(|i| m(&format!("D{i}"), DataType::Word, 1, &n))
        .collect();
    let p = plan(&maps, &n, Direction::Read, 0).unwrap();
    assert_eq!(kinds(&p), vec!["%DB0+1400", "%DB1400+200"]);
    let x = naming(Cpu::XgbMk);
    let p = plan(&maps[..300], &x, Direction::Read, 0).unwrap();
    assert_eq!(kinds(&p), vec!["%DB0+512", "%DB512+88"]);
}

#[test]
fn scattered_values_share_individual_reads_of_16_blocks() {
    let n = naming(Cpu::Xgk);
    let devices = ["D", "M", "N", "T", "C", "R", "Z", "L"];
    let maps: Vec<Mapping> = (0..20)
        .map(|i| {
            m(
                &format!("{}{}", devices[i % 8], 1000 * i),
                DataType::Word,
                1,
                &n,
            )
        })
        .collect();
    let p = plan(&maps, &n, Direction::Read, 0).unwrap();
    assert_eq!(p.requests.len(), 2, "{:?}", kinds(&p));
    for r in &p.requests {
        assert!(matches!(r.kind, Planned::Individual { .. }));
    }
    // Ten scattered words: one frame, not ten.
    let p = plan(&maps[..10], &n, Direction::Read, 0).unwrap();
    assert_eq!(p.requests.len(), 1);
}

#[test]
fn nearby_ranges_merge_within_the_gap_and_stay_apart_without_it() {
    let n = naming(Cpu::Xgk);
    let maps = [
        m("D0", DataType::Word, 2, &n),
        m("D10", DataType::Word, 2, &n),
    ];
    let p = plan(&maps, &n, Direction::Read, 20).unwrap();
    assert_eq!(kinds(&p), vec!["%DB0+24"]);
    assert_eq!((p.places[0].offset, p.places[1].offset), (0, 20));
    // Without bridging, two ranges cost two frames; four blocks in one frame win.
    let p = plan(&maps, &n, Direction::Read, 0).unwrap();
    assert_eq!(kinds(&p), vec!["W[%DW0,%DW1,%DW10,%DW11]"]);
    assert_eq!((p.places[0].offset, p.places[1].offset), (0, 4));
}

#[test]
fn a_mapping_never_travels_in_two_requests() {
    let n = naming(Cpu::Xgk);
    let maps: Vec<Mapping> = (0..70)
        .map(|i| m(&format!("D{}", i * 10), DataType::Word, 10, &n))
        .collect();
    let p = plan(&maps, &n, Direction::Read, 0).unwrap();
    // 700 words = 1,400 bytes exactly: one request. One more mapping: two, split
    // between mappings.
    assert_eq!(kinds(&p), vec!["%DB0+1400"]);
    let maps: Vec<Mapping> = (0..71)
        .map(|i| m(&format!("D{}", i * 10 + i / 35), DataType::Word, 10, &n))
        .collect();
    let p = plan(&maps, &n, Direction::Read, 8).unwrap();
    for (i, place) in p.places.iter().enumerate() {
        let r = &p.requests[place.request];
        assert!(
            place.offset >= r.offset && place.offset + 20 <= r.offset + r.len(),
            "mapping {i}"
        );
    }
}

#[test]
fn bits_read_packed_from_bytes_and_contacts_individually() {
    let n = naming(Cpu::Xgk);
    let maps = [
        m("M0", DataType::Bit, 16, &n),
        m("M172C", DataType::Bit, 1, &n),
        m("T5", DataType::Bit, 1, &n),
        m("T5", DataType::Word, 1, &n),
    ];
    let p = plan(&maps, &n, Direction::Read, 0).unwrap();
    // M172C (bit 2764, byte 345) would cost a frame of its own: it joins the T5
    // contact, which only travels individually.
    assert_eq!(kinds(&p), vec!["%MB0+2", "%TB10+2", "X[%MX2764,%TX5]"]);
    assert_eq!(
        (p.places[0].offset, p.places[0].bit, p.places[0].packed),
        (0, 0, true)
    );
    assert_eq!((p.places[1].offset, p.places[1].packed), (4, false));
    assert_eq!((p.places[2].offset, p.places[2].packed), (5, false));
    assert_eq!(p.places[3].offset, 2);
    // With a gap, M172C's byte joins nothing either (345 bytes away).
    let p = plan(&maps[..2], &n, Direction::Read, 400).unwrap();
    assert_eq!(kinds(&p), vec!["%MB0+346"]);
    assert_eq!(
        (p.places[1].offset, p.places[1].bit, p.places[1].packed),
        (345, 4, true)
    );
}

#[test]
fn writes_never_bridge_gaps_and_bits_go_individually() {
    let n = naming(Cpu::Xgk);
    let maps = [
        m("D0", DataType::Word, 10, &n),
        m("D10", DataType::Word, 5, &n),
        m("D20", DataType::Word, 5, &n),
        m("M0", DataType::Bit, 16, &n),
        m("M10", DataType::Bit, 4, &n),
    ];
    let p = plan(&maps, &n, Direction::Write, 100).unwrap();
    assert_eq!(
        kinds(&p),
        vec![
            "%DB0+30",
            "%DB40+10",
            "X[%MX0,%MX1,%MX2,%MX3,%MX4,%MX5,%MX6,%MX7,%MX8,%MX9,%MX10,%MX11,%MX12,%MX13,%MX14,%MX15]",
            "X[%MX16,%MX17,%MX18,%MX19]"
        ]
    );
}

#[test]
fn overlapping_writes_are_refused_naming_both() {
    let n = naming(Cpu::Xgk);
    let maps = [
        m("D0", DataType::Word, 2, &n),
        m("D5", DataType::Word, 1, &n),
        m("D1", DataType::Byte, 1, &n),
    ];
    let e = plan(&maps, &n, Direction::Write, 0).unwrap_err();
    assert_eq!(e.kind, PlanErrorKind::Overlap { other: 0 });
    assert_eq!(e.mapping, 2);
    assert!(e.to_string().contains("mapping 0"), "{e}");
    // Reading overlapping values is fine.
    assert!(plan(&maps, &n, Direction::Read, 0).is_ok());
}

#[test]
fn a_mapping_past_the_limits_is_refused_naming_it() {
    let n = naming(Cpu::Xgk);
    let maps = [
        m("D0", DataType::Word, 10, &n),
        m("D100", DataType::Word, 701, &n),
    ];
    let e = plan(&maps, &n, Direction::Read, 0).unwrap_err();
    assert_eq!(e.mapping, 1);
    assert_eq!(
        e.kind,
        PlanErrorKind::TooManyBytes {
            bytes: 1402,
            max: 1400
        }
    );
    assert_eq!(
        e.to_string(),
        "%DW100 x 701: 1402 bytes, more than the 1400 of one continuous request"
    );
    let x = naming(Cpu::XgbMk);
    let e = plan(&[m("D0", DataType::Word, 257, &x)], &x, Direction::Read, 0).unwrap_err();
    assert_eq!(
        e.kind,
        PlanErrorKind::TooManyBytes {
            bytes: 514,
            max: 512
        }
    );
    let e = plan(&[m("R0", DataType::Word, 17, &n)], &n, Direction::Read, 0).unwrap_err();
    assert!(e.to_string().contains("device R has no continuous"), "{e}");
    assert!(plan(&[m("R0", DataType::Word, 16, &n)], &n, Direction::Read, 0).is_ok());
    let e = plan(&[m("M0", DataType::Bit, 17, &n)], &n, Direction::Write, 0).unwrap_err();
    assert!(
        e.to_string().contains("bits are written individually"),
        "{e}"
    );
    let e = plan(&[m("D0", DataType::Word, 0, &n)], &n, Direction::Read, 0).unwrap_err();
    assert_eq!(e.kind, PlanErrorKind::ZeroCount);
    let xgi = naming(Cpu::Xgi);
    let e = plan(
        &[m("%IX0.2.5", DataType::Bit, 2, &xgi)],
        &xgi,
        Direction::Read,
        0,
    )
    .unwrap_err();
    assert_eq!(e.kind, PlanErrorKind::PathCount);
}

#[test]
fn an_unaligned_double_word_stays_in_a_continuous_read() {
    let n = naming(Cpu::Xgk);
    let maps = [m("D101", DataType::DWord, 1, &n)];
    let p = plan(&maps, &n, Direction::Read, 0).unwrap();
    assert_eq!(kinds(&p), vec!["%DB202+4"]);
}

#[test]
fn duplicate_reads_are_read_once() {
    let n = naming(Cpu::Xgk);
    let maps = [
        m("R7", DataType::Word, 3, &n),
        m("R7", DataType::Word, 3, &n),
    ];
    let p = plan(&maps, &n, Direction::Read, 0).unwrap();
    assert_eq!(kinds(&p), vec!["W[%RW7,%RW8,%RW9]"]);
    assert_eq!(p.places[0], p.places[1]);
}

#[test]
fn the_hex_bit_option_changes_the_names_not_the_plan() {
    let hex = Naming::hex_bit(Cpu::Xgk).unwrap();
    let maps = [m("M172C", DataType::Bit, 2, &hex)];
    let p = plan(&maps, &hex, Direction::Write, 0).unwrap();
    assert_eq!(kinds(&p), vec!["X[%MX172C,%MX172D]"]);
}

/// A PLC's memory for the planner tests: bytes per device, and T/C contacts.
struct Memory {
    bytes: HashMap<Device, Vec<u8>>,
    contacts: HashMap<(Device, u64), u8>,
    paths: HashMap<(Device, [u32; 3]), u64>,
}

const MEM: usize = 4096;

impl Memory {
    fn random(rng: &mut Rng) -> Memory {
        Memory {
            bytes: Device::ALL.iter().map(|d| (*d, rng.bytes(MEM))).collect(),
            contacts: HashMap::new(),
            paths: HashMap::new(),
        }
    }

    fn get(&self, a: &Address) -> u64 {
        match a.loc {
            Location::Path(p) => self.paths.get(&(a.device, p)).copied().unwrap_or(0),
            Location::Bit(pos) if a.ty == DataType::Bit && a.device.has_contacts() => {
                self.contacts.get(&(a.device, pos)).copied().unwrap_or(0) as u64
            }
            Location::Bit(pos) if a.ty == DataType::Bit => {
                let b = self.bytes[&a.device][(pos / 8) as usize];
                ((b >> (pos % 8)) & 1) as u64
            }
            Location::Bit(pos) => {
                let at = (pos / 8) as usize;
                let mut v = [0u8; 8];
                v[..a.ty.size()].copy_from_slice(&self.bytes[&a.device][at..at + a.ty.size()]);
                u64::from_le_bytes(v)
            }
        }
    }

    fn set(&mut self, a: &Address, v: u64) {
        match a.loc {
            Location::Path(p) => {
                self.paths.insert((a.device, p), v);
            }
            Location::Bit(pos) if a.ty == DataType::Bit && a.device.has_contacts() => {
                self.contacts.insert((a.device, pos), v as u8);
            }
            Location::Bit(pos) if a.ty == DataType::Bit => {
                let b = &mut self.bytes.get_mut(&a.device).unwrap()[(pos / 8) as usize];
                *b = (*b & !(1 << (pos % 8))) | (((v & 1) as u8) << (pos % 8));
            }
            Location::Bit(pos) => {
                let at = (pos / 8) as usize;
                self.bytes.get_mut(&a.device).unwrap()[at..at + a.ty.size()]
                    .copy_from_slice(&v.to_le_bytes()[..a.ty.size()]);
            }
        }
    }

    /// Answers a request as a PLC would, resolving the names it was sent.
    fn serve(&mut self, req: &Request, n: &Naming) -> Response {
        let resolve =
            |name: &Name| Address::from_wire(name, n).unwrap_or_else(|e| panic!("{name}: {e}"));
        match req {
            Request::Read { ty, names } => Response::Read {
                ty: *ty,
                values: names.iter().map(|x| self.get(&resolve(x))).collect(),
            },
            Request::ReadContinuous { name, len } => {
                let a = resolve(name);
                assert_eq!(a.ty, DataType::Byte);
                let Location::Bit(pos) = a.loc else { panic!() };
                let at = (pos / 8) as usize;
                Response::ReadContinuous {
                    data: self.bytes[&a.device][at..at + *len as usize].to_vec(),
                }
            }
            Request::Write { ty, items } => {
                for it in items {
                    self.set(&resolve(&it.name), it.value);
                }
                Response::Write {
                    ty: *ty,
                    blocks: items.len() as u16,
                }
            }
            Request::WriteContinuous { name, data } => {
                let a = resolve(name);
                let Location::Bit(pos) = a.loc else { panic!() };
                let at = (pos / 8) as usize;
                self.bytes.get_mut(&a.device).unwrap()[at..at + data.len()].copy_from_slice(data);
                Response::WriteContinuous
            }
        }
    }
}

fn gen_mapping(rng: &mut Rng, n: &Naming, write: bool) -> Mapping {
    loop {
        let devices: Vec<Device> = Device::ALL
            .iter()
            .copied()
            .filter(|d| d.exists(n.cpu()))
            .collect();
        let device = devices[rng.below(devices.len())];
        let ty = gen_type(rng);
        let count = if rng.chance(4) {
            rng.range(1, 40)
        } else {
            rng.range(1, 4)
        } as u16;
        // Keep within the simulated memory; align most values, not all.
        let max_byte = (MEM - 8 * count as usize - 8) as u64;
        let byte = rng.next() % max_byte.min(if rng.chance(2) { 64 } else { 2000 });
        let pos = if ty == DataType::Bit {
            byte * 8 + rng.below(8) as u64
        } else if rng.chance(5) {
            byte * 8
        } else {
            (byte / ty.size() as u64) * ty.bits()
        };
        let address = Address {
            device,
            ty,
            loc: Location::Bit(pos),
        };
        let mapping = Mapping { address, count };
        // Only what a user could write: names that parse, plans that accept it.
        let ok = address
            .wire_name(n)
            .map(|w| Address::parse(w.as_str(), ty, n).is_ok())
            .unwrap_or(address.continuous(n));
        if ok && plan(&[mapping], n, Direction::Read, 0).is_ok() {
            if write && plan(&[mapping], n, Direction::Write, 0).is_err() {
                continue;
            }
            return mapping;
        }
    }
}

#[test]
fn planned_reads_scatter_every_value_to_its_place() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed);
        let cpu = [Cpu::Xgk, Cpu::XgbMk, Cpu::Xgi][rng.below(3)];
        let n = if cpu == Cpu::Xgk && rng.chance(3) {
            Naming::hex_bit(cpu).unwrap()
        } else {
            naming(cpu)
        };
        let maps: Vec<Mapping> = (0..rng.range(1, 60))
            .map(|_| gen_mapping(&mut rng, &n, false))
            .collect();
        let gap = [0, 8, 64][rng.below(3)];
        let p =
            plan(&maps, &n, Direction::Read, gap).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let mut mem = Memory::random(&mut rng);
        let mut buf = vec![0u8; p.buffer_len];
        for r in &p.requests {
            let req = r.read_request();
            // Every planned request encodes within the CPU's limits.
            RequestFrame {
                header: Header::request(cpu, 0),
                request: req.clone(),
            }
            .encode()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let resp = mem.serve(&req, &n);
            r.store(&resp, &mut buf).unwrap();
        }
        for (i, mp) in maps.iter().enumerate() {
            for k in 0..mp.count as usize {
                let a = mp.address.element(k as u64).unwrap();
                assert_eq!(
                    p.places[i].get(&buf, a.ty, k),
                    mem.get(&a),
                    "seed {seed}: mapping {i} ({} x {}) value {k}",
                    mp.address,
                    mp.count
                );
            }
        }
    }
}

#[test]
fn planned_writes_change_exactly_the_mapped_memory() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed);
        let cpu = [Cpu::Xgk, Cpu::XgbIec, Cpu::XgbMk][rng.below(3)];
        let n = naming(cpu);
        // Writes must not overlap: keep mappings that do not.
        let mut maps: Vec<Mapping> = Vec::new();
        for _ in 0..rng.range(1, 40) {
            let mp = gen_mapping(&mut rng, &n, true);
            let mut with = maps.clone();
            with.push(mp);
            if plan(&with, &n, Direction::Write, 0).is_ok() {
                maps = with;
            }
        }
        let p = plan(&maps, &n, Direction::Write, 0).unwrap();
        let mut mem = Memory::random(&mut rng);
        let before: HashMap<Device, Vec<u8>> = mem.bytes.clone();
        let mut expected = Memory {
            bytes: before.clone(),
            contacts: HashMap::new(),
            paths: HashMap::new(),
        };
        let mut buf = vec![0u8; p.buffer_len];
        for (i, mp) in maps.iter().enumerate() {
            for k in 0..mp.count as usize {
                let a = mp.address.element(k as u64).unwrap();
                let v = gen_value(&mut rng, a.ty);
                p.places[i].set(&mut buf, a.ty, k, v);
                expected.set(&a, v);
            }
        }
        for r in &p.requests {
            let req = r.write_request(&buf);
            assert_eq!(mem.serve(&req, &n).answers(&req), Ok(()));
        }
        assert!(
            mem.bytes == expected.bytes,
            "seed {seed}: memory differs from the mapped writes"
        );
        assert_eq!(mem.contacts, expected.contacts, "seed {seed}");
    }
}

#[test]
fn the_planner_is_never_worse_than_one_frame_per_device_range_or_16_blocks() {
    // Bounds the planner must meet on random read sets: at most one frame per mapping,
    // and no more than the all-continuous plan where every mapping can go continuous.
    for seed in 1..=300u64 {
        let mut rng = Rng(seed);
        let n = naming(Cpu::Xgk);
        let maps: Vec<Mapping> = (0..rng.range(1, 50))
            .map(|_| {
                let d = ["D", "M", "N"][rng.below(3)];
                m(&format!("{d}{}", rng.below(3000)), DataType::Word, 1, &n)
            })
            .collect();
        let p = plan(&maps, &n, Direction::Read, 0).unwrap();
        assert!(p.requests.len() <= maps.len(), "seed {seed}");
        assert!(
            p.requests.len() <= maps.len().div_ceil(16),
            "seed {seed}: {} frames for {} single words",
            p.requests.len(),
            maps.len()
        );
    }
}
