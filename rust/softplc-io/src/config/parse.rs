//! Parsing the configuration file: the raw TOML structure, then every check that can
//! be made without the program (keys, ranges, tables, orders), each error naming file,
//! line, column and key.
//!
//! The document is parsed once into spanned TOML values; the XGT parts
//! (`[[device]]` tables with `protocol = "xgt"`, `[server.xgt]`) are taken out of it by
//! [`super::xgt`] and the rest is the Modbus configuration read here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use softplc_core::ConfigError;
use toml::de::DeTable;
use toml::Spanned;

use crate::modbus::{RegType, Table, WordOrder};
use crate::net::IpNet;

use super::model::{
    DeviceConfig, IoConfig, OnFail, PointConfig, SerialPortConfig, ServerConfig, WriteMode,
};
use super::opcua::{parse_opcua, RawOpcua};
use super::serial::{self, RawPort, RawRtuServer};
use super::source::{Loc, Source};
use super::xgt;

// ---------------------------------------------------------------------------------
// Raw TOML structure. Optional keys are `Option<Spanned<_>>` so that a value's
// position is at hand for messages; integers are read as i64 and range-checked here
// so that the message can say which range applies.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    device: Vec<Spanned<RawDevice>>,
    server: Option<Spanned<RawServer>>,
    // Serial lines: see `super::serial`.
    #[serde(default)]
    port: Vec<Spanned<RawPort>>,
    #[serde(default)]
    rtu_server: Vec<Spanned<RawRtuServer>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Spanned<String>,
    host: Option<Spanned<String>>,
    /// A `[[port]]` name: the device is on a serial line (see `super::serial`).
    serial: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    unit_id: Option<Spanned<i64>>,
    poll_ms: Option<Spanned<i64>>,
    timeout_ms: Option<Spanned<i64>>,
    retries: Option<Spanned<i64>>,
    reconnect_min_ms: Option<Spanned<i64>>,
    reconnect_max_ms: Option<Spanned<i64>>,
    byte_order: Option<Spanned<String>>,
    fail_after: Option<Spanned<i64>>,
    on_fail: Option<Spanned<String>>,
    stale_ms: Option<Spanned<i64>>,
    max_gap: Option<Spanned<i64>>,
    write_mode: Option<Spanned<String>>,
    write_check_ms: Option<Spanned<i64>>,
    health_var: Option<Spanned<String>>,
    #[serde(default)]
    read: Vec<Spanned<RawPoint>>,
    #[serde(default)]
    write: Vec<Spanned<RawPoint>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPoint {
    var: Option<Spanned<String>>,
    vars: Option<Spanned<Vec<String>>>,
    table: Spanned<String>,
    address: Spanned<i64>,
    #[serde(rename = "type")]
    ty: Option<Spanned<String>>,
    byte_order: Option<Spanned<String>>,
    scale: Option<Spanned<f64>>,
    offset: Option<Spanned<f64>>,
    bit: Option<Spanned<i64>>,
    substitute: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    unit_id: Option<Spanned<i64>>,
    allow: Option<Spanned<Vec<String>>>,
    read_only: Option<Spanned<Vec<String>>>,
    max_connections: Option<Spanned<i64>>,
    idle_timeout_ms: Option<Spanned<i64>>,
    strict_map: Option<bool>,
    #[serde(default)]
    map: Vec<Spanned<RawPoint>>,
    /// `[server.opcua]`: the OPC UA server (see [`super::opcua`]).
    opcua: Option<Spanned<RawOpcua>>,
}

impl RawServer {
    /// True when the table has a Modbus key of its own (a `[server]` table that only
    /// holds `[server.opcua]` configures no Modbus server).
    fn has_modbus_keys(&self) -> bool {
        self.listen.is_some()
            || self.unit_id.is_some()
            || self.allow.is_some()
            || self.read_only.is_some()
            || self.max_connections.is_some()
            || self.idle_timeout_ms.is_some()
            || !self.map.is_empty()
    }
}

