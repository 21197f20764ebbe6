//! Turning mappings (an address, a type, a count) into the fewest request frames.
//!
//! Two kinds of request can carry a mapping:
//! - a continuous transfer: one byte range of one device, up to 1,400 bytes (512 on
//!   XGB CPUs), on devices that have them (P, M, L, K, F, T, C, D, N on XGK; M on IEC
//!   CPUs). Nearby ranges of a device are merged for reads when the bytes between them
//!   are at most `max_gap` and the whole still fits one request, as the Modbus planner
//!   ([`crate::plan`]) bridges gaps; writes never bridge (that would write bytes nobody
//!   mapped), and bits are never written this way (it would rewrite the other bits of
//!   their byte).
//! - an individual transfer: up to 16 names of one data type, any devices; every value
//!   is a block of its own.
//!
//! A mapping always travels in one request, so its values are read together; one that
//! fits neither kind is refused with the reason. The planner first merges continuous
//! ranges, then moves ranges to individual requests while that does not add frames
//! (smallest first), then moves back those whose return costs nothing (a tie keeps the
//! compact continuous form); individual blocks are packed by best-fit decreasing.
//!
//! Each request owns a region of one flat buffer: a continuous request its bytes, an
//! individual request one slot of the type's size per block. Each mapping learns its
//! [`Place`] there, so that a driver scatters values by offset.

use std::collections::HashMap;
use std::fmt;

use super::codec::{AnswerError, DataType, Name, Request, Response, WriteItem, MAX_BLOCKS};
use super::device::{byte_name, Address, Device, Location, NameErrorKind, Naming};

/// Values of one type at one address: what a driver maps to a program variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The first value.
    pub address: Address,
    /// Number of consecutive values.
    pub count: u16,
}

/// Which way a plan moves values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the PLC.
    Read,
    /// To the PLC.
    Write,
}

/// Why a mapping cannot travel in a continuous request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoContinuous {
    /// The device has no continuous transfers on this CPU.
    Device(Device),
    /// T and C contacts are not bytes of the device's memory.
    Contacts,
    /// Bits are written individually.
    WriteBits,
    /// Hierarchical names only travel individually.
    Path,
}

impl fmt::Display for NoContinuous {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoContinuous::Device(d) => {
                write!(f, "device {d} has no continuous transfers on this CPU")
            }
            NoContinuous::Contacts => f.write_str("timer and counter contacts travel individually"),
            NoContinuous::WriteBits => f.write_str("bits are written individually"),
            NoContinuous::Path => f.write_str("hierarchical names travel individually"),
        }
    }
}

/// Why a mapping cannot be planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanErrorKind {
    /// A mapping of no values.
    ZeroCount,
    /// More bytes than one continuous request carries, and too many values (or none
    /// with an individual name) for an individual request.
    TooManyBytes {
        /// Bytes the mapping covers.
        bytes: u64,
        /// Most bytes of one continuous request on this CPU.
        max: usize,
    },
    /// More values than the 16 blocks of an individual request, and no continuous
    /// transfer for them.
    TooManyBlocks {
        /// Values.
        count: u16,
        /// Why no continuous transfer.
        why: NoContinuous,
    },
    /// A value without an individual name (unaligned, too long) and no continuous
    /// transfer for it.
    Name(NameErrorKind),
    /// A hierarchical name maps one value.
    PathCount,
    /// The values run past the end of any address.
    Overflow,
    /// Two written mappings share memory.
    Overlap {
        /// The index of the other mapping.
        other: usize,
    },
}

/// A refused mapping: its index in the input, what it was, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanError {
    /// Index of the mapping in the input.
    pub mapping: usize,
    /// Its first value.
    pub address: Address,
    /// Its number of values.
    pub count: u16,
    /// Why.
    pub kind: PlanErrorKind,
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} x {}: ", self.address, self.count)?;
        match self.kind {
            PlanErrorKind::ZeroCount => f.write_str("a mapping needs at least one value"),
            PlanErrorKind::TooManyBytes { bytes, max } => write!(
                f,
                "{bytes} bytes, more than the {max} of one continuous request"
            ),
            PlanErrorKind::TooManyBlocks { count, why } => write!(
                f,
                "{count} values, more than the {MAX_BLOCKS} blocks of one individual request, and {why}"
            ),
            PlanErrorKind::Name(k) => write!(f, "{k}"),
            PlanErrorKind::PathCount => {
                f.write_str("a hierarchical name maps one value; list each point")
            }
            PlanErrorKind::Overflow => f.write_str("the values run past the largest address"),
            PlanErrorKind::Overlap { other } => {
                write!(f, "writes memory that mapping {other} writes too")
            }
        }
    }
}

