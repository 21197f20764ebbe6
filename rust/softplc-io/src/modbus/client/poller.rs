//! The client's I/O side: one task per TCP connection polls the devices behind it.
//! Connections (links) are numbered in the order of the devices that first use them;
//! devices in configuration order: events name both by field.
//!
//! Devices with the same host and port (units behind one gateway) share the task and
//! its connection and take turns, one request at a time. What a failure costs:
//! - A request that gets no answer in time does not drop the connection: its answer, if
//!   it comes late, is known by its transaction id and dropped ([`super::transport`]),
//!   so the other units go on. Only a second timeout in a row with nothing at all
//!   received in between drops the connection: then it is the connection that is dead.
//! - A broken connection, or an answer that cannot be delimited or decoded, drops it;
//!   the next attempt follows the connection's reconnect back-off. The back-off is reset
//!   only by a connection that has *worked* (answered one request), never by a connect
//!   alone: a device that accepts connections and then garbles or closes is retried at
//!   `reconnect_min`, doubling up to `reconnect_max`, like one that refuses them (the
//!   schedule is [`crate::client::link::Reconnect`], shared with the XGT client).
//! - Connection and device events are rate-limited per kind and second
//!   ([`crate::client::link::LinkLog`]), the excess summed up once a second.
//! - A retry of a failed poll is the device's next turn, after the other devices that
//!   are due, so a silent unit delays the others by at most one of its timeouts between
//!   two of their polls. A device whose polls fail is polled less often (it waits at
//!   least what the failed poll cost, doubling per failed poll, up to `reconnect_max`)
//!   and, once bad, is not retried within a poll.
//! - A write the device rejects (an exception) is counted, reported once and retried
//!   with back-off; the device's reads go on.
//! - Connections are opened in one place ([`connect_if_due`]), and every connection,
//!   the first and each reconnection, makes all outputs be written again (with an
//!   event): after a reconnection nothing is known about what the device holds.
//!
//! Every poll's outcome goes to the scan through the device's triple buffer, so a
//! device that vanishes shows up as quality, statistics and an event, never as a delay
//! of the scan.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use softplc_core::clock::monotonic_ns;
use softplc_core::{EngineClock, EventSink, IoEvent, IoEventKind};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_modbus::client::{Client, Context};
use tokio_modbus::prelude::{ExceptionCode, Request, Response, Slave, SlaveContext};
use tokio_modbus::{ExceptionResponse, ProtocolError};

use crate::client::link::{LinkLog, Reconnect};
use crate::client::quality::SampleState;
use crate::client::safe::SafeLatch;
use crate::client::status::{ConnStats, DeviceStats, Health};
use crate::client::writes::WriteState;
use crate::config::{DeviceConfig, SerialPortConfig, WriteMode};
use crate::modbus::plan::{Plan, PlannedRequest};
use crate::modbus::rtu::{LineStats, RtuFail, RtuMaster, SerialLine};
use crate::modbus::Table;
use crate::runtime::{stopped, Shutdown};

use super::exchange::{InSample, OutSample, SafePatch};
use super::transport::ClientTransport;

/// What one connection task needs to know about its connection.
pub(crate) struct ConnSpec {
    pub index: usize,
    pub host: String,
    pub port: u16,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub connect_timeout: Duration,
    pub stats: Arc<ConnStats>,
    /// A serial line (Modbus RTU) instead of `host:port`, with its counters.
    pub serial: Option<(SerialPortConfig, Arc<LineStats>)>,
}

/// An open connection: a TCP stream, or a serial line this task is master of.
enum Conn {
    Tcp(Context),
    Rtu(Box<RtuMaster>),
}

/// Why a request failed.
#[derive(Clone, Debug, PartialEq)]
enum Fail {
    /// No connection at the time of the poll.
    NotConnected(String),
    /// No answer within the timeout.
    Timeout,
    /// The connection failed.
    Transport(String),
    /// The answer could not be delimited or decoded: the stream cannot go on.
    Garbage(String),
    /// A well-formed answer that does not fit the request (unit id, function, count).
    Mismatch(String),
    /// The device answered with a Modbus exception.
    Exception(ExceptionCode),
}

