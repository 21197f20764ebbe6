//! The server's emergency handle. While the scan thread is stuck past its watchdog the
//! engine makes outputs safe through the drivers; the buses carry safe values at once,
//! and so should what OPC UA clients see. `force_safe` raises a flag the sampling loop
//! reads at its next tick (it then shows every exposed output at its declared safe
//! value); the scan's next `write_outputs` lowers it (by then it publishes safe values
//! itself, the engine being in FAULT).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use softplc_core::SafeState;
use softplc_io::runtime::StopHandle;

/// Which exposed outputs have which safe value, and the override flag.
#[derive(Default)]
pub struct ServerSafe {
    forced: AtomicBool,
    /// (plan index, safe value's bits) of each exposed output; set at bind.
    outputs: Mutex<Vec<(usize, u64)>>,
    /// Stops the server's thread without the driver object.
    pub(crate) stop: Mutex<Option<StopHandle>>,
}

impl ServerSafe {
    /// Sets the exposed outputs' safe values (bind time).
    pub fn set_outputs(&self, outputs: Vec<(usize, u64)>) {
        *self.outputs.lock().unwrap_or_else(|p| p.into_inner()) = outputs;
    }

    /// The exposed outputs' safe values.
    pub fn outputs(&self) -> Vec<(usize, u64)> {
        self.outputs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True while the watchdog's override holds.
    pub fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Acquire)
    }

    /// Scan thread, in `write_outputs`: ends the override. One atomic load (and a
    /// store when it was set): no allocation, locks or syscalls.
    pub fn release(&self) {
        if self.forced.load(Ordering::Relaxed) {
            self.forced.store(false, Ordering::Release);
        }
    }
}

impl SafeState for ServerSafe {
    fn force_safe(&self) {
        self.forced.store(true, Ordering::Release);
    }

    fn shutdown(&self) {
        if let Some(s) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            s.stop();
        }
    }
}