/// True when the text has a `[name]` table header line (not an implicit parent table).
fn has_header(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l.strip_prefix('[')
            .and_then(|r| r.split('#').next())
            .map(|r| r.trim_end().strip_suffix(']').map(str::trim) == Some(name))
            .unwrap_or(false)
    })
}

/// Reads and checks a configuration file.
pub fn load(path: &Path) -> Result<IoConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(format!(
            "{}: cannot read the I/O configuration: {e}",
            path.display()
        ))
    })?;
    parse(&path.display().to_string(), &text)
}

/// A TOML error (syntax, or a value of the wrong shape) as a configuration error
/// naming file, line, column and key.
pub(super) fn toml_error(src: &Source<'_>, e: &toml::de::Error) -> ConfigError {
    let span = e.span().unwrap_or(0..0);
    let loc = src.loc(&span);
    let msg = e.message().trim().to_string();
    match src.key_at(&span) {
        Some(key) if !msg.contains(&format!("`{key}`")) => {
            ConfigError::new(format!("{loc}: key `{key}`: {msg}"))
        }
        _ => ConfigError::new(format!("{loc}: {msg}")),
    }
}

/// Parses and checks configuration text; `file` names it in messages.
pub fn parse(file: &str, text: &str) -> Result<IoConfig, ConfigError> {
    let src = Source::new(file, text);
    let mut root = DeTable::parse(text).map_err(|e| toml_error(&src, &e))?;
    let xgt_parts = xgt::take(&src, root.get_mut())?;
    let raw = RawFile::deserialize(toml::de::Deserializer::from(root))
        .map_err(|e| toml_error(&src, &e))?;
    let ports = serial::ports(&src, raw.port)?;
    let mut devices = Vec::new();
    // Device names are unique across protocols: events and status name devices by them.
    let mut names: HashMap<String, Loc> = HashMap::new();
    let modbus_at = xgt_parts.modbus_positions();
    for (i, d) in raw.device.into_iter().enumerate() {
        let loc = src.loc(&d.span());
        let dev = device(&src, modbus_at[i], loc, d.into_inner(), &ports)?;
        if let Some(first) = names.get(&dev.name) {
            return Err(dev.loc.error(
                &format!("device #{}", modbus_at[i] + 1),
                "name",
                format!(
                    "duplicate device name {:?} (first declared at {first})",
                    dev.name
                ),
            ));
        }
        names.insert(dev.name.clone(), dev.loc.clone());
        devices.push(dev);
    }
    let (xgt_devices, xgt_server) = xgt_parts.finish(&mut names)?;
    // Devices behind one gateway share a connection, so they must agree on how it is
    // re-established.
    let mut endpoints: HashMap<String, &DeviceConfig> = HashMap::new();
    for d in &devices {
        if let Some(first) = endpoints.get(&d.endpoint()) {
            if (first.reconnect_min, first.reconnect_max) != (d.reconnect_min, d.reconnect_max) {
                return Err(d.loc.error(
                    &format!("device {:?}", d.name),
                    "reconnect_min_ms",
                    format!(
                        "devices {:?} and {:?} share the connection {} and must use the same reconnect back-off",
                        first.name,
                        d.name,
                        d.endpoint()
                    ),
                ));
            }
        } else {
            endpoints.insert(d.endpoint(), d);
        }
    }
    serial::check_serial_devices(&devices)?;
    let rtu_servers = serial::rtu_servers(&src, raw.rtu_server, &ports, &devices)?;
    let (server, opcua) = match raw.server {
        None => (None, None),
        Some(s) => {
            let loc = src.loc(&s.span());
            let mut s = s.into_inner();
            let opcua = s.opcua.take().map(|o| parse_opcua(&src, o)).transpose()?;
            let modbus = if s.has_modbus_keys() || has_header(text, "server") {
                Some(server(&src, loc, s)?)
            } else {
                None
            };
            (modbus, opcua)
        }
    };
    Ok(IoConfig {
        file: src.file.clone(),
        devices,
        server,
        ports,
        rtu_servers,
        xgt_devices,
        xgt_server,
        opcua,
    })
}

