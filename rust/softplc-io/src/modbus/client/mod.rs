//! The Modbus client driver: polls devices and writes their outputs, over TCP or on
//! serial lines (Modbus RTU, see [`crate::modbus::rtu`]).
//!
//! Device I/O runs on the driver's own I/O threads (see `poller`): one for all TCP
//! connections, and one for each serial line, because sending on a serial line ends in
//! a blocking drain that must not hold up any other line or connection. Each device
//! exchanges data with the scan through two triple buffers (see `exchange`): the poller
//! publishes the newest registers and the device's health, the scan publishes the
//! newest output registers. `read_inputs` and `write_outputs` only copy and convert: no
//! allocation, no locks, no syscalls, and never a wait on a device.
//!
//! Files: this one (the driver and its scan side), `exchange` (the samples and the
//! watchdog's override), `status` (counters and the monitor), `poller` (the I/O side,
//! one task per connection), `transport` (MBAP framing under tokio-modbus's codec).

mod exchange;
mod poller;
mod status;
pub mod transport;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use softplc_core::{
    Area, ConfigError, Driver, DriverMonitor, EngineClock, IoCtx, IoError, IoStatus, Layout,
    SafeState, Slot, StartCtx, VarId,
};
use triple_buffer::triple_buffer;

use crate::client::quality::store_health;
use crate::client::safe::SafeLatch;
use crate::config::{DeviceConfig, OnFail};
use crate::modbus::bind::{bind_health, bind_points, BoundPoint, Usage};
use crate::modbus::plan::{plan, Plan};
use crate::runtime::{stopped, IoThread};

pub use crate::client::status::{ConnStats, DeviceStats, Health};
use exchange::{InSample, OutSample, SafePatch};
use poller::{ConnSpec, IoDevice};
use status::{ClientShared, DeviceEntry};

/// An I/O thread to start: its name and the connections it serves.
type ThreadPlan = (String, Vec<(ConnSpec, Vec<IoDevice>)>);

struct BoundDevice {
    cfg: DeviceConfig,
    health: Option<(VarId, Slot)>,
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
            patch.bits.push(off, p.codec.encode_bit(v));
        } else {
            let mut w = [0u16; 4];
            let n = p.codec.words();
            p.codec.encode_words(v, &mut w[..n]);
            (0..n).for_each(|k| patch.words.push(off + k, w[k]));
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
    health: Option<(VarId, Slot)>,
    stats: Arc<DeviceStats>,
    /// The engine clock, to stamp data acquired on the I/O thread.
    clock: EngineClock,
}

impl ScanDevice {
    /// Latches the newest data into the image. Returns true when every input is good.
    /// Scan thread: copies and conversions only, no allocation, locks or syscalls.
    fn read(&mut self, cx: &mut IoCtx<'_>) -> bool {
        let s = self.input.read();
        let (quality, stamp) = s.state.judge(&self.clock, cx.now_ns, self.stale_ns);
        let mut clamps = 0u64;
        for (p, off) in &self.reads {
            let i = p.var.index();
            if s.state.bad && self.on_fail == OnFail::Substitute {
                cx.image.store(p.slot, p.substitute);
            } else if s.state.good_seq > 0 {
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
        if clamps > 0 && s.state.good_seq > 0 {
            self.stats.clamps.fetch_add(clamps, Ordering::Relaxed);
        }
        let good = s.state.good(!self.reads.is_empty(), quality);
        store_health(cx.image, cx.now_ns, self.health, good);
        if !good {
            self.stats.degraded_cycles.fetch_add(1, Ordering::Relaxed);
        }
        good
    }

    /// Encodes outputs and publishes them when they changed. Scan thread: copies and
    /// conversions only, no allocation, locks or syscalls.
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

/// The Modbus client driver for every `[[device]]` of a configuration (TCP and RTU).
pub struct ModbusClient {
    name: String,
    devices: Vec<DeviceConfig>,
    bound: Vec<BoundDevice>,
    scan: Vec<ScanDevice>,
    io: Vec<IoThread>,
    shared: Arc<ClientShared>,
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
            io: Vec::new(),
            shared,
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
            let health = bind_health(layout, d)?;
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
                let serial = self
                    .devices
                    .iter()
                    .any(|d| d.serial.is_some() && d.endpoint() == *e);
                Arc::new(ConnStats {
                    endpoint: e.clone(),
                    line: serial.then(Arc::default),
                    ..ConnStats::default()
                })
            })
            .collect();
        self.bound = bound;
        Ok(())
    }

    fn start(&mut self, cx: &StartCtx) -> Result<(), IoError> {
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
                clock: cx.clock.clone(),
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
                    serial: first
                        .serial
                        .clone()
                        .map(|p| (p, conn_stats[c].line.clone().unwrap_or_default())),
                },
                group,
            ));
        }
        // TCP connections share one thread; each serial line gets its own.
        let (tcp, serial): (Vec<_>, Vec<_>) =
            specs.into_iter().partition(|(s, _)| s.serial.is_none());
        let mut threads: Vec<ThreadPlan> = Vec::new();
        if !tcp.is_empty() {
            threads.push((format!("softplc-{}", self.name), tcp));
        }
        for (spec, group) in serial {
            let port = spec
                .serial
                .as_ref()
                .map(|(p, _)| p.name.clone())
                .unwrap_or_default();
            threads.push((format!("softplc-rtu-{port}"), vec![(spec, group)]));
        }
        let mut ios = Vec::new();
        for (thread_name, specs) in threads {
            let (events, clock) = (cx.events.clone(), cx.clock.clone());
            let io = IoThread::spawn(&thread_name, move |shutdown| async move {
                let mut tasks = Vec::new();
                for (spec, group) in specs {
                    let fut =
                        poller::run(spec, group, events.clone(), clock.clone(), shutdown.clone());
                    tasks.push(tokio::spawn(fut));
                }
                stopped(shutdown).await;
                for t in tasks {
                    let _ = t.await;
                }
            });
            match io {
                Ok(io) => ios.push(io),
                Err(e) => {
                    ios.iter_mut().for_each(IoThread::stop);
                    return Err(e);
                }
            }
        }
        self.latch
            .arm(ios.iter().map(IoThread::stop_handle).collect());
        self.scan = scan;
        self.io = ios;
        self.shared.running.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Scan thread: no allocation, locks or syscalls.
    fn read_inputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        let mut all_good = true;
        for d in &mut self.scan {
            all_good &= d.read(cx);
        }
        if all_good {
            IoStatus::Ok
        } else {
            IoStatus::Degraded
        }
    }

    /// Scan thread: no allocation, locks or syscalls.
    fn write_outputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        for d in &mut self.scan {
            d.write(cx);
        }
        // The scan is back and has published what it wants (safe values, in FAULT):
        // the watchdog's override ends.
        self.latch.release();
        IoStatus::Ok
    }

    fn stop(&mut self) {
        for mut io in self.io.drain(..) {
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

    /// Every variable a device read feeds, and each device's health variable.
    fn device_inputs(&self) -> Vec<VarId> {
        self.bound
            .iter()
            .flat_map(|b| b.reads.iter().map(|p| p.var).chain(b.health.map(|h| h.0)))
            .collect()
    }
}

impl Drop for ModbusClient {
    fn drop(&mut self) {
        self.stop();
    }
}
