//! The Modbus service of one connection: reads and writes of the tables, checked
//! against the protocol's limits, the writable tables and the variables' write rules.
//! Runs on the I/O thread.

use std::future::{ready, Ready};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use softplc_core::{IoEventKind, WriteRefused};
use tokio_modbus::prelude::{ExceptionCode, Request, Response, SlaveRequest};
use tokio_modbus::server::Service;

use crate::modbus::Table;

use super::guard::{serves, GATEWAY_TARGET};
use super::rules::{Refusal, WriteRules};
use super::stats::ServerStats;
use super::tables::Tables;
use crate::server::conns::{ConnHandle, Connections};
use crate::server::log::ServerLog;

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
        self.conns.remove(self.handle.id());
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
    /// Keeps a TCP connection counted while the service lives (None on a serial
    /// line); held for its `Drop`.
    #[allow(dead_code)]
    pub slot: Option<ConnSlot>,
    /// Who sends the requests, for messages (`127.0.0.1:40000`, `serial port line1`).
    pub origin: Arc<str>,
}

/// A response or the exception that answers a request.
pub type Answer = Result<Response, ExceptionCode>;

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
        let peer = &self.origin;
        self.log.note(IoEventKind::ClientWriteRefused, || {
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

    /// Serves one request to this server's unit (the caller checked the unit).
    pub fn dispatch(&self, req: Request<'static>) -> Answer {
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
