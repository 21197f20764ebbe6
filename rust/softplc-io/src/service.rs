//! Answers Modbus requests from the server's tables (runs on the I/O thread).

use std::future::{ready, Ready};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

use tokio_modbus::prelude::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_modbus::server::Service;

use crate::config::Table;
use crate::guard::{serves, GuardStats, GATEWAY_TARGET};
use crate::rules::{Refusal, WriteRules};
use crate::serverlog::{ConnEvent, ServerLog};
use crate::tables::Tables;
use softplc_core::WriteRefused;

/// Server counters. Written by the I/O thread (and the scan for publication skips),
/// read by the monitor.
#[derive(Debug, Default)]
pub struct ServerStats {
    /// The address actually listened on (after binding port 0).
    pub listen: Mutex<Option<std::net::SocketAddr>>,
    /// Listening now.
    pub running: AtomicBool,
    /// Open connections.
    pub connections: AtomicU64,
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections refused by the allowlist.
    pub refused_allowlist: AtomicU64,
    /// Connections refused because `max_connections` were open and none was idle
    /// long enough to be closed for them.
    pub refused_limit: AtomicU64,
    /// Idle connections closed to make room for a new one.
    pub evicted: AtomicU64,
    /// Connections closed because a frame could not be delimited.
    pub closed_malformed: AtomicU64,
    /// Connections closed for idleness.
    pub closed_idle: AtomicU64,
    /// Connections that ended with an I/O error.
    pub connection_errors: AtomicU64,
    /// Requests answered (including exceptions).
    pub requests: AtomicU64,
    /// Exception answers by code 1..=11 (index = code).
    pub exceptions: [AtomicU64; 12],
    /// Requests for another unit id.
    pub wrong_unit: AtomicU64,
    /// Items written by clients.
    pub items_written: AtomicU64,
    /// Client-written values applied to the image by the scan.
    pub writes_applied: AtomicU64,
    /// Scan cycles that skipped publication because a client held the table lock.
    pub publish_skipped: AtomicU64,
    /// Publications done.
    pub publications: AtomicU64,
    /// Client writes refused by a variable's range or read-only rule.
    pub writes_refused: AtomicU64,
}

