//! RTU frames: unit id, PDU, CRC-16 (little-endian), and where a frame ends.
//!
//! tokio-modbus decodes PDUs publicly (`Request`/`Response: TryFrom<Bytes>`), and this
//! module uses that, but its PDU *encoders* and its RTU framing are private to its own
//! codec, whose decoder gives up for good after a burst of corrupt frames (upstream
//! issue #374). So the few encoders the driver needs are written here, and the framing
//! too: a frame's length follows from its function code (and byte count), and a frame
//! whose CRC does not match is skipped one byte at a time, for ever, until the line
//! carries valid frames again.

use std::borrow::Cow;

use tokio_modbus::bytes::Bytes;
use tokio_modbus::prelude::{ExceptionCode, Request, Response};

/// The Modbus CRC (CRC-16/MODBUS: poly 0x8005 reflected, init 0xFFFF).
const CRC: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_MODBUS);

/// Longest RTU frame: unit id, 253-byte PDU, CRC.
pub const MAX_FRAME: usize = 256;

/// The CRC of `bytes`.
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC.checksum(bytes)
}

/// Appends the CRC of everything in `frame` (low byte first, as RTU sends it).
pub fn push_crc(frame: &mut Vec<u8>) {
    let c = crc16(frame);
    frame.extend_from_slice(&c.to_le_bytes());
}

/// True when the last two bytes of `frame` are the CRC of the others.
pub fn crc_ok(frame: &[u8]) -> bool {
    frame.len() >= 4 && {
        let (body, c) = frame.split_at(frame.len() - 2);
        crc16(body).to_le_bytes() == [c[0], c[1]]
    }
}

/// What can be said of a frame's length from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    /// The whole frame is this many bytes.
    Known(usize),
    /// More bytes are needed to tell.
    NeedMore,
    /// The function code does not say (an unsupported function): only a gap on the
    /// line delimits it.
    Unknown,
}

fn counted(buf: &[u8], at: usize, fixed: usize) -> Len {
    match buf.get(at) {
        Some(&n) => Len::Known(fixed + n as usize),
        None => Len::NeedMore,
    }
}

/// Length of the request frame starting `buf` (unit, function, ...).
pub fn request_len(buf: &[u8]) -> Len {
    let Some(&fc) = buf.get(1) else {
        return Len::NeedMore;
    };
    match fc {
        1..=6 => Len::Known(8),
        // unit fc addr(2) qty(2) count data crc(2)
        15 | 16 => counted(buf, 6, 9),
        22 => Len::Known(10),
        // unit fc raddr(2) rqty(2) waddr(2) wqty(2) count data crc(2)
        23 => counted(buf, 10, 13),
        _ => Len::Unknown,
    }
}

/// Length of the response frame starting `buf`.
pub fn response_len(buf: &[u8]) -> Len {
    let Some(&fc) = buf.get(1) else {
        return Len::NeedMore;
    };
    match fc {
        f if f & 0x80 != 0 => Len::Known(5),
        // unit fc count data crc(2)
        1..=4 | 23 => counted(buf, 2, 5),
        5 | 6 | 15 | 16 => Len::Known(8),
        22 => Len::Known(10),
        _ => Len::Unknown,
    }
}

/// Appends a request's PDU. `None` for a request this driver never sends.
pub fn encode_request(req: &Request<'_>, out: &mut Vec<u8>) -> Option<()> {
    let u16s = |out: &mut Vec<u8>, vs: &[u16]| vs.iter().for_each(|v| out.extend(v.to_be_bytes()));
    match req {
        Request::ReadCoils(a, n) => put(out, 1, &[*a, *n]),
        Request::ReadDiscreteInputs(a, n) => put(out, 2, &[*a, *n]),
        Request::ReadHoldingRegisters(a, n) => put(out, 3, &[*a, *n]),
        Request::ReadInputRegisters(a, n) => put(out, 4, &[*a, *n]),
        Request::WriteSingleCoil(a, v) => put(out, 5, &[*a, if *v { 0xFF00 } else { 0 }]),
        Request::WriteSingleRegister(a, v) => put(out, 6, &[*a, *v]),
        Request::WriteMultipleCoils(a, vs) => {
            put(out, 15, &[*a, vs.len() as u16]);
            let packed = pack_bits(vs);
            out.push(packed.len() as u8);
            out.extend_from_slice(&packed);
        }
        Request::WriteMultipleRegisters(a, vs) => {
            put(out, 16, &[*a, vs.len() as u16]);
            out.push((vs.len() * 2) as u8);
            u16s(out, vs);
        }
        _ => return None,
    }
    Some(())
}

