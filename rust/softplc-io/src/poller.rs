//! The client's I/O side: one task per TCP connection polls the devices behind it.
//!
//! Devices with the same host and port (units behind one gateway) share the task and
//! its connection and take turns. A request that times out, breaks the connection or
//! gets an undecodable answer drops the connection (its state is unknown after that);
//! the next attempt follows the device's reconnect back-off. Every poll's outcome goes
//! to the scan through the device's triple buffer, so a device that vanishes shows up
//! as quality, statistics and an event, never as a delay of the scan.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use softplc_core::{Event, EventKind, EventSink};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_modbus::client::{Client, Context};
use tokio_modbus::prelude::{ExceptionCode, Request, Response, Slave, SlaveContext};

use crate::client::{ConnStats, DeviceStats, Health, InSample, OutSample};
use crate::clock::{mono_ns, ClockLink};
use crate::config::{DeviceConfig, Table, WriteMode};
use crate::plan::{Plan, PlannedRequest};
use crate::runtime::{stopped, Shutdown};

/// What one connection task needs to know about its connection.
pub(crate) struct ConnSpec {
    pub index: usize,
    pub host: String,
    pub port: u16,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub connect_timeout: Duration,
    pub stats: Arc<ConnStats>,
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
    /// The answer could not be decoded or did not match the request.
    Garbage(String),
    /// The device answered with a Modbus exception.
    Exception(ExceptionCode),
}

impl Fail {
    /// After these the connection's state is unknown: drop it.
    fn breaks_connection(&self) -> bool {
        matches!(self, Fail::Timeout | Fail::Transport(_) | Fail::Garbage(_))
    }

    fn retryable(&self) -> bool {
        self.breaks_connection()
            || matches!(
                self,
                Fail::Exception(ExceptionCode::ServerDeviceBusy | ExceptionCode::Acknowledge)
            )
    }

    fn describe(&self) -> String {
        match self {
            Fail::NotConnected(why) => format!("not connected ({why})"),
            Fail::Timeout => "timed out".to_string(),
            Fail::Transport(e) => format!("connection error: {e}"),
            Fail::Garbage(e) => format!("garbled answer: {e}"),
            Fail::Exception(c) => format!("exception {:#04x} ({c:?})", u8::from(*c)),
        }
    }
}

/// A connection and its reconnection schedule.
struct Link {
    spec: ConnSpec,
    ctx: Option<Context>,
    backoff: Duration,
    next_attempt: Instant,
    down_reported: bool,
    last_down: String,
    events: EventSink,
    clock: Arc<ClockLink>,
}

impl Link {
    fn event(&self, b: i64, text: String) {
        self.events.push(Event {
            t_ns: self.clock.engine_now(),
            kind: EventKind::Io,
            task: -1,
            a: self.spec.index as i64,
            b,
            text,
        });
    }

    fn endpoint(&self) -> &str {
        &self.spec.stats.endpoint
    }

