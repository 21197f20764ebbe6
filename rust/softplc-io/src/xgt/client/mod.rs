//! The XGT client driver: polls LS Electric PLCs over their dedicated protocol (FEnet,
//! TCP 2004) and writes their outputs.
//!
//! One connection per PLC, on the driver's I/O thread (see `poller`): requests planned
//! into the fewest frames ([`crate::xgt::plan`]), sent several at a time and matched by
//! invoke ID (see `conn`). Each PLC exchanges data with the scan through two triple
//! buffers of its plans' byte buffers: `read_inputs` and `write_outputs` only copy and
//! convert, with no allocation, locks or syscalls, and never wait on a PLC. Quality,
//! age, the health variable, the watchdog's safe-output override and the counters are
//! the ones every client driver shares ([`crate::client`]).
//!
//! Files: this one (the driver and its scan side), `poller` (the I/O side), `conn` (one
//! connection: framing, invoke IDs, pipelining), `status` (the monitor).

mod conn;
mod poller;
mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use softplc_core::{
    Area, ConfigError, Driver, DriverMonitor, EngineClock, IoCtx, IoError, IoStatus, Layout,
    SafeState, Slot, StartCtx, VarId,
};
use triple_buffer::triple_buffer;

use crate::client::quality::store_health;
use crate::client::safe::{Patch, SafeLatch};
use crate::client::status::{ConnStats, DeviceStats, Health};
use crate::config::{OnFail, XgtDeviceConfig};
use crate::modbus::bind::bind_health_var;
use crate::runtime::{stopped, IoThread};

use super::bind::{bind_points, plan_error, Bound, Usage, XgtPoint};
use super::plan::{plan, Direction, Place, Plan};

use poller::{ConnSpec, DeviceParts, InSample, IoDevice, OutSample};
use status::{ClientShared, DeviceEntry};

/// A PLC bound to the image: its points, plans and where each point's value is.
struct BoundDevice {
    cfg: XgtDeviceConfig,
    health: Option<(VarId, Slot)>,
    reads: Vec<(XgtPoint, Place)>,
    writes: Vec<(XgtPoint, Place)>,
    read_plan: Plan,
    write_plan: Plan,
    safe: Patch<u8>,
}

/// Binds and plans one PLC's mappings; errors name the mapping's file, line and key.
fn bind_device(layout: &Layout, d: &XgtDeviceConfig) -> Result<BoundDevice, ConfigError> {
    let reads = bind_points(layout, &d.reads, &d.naming, Usage::DeviceRead)?;
    let writes = bind_points(layout, &d.writes, &d.naming, Usage::DeviceWrite)?;
    let read_plan = plan(&reads.mappings, &d.naming, Direction::Read, d.max_gap)
        .map_err(|e| plan_error(&d.reads, &reads.origin, &e))?;
    let write_plan = plan(&writes.mappings, &d.naming, Direction::Write, 0)
        .map_err(|e| plan_error(&d.writes, &writes.origin, &e))?;
    let with_places = |b: Bound, p: &Plan| -> Vec<(XgtPoint, Place)> {
        b.points
            .into_iter()
            .map(|pt| {
                let place = p.places[pt.mapping];
                (pt, place)
            })
            .collect()
    };
    let writes = with_places(writes, &write_plan);
    let safe = safe_patch(layout, &writes, &write_plan);
    Ok(BoundDevice {
        health: bind_health_var(layout, &d.name, &d.health_var)?,
        reads: with_places(reads, &read_plan),
        writes,
        read_plan,
        write_plan,
        safe,
        cfg: d.clone(),
    })
}

