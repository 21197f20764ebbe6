//! The retain file: two slots written in turn, each whole or not at all.
//!
//! Power can fail at any instant, including in the middle of a write. A slot is
//! therefore never written in place: the new contents go to a temporary file, which is
//! fsynced, renamed over the slot (an atomic replacement on POSIX file systems), and the
//! directory is fsynced so the rename itself is durable. The two slots alternate, so
//! that while one is being replaced the other still holds the previous complete
//! snapshot. Each slot carries a sequence number and a CRC-32 of its payload; at start
//! the newest slot whose CRC holds is loaded, and a damaged newer slot is reported, not
//! silently skipped.
//!
//! Slot layout (little-endian): magic `SPLCRET1` (8 bytes), format version (u32),
//! sequence number (u64), payload length (u32), CRC-32 (u32) of the version, sequence
//! number, length and payload, then the payload. The sequence number is under the CRC:
//! a flipped bit there must not make a stale slot look newest.
//! The payload is MessagePack: `[version, signature, [[name, type, kind, bits], ...]]`
//! where `signature` identifies the program that wrote it (a changed program resets
//! retain variables; see [`crate::retain`]), `kind` is 1 for retain and 2 for
//! persistent and `bits` the value's bit pattern ([`crate::Value::to_bits`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// First bytes of a slot file.
pub const MAGIC: &[u8; 8] = b"SPLCRET1";
/// Format version written.
pub const VERSION: u32 = 1;
/// Size of the slot header.
pub const HEADER: usize = 8 + 4 + 8 + 4 + 4;
/// Largest payload accepted when reading (a retain image is at most a few MiB).
pub const MAX_PAYLOAD: usize = 64 << 20;

/// How a value survives (see the module docs of [`crate::retain`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetainKind {
    /// Survives a restart and power loss (warm restart); reset by a cold restart.
    Retain,
    /// Also survives a cold restart and loading a changed program; reset only by an
    /// origin reset.
    Persistent,
}

impl RetainKind {
    fn code(self) -> u8 {
        match self {
            RetainKind::Retain => 1,
            RetainKind::Persistent => 2,
        }
    }

    fn from_code(c: u64) -> Option<RetainKind> {
        match c {
            1 => Some(RetainKind::Retain),
            2 => Some(RetainKind::Persistent),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RetainKind::Retain => "retain",
            RetainKind::Persistent => "persistent",
        }
    }
}

/// One retained variable in a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Variable name (`tank.total`).
    pub name: String,
    /// IEC type name (`DINT`).
    pub ty: String,
    /// Retain or persistent.
    pub kind: RetainKind,
    /// The value's bit pattern.
    pub bits: u64,
}

/// A complete snapshot of the retained variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Sequence number (grows with every write).
    pub seq: u64,
    /// Identifies the program that wrote it.
    pub signature: String,
    /// The variables.
    pub entries: Vec<Entry>,
}

/// What loading found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The newest valid snapshot, if any slot is valid.
    pub snapshot: Option<Snapshot>,
    /// One line per slot that was damaged or unreadable (and skipped).
    pub warnings: Vec<String>,
}

/// The two slot files of one runtime, `<stem>.0` and `<stem>.1` in a directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    stem: String,
    next_seq: u64,
}

fn encode_payload(signature: &str, entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + entries.len() * 32);
    // Writing to a Vec cannot fail.
    let _ = rmp::encode::write_array_len(&mut out, 3);
    let _ = rmp::encode::write_uint(&mut out, u64::from(VERSION));
    let _ = rmp::encode::write_str(&mut out, signature);
    let _ = rmp::encode::write_array_len(&mut out, entries.len() as u32);
    for e in entries {
        let _ = rmp::encode::write_array_len(&mut out, 4);
        let _ = rmp::encode::write_str(&mut out, &e.name);
        let _ = rmp::encode::write_str(&mut out, &e.ty);
        let _ = rmp::encode::write_uint(&mut out, u64::from(e.kind.code()));
        let _ = rmp::encode::write_uint(&mut out, e.bits);
    }
    out
}

