//! The I/O driver interface.
//!
//! The engine calls [`Driver::read_inputs`] and [`Driver::write_outputs`] on the scan
//! thread every cycle. A fieldbus driver does its device I/O on its own threads and
//! only exchanges buffers in these calls (lock-free, never waiting on a device), so a
//! slow or dead device cannot block the scan; the simulation driver does its work right
//! there, which keeps virtual time deterministic.

use std::fmt;
use std::sync::Arc;

use crate::clock::EngineClock;
use crate::engine::EngineLink;
use crate::event::EventSink;
use crate::image::{ConfigError, Image, Layout, VarId};

/// The engine's operating state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlcState {
    /// Programs are not executed; outputs hold their safe values.
    Stop,
    /// Programs run every cycle.
    Run,
    /// A fault stopped the programs; outputs hold their safe values until the fault is
    /// cleared on request.
    Fault,
}

impl PlcState {
    /// Upper-case name (`RUN`).
    pub fn name(self) -> &'static str {
        match self {
            PlcState::Stop => "STOP",
            PlcState::Run => "RUN",
            PlcState::Fault => "FAULT",
        }
    }
}

impl fmt::Display for PlcState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a driver sees in `read_inputs` / `write_outputs`.
pub struct IoCtx<'a> {
    /// The process image. In `read_inputs` a driver writes the inputs it owns (bytes,
    /// quality, stamp); in `write_outputs` it reads outputs.
    pub image: &'a mut Image,
    /// The layout.
    pub layout: &'a Layout,
    /// The cycle's `now` (engine clock, ns).
    pub now_ns: u64,
    /// Time since the previous cycle of the same task (the period in virtual time).
    pub dt_ns: u64,
    /// Engine state for this cycle. In STOP and FAULT the outputs already hold their
    /// safe values when `write_outputs` is called.
    pub state: PlcState,
}

/// What a driver gets at start: where its events go and the engine's clock, which it
/// keeps for its own threads (they stamp device data and events in engine time).
#[derive(Clone, Debug)]
pub struct StartCtx {
    /// The engine's event log.
    pub events: EventSink,
    /// The engine's clock.
    pub clock: EngineClock,
}

/// Result of one driver exchange: a `Copy` value, no allocation on the scan path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoStatus {
    /// Everything exchanged.
    Ok,
    /// Some data is bad or stale (quality says which).
    Degraded,
    /// The driver could not exchange at all this cycle.
    Failed,
}

/// A driver error at start-up (opening a port, connecting a socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoError {
    /// The message, naming the device.
    pub message: String,
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IoError {}

/// A thread-safe view of a driver's health, readable from any thread while it runs.
pub trait DriverMonitor: Send + Sync {
    /// A JSON object with the driver's counters and device states.
    fn status_json(&self) -> String;
}

/// A driver's emergency handle, used from the watchdog thread when the scan thread
/// cannot act: a cycle is stuck past its watchdog, or `close` gave up waiting for it.
///
/// Thread notes: both methods run off the scan thread and may allocate and lock, but
/// must not wait on the scan thread or on a device (the scan thread owns the driver and
/// may be stuck for good).
pub trait SafeState: Send + Sync {
    /// Publishes every output this driver carries at its declared safe value, now. The
    /// override holds until the scan thread's next `write_outputs`, which carries safe
    /// values itself by then (the engine is in FAULT).
    fn force_safe(&self);
    /// Asks the driver's own threads to end, without the driver object: the engine is
    /// abandoning a scan thread that never returned. Returns without waiting.
    fn shutdown(&self);
}

/// An I/O driver. Lifecycle: `bind` (load time), `start`, then per cycle
/// `read_inputs`/`write_outputs` on the scan thread, then `stop`.
pub trait Driver: Send {
    /// Name, unique within the engine (`sim`, `modbus`).
    fn name(&self) -> &str;
    /// Resolves variable names to slots and checks types. Allocation is fine here.
    fn bind(&mut self, layout: &Layout) -> Result<(), ConfigError>;
    /// Opens devices and starts threads, which keep what they need of `cx`. On error
    /// nothing may be left running. Off the scan thread.
    fn start(&mut self, cx: &StartCtx) -> Result<(), IoError>;
    /// Latches the newest inputs into the image. Scan thread: must not block, allocate
    /// or make blocking syscalls.
    fn read_inputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus;
    /// Publishes outputs. Scan thread: must not block, allocate or make blocking
    /// syscalls. Called in every state; in STOP/FAULT outputs hold their safe values.
    fn write_outputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus;
    /// Stops threads and closes devices; idempotent. Off the scan thread (the engine
    /// calls it after the scan has ended).
    fn stop(&mut self);
    /// After an exchange returned [`IoStatus::Failed`]: a cause that should fault the
    /// engine (a plant model that raised). Fieldbus drivers return None: a failed
    /// device degrades quality, it does not stop the programs.
    fn take_fault(&mut self) -> Option<String> {
        None
    }
    /// A monitor for status queries from other threads, if the driver offers one.
    fn monitor(&self) -> Option<Arc<dyn DriverMonitor>> {
        None
    }
    /// The emergency handle, asked for once after `start`. Drivers whose outputs reach
    /// anything outside the process (a bus, a device) must offer one, so that the
    /// watchdog can make those outputs safe while the scan thread is stuck.
    fn safe_state(&self) -> Option<Arc<dyn SafeState>> {
        None
    }
    /// The variables this driver sets from a device in `read_inputs` (inputs, or
    /// memory a device feeds; asked once after `bind`). A server that lets clients write variables refuses writes
    /// to these: the next poll would overwrite them. Load time: may allocate.
    fn device_inputs(&self) -> Vec<VarId> {
        Vec::new()
    }
    /// Receives the engine link once, before `start`: drivers that serve the engine's
    /// state, statistics and commands to clients (an OPC UA server) keep a clone;
    /// others ignore it. Off the scan thread.
    fn engine_link(&mut self, _link: &EngineLink) {}
}
