//! A gate in front of tokio-modbus's server codec that checks each request frame.
//!
//! tokio-modbus 0.17 decodes requests it can parse and drops the connection on the
//! rest. Two things need more care on a server that hostile clients can reach:
//! - The Modbus specification wants an *answer* to a malformed request: exception 01
//!   (illegal function) for function codes the server does not implement, exception
//!   03 (illegal data value) for a quantity out of range or a byte count or length that
//!   does not match (its text for 03 names "the implied length is incorrect").
//! - The 0.17 decoder indexes past the data of a Write Multiple Coils request whose
//!   quantity exceeds its byte count and panics; the panic ends only the connection
//!   task, but it must not be reachable from the network at all.
//!
//! [`FrameGuard`] wraps the TCP stream. It reads whole MBAP frames itself, answers
//! frames for another unit id with exception 0B (gateway target failed to respond)
//! before looking at their PDU, answers malformed ones with the right exception
//! (writing it straight to the socket), closes the connection on frames that cannot be
//! delimited (wrong protocol id, impossible length), closes idle connections and
//! connections evicted to make room for a new one, and hands tokio-modbus exactly one
//! well-formed frame per read, so that each exception is written after the previous
//! response.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::modbus::frame::{FrameBuf, FrameError, HEADER};

use crate::server::conns::ConnHandle;

/// The error a connection ends with when its idle timeout expires: an orderly close,
/// counted as `closed_idle`, which the server must not count as a connection error.
#[derive(Debug)]
pub struct IdleClose;

impl std::fmt::Display for IdleClose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no complete request within the idle timeout")
    }
}

impl std::error::Error for IdleClose {}

impl IdleClose {
    /// True when `e` is an idle close.
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|x| x.is::<IdleClose>())
    }
}

/// Function codes the server implements.
pub const SUPPORTED: [u8; 10] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0F, 0x10, 0x16, 0x17];

/// Exception code for a request to a unit id the server is not.
pub const GATEWAY_TARGET: u8 = 0x0B;

/// True when a server with unit id `own` answers requests for `unit`: its own id, and
/// 0 and 255, which on Modbus TCP address the device itself (the Modbus TCP
/// implementation guide: the unit id is not needed to reach a TCP device; 255 is the
/// recommended value and 0 is accepted too; there is no broadcast on TCP).
pub fn serves(unit: u8, own: u8) -> bool {
    unit == own || unit == 0 || unit == 255
}

/// What to do with one complete frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Well-formed: pass it on.
    Pass,
    /// Answer with this exception code.
    Exception(u8),
}

/// Checks the PDU (function code and data) of a request.
pub fn check_pdu(pdu: &[u8]) -> Verdict {
    let Some(&fc) = pdu.first() else {
        return Verdict::Exception(0x01);
    };
    if !SUPPORTED.contains(&fc) {
        return Verdict::Exception(0x01);
    }
    let u16_at = |i: usize| -> Option<usize> {
        Some(u16::from_be_bytes([*pdu.get(i)?, *pdu.get(i + 1)?]) as usize)
    };
    let bad = Verdict::Exception(0x03);
    let ok = |cond: bool| if cond { Verdict::Pass } else { bad };
    match fc {
        0x01 | 0x02 => match u16_at(3) {
            Some(q) if pdu.len() == 5 => ok((1..=2000).contains(&q)),
            _ => bad,
        },
        0x03 | 0x04 => match u16_at(3) {
            Some(q) if pdu.len() == 5 => ok((1..=125).contains(&q)),
            _ => bad,
        },
        0x05 => match u16_at(3) {
            Some(v) if pdu.len() == 5 => ok(v == 0x0000 || v == 0xFF00),
            _ => bad,
        },
        0x06 => ok(pdu.len() == 5),
        0x0F => match (u16_at(3), pdu.get(5)) {
            (Some(q), Some(&bc)) => ok((1..=1968).contains(&q)
                && bc as usize == q.div_ceil(8)
                && pdu.len() == 6 + bc as usize),
            _ => bad,
        },
        0x10 => match (u16_at(3), pdu.get(5)) {
            (Some(q), Some(&bc)) => {
                ok((1..=123).contains(&q) && bc as usize == 2 * q && pdu.len() == 6 + bc as usize)
            }
            _ => bad,
        },
        0x16 => ok(pdu.len() == 7),
        0x17 => match (u16_at(3), u16_at(7), pdu.get(9)) {
            (Some(rq), Some(wq), Some(&bc)) => ok((1..=125).contains(&rq)
                && (1..=121).contains(&wq)
                && bc as usize == 2 * wq
                && pdu.len() == 10 + bc as usize),
            _ => bad,
        },
        _ => Verdict::Exception(0x01),
    }
}