pub(super) fn int_in(
    src: &Source<'_>,
    what: &str,
    key: &str,
    v: &Option<Spanned<i64>>,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<i64, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => {
            let x = *s.get_ref();
            if range.contains(&x) {
                Ok(x)
            } else {
                Err(src.loc(&s.span()).error(
                    what,
                    key,
                    format!("{x} is out of range {}..={}", range.start(), range.end()),
                ))
            }
        }
    }
}

pub(super) fn ms(x: i64) -> Duration {
    Duration::from_millis(x as u64)
}

fn order_of(
    src: &Source<'_>,
    what: &str,
    v: &Option<Spanned<String>>,
    default: WordOrder,
) -> Result<WordOrder, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => WordOrder::parse(s.get_ref()).ok_or_else(|| {
            src.loc(&s.span()).error(
                what,
                "byte_order",
                format!(
                    "unknown order {:?} (expected ABCD, CDAB, BADC or DCBA)",
                    s.get_ref()
                ),
            )
        }),
    }
}

/// Why `host` is not a host name or an IP address (a port or brackets in it), if so.
pub(super) fn host_problem(host: &str) -> Option<String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    if host.starts_with('[') || host.contains(':') {
        let hint = match host.rsplit_once(':') {
            Some((h, p)) if p.parse::<u32>().is_ok() && !h.contains(':') => {
                format!(" (write host = {h:?} and port = {p})")
            }
            _ => " (an IPv6 address goes without brackets)".to_string(),
        };
        return Some(format!(
            "invalid host {host:?}: a host name or IP address, without a port{hint}"
        ));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if host.len() > 253 || !host.trim_end_matches('.').split('.').all(label_ok) {
        return Some(format!(
            "invalid host {host:?}: not a host name or IP address"
        ));
    }
    None
}

