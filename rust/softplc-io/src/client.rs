//! The Modbus TCP client driver: polls devices and writes their outputs.
//!
//! Device I/O runs on the driver's own I/O thread (see [`crate::poller`]). Each device
//! exchanges data with the scan through two triple buffers: the poller publishes the
//! newest registers and the device's health, the scan publishes the newest output
//! registers. `read_inputs` and `write_outputs` only copy and convert: no allocation,
//! no locks, no syscalls beyond one vDSO clock read, and never a wait on a device.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};
use softplc_core::{
    Area, ConfigError, Driver, DriverMonitor, EventSink, IoCtx, IoError, IoStatus, Layout, Quality,
    SafeState,
};
use triple_buffer::triple_buffer;

use crate::bind::{bind_points, BoundPoint, Usage};
use crate::clock::ClockLink;
use crate::config::{DeviceConfig, OnFail};
use crate::plan::{plan, Plan};
use crate::poller::{ConnSpec, IoDevice};
use crate::runtime::{stopped, IoThread, StopHandle};
use crate::transport::TransportStats;

/// Newest device data, poller -> scan.
#[derive(Clone, Debug, Default)]
pub(crate) struct InSample {
    /// Registers of the last good poll (read plan layout).
    pub words: Vec<u16>,
    /// Bits of the last good poll.
    pub bits: Vec<bool>,
    /// Monotonic time the last good poll started.
    pub acquired_mono: u64,
    /// Good polls so far (0: no data yet).
    pub good_seq: u64,
    /// The device has failed `fail_after` polls in a row.
    pub bad: bool,
}

/// Newest outputs, scan -> poller.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutSample {
    /// Registers in write-plan layout.
    pub words: Vec<u16>,
    /// Coils in write-plan layout.
    pub bits: Vec<bool>,
    /// Publications so far (0: the scan has not run yet: write nothing).
    pub seq: u64,
}

/// Safe values of one device's outputs, as positions in its write-plan buffers.
#[derive(Clone, Debug, Default)]
pub(crate) struct SafePatch {
    /// (register offset, safe register value).
    pub words: Vec<(usize, u16)>,
    /// (coil offset, safe coil value).
    pub bits: Vec<(usize, bool)>,
}

impl SafePatch {
    /// Overwrites the output positions of a sample with their safe values.
    pub fn apply(&self, words: &mut [u16], bits: &mut [bool]) {
        for &(o, w) in &self.words {
            words[o] = w;
        }
        for &(o, b) in &self.bits {
            bits[o] = b;
        }
    }
}

/// The client's emergency handle (see [`SafeState`]). While `active`, pollers write
/// each device's outputs with their safe values patched in, whatever the scan last
/// published; the scan thread's next `write_outputs` lowers it.
#[derive(Debug, Default)]
pub(crate) struct SafeLatch {
    /// Raised by the watchdog thread.
    pub active: AtomicBool,
    /// Wakes the pollers at once instead of at their next write check.
    pub wake: tokio::sync::Notify,
    stop: Mutex<Option<StopHandle>>,
}

impl SafeState for SafeLatch {
    fn force_safe(&self) {
        self.active.store(true, Ordering::Release);
        // One waiter per connection: wake them all.
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    fn shutdown(&self) {
        if let Some(s) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            s.stop();
        }
    }
}

/// Device health as the monitor shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    /// Not polled yet.
    Waiting = 0,
    /// Last poll succeeded.
    Good = 1,
    /// Some polls failed, fewer than `fail_after`.
    Failing = 2,
    /// `fail_after` polls failed in a row: inputs are quality=bad.
    Bad = 3,
}

impl Health {
    fn name(v: u8) -> &'static str {
        match v {
            1 => "good",
            2 => "failing",
            3 => "bad",
            _ => "waiting",
        }
    }
}

