//! Tracing: sampling chosen variables and the cycle timing in the scan, and writing them
//! to a trace file (format in `docs/trace-format.md`).
//!
//! [`new_trace`] gives a [`TraceSampler`], a [`crate::CycleObserver`] to add to an engine,
//! and a [`TraceHandle`] that stays with the caller. When the engine attaches the
//! sampler (off the scan thread) it resolves the signals, allocates its buffers and
//! starts a writer thread. On the scan thread the sampler only copies bytes from the
//! image into a pre-allocated buffer and hands full buffers over with one atomic store;
//! when the writer has no free buffer to give back, whole blocks are dropped and counted
//! and the gap is marked in the file. Dropping the sampler (after the engine gives it
//! back) hands over the last partial block and lets the writer close the file; then
//! [`TraceHandle::finish`] joins the writer.
//!
//! ```
//! use softplc_core::trace::{new_trace, TraceConfig};
//! use softplc_core::{
//!     Area, CycleInfo, CycleObserver, IecType, Image, LayoutBuilder, PlcState, TaskId, VarDecl,
//! };
//!
//! let mut b = LayoutBuilder::new();
//! b.declare(VarDecl::new("level", Area::Input, IecType::Real, None)).unwrap();
//! let layout = b.build().unwrap();
//! let image = Image::new(&layout);
//! let out = std::env::temp_dir().join("softplc-doc-example.trace");
//! let file = std::fs::File::create(&out).unwrap();
//! let (mut sampler, handle) = new_trace(TraceConfig::default(), Box::new(file), None).unwrap();
//! sampler.attach(&layout, &["main".to_string()], &[1_000_000]);
//! for cycle in 0..10 {
//!     let t = cycle * 1_000_000;
//!     let info = CycleInfo { task: TaskId::FIRST, cycle, scheduled_ns: t, start_ns: t, exec_ns: 1_000,
//!                            overrun: false, state: PlcState::Run };
//!     sampler.on_cycle(&image, &info);
//! }
//! drop(sampler);
//! let stats = handle.finish(None).unwrap();
//! assert_eq!(stats.rows_written, 10);
//! # std::fs::remove_file(out).ok();
//! ```

mod config;
mod file;
mod format;
mod glob;
mod live;
mod offline;
mod options;
mod pool;
mod sampler;
mod signals;
mod writer;

