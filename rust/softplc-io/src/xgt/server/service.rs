//! Answering one XGT request: reads and writes of the served device memory, checked
//! against the protocol's limits, the served areas, the read-only devices and the
//! variables' write rules, each refusal answered with its NAK code. Runs on the I/O
//! thread.
//!
//! | request | NAK |
//! |---|---|
//! | not `LSIS-XGT`/`LGIS-GLOFA` | 0x0075 bad company ID (and the connection is closed) |
//! | BCC neither 0 nor the byte sum | 0x0077 bad header checksum |
//! | `Length` beyond any request, or disagreeing with the instruction | 0x0076 bad header length |
//! | a command other than read/write | 0x0078 bad command |
//! | a data type other than X/B/W/D/L/continuous, a data size not the type's | 0x0002 |
//! | 0 or more than 16 blocks; a continuous request of other than one block | 0x0001 |
//! | a name of fewer than 4 or more than 16 characters | 0x0011 |
//! | a name that is not a direct variable of the CPU's devices, or a device not served | 0x0003 |
//! | an individual name whose size letter is not the request's data type | 0x0002 |
//! | a continuous request to a name that is not a byte name | 0x0012 |
//! | an address past the end of the served area | 0x0004 |
//! | a continuous block of more than 1,400 bytes (512 on XGB CPUs) | 0x0005 |
//! | a write to a read-only device, or to a variable declared `writable=False` | 0x0003 |
//! | a write of a value outside a variable's declared range | 0x0010 |
//!
//! A write is checked whole before anything is stored: a refused request changes
//! nothing.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use softplc_core::{IoEventKind, Layout, Value, WriteRefused, WriteRule};

use crate::server::log::ServerLog;
use crate::xgt::bind::place;
use crate::xgt::codec::{nak_for, DataType, Name, Request, RequestFrame, Response, ResponseFrame};
use crate::xgt::device::{Address, Device, Naming};
use crate::xgt::error::{DecodeError, NakCode};
use crate::xgt::header::{CompanyId, CpuInfo, Header, Source};
use crate::xgt::Cpu;

use super::memory::Memory;
use super::stats::XgtServerStats;
use super::ServedPoint;

/// NAK for a write to a read-only device or variable.
pub const NAK_READ_ONLY: NakCode = NakCode::DEVICE_NOT_SERVED;
/// NAK for a write of a value outside a variable's declared range.
pub const NAK_OUT_OF_RANGE: NakCode = NakCode::DEVICE;

/// One restricted variable.
#[derive(Clone, Debug)]
struct RulePoint {
    point: ServedPoint,
    rule: WriteRule,
}

/// The restricted variables among the served ones (most restrict nothing, and cost
/// nothing here).
#[derive(Clone, Debug, Default)]
pub struct WriteRules {
    points: Vec<RulePoint>,
}

impl WriteRules {
    /// The rules of `points` that restrict anything.
    pub fn new(layout: &Layout, points: &[ServedPoint]) -> WriteRules {
        WriteRules {
            points: points
                .iter()
                .filter_map(|p| {
                    let rule = layout.var(p.point.var).rule;
                    rule.is_restricted().then(|| RulePoint {
                        point: p.clone(),
                        rule,
                    })
                })
                .collect(),
        }
    }
}

/// A piece of a client write.
#[derive(Clone, Debug)]
enum Change {
    /// Bytes from `at`.
    Bytes {
        device: Device,
        at: usize,
        data: Vec<u8>,
    },
    /// One bit.
    Bit {
        device: Device,
        at: usize,
        bit: u8,
        on: bool,
    },
}

impl Change {
    /// Byte `at` of `device` with this change applied to `cur`.
    fn overlay(&self, device: Device, at: usize, cur: u8) -> u8 {
        match self {
            Change::Bytes {
                device: d,
                at: a,
                data,
            } if *d == device && at >= *a && at < a + data.len() => data[at - a],
            Change::Bit {
                device: d,
                at: a,
                bit,
                on,
            } if *d == device && *a == at => {
                if *on {
                    cur | (1 << bit)
                } else {
                    cur & !(1 << bit)
                }
            }
            _ => cur,
        }
    }

    fn touches(&self, device: Device, lo: usize, hi: usize) -> bool {
        match self {
            Change::Bytes {
                device: d,
                at,
                data,
            } => *d == device && *at < hi && at + data.len() > lo,
            Change::Bit { device: d, at, .. } => *d == device && (lo..hi).contains(at),
        }
    }
}

/// A refused write: which variable, where, and why.
struct Refusal {
    var: String,
    address: Address,
    value: Value,
    why: WriteRefused,
}

/// The service shared by the server's connections.
pub struct Service {
    /// The served memory.
    pub memory: Arc<Memory>,
    /// The CPU type the server answers as.
    pub cpu: Cpu,
    /// How names are read.
    pub naming: Naming,
    /// Devices clients may not write.
    pub read_only: Vec<Device>,
    /// The variables' write rules.
    pub rules: Arc<WriteRules>,
    /// The server's event log.
    pub log: Arc<ServerLog>,
    /// Counters.
    pub stats: Arc<XgtServerStats>,
}