/// Appends a response's PDU (or an exception's, for `Err`).
pub fn encode_response(fc: u8, resp: &Result<Response, ExceptionCode>, out: &mut Vec<u8>) {
    let resp = match resp {
        Ok(r) => r,
        Err(code) => {
            out.push(fc | 0x80);
            out.push(u8::from(*code));
            return;
        }
    };
    match resp {
        Response::ReadCoils(vs) | Response::ReadDiscreteInputs(vs) => {
            let packed = pack_bits(vs);
            out.push(fc);
            out.push(packed.len() as u8);
            out.extend_from_slice(&packed);
        }
        Response::ReadHoldingRegisters(vs)
        | Response::ReadInputRegisters(vs)
        | Response::ReadWriteMultipleRegisters(vs) => {
            out.push(fc);
            out.push((vs.len() * 2) as u8);
            vs.iter().for_each(|v| out.extend(v.to_be_bytes()));
        }
        Response::WriteSingleCoil(a, v) => put(out, 5, &[*a, if *v { 0xFF00 } else { 0 }]),
        Response::WriteSingleRegister(a, v) => put(out, 6, &[*a, *v]),
        Response::WriteMultipleCoils(a, n) => put(out, 15, &[*a, *n]),
        Response::WriteMultipleRegisters(a, n) => put(out, 16, &[*a, *n]),
        Response::MaskWriteRegister(a, and, or) => put(out, 22, &[*a, *and, *or]),
        // The service answers nothing else.
        _ => {
            out.push(fc | 0x80);
            out.push(u8::from(ExceptionCode::ServerDeviceFailure));
        }
    }
}

fn put(out: &mut Vec<u8>, fc: u8, words: &[u16]) {
    out.push(fc);
    words.iter().for_each(|w| out.extend(w.to_be_bytes()));
}

fn pack_bits(vs: &[bool]) -> Vec<u8> {
    let mut packed = vec![0u8; vs.len().div_ceil(8)];
    for (i, b) in vs.iter().enumerate() {
        if *b {
            packed[i / 8] |= 1 << (i % 8);
        }
    }
    packed
}

/// Decodes a request PDU (tokio-modbus's decoder).
pub fn decode_request(pdu: &[u8]) -> std::io::Result<Request<'static>> {
    Request::try_from(Bytes::copy_from_slice(pdu))
}

/// Decodes a response PDU: the response, or the exception the device answered.
pub fn decode_response(pdu: &[u8]) -> std::io::Result<Result<Response, ExceptionCode>> {
    if pdu.first().is_some_and(|fc| fc & 0x80 != 0) {
        let code = pdu.get(1).copied().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "exception without a code")
        })?;
        return Ok(Err(ExceptionCode::new(code)));
    }
    Response::try_from(Bytes::copy_from_slice(pdu)).map(Ok)
}

/// The echo a write gets from a device, for a broadcast that gets none.
pub fn broadcast_echo(req: &Request<'_>) -> Option<Response> {
    Some(match req {
        Request::WriteSingleCoil(a, v) => Response::WriteSingleCoil(*a, *v),
        Request::WriteSingleRegister(a, v) => Response::WriteSingleRegister(*a, *v),
        Request::WriteMultipleCoils(a, vs) => Response::WriteMultipleCoils(*a, vs.len() as u16),
        Request::WriteMultipleRegisters(a, vs) => {
            Response::WriteMultipleRegisters(*a, vs.len() as u16)
        }
        _ => return None,
    })
}

