//! The XGT client's I/O side: one task per PLC, over one TCP connection.
//!
//! Each poll writes the outputs that are due, then reads every planned request; the
//! requests of one pass go out `pipeline` at a time on the connection and their answers
//! are matched by invoke ID ([`super::conn`]). What a failure costs:
//! - A request without an answer in time does not drop the connection by itself: its
//!   late answer is known by its invoke ID and dropped. A second timeout in a row with
//!   nothing received in between drops it; so does a truncated answer (part of a frame,
//!   then nothing), a stream that cannot be delimited, or a closed socket. Reconnection
//!   follows the shared schedule ([`crate::client::link::Reconnect`]): back-off from
//!   `reconnect_min` doubling to `reconnect_max`, reset only by a connection that has
//!   answered, so a PLC that accepts and then garbles or closes is retried like one
//!   that refuses.
//! - A NAK to a read fails the poll at once (no retry: it is the PLC's answer) and
//!   keeps the connection; its LS error code and meaning go to the device's status.
//! - A NAK to a write is counted, reported once and retried with back-off; the reads
//!   go on.
//! - Every connection, the first and each reconnection, makes all outputs be written
//!   again, with an event.
//!
//! Every poll's outcome goes to the scan through the device's triple buffer, so a PLC
//! that vanishes shows up as quality, statistics and an event, never as a delay of the
//! scan.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use softplc_core::clock::monotonic_ns;
use softplc_core::{EngineClock, EventSink, IoEventKind};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout, Instant};

use crate::client::link::{LinkLog, Reconnect};
use crate::client::quality::SampleState;
use crate::client::safe::{Patch, SafeLatch};
use crate::client::status::{ConnStats, DeviceStats, Health};
use crate::client::writes::WriteState;
use crate::config::{WriteMode, XgtDeviceConfig};
use crate::runtime::{stopped, Shutdown};
use crate::xgt::codec::{Request, Response};
use crate::xgt::error::NakCode;
use crate::xgt::plan::{Plan, Planned, PlannedRequest};

use super::conn::{Conn, Fail};

/// Newest PLC data, poller -> scan.
#[derive(Clone, Debug, Default)]
pub(crate) struct InSample {
    /// The read plan's buffer as of the last good poll.
    pub data: Vec<u8>,
    /// When it was acquired, and whether the PLC is bad.
    pub state: SampleState,
}

/// Newest outputs, scan -> poller.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutSample {
    /// The write plan's buffer.
    pub data: Vec<u8>,
    /// Publications so far (0: the scan has not run yet: write nothing).
    pub seq: u64,
}

/// What the task needs to know about its connection.
pub(crate) struct ConnSpec {
    pub index: usize,
    pub stats: Arc<ConnStats>,
}

/// A connection and its reconnection schedule.
struct Link {
    spec: ConnSpec,
    conn: Option<Conn>,
    sched: Reconnect,
    log: LinkLog,
}

impl Link {
    fn endpoint(&self) -> &str {
        &self.spec.stats.endpoint
    }

    fn frames_received(&self) -> u64 {
        self.spec.stats.transport.frames.load(Ordering::Relaxed)
    }

