//! The serial (Modbus RTU) part of the configuration file: `[[port]]` tables, devices
//! on a port (`serial = "NAME"` instead of `host`), and `[[rtu_server]]` tables. Kept
//! apart from the TCP parsing so that each protocol's checks stay in one place.
//!
//! ```toml
//! [[port]]
//! name = "line1"
//! path = "/dev/ttyUSB0"
//! baud = 19200
//! parity = "even"        # none | even | odd
//! data_bits = 8
//! stop_bits = 1
//!
//! [[device]]
//! name = "meter"
//! serial = "line1"
//! unit_id = 3
//! ...
//!
//! [[rtu_server]]
//! port = "line2"
//! unit_id = 1
//! ```

use std::collections::HashMap;

use serde::Deserialize;
use softplc_core::ConfigError;
use toml::Spanned;

use crate::modbus::{Table, WordOrder};

use super::model::{DeviceConfig, Parity, RtuServerConfig, SerialPortConfig};
use super::parse::{int_in, ms, point_for_server, RawPoint};
use super::source::{Loc, Source};

/// `[[port]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPort {
    name: Spanned<String>,
    path: Spanned<String>,
    baud: Option<Spanned<i64>>,
    parity: Option<Spanned<String>>,
    data_bits: Option<Spanned<i64>>,
    stop_bits: Option<Spanned<i64>>,
    turnaround_ms: Option<Spanned<i64>>,
}

/// `[[rtu_server]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRtuServer {
    port: Spanned<String>,
    unit_id: Option<Spanned<i64>>,
    read_only: Option<Spanned<Vec<String>>>,
    strict_map: Option<bool>,
    #[serde(default)]
    map: Vec<Spanned<RawPoint>>,
}

/// Baud rates a serial port can be set to: the POSIX/Linux standard rates (Linux
/// accepts others through BOTHER, but USB adapters and slaves rarely do, and an odd
/// number here is far more often a typo).
const BAUDS: [u32; 23] = [
    300, 600, 1200, 1800, 2400, 4800, 9600, 14_400, 19_200, 28_800, 38_400, 57_600, 76_800,
    115_200, 230_400, 460_800, 500_000, 576_000, 921_600, 1_000_000, 1_500_000, 2_000_000,
    3_000_000,
];

/// Checks the `[[port]]` tables.
pub(super) fn ports(
    src: &Source<'_>,
    raw: Vec<Spanned<RawPort>>,
) -> Result<Vec<SerialPortConfig>, ConfigError> {
    let mut out: Vec<SerialPortConfig> = Vec::new();
    for (i, p) in raw.into_iter().enumerate() {
        let loc = src.loc(&p.span());
        let p = p.into_inner();
        let name = p.name.get_ref().trim().to_string();
        let what = format!("port #{}", i + 1);
        if name.is_empty() {
            return Err(src.loc(&p.name.span()).error(
                &what,
                "name",
                "a port name must not be empty",
            ));
        }
        let what = format!("port {name:?}");
        if let Some(first) = out.iter().find(|q| q.name == name) {
            return Err(src.loc(&p.name.span()).error(
                &what,
                "name",
                format!("duplicate port name (first declared at {})", first.loc),
            ));
        }
        let path = p.path.get_ref().trim().to_string();
        if path.is_empty() {
            return Err(src.loc(&p.path.span()).error(
                &what,
                "path",
                "the device path must not be empty",
            ));
        }
        if let Some(first) = out.iter().find(|q| q.path == path) {
            return Err(src.loc(&p.path.span()).error(
                &what,
                "path",
                format!(
                    "{path:?} is already port {:?} (declared at {}): devices and servers on one line share one [[port]]",
                    first.name, first.loc
                ),
            ));
        }
        let baud = match &p.baud {
            None => 19_200,
            Some(b) => {
                let x = *b.get_ref();
                match u32::try_from(x) {
                    Ok(v) if BAUDS.contains(&v) => v,
                    _ => {
                        return Err(src.loc(&b.span()).error(
                            &what,
                            "baud",
                            format!("{x} is not a serial baud rate (expected one of {BAUDS:?})"),
                        ))
                    }
                }
            }
        };
        let parity = match &p.parity {
            None => Parity::Even,
            Some(s) => match s.get_ref().to_ascii_lowercase().as_str() {
                "none" | "n" => Parity::None,
                "even" | "e" => Parity::Even,
                "odd" | "o" => Parity::Odd,
                other => {
                    return Err(src.loc(&s.span()).error(
                        &what,
                        "parity",
                        format!(
                            "unknown parity {other:?} (expected \"none\", \"even\" or \"odd\")"
                        ),
                    ))
                }
            },
        };
        let data_bits = int_in(src, &what, "data_bits", &p.data_bits, 7..=8, 8)? as u8;
        let stop_bits = int_in(src, &what, "stop_bits", &p.stop_bits, 1..=2, 1)? as u8;
        let turnaround = int_in(
            src,
            &what,
            "turnaround_ms",
            &p.turnaround_ms,
            0..=10_000,
            20,
        )?;
        out.push(SerialPortConfig {
            name,
            path,
            baud,
            parity,
            data_bits,
            stop_bits,
            turnaround: ms(turnaround),
            loc,
        });
    }
    Ok(out)
}