impl Fail {
    /// After these the connection's state is unknown: drop it. (Timeouts are judged by
    /// [`Link::timed_out`].)
    fn breaks_connection(&self) -> bool {
        matches!(self, Fail::Transport(_) | Fail::Garbage(_))
    }

    fn retryable(&self) -> bool {
        matches!(
            self,
            Fail::Timeout
                | Fail::Transport(_)
                | Fail::Garbage(_)
                | Fail::Mismatch(_)
                | Fail::Exception(ExceptionCode::ServerDeviceBusy | ExceptionCode::Acknowledge)
        )
    }

    fn describe(&self) -> String {
        match self {
            Fail::NotConnected(why) => format!("not connected ({why})"),
            Fail::Timeout => "timed out".to_string(),
            Fail::Transport(e) => format!("connection error: {e}"),
            Fail::Garbage(e) => format!("garbled answer: {e}"),
            Fail::Mismatch(e) => format!("answer does not fit the request: {e}"),
            Fail::Exception(c) => exception_text(*c),
        }
    }
}

fn exception_text(c: ExceptionCode) -> String {
    format!("exception {:#04x} ({c:?})", u8::from(c))
}

/// A connection and its reconnection schedule.
struct Link {
    spec: ConnSpec,
    ctx: Option<Conn>,
    sched: Reconnect,
    log: LinkLog,
}

impl Link {
    /// This link's number, as events name it.
    fn link(&self) -> u32 {
        self.log.link
    }

    /// An event about this link.
    fn link_event(&mut self, kind: IoEventKind, text: String) {
        self.log.link_event(kind, text);
    }

    /// An event, unless this window's share of its kind is used up.
    fn event(&mut self, ev: IoEvent, text: String) {
        self.log.event(ev, text);
    }

    fn endpoint(&self) -> &str {
        &self.spec.stats.endpoint
    }

    fn is_connected(&self) -> bool {
        self.ctx.is_some()
    }

    fn frames_received(&self) -> u64 {
        self.spec.stats.transport.frames.load(Ordering::Relaxed)
    }

    /// Opens the connection. Only [`connect_if_due`] calls this, so that every
    /// connection makes the outputs be written again.
    async fn connect(&mut self) -> Result<(), String> {
        if let Some((port, line_stats)) = &self.spec.serial {
            let line = SerialLine::open(port)?;
            self.ctx = Some(Conn::Rtu(Box::new(RtuMaster::new(
                line,
                line_stats.clone(),
            ))));
            self.opened(format!(
                "modbus: opened serial port {} ({}, {} baud)",
                port.name, port.path, port.baud
            ));
            return Ok(());
        }
        let t = self.spec.connect_timeout;
        let host = self.spec.host.clone();
        let addrs: Vec<_> =
            match timeout(t, tokio::net::lookup_host((host.as_str(), self.spec.port))).await {
                Err(_) => return Err("name lookup timed out".to_string()),
                Ok(Err(e)) => return Err(format!("name lookup failed: {e}")),
                Ok(Ok(a)) => a.collect(),
            };
        let mut last = "no address".to_string();
        for addr in addrs {
            match timeout(t, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    // Requests are small and latency matters more than packet count.
                    let _ = stream.set_nodelay(true);
                    let transport = ClientTransport::new(stream, self.spec.stats.transport.clone());
                    self.ctx = Some(Conn::Tcp(tokio_modbus::client::tcp::attach(transport)));
                    let text = format!("modbus: connected to {}", self.endpoint());
                    self.opened(text);
                    return Ok(());
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("connect timed out after {} ms", t.as_millis()),
            }
        }
        Err(last)
    }

    /// Bookkeeping of a connection just opened (`ctx` set).
    fn opened(&mut self, text: String) {
        self.sched.connected(self.frames_received());
        self.spec.stats.connected.store(true, Ordering::Relaxed);
        self.spec.stats.connects.fetch_add(1, Ordering::Relaxed);
        self.link_event(IoEventKind::Connected, text);
    }

