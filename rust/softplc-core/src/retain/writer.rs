//! The scan's side of retain (a copy into a triple buffer at the end of each cycle) and
//! the background writer that stores the newest copy at a cadence.
//!
//! The scan never waits: it fills the triple buffer's input and publishes it (one
//! atomic swap). The writer thread takes the newest published copy every `cadence`,
//! turns it into named values and, when they changed, writes the next slot
//! ([`Store::save`]: temporary file, fsync, rename, directory fsync). On a clean stop
//! the engine hands the final image over and the writer saves it before it ends, so a
//! clean stop loses nothing; a power loss loses at most one cadence.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use triple_buffer::{triple_buffer, Input, Output};

use crate::image::{Image, VarId};
use crate::types::Value;

use super::set::{RestartLevel, RetainReport, RetainSet};
use super::store::{Entry, Store};

/// Where and how often retained values are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetainConfig {
    /// Directory of the slot files (created if missing).
    pub dir: PathBuf,
    /// File stem: the slots are `<stem>.0` and `<stem>.1`.
    pub stem: String,
    /// How often the writer stores the newest values (ns; > 0).
    pub cadence_ns: u64,
    /// What survives this start.
    pub level: RestartLevel,
    /// Identifies the program (a changed program resets retain variables).
    pub signature: String,
}

/// What the writer has done, readable from any thread.
#[derive(Debug, Default)]
pub struct RetainStatus {
    /// Slots written since start.
    pub saves: AtomicU64,
    /// Sequence number of the last slot written (or loaded).
    pub last_seq: AtomicU64,
    /// Unix time of the last write (ns), 0 before the first.
    pub last_save_unix_ns: AtomicU64,
    /// The last write error, if the last write failed.
    pub error: Mutex<Option<String>>,
    /// What the start did with the loaded values.
    pub report: Mutex<RetainReport>,
    /// The slot files, `<dir>/<stem>.0|1`.
    pub files: Mutex<Vec<PathBuf>>,
    /// The signature written into the slots: the program's; an online change replaces
    /// it, so that a restart of the changed program counts as the same program.
    pub signature: Mutex<String>,
}

/// The scan thread's end of retain: copies the retained bytes of the image once a
/// cycle.
pub struct RetainCapture {
    set: Arc<RetainSet>,
    input: Input<Vec<u8>>,
}

impl RetainCapture {
    /// Copies the retained bytes of `image` and publishes them. Scan thread: a few
    /// `memcpy`s and one atomic swap; no allocation, lock or syscall.
    #[inline]
    pub fn capture(&mut self, image: &Image) {
        self.set.capture(image, self.input.input_buffer_mut());
        self.input.publish();
    }
}

/// The pair of ends for a retain set: the scan's capture and the writer's source.
pub fn channel(set: Arc<RetainSet>) -> (RetainCapture, Output<Vec<u8>>) {
    let (input, output) = triple_buffer(&vec![0u8; set.bytes()]);
    (RetainCapture { set, input }, output)
}

/// The running writer thread.
pub struct RetainWriter {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
    status: Arc<RetainStatus>,
}

/// Everything the writer thread owns.
struct Job {
    set: Arc<RetainSet>,
    output: Output<Vec<u8>>,
    store: Store,
    cadence: Duration,
    forced: Arc<Mutex<BTreeMap<VarId, Value>>>,
    status: Arc<RetainStatus>,
    last: HashMap<String, u64>,
    saved: Option<Vec<Entry>>,
    /// The scan has published at least one capture. Before that the buffer holds
    /// zeros, not the image: saving it would overwrite the snapshot just restored with
    /// zeros (a writer whose first cadence comes before the first cycle ends).
    captured: bool,
}

impl Job {
    /// Saves the newest copy if it changed. Writer thread: allocates, does file I/O.
    fn save_newest(&mut self) {
        self.captured |= self.output.update();
        if !self.captured {
            return;
        }
        let buf = self.output.output_buffer();
        let forced: Vec<VarId> = self
            .forced
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        let last = &self.last;
        let entries = self.set.entries(buf, &|id| forced.contains(&id), &|name| {
            last.get(name).copied()
        });
        if self.saved.as_ref() == Some(&entries) {
            return;
        }
        let signature = self
            .status
            .signature
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match self.store.save(&signature, entries.clone()) {
            Ok(seq) => {
                let st = &self.status;
                st.saves.fetch_add(1, Ordering::Relaxed);
                st.last_seq.store(seq, Ordering::Relaxed);
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                st.last_save_unix_ns.store(now, Ordering::Relaxed);
                *st.error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                for e in &entries {
                    self.last.insert(e.name.clone(), e.bits);
                }
                self.saved = Some(entries);
            }
            Err(e) => {
                *self.status.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!(
                    "retain: cannot write {}: {e}",
                    self.store.slot_path(0).display()
                ));
            }
        }
    }
}