/// Counters of one device. Written by the poller (the scan adds clamps), read by monitors.
#[derive(Debug, Default)]
pub struct DeviceStats {
    /// Successful polls.
    pub polls_ok: AtomicU64,
    /// Failed polls.
    pub polls_failed: AtomicU64,
    /// Requests sent.
    pub requests: AtomicU64,
    /// Requests that timed out.
    pub timeouts: AtomicU64,
    /// Exception responses.
    pub exceptions: AtomicU64,
    /// Undecodable or mismatching responses.
    pub garbage: AtomicU64,
    /// Connection-level failures while a request was under way.
    pub transport_errors: AtomicU64,
    /// Write requests that succeeded.
    pub writes_ok: AtomicU64,
    /// Write requests that failed.
    pub writes_failed: AtomicU64,
    /// Write requests the device rejected with an exception (part of `writes_failed`).
    pub writes_rejected: AtomicU64,
    /// Polls attempted again after a failure (on the device's next turn).
    pub retries: AtomicU64,
    /// Times all outputs were written again after a (re)connection.
    pub rewrites: AtomicU64,
    /// Last poll round trip (ns).
    pub rtt_last_ns: AtomicU64,
    /// Shortest poll round trip (ns).
    pub rtt_min_ns: AtomicU64,
    /// Longest poll round trip (ns).
    pub rtt_max_ns: AtomicU64,
    /// Sum of poll round trips (ns), for the mean.
    pub rtt_sum_ns: AtomicU64,
    /// Failed polls in a row.
    pub failed_in_row: AtomicU64,
    /// [`Health`] as u8.
    pub health: AtomicU8,
    /// Values clamped to their type's range on the way in or out.
    pub clamps: AtomicU64,
    /// Scan cycles that saw this device's inputs bad or stale.
    pub degraded_cycles: AtomicU64,
    /// The last error, for people.
    pub last_error: Mutex<String>,
}

impl DeviceStats {
    pub(crate) fn record_rtt(&self, ns: u64) {
        self.rtt_last_ns.store(ns, Ordering::Relaxed);
        self.rtt_sum_ns.fetch_add(ns, Ordering::Relaxed);
        self.rtt_max_ns.fetch_max(ns, Ordering::Relaxed);
        let min = self.rtt_min_ns.load(Ordering::Relaxed);
        if min == 0 || ns < min {
            self.rtt_min_ns.store(ns, Ordering::Relaxed);
        }
    }

    pub(crate) fn set_error(&self, text: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = text;
    }

    fn json(&self) -> Json {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let ok = ld(&self.polls_ok);
        json!({
            "health": Health::name(self.health.load(Ordering::Relaxed)),
            "polls_ok": ok,
            "polls_failed": ld(&self.polls_failed),
            "failed_in_row": ld(&self.failed_in_row),
            "requests": ld(&self.requests),
            "timeouts": ld(&self.timeouts),
            "exceptions": ld(&self.exceptions),
            "garbage": ld(&self.garbage),
            "transport_errors": ld(&self.transport_errors),
            "writes_ok": ld(&self.writes_ok),
            "writes_failed": ld(&self.writes_failed),
            "writes_rejected": ld(&self.writes_rejected),
            "retries": ld(&self.retries),
            "rewrites": ld(&self.rewrites),
            "clamps": ld(&self.clamps),
            "degraded_cycles": ld(&self.degraded_cycles),
            "rtt_last_us": ld(&self.rtt_last_ns) as f64 / 1e3,
            "rtt_min_us": ld(&self.rtt_min_ns) as f64 / 1e3,
            "rtt_max_us": ld(&self.rtt_max_ns) as f64 / 1e3,
            "rtt_mean_us": if ok > 0 { ld(&self.rtt_sum_ns) as f64 / ok as f64 / 1e3 } else { 0.0 },
            "last_error": self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        })
    }
}