    fn connect_failed(&mut self, why: String) {
        self.spec
            .stats
            .connect_failures
            .fetch_add(1, Ordering::Relaxed);
        let text = format!("modbus: cannot connect to {}: {why}", self.endpoint());
        if self.sched.connect_failed(why) {
            self.link_event(IoEventKind::ConnectFailed, text);
        }
    }

    fn lost(&mut self, why: String) {
        if self.ctx.take().is_some() {
            self.spec.stats.connected.store(false, Ordering::Relaxed);
            self.spec.stats.disconnects.fetch_add(1, Ordering::Relaxed);
            let text = format!("modbus: connection to {} dropped: {why}", self.endpoint());
            self.link_event(IoEventKind::Disconnected, text);
            self.sched.lost(why);
        }
    }

    /// The connection answered a request (even with an exception): it works, and the
    /// reconnection back-off starts again from `reconnect_min`.
    fn answered(&mut self) {
        self.sched.answered();
    }

    /// A request timed out. One unit behind a gateway may be silent while the others
    /// answer; the connection is dropped only when a second timeout follows with nothing
    /// at all received in between (late answers count: they prove the link alive).
    fn timed_out(&mut self) {
        if self.sched.timed_out(self.frames_received()) {
            self.lost("two requests in a row timed out with nothing received".to_string());
        }
    }

    /// One request/response, bounded by `limit`.
    async fn call(
        &mut self,
        unit: u8,
        req: Request<'_>,
        limit: Duration,
    ) -> Result<Response, Fail> {
        let ctx = match self.ctx.as_mut() {
            None => return Err(Fail::NotConnected(self.sched.last_down.clone())),
            Some(Conn::Rtu(_)) => return self.rtu_call(unit, req, limit).await,
            Some(Conn::Tcp(ctx)) => ctx,
        };
        ctx.set_slave(Slave(unit));
        let r = match timeout(limit, ctx.call(req)).await {
            Err(_) => Err(Fail::Timeout),
            Ok(Err(tokio_modbus::Error::Transport(e))) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    Err(Fail::Garbage(e.to_string()))
                } else {
                    Err(Fail::Transport(e.to_string()))
                }
            }
            // Some gateways answer for a unit that does not respond with an exception
            // (0x0A/0x0B) under another function code: it is still that exception.
            Ok(Err(tokio_modbus::Error::Protocol(ProtocolError::FunctionCodeMismatch {
                result: Err(ExceptionResponse { exception, .. }),
                ..
            }))) => Err(Fail::Exception(exception)),
            Ok(Err(tokio_modbus::Error::Protocol(e))) => Err(Fail::Mismatch(e.to_string())),
            Ok(Ok(Err(code))) => Err(Fail::Exception(code)),
            Ok(Ok(Ok(resp))) => Ok(resp),
        };
        match &r {
            Err(Fail::Timeout) => self.timed_out(),
            Err(f) if f.breaks_connection() => self.lost(f.describe()),
            Ok(_) | Err(Fail::Exception(_)) => self.answered(),
            _ => {}
        }
        r
    }

    /// One request on a serial line. A serial line is not "dropped" for timeouts,
    /// CRC errors or wrong answers (those concern one slave or one frame, and the line
    /// re-synchronises on the next silent interval); only a failing port is closed, to
    /// be reopened with back-off (an unplugged USB adapter).
    async fn rtu_call(
        &mut self,
        unit: u8,
        req: Request<'_>,
        limit: Duration,
    ) -> Result<Response, Fail> {
        let Some(Conn::Rtu(m)) = self.ctx.as_mut() else {
            return Err(Fail::NotConnected(self.sched.last_down.clone()));
        };
        let r = match m.call(unit, &req, limit).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(Fail::Exception(code)),
            Err(RtuFail::Timeout { partial: 0 }) => Err(Fail::Timeout),
            Err(RtuFail::Timeout { partial }) => Err(Fail::Mismatch(format!(
                "answer cut short: {partial} bytes of a frame, then silence"
            ))),
            Err(RtuFail::Io(e)) => Err(Fail::Transport(format!("serial port failed: {e}"))),
            Err(RtuFail::Crc) => Err(Fail::Mismatch("CRC error in the answer".to_string())),
            Err(RtuFail::WrongUnit(u)) => Err(Fail::Mismatch(format!(
                "unit {u} answered a request to unit {unit}"
            ))),
            Err(RtuFail::Garbage(e)) => Err(Fail::Mismatch(e)),
        };
        match &r {
            Err(Fail::Transport(why)) => self.lost(why.clone()),
            Ok(_) | Err(Fail::Exception(_)) => self.answered(),
            _ => {}
        }
        r
    }
}