impl std::error::Error for PlanError {}

/// What one planned request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Planned {
    /// A continuous transfer of `len` bytes from byte `start` of `device`.
    Continuous {
        /// Device.
        device: Device,
        /// First byte.
        start: u64,
        /// Its name (`%DB2468`).
        name: Name,
        /// Bytes.
        len: u16,
    },
    /// An individual transfer of 1 to 16 names of one type.
    Individual {
        /// Data type.
        ty: DataType,
        /// Names, one block each.
        names: Vec<Name>,
    },
}

/// A request of a plan and its region of the plan's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedRequest {
    /// Offset of the region in the buffer.
    pub offset: usize,
    /// The request.
    pub kind: Planned,
}

/// Where a mapping's values are in a plan's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    /// Index of the request that carries the mapping.
    pub request: usize,
    /// Byte offset of the first value.
    pub offset: usize,
    /// For packed bits: bit number of the first value in that byte.
    pub bit: u8,
    /// True for bits packed eight to a byte (continuous reads); false for one value
    /// per slot of its type's size (bits: one byte, 0 or 1).
    pub packed: bool,
}

/// Requests covering a set of mappings, and where each mapping's values are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Requests: continuous ones by device and address, then individual ones by type.
    pub requests: Vec<PlannedRequest>,
    /// For each mapping (in input order), where its values are.
    pub places: Vec<Place>,
    /// Size of the buffer all requests share.
    pub buffer_len: usize,
}

/// A mapping as the planner sees it.
struct Info {
    /// Device and byte range, when a continuous request can carry it.
    cont: Option<(Device, u64, u64)>,
    /// True when an individual request can carry it.
    individual: bool,
    /// Its unit of individual blocks (duplicated read mappings share one).
    unit: usize,
}

/// Blocks of individual requests that travel together: one mapping's values.
struct Unit {
    ty: DataType,
    size: usize,
    /// The first mapping with this unit (whose address and count it carries).
    first: usize,
}

/// A continuous range being built.
struct Range {
    device: Device,
    start: u64,
    end: u64,
    members: Vec<usize>,
    /// Units of its members, without repeats (if all can travel individually).
    units: Option<Vec<usize>>,
}