/// Counters of one TCP connection (shared by the devices behind one gateway).
#[derive(Debug, Default)]
pub struct ConnStats {
    /// `host:port`.
    pub endpoint: String,
    /// Connected now.
    pub connected: AtomicBool,
    /// Successful connects.
    pub connects: AtomicU64,
    /// Failed connection attempts.
    pub connect_failures: AtomicU64,
    /// Connections lost or dropped after an error.
    pub disconnects: AtomicU64,
    /// Frames received and late answers dropped (see [`crate::transport`]).
    pub transport: Arc<TransportStats>,
}

struct DeviceEntry {
    name: String,
    unit_id: u8,
    conn: usize,
    reads: usize,
    writes: usize,
    read_requests: usize,
    write_requests: usize,
    stats: Arc<DeviceStats>,
}

/// What the client monitor reports.
struct ClientShared {
    name: String,
    running: AtomicBool,
    devices: Mutex<Vec<DeviceEntry>>,
    conns: Mutex<Vec<Arc<ConnStats>>>,
}

impl DriverMonitor for ClientShared {
    fn status_json(&self) -> String {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let devs: serde_json::Map<String, Json> = devices
            .iter()
            .map(|d| {
                let mut j = d.stats.json();
                let c = &conns.get(d.conn);
                j["endpoint"] = json!(c.map(|c| c.endpoint.clone()));
                j["connected"] = json!(c
                    .map(|c| c.connected.load(Ordering::Relaxed))
                    .unwrap_or(false));
                j["unit_id"] = json!(d.unit_id);
                j["mapped_reads"] = json!(d.reads);
                j["mapped_writes"] = json!(d.writes);
                j["read_requests_per_poll"] = json!(d.read_requests);
                j["write_requests"] = json!(d.write_requests);
                (d.name.clone(), j)
            })
            .collect();
        let cs: Vec<Json> = conns
            .iter()
            .map(|c| {
                json!({
                    "endpoint": c.endpoint,
                    "connected": c.connected.load(Ordering::Relaxed),
                    "connects": c.connects.load(Ordering::Relaxed),
                    "connect_failures": c.connect_failures.load(Ordering::Relaxed),
                    "disconnects": c.disconnects.load(Ordering::Relaxed),
                    "late_answers": c.transport.late.load(Ordering::Relaxed),
                })
            })
            .collect();
        json!({
            "driver": self.name,
            "kind": "modbus-client",
            "running": self.running.load(Ordering::Relaxed),
            "devices": devs,
            "connections": cs,
        })
        .to_string()
    }
}

struct BoundDevice {
    cfg: DeviceConfig,
    health: Option<(softplc_core::VarId, softplc_core::Slot)>,
    reads: Vec<BoundPoint>,
    writes: Vec<BoundPoint>,
    read_plan: Plan,
    write_plan: Plan,
    safe: SafePatch,
}

/// Where each written output's safe value goes in the write plan's buffers.
fn safe_patch(layout: &Layout, writes: &[BoundPoint], plan: &Plan) -> SafePatch {
    let mut patch = SafePatch::default();
    for (p, &off) in writes.iter().zip(plan.offsets.iter()) {
        if p.slot.area != Area::Output {
            continue;
        }
        let v = layout.var(p.var).safe;
        if p.table.is_bits() {
            patch.bits.push((off, p.codec.encode_bit(v)));
        } else {
            let mut w = [0u16; 4];
            let n = p.codec.words();
            p.codec.encode_words(v, &mut w[..n]);
            patch.words.extend((0..n).map(|k| (off + k, w[k])));
        }
    }
    patch
}

/// Scan-side state of one device.
struct ScanDevice {
    input: triple_buffer::Output<InSample>,
    output: triple_buffer::Input<OutSample>,
    /// Read points with their offset in the sample buffers.
    reads: Vec<(BoundPoint, usize)>,
    writes: Vec<(BoundPoint, usize)>,
    scratch_words: Vec<u16>,
    scratch_bits: Vec<bool>,
    last_words: Vec<u16>,
    last_bits: Vec<bool>,
    seq: u64,
    on_fail: OnFail,
    stale_ns: u64,
    health: Option<(softplc_core::VarId, softplc_core::Slot)>,
    stats: Arc<DeviceStats>,
}

