//! A trace recording on a running engine: started with [`LiveTrace::start`], stopped by
//! taking the sampler back from the engine ([`LiveTrace::detach`]) and letting the
//! writer close the file ([`LiveTrace::finish`]). Off the scan thread; the waits are in
//! steps with a timeout each, so that a caller can look for Ctrl-C in between.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::engine::Engine;

use super::config::{TraceConfig, TraceStart};
use super::file::TraceFile;
use super::{new_trace, TraceError, TraceHandle, TraceStats};

/// How long starting a trace waits for the engine to attach the sampler.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);

/// A trace recording on an engine.
pub struct LiveTrace {
    handle: TraceHandle,
    /// The sampler's observer id in the engine; None once the engine handed it back.
    observer: Mutex<Option<u64>>,
    path: PathBuf,
    /// The counters, once the file is closed.
    final_stats: Mutex<Option<TraceStats>>,
}

impl std::fmt::Debug for LiveTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveTrace")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LiveTrace {
    /// Starts recording `engine` into `path`. Everything is checked against the engine
    /// before the file is touched; a trace that fails to start removes the file only if
    /// it created it. Waits (up to [`ATTACH_TIMEOUT`]) for the engine to attach the
    /// sampler, which in real time happens at its next cycle: call it without holding
    /// anything the scan thread needs (from Python, without the GIL).
    pub fn start(
        engine: &mut Engine,
        mut config: TraceConfig,
        path: &Path,
    ) -> Result<LiveTrace, TraceError> {
        let tasks: Vec<String> = engine.tasks().iter().map(|t| t.name.clone()).collect();
        let periods: Vec<u64> = engine.tasks().iter().map(|t| t.period_ns).collect();
        config.check(engine.layout(), &tasks, &periods)?;
        config.start = Some(TraceStart::of(engine));
        let (file, opened) = TraceFile::open(path)?;
        let (sampler, handle) = new_trace(config, Box::new(file), Some(engine.events().clone()))
            .inspect_err(|_| opened.discard())?;
        let id = engine.add_observer(Box::new(sampler));
        if let Err(e) = handle.wait_attached(ATTACH_TIMEOUT) {
            drop(engine.remove_observer(id, ATTACH_TIMEOUT));
            opened.discard();
            return Err(TraceError::Config(crate::ConfigError::new(e)));
        }
        Ok(LiveTrace {
            handle,
            observer: Mutex::new(Some(id)),
            path: path.to_path_buf(),
            final_stats: Mutex::new(None),
        })
    }

    /// The trace's handle (trigger, counters, error).
    pub fn handle(&self) -> &TraceHandle {
        &self.handle
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the sampler back from `engine`, waiting up to `timeout` for the scan to let
    /// go of it; dropping it hands its last rows to the writer. True once it is back (or
    /// already was); false when the scan still holds it (a cycle stuck for long): call
    /// again. Off the scan thread.
    pub fn detach(&self, engine: &mut Engine, timeout: Duration) -> bool {
        let Some(id) = *self.observer.lock().unwrap_or_else(|p| p.into_inner()) else {
            return true;
        };
        let back = match engine.remove_observer(id, timeout) {
            Some(sampler) => {
                drop(sampler);
                true
            }
            // Already gone from the engine (closed, or a concurrent stop): the writer is
            // closing the file.
            None => self.handle.sampler_dropped(),
        };
        if back {
            *self.observer.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
        back
    }

    /// True until the sampler is back from the engine.
    pub fn is_attached(&self) -> bool {
        self.observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// True once the writer has closed the file.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// After [`LiveTrace::detach`]: waits up to `timeout` for the writer to close the
    /// file and returns the final counters (the same ones on later calls). Err when
    /// writing failed, or when the writer is not done within `timeout`.
    pub fn finish(&self, timeout: Duration) -> Result<TraceStats, TraceError> {
        if let Some(s) = *self.final_stats.lock().unwrap_or_else(|p| p.into_inner()) {
            return Ok(s);
        }
        let s = self
            .handle
            .finish(Some(timeout))
            .map_err(|e| TraceError::Io(format!("trace {}: {e}", self.path.display())))?;
        *self.final_stats.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
        Ok(s)
    }
}