/// A whole request frame for `unit`.
pub fn request_frame(unit: u8, req: &Request<'_>) -> Option<Vec<u8>> {
    let mut f = vec![unit];
    encode_request(req, &mut f)?;
    push_crc(&mut f);
    Some(f)
}

/// Owned copy of a request (for requests that outlive their buffers).
pub fn owned(req: Request<'_>) -> Request<'static> {
    match req {
        Request::WriteMultipleCoils(a, vs) => {
            Request::WriteMultipleCoils(a, Cow::Owned(vs.into_owned()))
        }
        Request::WriteMultipleRegisters(a, vs) => {
            Request::WriteMultipleRegisters(a, Cow::Owned(vs.into_owned()))
        }
        Request::ReadCoils(a, n) => Request::ReadCoils(a, n),
        Request::ReadDiscreteInputs(a, n) => Request::ReadDiscreteInputs(a, n),
        Request::ReadHoldingRegisters(a, n) => Request::ReadHoldingRegisters(a, n),
        Request::ReadInputRegisters(a, n) => Request::ReadInputRegisters(a, n),
        Request::WriteSingleCoil(a, v) => Request::WriteSingleCoil(a, v),
        Request::WriteSingleRegister(a, v) => Request::WriteSingleRegister(a, v),
        Request::MaskWriteRegister(a, b, c) => Request::MaskWriteRegister(a, b, c),
        other => Request::Custom(other.function_code().value(), Cow::Owned(Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crc_matches_the_specifications_example() {
        // Modbus over serial line, appendix: 01 03 00 00 00 0A -> CRC C5 CD.
        let mut f = vec![0x01, 0x03, 0x00, 0x00, 0x00, 0x0A];
        push_crc(&mut f);
        assert_eq!(&f[6..], &[0xC5, 0xCD]);
        assert!(crc_ok(&f));
        f[3] ^= 1;
        assert!(!crc_ok(&f));
    }

    #[test]
    fn lengths_follow_from_function_codes_and_byte_counts() {
        assert_eq!(request_len(&[1]), Len::NeedMore);
        assert_eq!(request_len(&[1, 3]), Len::Known(8));
        assert_eq!(request_len(&[1, 16, 0, 0, 0, 2]), Len::NeedMore);
        assert_eq!(request_len(&[1, 16, 0, 0, 0, 2, 4]), Len::Known(13));
        assert_eq!(request_len(&[1, 0x41]), Len::Unknown);
        assert_eq!(response_len(&[1, 0x83]), Len::Known(5));
        assert_eq!(response_len(&[1, 3, 20]), Len::Known(25));
        assert_eq!(response_len(&[1, 16]), Len::Known(8));
    }

    #[test]
    fn encoded_requests_decode_back_to_the_same_request() {
        let reqs = [
            Request::ReadHoldingRegisters(7, 3),
            Request::WriteSingleCoil(4, true),
            Request::WriteMultipleCoils(
                1,
                Cow::Owned(vec![
                    true, false, true, true, false, false, false, false, true,
                ]),
            ),
            Request::WriteMultipleRegisters(9, Cow::Owned(vec![1, 0xBEEF])),
        ];
        for r in reqs {
            let f = request_frame(5, &r).unwrap();
            assert_eq!(request_len(&f), Len::Known(f.len()));
            assert!(crc_ok(&f));
            assert_eq!(decode_request(&f[1..f.len() - 2]).unwrap(), r);
        }
    }

    #[test]
    fn encoded_responses_decode_back_to_the_same_response() {
        let cases = [
            (
                1u8,
                Ok(Response::ReadCoils(vec![
                    true, false, true, false, false, false, false, false,
                ])),
            ),
            (3, Ok(Response::ReadHoldingRegisters(vec![1, 2, 3]))),
            (16, Ok(Response::WriteMultipleRegisters(4, 2))),
            (3, Err(ExceptionCode::IllegalDataAddress)),
        ];
        for (fc, r) in cases {
            let mut f = vec![9];
            encode_response(fc, &r, &mut f);
            push_crc(&mut f);
            assert_eq!(response_len(&f), Len::Known(f.len()));
            assert_eq!(decode_response(&f[1..f.len() - 2]).unwrap(), r);
        }
    }
}
