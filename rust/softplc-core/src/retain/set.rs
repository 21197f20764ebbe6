//! The retained variables of a layout: what the scan copies each cycle, how a copy
//! becomes slot entries, and how a loaded slot is applied at start.
//!
//! The scan thread copies raw bytes only: the retained variables' slots are merged into
//! as few byte ranges of the image areas as possible, copied into one buffer at the end
//! of every cycle (a few `memcpy`s: no allocation, lock or syscall). Turning the buffer
//! into named values, and everything about files, happens on the writer thread.

use crate::image::{Image, Layout, Slot, VarId};
use crate::types::{IecType, Value};

use super::store::{Entry, RetainKind, Snapshot};

/// How much survives a start (the restart levels of CODESYS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartLevel {
    /// Retain and persistent variables keep their values.
    Warm,
    /// Retain variables start from their initial values; persistent ones keep theirs.
    Cold,
    /// Every variable starts from its initial value, and the retain file is cleared.
    Origin,
}

impl RestartLevel {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RestartLevel::Warm => "warm",
            RestartLevel::Cold => "cold",
            RestartLevel::Origin => "origin",
        }
    }
}

/// One retained variable.
#[derive(Clone, Debug, PartialEq)]
pub struct RetainedVar {
    /// Its id.
    pub id: VarId,
    /// Its name.
    pub name: String,
    /// Its slot in the image.
    pub slot: Slot,
    /// Retain or persistent.
    pub kind: RetainKind,
    /// Offset of its first byte in the capture buffer.
    pub at: usize,
}

/// Gap between two retained spans that one range still bridges (bytes).
pub const MERGE_GAP: usize = 64;

/// A byte range of one area, copied as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    area: usize,
    start: usize,
    len: usize,
    /// Where the range goes in the capture buffer.
    at: usize,
}

/// The retained variables of a layout and the ranges the scan copies.
#[derive(Clone, Debug, Default)]
pub struct RetainSet {
    vars: Vec<RetainedVar>,
    ranges: Vec<Range>,
    bytes: usize,
}

impl RetainSet {
    /// The retained variables of `layout` (those declared `retain` or `persistent`).
    pub fn new(layout: &Layout) -> RetainSet {
        let mut spans: Vec<(usize, usize, usize, usize)> = layout
            .vars()
            .iter()
            .enumerate()
            .filter(|(_, v)| v.retain.is_some())
            .map(|(i, v)| {
                let start = v.slot.offset as usize;
                (v.slot.area.index(), start, start + byte_len(v.slot.ty), i)
            })
            .collect();
        spans.sort();
        // Merge spans of one area into ranges, bridging gaps up to MERGE_GAP bytes: a
        // `memcpy` of a few extra bytes costs less than starting another one, so
        // retained variables interleaved with plain ones still copy in few ranges.
        let mut ranges: Vec<Range> = Vec::new();
        for &(area, start, end, _) in &spans {
            match ranges.last_mut() {
                Some(r) if r.area == area && start <= r.start + r.len + MERGE_GAP => {
                    r.len = r.len.max(end - r.start);
                }
                _ => ranges.push(Range {
                    area,
                    start,
                    len: end - start,
                    at: 0,
                }),
            }
        }
        let mut at = 0;
        for r in &mut ranges {
            r.at = at;
            at += r.len;
        }
        let vars = spans
            .iter()
            .map(|&(area, start, _, i)| {
                let v = &layout.vars()[i];
                let r = ranges
                    .iter()
                    .find(|r| r.area == area && r.start <= start && start < r.start + r.len)
                    .expect("every span is inside a range");
                RetainedVar {
                    id: VarId(i as u32),
                    name: v.name.clone(),
                    slot: v.slot,
                    kind: v.retain.expect("filtered"),
                    at: r.at + (start - r.start),
                }
            })
            .collect();
        RetainSet {
            vars,
            ranges,
            bytes: at,
        }
    }

    /// True when nothing is retained.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The retained variables.
    pub fn vars(&self) -> &[RetainedVar] {
        &self.vars
    }