    async fn connect(&mut self, cfg: &XgtDeviceConfig) -> Result<(), String> {
        let t = cfg.timeout;
        let addrs: Vec<_> =
            match timeout(t, tokio::net::lookup_host((cfg.host.as_str(), cfg.port))).await {
                Err(_) => return Err("name lookup timed out".to_string()),
                Ok(Err(e)) => return Err(format!("name lookup failed: {e}")),
                Ok(Ok(a)) => a.collect(),
            };
        let mut last = "no address".to_string();
        for addr in addrs {
            match timeout(t, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let stats = self.spec.stats.transport.clone();
                    self.conn = Some(Conn::new(stream, cfg.cpu, stats));
                    self.sched.connected(self.frames_received());
                    self.spec.stats.connected.store(true, Ordering::Relaxed);
                    self.spec.stats.connects.fetch_add(1, Ordering::Relaxed);
                    let text = format!("xgt: connected to {}", self.endpoint());
                    self.log.link_event(IoEventKind::Connected, text);
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
        let text = format!("xgt: cannot connect to {}: {why}", self.endpoint());
        if self.sched.connect_failed(why) {
            self.log.link_event(IoEventKind::ConnectFailed, text);
        }
    }

    async fn lost(&mut self, why: String) {
        if let Some(c) = self.conn.take() {
            c.close().await;
            self.spec.stats.connected.store(false, Ordering::Relaxed);
            self.spec.stats.disconnects.fetch_add(1, Ordering::Relaxed);
            let text = format!("xgt: connection to {} dropped: {why}", self.endpoint());
            self.log.link_event(IoEventKind::Disconnected, text);
            self.sched.lost(why);
        }
    }

    /// One pass of requests; the outcome also judges the connection.
    async fn exchange(
        &mut self,
        requests: &[Request],
        window: usize,
        limit: Duration,
    ) -> Result<Vec<Response>, Fail> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(Fail::NotConnected(self.sched.last_down.clone()));
        };
        let r = conn.exchange(requests, window, limit).await;
        match &r {
            Ok(_) => self.sched.answered(),
            Err(Fail::Timeout(_)) => {
                if self.sched.timed_out(self.frames_received()) {
                    self.lost("two requests in a row timed out with nothing received".into())
                        .await;
                }
            }
            Err(f) if f.breaks_connection() => self.lost(f.describe()).await,
            // A NAK or an answer that does not fit: the PLC answered.
            Err(_) => self.sched.answered(),
        }
        r
    }
}

/// Poller-side state of the PLC.
pub(crate) struct IoDevice {
    pub index: usize,
    pub cfg: XgtDeviceConfig,
    read_plan: Plan,
    write_plan: Plan,
    read_requests: Vec<Request>,
    input: triple_buffer::Input<InSample>,
    output: triple_buffer::Output<OutSample>,
    stats: Arc<DeviceStats>,
    good: Vec<u8>,
    scratch: Vec<u8>,
    good_seq: u64,
    acquired_mono: u64,
    failed_in_row: u64,
    /// Attempts of the current poll that failed and are being retried.
    attempt: u32,
    /// When the current poll's first attempt started.
    poll_started: Instant,
    bad: bool,
    /// Outputs as last published by the scan.
    out: Vec<u8>,
    out_seq: u64,
    /// The bytes last sent to the PLC (successfully or not), by write request.
    written: Vec<u8>,
    writes: Vec<WriteState<NakCode>>,
    /// All outputs must be written again (after a (re)connection); for the event.
    rewrite_pending: bool,
    next_poll: Instant,
    /// The outputs' safe values, and the watchdog's override that imposes them.
    safe: Patch<u8>,
    latch: Arc<SafeLatch>,
}

/// What the device task is given at start.
pub(crate) struct DeviceParts {
    pub index: usize,
    pub cfg: XgtDeviceConfig,
    pub read_plan: Plan,
    pub write_plan: Plan,
    pub input: triple_buffer::Input<InSample>,
    pub output: triple_buffer::Output<OutSample>,
    pub stats: Arc<DeviceStats>,
    pub safe: Patch<u8>,
    pub latch: Arc<SafeLatch>,
}

impl IoDevice {
    pub(crate) fn new(p: DeviceParts) -> IoDevice {
        let read_requests = p
            .read_plan
            .requests
            .iter()
            .map(|r| r.read_request())
            .collect();
        IoDevice {
            index: p.index,
            good: vec![0; p.read_plan.buffer_len],
            scratch: vec![0; p.read_plan.buffer_len],
            out: vec![0; p.write_plan.buffer_len],
            written: vec![0; p.write_plan.buffer_len],
            writes: vec![WriteState::new(p.cfg.poll); p.write_plan.requests.len()],
            read_requests,
            cfg: p.cfg,
            read_plan: p.read_plan,
            write_plan: p.write_plan,
            input: p.input,
            output: p.output,
            stats: p.stats,
            good_seq: 0,
            acquired_mono: 0,
            failed_in_row: 0,
            attempt: 0,
            poll_started: Instant::now(),
            bad: false,
            out_seq: 0,
            rewrite_pending: false,
            next_poll: Instant::now(),
            safe: p.safe,
            latch: p.latch,
        }
    }

