//! One TCP connection to an XGT PLC: requests out, answers in, matched by invoke ID,
//! several in flight at once when the device allows it (pipelining).
//!
//! Answers are delimited by the frame decoder ([`crate::xgt::header::FrameDecoder`]):
//! a partial answer stays buffered across reads. An answer whose invoke ID matches no
//! request in flight (the answer to a request that timed out, or a PLC that echoes
//! another ID) is counted and dropped, never taken for another request's answer. What
//! ends an exchange:
//! - a stream that cannot be delimited (no company ID, an impossible length), an
//!   answer that cannot be decoded, the end of the stream or a socket error: the
//!   connection is unusable ([`Fail::Garbage`], [`Fail::Transport`]);
//! - a request without an answer in time ([`Fail::Timeout`]); if part of a frame was
//!   received and then nothing, the frame is truncated and the stream has lost its
//!   framing ([`Fail::Truncated`]).
//!
//! A negative answer is an answer: it comes back as [`Response::Nak`] for the caller
//! to judge.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::client::status::TransportStats;
use crate::xgt::codec::{AnswerError, Request, RequestFrame, Response, ResponseFrame};
use crate::xgt::error::NakCode;
use crate::xgt::header::{FrameDecoder, Header};
use crate::xgt::Cpu;

/// Why a request (and the exchange it was part of) failed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Fail {
    /// No connection at the time of the poll.
    NotConnected(String),
    /// No answer within the timeout. Carries an invoke ID the PLC answered with that
    /// matched no request while waiting, if it did.
    Timeout(Option<u16>),
    /// Part of an answer arrived, then nothing within the timeout.
    Truncated {
        /// Bytes received of the frame.
        got: usize,
        /// Bytes still missing.
        need: usize,
    },
    /// The connection failed or was closed.
    Transport(String),
    /// The stream could not be delimited: it has lost its framing.
    Garbage(String),
    /// A well-formed answer that does not fit its request (kind, type, count).
    Mismatch(String),
    /// The PLC answered with a NAK.
    Nak {
        /// LS's code.
        code: NakCode,
        /// The error status word.
        status: u16,
        /// The request it refused, for people (`%DB200 x 4 bytes`).
        on: Option<String>,
    },
}

impl Fail {
    /// After these the connection's state is unknown: drop it. (Timeouts are judged by
    /// the link's reconnection schedule.)
    pub fn breaks_connection(&self) -> bool {
        matches!(
            self,
            Fail::Transport(_) | Fail::Garbage(_) | Fail::Truncated { .. }
        )
    }

    /// Worth another attempt within the same poll (a NAK is the PLC's answer: no).
    pub fn retryable(&self) -> bool {
        !matches!(self, Fail::NotConnected(_) | Fail::Nak { .. })
    }

    /// For people (status, events).
    pub fn describe(&self) -> String {
        match self {
            Fail::NotConnected(why) => format!("not connected ({why})"),
            Fail::Timeout(None) => "timed out".to_string(),
            Fail::Timeout(Some(id)) => format!(
                "timed out; the PLC answered with invoke ID {id} (0x{id:04X}), which matches no request"
            ),
            Fail::Truncated { got, need } => format!(
                "truncated answer: {got} bytes of a frame, then nothing ({need} more expected)"
            ),
            Fail::Transport(e) => format!("connection error: {e}"),
            Fail::Garbage(e) => format!("garbled answer: {e}"),
            Fail::Mismatch(e) => format!("answer does not fit the request: {e}"),
            Fail::Nak { code, status, on } => match on {
                Some(on) => format!("NAK: {code} (status 0x{status:04X}) to {on}"),
                None => format!("NAK: {code} (status 0x{status:04X})"),
            },
        }
    }

    /// The failure an answer that does not fit its request makes.
    pub fn from_answer(e: AnswerError) -> Fail {
        match e {
            AnswerError::Nak { code, status } => Fail::Nak {
                code,
                status,
                on: None,
            },
            other => Fail::Mismatch(other.to_string()),
        }
    }
}

/// A request in flight.
struct InFlight {
    invoke: u16,
    /// Its place in the batch.
    index: usize,
    deadline: Instant,
}

/// An open connection to a PLC.
pub(crate) struct Conn {
    stream: TcpStream,
    cpu: Cpu,
    decoder: FrameDecoder,
    next_invoke: u16,
    out: Vec<u8>,
    rbuf: Box<[u8]>,
    stats: Arc<TransportStats>,
    /// Requests of an aborted exchange still in flight (their answers are dropped).
    stray: Vec<u16>,
}

impl Conn {
    /// Wraps an open stream to a PLC of type `cpu`.
    pub fn new(stream: TcpStream, cpu: Cpu, stats: Arc<TransportStats>) -> Conn {
        // Requests are small and latency matters more than packet count.
        let _ = stream.set_nodelay(true);
        Conn {
            stream,
            cpu,
            decoder: FrameDecoder::new(),
            next_invoke: 1,
            out: Vec::with_capacity(2048),
            rbuf: vec![0u8; 4096].into_boxed_slice(),
            stats,
            stray: Vec::new(),
        }
    }

