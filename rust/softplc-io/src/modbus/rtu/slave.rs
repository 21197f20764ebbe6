//! The RTU slave: the Modbus server's tables, map and write rules, answered on a
//! serial line as one unit id.
//!
//! The driver is [`crate::ModbusServer`] with a serial [`crate::ServerConfig::serial`]
//! (see [`rtu_server`]); this module is its line loop. tokio-modbus's RTU server is
//! not used: its decoder gives up for good after a burst of about 20 corrupt frames
//! (upstream issue #374) and it cannot tell other units' traffic from noise. Framing
//! here never gives up:
//! - A frame's length follows from its function code (and byte count), read as a
//!   request or, for other slaves' traffic on a shared line, as an answer; the first
//!   reading whose CRC matches is the frame.
//! - When no reading matches, one byte is dropped and framing starts again at the next:
//!   noise costs the bytes it garbled, never the slave.
//! - A silent interval (t3.5, and at least [`MIN_GAP`], because pseudo-terminals and
//!   USB adapters deliver bytes in bursts) ends whatever is buffered: a frame of a
//!   function whose length is unknown is taken whole if its CRC matches, anything else
//!   is a cut frame and dropped.
//!
//! Requests to other units get no answer (another slave on the line answers them);
//! broadcasts (unit 0) are carried out and get no answer either. A port that fails is
//! closed and reopened with back-off, with events.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value as Json};
use softplc_core::{IoEvent, IoEventKind};
use tokio::time::{sleep, Instant};
use tokio_modbus::prelude::{ExceptionCode, Request};

use crate::config::{RtuServerConfig, SerialPortConfig};
use crate::modbus::server::log::ServerLog;
use crate::modbus::server::service::ConnService;
use crate::modbus::ModbusServer;
use crate::runtime::{stopped, Shutdown};

use super::frame::{self, Len, MAX_FRAME};
use super::line::SerialLine;

/// Shortest gap that ends a frame, whatever the baud rate: pseudo-terminals and USB
/// adapters hand bytes over in bursts, with pauses of a millisecond or so inside one
/// frame, so at high baud rates the 1.75 ms of t3.5 would cut frames that are whole.
pub const MIN_GAP: Duration = Duration::from_millis(5);

/// First and longest wait before reopening a port that failed.
const REOPEN_MIN: Duration = Duration::from_millis(100);
const REOPEN_MAX: Duration = Duration::from_secs(5);

/// The RTU server driver for one `[[rtu_server]]`, named `name`: [`ModbusServer`] on
/// a serial line.
pub fn rtu_server(name: &str, cfg: &RtuServerConfig) -> ModbusServer {
    ModbusServer::new(name, cfg.server_config())
}

/// What the slave saw on its line. Written by its I/O thread.
#[derive(Debug, Default)]
pub struct SlaveStats {
    /// The port is open.
    pub open: AtomicBool,
    /// Times the port was opened.
    pub opens: AtomicU64,
    /// Failed opens, and failures of an open port.
    pub port_errors: AtomicU64,
    /// Whole frames with a good CRC (to any unit).
    pub frames: AtomicU64,
    /// Frames to this unit answered.
    pub answered: AtomicU64,
    /// Frames to other units (not answered).
    pub other_units: AtomicU64,
    /// Broadcasts carried out.
    pub broadcasts: AtomicU64,
    /// Bytes dropped while looking for a frame (noise, CRC errors).
    pub noise_bytes: AtomicU64,
    /// Incomplete frames ended by a silent interval.
    pub cut_frames: AtomicU64,
}

impl SlaveStats {
    /// The counters as JSON, for the monitor.
    pub fn json(&self, port: &SerialPortConfig) -> Json {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "port": port.name,
            "path": port.path,
            "baud": port.baud,
            "open": self.open.load(Ordering::Relaxed),
            "opens": ld(&self.opens),
            "port_errors": ld(&self.port_errors),
            "frames": ld(&self.frames),
            "answered": ld(&self.answered),
            "other_units": ld(&self.other_units),
            "broadcasts": ld(&self.broadcasts),
            "noise_bytes": ld(&self.noise_bytes),
            "cut_frames": ld(&self.cut_frames),
        })
    }
}