fn device(
    src: &Source<'_>,
    i: usize,
    loc: Loc,
    d: RawDevice,
    ports: &[SerialPortConfig],
) -> Result<DeviceConfig, ConfigError> {
    let name = d.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(src.loc(&d.name.span()).error(
            &format!("device #{}", i + 1),
            "name",
            "a device name must not be empty",
        ));
    }
    let what = format!("device {name:?}");
    let (host, serial) = match (&d.host, &d.serial) {
        (Some(h), None) => (tcp_host(src, &what, h)?, None),
        (None, Some(s)) => {
            if let Some(p) = &d.port {
                return Err(src.loc(&p.span()).error(
                    &what,
                    "port",
                    "a serial device has no TCP port: its line settings are in its [[port]]",
                ));
            }
            (
                String::new(),
                Some(serial::device_port(src, &what, s, ports)?),
            )
        }
        (Some(_), Some(s)) => {
            return Err(src.loc(&s.span()).error(
                &what,
                "serial",
                "give either `host` (Modbus TCP) or `serial` (Modbus RTU), not both",
            ))
        }
        (None, None) => return Err(serial::no_endpoint(&loc, &what)),
    };
    let port = int_in(src, &what, "port", &d.port, 1..=65535, 502)? as u16;
    // On Modbus TCP, 0 is not a broadcast: it addresses the device itself, as 255 does.
    let unit_id = int_in(src, &what, "unit_id", &d.unit_id, 0..=255, 1)? as u8;
    let poll_ms = int_in(src, &what, "poll_ms", &d.poll_ms, 1..=3_600_000, 100)?;
    let timeout_ms = int_in(src, &what, "timeout_ms", &d.timeout_ms, 1..=600_000, 1000)?;
    let retries = int_in(src, &what, "retries", &d.retries, 0..=10, 1)? as u32;
    let rmin = int_in(
        src,
        &what,
        "reconnect_min_ms",
        &d.reconnect_min_ms,
        1..=3_600_000,
        100,
    )?;
    let rmax = int_in(
        src,
        &what,
        "reconnect_max_ms",
        &d.reconnect_max_ms,
        1..=3_600_000,
        5000.max(rmin),
    )?;
    if rmax < rmin {
        let span = d
            .reconnect_max_ms
            .as_ref()
            .map(|s| s.span())
            .unwrap_or(0..0);
        return Err(src.loc(&span).error(
            &what,
            "reconnect_max_ms",
            format!("{rmax} is less than reconnect_min_ms = {rmin}"),
        ));
    }
    let order = order_of(src, &what, &d.byte_order, WordOrder::Abcd)?;
    let fail_after = int_in(src, &what, "fail_after", &d.fail_after, 1..=1_000_000, 3)? as u32;
    let on_fail = on_fail_of(src, &what, &d.on_fail)?;
    let stale_ms = int_in(
        src,
        &what,
        "stale_ms",
        &d.stale_ms,
        1..=86_400_000,
        2 * poll_ms + timeout_ms,
    )?;
    let max_gap = int_in(src, &what, "max_gap", &d.max_gap, 0..=124, 0)? as u16;
    let write_mode = write_mode_of(src, &what, &d.write_mode)?;
    let write_check_ms = int_in(
        src,
        &what,
        "write_check_ms",
        &d.write_check_ms,
        1..=60_000,
        5.min(poll_ms),
    )?;
    let health_var = health_var_of(src, &what, &d.health_var)?;
    let mut reads = Vec::new();
    for (j, p) in d.read.into_iter().enumerate() {
        let pwhat = format!("{what} read #{}", j + 1);
        reads.push(point(src, &pwhat, p, order, PointUse::Read)?);
    }
    let mut writes = Vec::new();
    for (j, p) in d.write.into_iter().enumerate() {
        let pwhat = format!("{what} write #{}", j + 1);
        writes.push(point(src, &pwhat, p, order, PointUse::Write)?);
    }
    if reads.is_empty() && writes.is_empty() {
        return Err(loc.error(
            &what,
            "read",
            "the device maps nothing: add [[device.read]] or [[device.write]] entries",
        ));
    }
    if on_fail == OnFail::Keep {
        if let Some(p) = reads.iter().find(|p| p.substitute.is_some()) {
            return Err(p.loc.error(
                &p.what,
                "substitute",
                format!("a substitute is given but {what} has on_fail = \"keep\"; set on_fail = \"substitute\""),
            ));
        }
    }
    Ok(DeviceConfig {
        name,
        serial,
        host,
        port,
        unit_id,
        poll: ms(poll_ms),
        timeout: ms(timeout_ms),
        retries,
        reconnect_min: ms(rmin),
        reconnect_max: ms(rmax),
        order,
        fail_after,
        on_fail,
        stale: ms(stale_ms),
        max_gap,
        write_mode,
        write_check: ms(write_check_ms),
        health_var,
        reads,
        writes,
        loc,
    })
}

/// A device's `host`, checked.
fn tcp_host(src: &Source<'_>, what: &str, h: &Spanned<String>) -> Result<String, ConfigError> {
    let host = h.get_ref().trim().to_string();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(src.loc(&h.span()).error(
            what,
            "host",
            format!("invalid host {:?}", h.get_ref()),
        ));
    }
    if let Some(why) = host_problem(&host) {
        return Err(src.loc(&h.span()).error(what, "host", why));
    }
    Ok(host)
}

/// A server map entry (TCP or RTU server).
pub(super) fn point_for_server(
    src: &Source<'_>,
    what: &str,
    p: Spanned<RawPoint>,
    order: WordOrder,
) -> Result<PointConfig, ConfigError> {
    point(src, what, p, order, PointUse::Server)
}

/// The `on_fail` policy of a device.
pub(super) fn on_fail_of(
    src: &Source<'_>,
    what: &str,
    v: &Option<Spanned<String>>,
) -> Result<OnFail, ConfigError> {
    match v {
        None => Ok(OnFail::Keep),
        Some(s) => match s.get_ref().as_str() {
            "keep" => Ok(OnFail::Keep),
            "substitute" => Ok(OnFail::Substitute),
            other => Err(src.loc(&s.span()).error(
                what,
                "on_fail",
                format!("unknown policy {other:?} (expected \"keep\" or \"substitute\")"),
            )),
        },
    }
}