/// Where a name's value is: device, byte, bit (for a bit), bytes on the wire.
type Located = (Device, usize, Option<u8>, DataType);

impl Service {
    /// Appends the answer to one whole frame (as the frame decoder delimited it) to
    /// `out`. Never panics, whatever the bytes.
    pub fn answer_frame(&self, frame: &[u8], peer: SocketAddr, out: &mut Vec<u8>) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let (header, response) = match RequestFrame::decode(frame) {
            Ok(req) => (req.header.answer(self.cpu), self.answer(&req.request, peer)),
            Err(e) => (self.header_of(frame), nak_for(frame, e)),
        };
        if let Response::Nak { code, .. } = response {
            self.stats.nak(code);
        }
        let rf = ResponseFrame {
            header,
            reserved: 0,
            response,
        };
        if rf.encode_into(out).is_err() {
            // Answers are built within the protocol's limits, so this is not expected;
            // should one not encode, the client gets a device error rather than nothing.
            let mut response = nak_for(frame, DecodeError::Command(0));
            if let Response::Nak { code, .. } = &mut response {
                *code = NakCode::DEVICE;
            }
            let rf = ResponseFrame {
                header,
                reserved: 0,
                response,
            };
            let _ = rf.encode_into(out);
        }
    }

    /// Appends the NAK for a stream that cannot be delimited (after which the
    /// connection is closed).
    pub fn answer_broken(&self, bytes: &[u8], error: DecodeError, out: &mut Vec<u8>) {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        self.stats.nak(error.nak_code());
        let rf = ResponseFrame {
            header: self.header_of(bytes),
            reserved: 0,
            response: nak_for(bytes, error),
        };
        let _ = rf.encode_into(out);
    }

    /// The answer header for a frame whose own header could not be decoded: the
    /// company ID and invoke ID echoed where the bytes have them.
    fn header_of(&self, frame: &[u8]) -> Header {
        let id: Option<[u8; 10]> = frame.get(..10).and_then(|b| b.try_into().ok());
        let invoke = frame
            .get(14..16)
            .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
        Header {
            company: id
                .and_then(|b| CompanyId::from_bytes(&b))
                .unwrap_or(CompanyId::LsisXgt),
            plc_info: 0,
            cpu: CpuInfo::Known(self.cpu),
            source: Source::Plc,
            invoke_id: invoke,
            position: 0,
        }
    }

    fn answer(&self, req: &Request, peer: SocketAddr) -> Response {
        let r = match req {
            Request::Read { ty, names } => self.read(*ty, names),
            Request::ReadContinuous { name, len } => self.read_continuous(name, *len as usize),
            Request::Write { ty, items } => {
                let mut changes = Vec::with_capacity(items.len());
                let mut r = Ok(());
                for it in items {
                    match self.locate(&it.name, Some(*ty)) {
                        Ok((device, at, Some(bit), _)) => changes.push(Change::Bit {
                            device,
                            at,
                            bit,
                            on: it.value != 0,
                        }),
                        Ok((device, at, None, t)) => changes.push(Change::Bytes {
                            device,
                            at,
                            data: it.value.to_le_bytes()[..t.size()].to_vec(),
                        }),
                        Err(c) => {
                            r = Err(c);
                            break;
                        }
                    }
                }
                r.and_then(|()| self.write(changes, items.len(), peer))
                    .map(|()| Response::Write {
                        ty: *ty,
                        blocks: items.len() as u16,
                    })
            }
            Request::WriteContinuous { name, data } => self
                .locate_continuous(name, data.len())
                .and_then(|(device, at)| {
                    let c = Change::Bytes {
                        device,
                        at,
                        data: data.clone(),
                    };
                    self.write(vec![c], data.len(), peer)
                })
                .map(|()| Response::WriteContinuous),
        };
        r.unwrap_or_else(|code| req.nak(code))
    }

    /// Where the value a name denotes is, checked against the served areas; `want`:
    /// the request's data type, which the name's size letter must be.
    fn locate(&self, name: &Name, want: Option<DataType>) -> Result<Located, NakCode> {
        let a = Address::from_wire(name, &self.naming).map_err(|k| k.nak_code())?;
        if want.is_some_and(|t| t != a.ty) {
            return Err(NakCode::DATA_TYPE);
        }
        let (byte, bit) = place(&a).ok_or(NakCode::DEVICE_NOT_SERVED)?;
        let len = self
            .memory
            .len(a.device)
            .ok_or(NakCode::DEVICE_NOT_SERVED)?;
        let end = byte.checked_add(a.ty.size() as u64);
        if end.is_none_or(|e| e > len as u64) {
            return Err(NakCode::AREA_EXCEEDED);
        }
        Ok((a.device, byte as usize, bit, a.ty))
    }

    /// Device and first byte of a continuous transfer of `len` bytes from `name`.
    fn locate_continuous(&self, name: &Name, len: usize) -> Result<(Device, usize), NakCode> {
        if len == 0 || len > self.cpu.max_continuous() {
            return Err(NakCode::BLOCK_TOO_LARGE);
        }
        let a = Address::from_wire(name, &self.naming).map_err(|k| k.nak_code())?;
        if a.ty != DataType::Byte {
            return Err(NakCode::CONTINUOUS_TYPE);
        }
        let (byte, _) = place(&a).ok_or(NakCode::DEVICE_NOT_SERVED)?;
        let size = self
            .memory
            .len(a.device)
            .ok_or(NakCode::DEVICE_NOT_SERVED)?;
        if byte.saturating_add(len as u64) > size as u64 {
            return Err(NakCode::AREA_EXCEEDED);
        }
        Ok((a.device, byte as usize))
    }

    fn read(&self, ty: DataType, names: &[Name]) -> Result<Response, NakCode> {
        let places = names
            .iter()
            .map(|n| self.locate(n, Some(ty)))
            .collect::<Result<Vec<_>, _>>()?;
        let values = self.memory.read(|m| {
            places
                .iter()
                .map(|(d, at, bit, t)| match bit {
                    Some(k) => ((m.byte(*d, *at) >> k) & 1) as u64,
                    None => {
                        (0..t.size()).fold(0u64, |v, i| v | (m.byte(*d, at + i) as u64) << (8 * i))
                    }
                })
                .collect::<Vec<u64>>()
        });
        Ok(Response::Read { ty, values })
    }

    fn read_continuous(&self, name: &Name, len: usize) -> Result<Response, NakCode> {
        let (device, at) = self.locate_continuous(name, len)?;
        let data = self.memory.read(|m| {
            (at..at + len)
                .map(|i| m.byte(device, i))
                .collect::<Vec<u8>>()
        });
        Ok(Response::ReadContinuous { data })
    }

    /// Applies a client write whole, or refuses it whole.
    fn write(&self, changes: Vec<Change>, items: usize, peer: SocketAddr) -> Result<(), NakCode> {
        let device_of = |c: &Change| match c {
            Change::Bytes { device, .. } | Change::Bit { device, .. } => *device,
        };
        if let Some(c) = changes
            .iter()
            .find(|c| self.read_only.contains(&device_of(c)))
        {
            let d = device_of(c);
            self.stats.writes_refused.fetch_add(1, Ordering::Relaxed);
            self.log.note(IoEventKind::ClientWriteRefused, || {
                format!("xgt server: write to device {d} refused: read-only (from {peer})")
            });
            return Err(NAK_READ_ONLY);
        }
        let g = self.memory.lock();
        // Under the lock: the bytes of a value written in part are current.
        if let Err(r) = self.check_rules(&changes) {
            drop(g);
            return Err(self.refuse(r, peer));
        }
        for c in &changes {
            match c {
                Change::Bytes { device, at, data } => {
                    for (i, b) in data.iter().enumerate() {
                        self.memory.client_byte(&g, *device, at + i, *b);
                    }
                }
                Change::Bit {
                    device,
                    at,
                    bit,
                    on,
                } => self.memory.client_bit(&g, *device, *at, *bit, *on),
            }
        }
        drop(g);
        self.stats
            .items_written
            .fetch_add(items as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Checks every restricted variable the write touches, on the value it would hold.
    fn check_rules(&self, changes: &[Change]) -> Result<(), Refusal> {
        for r in &self.rules.points {
            let p = &r.point;
            let (lo, hi) = (p.byte, p.byte + p.size);
            if !changes.iter().any(|c| c.touches(p.device, lo, hi)) {
                continue;
            }
            let at = |i: usize| {
                let cur = self.memory.byte(p.device, i);
                changes.iter().fold(cur, |b, c| c.overlay(p.device, i, b))
            };
            let raw = match p.bit {
                Some(k) => ((at(p.byte) >> k) & 1) as u64,
                None => (0..p.size).fold(0u64, |v, i| v | (at(p.byte + i) as u64) << (8 * i)),
            };
            let (v, _) = p.point.codec.decode(raw);
            r.rule.check(v).map_err(|why| Refusal {
                var: p.point.name.clone(),
                address: p.point.address,
                value: v,
                why,
            })?;
        }
        Ok(())
    }

    /// A write that breaks a variable's rule: counted, logged (rate-limited), and
    /// answered with its NAK.
    fn refuse(&self, r: Refusal, peer: SocketAddr) -> NakCode {
        self.stats.writes_refused.fetch_add(1, Ordering::Relaxed);
        let code = match r.why {
            WriteRefused::ReadOnly => NAK_READ_ONLY,
            _ => NAK_OUT_OF_RANGE,
        };
        self.log.note(IoEventKind::ClientWriteRefused, || {
            format!(
                "xgt server: write of {} ({} = {}) refused: {} (from {peer})",
                r.address, r.var, r.value, r.why
            )
        });
        code
    }
}