/// Counters a guard reports into.
pub trait GuardStats: Send + Sync {
    /// A request was answered with an exception by the guard.
    fn rejected(&self, code: u8);
    /// The connection was closed because a frame could not be delimited.
    fn closed_malformed(&self);
    /// The connection was closed for idleness.
    fn closed_idle(&self);
    /// A request for another unit id was answered with exception 0B.
    fn wrong_unit(&self);
}

/// The transport wrapper; see the module docs.
pub struct FrameGuard<T, S> {
    inner: T,
    stats: S,
    /// Request bytes read, and a frame that passed being handed on to the codec.
    frame: FrameBuf,
    out: [u8; 9],
    out_len: usize,
    out_pos: usize,
    idle: Option<Duration>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// When the last complete request arrived. The timer is re-armed from it only when
    /// it fires: resetting a tokio timer for every request costs more than the request.
    last_request: Instant,
    /// The unit id served.
    unit_id: u8,
    /// The connection's entry in the server's list, through which it may be evicted.
    handle: Option<Arc<ConnHandle>>,
}

impl<T, S: GuardStats> FrameGuard<T, S> {
    /// Wraps `inner` of a server with unit id `unit_id`; `idle`: close after this long
    /// without a complete request.
    pub fn new(inner: T, stats: S, unit_id: u8, idle: Option<Duration>) -> Self {
        FrameGuard {
            inner,
            stats,
            frame: FrameBuf::default(),
            out: [0; 9],
            out_len: 0,
            out_pos: 0,
            idle,
            deadline: idle.map(|d| Box::pin(tokio::time::sleep(d))),
            last_request: Instant::now(),
            unit_id,
            handle: None,
        }
    }

    /// Lets the server close this connection through `handle` (see
    /// `Connections::evict_idlest`).
    pub fn with_handle(mut self, handle: Arc<ConnHandle>) -> Self {
        self.handle = Some(handle);
        self
    }

    fn reset_idle(&mut self) {
        if self.idle.is_some() || self.handle.is_some() {
            let now = Instant::now();
            self.last_request = now;
            if let Some(h) = &self.handle {
                h.touch(now.into_std());
            }
        }
    }

    fn evicted(&self) -> bool {
        self.handle.as_ref().is_some_and(|h| h.is_evicted())
    }