/// Poller-side state of one device.
pub(crate) struct IoDevice {
    pub index: usize,
    pub cfg: DeviceConfig,
    read_plan: Plan,
    write_plan: Plan,
    input: triple_buffer::Input<InSample>,
    output: triple_buffer::Output<OutSample>,
    stats: Arc<DeviceStats>,
    good_words: Vec<u16>,
    good_bits: Vec<bool>,
    scratch_words: Vec<u16>,
    scratch_bits: Vec<bool>,
    good_seq: u64,
    acquired_mono: u64,
    failed_in_row: u64,
    /// Attempts of the current poll that failed and are being retried.
    attempt: u32,
    /// When the current poll's first attempt started.
    poll_started: Instant,
    bad: bool,
    /// Outputs as last published by the scan.
    out_words: Vec<u16>,
    out_bits: Vec<bool>,
    out_seq: u64,
    /// The values last sent to the device (successfully or not), by write request.
    written_words: Vec<u16>,
    written_bits: Vec<bool>,
    writes: Vec<WriteState<ExceptionCode>>,
    /// All outputs must be written again (after a (re)connection); for the event.
    rewrite_pending: bool,
    next_poll: Instant,
    /// The outputs' safe values, and the watchdog's override that imposes them.
    safe: SafePatch,
    latch: Arc<SafeLatch>,
}

impl IoDevice {
    pub(crate) fn new(
        index: usize,
        cfg: DeviceConfig,
        read_plan: Plan,
        write_plan: Plan,
        input: triple_buffer::Input<InSample>,
        output: triple_buffer::Output<OutSample>,
        stats: Arc<DeviceStats>,
    ) -> IoDevice {
        let w = WriteState::new(cfg.poll);
        IoDevice {
            index,
            good_words: vec![0; read_plan.words],
            good_bits: vec![false; read_plan.bits],
            scratch_words: vec![0; read_plan.words],
            scratch_bits: vec![false; read_plan.bits],
            out_words: vec![0; write_plan.words],
            out_bits: vec![false; write_plan.bits],
            written_words: vec![0; write_plan.words],
            written_bits: vec![false; write_plan.bits],
            writes: vec![w; write_plan.requests.len()],
            cfg,
            read_plan,
            write_plan,
            input,
            output,
            stats,
            good_seq: 0,
            acquired_mono: 0,
            failed_in_row: 0,
            attempt: 0,
            poll_started: Instant::now(),
            bad: false,
            out_seq: 0,
            rewrite_pending: false,
            next_poll: Instant::now(),
            safe: SafePatch::default(),
            latch: Arc::default(),
        }
    }

    /// Gives the device its outputs' safe values and the client's override latch.
    pub(crate) fn with_safe_state(mut self, safe: SafePatch, latch: Arc<SafeLatch>) -> IoDevice {
        self.safe = safe;
        self.latch = latch;
        self
    }

    /// An event about this device, reached over `link`.
    fn event(&self, kind: IoEventKind, link: &Link) -> IoEvent {
        IoEvent::on_device(kind, self.index as u32, link.link())
    }

    fn has_writes(&self) -> bool {
        !self.write_plan.requests.is_empty()
    }

    /// No failure since the last good poll: outputs may also be written between polls.
    fn is_healthy(&self) -> bool {
        self.failed_in_row == 0 && self.attempt == 0
    }