/// The `write_mode` of a device.
pub(super) fn write_mode_of(
    src: &Source<'_>,
    what: &str,
    v: &Option<Spanned<String>>,
) -> Result<WriteMode, ConfigError> {
    match v {
        None => Ok(WriteMode::OnChange),
        Some(s) => match s.get_ref().as_str() {
            "on_change" => Ok(WriteMode::OnChange),
            "every_poll" => Ok(WriteMode::EveryPoll),
            other => Err(src.loc(&s.span()).error(
                what,
                "write_mode",
                format!("unknown write mode {other:?} (expected \"on_change\" or \"every_poll\")"),
            )),
        },
    }
}

/// The `health_var` of a device, with where it is named.
pub(super) fn health_var_of(
    src: &Source<'_>,
    what: &str,
    v: &Option<Spanned<String>>,
) -> Result<Option<(String, Loc)>, ConfigError> {
    match v {
        None => Ok(None),
        Some(v) if v.get_ref().trim().is_empty() => {
            Err(src
                .loc(&v.span())
                .error(what, "health_var", "the variable name must not be empty"))
        }
        Some(v) => Ok(Some((v.get_ref().trim().to_string(), src.loc(&v.span())))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PointUse {
    Read,
    Write,
    Server,
}

fn point(
    src: &Source<'_>,
    what: &str,
    p: Spanned<RawPoint>,
    default_order: WordOrder,
    usage: PointUse,
) -> Result<PointConfig, ConfigError> {
    let ploc = src.loc(&p.span());
    let p = p.into_inner();
    let (vars, vloc) = match (&p.var, &p.vars) {
        (Some(v), None) => (vec![v.get_ref().trim().to_string()], src.loc(&v.span())),
        (None, Some(vs)) => (
            vs.get_ref().iter().map(|v| v.trim().to_string()).collect(),
            src.loc(&vs.span()),
        ),
        (Some(v), Some(_)) => {
            return Err(src.loc(&v.span()).error(
                what,
                "var",
                "give either `var` or `vars`, not both",
            ))
        }
        (None, None) => {
            return Err(ploc.error(
                what,
                "var",
                "missing: name the variable with `var = \"...\"`",
            ))
        }
    };
    if vars.is_empty() || vars.iter().any(|v| v.is_empty()) {
        return Err(vloc.error(what, "vars", "variable names must not be empty"));
    }
    let table = Table::parse(p.table.get_ref()).ok_or_else(|| {
        src.loc(&p.table.span()).error(
            what,
            "table",
            format!(
                "unknown table {:?} (expected coil, discrete_input, input_register or holding_register)",
                p.table.get_ref()
            ),
        )
    })?;
    if usage == PointUse::Write && !table.is_writable() {
        return Err(src.loc(&p.table.span()).error(
            what,
            "table",
            format!("{table}s are read-only in Modbus; a device's outputs are coils or holding registers"),
        ));
    }
    let address = {
        let a = *p.address.get_ref();
        if !(0..=65535).contains(&a) {
            return Err(src.loc(&p.address.span()).error(
                what,
                "address",
                format!("{a} is out of range 0..=65535"),
            ));
        }
        a as u16
    };
    let reg = match &p.ty {
        None => None,
        Some(s) => {
            let r = RegType::parse(s.get_ref()).ok_or_else(|| {
                src.loc(&s.span()).error(
                    what,
                    "type",
                    format!(
                        "unknown type {:?} (expected BOOL, INT, UINT, WORD, DINT, UDINT, DWORD, LINT, ULINT, LWORD, REAL or LREAL)",
                        s.get_ref()
                    ),
                )
            })?;
            if table.is_bits() && r != RegType::Bool {
                return Err(src.loc(&s.span()).error(
                    what,
                    "type",
                    format!("{table}s hold single bits: the type must be BOOL"),
                ));
            }
            Some(r)
        }
    };
    let order = order_of(src, what, &p.byte_order, default_order)?;
    let finite = |v: &Option<Spanned<f64>>, key: &str, default: f64| -> Result<f64, ConfigError> {
        match v {
            None => Ok(default),
            Some(s) => {
                let x = *s.get_ref();
                if !x.is_finite() || (key == "scale" && x == 0.0) {
                    return Err(src.loc(&s.span()).error(
                        what,
                        key,
                        format!(
                            "{x} is not allowed (a finite{} number is needed)",
                            if key == "scale" { ", non-zero" } else { "" }
                        ),
                    ));
                }
                if table.is_bits() {
                    return Err(src.loc(&s.span()).error(
                        what,
                        key,
                        format!("{table}s hold bits: they cannot be scaled"),
                    ));
                }
                Ok(x)
            }
        }
    };
    let scale = finite(&p.scale, "scale", 1.0)?;
    let offset = finite(&p.offset, "offset", 0.0)?;
    let bit = match &p.bit {
        None => None,
        Some(s) => {
            let b = *s.get_ref();
            let bloc = src.loc(&s.span());
            if table.is_bits() {
                return Err(bloc.error(
                    what,
                    "bit",
                    format!("`bit` selects a bit of a register; {table}s are bits already"),
                ));
            }
            if usage != PointUse::Read {
                return Err(bloc.error(
                    what,
                    "bit",
                    "`bit` is only for reading: writing one bit would overwrite the rest of the register",
                ));
            }
            if !(0..=15).contains(&b) {
                return Err(bloc.error(what, "bit", format!("{b} is out of range 0..=15")));
            }
            if let Some(r) = reg {
                if r.words() != 1 {
                    return Err(bloc.error(
                        what,
                        "bit",
                        format!("`bit` needs a one-register type, not {r}"),
                    ));
                }
            }
            if p.scale.is_some() || p.offset.is_some() {
                return Err(bloc.error(what, "bit", "a bit cannot be scaled"));
            }
            Some(b as u8)
        }
    };
    let substitute = match &p.substitute {
        None => None,
        Some(s) => {
            let sloc = src.loc(&s.span());
            if usage != PointUse::Read {
                return Err(sloc.error(
                    what,
                    "substitute",
                    "only read mappings have substitute values",
                ));
            }
            Some(match s.get_ref() {
                toml::Value::Integer(i) => *i as f64,
                toml::Value::Float(f) if f.is_finite() => *f,
                toml::Value::Boolean(b) => *b as u8 as f64,
                other => {
                    return Err(sloc.error(
                        what,
                        "substitute",
                        format!("expected a number or a boolean, found {other}"),
                    ))
                }
            })
        }
    };
    Ok(PointConfig {
        vars,
        table,
        address,
        reg,
        order,
        scale,
        offset,
        bit,
        substitute,
        loc: vloc,
        what: what.to_string(),
    })
}

fn server(src: &Source<'_>, loc: Loc, s: RawServer) -> Result<ServerConfig, ConfigError> {
    let what = "server";
    let listen = match &s.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 502)),
        Some(l) => {
            parse_listen(l.get_ref()).map_err(|m| src.loc(&l.span()).error(what, "listen", m))?
        }
    };
    let unit_id = int_in(src, what, "unit_id", &s.unit_id, 1..=255, 1)? as u8;
    let allow = allow_of(src, what, &s.allow)?;
    let mut read_only = [false; 4];
    if let Some(r) = &s.read_only {
        for text in r.get_ref() {
            let t = Table::parse(text).ok_or_else(|| {
                src.loc(&r.span())
                    .error(what, "read_only", format!("unknown table {text:?}"))
            })?;
            read_only[t.index()] = true;
        }
    }
    let max_connections = int_in(
        src,
        what,
        "max_connections",
        &s.max_connections,
        1..=1024,
        16,
    )? as usize;
    let idle = int_in(
        src,
        what,
        "idle_timeout_ms",
        &s.idle_timeout_ms,
        0..=86_400_000,
        60_000,
    )?;
    let mut map = Vec::new();
    for (j, p) in s.map.into_iter().enumerate() {
        let pwhat = format!("server map #{}", j + 1);
        map.push(point(src, &pwhat, p, WordOrder::Abcd, PointUse::Server)?);
    }
    Ok(ServerConfig {
        listen,
        unit_id,
        allow,
        read_only,
        max_connections,
        idle_timeout: (idle > 0).then(|| ms(idle)),
        strict_map: s.strict_map.unwrap_or(false),
        map,
        serial: None,
        loc,
    })
}