fn decode_payload(mut p: &[u8]) -> Result<(String, Vec<Entry>), String> {
    let bad = |what: &str| format!("payload: {what}");
    let n = rmp::decode::read_array_len(&mut p).map_err(|_| bad("not an array"))?;
    if n != 3 {
        return Err(bad("wrong top-level length"));
    }
    let version: u64 = rmp::decode::read_int(&mut p).map_err(|_| bad("no version"))?;
    if version != u64::from(VERSION) {
        return Err(format!("payload version {version} is not supported"));
    }
    let slen = rmp::decode::read_str_len(&mut p).map_err(|_| bad("no signature"))? as usize;
    if slen > p.len() {
        return Err(bad("signature longer than the payload"));
    }
    let signature = String::from_utf8(p[..slen].to_vec()).map_err(|_| bad("signature"))?;
    p = &p[slen..];
    let count = rmp::decode::read_array_len(&mut p).map_err(|_| bad("no entry list"))? as usize;
    // Each entry takes at least 5 bytes: a count claiming more than the bytes left lies.
    if count > p.len() / 5 {
        return Err(bad("entry count larger than the payload"));
    }
    let mut entries = Vec::with_capacity(count);
    let mut buf = vec![0u8; 1024];
    for i in 0..count {
        let what = |f: &str| format!("payload: entry {i}: {f}");
        if rmp::decode::read_array_len(&mut p).map_err(|_| what("not an array"))? != 4 {
            return Err(what("wrong length"));
        }
        let mut read_str = |p: &mut &[u8], f: &str| -> Result<String, String> {
            let len = rmp::decode::read_str_len(p).map_err(|_| what(f))? as usize;
            if len > p.len() || len > buf.len() {
                return Err(what(f));
            }
            buf[..len].copy_from_slice(&p[..len]);
            *p = &p[len..];
            String::from_utf8(buf[..len].to_vec()).map_err(|_| what(f))
        };
        let name = read_str(&mut p, "name")?;
        let ty = read_str(&mut p, "type")?;
        let kind: u64 = rmp::decode::read_int(&mut p).map_err(|_| what("kind"))?;
        let kind = RetainKind::from_code(kind).ok_or_else(|| what("unknown kind"))?;
        let bits: u64 = rmp::decode::read_int(&mut p).map_err(|_| what("value"))?;
        entries.push(Entry {
            name,
            ty,
            kind,
            bits,
        });
    }
    Ok((signature, entries))
}