impl ServerStats {
    fn exception(&self, code: u8) {
        if let Some(c) = self.exceptions.get(code as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A shared handle, for the frame guard.
#[derive(Clone, Debug)]
pub struct StatsHandle(pub Arc<ServerStats>);

impl GuardStats for StatsHandle {
    fn rejected(&self, code: u8) {
        self.0.requests.fetch_add(1, Ordering::Relaxed);
        self.0.exception(code);
    }
    fn closed_malformed(&self) {
        self.0.closed_malformed.fetch_add(1, Ordering::Relaxed);
    }
    fn closed_idle(&self) {
        self.0.closed_idle.fetch_add(1, Ordering::Relaxed);
    }
    fn wrong_unit(&self) {
        self.0.wrong_unit.fetch_add(1, Ordering::Relaxed);
    }
}

/// One open connection, as the server's list of connections sees it. Written by the
/// connection's task (activity) and by the accept loop (eviction).
#[derive(Debug)]
pub struct ConnHandle {
    id: u64,
    /// The client.
    pub peer: SocketAddr,
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last complete request (or the accept).
    last_active: AtomicU64,
    evicted: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl ConnHandle {
    /// Records a complete request at `now`.
    pub fn touch(&self, now: Instant) {
        let ns = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        self.last_active.store(ns, Ordering::Relaxed);
    }

    /// How long the connection has been without a complete request.
    pub fn idle_for(&self, now: Instant) -> Duration {
        let last = self.epoch + Duration::from_nanos(self.last_active.load(Ordering::Relaxed));
        now.saturating_duration_since(last)
    }

    /// True once the server has closed this connection to make room.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }

    /// The connection's task waits for bytes: wake it through `w` on eviction.
    pub fn park(&self, w: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(|p| p.into_inner());
        if !slot.as_ref().is_some_and(|old| old.will_wake(w)) {
            *slot = Some(w.clone());
        }
    }

    fn evict(&self) {
        self.evicted.store(true, Ordering::Release);
        let w = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(w) = w {
            w.wake();
        }
    }
}

/// The server's open connections, so that a new client can take the place of one that
/// sits idle when `max_connections` are open.
#[derive(Debug)]
pub struct Connections {
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<Vec<Arc<ConnHandle>>>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(Vec::new()),
        }
    }
}

impl Connections {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<ConnHandle>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Open connections (not counting evicted ones still closing).
    pub fn len(&self) -> usize {
        self.list().len()
    }

    /// True when no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a connection from `peer`, active now.
    pub fn register(&self, peer: SocketAddr) -> Arc<ConnHandle> {
        let h = Arc::new(ConnHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            peer,
            epoch: self.epoch,
            last_active: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        h.touch(Instant::now());
        self.list().push(h.clone());
        h
    }

    fn remove(&self, id: u64) {
        self.list().retain(|h| h.id != id);
    }

    /// Closes the connection that has been without a request the longest, if that is
    /// at least `min_idle`, and returns its peer and idle time. Connections in use
    /// are never closed for a newcomer.
    pub fn evict_idlest(&self, min_idle: Duration) -> Option<(SocketAddr, Duration)> {
        let now = Instant::now();
        let mut list = self.list();
        let (i, idle) = list
            .iter()
            .enumerate()
            .map(|(i, h)| (i, h.idle_for(now)))
            .max_by_key(|(_, idle)| *idle)?;
        if idle < min_idle {
            return None;
        }
        let h = list.swap_remove(i);
        drop(list);
        h.evict();
        Some((h.peer, idle))
    }
}

/// Counts an open connection and keeps it in the list while it lives.
#[derive(Debug)]
pub struct ConnSlot {
    /// Counters.
    pub stats: Arc<ServerStats>,
    /// The list of open connections.
    pub conns: Arc<Connections>,
    /// This connection.
    pub handle: Arc<ConnHandle>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.conns.remove(self.handle.id);
        self.stats.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The service of one connection.
#[derive(Debug)]
pub struct ConnService {
    /// The tables.
    pub tables: Arc<Tables>,
    /// Unit id served (0 and 255 too: on Modbus TCP they address the device itself).
    pub unit_id: u8,
    /// Tables clients may write, by [`Table::index`].
    pub writable: [bool; 4],
    /// Range and read-only rules of the mapped variables.
    pub rules: Arc<WriteRules>,
    /// The server's event log.
    pub log: Arc<ServerLog>,
    /// Counters.
    pub stats: Arc<ServerStats>,
    /// Keeps the connection counted.
    pub slot: ConnSlot,
}

type Answer = Result<Response, ExceptionCode>;

impl ConnService {
    fn check(&self, table: Table, addr: u16, n: usize, max: usize) -> Result<(), ExceptionCode> {
        if n == 0 || n > max {
            return Err(ExceptionCode::IllegalDataValue);
        }
        if addr as usize + n > self.tables.len(table) {
            return Err(ExceptionCode::IllegalDataAddress);
        }
        Ok(())
    }

    fn check_write(&self, table: Table, addr: u16, n: usize) -> Result<(), ExceptionCode> {
        if !self.writable[table.index()] {
            return Err(ExceptionCode::IllegalFunction);
        }
        self.check(table, addr, n, table.max_write())
    }

    fn read_bits(&self, table: Table, addr: u16, n: u16) -> Result<Vec<bool>, ExceptionCode> {
        self.check(table, addr, n as usize, 2000)?;
        let a = addr as usize;
        Ok(self
            .tables
            .read(|t| (a..a + n as usize).map(|i| t.bit(table, i)).collect()))
    }

    fn read_regs(&self, table: Table, addr: u16, n: u16) -> Result<Vec<u16>, ExceptionCode> {
        self.check(table, addr, n as usize, 125)?;
        let a = addr as usize;
        Ok(self
            .tables
            .read(|t| (a..a + n as usize).map(|i| t.reg(table, i)).collect()))
    }

    /// A write that breaks a variable's rule: counted, logged (rate-limited), and
    /// answered with 03 (out of range) or 02 (the variable is not writable).
    fn refuse(&self, r: Refusal) -> ExceptionCode {
        self.stats.writes_refused.fetch_add(1, Ordering::Relaxed);
        let code = match r.why {
            WriteRefused::ReadOnly => ExceptionCode::IllegalDataAddress,
            _ => ExceptionCode::IllegalDataValue,
        };
        let peer = self.slot.handle.peer;
        self.log.note(ConnEvent::WriteRefused, || {
            format!("modbus server: {r} (from {peer})")
        });
        code
    }

    fn write_bits(&self, addr: u16, vals: &[bool]) -> Result<(), ExceptionCode> {
        self.check_write(Table::Coil, addr, vals.len())?;
        if !self.rules.is_empty() {
            self.rules
                .check_bits(addr, vals)
                .map_err(|r| self.refuse(r))?;
        }
        let g = self.tables.lock();
        for (i, v) in vals.iter().enumerate() {
            self.tables
                .client_bit(&g, Table::Coil, addr as usize + i, *v);
        }
        drop(g);
        self.stats
            .items_written
            .fetch_add(vals.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn write_regs(&self, addr: u16, vals: &[u16]) -> Result<(), ExceptionCode> {
        self.check_write(Table::HoldingRegister, addr, vals.len())?;
        let g = self.tables.lock();
        if !self.rules.is_empty() {
            // Under the lock: the other words of a value partly written are current.
            if let Err(r) = self.rules.check_regs(&self.tables, addr, vals) {
                drop(g);
                return Err(self.refuse(r));
            }
        }
        for (i, v) in vals.iter().enumerate() {
            self.tables
                .client_reg(&g, Table::HoldingRegister, addr as usize + i, *v);
        }
        drop(g);
        self.stats
            .items_written
            .fetch_add(vals.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn dispatch(&self, req: Request<'static>) -> Answer {
        use Request as Q;
        use Response as R;
        let h = Table::HoldingRegister;
        Ok(match req {
            Q::ReadCoils(a, n) => R::ReadCoils(self.read_bits(Table::Coil, a, n)?),
            Q::ReadDiscreteInputs(a, n) => {
                R::ReadDiscreteInputs(self.read_bits(Table::DiscreteInput, a, n)?)
            }
            Q::ReadInputRegisters(a, n) => {
                R::ReadInputRegisters(self.read_regs(Table::InputRegister, a, n)?)
            }
            Q::ReadHoldingRegisters(a, n) => R::ReadHoldingRegisters(self.read_regs(h, a, n)?),
            Q::WriteSingleCoil(a, v) => {
                self.write_bits(a, &[v])?;
                R::WriteSingleCoil(a, v)
            }
            Q::WriteMultipleCoils(a, vs) => {
                self.write_bits(a, &vs)?;
                R::WriteMultipleCoils(a, vs.len() as u16)
            }
            Q::WriteSingleRegister(a, v) => {
                self.write_regs(a, &[v])?;
                R::WriteSingleRegister(a, v)
            }
            Q::WriteMultipleRegisters(a, vs) => {
                self.write_regs(a, &vs)?;
                R::WriteMultipleRegisters(a, vs.len() as u16)
            }
            Q::MaskWriteRegister(a, and, or) => {
                self.check_write(h, a, 1)?;
                let g = self.tables.lock();
                let cur = self.tables.reg(h, a as usize);
                let new = (cur & and) | (or & !and);
                if let Err(r) = self.rules.check_regs(&self.tables, a, &[new]) {
                    drop(g);
                    return Err(self.refuse(r));
                }
                self.tables.client_reg(&g, h, a as usize, new);
                drop(g);
                self.stats.items_written.fetch_add(1, Ordering::Relaxed);
                R::MaskWriteRegister(a, and, or)
            }
            Q::ReadWriteMultipleRegisters(ra, rn, wa, vs) => {
                self.check(h, ra, rn as usize, 125)?;
                self.check_write(h, wa, vs.len())?;
                // The write happens before the read (the specification's order), under
                // one lock so the answer shows exactly this request's effect.
                let g = self.tables.lock();
                if let Err(r) = self.rules.check_regs(&self.tables, wa, &vs) {
                    drop(g);
                    return Err(self.refuse(r));
                }
                for (i, v) in vs.iter().enumerate() {
                    self.tables.client_reg(&g, h, wa as usize + i, *v);
                }
                let out: Vec<u16> = (ra as usize..ra as usize + rn as usize)
                    .map(|i| self.tables.reg(h, i))
                    .collect();
                drop(g);
                self.stats
                    .items_written
                    .fetch_add(vs.len() as u64, Ordering::Relaxed);
                R::ReadWriteMultipleRegisters(out)
            }
            _ => return Err(ExceptionCode::IllegalFunction),
        })
    }
}

impl Service for ConnService {
    type Request = SlaveRequest<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = Ready<Answer>;

    fn call(&self, req: Self::Request) -> Self::Future {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let SlaveRequest { slave, request } = req;
        // The frame guard answers other units already; this keeps the service right on
        // its own.
        if !serves(slave, self.unit_id) {
            self.stats.wrong_unit.fetch_add(1, Ordering::Relaxed);
            self.stats.exception(GATEWAY_TARGET);
            return ready(Err(ExceptionCode::GatewayTargetDevice));
        }
        let answer = self.dispatch(request);
        if let Err(code) = &answer {
            self.stats.exception(u8::from(*code));
        }
        ready(answer)
    }
}