/// The port a device's `serial` key names.
pub(super) fn device_port(
    src: &Source<'_>,
    what: &str,
    serial: &Spanned<String>,
    ports: &[SerialPortConfig],
) -> Result<SerialPortConfig, ConfigError> {
    let name = serial.get_ref().trim();
    ports
        .iter()
        .find(|p| p.name == name)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
            src.loc(&serial.span()).error(
                what,
                "serial",
                if known.is_empty() {
                    format!(
                        "no [[port]] named {name:?}: declare the serial port in a [[port]] table"
                    )
                } else {
                    format!("no [[port]] named {name:?} (ports: {})", known.join(", "))
                },
            )
        })
}

/// Checks what only serial devices need: unit ids valid on a serial line and unique
/// per port, and broadcast devices that only write.
pub(super) fn check_serial_devices(devices: &[DeviceConfig]) -> Result<(), ConfigError> {
    let mut seen: HashMap<(String, u8), &DeviceConfig> = HashMap::new();
    for d in devices {
        let Some(port) = &d.serial else {
            continue;
        };
        let what = format!("device {:?}", d.name);
        if d.unit_id > 247 {
            return Err(d.loc.error(
                &what,
                "unit_id",
                format!(
                    "{} is not a Modbus RTU slave address (1..=247, or 0 to broadcast writes)",
                    d.unit_id
                ),
            ));
        }
        if d.unit_id == 0 && !d.reads.is_empty() {
            return Err(d.reads[0].loc.error(
                &d.reads[0].what,
                "table",
                "unit 0 is the broadcast address: nobody answers it, so a broadcast device can only have writes",
            ));
        }
        if d.unit_id == 0 && d.health_var.is_some() {
            return Err(d.loc.error(
                &what,
                "health_var",
                "a broadcast device (unit 0) gets no answers: it has no health to report",
            ));
        }
        if let Some(first) = seen.insert((port.name.clone(), d.unit_id), d) {
            return Err(d.loc.error(
                &what,
                "unit_id",
                format!(
                    "unit {} on port {:?} is already device {:?} (declared at {}): two slaves on one line need different addresses",
                    d.unit_id, port.name, first.name, first.loc
                ),
            ));
        }
    }
    Ok(())
}

/// Checks the `[[rtu_server]]` tables.
pub(super) fn rtu_servers(
    src: &Source<'_>,
    raw: Vec<Spanned<RawRtuServer>>,
    ports: &[SerialPortConfig],
    devices: &[DeviceConfig],
) -> Result<Vec<RtuServerConfig>, ConfigError> {
    let mut out: Vec<RtuServerConfig> = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let loc = src.loc(&s.span());
        let s = s.into_inner();
        let what = format!("rtu_server #{}", i + 1);
        let port = device_port(src, &what, &s.port, ports)
            .map_err(|e| ConfigError::new(e.message.replace("key `serial`", "key `port`")))?;
        if let Some(d) = devices
            .iter()
            .find(|d| d.serial.as_ref().is_some_and(|p| p.name == port.name))
        {
            return Err(src.loc(&s.port.span()).error(
                &what,
                "port",
                format!(
                    "port {:?} is polled as a master for device {:?}: one line has one master, so softplc cannot also be a slave on it",
                    port.name, d.name
                ),
            ));
        }
        if let Some(first) = out.iter().find(|o| o.port.name == port.name) {
            return Err(src.loc(&s.port.span()).error(
                &what,
                "port",
                format!(
                    "port {:?} already has an rtu_server (declared at {})",
                    port.name, first.loc
                ),
            ));
        }
        let unit_id = int_in(src, &what, "unit_id", &s.unit_id, 1..=247, 1)? as u8;
        let mut read_only = [false; 4];
        if let Some(r) = &s.read_only {
            for text in r.get_ref() {
                let t = Table::parse(text).ok_or_else(|| {
                    src.loc(&r.span())
                        .error(&what, "read_only", format!("unknown table {text:?}"))
                })?;
                read_only[t.index()] = true;
            }
        }
        let mut map = Vec::new();
        for (j, p) in s.map.into_iter().enumerate() {
            let pwhat = format!("{what} map #{}", j + 1);
            map.push(point_for_server(src, &pwhat, p, WordOrder::Abcd)?);
        }
        out.push(RtuServerConfig {
            port,
            unit_id,
            read_only,
            strict_map: s.strict_map.unwrap_or(false),
            map,
            loc,
        });
    }
    Ok(out)
}

/// Where a device declared nothing of its endpoint (neither `host` nor `serial`).
pub(super) fn no_endpoint(loc: &Loc, what: &str) -> ConfigError {
    loc.error(
        what,
        "host",
        "missing: give `host` (Modbus TCP) or `serial` (a [[port]] name, Modbus RTU)",
    )
}
