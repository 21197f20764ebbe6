//! One serial line: opening the port, and the RTU timing rules on it.
//!
//! The port is a tokio-serial stream on the I/O thread that owns the line. Sending ends
//! with a flush, which mio-serial implements as a blocking `tcdrain`: it returns when
//! the last byte has left the UART, and that is when the silent interval (t3.5) starts
//! to count. The blocking drain stalls only this line's thread: every serial line gets
//! a thread (and runtime) of its own, never shared with TCP connections or other lines.
//!
//! Ports are opened exclusively (TIOCEXCL, which root may override) and with an
//! advisory `flock`, which stops a second softplc (even as root) from opening a line
//! that one already drives: two masters on one line garble both.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{timeout_at, Instant};
use tokio_serial::{DataBits, SerialPortBuilderExt, SerialStream, StopBits};

use crate::config::{Parity, SerialPortConfig};

/// An open serial line.
pub struct SerialLine {
    stream: SerialStream,
    cfg: SerialPortConfig,
    t35: Duration,
    /// When the line last carried a byte (sent and drained, or received).
    quiet_since: Instant,
    /// Bytes received and not consumed yet.
    pub rx: Vec<u8>,
}

impl std::fmt::Debug for SerialLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialLine")
            .field("path", &self.cfg.path)
            .finish_non_exhaustive()
    }
}

/// Why a port could not be opened, in words that say what to do.
fn open_error(cfg: &SerialPortConfig, e: &io::Error) -> String {
    let path = &cfg.path;
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
            format!("cannot open {path}: no such port (unplugged?)")
        }
        Some(libc::EACCES) | Some(libc::EPERM) => format!(
            "cannot open {path}: permission denied (add the user to the port's group, e.g. dialout)"
        ),
        Some(libc::EBUSY) | Some(libc::EWOULDBLOCK) => {
            format!("cannot open {path}: busy (another program has it open)")
        }
        _ => format!("cannot open {path}: {e}"),
    }
}