    fn has_writes(&self) -> bool {
        !self.write_plan.requests.is_empty()
    }

    fn is_healthy(&self) -> bool {
        self.failed_in_row == 0 && self.attempt == 0
    }

    fn backoff_cap(&self) -> Duration {
        self.cfg.poll.max(self.cfg.reconnect_max)
    }

    fn device_event(&self, link: &mut Link, kind: IoEventKind, text: String) {
        link.log.device_event(kind, self.index as u32, text);
    }

    /// Takes the scan's newest outputs; true when some write request is due at `now`.
    fn outputs_pending(&mut self, now: Instant, ignore_holds: bool) -> bool {
        let overridden = self.latch.is_active();
        if self.output.update() || overridden {
            let o = self.output.output_buffer();
            self.out.copy_from_slice(&o.data);
            self.out_seq = o.seq;
        }
        if overridden {
            // The scan thread is stuck: its last outputs are not to be trusted.
            self.safe.apply(&mut self.out);
            self.out_seq = self.out_seq.max(1);
        }
        if self.out_seq == 0 {
            return false;
        }
        (0..self.writes.len()).any(|i| self.write_due(i, now, ignore_holds))
    }

    fn region(r: &PlannedRequest) -> std::ops::Range<usize> {
        r.offset..r.offset + r.len()
    }

    fn write_due(&self, i: usize, now: Instant, ignore_holds: bool) -> bool {
        let range = Self::region(&self.write_plan.requests[i]);
        let changed = self.out[range.clone()] != self.written[range];
        self.writes[i].due(now, changed, ignore_holds)
    }

    fn connected(&mut self, now: Instant) {
        let poll = self.cfg.poll;
        self.writes.iter_mut().for_each(|w| w.reconnected(poll));
        self.rewrite_pending = self.has_writes();
        self.next_poll = self.next_poll.min(now);
    }

    fn publish(&mut self) {
        let buf = self.input.input_buffer_mut();
        buf.data.copy_from_slice(&self.good);
        buf.state = SampleState {
            acquired_mono: self.acquired_mono,
            good_seq: self.good_seq,
            bad: self.bad,
        };
        self.input.publish();
    }