    /// True when the connection has been idle too long; re-arms the timer otherwise.
    fn idle_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let (Some(idle), Some(d)) = (self.idle, self.deadline.as_mut()) else {
            return false;
        };
        while d.as_mut().poll(cx).is_ready() {
            let due = self.last_request + idle;
            if Instant::now() >= due {
                return true;
            }
            d.as_mut().reset(due);
        }
        false
    }

    /// Looks at the buffered bytes: Ok(Some(len)) when a whole frame of `len` bytes is
    /// there, Ok(None) when more bytes are needed, Err when the stream is not Modbus.
    /// A header is judged once its unit id is there too.
    fn frame_len(&self) -> io::Result<Option<usize>> {
        if self.frame.filled() < HEADER {
            return Ok(None);
        }
        self.frame.frame_len().map_err(|e| {
            let what = match e {
                FrameError::Protocol(_) => "protocol id is not 0",
                FrameError::Length(_) => "impossible MBAP length",
            };
            io::Error::new(io::ErrorKind::InvalidData, what)
        })
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin, S: GuardStats + Unpin> AsyncRead for FrameGuard<T, S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            // 1. An exception answer still being written goes out first.
            while me.out_pos < me.out_len {
                match Pin::new(&mut me.inner).poll_write(cx, &me.out[me.out_pos..me.out_len]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => me.out_pos += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            // 2. Continue handing on a frame the codec could not take at once.
            if me.frame.is_passing() {
                me.frame.hand_on(dst);
                return Poll::Ready(Ok(()));
            }
            // 3. A whole frame buffered: judge it.
            match me.frame_len() {
                Err(e) => {
                    me.stats.closed_malformed();
                    return Poll::Ready(Err(e));
                }
                Ok(Some(len)) => {
                    me.reset_idle();
                    // The unit first: a frame for another unit gets 0B whatever its PDU.
                    let buf = me.frame.bytes();
                    let verdict = if serves(buf[6], me.unit_id) {
                        check_pdu(&buf[HEADER..len])
                    } else {
                        me.stats.wrong_unit();
                        Verdict::Exception(GATEWAY_TARGET)
                    };
                    match verdict {
                        Verdict::Pass => {
                            me.frame.pass(len);
                            continue;
                        }
                        Verdict::Exception(code) => {
                            me.stats.rejected(code);
                            let buf = me.frame.bytes();
                            let fc = buf.get(HEADER).copied().unwrap_or(0);
                            me.out[..4].copy_from_slice(&buf[..4]);
                            me.out[4..6].copy_from_slice(&3u16.to_be_bytes());
                            me.out[6] = buf[6];
                            me.out[7] = fc | 0x80;
                            me.out[8] = code;
                            me.out_len = 9;
                            me.out_pos = 0;
                            me.frame.consume(len);
                            continue;
                        }
                    }
                }
                Ok(None) => {}
            }
            // 4. Need more bytes (unless the server closed this connection to make room).
            if me.evicted() {
                return Poll::Ready(Ok(()));
            }
            match me.frame.poll_fill(&mut me.inner, cx) {
                // End of stream; any partial frame is dropped with it.
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if let Some(h) = &me.handle {
                        h.park(cx.waker());
                        if h.is_evicted() {
                            return Poll::Ready(Ok(()));
                        }
                    }
                    if me.idle_expired(cx) {
                        me.stats.closed_idle();
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            IdleClose,
                        )));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin, S: Unpin> AsyncWrite for FrameGuard<T, S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
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

    #[test]
    fn a_tcp_server_answers_its_unit_and_0_and_255() {
        assert!(serves(17, 17) && serves(0, 17) && serves(255, 17));
        assert!(!serves(1, 17) && !serves(16, 17) && !serves(254, 17));
    }

    #[test]
    fn unsupported_function_codes_get_illegal_function() {
        for fc in [0x00u8, 0x07, 0x08, 0x11, 0x2B, 0x41, 0x80, 0x83, 0xFF] {
            assert_eq!(
                check_pdu(&[fc, 0, 0, 0, 1]),
                Verdict::Exception(0x01),
                "{fc:#x}"
            );
        }
        assert_eq!(check_pdu(&[]), Verdict::Exception(0x01));
    }

    #[test]
    fn quantities_and_lengths_are_checked_per_function() {
        assert_eq!(check_pdu(&[0x03, 0, 0, 0, 125]), Verdict::Pass);
        assert_eq!(check_pdu(&[0x03, 0, 0, 0, 126]), Verdict::Exception(3));
        assert_eq!(check_pdu(&[0x03, 0, 0, 0, 0]), Verdict::Exception(3));
        assert_eq!(check_pdu(&[0x03, 0, 0, 0]), Verdict::Exception(3));
        assert_eq!(check_pdu(&[0x03, 0, 0, 0, 1, 9]), Verdict::Exception(3));
        assert_eq!(check_pdu(&[0x01, 0, 0, 0x07, 0xD0]), Verdict::Pass);
        assert_eq!(check_pdu(&[0x01, 0, 0, 0x07, 0xD1]), Verdict::Exception(3));
        assert_eq!(check_pdu(&[0x05, 0, 1, 0xFF, 0x00]), Verdict::Pass);
        assert_eq!(check_pdu(&[0x05, 0, 1, 0x12, 0x34]), Verdict::Exception(3));
        assert_eq!(check_pdu(&[0x10, 0, 0, 0, 2, 4, 0, 1, 0, 2]), Verdict::Pass);
        assert_eq!(
            check_pdu(&[0x10, 0, 0, 0, 2, 3, 0, 1, 0]),
            Verdict::Exception(3)
        );
        assert_eq!(
            check_pdu(&[0x10, 0x80, 0, 0x80, 0, 0]),
            Verdict::Exception(3)
        );
        assert_eq!(check_pdu(&[0x16, 0, 0, 0xFF, 0, 0, 1]), Verdict::Pass);
        assert_eq!(
            check_pdu(&[0x17, 0, 0, 0, 1, 0, 5, 0, 1, 2, 0, 9]),
            Verdict::Pass
        );
        assert_eq!(
            check_pdu(&[0x17, 0, 0, 0, 1, 0, 5, 0, 1, 4, 0, 9]),
            Verdict::Exception(3)
        );
    }

    #[test]
    fn write_coils_with_too_few_data_bytes_is_refused_before_the_decoder_sees_it() {
        // Quantity 100 needs 13 bytes of coil data; this request carries one. The
        // tokio-modbus 0.17 decoder would index past it.
        assert_eq!(
            check_pdu(&[0x0F, 0, 0, 0, 100, 1, 0xFF]),
            Verdict::Exception(3)
        );
        assert_eq!(check_pdu(&[0x0F, 0, 0, 0, 9, 2, 0xFF, 0x01]), Verdict::Pass);
    }
}