    /// Size of the capture buffer.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Copies the retained bytes of `image` into `buf` ([`Self::bytes`] long). Scan
    /// thread: no allocation, lock or syscall.
    #[inline]
    pub fn capture(&self, image: &Image, buf: &mut [u8]) {
        for r in &self.ranges {
            buf[r.at..r.at + r.len].copy_from_slice(&image.areas[r.area][r.start..r.start + r.len]);
        }
    }

    /// The value of `v` in a capture buffer.
    pub fn value_in(&self, v: &RetainedVar, buf: &[u8]) -> Value {
        let mut img = Image {
            areas: [Vec::new(), Vec::new(), Vec::new()],
            quality: Vec::new(),
            stamp_ns: Vec::new(),
        };
        // A one-variable image at offset 0 of the variable's own area.
        let n = byte_len(v.slot.ty);
        img.areas[v.slot.area.index()] = buf[v.at..v.at + n].to_vec();
        let slot = Slot {
            offset: 0,
            ..v.slot
        };
        img.load(slot)
    }

    /// Entries for the retain file from a capture buffer. `forced` says which
    /// variables are forced now: their entry keeps `previous` (the value last saved),
    /// because a force is never persisted. Writer thread: allocates.
    pub fn entries(
        &self,
        buf: &[u8],
        forced: &dyn Fn(VarId) -> bool,
        previous: &dyn Fn(&str) -> Option<u64>,
    ) -> Vec<Entry> {
        self.vars
            .iter()
            .map(|v| {
                let mut bits = self.value_in(v, buf).to_bits();
                if forced(v.id) {
                    if let Some(p) = previous(&v.name) {
                        bits = p;
                    }
                }
                Entry {
                    name: v.name.clone(),
                    ty: v.slot.ty.name().to_string(),
                    kind: v.kind,
                    bits,
                }
            })
            .collect()
    }
}

/// Bytes a value of `ty` takes in an area (a BOOL takes a bit of one byte).
fn byte_len(ty: IecType) -> usize {
    match ty.size() {
        0 => 1,
        n => n,
    }
}

/// What was done with each retained value at start: the report a user reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetainReport {
    /// The restart level.
    pub level: String,
    /// Sequence number of the slot loaded (0: none).
    pub loaded_seq: u64,
    /// Variables restored from the file.
    pub restored: Vec<String>,
    /// Variables that start from their initial value, with why (cold restart, a
    /// changed program, a changed type, not in the file).
    pub reset: Vec<(String, String)>,
    /// Values in the file that no variable takes any more.
    pub dropped: Vec<String>,
    /// Problems with the file (damaged slots, a fallback).
    pub warnings: Vec<String>,
}

