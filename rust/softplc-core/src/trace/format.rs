//! The trace file's byte layout (see `docs/trace-format.md`).
//!
//! ```text
//! file   = MAGIC frame*
//! frame  = len:u32le crc:u32le payload[len]     crc = CRC-32 (IEEE) of payload, len >= 1
//! payload = one msgpack map with a "type" key
//! ```
//! The first frame is the header; block, events, gap and trigger frames follow; a
//! cleanly closed file ends with an index frame and a fixed-size end frame that points
//! at it. A reader stops at the first frame that is short, has a bad CRC or does not
//! decode, so a file cut at any byte keeps every whole frame before the cut.

use rmp::encode;

/// First eight bytes of every trace file.
pub const MAGIC: &[u8; 8] = b"\x89SPLTRC\n";
/// Format version written (major, minor). Readers refuse a newer major.
pub const VERSION: (u64, u64) = (1, 2);
/// Bytes of a frame header.
pub const FRAME_HEADER: usize = 8;
/// Bytes of the whole end frame (header included).
pub const END_FRAME_BYTES: usize = FRAME_HEADER + 25;

/// A small msgpack value for the non-bulk records.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum V {
    Nil,
    Bool(bool),
    U(u64),
    I(i64),
    S(String),
    A(Vec<V>),
    M(Vec<(&'static str, V)>),
    /// A map with owned keys (free-form header entries).
    MS(Vec<(String, V)>),
}

impl V {
    pub fn s(text: &str) -> V {
        V::S(text.to_string())
    }

    pub fn opt_s(text: Option<&str>) -> V {
        text.map_or(V::Nil, V::s)
    }
}

/// Appends the msgpack encoding of `v`. Writing into a Vec cannot fail.
pub(crate) fn encode(v: &V, out: &mut Vec<u8>) {
    match v {
        V::Nil => encode::write_nil(out).expect("vec write"),
        V::Bool(b) => encode::write_bool(out, *b).expect("vec write"),
        V::U(u) => {
            encode::write_uint(out, *u).expect("vec write");
        }
        V::I(i) => {
            encode::write_sint(out, *i).expect("vec write");
        }
        V::S(s) => encode::write_str(out, s).expect("vec write"),
        V::A(items) => {
            // The writer's lists (signals, index entries) hold far fewer than 2^32 items.
            encode::write_array_len(out, items.len() as u32).expect("vec write");
            for i in items {
                encode(i, out);
            }
        }
        V::M(entries) => {
            encode::write_map_len(out, entries.len() as u32).expect("vec write");
            for (k, v) in entries {
                encode::write_str(out, k).expect("vec write");
                encode(v, out);
            }
        }
        V::MS(entries) => {
            encode::write_map_len(out, entries.len() as u32).expect("vec write");
            for (k, v) in entries {
                encode::write_str(out, k).expect("vec write");
                encode(v, out);
            }
        }
    }
}

/// Starts a frame in `out`: reserves the frame header. Finish with [`end_frame`].
pub(crate) fn begin_frame(out: &mut Vec<u8>) -> usize {
    let at = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    at
}

/// A payload too large for a frame's u32 length field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameTooLarge(pub usize);

impl std::fmt::Display for FrameTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a trace frame of {} bytes exceeds the format's limit of {} bytes",
            self.0,
            u32::MAX
        )
    }
}

/// Fills in the header of the frame begun at `at` (length and CRC of what follows).
/// Fails, leaving the header zero (an invalid frame), when the payload does not fit
/// the u32 length.
pub(crate) fn end_frame(out: &mut [u8], at: usize) -> Result<(), FrameTooLarge> {
    let payload = &out[at + FRAME_HEADER..];
    let len = u32::try_from(payload.len()).map_err(|_| FrameTooLarge(payload.len()))?;
    let crc = crc32fast::hash(payload);
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A whole frame holding `v`.
pub(crate) fn frame(v: &V, out: &mut Vec<u8>) -> Result<(), FrameTooLarge> {
    let at = begin_frame(out);
    encode(v, out);
    end_frame(out, at)
}

/// The end frame: `{"type": "end", "index": OFFSET}` with the offset always as uint 64,
/// so the frame is exactly [`END_FRAME_BYTES`] long and found by reading the file's tail.
pub(crate) fn end_record(index_offset: u64, out: &mut Vec<u8>) {
    let at = begin_frame(out);
    encode::write_map_len(out, 2).expect("vec write");
    encode::write_str(out, "type").expect("vec write");
    encode::write_str(out, "end").expect("vec write");
    encode::write_str(out, "index").expect("vec write");
    encode::write_u64(out, index_offset).expect("vec write");
    end_frame(out, at).expect("the end frame is 25 bytes");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_frame_has_its_fixed_size_and_decodes() {
        let mut out = Vec::new();
        end_record(12345, &mut out);
        assert_eq!(out.len(), END_FRAME_BYTES);
        let len = u32::from_le_bytes(out[0..4].try_into().unwrap()) as usize;
        assert_eq!(len, END_FRAME_BYTES - FRAME_HEADER);
        let v = rmpv::decode::read_value(&mut &out[FRAME_HEADER..]).unwrap();
        assert_eq!(v["index"].as_u64(), Some(12345));
        assert_eq!(v["type"].as_str(), Some("end"));
    }

    #[test]
    fn frame_crc_covers_the_payload() {
        let mut out = Vec::new();
        frame(&V::M(vec![("type", V::s("x")), ("n", V::I(-3))]), &mut out).unwrap();
        let crc = u32::from_le_bytes(out[4..8].try_into().unwrap());
        assert_eq!(crc, crc32fast::hash(&out[FRAME_HEADER..]));
    }
}
