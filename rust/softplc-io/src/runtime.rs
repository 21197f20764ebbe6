//! The I/O thread: one tokio runtime on one OS thread per driver.
//!
//! Async code lives only here and in the tasks it runs; the scan thread never touches
//! the runtime. The thread runs at a slightly raised nice value so that, on a busy
//! machine, the scheduler prefers the scan thread when both are runnable.

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use softplc_core::IoError;
use tokio::sync::watch;

/// Nice value of I/O threads (higher is politer).
const IO_NICE: i32 = 5;

/// Receives the stop request.
pub type Shutdown = watch::Receiver<bool>;

/// Waits until `stop` is requested.
pub async fn stopped(mut rx: Shutdown) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// A running I/O thread.
#[derive(Debug)]
pub struct IoThread {
    stop: Arc<watch::Sender<bool>>,
    handle: Option<JoinHandle<()>>,
}

/// Asks an I/O thread to stop without its [`IoThread`] (which may be owned by a scan
/// thread the engine is abandoning). Does not wait.
#[derive(Clone, Debug)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    /// Requests the stop.
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

impl IoThread {
    /// Starts a thread named `name` running the future `make` builds. `make` runs on the
    /// new thread inside the runtime (so it may create tokio sockets).
    pub fn spawn<F, Fut>(name: &str, make: F) -> Result<IoThread, IoError>
    where
        F: FnOnce(Shutdown) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let (stop, rx) = watch::channel(false);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| IoError {
                message: format!("{name}: cannot start the I/O runtime: {e}"),
            })?;
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                lower_priority();
                let fut = {
                    let _enter = rt.enter();
                    make(rx)
                };
                rt.block_on(fut);
                // Connection tasks spawned by the server end here.
                rt.shutdown_timeout(Duration::from_millis(500));
            })
            .map_err(|e| IoError {
                message: format!("{name}: cannot start the I/O thread: {e}"),
            })?;
        Ok(IoThread {
            stop: Arc::new(stop),
            handle: Some(handle),
        })
    }

    /// A handle that requests the stop from anywhere, without waiting.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Asks the thread to stop and waits for it. Idempotent.
    pub fn stop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.handle.take() {
            // A panic on the I/O thread ends that thread only; nothing to re-raise here.
            let _ = h.join();
        }
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        self.stop();
    }
}

fn lower_priority() {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // SAFETY: plain syscalls on the calling thread with valid arguments; a failure
    // only leaves the defaults in place.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, IO_NICE);
        if cpus > 1 {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0 {
                let last = (0..libc::CPU_SETSIZE as usize)
                    .rev()
                    .find(|c| libc::CPU_ISSET(*c, &set));
                if let Some(last) = last {
                    libc::CPU_CLR(last, &mut set);
                    if (0..last).any(|c| libc::CPU_ISSET(c, &set)) {
                        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                    }
                }
            }
        }
    }
}