/// What framing found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// A whole frame of this many bytes.
    Frame(usize),
    /// Too few bytes to tell.
    NeedMore,
    /// No frame starts at the first byte.
    Noise,
}

/// Looks for a frame at the start of `buf`: read as a request, then as an answer
/// (other slaves' traffic); the first reading whose CRC matches wins. A function code
/// of unknown length is waited on (until a gap) only in a frame to `unit` or a
/// broadcast, and only while it could still be one frame: anything else is noise.
fn find_frame(buf: &[u8], unit: u8) -> Found {
    let mut need_more = false;
    for len in [frame::request_len(buf), frame::response_len(buf)] {
        match len {
            Len::Known(n) if n > MAX_FRAME + 12 => {}
            Len::Known(n) if buf.len() >= n => {
                if frame::crc_ok(&buf[..n]) {
                    return Found::Frame(n);
                }
            }
            Len::Known(_) | Len::NeedMore => need_more = true,
            Len::Unknown => {}
        }
    }
    if need_more {
        Found::NeedMore
    } else if buf.len() >= 2
        && buf.len() <= MAX_FRAME
        && (buf[0] == unit || buf[0] == 0)
        && frame::request_len(buf) == Len::Unknown
    {
        // An unknown function to us: only a silent interval can end it (see `at_gap`),
        // and it gets exception 01.
        Found::NeedMore
    } else {
        Found::Noise
    }
}

/// The line loop of one slave.
pub(crate) struct Slave {
    pub service: ConnService,
    pub port: SerialPortConfig,
    pub stats: Arc<SlaveStats>,
    pub log: Arc<ServerLog>,
}

impl Slave {
    /// Serves until `shutdown`, reopening the port when it fails.
    pub async fn run(self, shutdown: Shutdown) {
        let stop = stopped(shutdown);
        tokio::pin!(stop);
        tokio::select! {
            _ = &mut stop => {}
            _ = self.serve() => {}
        }
        self.stats.open.store(false, Ordering::Relaxed);
        self.log.summarise();
    }

    async fn serve(&self) -> ! {
        let mut backoff = REOPEN_MIN;
        let mut reported = false;
        loop {
            match SerialLine::open(&self.port) {
                Err(why) => {
                    self.stats.port_errors.fetch_add(1, Ordering::Relaxed);
                    if !reported {
                        reported = true;
                        self.log.push(
                            IoEvent::new(IoEventKind::ConnectFailed),
                            format!("modbus rtu server: {why}; retrying"),
                        );
                    }
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(REOPEN_MAX);
                }
                Ok(mut line) => {
                    self.stats.open.store(true, Ordering::Relaxed);
                    self.stats.opens.fetch_add(1, Ordering::Relaxed);
                    self.log.push(
                        IoEvent::new(IoEventKind::Connected),
                        format!(
                            "modbus rtu server: answering as unit {} on {} ({}, {} baud)",
                            self.service.unit_id, self.port.name, self.port.path, self.port.baud
                        ),
                    );
                    let why = self.serve_line(&mut line).await;
                    self.stats.open.store(false, Ordering::Relaxed);
                    self.stats.port_errors.fetch_add(1, Ordering::Relaxed);
                    self.log.push(
                        IoEvent::new(IoEventKind::Disconnected),
                        format!(
                            "modbus rtu server: port {} failed: {why}; reopening",
                            self.port.name
                        ),
                    );
                    reported = false;
                    backoff = REOPEN_MIN;
                    drop(line);
                    sleep(backoff).await;
                }
            }
        }
    }

    /// Frames and answers until the port fails; returns why.
    async fn serve_line(&self, line: &mut SerialLine) -> std::io::Error {
        let gap = line.t35().max(MIN_GAP);
        loop {
            // Every frame already buffered.
            loop {
                match find_frame(&line.rx, self.service.unit_id) {
                    Found::Frame(n) => {
                        let f: Vec<u8> = line.rx.drain(..n).collect();
                        if let Err(e) = self.frame(line, &f).await {
                            return e;
                        }
                    }
                    Found::Noise => {
                        line.rx.remove(0);
                        self.stats.noise_bytes.fetch_add(1, Ordering::Relaxed);
                    }
                    Found::NeedMore => break,
                }
            }
            let deadline = if line.rx.is_empty() {
                Instant::now() + Duration::from_secs(3600)
            } else {
                line.quiet_since() + gap
            };
            match line.receive(deadline).await {
                Ok(true) => {}
                Ok(false) => {
                    if let Err(e) = self.at_gap(line).await {
                        return e;
                    }
                }
                Err(e) => return e,
            }
        }
    }

