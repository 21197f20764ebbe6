//! Modbus RTU: the serial-line transport of the client (master) and the RTU server
//! (slave), beside the TCP ones and sharing the rest of `modbus/` with them (tables,
//! encodings, binding, request planning, write rules, quality and age).
//!
//! Files: `frame` (CRC, frame lengths, PDU encoders), `line` (opening a port; the
//! silent interval, counted from the drain), `master` (one request and its answer),
//! `slave` (the RTU server driver and its framing).

pub mod frame;
pub mod line;
pub mod master;
pub mod slave;

pub use line::SerialLine;
pub use master::{LineStats, RtuFail, RtuMaster};
pub use slave::rtu_server;