/// Where each written output's safe value goes in the write plan's buffer.
fn safe_patch(layout: &Layout, writes: &[(XgtPoint, Place)], plan: &Plan) -> Patch<u8> {
    let mut patch = Patch::default();
    let mut buf = vec![0u8; plan.buffer_len];
    for (p, place) in writes {
        if p.slot.area != Area::Output {
            continue;
        }
        let (raw, _) = p.codec.encode(layout.var(p.var).safe);
        let ty = p.address.ty;
        place.set(&mut buf, ty, p.element, raw);
        // Written values are never packed: a bit has a byte of its own.
        let at = place.offset + p.element * ty.size();
        (at..at + ty.size()).for_each(|k| patch.push(k, buf[k]));
    }
    patch
}

/// Scan-side state of one PLC.
struct ScanDevice {
    input: triple_buffer::Output<InSample>,
    output: triple_buffer::Input<OutSample>,
    reads: Vec<(XgtPoint, Place)>,
    writes: Vec<(XgtPoint, Place)>,
    scratch: Vec<u8>,
    last: Vec<u8>,
    seq: u64,
    on_fail: OnFail,
    stale_ns: u64,
    health: Option<(VarId, Slot)>,
    stats: Arc<DeviceStats>,
    clock: EngineClock,
}

impl ScanDevice {
    /// Latches the newest data into the image. Returns true when every input is good.
    /// Scan thread: copies and conversions only, no allocation, locks or syscalls.
    fn read(&mut self, cx: &mut IoCtx<'_>) -> bool {
        let s = self.input.read();
        let (quality, stamp) = s.state.judge(&self.clock, cx.now_ns, self.stale_ns);
        let mut clamps = 0u64;
        for (p, place) in &self.reads {
            let i = p.var.index();
            if s.state.bad && self.on_fail == OnFail::Substitute {
                cx.image.store(p.slot, p.substitute);
            } else if s.state.good_seq > 0 {
                let raw = place.get(&s.data, p.address.ty, p.element);
                let (v, clamped) = p.codec.decode(raw);
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
        for (p, place) in &self.writes {
            let (raw, clamped) = p.codec.encode(cx.image.load(p.slot));
            clamps += clamped as u64;
            place.set(&mut self.scratch, p.address.ty, p.element, raw);
        }
        if self.seq > 0 && self.scratch == self.last {
            return;
        }
        if clamps > 0 {
            self.stats.clamps.fetch_add(clamps, Ordering::Relaxed);
        }
        self.last.copy_from_slice(&self.scratch);
        self.seq += 1;
        let buf = self.output.input_buffer_mut();
        buf.data.copy_from_slice(&self.scratch);
        buf.seq = self.seq;
        self.output.publish();
    }
}

/// The XGT client driver for every `[[device]]` with `protocol = "xgt"`.
pub struct XgtClient {
    name: String,
    devices: Vec<XgtDeviceConfig>,
    bound: Vec<BoundDevice>,
    scan: Vec<ScanDevice>,
    io: Option<IoThread>,
    shared: Arc<ClientShared>,
    latch: Arc<SafeLatch>,
}

impl XgtClient {
    /// A driver named `name` for `devices` (one connection each).
    pub fn new(name: &str, devices: Vec<XgtDeviceConfig>) -> XgtClient {
        let shared = Arc::new(ClientShared {
            name: name.to_string(),
            running: AtomicBool::new(false),
            devices: Mutex::new(Vec::new()),
        });
        XgtClient {
            name: name.to_string(),
            devices,
            bound: Vec::new(),
            scan: Vec::new(),
            io: None,
            shared,
            latch: Arc::default(),
        }
    }

    /// The PLCs' configurations.
    pub fn devices(&self) -> &[XgtDeviceConfig] {
        &self.devices
    }
}

/// Requests per poll and write requests of a PLC bound to `layout` (for `softplc io
/// check`); errors name the mapping's file, line and key.
pub fn plan_counts(layout: &Layout, d: &XgtDeviceConfig) -> Result<(usize, usize), ConfigError> {
    let b = bind_device(layout, d)?;
    Ok((b.read_plan.requests.len(), b.write_plan.requests.len()))
}

impl Driver for XgtClient {
    fn name(&self) -> &str {
        &self.name
    }

    fn bind(&mut self, layout: &Layout) -> Result<(), ConfigError> {
        let bound = self
            .devices
            .iter()
            .map(|d| bind_device(layout, d))
            .collect::<Result<Vec<_>, _>>()?;
        *self
            .shared
            .devices
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = bound
            .iter()
            .map(|b| DeviceEntry {
                name: b.cfg.name.clone(),
                cpu: b.cfg.cpu,
                pipeline: b.cfg.pipeline,
                reads: b.reads.len(),
                writes: b.writes.len(),
                read_requests: b.read_plan.requests.len(),
                write_requests: b.write_plan.requests.len(),
                stats: Arc::new(DeviceStats::default()),
                conn: Arc::new(ConnStats {
                    endpoint: b.cfg.endpoint(),
                    ..ConnStats::default()
                }),
            })
            .collect();
        self.bound = bound;
        Ok(())
    }

    fn start(&mut self, cx: &StartCtx) -> Result<(), IoError> {
        self.stop();
        let entries: Vec<(Arc<DeviceStats>, Arc<ConnStats>)> = self
            .shared
            .devices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|d| (d.stats.clone(), d.conn.clone()))
            .collect();
        if entries.len() != self.bound.len() {
            return Err(IoError {
                message: format!("driver {:?}: start before bind", self.name),
            });
        }
        let mut scan = Vec::new();
        let mut tasks = Vec::new();
        for (i, b) in self.bound.iter().enumerate() {
            let (stats, conn) = entries[i].clone();
            let (in_tx, in_rx) = triple_buffer(&InSample {
                data: vec![0; b.read_plan.buffer_len],
                ..InSample::default()
            });
            let (out_tx, out_rx) = triple_buffer(&OutSample {
                data: vec![0; b.write_plan.buffer_len],
                seq: 0,
            });
            stats.health.store(Health::Waiting as u8, Ordering::Relaxed);
            scan.push(ScanDevice {
                input: in_rx,
                output: out_tx,
                reads: b.reads.clone(),
                writes: b.writes.clone(),
                scratch: vec![0; b.write_plan.buffer_len],
                last: vec![0; b.write_plan.buffer_len],
                seq: 0,
                on_fail: b.cfg.on_fail,
                stale_ns: b.cfg.stale.as_nanos() as u64,
                health: b.health,
                stats: stats.clone(),
                clock: cx.clock.clone(),
            });
            let dev = IoDevice::new(DeviceParts {
                index: i,
                cfg: b.cfg.clone(),
                read_plan: b.read_plan.clone(),
                write_plan: b.write_plan.clone(),
                input: in_tx,
                output: out_rx,
                stats,
                safe: b.safe.clone(),
                latch: self.latch.clone(),
            });
            tasks.push((
                ConnSpec {
                    index: i,
                    stats: conn,
                },
                dev,
            ));
        }
        let (events, clock) = (cx.events.clone(), cx.clock.clone());
        let io = IoThread::spawn(
            &format!("softplc-{}", self.name),
            move |shutdown| async move {
                let mut handles = Vec::new();
                for (spec, dev) in tasks {
                    let fut =
                        poller::run(spec, dev, events.clone(), clock.clone(), shutdown.clone());
                    handles.push(tokio::spawn(fut));
                }
                stopped(shutdown).await;
                for h in handles {
                    let _ = h.await;
                }
            },
        )?;
        self.latch.arm(vec![io.stop_handle()]);
        self.scan = scan;
        self.io = Some(io);
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
        // The scan is back and has published what it wants: the override ends.
        self.latch.release();
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

    fn device_inputs(&self) -> Vec<VarId> {
        self.bound
            .iter()
            .flat_map(|b| {
                b.reads
                    .iter()
                    .map(|(p, _)| p.var)
                    .chain(b.health.map(|h| h.0))
            })
            .collect()
    }
}

impl Drop for XgtClient {
    fn drop(&mut self) {
        self.stop();
    }
}
