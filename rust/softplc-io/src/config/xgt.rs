//! Parsing the XGT parts of the configuration file: `[[device]]` tables with
//! `protocol = "xgt"` (LS Electric PLCs polled as a client) and `[server.xgt]` (softplc
//! answering as an XGT PLC). Kept apart from the Modbus parsing: [`take`] lifts these
//! parts out of the parsed document before the Modbus configuration is read from the
//! rest.
//!
//! ```toml
//! [[device]]
//! name = "press"
//! protocol = "xgt"
//! host = "192.168.0.10"
//! cpu = "XGK"
//!
//! [[device.read]]
//! var = "line.pressure"
//! address = "D100"
//! type = "INT"
//! scale = 0.1
//!
//! [server.xgt]
//! listen = "127.0.0.1:2004"
//! cpu = "XGI"
//! ```
//!
//! Everything that can be checked without the program is checked here: keys, ranges,
//! the CPU type, and each address as far as its type is known (with `type`, fully);
//! binding ([`crate::xgt::bind`]) checks the rest.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Deserialize;
use softplc_core::ConfigError;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::xgt::codec::DataType;
use crate::xgt::device::{Address, Device, NameError, Naming};
use crate::xgt::value::XgtType;
use crate::xgt::Cpu;

use super::parse::{
    allow_of, health_var_of, host_problem, int_in, ms, on_fail_of, parse_listen, toml_error,
    write_mode_of,
};
use super::source::{Loc, Source};
use super::xgt_model::{XgtDeviceConfig, XgtPointConfig, XgtServerConfig, XGT_PORT};
use super::OnFail;