/// A server's client allowlist.
pub(super) fn allow_of(
    src: &Source<'_>,
    what: &str,
    v: &Option<Spanned<Vec<String>>>,
) -> Result<Vec<IpNet>, ConfigError> {
    let mut allow = Vec::new();
    if let Some(a) = v {
        for text in a.get_ref() {
            allow.push(IpNet::parse(text).ok_or_else(|| {
                src.loc(&a.span()).error(
                    what,
                    "allow",
                    format!(
                        "{text:?} is not an IP address or network (like 127.0.0.1 or 10.0.0.0/8)"
                    ),
                )
            })?);
        }
    }
    Ok(allow)
}

/// Parses a listen address: `HOST:PORT` with an IP address or `localhost`, `[v6]:PORT`,
/// or a bare port (which listens on 127.0.0.1).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(port) = t.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = t.strip_prefix("localhost:") {
        if let Ok(p) = port.parse::<u16>() {
            return Ok(SocketAddr::from(([127, 0, 0, 1], p)));
        }
    }
    Err(format!(
        "{t:?} is not a listen address (expected IP:PORT such as 127.0.0.1:5020, or a port)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[device]]
name = "pumps"
host = "127.0.0.1"
port = 5020
poll_ms = 50

[[device.read]]
var = "level"
table = "input_register"
address = 0
type = "INT"
scale = 0.1

[[device.write]]
vars = ["p1", "p2"]
table = "coil"
address = 0

[[device]]
name = "meter"
host = "127.0.0.1"
port = 5020
unit_id = 2

[[device.read]]
var = "power"
table = "holding"
address = 100
type = "REAL"
byte_order = "CDAB"

[server]
listen = "127.0.0.1:0"
allow = ["127.0.0.1", "10.0.0.0/8"]
read_only = ["holding_register"]
"#;

    #[test]
    fn a_full_file_parses_with_defaults_filled_in() {
        let c = parse("t.toml", GOOD).unwrap();
        assert_eq!(c.devices.len(), 2);
        let d = &c.devices[0];
        assert_eq!(
            (d.port, d.unit_id, d.poll),
            (5020, 1, Duration::from_millis(50))
        );
        assert_eq!(d.timeout, Duration::from_millis(1000));
        assert_eq!(d.stale, Duration::from_millis(1100));
        assert_eq!(d.writes[0].vars, vec!["p1", "p2"]);
        assert_eq!(d.reads[0].scale, 0.1);
        assert_eq!(c.devices[1].reads[0].order, WordOrder::Cdab);
        assert_eq!(c.devices[1].reads[0].table, Table::HoldingRegister);
        let s = c.server.unwrap();
        assert!(s.read_only[Table::HoldingRegister.index()]);
        assert!(s.allow[1].contains("10.1.2.3".parse().unwrap()));
        assert!(!s.allow[1].contains("11.1.2.3".parse().unwrap()));
    }

    fn err(text: &str) -> String {
        parse("f.toml", text).unwrap_err().message
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = err("[[device]]\nname = \"a\"\nhost = \"h\"\nport = 70000\n");
        assert!(
            e.starts_with("f.toml:4:8:") && e.contains("`port`") && e.contains("1..=65535"),
            "{e}"
        );
        let e = err("[[device]]\nname = \"a\"\nhots = \"h\"\n");
        assert!(e.starts_with("f.toml:3:") && e.contains("hots"), "{e}");
        let e = err("[[device]]\nname = \"a\"\nhost = \"h\"\n[[device.read]]\nvar = \"x\"\ntable = \"holdin\"\naddress = 1\n");
        assert!(
            e.starts_with("f.toml:6:9:") && e.contains("`table`") && e.contains("holdin"),
            "{e}"
        );
        let e = err("[[device]]\nname = \"a\"\nhost = \"h\"\nport = \"x\"\n");
        assert!(e.starts_with("f.toml:4:") && e.contains("port"), "{e}");
    }

    #[test]
    fn writing_a_read_only_table_is_rejected() {
        let e = err("[[device]]\nname = \"a\"\nhost = \"h\"\n[[device.write]]\nvar = \"x\"\ntable = \"input_register\"\naddress = 1\n");
        assert!(e.contains("read-only") && e.contains("write #1"), "{e}");
    }

    #[test]
    fn devices_sharing_a_gateway_must_agree_on_back_off() {
        let e = err(
            "[[device]]\nname = \"a\"\nhost = \"h\"\n[[device.read]]\nvar = \"x\"\ntable = \"coil\"\naddress = 1\n\
             [[device]]\nname = \"b\"\nhost = \"h\"\nreconnect_min_ms = 7\n[[device.read]]\nvar = \"y\"\ntable = \"coil\"\naddress = 2\n",
        );
        assert!(e.contains("share the connection"), "{e}");
    }

    #[test]
    fn duplicate_names_point_at_the_first() {
        let dev = "[[device]]\nname = \"a\"\nhost = \"h\"\n[[device.read]]\nvar = \"x\"\ntable = \"coil\"\naddress = 1\n";
        let e = err(&format!("{dev}{dev}"));
        assert!(
            e.contains("duplicate device name") && e.contains("f.toml:1:1"),
            "{e}"
        );
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("5020").unwrap().to_string(), "127.0.0.1:5020");
        assert_eq!(
            parse_listen("localhost:1").unwrap().to_string(),
            "127.0.0.1:1"
        );
        assert_eq!(parse_listen("[::1]:2").unwrap().to_string(), "[::1]:2");
        assert!(parse_listen("example.com:1").is_err());
    }

    #[test]
    fn substitute_needs_the_substitute_policy() {
        let e = err("[[device]]\nname = \"a\"\nhost = \"h\"\n[[device.read]]\nvar = \"x\"\ntable = \"coil\"\naddress = 1\nsubstitute = true\n");
        assert!(e.contains("on_fail"), "{e}");
    }

    #[test]
    fn any_substitute_needs_the_substitute_policy_even_zero() {
        for v in ["0", "0.0", "false"] {
            let e = err(&format!("[[device]]\nname = \"a\"\nhost = \"h\"\n[[device.read]]\nvar = \"x\"\ntable = \"holding\"\naddress = 1\nsubstitute = {v}\n"));
            assert!(
                e.starts_with("f.toml:5:") && e.contains("on_fail"),
                "{v}: {e}"
            );
        }
        let c = parse("f.toml", "[[device]]\nname = \"a\"\nhost = \"h\"\non_fail = \"substitute\"\n[[device.read]]\nvar = \"x\"\ntable = \"holding\"\naddress = 1\nsubstitute = 0\n").unwrap();
        assert_eq!(c.devices[0].reads[0].substitute, Some(0.0));
    }

    #[test]
    fn a_device_may_be_unit_zero_the_tcp_device_itself() {
        let c = parse("f.toml", "[[device]]\nname = \"a\"\nhost = \"h\"\nunit_id = 0\n[[device.read]]\nvar = \"x\"\ntable = \"coil\"\naddress = 1\n").unwrap();
        assert_eq!(c.devices[0].unit_id, 0);
        let e = err("[[device]]\nname = \"a\"\nhost = \"h\"\nunit_id = 256\n[[device.read]]\nvar = \"x\"\ntable = \"coil\"\naddress = 1\n");
        assert!(e.contains("0..=255"), "{e}");
    }
}
