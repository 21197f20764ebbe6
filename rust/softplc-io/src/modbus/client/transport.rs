//! The client's transport: MBAP framing under tokio-modbus's client codec.
//!
//! tokio-modbus 0.17's TCP client sends a request, clears its read buffer and takes the
//! next frame on the stream as the answer; a frame with another transaction id is an
//! error, and the end of the stream is reported as the last OS error (an unrelated
//! `errno`, such as "Operation now in progress"). On a connection shared by several units
//! behind a gateway this is not enough: a unit that answers after its request timed out
//! puts a late answer on the stream, which would be taken for the answer to the next
//! request (to another unit), and a timeout in the middle of a frame would leave the
//! stream cut mid-frame.
//!
//! [`ClientTransport`] sits between the socket and the codec. It learns the transaction
//! id of each request as the codec writes it, reads whole MBAP frames itself (a partial
//! frame stays here across a timeout), hands the codec only the answer to the newest
//! request and drops, counting them, answers to earlier ones. A stream that cannot be
//! delimited (protocol id not 0, impossible length) is an `InvalidData` error; its end
//! is "connection closed by the device".

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use crate::client::status::TransportStats;
use crate::modbus::frame::{FrameBuf, FrameError, PREFIX};

/// The socket wrapper; see the module docs.
pub struct ClientTransport<T> {
    inner: T,
    stats: Arc<TransportStats>,
    /// Header bytes of the request being written, and the bytes of it still to come.
    out_hdr: [u8; PREFIX],
    out_hdr_len: usize,
    out_rest: usize,
    /// Transaction id of the newest request; None once it has been answered.
    expect: Option<u16>,
    /// Answer bytes read, and an answer being handed on to the codec.
    frame: FrameBuf,
}

impl<T> fmt::Debug for ClientTransport<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTransport")
            .field("expect", &self.expect)
            .field("filled", &self.frame.filled())
            .finish_non_exhaustive()
    }
}

impl<T> ClientTransport<T> {
    /// Wraps `inner`, counting into `stats`.
    pub fn new(inner: T, stats: Arc<TransportStats>) -> Self {
        ClientTransport {
            inner,
            stats,
            out_hdr: [0; PREFIX],
            out_hdr_len: 0,
            out_rest: 0,
            expect: None,
            frame: FrameBuf::default(),
        }
    }

    /// Follows the outgoing byte stream frame by frame to learn each request's
    /// transaction id.
    fn track_out(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.out_rest > 0 {
                let n = self.out_rest.min(data.len());
                self.out_rest -= n;
                data = &data[n..];
                continue;
            }
            let n = (PREFIX - self.out_hdr_len).min(data.len());
            self.out_hdr[self.out_hdr_len..self.out_hdr_len + n].copy_from_slice(&data[..n]);
            self.out_hdr_len += n;
            data = &data[n..];
            if self.out_hdr_len == PREFIX {
                self.out_hdr_len = 0;
                if self.frame.is_passing() {
                    // A new request: tokio-modbus has cleared its read buffer, so the
                    // rest of an answer it took only in part would arrive cut. Drop it.
                    self.frame.drop_passing();
                }
                self.expect = Some(u16::from_be_bytes([self.out_hdr[0], self.out_hdr[1]]));
                self.out_rest = u16::from_be_bytes([self.out_hdr[4], self.out_hdr[5]]) as usize;
            }
        }
    }

    /// Ok(Some(len)) when a whole frame is buffered, Ok(None) when more bytes are
    /// needed, Err when the stream cannot be delimited.
    fn frame_len(&self) -> io::Result<Option<usize>> {
        self.frame.frame_len().map_err(|e| {
            let what = match e {
                FrameError::Protocol(proto) => {
                    format!("protocol id {proto} in an answer (Modbus TCP uses 0)")
                }
                FrameError::Length(len) => format!("impossible MBAP length {len} in an answer"),
            };
            io::Error::new(io::ErrorKind::InvalidData, what)
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ClientTransport<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            // 1. Go on handing over an answer the codec could not take at once.
            if me.frame.is_passing() {
                me.frame.hand_on(dst);
                return Poll::Ready(Ok(()));
            }
            // 2. A whole frame: the awaited answer goes on, any other is late.
            if let Some(len) = me.frame_len()? {
                me.stats.frames.fetch_add(1, Ordering::Relaxed);
                let buf = me.frame.bytes();
                let tid = u16::from_be_bytes([buf[0], buf[1]]);
                if me.expect == Some(tid) {
                    me.expect = None;
                    me.frame.pass(len);
                } else {
                    me.stats.late.fetch_add(1, Ordering::Relaxed);
                    me.frame.consume(len);
                }
                continue;
            }
            // 3. More bytes.
            match me.frame.poll_fill(&mut me.inner, cx) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the device",
                    )))
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ClientTransport<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        let r = Pin::new(&mut me.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            me.track_out(&data[..n]);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn request(tid: u16) -> Vec<u8> {
        let mut f = tid.to_be_bytes().to_vec();
        f.extend_from_slice(&[0, 0, 0, 6, 1, 3, 0, 0, 0, 1]);
        f
    }

    fn answer(tid: u16, value: u8) -> Vec<u8> {
        let mut f = tid.to_be_bytes().to_vec();
        f.extend_from_slice(&[0, 0, 0, 5, 1, 3, 2, 0, value]);
        f
    }

    #[test]
    fn only_the_answer_to_the_newest_request_is_handed_on() {
        rt().block_on(async {
            let (ours, mut device) = tokio::io::duplex(1024);
            let stats = Arc::new(TransportStats::default());
            let mut t = ClientTransport::new(ours, stats.clone());
            // Request 7 written in two pieces, as a partial write would.
            let r = request(7);
            t.write_all(&r[..3]).await.unwrap();
            t.write_all(&r[3..]).await.unwrap();
            let mut got = vec![0u8; r.len()];
            device.read_exact(&mut got).await.unwrap();
            assert_eq!(got, r);
            // A late answer to request 6, then the answer to 7 split mid-frame.
            let a = answer(7, 42);
            let mut bytes = answer(6, 99);
            bytes.extend_from_slice(&a[..4]);
            device.write_all(&bytes).await.unwrap();
            device.write_all(&a[4..]).await.unwrap();
            let mut buf = vec![0u8; a.len()];
            t.read_exact(&mut buf).await.unwrap();
            assert_eq!(buf, a);
            assert_eq!(stats.late.load(Ordering::Relaxed), 1);
            assert_eq!(stats.frames.load(Ordering::Relaxed), 2);
            // A duplicate of an answer already taken is late too; the end of the stream
            // says who closed it.
            device.write_all(&a).await.unwrap();
            drop(device);
            let e = t.read(&mut buf).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
            assert_eq!(e.to_string(), "connection closed by the device");
            assert_eq!(stats.late.load(Ordering::Relaxed), 2);
        });
    }

    #[test]
    fn a_stream_that_cannot_be_delimited_is_invalid_data() {
        rt().block_on(async {
            for bad in [
                vec![0, 1, 0, 9, 0, 5, 1, 3, 2, 0, 1],
                vec![0, 1, 0, 0, 0x10, 0, 1],
            ] {
                let (ours, mut device) = tokio::io::duplex(1024);
                let mut t = ClientTransport::new(ours, Arc::default());
                t.write_all(&request(1)).await.unwrap();
                device.write_all(&bad).await.unwrap();
                let mut buf = [0u8; 16];
                let e = t.read(&mut buf).await.unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            }
        });
    }
}