    /// A silent interval ended what is buffered: a whole frame of unknown length if
    /// its CRC matches, else a cut frame.
    async fn at_gap(&self, line: &mut SerialLine) -> std::io::Result<()> {
        let buf = std::mem::take(&mut line.rx);
        if buf.len() >= 4 && buf.len() <= MAX_FRAME && frame::crc_ok(&buf) {
            return self.frame(line, &buf).await;
        }
        if !buf.is_empty() {
            self.stats.cut_frames.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// One whole frame with a good CRC.
    async fn frame(&self, line: &mut SerialLine, f: &[u8]) -> std::io::Result<()> {
        self.stats.frames.fetch_add(1, Ordering::Relaxed);
        let unit = f[0];
        if unit != 0 && unit != self.service.unit_id {
            self.stats.other_units.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let fc = f[1];
        let pdu = &f[1..f.len() - 2];
        self.service.stats.requests.fetch_add(1, Ordering::Relaxed);
        let answer = match frame::decode_request(pdu) {
            Ok(Request::Custom(..)) => Err(ExceptionCode::IllegalFunction),
            Ok(req) => self.service.dispatch(req),
            Err(_) if frame::request_len(f) == Len::Unknown => Err(ExceptionCode::IllegalFunction),
            Err(_) => Err(ExceptionCode::IllegalDataValue),
        };
        if let Err(code) = &answer {
            self.service.stats.exception(u8::from(*code));
        }
        if unit == 0 {
            // A broadcast is carried out (writes) and never answered.
            self.stats.broadcasts.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut out = Vec::with_capacity(MAX_FRAME);
        out.push(unit);
        frame::encode_response(fc, &answer, &mut out);
        frame::push_crc(&mut out);
        line.send(&out).await?;
        self.stats.answered.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(unit: u8, fc: u8, words: &[u16]) -> Vec<u8> {
        let mut f = vec![unit, fc];
        words.iter().for_each(|w| f.extend(w.to_be_bytes()));
        frame::push_crc(&mut f);
        f
    }

    #[test]
    fn a_whole_request_is_found_and_a_partial_one_waits() {
        let f = req(1, 3, &[0, 10]);
        assert_eq!(find_frame(&f, 1), Found::Frame(8));
        assert_eq!(find_frame(&f[..5], 1), Found::NeedMore);
    }

    #[test]
    fn a_corrupt_crc_is_noise_from_its_first_byte() {
        let mut f = req(1, 3, &[0, 10]);
        f[7] ^= 0xFF;
        assert_eq!(find_frame(&f, 1), Found::Noise);
    }

    #[test]
    fn another_slaves_answer_is_recognised_as_a_frame() {
        // Unit 2 answering three registers: 2 3 6 .. CRC (11 bytes; a request would be 8).
        let mut f = vec![2, 3, 6, 0, 1, 0, 2, 0, 3];
        frame::push_crc(&mut f);
        assert_eq!(find_frame(&f, 1), Found::Frame(11));
    }

    #[test]
    fn framing_recovers_after_any_amount_of_noise() {
        // Drop bytes one at a time as the loop does; a good frame after 10 kB of noise
        // is still found.
        let mut buf: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let good = req(1, 6, &[4, 99]);
        buf.extend_from_slice(&good);
        let mut found = None;
        while !buf.is_empty() {
            match find_frame(&buf, 1) {
                Found::Frame(n) => {
                    found = Some(buf[..n].to_vec());
                    break;
                }
                Found::Noise => {
                    buf.remove(0);
                }
                // A length that runs past the buffer: the gap would drop it; here, drop
                // a byte as the gap-then-retry would.
                Found::NeedMore => {
                    buf.remove(0);
                }
            }
        }
        assert_eq!(found, Some(good));
    }
}