    async fn connect(&mut self) -> Result<(), String> {
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
                    self.ctx = Some(tokio_modbus::client::tcp::attach(stream));
                    self.spec.stats.connected.store(true, Ordering::Relaxed);
                    self.spec.stats.connects.fetch_add(1, Ordering::Relaxed);
                    self.backoff = self.spec.reconnect_min;
                    self.down_reported = false;
                    self.event(1, format!("modbus: connected to {}", self.endpoint()));
                    return Ok(());
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("connect timed out after {} ms", t.as_millis()),
            }
        }
        Err(last)
    }

    fn connect_failed(&mut self, why: String) {
        self.spec
            .stats
            .connect_failures
            .fetch_add(1, Ordering::Relaxed);
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.spec.reconnect_max);
        if !self.down_reported {
            self.down_reported = true;
            self.event(
                2,
                format!("modbus: cannot connect to {}: {why}", self.endpoint()),
            );
        }
        self.last_down = why;
    }

    fn lost(&mut self, why: &Fail) {
        if self.ctx.take().is_some() {
            self.spec.stats.connected.store(false, Ordering::Relaxed);
            self.spec.stats.disconnects.fetch_add(1, Ordering::Relaxed);
            self.event(
                3,
                format!(
                    "modbus: connection to {} dropped: {}",
                    self.endpoint(),
                    why.describe()
                ),
            );
            // The first reconnection is immediate; later ones back off.
            self.next_attempt = Instant::now();
            self.last_down = why.describe();
        }
    }

    /// One request/response, bounded by `limit`.
    async fn call(
        &mut self,
        unit: u8,
        req: Request<'_>,
        limit: Duration,
    ) -> Result<Response, Fail> {
        let Some(ctx) = self.ctx.as_mut() else {
            return Err(Fail::NotConnected(self.last_down.clone()));
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
            Ok(Err(tokio_modbus::Error::Protocol(e))) => Err(Fail::Garbage(e.to_string())),
            Ok(Ok(Err(code))) => Err(Fail::Exception(code)),
            Ok(Ok(Ok(resp))) => Ok(resp),
        };
        if let Err(f) = &r {
            if f.breaks_connection() {
                self.lost(f);
            }
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
    bad: bool,
    /// Outputs as last published by the scan.
    out_words: Vec<u16>,
    out_bits: Vec<bool>,
    out_seq: u64,
    /// What the device holds, as far as we know, and whether we know it.
    written_words: Vec<u16>,
    written_bits: Vec<bool>,
    write_valid: Vec<bool>,
    /// All outputs must be written again (after a (re)connection); for the event.
    rewrite_pending: bool,
    next_poll: Instant,
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
        IoDevice {
            index,
            cfg,
            good_words: vec![0; read_plan.words],
            good_bits: vec![false; read_plan.bits],
            scratch_words: vec![0; read_plan.words],
            scratch_bits: vec![false; read_plan.bits],
            out_words: vec![0; write_plan.words],
            out_bits: vec![false; write_plan.bits],
            written_words: vec![0; write_plan.words],
            written_bits: vec![false; write_plan.bits],
            write_valid: vec![false; write_plan.requests.len()],
            read_plan,
            write_plan,
            input,
            output,
            stats,
            good_seq: 0,
            acquired_mono: 0,
            failed_in_row: 0,
            bad: false,
            out_seq: 0,
            rewrite_pending: false,
            next_poll: Instant::now(),
        }
    }

    fn has_writes(&self) -> bool {
        !self.write_plan.requests.is_empty()
    }

    /// Takes the scan's newest outputs; true when there is something to write.
    fn outputs_pending(&mut self) -> bool {
        if self.output.update() {
            let o = self.output.output_buffer();
            self.out_words.copy_from_slice(&o.words);
            self.out_bits.copy_from_slice(&o.bits);
            self.out_seq = o.seq;
        }
        if self.out_seq == 0 {
            return false;
        }
        self.write_plan
            .requests
            .iter()
            .enumerate()
            .any(|(i, r)| !self.write_valid[i] || self.differs(r))
    }

    fn differs(&self, r: &PlannedRequest) -> bool {
        let range = r.offset..r.offset + r.count as usize;
        if r.table.is_bits() {
            self.out_bits[range.clone()] != self.written_bits[range]
        } else {
            self.out_words[range.clone()] != self.written_words[range]
        }
    }

    fn invalidate_writes(&mut self) {
        self.write_valid.iter_mut().for_each(|v| *v = false);
    }

    fn publish(&mut self) {
        let buf = self.input.input_buffer_mut();
        buf.words.copy_from_slice(&self.good_words);
        buf.bits.copy_from_slice(&self.good_bits);
        buf.acquired_mono = self.acquired_mono;
        buf.good_seq = self.good_seq;
        buf.bad = self.bad;
        self.input.publish();
    }

    fn poll_ok(&mut self, link: &Link, started_mono: u64, rtt: Duration) {
        std::mem::swap(&mut self.good_words, &mut self.scratch_words);
        std::mem::swap(&mut self.good_bits, &mut self.scratch_bits);
        self.acquired_mono = started_mono;
        self.good_seq += 1;
        self.failed_in_row = 0;
        self.stats.polls_ok.fetch_add(1, Ordering::Relaxed);
        self.stats.failed_in_row.store(0, Ordering::Relaxed);
        self.stats.record_rtt(rtt.as_nanos() as u64);
        self.stats
            .health
            .store(Health::Good as u8, Ordering::Relaxed);
        if self.bad {
            self.bad = false;
            link.event(
                10 + self.index as i64,
                format!(
                    "modbus: device {:?} answers again; inputs good",
                    self.cfg.name
                ),
            );
        }
    }

    fn poll_failed(&mut self, link: &Link, f: &Fail) {
        self.failed_in_row += 1;
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
                link.event(
                    10 + self.index as i64,
                    format!(
                        "modbus: device {:?} failed {} polls in a row ({}); inputs bad",
                        self.cfg.name,
                        self.failed_in_row,
                        f.describe()
                    ),
                );
            }
        } else {
            self.stats
                .health
                .store(Health::Failing as u8, Ordering::Relaxed);
        }
    }

    fn count(&self, f: &Fail) {
        let s = &self.stats;
        match f {
            Fail::Timeout => s.timeouts.fetch_add(1, Ordering::Relaxed),
            Fail::Transport(_) => s.transport_errors.fetch_add(1, Ordering::Relaxed),
            Fail::Garbage(_) => s.garbage.fetch_add(1, Ordering::Relaxed),
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

/// One request with the device's retries. A retry after a broken connection
/// reconnects at once (the back-off applies between polls, not within one).
async fn request(link: &mut Link, dev: &IoDevice, req: Request<'_>) -> Result<Response, Fail> {
    let mut attempt = 0;
    loop {
        if link.ctx.is_none() {
            if attempt == 0 {
                return Err(Fail::NotConnected(link.last_down.clone()));
            }
            if let Err(why) = link.connect().await {
                link.connect_failed(why.clone());
                return Err(Fail::NotConnected(why));
            }
        }
        dev.stats.requests.fetch_add(1, Ordering::Relaxed);
        match link
            .call(dev.cfg.unit_id, req.clone(), dev.cfg.timeout)
            .await
        {
            Ok(r) => return Ok(r),
            Err(f) => {
                dev.count(&f);
                if attempt < dev.cfg.retries && f.retryable() {
                    attempt += 1;
                    continue;
                }
                return Err(f);
            }
        }
    }
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
                let f = Fail::Garbage(format!(
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

/// Writes the ranges whose values changed or are not known to be on the device.
/// Returns the number of requests written.
async fn write_outputs(link: &mut Link, dev: &mut IoDevice) -> Result<usize, Fail> {
    if dev.out_seq == 0 {
        return Ok(0);
    }
    let mut written = 0;
    for i in 0..dev.write_plan.requests.len() {
        let r = dev.write_plan.requests[i];
        if dev.write_valid[i] && !dev.differs(&r) {
            continue;
        }
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
        match request(link, dev, req).await {
            Ok(_) => {
                if r.table.is_bits() {
                    dev.written_bits[o..o + n].copy_from_slice(&dev.out_bits[o..o + n]);
                } else {
                    dev.written_words[o..o + n].copy_from_slice(&dev.out_words[o..o + n]);
                }
                dev.write_valid[i] = true;
                dev.stats.writes_ok.fetch_add(1, Ordering::Relaxed);
                written += 1;
            }
            Err(f) => {
                dev.write_valid[i] = false;
                dev.stats.writes_failed.fetch_add(1, Ordering::Relaxed);
                return Err(f);
            }
        }
    }
    Ok(written)
}

/// Writes pending outputs; reports a completed re-write after a reconnection.
async fn flush_outputs(link: &mut Link, dev: &mut IoDevice) -> Result<(), Fail> {
    let n = write_outputs(link, dev).await?;
    if dev.rewrite_pending && dev.write_valid.iter().all(|v| *v) && dev.out_seq > 0 {
        dev.rewrite_pending = false;
        dev.stats.rewrites.fetch_add(1, Ordering::Relaxed);
        link.event(
            20 + dev.index as i64,
            format!(
                "modbus: device {:?}: outputs written again after connecting ({n} requests)",
                dev.cfg.name
            ),
        );
    }
    Ok(())
}

/// A full poll: pending (or, in `every_poll` mode, all) outputs, then all inputs.
async fn poll(link: &mut Link, dev: &mut IoDevice) -> Result<(), Fail> {
    if dev.cfg.write_mode == WriteMode::EveryPoll {
        dev.invalidate_writes();
    }
    if dev.has_writes() && dev.outputs_pending() {
        flush_outputs(link, dev).await?;
    }
    poll_reads(link, dev).await
}

/// Runs one connection and its devices until `shutdown`.
pub(crate) async fn run(
    spec: ConnSpec,
    mut devices: Vec<IoDevice>,
    events: EventSink,
    clock: Arc<ClockLink>,
    shutdown: Shutdown,
) {
    let mut link = Link {
        backoff: spec.reconnect_min,
        spec,
        ctx: None,
        next_attempt: Instant::now(),
        down_reported: false,
        last_down: "never connected".to_string(),
        events,
        clock,
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
    // get those to the devices, within each device's timeout.
    for dev in devices.iter_mut() {
        if link.ctx.is_some() && dev.has_writes() && dev.outputs_pending() {
            let _ = timeout(dev.cfg.timeout, write_outputs(&mut link, dev)).await;
        }
    }
    if let Some(mut ctx) = link.ctx.take() {
        let _ = timeout(Duration::from_millis(100), ctx.disconnect()).await;
    }
    link.spec.stats.connected.store(false, Ordering::Relaxed);
}

async fn run_loop(link: &mut Link, devices: &mut [IoDevice]) {
    let write_check = devices
        .iter()
        .filter(|d| d.has_writes())
        .map(|d| d.cfg.write_check)
        .min();
    loop {
        if link.ctx.is_none() && Instant::now() >= link.next_attempt {
            match link.connect().await {
                Ok(()) => {
                    for d in devices.iter_mut() {
                        d.invalidate_writes();
                        d.rewrite_pending = d.has_writes();
                    }
                }
                Err(why) => link.connect_failed(why),
            }
        }
        for dev in devices.iter_mut() {
            let now = Instant::now();
            if now >= dev.next_poll {
                let started = mono_ns();
                let t0 = Instant::now();
                let r = poll(link, dev).await;
                match r {
                    Ok(()) => dev.poll_ok(link, started, t0.elapsed()),
                    Err(f) => dev.poll_failed(link, &f),
                }
                dev.publish();
                dev.schedule_next();
            } else if link.ctx.is_some() && dev.has_writes() && dev.outputs_pending() {
                if let Err(f) = flush_outputs(link, dev).await {
                    dev.stats.set_error(f.describe());
                }
            }
        }
        let mut wake = devices
            .iter()
            .map(|d| d.next_poll)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        if link.ctx.is_none() {
            wake = wake.min(link.next_attempt);
        } else if let Some(wc) = write_check {
            wake = wake.min(Instant::now() + wc);
        }
        sleep_until(wake).await;
    }
}
