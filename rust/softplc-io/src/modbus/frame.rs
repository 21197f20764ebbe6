//! MBAP framing shared by the server's [`super::server::guard`] and the client's
//! [`super::client::transport`]: a buffer that collects the bytes of a stream, delimits whole
//! frames by their MBAP header and hands a frame on to a tokio-modbus codec, in pieces
//! when the codec's read buffer is smaller than the frame.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

/// MBAP header up to and including the length field.
pub const PREFIX: usize = 6;
/// MBAP header with the unit id.
pub const HEADER: usize = PREFIX + 1;
/// Largest frame: 7-byte MBAP header (with unit id) + 253-byte PDU.
pub const MAX_FRAME: usize = HEADER + 253;

/// Why a stream cannot be delimited into MBAP frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The protocol id is not 0 (Modbus).
    Protocol(u16),
    /// The length field is outside 2..=254 (unit id plus a PDU of 1..=253 bytes).
    Length(usize),
}

/// Bytes read from a stream, and the frame being handed on from its start.
pub struct FrameBuf {
    buf: [u8; MAX_FRAME],
    filled: usize,
    /// A frame being handed on: its length (0: none).
    passing: usize,
    /// Bytes of that frame the codec has taken already.
    handed: usize,
}

impl Default for FrameBuf {
    fn default() -> Self {
        FrameBuf {
            buf: [0; MAX_FRAME],
            filled: 0,
            passing: 0,
            handed: 0,
        }
    }
}

impl FrameBuf {
    /// The buffered bytes; a whole frame starts at index 0.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.filled]
    }

    /// Number of buffered bytes.
    pub fn filled(&self) -> usize {
        self.filled
    }

    /// Ok(Some(len)) when a whole frame of `len` bytes is buffered, Ok(None) when more
    /// bytes are needed, Err when the stream cannot be delimited.
    pub fn frame_len(&self) -> Result<Option<usize>, FrameError> {
        if self.filled < PREFIX {
            return Ok(None);
        }
        let proto = u16::from_be_bytes([self.buf[2], self.buf[3]]);
        let len = u16::from_be_bytes([self.buf[4], self.buf[5]]) as usize;
        if proto != 0 {
            return Err(FrameError::Protocol(proto));
        }
        // `len` counts the unit id and the PDU: at least a function code, at most 253.
        if !(2..=254).contains(&len) {
            return Err(FrameError::Length(len));
        }
        let total = PREFIX + len;
        Ok((self.filled >= total).then_some(total))
    }

    /// Drops the first `n` buffered bytes.
    pub fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    /// Starts handing on the whole frame of `len` bytes at the start of the buffer.
    pub fn pass(&mut self, len: usize) {
        self.passing = len;
        self.handed = 0;
    }

    /// True while a frame is being handed on.
    pub fn is_passing(&self) -> bool {
        self.passing > 0
    }

    /// Drops the frame being handed on, with the part the codec has not taken.
    pub fn drop_passing(&mut self) {
        let len = self.passing;
        self.passing = 0;
        self.handed = 0;
        self.consume(len);
    }

    /// Puts as much of the frame being handed on into `dst` as fits; the frame leaves
    /// the buffer once all of it is handed on.
    pub fn hand_on(&mut self, dst: &mut ReadBuf<'_>) {
        let n = (self.passing - self.handed).min(dst.remaining());
        dst.put_slice(&self.buf[self.handed..self.handed + n]);
        self.handed += n;
        if self.handed == self.passing {
            self.drop_passing();
        }
    }

    /// Reads more bytes from `inner` into the buffer: Ready(Ok(n)) with the number of
    /// bytes read, 0 at the end of the stream.
    pub fn poll_fill<R: AsyncRead + Unpin>(
        &mut self,
        inner: &mut R,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let mut rb = ReadBuf::new(&mut self.buf[self.filled..]);
        match Pin::new(inner).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                self.filled += n;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}