    /// Longest back-off of polls and writes.
    fn backoff_cap(&self) -> Duration {
        self.cfg.poll.max(self.cfg.reconnect_max)
    }

    /// Takes the scan's newest outputs; true when some write request is due at `now`
    /// (`ignore_holds`: also those held back after a failure).
    fn outputs_pending(&mut self, now: Instant, ignore_holds: bool) -> bool {
        let overridden = self.latch.active.load(Ordering::Acquire);
        if self.output.update() || overridden {
            let o = self.output.output_buffer();
            self.out_words.copy_from_slice(&o.words);
            self.out_bits.copy_from_slice(&o.bits);
            self.out_seq = o.seq;
        }
        if overridden {
            // The scan thread is stuck: its last outputs are not to be trusted.
            self.safe.apply(&mut self.out_words, &mut self.out_bits);
            self.out_seq = self.out_seq.max(1);
        }
        if self.out_seq == 0 {
            return false;
        }
        (0..self.writes.len()).any(|i| self.write_due(i, now, ignore_holds))
    }

    fn write_due(&self, i: usize, now: Instant, ignore_holds: bool) -> bool {
        let changed = self.differs(&self.write_plan.requests[i]);
        self.writes[i].due(now, changed, ignore_holds)
    }

    fn differs(&self, r: &PlannedRequest) -> bool {
        let range = r.offset..r.offset + r.count as usize;
        if r.table.is_bits() {
            self.out_bits[range.clone()] != self.written_bits[range]
        } else {
            self.out_words[range.clone()] != self.written_words[range]
        }
    }

    /// A (re)connection: nothing is known about what the device holds. Holds after
    /// timeouts end (the connection is new); holds after rejections stay.
    fn connected(&mut self, now: Instant) {
        let poll = self.cfg.poll;
        for w in &mut self.writes {
            w.reconnected(poll);
        }
        self.rewrite_pending = self.has_writes();
        self.next_poll = self.next_poll.min(now);
    }

    fn publish(&mut self) {
        let buf = self.input.input_buffer_mut();
        buf.words.copy_from_slice(&self.good_words);
        buf.bits.copy_from_slice(&self.good_bits);
        buf.state = SampleState {
            acquired_mono: self.acquired_mono,
            good_seq: self.good_seq,
            bad: self.bad,
        };
        self.input.publish();
    }

    fn poll_ok(&mut self, link: &mut Link, started_mono: u64, rtt: Duration) {
        std::mem::swap(&mut self.good_words, &mut self.scratch_words);
        std::mem::swap(&mut self.good_bits, &mut self.scratch_bits);
        self.acquired_mono = started_mono;
        self.good_seq += 1;
        self.failed_in_row = 0;
        self.attempt = 0;
        self.stats.polls_ok.fetch_add(1, Ordering::Relaxed);
        self.stats.failed_in_row.store(0, Ordering::Relaxed);
        self.stats.record_rtt(rtt.as_nanos() as u64);
        self.stats
            .health
            .store(Health::Good as u8, Ordering::Relaxed);
        if self.bad {
            self.bad = false;
            let text = format!(
                "modbus: device {:?} answers again; inputs good",
                self.cfg.name
            );
            link.event(self.event(IoEventKind::DeviceGood, link), text);
        }
        self.schedule_next();
    }

    fn poll_failed(&mut self, link: &mut Link, f: &Fail) {
        self.failed_in_row += 1;
        self.attempt = 0;
        self.stats.polls_failed.fetch_add(1, Ordering::Relaxed);
        self.stats
            .failed_in_row
            .store(self.failed_in_row, Ordering::Relaxed);
        self.stats.set_error(f.describe());
        if self.failed_in_row >= self.cfg.fail_after as u64 {
            self.stats
                .health
                .store(Health::Bad as u8, Ordering::Relaxed);
            if !self.bad {
                self.bad = true;
                let text = format!(
                    "modbus: device {:?} failed {} polls in a row ({}); inputs bad",
                    self.cfg.name,
                    self.failed_in_row,
                    f.describe()
                );
                link.event(self.event(IoEventKind::DeviceBad, link), text);
            }
        } else {
            self.stats
                .health
                .store(Health::Failing as u8, Ordering::Relaxed);
        }
        if matches!(f, Fail::NotConnected(_)) {
            // Costs nothing: the connection's own back-off applies.
            self.schedule_next();
        } else {
            // Poll a failing device less often, so that the devices sharing its
            // connection get most of it: wait at least what the failed poll cost (its
            // timeouts), doubling per failed poll.
            let now = Instant::now();
            let base = self.cfg.poll.max(now - self.poll_started);
            let k = (self.failed_in_row - 1).min(20) as u32;
            self.next_poll = now + base.saturating_mul(1 << k).min(self.backoff_cap());
        }
    }