impl ScanDevice {
    /// Latches the newest data into the image. Returns true when every input is good.
    fn read(&mut self, cx: &mut IoCtx<'_>, offset: i64) -> bool {
        let s = self.input.read();
        let stamp = if s.good_seq == 0 {
            0
        } else {
            (s.acquired_mono as i64 + offset).max(0) as u64
        };
        let quality = if s.bad {
            Quality::Bad
        } else if s.good_seq == 0 || cx.now_ns.saturating_sub(stamp) > self.stale_ns {
            Quality::Stale
        } else {
            Quality::Good
        };
        let mut clamps = 0u64;
        for (p, off) in &self.reads {
            let i = p.var.index();
            if s.bad && self.on_fail == OnFail::Substitute {
                cx.image.store(p.slot, p.substitute);
            } else if s.good_seq > 0 {
                let (v, clamped) = if p.table.is_bits() {
                    (p.codec.decode_bit(s.bits[*off]), false)
                } else {
                    p.codec.decode_words(&s.words[*off..*off + p.codec.words()])
                };
                clamps += clamped as u64;
                cx.image.store(p.slot, v);
            }
            cx.image.quality[i] = quality;
            cx.image.stamp_ns[i] = stamp;
        }
        if clamps > 0 && s.good_seq > 0 {
            self.stats.clamps.fetch_add(clamps, Ordering::Relaxed);
        }
        let good = if self.reads.is_empty() {
            !s.bad && s.good_seq > 0
        } else {
            quality == Quality::Good
        };
        if let Some((id, slot)) = self.health {
            cx.image.store(slot, softplc_core::Value::Bool(good));
            cx.image.quality[id.index()] = Quality::Good;
            cx.image.stamp_ns[id.index()] = cx.now_ns;
        }
        if !good {
            self.stats.degraded_cycles.fetch_add(1, Ordering::Relaxed);
        }
        good
    }

    /// Encodes outputs and publishes them when they changed.
    fn write(&mut self, cx: &mut IoCtx<'_>) {
        if self.writes.is_empty() {
            return;
        }
        let mut clamps = 0u64;
        for (p, off) in &self.writes {
            let v = cx.image.load(p.slot);
            if p.table.is_bits() {
                self.scratch_bits[*off] = p.codec.encode_bit(v);
            } else {
                let n = p.codec.words();
                clamps += p
                    .codec
                    .encode_words(v, &mut self.scratch_words[*off..*off + n])
                    as u64;
            }
        }
        if self.seq > 0
            && self.scratch_words == self.last_words
            && self.scratch_bits == self.last_bits
        {
            return;
        }
        if clamps > 0 {
            self.stats.clamps.fetch_add(clamps, Ordering::Relaxed);
        }
        self.last_words.copy_from_slice(&self.scratch_words);
        self.last_bits.copy_from_slice(&self.scratch_bits);
        self.seq += 1;
        let buf = self.output.input_buffer_mut();
        buf.words.copy_from_slice(&self.scratch_words);
        buf.bits.copy_from_slice(&self.scratch_bits);
        buf.seq = self.seq;
        self.output.publish();
    }
}

/// The Modbus TCP client driver for every `[[device]]` of a configuration.
pub struct ModbusClient {
    name: String,
    devices: Vec<DeviceConfig>,
    bound: Vec<BoundDevice>,
    scan: Vec<ScanDevice>,
    io: Option<IoThread>,
    shared: Arc<ClientShared>,
    clock: Arc<ClockLink>,
    latch: Arc<SafeLatch>,
}

