//! Blocking calls from Python: release the GIL while waiting, and turn Ctrl-C into
//! KeyboardInterrupt. Every call that can wait goes through here.
//!
//! The GIL must be released: the scan thread takes it to run Python programs and
//! plants, so waiting for the scan while holding it could wait forever. Python handles
//! signals only in the main thread, when it runs bytecode or checks for them; a native
//! call that waits in one piece would delay Ctrl-C until it is over. So long waits are
//! cut into steps of at most [`STEP`], and signals are checked between steps
//! (`check_signals` raises what the signal handler raised, KeyboardInterrupt for
//! Ctrl-C). A step that is interrupted this way stops the wait: what it waited for may
//! still complete on its own (the engine keeps running; a trace keeps recording).
//!
//! The bounds are `Send` (what pyo3's `Ungil` means without its nightly feature): what
//! runs without the GIL must not hold Python objects.

use std::time::{Duration, Instant};

use pyo3::prelude::*;

/// Longest a blocking call runs without looking for Ctrl-C.
pub const STEP: Duration = Duration::from_millis(50);

/// Runs `f` once without the GIL; a Ctrl-C that came meanwhile raises once it
/// returns (for calls bounded in time, like `close`, which must not be cut short).
pub fn blocking<T, F>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    let r = py.detach(f);
    py.check_signals()?;
    Ok(r)
}

/// Calls `step` without the GIL until it returns `Some`, looking for Ctrl-C between
/// calls. Each call should return within about [`STEP`].
pub fn until<T, F>(py: Python<'_>, mut step: F) -> PyResult<T>
where
    F: Send + FnMut() -> Option<T>,
    T: Send,
{
    loop {
        if let Some(v) = py.detach(&mut step) {
            return Ok(v);
        }
        py.check_signals()?;
    }
}

/// Sleeps `d` without the GIL, in steps, looking for Ctrl-C between them.
pub fn sleep(py: Python<'_>, d: Duration) -> PyResult<()> {
    let end = Instant::now() + d;
    until(py, || {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Some(());
        }
        std::thread::sleep(left.min(STEP));
        None
    })
}

/// Waits without the GIL until `done()` holds (true) or `timeout` passes (false),
/// looking at `done` every millisecond and for Ctrl-C every [`STEP`].
pub fn for_condition<F>(py: Python<'_>, timeout: Duration, done: F) -> PyResult<bool>
where
    F: Sync + Fn() -> bool,
{
    let end = Instant::now().checked_add(timeout);
    until(py, || {
        let step_end = Instant::now() + STEP;
        loop {
            if done() {
                return Some(true);
            }
            let now = Instant::now();
            if end.is_some_and(|e| now >= e) {
                return Some(false);
            }
            if now >= step_end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}