    /// Extra attempts the current poll may still make.
    fn retries(&self) -> u32 {
        // A device already bad is probed once per (backed-off) poll.
        if self.bad {
            0
        } else {
            self.cfg.retries
        }
    }

    fn count(&self, f: &Fail) {
        let s = &self.stats;
        match f {
            Fail::Timeout => s.timeouts.fetch_add(1, Ordering::Relaxed),
            Fail::Transport(_) => s.transport_errors.fetch_add(1, Ordering::Relaxed),
            Fail::Garbage(_) | Fail::Mismatch(_) => s.garbage.fetch_add(1, Ordering::Relaxed),
            Fail::Exception(_) => s.exceptions.fetch_add(1, Ordering::Relaxed),
            Fail::NotConnected(_) => 0,
        };
    }

    fn schedule_next(&mut self) {
        let now = Instant::now();
        self.next_poll += self.cfg.poll;
        if self.next_poll <= now {
            // Missed polls are skipped, not caught up in a burst.
            let behind = now - self.next_poll;
            let n = behind.as_nanos() / self.cfg.poll.as_nanos().max(1) + 1;
            self.next_poll += self.cfg.poll * n as u32;
        }
    }
}

/// One attempt of one request.
async fn request(link: &mut Link, dev: &IoDevice, req: Request<'_>) -> Result<Response, Fail> {
    if !link.is_connected() {
        return Err(Fail::NotConnected(link.sched.last_down.clone()));
    }
    dev.stats.requests.fetch_add(1, Ordering::Relaxed);
    let r = link.call(dev.cfg.unit_id, req, dev.cfg.timeout).await;
    if let Err(f) = &r {
        dev.count(f);
    }
    r
}

fn read_request(r: &PlannedRequest) -> Request<'static> {
    match r.table {
        Table::Coil => Request::ReadCoils(r.start, r.count),
        Table::DiscreteInput => Request::ReadDiscreteInputs(r.start, r.count),
        Table::InputRegister => Request::ReadInputRegisters(r.start, r.count),
        Table::HoldingRegister => Request::ReadHoldingRegisters(r.start, r.count),
    }
}

/// Reads every planned range into the scratch buffers.
async fn poll_reads(link: &mut Link, dev: &mut IoDevice) -> Result<(), Fail> {
    for i in 0..dev.read_plan.requests.len() {
        let r = dev.read_plan.requests[i];
        let resp = request(link, dev, read_request(&r)).await?;
        let n = r.count as usize;
        let o = r.offset;
        match (r.table, resp) {
            (Table::Coil, Response::ReadCoils(v))
            | (Table::DiscreteInput, Response::ReadDiscreteInputs(v))
                if v.len() >= n =>
            {
                dev.scratch_bits[o..o + n].copy_from_slice(&v[..n]);
            }
            (Table::HoldingRegister, Response::ReadHoldingRegisters(v))
            | (Table::InputRegister, Response::ReadInputRegisters(v))
                if v.len() == n =>
            {
                dev.scratch_words[o..o + n].copy_from_slice(&v);
            }
            (_, other) => {
                let f = Fail::Mismatch(format!(
                    "asked for {n} items at {} {}, got {other:?}",
                    r.table, r.start
                ));
                dev.count(&f);
                return Err(f);
            }
        }
    }
    Ok(())
}