impl ModbusClient {
    /// A driver named `name` for `devices`.
    pub fn new(name: &str, devices: Vec<DeviceConfig>) -> ModbusClient {
        let shared = Arc::new(ClientShared {
            name: name.to_string(),
            running: AtomicBool::new(false),
            devices: Mutex::new(Vec::new()),
            conns: Mutex::new(Vec::new()),
        });
        ModbusClient {
            name: name.to_string(),
            devices,
            bound: Vec::new(),
            scan: Vec::new(),
            io: None,
            shared,
            clock: Arc::new(ClockLink::new()),
            latch: Arc::default(),
        }
    }

    /// The devices' configurations.
    pub fn devices(&self) -> &[DeviceConfig] {
        &self.devices
    }

    fn endpoints(&self) -> Vec<String> {
        let mut eps: Vec<String> = Vec::new();
        for d in &self.devices {
            if !eps.contains(&d.endpoint()) {
                eps.push(d.endpoint());
            }
        }
        eps
    }
}

impl Driver for ModbusClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn bind(&mut self, layout: &Layout) -> Result<(), ConfigError> {
        let mut bound = Vec::new();
        for d in &self.devices {
            let reads = bind_points(layout, &d.reads, Usage::DeviceRead)?;
            let writes = bind_points(layout, &d.writes, Usage::DeviceWrite)?;
            let rspans: Vec<_> = reads
                .iter()
                .map(|p| (p.table, p.address, p.len()))
                .collect();
            let wspans: Vec<_> = writes
                .iter()
                .map(|p| (p.table, p.address, p.len()))
                .collect();
            let health = crate::bind::bind_health(layout, d)?;
            let write_plan = plan(&wspans, 0, true);
            bound.push(BoundDevice {
                cfg: d.clone(),
                health,
                read_plan: plan(&rspans, d.max_gap, false),
                safe: safe_patch(layout, &writes, &write_plan),
                write_plan,
                reads,
                writes,
            });
        }
        let eps = self.endpoints();
        let entries = bound
            .iter()
            .map(|b| DeviceEntry {
                name: b.cfg.name.clone(),
                unit_id: b.cfg.unit_id,
                conn: eps.iter().position(|e| *e == b.cfg.endpoint()).unwrap_or(0),
                reads: b.reads.len(),
                writes: b.writes.len(),
                read_requests: b.read_plan.requests.len(),
                write_requests: b.write_plan.requests.len(),
                stats: Arc::new(DeviceStats::default()),
            })
            .collect();
        *self
            .shared
            .devices
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = entries;
        *self.shared.conns.lock().unwrap_or_else(|p| p.into_inner()) = eps
            .iter()
            .map(|e| {
                Arc::new(ConnStats {
                    endpoint: e.clone(),
                    ..ConnStats::default()
                })
            })
            .collect();
        self.bound = bound;
        Ok(())
    }

    fn start(&mut self, events: EventSink) -> Result<(), IoError> {
        self.stop();
        let stats: Vec<Arc<DeviceStats>> = self
            .shared
            .devices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|d| d.stats.clone())
            .collect();
        let conn_stats = self
            .shared
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if stats.len() != self.bound.len() {
            return Err(IoError {
                message: format!("driver {:?}: start before bind", self.name),
            });
        }
        let eps = self.endpoints();
        let mut groups: Vec<Vec<IoDevice>> = eps.iter().map(|_| Vec::new()).collect();
        let mut scan = Vec::new();
        for (i, b) in self.bound.iter().enumerate() {
            let (in_tx, in_rx) = triple_buffer(&InSample {
                words: vec![0; b.read_plan.words],
                bits: vec![false; b.read_plan.bits],
                ..InSample::default()
            });
            let (out_tx, out_rx) = triple_buffer(&OutSample {
                words: vec![0; b.write_plan.words],
                bits: vec![false; b.write_plan.bits],
                seq: 0,
            });
            stats[i]
                .health
                .store(Health::Waiting as u8, Ordering::Relaxed);
            scan.push(ScanDevice {
                input: in_rx,
                output: out_tx,
                reads: b
                    .reads
                    .iter()
                    .cloned()
                    .zip(b.read_plan.offsets.iter().copied())
                    .collect(),
                writes: b
                    .writes
                    .iter()
                    .cloned()
                    .zip(b.write_plan.offsets.iter().copied())
                    .collect(),
                scratch_words: vec![0; b.write_plan.words],
                scratch_bits: vec![false; b.write_plan.bits],
                last_words: vec![0; b.write_plan.words],
                last_bits: vec![false; b.write_plan.bits],
                seq: 0,
                on_fail: b.cfg.on_fail,
                stale_ns: b.cfg.stale.as_nanos() as u64,
                health: b.health,
                stats: stats[i].clone(),
            });
            let conn = eps.iter().position(|e| *e == b.cfg.endpoint()).unwrap_or(0);
            groups[conn].push(
                IoDevice::new(
                    i,
                    b.cfg.clone(),
                    b.read_plan.clone(),
                    b.write_plan.clone(),
                    in_tx,
                    out_rx,
                    stats[i].clone(),
                )
                .with_safe_state(b.safe.clone(), self.latch.clone()),
            );
        }
        let mut specs = Vec::new();
        for (c, group) in groups.into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            let first = &group[0].cfg;
            specs.push((
                ConnSpec {
                    index: c,
                    host: first.host.clone(),
                    port: first.port,
                    reconnect_min: first.reconnect_min,
                    reconnect_max: first.reconnect_max,
                    connect_timeout: group
                        .iter()
                        .map(|d| d.cfg.timeout)
                        .max()
                        .unwrap_or_default(),
                    stats: conn_stats[c].clone(),
                },
                group,
            ));
        }
        let clock = self.clock.clone();
        let thread_name = format!("softplc-{}", self.name);
        let io = IoThread::spawn(&thread_name, move |shutdown| async move {
            let mut tasks = Vec::new();
            for (spec, group) in specs {
                let fut = crate::poller::run(
                    spec,
                    group,
                    events.clone(),
                    clock.clone(),
                    shutdown.clone(),
                );
                tasks.push(tokio::spawn(fut));
            }
            stopped(shutdown).await;
            for t in tasks {
                let _ = t.await;
            }
        })?;
        self.latch.active.store(false, Ordering::Release);
        *self.latch.stop.lock().unwrap_or_else(|p| p.into_inner()) = Some(io.stop_handle());
        self.scan = scan;
        self.io = Some(io);
        self.shared.running.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn read_inputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        let offset = self.clock.update(cx.now_ns);
        let mut all_good = true;
        for d in &mut self.scan {
            all_good &= d.read(cx, offset);
        }
        if all_good {
            IoStatus::Ok
        } else {
            IoStatus::Degraded
        }
    }

    fn write_outputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        for d in &mut self.scan {
            d.write(cx);
        }
        // The scan is back and has published what it wants (safe values, in FAULT):
        // the watchdog's override ends. Lowered after the publication, so a poller that
        // sees it down reads that publication.
        if self.latch.active.load(Ordering::Relaxed) {
            self.latch.active.store(false, Ordering::Release);
        }
        IoStatus::Ok
    }

    fn stop(&mut self) {
        if let Some(mut io) = self.io.take() {
            io.stop();
        }
        self.scan.clear();
        self.shared.running.store(false, Ordering::Relaxed);
    }

    fn monitor(&self) -> Option<Arc<dyn DriverMonitor>> {
        Some(self.shared.clone())
    }

    fn safe_state(&self) -> Option<Arc<dyn SafeState>> {
        Some(self.latch.clone())
    }
}

impl Drop for ModbusClient {
    fn drop(&mut self) {
        self.stop();
    }
}