impl RetainWriter {
    /// Starts the writer. `loaded` is the snapshot loaded at start: its values are the
    /// fallback for variables forced before their first save, and a writer whose values
    /// never changed from it writes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn spawn(
        set: Arc<RetainSet>,
        output: Output<Vec<u8>>,
        store: Store,
        cfg: &RetainConfig,
        forced: Arc<Mutex<BTreeMap<VarId, Value>>>,
        status: Arc<RetainStatus>,
        loaded: Option<Vec<Entry>>,
    ) -> std::io::Result<RetainWriter> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        *status.signature.lock().unwrap_or_else(|p| p.into_inner()) = cfg.signature.clone();
        let mut job = Job {
            set,
            output,
            store,
            cadence: Duration::from_nanos(cfg.cadence_ns.max(1)),
            forced,
            status: status.clone(),
            last: loaded
                .iter()
                .flatten()
                .map(|e| (e.name.clone(), e.bits))
                .collect(),
            saved: loaded,
            captured: false,
        };
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("softplc-retain".into())
            .spawn(move || {
                let (lock, cv) = &*s;
                loop {
                    let mut quit = lock.lock().unwrap_or_else(|p| p.into_inner());
                    if !*quit {
                        quit = cv
                            .wait_timeout(quit, job.cadence)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    let last = *quit;
                    drop(quit);
                    // A stop requested before the first cadence still saves: the
                    // engine captured the final values just before asking.
                    job.save_newest();
                    if last {
                        break;
                    }
                }
            })?;
        Ok(RetainWriter {
            stop,
            handle: Some(handle),
            status,
        })
    }

    /// The writer's status.
    pub fn status(&self) -> &Arc<RetainStatus> {
        &self.status
    }

    /// Saves the newest copy one last time and ends the thread (a clean stop).
    pub fn stop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for RetainWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Area;
    use crate::image::{LayoutBuilder, VarDecl};
    use crate::retain::RetainKind;
    use crate::types::IecType;

    #[test]
    fn a_writer_saves_nothing_before_the_first_capture() {
        let mut b = LayoutBuilder::new();
        let mut d = VarDecl::new("n", Area::Memory, IecType::Dint, None);
        d.retain = Some(RetainKind::Retain);
        let id = b.declare(d).unwrap();
        let l = b.build().unwrap();
        let set = Arc::new(RetainSet::new(&l));
        let dir = std::env::temp_dir().join(format!("softplc-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // A snapshot saved by an earlier run holds 42.
        let mut store = Store::new(&dir, "w");
        let mut img = Image::new(&l);
        img.store(l.var(id).slot, Value::Int(IecType::Dint, 42));
        let mut buf = vec![0u8; set.bytes()];
        set.capture(&img, &mut buf);
        let loaded = set.entries(&buf, &|_| false, &|_| None);
        store.save("sig", loaded.clone()).unwrap();
        let mut store = Store::new(&dir, "w");
        assert!(store.load().snapshot.is_some());
        let cfg = RetainConfig {
            dir: dir.clone(),
            stem: "w".into(),
            cadence_ns: 1_000_000,
            level: RestartLevel::Warm,
            signature: "sig".into(),
        };
        let (mut capture, output) = channel(set.clone());
        let status = Arc::new(RetainStatus::default());
        let forced = Arc::new(Mutex::new(BTreeMap::new()));
        let mut w = RetainWriter::spawn(
            set,
            output,
            store,
            &cfg,
            forced,
            status.clone(),
            Some(loaded),
        )
        .unwrap();
        // Many cadences pass before the scan's first cycle ends: the zeros of the empty
        // buffer must not replace the restored 42.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(status.saves.load(Ordering::Relaxed), 0);
        let newest = |dir: &PathBuf| Store::new(dir, "w").load().snapshot.unwrap().entries[0].bits;
        assert_eq!(newest(&dir), 42);
        // Once the scan captures, the writer saves.
        img.store(l.var(id).slot, Value::Int(IecType::Dint, 43));
        capture.capture(&img);
        w.stop();
        assert_eq!(newest(&dir), 43);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