/// Writes the requests that are due. A rejected request (exception) is held back with
/// back-off and reported once; the others go on. Any other failure ends the pass and
/// is returned (the connection is in trouble).
async fn write_outputs(
    link: &mut Link,
    dev: &mut IoDevice,
    ignore_holds: bool,
) -> Result<usize, Fail> {
    if dev.out_seq == 0 {
        return Ok(0);
    }
    let mut written = 0;
    for i in 0..dev.write_plan.requests.len() {
        if !dev.write_due(i, Instant::now(), ignore_holds) {
            continue;
        }
        let r = dev.write_plan.requests[i];
        let (o, n) = (r.offset, r.count as usize);
        let req = match (r.table, n) {
            (Table::Coil, 1) => Request::WriteSingleCoil(r.start, dev.out_bits[o]),
            (Table::Coil, _) => {
                Request::WriteMultipleCoils(r.start, Cow::Owned(dev.out_bits[o..o + n].to_vec()))
            }
            (_, 1) => Request::WriteSingleRegister(r.start, dev.out_words[o]),
            _ => Request::WriteMultipleRegisters(
                r.start,
                Cow::Owned(dev.out_words[o..o + n].to_vec()),
            ),
        };
        let result = request(link, dev, req).await;
        if r.table.is_bits() {
            dev.written_bits[o..o + n].copy_from_slice(&dev.out_bits[o..o + n]);
        } else {
            dev.written_words[o..o + n].copy_from_slice(&dev.out_words[o..o + n]);
        }
        let cap = dev.backoff_cap();
        let poll = dev.cfg.poll;
        let w = &mut dev.writes[i];
        match result {
            Ok(_) => {
                w.succeeded(poll);
                dev.stats.writes_ok.fetch_add(1, Ordering::Relaxed);
                written += 1;
            }
            Err(f) => {
                w.failed(cap);
                dev.stats.writes_failed.fetch_add(1, Ordering::Relaxed);
                let Fail::Exception(code) = f else {
                    return Err(f);
                };
                dev.stats.writes_rejected.fetch_add(1, Ordering::Relaxed);
                if w.rejected_with(code) {
                    let text = format!(
                        "modbus: device {:?}: write of {} {} ({} items) rejected: {}; retrying with back-off",
                        dev.cfg.name,
                        r.table,
                        r.start,
                        n,
                        exception_text(code)
                    );
                    dev.stats.set_error(text.clone());
                    link.event(dev.event(IoEventKind::WriteRejected, link), text);
                }
            }
        }
    }
    Ok(written)
}

/// Writes due outputs; reports a completed re-write after a (re)connection.
async fn flush_outputs(link: &mut Link, dev: &mut IoDevice) -> Result<(), Fail> {
    let r = write_outputs(link, dev, false).await;
    if dev.rewrite_pending && dev.out_seq > 0 && dev.writes.iter().all(|w| w.since_connect) {
        dev.rewrite_pending = false;
        dev.stats.rewrites.fetch_add(1, Ordering::Relaxed);
        let rejected = dev.writes.iter().filter(|w| w.rejected.is_some()).count();
        let detail = if rejected > 0 {
            format!(", {rejected} rejected")
        } else {
            String::new()
        };
        let text = format!(
            "modbus: device {:?}: outputs written again after connecting ({} requests{detail})",
            dev.cfg.name,
            dev.writes.len()
        );
        link.event(dev.event(IoEventKind::OutputsRewritten, link), text);
    }
    r.map(|_| ())
}

/// One attempt of a poll: due (or, in `every_poll` mode, all) outputs, then all inputs.
/// Rejected writes do not stop the reads.
async fn poll_once(link: &mut Link, dev: &mut IoDevice) -> Result<(), Fail> {
    if dev.cfg.write_mode == WriteMode::EveryPoll {
        dev.writes.iter_mut().for_each(|w| w.valid = false);
    }
    if dev.has_writes() && dev.outputs_pending(Instant::now(), false) {
        flush_outputs(link, dev).await?;
    }
    poll_reads(link, dev).await
}