/// Plans the requests that read or write `mappings` from a PLC named by `naming`;
/// reads bridge gaps of up to `max_gap` bytes between ranges of a device.
pub fn plan(
    mappings: &[Mapping],
    naming: &Naming,
    direction: Direction,
    max_gap: u32,
) -> Result<Plan, PlanError> {
    let write = direction == Direction::Write;
    let max = naming.cpu().max_continuous();
    let mut infos = classify(mappings, naming, write, max)?;
    if write {
        check_overlaps(mappings)?;
    }

    // Units: a read mapping repeated with the same address and count is read once.
    let mut units: Vec<Unit> = Vec::new();
    let mut seen: HashMap<(Address, u16), usize> = HashMap::new();
    for (i, m) in mappings.iter().enumerate() {
        let key = (m.address, m.count);
        let u = match seen.get(&key) {
            Some(u) if !write => *u,
            _ => {
                units.push(Unit {
                    ty: m.address.ty,
                    size: m.count as usize,
                    first: i,
                });
                seen.insert(key, units.len() - 1);
                units.len() - 1
            }
        };
        infos[i].unit = u;
    }

    let gap = if write { 0 } else { max_gap as u64 };
    let mut ranges = merge_ranges(&infos, gap, max as u64);
    for r in &mut ranges {
        if r.members.iter().all(|m| infos[*m].individual) {
            let mut us: Vec<usize> = r.members.iter().map(|m| infos[*m].unit).collect();
            us.sort_unstable();
            us.dedup();
            r.units = Some(us);
        }
    }

    // Units that only individual requests can carry.
    let mut fixed: Vec<usize> = infos
        .iter()
        .filter(|f| f.cont.is_none())
        .map(|f| f.unit)
        .collect();
    fixed.sort_unstable();
    fixed.dedup();

    let moved = choose_moves(&ranges, &fixed, &units);

    // Requests: kept ranges, then individual bins by type.
    let mut p = Plan {
        places: vec![
            Place {
                request: 0,
                offset: 0,
                bit: 0,
                packed: false
            };
            mappings.len()
        ],
        ..Plan::default()
    };
    let mut individual: Vec<usize> = fixed;
    for (r, range) in ranges.iter().enumerate() {
        if moved[r] {
            individual.extend(range.units.iter().flatten());
            continue;
        }
        let index = p.requests.len();
        let len = (range.end - range.start) as usize;
        let offset = p.buffer_len;
        // merge_ranges only starts a range at a member whose byte name was checked.
        let name = byte_name(range.device, range.start).map_err(|k| PlanError {
            mapping: range.members[0],
            address: mappings[range.members[0]].address,
            count: mappings[range.members[0]].count,
            kind: PlanErrorKind::Name(k),
        })?;
        for m in &range.members {
            let a = mappings[*m].address;
            let Location::Bit(pos) = a.loc else { continue };
            let packed = a.ty == DataType::Bit;
            p.places[*m] = Place {
                request: index,
                offset: offset + (pos / 8 - range.start) as usize,
                bit: if packed { (pos % 8) as u8 } else { 0 },
                packed,
            };
        }
        p.requests.push(PlannedRequest {
            offset,
            kind: Planned::Continuous {
                device: range.device,
                start: range.start,
                name,
                len: len as u16,
            },
        });
        p.buffer_len += len;
    }
    individual.sort_unstable();
    individual.dedup();
    let mut unit_place: HashMap<usize, Place> = HashMap::new();
    for ty in DataType::ALL {
        let of_type: Vec<usize> = individual
            .iter()
            .copied()
            .filter(|u| units[*u].ty == ty)
            .collect();
        for bin in best_fit(&of_type, &units) {
            let index = p.requests.len();
            let offset = p.buffer_len;
            let mut names = Vec::with_capacity(MAX_BLOCKS);
            for u in bin {
                let unit = &units[u];
                let m = &mappings[unit.first];
                unit_place.insert(
                    u,
                    Place {
                        request: index,
                        offset: offset + names.len() * ty.size(),
                        bit: 0,
                        packed: false,
                    },
                );
                for k in 0..unit.size as u64 {
                    // classify checked every element's name of an individual mapping.
                    let name = m
                        .address
                        .element(k)
                        .ok_or(PlanErrorKind::Overflow)
                        .and_then(|a| a.wire_name(naming).map_err(PlanErrorKind::Name))
                        .map_err(|kind| PlanError {
                            mapping: unit.first,
                            address: m.address,
                            count: m.count,
                            kind,
                        })?;
                    names.push(name);
                }
            }
            p.buffer_len += names.len() * ty.size();
            p.requests.push(PlannedRequest {
                offset,
                kind: Planned::Individual { ty, names },
            });
        }
    }
    for (i, f) in infos.iter().enumerate() {
        if let Some(place) = unit_place.get(&f.unit) {
            p.places[i] = *place;
        }
    }
    Ok(p)
}

/// Decides for each mapping which kinds of request can carry it; refuses the ones none
/// can carry.
fn classify(
    mappings: &[Mapping],
    naming: &Naming,
    write: bool,
    max: usize,
) -> Result<Vec<Info>, PlanError> {
    let mut infos = Vec::with_capacity(mappings.len());
    for (i, m) in mappings.iter().enumerate() {
        let a = &m.address;
        let err = |kind| PlanError {
            mapping: i,
            address: *a,
            count: m.count,
            kind,
        };
        if m.count == 0 {
            return Err(err(PlanErrorKind::ZeroCount));
        }
        let is_path = matches!(a.loc, Location::Path(_));
        if is_path && m.count > 1 {
            return Err(err(PlanErrorKind::PathCount));
        }
        let last = a
            .element(m.count as u64 - 1)
            .ok_or(err(PlanErrorKind::Overflow))?;
        // Names grow with the address: the first and the last are the ones to check.
        let individual = if m.count as usize > MAX_BLOCKS {
            Err(None)
        } else {
            a.wire_name(naming)
                .and(last.wire_name(naming))
                .map(|_| ())
                .map_err(Some)
        };
        let cont = if is_path {
            Err(NoCont::Kind(NoContinuous::Path))
        } else if !a.device.continuous(naming.cpu()) {
            Err(NoCont::Kind(NoContinuous::Device(a.device)))
        } else if a.device.has_contacts() && a.ty == DataType::Bit {
            Err(NoCont::Kind(NoContinuous::Contacts))
        } else if write && a.ty == DataType::Bit {
            Err(NoCont::Kind(NoContinuous::WriteBits))
        } else {
            let (s, e) = a
                .byte_range(m.count as u64)
                .ok_or(err(PlanErrorKind::Overflow))?;
            if e - s > max as u64 {
                Err(NoCont::TooManyBytes(e - s))
            } else {
                byte_name(a.device, s)
                    .map(|_| (a.device, s, e))
                    .map_err(NoCont::Name)
            }
        };
        let info = match (individual, cont) {
            (Ok(()), c) => Info {
                cont: c.ok(),
                individual: true,
                unit: 0,
            },
            (Err(_), Ok(c)) => Info {
                cont: Some(c),
                individual: false,
                unit: 0,
            },
            // Neither: the continuous limit first, as the one the user is likely to meet.
            (_, Err(NoCont::TooManyBytes(bytes))) => {
                return Err(err(PlanErrorKind::TooManyBytes { bytes, max }))
            }
            (Err(Some(k)), _) | (Err(None), Err(NoCont::Name(k))) => {
                return Err(err(PlanErrorKind::Name(k)))
            }
            (Err(None), Err(NoCont::Kind(why))) => {
                return Err(err(PlanErrorKind::TooManyBlocks {
                    count: m.count,
                    why,
                }))
            }
        };
        infos.push(info);
    }
    Ok(infos)
}

