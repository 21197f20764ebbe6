//! The trace file: opened for writing without being emptied, so that a trace that
//! fails to start leaves an existing file as it was (the writer empties it once the
//! trace has started), and removed again after a failed start only if this trace
//! created it.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::TraceError;

/// A trace file being started: its path and whether opening it created it.
#[derive(Debug)]
pub struct TraceFile {
    path: PathBuf,
    created: bool,
}

impl TraceFile {
    /// Opens `path` for writing, creating it if needed, without emptying it. Opening a
    /// FIFO waits for a reader: call it off the scan thread and, from Python, without
    /// the GIL.
    pub fn open(path: &Path) -> Result<(File, TraceFile), TraceError> {
        let opened = match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(f) => Ok((f, true)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => OpenOptions::new()
                .write(true)
                .open(path)
                .map(|f| (f, false)),
            Err(e) => Err(e),
        };
        let (file, created) = opened.map_err(|e| {
            TraceError::Io(format!("cannot create trace file {}: {e}", path.display()))
        })?;
        Ok((
            file,
            TraceFile {
                path: path.to_path_buf(),
                created,
            },
        ))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The trace failed to start: removes the file if this trace created it.
    pub fn discard(&self) {
        if self.created {
            std::fs::remove_file(&self.path).ok();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_start_removes_only_a_file_it_created() {
        let dir = std::env::temp_dir().join(format!("softplc-tracefile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let new = dir.join("new.trace");
        let (_, f) = TraceFile::open(&new).unwrap();
        f.discard();
        assert!(!new.exists());
        let old = dir.join("old.trace");
        std::fs::write(&old, b"keep").unwrap();
        let (_, f) = TraceFile::open(&old).unwrap();
        f.discard();
        assert_eq!(std::fs::read(&old).unwrap(), b"keep");
        let e = TraceFile::open(&dir.join("no/such/dir.trace")).unwrap_err();
        assert!(e.to_string().contains("cannot create trace file"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
