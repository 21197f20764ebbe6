//! Answers Modbus requests from the server's tables (runs on the I/O thread).

use std::future::{ready, Ready};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio_modbus::prelude::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_modbus::server::Service;

use crate::config::Table;
use crate::guard::GuardStats;
use crate::tables::Tables;

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
    /// Connections refused because `max_connections` were open.
    pub refused_limit: AtomicU64,
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
}

/// Counts an open connection while it lives.
#[derive(Debug)]
pub struct ConnSlot(pub Arc<ServerStats>);

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The service of one connection.
#[derive(Debug)]
pub struct ConnService {
    /// The tables.
    pub tables: Arc<Tables>,
    /// Unit id served (255 is accepted too; 0 is broadcast: served, not answered).
    pub unit_id: u8,
    /// Tables clients may write, by [`Table::index`].
    pub writable: [bool; 4],
    /// Counters.
    pub stats: Arc<ServerStats>,
    /// Keeps the connection counted.
    pub slot: ConnSlot,
}

type Answer = Result<Option<Response>, ExceptionCode>;

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

    fn write_bits(&self, addr: u16, vals: &[bool]) -> Result<(), ExceptionCode> {
        self.check_write(Table::Coil, addr, vals.len())?;
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
        Ok(Some(match req {
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
                self.tables
                    .client_reg(&g, h, a as usize, (cur & and) | (or & !and));
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
        }))
    }
}

impl Service for ConnService {
    type Request = SlaveRequest<'static>;
    type Response = Option<Response>;
    type Exception = ExceptionCode;
    type Future = Ready<Answer>;

    fn call(&self, req: Self::Request) -> Self::Future {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let SlaveRequest { slave, request } = req;
        let broadcast = slave == 0;
        if !(slave == self.unit_id || slave == 255 || broadcast) {
            self.stats.wrong_unit.fetch_add(1, Ordering::Relaxed);
            self.stats.exception(0x0B);
            return ready(Err(ExceptionCode::GatewayTargetDevice));
        }
        let answer = self.dispatch(request);
        if let Err(code) = &answer {
            self.stats.exception(u8::from(*code));
        }
        if broadcast {
            // Broadcasts are carried out but never answered.
            return ready(Ok(None));
        }
        ready(answer)
    }
}