/// Why a continuous request cannot carry a mapping.
enum NoCont {
    Kind(NoContinuous),
    TooManyBytes(u64),
    Name(NameErrorKind),
}

/// Refuses two written mappings that share memory.
fn check_overlaps(mappings: &[Mapping]) -> Result<(), PlanError> {
    // (device, contact plane, location start, location end, index)
    let mut spans: Vec<(Device, bool, Location, u64, usize)> = mappings
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let a = m.address;
            let contacts = a.device.has_contacts() && a.ty == DataType::Bit;
            let end = match a.loc {
                Location::Bit(pos) => pos.saturating_add(a.ty.bits() * m.count as u64),
                Location::Path(_) => 0,
            };
            (a.device, contacts, a.loc, end, i)
        })
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.0 != b.0 || a.1 != b.1 {
            continue;
        }
        let overlap = match (a.2, b.2) {
            (Location::Bit(_), Location::Bit(s)) => s < a.3,
            (Location::Path(x), Location::Path(y)) => x == y,
            _ => false,
        };
        if overlap {
            let (first, second) = (a.4.min(b.4), a.4.max(b.4));
            return Err(PlanError {
                mapping: second,
                address: mappings[second].address,
                count: mappings[second].count,
                kind: PlanErrorKind::Overlap { other: first },
            });
        }
    }
    Ok(())
}

/// Merges the continuous byte ranges of each device.
fn merge_ranges(infos: &[Info], gap: u64, max: u64) -> Vec<Range> {
    let mut cands: Vec<(Device, u64, u64, usize)> = infos
        .iter()
        .enumerate()
        .filter_map(|(i, f)| f.cont.map(|(d, s, e)| (d, s, e, i)))
        .collect();
    cands.sort_unstable();
    let mut ranges: Vec<Range> = Vec::new();
    for (d, s, e, i) in cands {
        if let Some(r) = ranges.last_mut() {
            if r.device == d && s <= r.end.saturating_add(gap) && e.max(r.end) - r.start <= max {
                r.end = r.end.max(e);
                r.members.push(i);
                continue;
            }
        }
        ranges.push(Range {
            device: d,
            start: s,
            end: e,
            members: vec![i],
            units: None,
        });
    }
    ranges
}

/// Which ranges travel as individual blocks instead: moved while that adds no frame
/// (smallest first), then moved back while that adds none.
fn choose_moves(ranges: &[Range], fixed: &[usize], units: &[Unit]) -> Vec<bool> {
    let mut moved = vec![false; ranges.len()];
    let frames = |moved: &[bool]| -> usize {
        let mut hist = [[0usize; MAX_BLOCKS + 1]; 5];
        let mut counted = vec![false; units.len()];
        let mut add = |u: usize| {
            if !counted[u] {
                counted[u] = true;
                hist[units[u].ty as usize][units[u].size] += 1;
            }
        };
        fixed.iter().for_each(|u| add(*u));
        let mut kept = 0;
        for (r, range) in ranges.iter().enumerate() {
            match (&range.units, moved[r]) {
                (Some(us), true) => us.iter().for_each(|u| add(*u)),
                _ => kept += 1,
            }
        }
        kept + hist.iter().map(bins_for).sum::<usize>()
    };
    let mut order: Vec<(usize, usize)> = ranges
        .iter()
        .enumerate()
        .filter_map(|(r, range)| {
            let us = range.units.as_ref()?;
            Some((us.iter().map(|u| units[*u].size).sum(), r))
        })
        .collect();
    order.sort_unstable();
    let mut best = frames(&moved);
    let mut accepted = Vec::new();
    for (_, r) in &order {
        moved[*r] = true;
        let n = frames(&moved);
        if n <= best {
            best = n;
            accepted.push(*r);
        } else {
            moved[*r] = false;
        }
    }
    for r in accepted.iter().rev() {
        moved[*r] = false;
        let n = frames(&moved);
        if n <= best {
            best = n;
        } else {
            moved[*r] = true;
        }
    }
    moved
}