/// Applies a loaded snapshot to `image` at start: per variable (name and type). `same_program`
/// is false when the program changed since the file was written: retain variables then
/// start afresh (a download, in CODESYS terms) and persistent ones migrate.
pub fn restore(
    set: &RetainSet,
    image: &mut Image,
    snapshot: Option<&Snapshot>,
    level: RestartLevel,
    same_program: bool,
) -> RetainReport {
    let mut report = RetainReport {
        level: level.name().to_string(),
        ..RetainReport::default()
    };
    let Some(snap) = snapshot else {
        for v in set.vars() {
            report
                .reset
                .push((v.name.clone(), "no retained value yet".to_string()));
        }
        return report;
    };
    report.loaded_seq = snap.seq;
    for v in set.vars() {
        let why = match (level, v.kind, same_program) {
            (RestartLevel::Origin, _, _) => Some("origin reset"),
            (RestartLevel::Cold, RetainKind::Retain, _) => Some("cold restart"),
            (_, RetainKind::Retain, false) => Some("the program changed (retain is kept only by the same program; persistent survives changes)"),
            _ => None,
        };
        if let Some(why) = why {
            report.reset.push((v.name.clone(), why.to_string()));
            continue;
        }
        match snap.entries.iter().find(|e| e.name == v.name) {
            None => report
                .reset
                .push((v.name.clone(), "not in the retain file".to_string())),
            Some(e) if e.ty != v.slot.ty.name() => report.reset.push((
                v.name.clone(),
                format!("its type changed from {} to {}", e.ty, v.slot.ty.name()),
            )),
            Some(e) => {
                image.store(v.slot, Value::from_bits(v.slot.ty, e.bits));
                report.restored.push(v.name.clone());
            }
        }
    }
    for e in &snap.entries {
        if !set.vars().iter().any(|v| v.name == e.name) {
            report.dropped.push(e.name.clone());
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Area;
    use crate::image::{LayoutBuilder, VarDecl};

    fn layout(decls: &[(&str, IecType, Option<RetainKind>, Option<&str>)]) -> Layout {
        let mut b = LayoutBuilder::new();
        for (n, t, k, a) in decls {
            let mut d = VarDecl::new(n, Area::Memory, *t, *a);
            d.retain = *k;
            b.declare(d).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn adjacent_retained_slots_merge_into_one_range_and_others_stay_apart() {
        let r = Some(RetainKind::Retain);
        let l = layout(&[
            ("a", IecType::Dint, r, Some("%MD0")),
            ("b", IecType::Dint, r, Some("%MD1")),
            ("x", IecType::Dint, None, Some("%MD2")),
            ("c", IecType::Int, r, Some("%MW8")),
            ("f", IecType::Bool, r, Some("%MX20.3")),
        ]);
        let set = RetainSet::new(&l);
        assert_eq!(set.vars().len(), 4);
        // a, b (adjacent), x's bytes bridged up to c, then f 10 bytes further: one range.
        assert_eq!(set.ranges.len(), 1, "{:?}", set.ranges);
        assert_eq!(set.bytes(), 21);
        let far = layout(&[
            ("a", IecType::Dint, r, Some("%MD0")),
            ("z", IecType::Dint, r, Some("%MD100")),
        ]);
        let set = RetainSet::new(&far);
        assert_eq!(set.ranges.len(), 2, "a gap past MERGE_GAP stays a gap");
        assert_eq!(set.bytes(), 8);
    }

    #[test]
    fn a_capture_reads_back_every_retained_value() {
        let r = Some(RetainKind::Persistent);
        let l = layout(&[
            ("a", IecType::Dint, r, None),
            ("f", IecType::Bool, r, Some("%MX3.5")),
            ("g", IecType::Bool, None, Some("%MX3.6")),
            ("t", IecType::Time, r, None),
        ]);
        let set = RetainSet::new(&l);
        let mut img = Image::new(&l);
        let slot = |n: &str| l.var(l.find(n).unwrap()).slot;
        img.store(slot("a"), Value::Int(IecType::Dint, -42));
        img.store(slot("f"), Value::Bool(true));
        img.store(slot("g"), Value::Bool(true));
        img.store(slot("t"), Value::Time(1_500_000_000));
        let mut buf = vec![0u8; set.bytes()];
        set.capture(&img, &mut buf);
        let e = set.entries(&buf, &|_| false, &|_| None);
        let by: std::collections::HashMap<_, _> = e.iter().map(|e| (e.name.as_str(), e)).collect();
        assert_eq!(by.len(), 3);
        assert_eq!(by["a"].bits, Value::Int(IecType::Dint, -42).to_bits());
        assert_eq!(by["f"].bits, 1);
        assert_eq!(by["t"].bits, 1_500_000_000);
        // Restored into a fresh image, only the retained bit of the shared byte is set.
        let snap = Snapshot {
            seq: 1,
            signature: "s".into(),
            entries: e,
        };
        let mut fresh = Image::new(&l);
        let rep = restore(&set, &mut fresh, Some(&snap), RestartLevel::Warm, true);
        assert_eq!(rep.restored.len(), 3);
        assert_eq!(fresh.load(slot("f")), Value::Bool(true));
        assert_eq!(fresh.load(slot("g")), Value::Bool(false));
        assert_eq!(fresh.load(slot("a")), Value::Int(IecType::Dint, -42));
    }

    #[test]
    fn a_forced_variable_keeps_the_value_saved_before_the_force() {
        let l = layout(&[("a", IecType::Dint, Some(RetainKind::Retain), None)]);
        let set = RetainSet::new(&l);
        let mut img = Image::new(&l);
        img.store(l.var(VarId(0)).slot, Value::Int(IecType::Dint, 99));
        let mut buf = vec![0u8; set.bytes()];
        set.capture(&img, &mut buf);
        let e = set.entries(&buf, &|id| id == VarId(0), &|_| Some(7));
        assert_eq!(e[0].bits, 7);
    }
}