/// Connects when the connection is down and its back-off has passed. Every connection
/// makes every device's outputs be written again.
async fn connect_if_due(link: &mut Link, devices: &mut [IoDevice]) {
    if link.is_connected() || !link.sched.due(Instant::now()) {
        return;
    }
    match link.connect().await {
        Ok(()) => {
            let now = Instant::now();
            for d in devices.iter_mut() {
                d.connected(now);
            }
        }
        Err(why) => link.connect_failed(why),
    }
}

/// Runs one connection and its devices until `shutdown`.
pub(crate) async fn run(
    spec: ConnSpec,
    mut devices: Vec<IoDevice>,
    events: EventSink,
    clock: EngineClock,
    shutdown: Shutdown,
) {
    let log = LinkLog::new(
        "modbus",
        spec.stats.endpoint.clone(),
        spec.index as u32,
        events,
        clock,
    );
    let mut link = Link {
        sched: Reconnect::new(spec.reconnect_min, spec.reconnect_max),
        spec,
        ctx: None,
        log,
    };
    {
        let stop = stopped(shutdown);
        tokio::pin!(stop);
        tokio::select! {
            _ = &mut stop => {}
            _ = run_loop(&mut link, &mut devices) => {}
        }
    }
    // The engine puts outputs to their safe values before stopping drivers: try to
    // get those to the devices, within each device's timeout, held back or not.
    for dev in devices.iter_mut() {
        if link.is_connected() && dev.has_writes() && dev.outputs_pending(Instant::now(), true) {
            let _ = timeout(dev.cfg.timeout, write_outputs(&mut link, dev, true)).await;
        }
    }
    if let Some(Conn::Tcp(mut ctx)) = link.ctx.take() {
        let _ = timeout(Duration::from_millis(100), ctx.disconnect()).await;
    }
    link.log.finish();
    link.spec.stats.connected.store(false, Ordering::Relaxed);
}

async fn run_loop(link: &mut Link, devices: &mut [IoDevice]) {
    let write_check = devices
        .iter()
        .filter(|d| d.has_writes())
        .map(|d| d.cfg.write_check)
        .min();
    loop {
        link.log.report_suppressed(std::time::Instant::now());
        for i in 0..devices.len() {
            connect_if_due(link, devices).await;
            let dev = &mut devices[i];
            let now = Instant::now();
            if now >= dev.next_poll {
                let started = monotonic_ns();
                let t0 = Instant::now();
                if dev.attempt == 0 {
                    dev.poll_started = t0;
                }
                match poll_once(link, dev).await {
                    Ok(()) => {
                        dev.poll_ok(link, started, t0.elapsed());
                        dev.publish();
                    }
                    Err(f) if f.retryable() && dev.attempt < dev.retries() => {
                        // Retry on the device's next turn, after the others that are due.
                        dev.attempt += 1;
                        dev.stats.retries.fetch_add(1, Ordering::Relaxed);
                        dev.stats.set_error(f.describe());
                        dev.next_poll = Instant::now();
                    }
                    Err(f) => {
                        dev.poll_failed(link, &f);
                        dev.publish();
                    }
                }
            } else if link.is_connected()
                && dev.is_healthy()
                && dev.has_writes()
                && dev.outputs_pending(now, false)
            {
                if let Err(f) = flush_outputs(link, dev).await {
                    dev.stats.set_error(f.describe());
                }
            }
        }
        let now = Instant::now();
        let mut wake = devices
            .iter()
            .map(|d| d.next_poll)
            .min()
            .unwrap_or(now + Duration::from_secs(1));
        if !link.is_connected() {
            wake = wake.min(link.sched.next_attempt);
        } else if let Some(wc) = write_check {
            wake = wake.min(now + wc);
        }
        match devices.first().map(|d| d.latch.clone()) {
            // The watchdog's override wakes the loop at once, to write safe outputs.
            Some(latch) if !latch.active.load(Ordering::Acquire) => {
                tokio::select! {
                    _ = sleep_until(wake) => {}
                    _ = latch.wake.notified() => {}
                }
            }
            _ => sleep_until(wake).await,
        }
    }
}