/// Bins of 16 blocks that best-fit decreasing needs for units of sizes counted by
/// `hist` (hist[s]: units of s blocks).
fn bins_for(hist: &[usize; MAX_BLOCKS + 1]) -> usize {
    // free[r]: open bins with r blocks free.
    let mut free = [0usize; MAX_BLOCKS + 1];
    let mut bins = 0;
    for size in (1..=MAX_BLOCKS).rev() {
        for _ in 0..hist[size] {
            match (size..=MAX_BLOCKS).find(|r| free[*r] > 0) {
                Some(r) => {
                    free[r] -= 1;
                    free[r - size] += 1;
                }
                None => {
                    bins += 1;
                    free[MAX_BLOCKS - size] += 1;
                }
            }
        }
    }
    bins
}

/// Packs units into bins of at most 16 blocks, best-fit decreasing; each bin lists its
/// units in the order they were placed.
fn best_fit(of_type: &[usize], units: &[Unit]) -> Vec<Vec<usize>> {
    let mut sorted = of_type.to_vec();
    sorted.sort_by_key(|u| (std::cmp::Reverse(units[*u].size), units[*u].first));
    let mut bins: Vec<(usize, Vec<usize>)> = Vec::new();
    for u in sorted {
        let size = units[u].size;
        let fit = bins
            .iter_mut()
            .filter(|(free, _)| *free >= size)
            .min_by_key(|(free, _)| *free);
        match fit {
            Some((free, members)) => {
                *free -= size;
                members.push(u);
            }
            None => bins.push((MAX_BLOCKS - size, vec![u])),
        }
    }
    bins.into_iter().map(|(_, m)| m).collect()
}

impl PlannedRequest {
    /// Bytes of the request's region of the buffer.
    pub fn len(&self) -> usize {
        match &self.kind {
            Planned::Continuous { len, .. } => *len as usize,
            Planned::Individual { ty, names } => names.len() * ty.size(),
        }
    }

    /// True for a region of no bytes (never the case in a plan).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The read request.
    pub fn read_request(&self) -> Request {
        match &self.kind {
            Planned::Continuous { name, len, .. } => Request::ReadContinuous {
                name: *name,
                len: *len,
            },
            Planned::Individual { ty, names } => Request::Read {
                ty: *ty,
                names: names.clone(),
            },
        }
    }

    /// The write request of the values in the request's region of `buf`.
    ///
    /// # Panics
    /// When `buf` is shorter than the plan's buffer.
    pub fn write_request(&self, buf: &[u8]) -> Request {
        let region = &buf[self.offset..self.offset + self.len()];
        match &self.kind {
            Planned::Continuous { name, .. } => Request::WriteContinuous {
                name: *name,
                data: region.to_vec(),
            },
            Planned::Individual { ty, names } => {
                let slot = Place {
                    request: 0,
                    offset: 0,
                    bit: 0,
                    packed: false,
                };
                Request::Write {
                    ty: *ty,
                    items: names
                        .iter()
                        .enumerate()
                        .map(|(k, name)| WriteItem {
                            name: *name,
                            value: slot.get(region, *ty, k),
                        })
                        .collect(),
                }
            }
        }
    }