use std::fs::File;
use std::io::{self, Seek, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use config::{
    TraceConfig, TraceMode, TraceStart, Trigger, DEFAULT_MAX_BUFFER_BYTES, MAX_BUFFER_BLOCKS,
    MAX_FRAME_BYTES,
};
pub use file::TraceFile;
pub use format::{END_FRAME_BYTES, FRAME_HEADER, MAGIC, VERSION};
pub use glob::{glob_match, is_glob};
pub use live::{LiveTrace, ATTACH_TIMEOUT};
pub use offline::OfflineRecording;
pub use options::TraceOptions;
pub use sampler::TraceSampler;
pub use signals::{dtype, timing_names, RowLayout, Signal, SignalKind};

use crate::event::EventSink;
use crate::image::{ConfigError, Layout};

/// Why a trace could not be started, written or read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceError {
    /// The settings do not fit the engine or the layout (an unknown signal, a trigger
    /// on a variable of the wrong type, buffers too large, ...).
    Config(ConfigError),
    /// The file cannot be created or written, or the writer failed.
    Io(String),
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceError::Config(e) => write!(f, "{e}"),
            TraceError::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TraceError {}

impl From<ConfigError> for TraceError {
    fn from(e: ConfigError) -> TraceError {
        TraceError::Config(e)
    }
}

/// Where a trace's bytes go. A file is emptied when the writer starts and syncs its data
/// to the disk when the trace closes.
pub trait TraceSink: Write + Send {
    /// Prepares the sink before the first byte. Called once, by the writer thread, only
    /// once the trace has started (so a trace that fails to start leaves it untouched).
    fn begin(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Makes what was written durable. Called once, when the trace closes.
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A regular file opened without truncation is emptied here, when the trace starts; a
/// pipe, socket or device is written as it is.
fn begin_file(f: &mut File) -> io::Result<()> {
    if f.metadata()?.file_type().is_file() {
        f.set_len(0)?;
        f.rewind()?;
    }
    Ok(())
}

/// `sync_data`, except that a pipe, socket or device that cannot be synced (EINVAL,
/// ENOTSUP) is not an error: there is nothing on a disk to make durable.
fn sync_file(f: &File) -> io::Result<()> {
    match f.sync_data() {
        Ok(()) => Ok(()),
        Err(e) => {
            // ENOTSUP and EOPNOTSUPP are the same number on Linux, not everywhere.
            let code = e.raw_os_error();
            let unsyncable = code == Some(libc::EINVAL)
                || code == Some(libc::ENOTSUP)
                || code == Some(libc::EOPNOTSUPP);
            let regular = f
                .metadata()
                .map(|m| m.file_type().is_file())
                .unwrap_or(true);
            if unsyncable && !regular {
                Ok(())
            } else {
                Err(e)
            }
        }
    }
}

impl TraceSink for File {
    fn begin(&mut self) -> io::Result<()> {
        begin_file(self)
    }

    fn sync(&mut self) -> io::Result<()> {
        sync_file(self)
    }
}

impl TraceSink for Vec<u8> {}

impl TraceSink for io::BufWriter<File> {
    fn begin(&mut self) -> io::Result<()> {
        self.flush()?;
        begin_file(self.get_mut())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        sync_file(self.get_ref())
    }
}

/// Counters of a trace. `Copy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceStats {
    /// Rows the sampler took (including rows later dropped).
    pub rows_sampled: u64,
    /// Rows written to the file.
    pub rows_written: u64,
    /// Block frames written.
    pub blocks_written: u64,
    /// Blocks dropped because the writer had no buffer free.
    pub dropped_blocks: u64,
    /// Rows in dropped blocks.
    pub dropped_rows: u64,
    /// Triggers that started a capture.
    pub triggers: u64,
    /// Captures written.
    pub captures_written: u64,
    /// Events written.
    pub events_written: u64,
    /// Engine events lost before the writer read them (the engine's queue was full, or
    /// its log overwrote them).
    pub events_lost: u64,
    /// Captures written that the trace stopped before all post-trigger rows were taken.
    pub incomplete_captures: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

#[derive(Default)]
struct Status {
    attached: bool,
    error: Option<String>,
}

/// State shared by the sampler, the writer and the handle. Which side writes what:
/// the sampler writes `rows_sampled`, `dropped_*`, `triggers`, `sampler_gone` and
/// `tail_gap`; the writer writes the `*_written` counters, `events_lost`,
/// `incomplete_captures`, `writer_done` and sets
/// `flush_req`, which the sampler clears; the handle sets `force`, which the sampler
/// clears; `status` is written off the scan thread only.
pub(crate) struct Shared {
    status: Mutex<Status>,
    status_cv: Condvar,
    pub flush_req: AtomicBool,
    pub force: AtomicBool,
    pub sampler_gone: AtomicBool,
    pub writer_done: AtomicBool,
    pub rows_sampled: AtomicU64,
    pub dropped_rows: AtomicU64,
    pub dropped_blocks: AtomicU64,
    pub triggers: AtomicU64,
    pub rows_written: AtomicU64,
    pub blocks_written: AtomicU64,
    pub bytes_written: AtomicU64,
    pub events_written: AtomicU64,
    pub events_lost: AtomicU64,
    pub incomplete_captures: AtomicU64,
    pub captures_written: AtomicU64,
    pub tail_gap: Mutex<Option<pool::Gap>>,
    pub writer: Mutex<Option<JoinHandle<()>>>,
}

impl Shared {
    fn new() -> Shared {
        Shared {
            status: Mutex::new(Status::default()),
            status_cv: Condvar::new(),
            flush_req: AtomicBool::new(false),
            force: AtomicBool::new(false),
            sampler_gone: AtomicBool::new(false),
            writer_done: AtomicBool::new(false),
            rows_sampled: AtomicU64::new(0),
            dropped_rows: AtomicU64::new(0),
            dropped_blocks: AtomicU64::new(0),
            triggers: AtomicU64::new(0),
            rows_written: AtomicU64::new(0),
            blocks_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            events_written: AtomicU64::new(0),
            events_lost: AtomicU64::new(0),
            incomplete_captures: AtomicU64::new(0),
            captures_written: AtomicU64::new(0),
            tail_gap: Mutex::new(None),
            writer: Mutex::new(None),
        }
    }

    /// Records the attach result (off the scan thread).
    pub fn set_attached(&self, error: Option<String>) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.attached = true;
        if error.is_some() && s.error.is_none() {
            s.error = error;
        }
        self.status_cv.notify_all();
    }

    /// Records an error (off the scan thread); the first one is kept.
    pub fn set_error(&self, error: String) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if s.error.is_none() {
            s.error = Some(error);
        }
        self.status_cv.notify_all();
    }

    fn error(&self) -> Option<String> {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error
            .clone()
    }
}

/// The caller's side of a trace: status, forced trigger, and closing.
#[derive(Clone)]
pub struct TraceHandle {
    shared: Arc<Shared>,
}

impl TraceHandle {
    /// Waits until an engine has attached the sampler. Err holds the reason the trace
    /// could not start (an unknown signal, ...). Off the scan thread.
    pub fn wait_attached(&self, timeout: Duration) -> Result<(), String> {
        let s = self.shared.status.lock().unwrap_or_else(|p| p.into_inner());
        let (s, _) = self
            .shared
            .status_cv
            .wait_timeout_while(s, timeout, |s| !s.attached && s.error.is_none())
            .unwrap_or_else(|p| p.into_inner());
        match (&s.error, s.attached) {
            (Some(e), _) => Err(e.clone()),
            (None, true) => Ok(()),
            (None, false) => Err("the trace was not attached to an engine in time".to_string()),
        }
    }

    /// True once the sampler has been attached.
    pub fn is_attached(&self) -> bool {
        self.shared
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .attached
    }

    /// Forces a trigger (triggered mode) at the next cycle of the trace task.
    pub fn trigger(&self) {
        self.shared.force.store(true, Ordering::Release);
    }

    /// The counters so far.
    pub fn stats(&self) -> TraceStats {
        let s = &self.shared;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TraceStats {
            rows_sampled: g(&s.rows_sampled),
            rows_written: g(&s.rows_written),
            blocks_written: g(&s.blocks_written),
            dropped_blocks: g(&s.dropped_blocks),
            dropped_rows: g(&s.dropped_rows),
            triggers: g(&s.triggers),
            captures_written: g(&s.captures_written),
            events_written: g(&s.events_written),
            events_lost: g(&s.events_lost),
            incomplete_captures: g(&s.incomplete_captures),
            bytes_written: g(&s.bytes_written),
        }
    }

    /// The first error of the trace (attach, or writing the file), if any.
    pub fn error(&self) -> Option<String> {
        self.shared.error()
    }

    /// True once the sampler has been dropped (the engine no longer holds it, so the
    /// writer is closing or has closed the file).
    pub fn sampler_dropped(&self) -> bool {
        self.shared.sampler_gone.load(Ordering::Acquire)
    }

    /// True once the writer has closed the file (or the trace never started).
    pub fn is_finished(&self) -> bool {
        if self.shared.writer_done.load(Ordering::Acquire) {
            return true;
        }
        // A sampler that is gone without ever starting a writer (never attached, or the
        // attach failed) leaves nothing to wait for.
        self.shared.sampler_gone.load(Ordering::Acquire)
            && self
                .shared
                .writer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none()
    }

    /// Waits until `n` captures are written (triggered mode). False on timeout.
    pub fn wait_captures(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.shared.captures_written.load(Ordering::Acquire) >= n {
                return true;
            }
            if Instant::now() >= deadline || self.is_finished() {
                return self.shared.captures_written.load(Ordering::Acquire) >= n;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for the writer to close the file, which it does once the sampler has been
    /// dropped (remove it from the engine and drop it first). `None` waits without limit.
    /// Returns the final counters, or the trace's error.
    pub fn finish(&self, timeout: Option<Duration>) -> Result<TraceStats, String> {
        let deadline = timeout.map(|t| Instant::now() + t);
        while !self.is_finished() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(if self.shared.sampler_gone.load(Ordering::Acquire) {
                    "the trace writer did not finish in time".to_string()
                } else {
                    "the trace sampler is still attached to an engine".to_string()
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let join = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(j) = join {
            if j.join().is_err() {
                self.shared
                    .set_error("the trace writer thread panicked".to_string());
            }
        }
        match self.shared.error() {
            Some(e) => Err(e),
            None => Ok(self.stats()),
        }
    }
}

/// Creates a trace writing to `sink`. `events` (the engine's event log) puts engine
/// events into the file. Off the scan thread; checks the layout-independent settings.
pub fn new_trace(
    config: TraceConfig,
    sink: Box<dyn TraceSink>,
    events: Option<EventSink>,
) -> Result<(TraceSampler, TraceHandle), ConfigError> {
    config.validate()?;
    if let TraceMode::Triggered { trigger, .. } = &config.mode {
        // The variable itself is checked at attach; here only its text.
        if let Some(v) = trigger.variable() {
            if v.is_empty() {
                return Err(ConfigError::new("trigger without a variable"));
            }
        }
    }
    let shared = Arc::new(Shared::new());
    let sampler = TraceSampler::new(config, sink, events, shared.clone());
    Ok((sampler, TraceHandle { shared }))
}

impl TraceConfig {
    /// Everything attaching would check, without starting anything: the signals and the
    /// trace task exist, the trigger variable exists and suits the condition, and the
    /// buffers fit `max_buffer_bytes` and the format's frame size. Call it before
    /// creating the file, so that a typo never touches an existing one. Off the scan
    /// thread (allocates).
    pub fn check(
        &self,
        layout: &Layout,
        task_names: &[String],
        periods_ns: &[u64],
    ) -> Result<(), ConfigError> {
        self.validate()?;
        sampler::plan(self, layout, task_names, periods_ns).map(|_| ())
    }
}

#[cfg(test)]
mod tests;