/// Encodes a whole slot file.
pub fn encode_slot(s: &Snapshot) -> Vec<u8> {
    let payload = encode_payload(&s.signature, &s.entries);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&s.seq.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = slot_crc(&out[8..24], &payload);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn slot_crc(fields: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(fields);
    h.update(payload);
    h.finalize()
}

/// Decodes a slot file, checking everything before trusting it.
pub fn decode_slot(bytes: &[u8]) -> Result<Snapshot, String> {
    if bytes.len() < HEADER {
        return Err(format!("{} bytes, shorter than a slot header", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a softplc retain file (bad magic)".to_string());
    }
    let u32_at =
        |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let version = u32_at(8);
    if version != VERSION {
        return Err(format!("format version {version} is not supported"));
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&bytes[12..20]);
    let seq = u64::from_le_bytes(seq);
    let len = u32_at(20) as usize;
    let crc = u32_at(24);
    if len > MAX_PAYLOAD || HEADER + len != bytes.len() {
        return Err(format!(
            "payload length {len} does not match the file ({} bytes after the header)",
            bytes.len() - HEADER
        ));
    }
    let payload = &bytes[HEADER..];
    if slot_crc(&bytes[8..24], payload) != crc {
        return Err("checksum mismatch (the slot is damaged)".to_string());
    }
    let (signature, entries) = decode_payload(payload)?;
    Ok(Snapshot {
        seq,
        signature,
        entries,
    })
}

impl Store {
    /// The store `<dir>/<stem>.0|1`. Nothing is read or created yet.
    pub fn new(dir: &Path, stem: &str) -> Store {
        Store {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            next_seq: 1,
        }
    }

    /// Path of slot `i` (0 or 1).
    pub fn slot_path(&self, i: u64) -> PathBuf {
        self.dir.join(format!("{}.{}", self.stem, i % 2))
    }

    /// Reads both slots and returns the newest valid one; sets the next sequence
    /// number after the newest seen. Missing slots are no warning (a first start).
    pub fn load(&mut self) -> Loaded {
        let mut found: Vec<Snapshot> = Vec::new();
        let mut warnings = Vec::new();
        for i in 0..2 {
            let path = self.slot_path(i);
            match read_limited(&path) {
                Ok(None) => {}
                Ok(Some(bytes)) => match decode_slot(&bytes) {
                    Ok(s) => found.push(s),
                    Err(e) => warnings.push(format!("{}: {e}; ignored", path.display())),
                },
                Err(e) => warnings.push(format!("{}: cannot read: {e}; ignored", path.display())),
            }
        }
        found.sort_by_key(|s| s.seq);
        let newest = found.pop();
        if let Some(s) = &newest {
            self.next_seq = s.seq + 1;
            if !warnings.is_empty() {
                warnings.push(format!(
                    "retain: loaded the other slot (sequence {})",
                    s.seq
                ));
            }
        }
        Loaded {
            snapshot: newest,
            warnings,
        }
    }

    /// Writes `entries` as the next snapshot, atomically (see the module docs). The
    /// slot replaced is the older one. Returns the sequence number written.
    pub fn save(&mut self, signature: &str, entries: Vec<Entry>) -> io::Result<u64> {
        let seq = self.next_seq;
        let snap = Snapshot {
            seq,
            signature: signature.to_string(),
            entries,
        };
        let bytes = encode_slot(&snap);
        fs::create_dir_all(&self.dir)?;
        let target = self.slot_path(seq);
        let tmp = self.dir.join(format!("{}.{}.tmp", self.stem, seq % 2));
        {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &target)?;
        File::open(&self.dir)?.sync_all()?;
        self.next_seq = seq + 1;
        Ok(seq)
    }

    /// Removes both slots (an origin reset).
    pub fn clear(&mut self) -> io::Result<()> {
        for i in 0..2 {
            match fs::remove_file(self.slot_path(i)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Reads a file of at most `HEADER + MAX_PAYLOAD` bytes; None when it does not exist.
fn read_limited(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    f.take((HEADER + MAX_PAYLOAD + 1) as u64)
        .read_to_end(&mut out)?;
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(v: u64) -> Vec<Entry> {
        vec![
            Entry {
                name: "tank.total".into(),
                ty: "DINT".into(),
                kind: RetainKind::Retain,
                bits: v,
            },
            Entry {
                name: "tank.recipe".into(),
                ty: "INT".into(),
                kind: RetainKind::Persistent,
                bits: 7,
            },
        ]
    }

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "softplc-retain-{}-{}",
            std::process::id(),
            crate::clock::monotonic_ns()
        ));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn slots_alternate_and_the_newest_valid_one_loads() {
        let d = dir();
        let mut s = Store::new(&d, "plc");
        assert_eq!(s.load(), Loaded::default());
        assert_eq!(s.save("prog", entries(1)).unwrap(), 1);
        assert_eq!(s.save("prog", entries(2)).unwrap(), 2);
        assert_eq!(s.save("prog", entries(3)).unwrap(), 3);
        let mut again = Store::new(&d, "plc");
        let l = again.load();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        let snap = l.snapshot.unwrap();
        assert_eq!(snap.seq, 3);
        assert_eq!(snap.entries, entries(3));
        assert_eq!(again.save("prog", entries(4)).unwrap(), 4);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn a_damaged_newest_slot_falls_back_to_the_other_and_says_so() {
        let d = dir();
        let mut s = Store::new(&d, "plc");
        s.save("prog", entries(1)).unwrap();
        s.save("prog", entries(2)).unwrap();
        // Flip one bit of the newest slot's payload.
        let p = s.slot_path(2);
        let mut b = fs::read(&p).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x10;
        fs::write(&p, &b).unwrap();
        let l = Store::new(&d, "plc").load();
        assert_eq!(l.snapshot.unwrap().entries, entries(1));
        assert!(
            l.warnings[0].contains("checksum mismatch"),
            "{:?}",
            l.warnings
        );
        assert!(l.warnings.iter().any(|w| w.contains("other slot")));
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn every_truncation_and_bit_flip_is_detected_never_a_panic() {
        let good = encode_slot(&Snapshot {
            seq: 9,
            signature: "prog".into(),
            entries: entries(42),
        });
        for cut in 0..good.len() {
            assert!(decode_slot(&good[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                assert!(decode_slot(&b).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn both_slots_damaged_start_clean_with_warnings() {
        let d = dir();
        let mut s = Store::new(&d, "plc");
        s.save("prog", entries(1)).unwrap();
        s.save("prog", entries(2)).unwrap();
        fs::write(s.slot_path(0), b"garbage").unwrap();
        fs::write(s.slot_path(1), b"").unwrap();
        let l = Store::new(&d, "plc").load();
        assert!(l.snapshot.is_none());
        assert_eq!(l.warnings.len(), 2);
        fs::remove_dir_all(d).unwrap();
    }
}