/// The `protocol` of a Modbus device (the default).
const MODBUS: &str = "modbus";
/// The `protocol` of an XGT device.
const XGT: &str = "xgt";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawXgtDevice {
    #[allow(dead_code)] // checked by `take` before this is read
    protocol: Spanned<String>,
    name: Spanned<String>,
    host: Spanned<String>,
    port: Option<Spanned<i64>>,
    cpu: Option<Spanned<String>>,
    hex_bit: Option<Spanned<bool>>,
    poll_ms: Option<Spanned<i64>>,
    timeout_ms: Option<Spanned<i64>>,
    retries: Option<Spanned<i64>>,
    reconnect_min_ms: Option<Spanned<i64>>,
    reconnect_max_ms: Option<Spanned<i64>>,
    fail_after: Option<Spanned<i64>>,
    on_fail: Option<Spanned<String>>,
    stale_ms: Option<Spanned<i64>>,
    max_gap: Option<Spanned<i64>>,
    pipeline: Option<Spanned<i64>>,
    write_mode: Option<Spanned<String>>,
    write_check_ms: Option<Spanned<i64>>,
    health_var: Option<Spanned<String>>,
    #[serde(default)]
    read: Vec<Spanned<RawXgtPoint>>,
    #[serde(default)]
    write: Vec<Spanned<RawXgtPoint>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawXgtPoint {
    var: Option<Spanned<String>>,
    vars: Option<Spanned<Vec<String>>>,
    address: Spanned<String>,
    #[serde(rename = "type")]
    ty: Option<Spanned<String>>,
    scale: Option<Spanned<f64>>,
    offset: Option<Spanned<f64>>,
    substitute: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawXgtServer {
    listen: Option<Spanned<String>>,
    cpu: Option<Spanned<String>>,
    hex_bit: Option<Spanned<bool>>,
    allow: Option<Spanned<Vec<String>>>,
    read_only: Option<Spanned<Vec<String>>>,
    max_connections: Option<Spanned<i64>>,
    idle_timeout_ms: Option<Spanned<i64>>,
    #[serde(default)]
    map: Vec<Spanned<RawXgtPoint>>,
}

/// The XGT parts of a file, lifted out of the document.
pub(super) struct XgtParts {
    /// For each Modbus device left in the document, its place among all `[[device]]`
    /// tables of the file (for "device #N" in messages).
    modbus_at: Vec<usize>,
    /// XGT devices with their place among all `[[device]]` tables.
    devices: Vec<(usize, XgtDeviceConfig)>,
    server: Option<XgtServerConfig>,
}

impl XgtParts {
    /// Where each Modbus device of the document is among all `[[device]]` tables.
    pub fn modbus_positions(&self) -> &[usize] {
        &self.modbus_at
    }

    /// Checks the XGT devices' names against the other devices' (`names`, which gains
    /// them) and their endpoints against each other; returns devices and server.
    pub fn finish(
        self,
        names: &mut HashMap<String, Loc>,
    ) -> Result<(Vec<XgtDeviceConfig>, Option<XgtServerConfig>), ConfigError> {
        let mut endpoints: HashMap<String, (String, Loc)> = HashMap::new();
        let mut out = Vec::with_capacity(self.devices.len());
        for (i, d) in self.devices {
            if let Some(first) = names.get(&d.name) {
                return Err(d.loc.error(
                    &format!("device #{}", i + 1),
                    "name",
                    format!(
                        "duplicate device name {:?} (first declared at {first})",
                        d.name
                    ),
                ));
            }
            names.insert(d.name.clone(), d.loc.clone());
            // One connection per PLC: the XGB's built-in port takes 4 in all, and an XGT
            // PLC has no unit ids to share one connection by.
            if let Some((other, at)) = endpoints.get(&d.endpoint()) {
                return Err(d.loc.error(
                    &format!("device {:?}", d.name),
                    "host",
                    format!(
                        "XGT device {other:?} (declared at {at}) polls {} already: one connection per PLC, so put all of its mappings in one device",
                        d.endpoint()
                    ),
                ));
            }
            endpoints.insert(d.endpoint(), (d.name.clone(), d.loc.clone()));
            out.push(d);
        }
        Ok((out, self.server))
    }
}

/// Takes the XGT devices and `[server.xgt]` out of `root`, parsed and checked, and
/// leaves the Modbus configuration (a Modbus device's `protocol = "modbus"` removed).
pub(super) fn take(src: &Source<'_>, root: &mut DeTable<'_>) -> Result<XgtParts, ConfigError> {
    let mut parts = XgtParts {
        modbus_at: Vec::new(),
        devices: Vec::new(),
        server: None,
    };
    if let Some(devices) = root.get_mut("device") {
        if let DeValue::Array(array) = devices.get_mut() {
            let all = std::mem::replace(array, DeArray::new());
            let mut modbus = Vec::new();
            for (i, mut d) in all.into_iter().enumerate() {
                match protocol_of(src, i, &mut d)? {
                    Protocol::Modbus => {
                        parts.modbus_at.push(i);
                        modbus.push(d);
                    }
                    Protocol::Xgt => {
                        let loc = src.loc(&d.span());
                        let raw = RawXgtDevice::deserialize(ValueDeserializer::from(d))
                            .map_err(|e| toml_error(src, &e))?;
                        parts.devices.push((i, device(src, i, loc, raw)?));
                    }
                }
            }
            *array = modbus.into_iter().collect();
        }
    }
    let mut drop_server = false;
    if let Some(server) = root.get_mut("server") {
        let span = server.span();
        if let DeValue::Table(table) = server.get_mut() {
            if let Some(x) = table.remove("xgt") {
                let loc = src.loc(&x.span());
                let raw = RawXgtServer::deserialize(ValueDeserializer::from(x))
                    .map_err(|e| toml_error(src, &e))?;
                parts.server = Some(server_config(src, loc, raw)?);
                // `[server.xgt]` alone declares no Modbus server: the `server` table it
                // implies (its span is the key, not a `[server]` header) goes too.
                let declared = src
                    .text(&span)
                    .is_some_and(|t| t.starts_with('[') || t.starts_with('{'));
                drop_server = table.is_empty() && !declared;
            }
        }
    }
    if drop_server {
        root.remove("server");
    }
    Ok(parts)
}

enum Protocol {
    Modbus,
    Xgt,
}

/// The protocol of `[[device]]` number `i`; a Modbus device loses its `protocol` key
/// (the Modbus parser does not know it).
fn protocol_of(
    src: &Source<'_>,
    i: usize,
    d: &mut Spanned<DeValue<'_>>,
) -> Result<Protocol, ConfigError> {
    let DeValue::Table(t) = d.get_mut() else {
        return Ok(Protocol::Modbus);
    };
    let Some(p) = t.get("protocol") else {
        return Ok(Protocol::Modbus);
    };
    let what = format!("device #{}", i + 1);
    let err = |m: String| src.loc(&p.span()).error(&what, "protocol", m);
    let name = match p.get_ref() {
        DeValue::String(s) => s.to_string(),
        _ => return Err(err("expected a string: \"modbus\" or \"xgt\"".to_string())),
    };
    match name.to_ascii_lowercase().as_str() {
        MODBUS => {
            t.remove("protocol");
            Ok(Protocol::Modbus)
        }
        XGT => Ok(Protocol::Xgt),
        _ => Err(err(format!(
            "unknown protocol {name:?} (expected \"modbus\" or \"xgt\")"
        ))),
    }
}

fn cpu_of(
    src: &Source<'_>,
    what: &str,
    v: &Option<Spanned<String>>,
    default: Option<Cpu>,
    loc: &Loc,
) -> Result<Cpu, ConfigError> {
    match (v, default) {
        (Some(s), _) => s
            .get_ref()
            .parse::<Cpu>()
            .map_err(|e| src.loc(&s.span()).error(what, "cpu", e)),
        (None, Some(c)) => Ok(c),
        (None, None) => Err(loc.error(
            what,
            "cpu",
            "missing: name the PLC's CPU type (XGK, XGI, XGR, XGB-MK or XGB-IEC); it decides how its memory is named",
        )),
    }
}

fn naming_of(
    src: &Source<'_>,
    what: &str,
    cpu: Cpu,
    hex_bit: &Option<Spanned<bool>>,
) -> Result<Naming, ConfigError> {
    match hex_bit {
        Some(h) if *h.get_ref() => {
            Naming::hex_bit(cpu).map_err(|k| src.loc(&h.span()).error(what, "hex_bit", k))
        }
        _ => Ok(Naming::new(cpu)),
    }
}

fn device(
    src: &Source<'_>,
    i: usize,
    loc: Loc,
    d: RawXgtDevice,
) -> Result<XgtDeviceConfig, ConfigError> {
    let name = d.name.get_ref().trim().to_string();
    if name.is_empty() {
        return Err(src.loc(&d.name.span()).error(
            &format!("device #{}", i + 1),
            "name",
            "a device name must not be empty",
        ));
    }
    let what = format!("device {name:?}");
    let host = d.host.get_ref().trim().to_string();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(src.loc(&d.host.span()).error(
            &what,
            "host",
            format!("invalid host {:?}", d.host.get_ref()),
        ));
    }
    if let Some(why) = host_problem(&host) {
        return Err(src.loc(&d.host.span()).error(&what, "host", why));
    }
    let port = int_in(src, &what, "port", &d.port, 1..=65535, XGT_PORT as i64)? as u16;
    let cpu = cpu_of(src, &what, &d.cpu, None, &loc)?;
    let naming = naming_of(src, &what, cpu, &d.hex_bit)?;
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
    let max_gap = int_in(
        src,
        &what,
        "max_gap",
        &d.max_gap,
        0..=cpu.max_continuous() as i64,
        16,
    )? as u32;
    let pipeline = int_in(src, &what, "pipeline", &d.pipeline, 1..=16, 4)? as usize;
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
        reads.push(point(src, &pwhat, p, &naming, PointUse::Read)?);
    }
    let mut writes = Vec::new();
    for (j, p) in d.write.into_iter().enumerate() {
        let pwhat = format!("{what} write #{}", j + 1);
        writes.push(point(src, &pwhat, p, &naming, PointUse::Write)?);
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
    Ok(XgtDeviceConfig {
        name,
        host,
        port,
        cpu,
        naming,
        poll: ms(poll_ms),
        timeout: ms(timeout_ms),
        retries,
        reconnect_min: ms(rmin),
        reconnect_max: ms(rmax),
        fail_after,
        on_fail,
        stale: ms(stale_ms),
        max_gap,
        pipeline,
        write_mode,
        write_check: ms(write_check_ms),
        health_var,
        reads,
        writes,
        loc,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PointUse {
    Read,
    Write,
    Server,
}

/// Checks `text` as far as the type is known: fully with one; a direct variable with
/// its own size letter; a user form (`D100`, `M172C`) as a word or as a bit.
fn precheck(text: &str, ty: Option<DataType>, naming: &Naming) -> Result<(), NameError> {
    if let Some(t) = ty {
        return Address::parse(text, t, naming).map(|_| ());
    }
    let bytes = text.as_bytes();
    if bytes.first() == Some(&b'%') {
        let t = bytes
            .get(2)
            .and_then(|c| DataType::from_letter(c.to_ascii_uppercase()))
            .unwrap_or(DataType::Word);
        return Address::parse(text, t, naming).map(|_| ());
    }
    let word = Address::parse(text, DataType::Word, naming);
    if word.is_ok() || Address::parse(text, DataType::Bit, naming).is_ok() {
        return Ok(());
    }
    word.map(|_| ())
}

fn point(
    src: &Source<'_>,
    what: &str,
    p: Spanned<RawXgtPoint>,
    naming: &Naming,
    usage: PointUse,
) -> Result<XgtPointConfig, ConfigError> {
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
    let ty = match &p.ty {
        None => None,
        Some(s) => Some(XgtType::parse(s.get_ref()).ok_or_else(|| {
            src.loc(&s.span()).error(
                what,
                "type",
                format!(
                    "unknown type {:?} (expected {})",
                    s.get_ref(),
                    XgtType::NAMES
                ),
            )
        })?),
    };
    let address = p.address.get_ref().trim().to_string();
    let address_loc = src.loc(&p.address.span());
    precheck(&address, ty.map(|t| t.data_type()), naming)
        .map_err(|e| address_loc.error(what, "address", e))?;
    let bits = ty.is_some_and(|t| t.data_type() == DataType::Bit);
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
                if bits {
                    return Err(src.loc(&s.span()).error(
                        what,
                        key,
                        "BOOL values are bits: they cannot be scaled",
                    ));
                }
                Ok(x)
            }
        }
    };
    let scale = finite(&p.scale, "scale", 1.0)?;
    let offset = finite(&p.offset, "offset", 0.0)?;
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
    Ok(XgtPointConfig {
        vars,
        address,
        ty,
        scale,
        offset,
        substitute,
        loc: vloc,
        address_loc,
        what: what.to_string(),
    })
}

fn server_config(
    src: &Source<'_>,
    loc: Loc,
    s: RawXgtServer,
) -> Result<XgtServerConfig, ConfigError> {
    let what = "server.xgt";
    let listen = match &s.listen {
        None => SocketAddr::from(([127, 0, 0, 1], super::xgt_model::XGT_PORT)),
        Some(l) => {
            parse_listen(l.get_ref()).map_err(|m| src.loc(&l.span()).error(what, "listen", m))?
        }
    };
    let cpu = cpu_of(src, what, &s.cpu, Some(Cpu::Xgi), &loc)?;
    let naming = naming_of(src, what, cpu, &s.hex_bit)?;
    let allow = allow_of(src, what, &s.allow)?;
    let mut read_only = Vec::new();
    if let Some(r) = &s.read_only {
        for text in r.get_ref() {
            let t = text.trim().trim_start_matches('%').to_ascii_uppercase();
            let dev = match t.as_bytes() {
                [c] => Device::from_letter(*c).filter(|d| d.exists(cpu)),
                _ => None,
            };
            let dev = dev.ok_or_else(|| {
                src.loc(&r.span()).error(
                    what,
                    "read_only",
                    format!(
                        "{text:?} is not a device of {cpu} CPUs (devices: {})",
                        Device::letters(cpu)
                    ),
                )
            })?;
            if !read_only.contains(&dev) {
                read_only.push(dev);
            }
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
        let pwhat = format!("server.xgt map #{}", j + 1);
        map.push(point(src, &pwhat, p, &naming, PointUse::Server)?);
    }
    Ok(XgtServerConfig {
        listen,
        cpu,
        naming,
        allow,
        read_only,
        max_connections,
        idle_timeout: (idle > 0).then(|| ms(idle)),
        map,
        loc,
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    const PLC: &str = r#"
[[device]]
name = "pumps"
host = "127.0.0.1"
[[device.read]]
var = "level"
table = "input_register"
address = 0

[[device]]
name = "press"
protocol = "xgt"
host = "10.0.0.5"
cpu = "XGK"
poll_ms = 50

[[device.read]]
var = "pressure"
address = "D100"
type = "INT"
scale = 0.1

[[device.write]]
vars = ["lamp1", "lamp2"]
address = "M172C"

[server.xgt]
listen = "127.0.0.1:0"
cpu = "XGB-MK"
read_only = ["P", "%F"]
"#;

    fn err(text: &str) -> String {
        parse("f.toml", text).unwrap_err().message
    }

    #[test]
    fn xgt_devices_and_the_xgt_server_sit_beside_modbus_ones() {
        let c = parse("t.toml", PLC).unwrap();
        assert_eq!(c.devices.len(), 1);
        assert!(
            c.server.is_none(),
            "[server.xgt] alone declares no Modbus server"
        );
        let d = &c.xgt_devices[0];
        assert_eq!(
            (d.port, d.cpu, d.pipeline, d.max_gap),
            (2004, Cpu::Xgk, 4, 16)
        );
        assert_eq!(d.reads[0].address, "D100");
        assert_eq!(d.reads[0].scale, 0.1);
        assert_eq!(d.writes[0].vars, vec!["lamp1", "lamp2"]);
        let s = c.xgt_server.unwrap();
        assert_eq!(s.cpu, Cpu::XgbMk);
        assert_eq!(s.read_only, vec![Device::P, Device::F]);
        assert!(s.map.is_empty());
    }

    #[test]
    fn a_modbus_server_beside_the_xgt_one_stays() {
        let c = parse("t.toml", "[server]\n[server.xgt]\n").unwrap();
        assert!(c.server.is_some() && c.xgt_server.is_some());
        let c = parse(
            "t.toml",
            "[server]\nunit_id = 3\n[server.xgt]\ncpu = \"XGK\"\n",
        )
        .unwrap();
        assert_eq!(c.server.unwrap().unit_id, 3);
        assert_eq!(c.xgt_server.unwrap().cpu, Cpu::Xgk);
        assert_eq!(parse("t.toml", "[server]\n").unwrap().xgt_server, None);
    }

    const DEV: &str = "[[device]]\nname = \"p\"\nprotocol = \"xgt\"\nhost = \"h\"\n";

    #[test]
    fn an_unknown_cpu_type_is_named_with_the_line() {
        let e = err(&format!(
            "{DEV}cpu = \"XGB\"\n[[device.read]]\nvar = \"x\"\naddress = \"D0\"\n"
        ));
        assert!(
            e.starts_with("f.toml:5:7:") && e.contains("`cpu`") && e.contains("XGB-MK"),
            "{e}"
        );
        let e = err(&format!(
            "{DEV}[[device.read]]\nvar = \"x\"\naddress = \"D0\"\n"
        ));
        assert!(e.contains("`cpu`") && e.contains("missing"), "{e}");
    }

    #[test]
    fn a_name_the_protocol_cannot_express_is_named_with_device_key_and_line() {
        for (addr, ty, why) in [
            ("W100", "INT", "not a device of XGK"),
            ("%MW100", "DINT", "mapping's type is double word"),
            ("D99999999999999", "INT", "more than 16"),
            ("M172C", "INT", "expected a decimal address"),
            ("%MX", "BOOL", "decimal"),
        ] {
            let e = err(&format!(
                "{DEV}cpu = \"XGK\"\n[[device.read]]\nvar = \"x\"\naddress = \"{addr}\"\ntype = \"{ty}\"\n"
            ));
            assert!(
                e.starts_with("f.toml:8:11:")
                    && e.contains("device \"p\" read #1")
                    && e.contains("`address`")
                    && e.contains(why),
                "{addr}: {e}"
            );
        }
        // Without a type, what the name itself says is checked.
        let e = err(&format!(
            "{DEV}cpu = \"XGI\"\n[[device.read]]\nvar = \"x\"\naddress = \"D100\"\n"
        ));
        assert!(e.contains("direct variables only"), "{e}");
        let ok = parse(
            "f.toml",
            &format!("{DEV}cpu = \"XGK\"\n[[device.read]]\nvar = \"x\"\naddress = \"M172C\"\n"),
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn keys_of_the_other_protocol_are_refused() {
        let e = err(&format!(
            "{DEV}cpu = \"XGK\"\nunit_id = 1\n[[device.read]]\nvar = \"x\"\naddress = \"D0\"\n"
        ));
        assert!(e.starts_with("f.toml:6:") && e.contains("unit_id"), "{e}");
        let e = err(&format!(
            "{DEV}cpu = \"XGK\"\n[[device.read]]\nvar = \"x\"\naddress = \"D0\"\ntable = \"coil\"\n"
        ));
        assert!(e.starts_with("f.toml:9:") && e.contains("table"), "{e}");
        let e = err("[[device]]\nname = \"a\"\nprotocol = \"profinet\"\nhost = \"h\"\n");
        assert!(
            e.starts_with("f.toml:3:12:") && e.contains("unknown protocol"),
            "{e}"
        );
    }

    #[test]
    fn names_are_unique_across_protocols_and_plcs_get_one_connection() {
        let modbus = "[[device]]\nname = \"p\"\nhost = \"h\"\n[[device.read]]\nvar = \"y\"\ntable = \"coil\"\naddress = 1\n";
        let xgt = format!("{DEV}cpu = \"XGK\"\n[[device.read]]\nvar = \"x\"\naddress = \"D0\"\n");
        let e = err(&format!("{modbus}{xgt}"));
        assert!(
            e.contains("duplicate device name") && e.contains("device #2"),
            "{e}"
        );
        let second = xgt.replace("name = \"p\"", "name = \"q\"");
        let e = err(&format!("{xgt}{second}"));
        assert!(e.contains("one connection per PLC"), "{e}");
    }

    #[test]
    fn server_keys_are_checked() {
        let e = err("[server.xgt]\ncpu = \"XGI\"\nread_only = [\"D\"]\n");
        assert!(e.contains("`read_only`") && e.contains("M, I, Q"), "{e}");
        let e = err("[server.xgt]\ncpu = \"XGI\"\nhex_bit = true\n");
        assert!(e.contains("`hex_bit`"), "{e}");
        let e = err(
            "[server.xgt]\n[[server.xgt.map]]\nvar = \"x\"\naddress = \"%MW1\"\nsubstitute = 1\n",
        );
        assert!(e.contains("only read mappings"), "{e}");
        let e = err("[server.xgt]\nlisten = \"nowhere\"\n");
        assert!(e.starts_with("f.toml:2:10:") && e.contains("listen"), "{e}");
    }
}