    /// Stores the answer to the read request in the request's region of `buf`, after
    /// checking that it answers it (a NAK is an error carrying LS's code).
    ///
    /// # Panics
    /// When `buf` is shorter than the plan's buffer.
    pub fn store(&self, response: &Response, buf: &mut [u8]) -> Result<(), AnswerError> {
        let len = self.len();
        let region = &mut buf[self.offset..self.offset + len];
        match (&self.kind, response) {
            (_, Response::Nak { code, status, .. }) => Err(AnswerError::Nak {
                code: *code,
                status: *status,
            }),
            (Planned::Continuous { .. }, Response::ReadContinuous { data }) => {
                if data.len() != len {
                    return Err(AnswerError::Count {
                        expected: len,
                        found: data.len(),
                    });
                }
                region.copy_from_slice(data);
                Ok(())
            }
            (Planned::Individual { ty, names }, Response::Read { ty: t, values }) => {
                if t != ty {
                    return Err(AnswerError::Type {
                        expected: *ty,
                        found: *t,
                    });
                }
                if values.len() != names.len() {
                    return Err(AnswerError::Count {
                        expected: names.len(),
                        found: values.len(),
                    });
                }
                for (k, v) in values.iter().enumerate() {
                    let s = ty.size();
                    region[k * s..(k + 1) * s].copy_from_slice(&v.to_le_bytes()[..s]);
                }
                Ok(())
            }
            _ => Err(AnswerError::Kind),
        }
    }
}

impl Place {
    /// The `i`-th value of the mapping in `buf` (a bit is 0 or 1).
    ///
    /// # Panics
    /// When `buf` is shorter than the plan's buffer.
    pub fn get(&self, buf: &[u8], ty: DataType, i: usize) -> u64 {
        if ty == DataType::Bit {
            if self.packed {
                let bit = self.offset * 8 + self.bit as usize + i;
                return ((buf[bit / 8] >> (bit % 8)) & 1) as u64;
            }
            return (buf[self.offset + i] != 0) as u64;
        }
        let s = ty.size();
        let at = self.offset + i * s;
        let mut v = [0u8; 8];
        v[..s].copy_from_slice(&buf[at..at + s]);
        u64::from_le_bytes(v)
    }

    /// Sets the `i`-th value of the mapping in `buf` (the low bytes of `value`; a bit
    /// is set when `value` is not 0).
    ///
    /// # Panics
    /// When `buf` is shorter than the plan's buffer.
    pub fn set(&self, buf: &mut [u8], ty: DataType, i: usize, value: u64) {
        if ty == DataType::Bit {
            let on = value != 0;
            if self.packed {
                let bit = self.offset * 8 + self.bit as usize + i;
                let mask = 1u8 << (bit % 8);
                if on {
                    buf[bit / 8] |= mask;
                } else {
                    buf[bit / 8] &= !mask;
                }
            } else {
                buf[self.offset + i] = on as u8;
            }
            return;
        }
        let s = ty.size();
        let at = self.offset + i * s;
        buf[at..at + s].copy_from_slice(&value.to_le_bytes()[..s]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::cpu::Cpu;
    use super::*;

    fn map(text: &str, ty: DataType, count: u16, naming: &Naming) -> Mapping {
        Mapping {
            address: Address::parse(text, ty, naming).unwrap(),
            count,
        }
    }

    #[test]
    fn bins_for_packs_sizes_into_sixteens() {
        let mut h = [0usize; 17];
        assert_eq!(bins_for(&h), 0);
        h[1] = 16;
        assert_eq!(bins_for(&h), 1);
        h[1] = 17;
        assert_eq!(bins_for(&h), 2);
        let mut h = [0usize; 17];
        h[10] = 1;
        h[6] = 1;
        h[9] = 1;
        h[7] = 1;
        assert_eq!(bins_for(&h), 2);
    }

    #[test]
    fn a_lone_word_on_a_continuous_device_stays_continuous() {
        let n = Naming::new(Cpu::Xgk);
        let p = plan(
            &[map("D100", DataType::Word, 1, &n)],
            &n,
            Direction::Read,
            0,
        )
        .unwrap();
        assert_eq!(p.requests.len(), 1);
        assert!(matches!(
            p.requests[0].kind,
            Planned::Continuous { len: 2, .. }
        ));
    }

    #[test]
    fn place_get_and_set_round_trip() {
        let mut buf = vec![0u8; 8];
        let packed = Place {
            request: 0,
            offset: 1,
            bit: 6,
            packed: true,
        };
        packed.set(&mut buf, DataType::Bit, 3, 1);
        assert_eq!(buf[2], 0b0000_0010);
        assert_eq!(packed.get(&buf, DataType::Bit, 3), 1);
        assert_eq!(packed.get(&buf, DataType::Bit, 2), 0);
        let words = Place {
            request: 0,
            offset: 2,
            bit: 0,
            packed: false,
        };
        words.set(&mut buf, DataType::Word, 1, 0x1234);
        assert_eq!(&buf[4..6], &[0x34, 0x12]);
        assert_eq!(words.get(&buf, DataType::Word, 1), 0x1234);
    }
}