    fn invoke(&mut self) -> u16 {
        let id = self.next_invoke;
        self.next_invoke = self.next_invoke.wrapping_add(1);
        id
    }

    /// Sends `requests` with at most `window` in flight and returns their answers in
    /// order (a NAK is an answer). Each request has `limit` from when it is sent. The
    /// first failure ends the exchange; answers still in flight then arrive later and
    /// are dropped.
    pub async fn exchange(
        &mut self,
        requests: &[Request],
        window: usize,
        limit: Duration,
    ) -> Result<Vec<Response>, Fail> {
        let mut answers: Vec<Option<Response>> = vec![None; requests.len()];
        let mut flight: Vec<InFlight> = Vec::with_capacity(window);
        let mut next = 0;
        let mut done = 0;
        let mut unmatched: Option<u16> = None;
        while done < requests.len() {
            // Fill the window, in one write.
            self.out.clear();
            let sent_at = Instant::now();
            while flight.len() < window.max(1) && next < requests.len() {
                let invoke = self.invoke();
                let frame = RequestFrame {
                    header: Header::request(self.cpu, invoke),
                    request: requests[next].clone(),
                };
                frame
                    .encode_into(&mut self.out)
                    .map_err(|e| Fail::Mismatch(format!("cannot encode the request: {e}")))?;
                flight.push(InFlight {
                    invoke,
                    index: next,
                    deadline: sent_at + limit,
                });
                next += 1;
            }
            if !self.out.is_empty() {
                let r = timeout_at(sent_at + limit, self.stream.write_all(&self.out)).await;
                match r {
                    Err(_) => return Err(self.abort(flight, Fail::Timeout(None))),
                    Ok(Err(e)) => return Err(Fail::Transport(e.to_string())),
                    Ok(Ok(())) => {}
                }
            }
            // Wait for an answer to any request in flight.
            let deadline = flight.iter().map(|f| f.deadline).min().unwrap_or(sent_at);
            let frame = match self.next_frame(deadline).await {
                Ok(f) => f,
                Err(Fail::Timeout(_)) => {
                    let f = match self.decoder.buffered() {
                        0 => Fail::Timeout(unmatched),
                        got => Fail::Truncated {
                            got,
                            need: self.decoder.need().unwrap_or(0),
                        },
                    };
                    return Err(self.abort(flight, f));
                }
                Err(f) => return Err(f),
            };
            self.stats.frames.fetch_add(1, Ordering::Relaxed);
            let decoded = ResponseFrame::decode(&frame);
            let invoke = match &decoded {
                Ok(r) => r.header.invoke_id,
                // Not decodable, but delimited: its header may still say whose it is.
                Err(_) => match Header::decode(&frame) {
                    Ok((h, _)) => h.invoke_id,
                    Err(e) => return Err(Fail::Garbage(e.to_string())),
                },
            };
            let Some(pos) = flight.iter().position(|f| f.invoke == invoke) else {
                self.stats.late.fetch_add(1, Ordering::Relaxed);
                if !self.stray.contains(&invoke) {
                    unmatched = Some(invoke);
                }
                self.stray.retain(|s| *s != invoke);
                continue;
            };
            let f = flight.swap_remove(pos);
            match decoded {
                Ok(r) => {
                    answers[f.index] = Some(r.response);
                    done += 1;
                }
                // Delimited but not decodable: the stream cannot be trusted any more
                // (a truncated answer completed by the next one's bytes looks so).
                Err(e) => return Err(self.abort(flight, Fail::Garbage(e.to_string()))),
            }
        }
        Ok(answers.into_iter().flatten().collect())
    }

    /// Ends an exchange with `fail`: requests still in flight will be answered late.
    fn abort(&mut self, flight: Vec<InFlight>, fail: Fail) -> Fail {
        // Remember a bounded number of them, so that their late answers are not taken
        // for a PLC answering with foreign invoke IDs.
        self.stray.extend(flight.iter().map(|f| f.invoke));
        let excess = self.stray.len().saturating_sub(64);
        self.stray.drain(..excess);
        fail
    }

    /// The next whole frame, read until `deadline`.
    async fn next_frame(&mut self, deadline: Instant) -> Result<Vec<u8>, Fail> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(f)) => return Ok(f),
                Ok(None) => {}
                Err(e) => return Err(Fail::Garbage(e.to_string())),
            }
            let n = match timeout_at(deadline, self.stream.read(&mut self.rbuf)).await {
                Err(_) => return Err(Fail::Timeout(None)),
                Ok(Err(e)) => return Err(Fail::Transport(e.to_string())),
                Ok(Ok(0)) => {
                    let why = match self.decoder.buffered() {
                        0 => "connection closed by the PLC".to_string(),
                        n => format!("connection closed by the PLC after {n} bytes of a frame"),
                    };
                    return Err(Fail::Transport(why));
                }
                Ok(Ok(n)) => n,
            };
            self.decoder.push(&self.rbuf[..n]);
        }
    }

    /// Closes the connection (best effort, bounded).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_millis(100), self.stream.shutdown()).await;
    }
}