impl SerialLine {
    /// Opens the port. Must run inside the line's tokio runtime.
    pub fn open(cfg: &SerialPortConfig) -> Result<SerialLine, String> {
        // serialport's errors keep the message but not the errno: tell the common
        // cases apart first, in words that say what to do.
        // (No trial open: opening a tty and closing it toggles DTR, which resets
        // some devices.)
        if let Err(e) = std::fs::metadata(&cfg.path) {
            return Err(open_error(cfg, &e));
        }
        let c_path = std::ffi::CString::new(cfg.path.as_bytes())
            .map_err(|_| format!("cannot open {}: NUL in the path", cfg.path))?;
        // SAFETY: access() reads a NUL-terminated path and changes nothing.
        if unsafe { libc::access(c_path.as_ptr(), libc::R_OK | libc::W_OK) } != 0 {
            return Err(open_error(cfg, &io::Error::last_os_error()));
        }
        let stream = tokio_serial::new(&cfg.path, cfg.baud)
            .parity(match cfg.parity {
                Parity::None => tokio_serial::Parity::None,
                Parity::Even => tokio_serial::Parity::Even,
                Parity::Odd => tokio_serial::Parity::Odd,
            })
            .data_bits(if cfg.data_bits == 7 {
                DataBits::Seven
            } else {
                DataBits::Eight
            })
            .stop_bits(if cfg.stop_bits == 2 {
                StopBits::Two
            } else {
                StopBits::One
            })
            .open_native_async()
            .map_err(|e| {
                if e.description.contains("lock") {
                    // serialport's own exclusive lock: another program has the port.
                    open_error(cfg, &io::Error::from_raw_os_error(libc::EBUSY))
                } else {
                    open_error(cfg, &io::Error::from(e))
                }
            })?;
        // SAFETY: flock on a descriptor the stream owns and keeps open; a failure is
        // reported, nothing else changes.
        let locked = unsafe { libc::flock(stream.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked != 0 {
            return Err(open_error(cfg, &io::Error::last_os_error()));
        }
        Ok(SerialLine {
            stream,
            t35: cfg.t35(),
            cfg: cfg.clone(),
            quiet_since: Instant::now(),
            rx: Vec::with_capacity(super::frame::MAX_FRAME * 2),
        })
    }

    /// The line's settings.
    pub fn config(&self) -> &SerialPortConfig {
        &self.cfg
    }

    /// The silent interval between frames.
    pub fn t35(&self) -> Duration {
        self.t35
    }

    /// When the line last carried a byte.
    pub fn quiet_since(&self) -> Instant {
        self.quiet_since
    }

    /// Drops whatever has arrived unasked (late answers, noise); returns the count.
    pub fn discard_pending(&mut self) -> io::Result<usize> {
        let mut n = self.rx.len();
        self.rx.clear();
        let mut buf = [0u8; 256];
        loop {
            match self.stream.try_read(&mut buf) {
                Ok(0) => return Ok(n),
                Ok(k) => {
                    n += k;
                    self.quiet_since = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(n),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a frame: waits out the silent interval since the line last carried a
    /// byte, writes, and drains (blocking this line's thread until the last byte has
    /// left the UART). The silent interval after it counts from the drain.
    pub async fn send(&mut self, frame: &[u8]) -> io::Result<()> {
        // tokio's timers tick in whole milliseconds: `sleep_until` would stretch the
        // 1.75 ms interval to 2-3 ms, a third more per exchange at 115,200 baud. The
        // line has this thread to itself (module docs), so a precise blocking sleep of
        // at most t3.5 holds up nothing else.
        let wait = (self.quiet_since + self.t35).saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
        self.stream.write_all(frame).await?;
        self.stream.flush().await?;
        self.quiet_since = Instant::now();
        Ok(())
    }

    /// Reads what arrives into `rx`, until `deadline`. Ok(false) at the deadline; an
    /// end of file (the device node went away) is an error.
    pub async fn receive(&mut self, deadline: Instant) -> io::Result<bool> {
        let mut buf = [0u8; 256];
        match timeout_at(deadline, self.stream.read(&mut buf)).await {
            Err(_) => Ok(false),
            Ok(Ok(0)) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the port closed (unplugged?)",
            )),
            Ok(Ok(n)) => {
                self.rx.extend_from_slice(&buf[..n]);
                self.quiet_since = Instant::now();
                Ok(true)
            }
            Ok(Err(e)) => Err(e),
        }
    }

    /// Waits until the line has been silent for t3.5 (or `deadline`), dropping what
    /// arrives: after a corrupt or unexpected frame, the rest of it.
    pub async fn wait_silence(&mut self, deadline: Instant) -> io::Result<()> {
        loop {
            self.rx.clear();
            let until = (self.quiet_since + self.t35).min(deadline);
            if Instant::now() >= until {
                return Ok(());
            }
            if !self.receive(until).await? && Instant::now() >= deadline {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn port(path: &str) -> SerialPortConfig {
        SerialPortConfig {
            name: "p".into(),
            path: path.into(),
            baud: 9600,
            parity: Parity::Even,
            data_bits: 8,
            stop_bits: 1,
            turnaround: Duration::from_millis(20),
            loc: crate::config::Loc {
                file: Arc::from("t.toml"),
                line: 1,
                col: 1,
            },
        }
    }

    #[test]
    fn open_errors_say_what_to_do() {
        let p = port("/dev/ttyUSB9");
        let e = |code| open_error(&p, &io::Error::from_raw_os_error(code));
        assert!(e(libc::ENOENT).contains("no such port"));
        assert!(
            e(libc::EACCES).contains("permission denied") && e(libc::EACCES).contains("dialout")
        );
        assert!(e(libc::EBUSY).contains("busy"));
    }

    #[test]
    fn a_port_that_does_not_exist_fails_to_open_with_its_path() {
        let e = SerialLine::open(&port("/nonexistent/ttyX")).unwrap_err();
        assert_eq!(
            e,
            "cannot open /nonexistent/ttyX: no such port (unplugged?)"
        );
    }

    #[test]
    fn the_silent_interval_is_three_and_a_half_characters_up_to_19200_baud() {
        let mut p = port("x");
        // 11 bits a character (start, 8 data, even parity, stop) at 9600 baud.
        assert_eq!(p.t35(), Duration::from_nanos(3_500_000_000 * 11 / 9600));
        p.baud = 19_200;
        assert_eq!(p.t35(), Duration::from_nanos(3_500_000_000 * 11 / 19_200));
        p.baud = 115_200;
        assert_eq!(p.t35(), Duration::from_micros(1750));
        assert_eq!(
            p.wire_time(8),
            Duration::from_nanos(8 * 11 * 1_000_000_000 / 115_200)
        );
    }
}
