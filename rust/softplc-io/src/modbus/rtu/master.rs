//! The RTU master's side of one request: frame, send, wait for the answer, check it.
//!
//! Written here rather than on tokio-modbus's RTU client because that client has no
//! timeout of its own, waits for an answer to a broadcast that never comes (upstream
//! #331), and cannot tell a CRC error from a cut frame; the poller needs each of those
//! told apart. The answer's length follows from its function code, so the master
//! never waits for a gap to know that an answer is complete.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{sleep, Instant};
use tokio_modbus::prelude::{ExceptionCode, Request, Response};

use super::frame::{self, Len};
use super::line::SerialLine;

/// What the master saw on one line. Written by the line's I/O thread.
#[derive(Debug, Default)]
pub struct LineStats {
    /// Frames sent.
    pub frames_sent: AtomicU64,
    /// Answers received whole with a good CRC.
    pub frames_received: AtomicU64,
    /// Answers whose CRC did not match.
    pub crc_errors: AtomicU64,
    /// Answers cut short (the timeout struck in the middle of a frame).
    pub cut_frames: AtomicU64,
    /// Answers from another unit than the one asked.
    pub wrong_unit: AtomicU64,
    /// Answers with a function code that does not fit the request.
    pub wrong_function: AtomicU64,
    /// Bytes that arrived unasked (late answers, noise) and were dropped.
    pub stray_bytes: AtomicU64,
    /// Broadcasts sent.
    pub broadcasts: AtomicU64,
}

/// Why a request failed.
#[derive(Debug)]
pub enum RtuFail {
    /// No (whole) answer in time; `partial` bytes of one had come.
    Timeout {
        /// Bytes of a cut answer.
        partial: usize,
    },
    /// The port failed (unplugged, closed).
    Io(io::Error),
    /// An answer with a bad CRC.
    Crc,
    /// A well-formed answer from another unit.
    WrongUnit(u8),
    /// Something else that does not fit the request.
    Garbage(String),
}

/// The master on an open line.
#[derive(Debug)]
pub struct RtuMaster {
    line: SerialLine,
    stats: Arc<LineStats>,
    turnaround: Duration,
}

impl RtuMaster {
    /// A master on `line`, counting into `stats`.
    pub fn new(line: SerialLine, stats: Arc<LineStats>) -> RtuMaster {
        RtuMaster {
            turnaround: line.config().turnaround,
            line,
            stats,
        }
    }

    /// One request to `unit` (0: broadcast, answered by nobody), bounded by `limit`
    /// (which covers the wait for the silent interval and the drain too).
    pub async fn call(
        &mut self,
        unit: u8,
        req: &Request<'_>,
        limit: Duration,
    ) -> Result<Result<Response, ExceptionCode>, RtuFail> {
        let deadline = Instant::now() + limit;
        let Some(out) = frame::request_frame(unit, req) else {
            return Err(RtuFail::Garbage(format!(
                "{:?} is not sent on serial lines",
                req.function_code()
            )));
        };
        let stray = self.line.discard_pending().map_err(RtuFail::Io)?;
        if stray > 0 {
            self.stats
                .stray_bytes
                .fetch_add(stray as u64, Ordering::Relaxed);
        }
        match tokio::time::timeout_at(deadline, self.line.send(&out)).await {
            Err(_) => return Err(RtuFail::Timeout { partial: 0 }),
            Ok(Err(e)) => return Err(RtuFail::Io(e)),
            Ok(Ok(())) => {}
        }
        self.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
        if unit == 0 {
            // Nobody answers a broadcast; the slaves need the turnaround delay to act
            // on it before the next request.
            self.stats.broadcasts.fetch_add(1, Ordering::Relaxed);
            sleep(self.turnaround).await;
            return frame::broadcast_echo(req)
                .map(Ok)
                .ok_or_else(|| RtuFail::Garbage("only writes can be broadcast".to_string()));
        }
        let fc = out[1];
        let n = loop {
            match frame::response_len(&self.line.rx) {
                Len::Known(n) if self.line.rx.len() >= n => break n,
                Len::Unknown => {
                    let got = self.line.rx[1];
                    let _ = self.line.wait_silence(deadline).await;
                    self.stats.wrong_function.fetch_add(1, Ordering::Relaxed);
                    return Err(RtuFail::Garbage(format!(
                        "function code {got:#04x} in an answer to {fc:#04x}"
                    )));
                }
                _ => {}
            }
            match self.line.receive(deadline).await {
                Ok(true) => {}
                Ok(false) => {
                    let partial = self.line.rx.len();
                    if partial > 0 {
                        self.stats.cut_frames.fetch_add(1, Ordering::Relaxed);
                    }
                    return Err(RtuFail::Timeout { partial });
                }
                Err(e) => return Err(RtuFail::Io(e)),
            }
        };
        let answer = self.line.rx[..n].to_vec();
        if !frame::crc_ok(&answer) {
            self.stats.crc_errors.fetch_add(1, Ordering::Relaxed);
            // The length was read from a corrupt frame: let the rest of it pass.
            let _ = self.line.wait_silence(deadline).await;
            return Err(RtuFail::Crc);
        }
        self.line.rx.drain(..n);
        self.stats.frames_received.fetch_add(1, Ordering::Relaxed);
        if answer[0] != unit {
            self.stats.wrong_unit.fetch_add(1, Ordering::Relaxed);
            return Err(RtuFail::WrongUnit(answer[0]));
        }
        if answer[1] & 0x7F != fc {
            self.stats.wrong_function.fetch_add(1, Ordering::Relaxed);
            return Err(RtuFail::Garbage(format!(
                "function code {:#04x} in an answer to {fc:#04x}",
                answer[1]
            )));
        }
        frame::decode_response(&answer[1..n - 2]).map_err(|e| RtuFail::Garbage(e.to_string()))
    }
}