    fn poll_ok(&mut self, link: &mut Link, started_mono: u64, rtt: Duration) {
        std::mem::swap(&mut self.good, &mut self.scratch);
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
            let text = format!("xgt: device {:?} answers again; inputs good", self.cfg.name);
            self.device_event(link, IoEventKind::DeviceGood, text);
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
                    "xgt: device {:?} failed {} polls in a row ({}); inputs bad",
                    self.cfg.name,
                    self.failed_in_row,
                    f.describe()
                );
                self.device_event(link, IoEventKind::DeviceBad, text);
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
            // Poll a failing PLC less often: wait at least what the failed poll cost,
            // doubling per failed poll.
            let now = Instant::now();
            let base = self.cfg.poll.max(now - self.poll_started);
            let k = (self.failed_in_row - 1).min(20) as u32;
            self.next_poll = now + base.saturating_mul(1 << k).min(self.backoff_cap());
        }
    }

    fn retries(&self) -> u32 {
        if self.bad {
            0
        } else {
            self.cfg.retries
        }
    }

    fn count(&self, f: &Fail) {
        let s = &self.stats;
        match f {
            Fail::Timeout(_) => s.timeouts.fetch_add(1, Ordering::Relaxed),
            Fail::Transport(_) => s.transport_errors.fetch_add(1, Ordering::Relaxed),
            Fail::Garbage(_) | Fail::Mismatch(_) | Fail::Truncated { .. } => {
                s.garbage.fetch_add(1, Ordering::Relaxed)
            }
            Fail::Nak { .. } => s.exceptions.fetch_add(1, Ordering::Relaxed),
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

/// What a planned request is, for messages (`%DB200 x 4 bytes`, `3 word names`).
fn what(r: &PlannedRequest) -> String {
    match &r.kind {
        Planned::Continuous { name, len, .. } => format!("{name} x {len} bytes"),
        Planned::Individual { ty, names } => match names.as_slice() {
            [one] => format!("{one}"),
            [first, ..] => format!("{} {ty} names from {first}", names.len()),
            [] => "nothing".to_string(),
        },
    }
}

/// Reads every planned request into the scratch buffer.
async fn poll_reads(link: &mut Link, dev: &mut IoDevice) -> Result<(), Fail> {
    if dev.read_requests.is_empty() {
        return Ok(());
    }
    dev.stats
        .requests
        .fetch_add(dev.read_requests.len() as u64, Ordering::Relaxed);
    let answers = link
        .exchange(&dev.read_requests, dev.cfg.pipeline, dev.cfg.timeout)
        .await
        .inspect_err(|f| dev.count(f))?;
    for (r, a) in dev.read_plan.requests.iter().zip(answers.iter()) {
        if let Err(e) = r.store(a, &mut dev.scratch) {
            // Which request the PLC refused says which mapping to look at.
            let f = match Fail::from_answer(e) {
                Fail::Nak { code, status, .. } => Fail::Nak {
                    code,
                    status,
                    on: Some(format!("the read of {}", what(r))),
                },
                Fail::Mismatch(m) => Fail::Mismatch(format!("{m} (reading {})", what(r))),
                other => other,
            };
            dev.count(&f);
            return Err(f);
        }
    }
    Ok(())
}

/// Writes the requests that are due. A NAK holds its request back with back-off and is
/// reported once; the others go on. Any other failure ends the pass and is returned.
async fn write_outputs(
    link: &mut Link,
    dev: &mut IoDevice,
    ignore_holds: bool,
) -> Result<usize, Fail> {
    if dev.out_seq == 0 {
        return Ok(0);
    }
    let now = Instant::now();
    let due: Vec<usize> = (0..dev.writes.len())
        .filter(|i| dev.write_due(*i, now, ignore_holds))
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let requests: Vec<Request> = due
        .iter()
        .map(|i| dev.write_plan.requests[*i].write_request(&dev.out))
        .collect();
    for i in &due {
        let range = IoDevice::region(&dev.write_plan.requests[*i]);
        dev.written[range.clone()].copy_from_slice(&dev.out[range]);
    }
    dev.stats
        .requests
        .fetch_add(requests.len() as u64, Ordering::Relaxed);
    let result = link
        .exchange(&requests, dev.cfg.pipeline, dev.cfg.timeout)
        .await;
    let (cap, poll) = (dev.backoff_cap(), dev.cfg.poll);
    let answers = match result {
        Ok(a) => a,
        Err(f) => {
            dev.count(&f);
            for i in &due {
                dev.writes[*i].failed(cap);
            }
            dev.stats
                .writes_failed
                .fetch_add(due.len() as u64, Ordering::Relaxed);
            return Err(f);
        }
    };
    let mut written = 0;
    for ((i, req), answer) in due.iter().zip(requests.iter()).zip(answers.iter()) {
        let w = &mut dev.writes[*i];
        match answer.answers(req) {
            Ok(()) => {
                w.succeeded(poll);
                dev.stats.writes_ok.fetch_add(1, Ordering::Relaxed);
                written += 1;
            }
            Err(e) => {
                w.failed(cap);
                dev.stats.writes_failed.fetch_add(1, Ordering::Relaxed);
                let Fail::Nak { code, status, .. } = Fail::from_answer(e) else {
                    let f = Fail::from_answer(e);
                    dev.count(&f);
                    return Err(f);
                };
                dev.stats.writes_rejected.fetch_add(1, Ordering::Relaxed);
                dev.stats.exceptions.fetch_add(1, Ordering::Relaxed);
                if w.rejected_with(code) {
                    let f = Fail::Nak {
                        code,
                        status,
                        on: Some(format!(
                            "the write of {}",
                            what(&dev.write_plan.requests[*i])
                        )),
                    };
                    let text = format!(
                        "xgt: device {:?}: {}; retrying with back-off",
                        dev.cfg.name,
                        f.describe()
                    );
                    dev.stats.set_error(text.clone());
                    dev.device_event(link, IoEventKind::WriteRejected, text);
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
            format!(", {rejected} refused")
        } else {
            String::new()
        };
        let text = format!(
            "xgt: device {:?}: outputs written again after connecting ({} requests{detail})",
            dev.cfg.name,
            dev.writes.len()
        );
        dev.device_event(link, IoEventKind::OutputsRewritten, text);
    }
    r.map(|_| ())
}

/// One attempt of a poll: due (or, in `every_poll` mode, all) outputs, then all inputs.
async fn poll_once(link: &mut Link, dev: &mut IoDevice) -> Result<(), Fail> {
    if dev.cfg.write_mode == WriteMode::EveryPoll {
        dev.writes.iter_mut().for_each(|w| w.valid = false);
    }
    if dev.has_writes() && dev.outputs_pending(Instant::now(), false) {
        flush_outputs(link, dev).await?;
    }
    poll_reads(link, dev).await
}

async fn connect_if_due(link: &mut Link, dev: &mut IoDevice) {
    if link.conn.is_some() || !link.sched.due(Instant::now()) {
        return;
    }
    match link.connect(&dev.cfg).await {
        Ok(()) => dev.connected(Instant::now()),
        Err(why) => link.connect_failed(why),
    }
}

/// Runs the PLC's connection and polls until `shutdown`.
pub(crate) async fn run(
    spec: ConnSpec,
    mut dev: IoDevice,
    events: EventSink,
    clock: EngineClock,
    shutdown: Shutdown,
) {
    let log = LinkLog::new(
        "xgt",
        spec.stats.endpoint.clone(),
        spec.index as u32,
        events,
        clock,
    );
    let mut link = Link {
        sched: Reconnect::new(dev.cfg.reconnect_min, dev.cfg.reconnect_max),
        spec,
        conn: None,
        log,
    };
    {
        let stop = stopped(shutdown);
        tokio::pin!(stop);
        tokio::select! {
            _ = &mut stop => {}
            _ = run_loop(&mut link, &mut dev) => {}
        }
    }
    // The engine puts outputs to their safe values before stopping drivers: try to get
    // those to the PLC, within its timeout, held back or not.
    if link.conn.is_some() && dev.has_writes() && dev.outputs_pending(Instant::now(), true) {
        let _ = timeout(dev.cfg.timeout, write_outputs(&mut link, &mut dev, true)).await;
    }
    if let Some(c) = link.conn.take() {
        c.close().await;
    }
    link.log.finish();
    link.spec.stats.connected.store(false, Ordering::Relaxed);
}

async fn run_loop(link: &mut Link, dev: &mut IoDevice) {
    loop {
        link.log.report_suppressed(std::time::Instant::now());
        connect_if_due(link, dev).await;
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
        } else if link.conn.is_some()
            && dev.is_healthy()
            && dev.has_writes()
            && dev.outputs_pending(now, false)
        {
            if let Err(f) = flush_outputs(link, dev).await {
                dev.stats.set_error(f.describe());
            }
        }
        let now = Instant::now();
        let mut wake = dev.next_poll;
        if link.conn.is_none() {
            wake = wake.min(link.sched.next_attempt);
        } else if dev.has_writes() {
            wake = wake.min(now + dev.cfg.write_check);
        }
        if dev.latch.is_active() {
            sleep_until(wake).await;
        } else {
            // The watchdog's override wakes the loop at once, to write safe outputs.
            let latch = dev.latch.clone();
            tokio::select! {
                _ = sleep_until(wake) => {}
                _ = latch.wake.notified() => {}
            }
        }
    }
}
