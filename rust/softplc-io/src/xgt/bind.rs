//! Binding configured XGT mappings to process-image slots (load time; allocation is
//! fine), and the server's default map.
//!
//! A mapping names its first value's PLC address (`D100`, `%MW100`); a `vars` list
//! lays its variables out one after the other, each at the next free place: bits
//! bit after bit, other values byte after byte (a value after bits starts at the next
//! whole byte). Runs of one type travel as one planner mapping ([`Mapping`] with a
//! count), so that they are read and written together.

use std::collections::HashMap;

use softplc_core::{Area, ConfigError, IecType, Layout, Slot, Value, VarId};

use crate::config::XgtPointConfig;

use super::codec::DataType;
use super::cpu::{Cpu, Family};
use super::device::{Address, Device, Location, Naming};
use super::plan::{Mapping, PlanError, PlanErrorKind};
use super::value::{XgtCodec, XgtType};

/// A program variable bound to a value in PLC memory.
#[derive(Clone, Debug, PartialEq)]
pub struct XgtPoint {
    /// Variable name (for status and messages).
    pub name: String,
    /// Variable id.
    pub var: VarId,
    /// Its slot.
    pub slot: Slot,
    /// The value's address in the PLC (its type is the PLC-side type's data type).
    pub address: Address,
    /// Conversion between the PLC value and the variable.
    pub codec: XgtCodec,
    /// Value taken on failure (devices with `on_fail = "substitute"`).
    pub substitute: Value,
    /// The planner mapping that carries it.
    pub mapping: usize,
    /// Its element in that mapping.
    pub element: usize,
}

/// Bound mappings: the points, the planner's mappings, and where each mapping was
/// configured.
#[derive(Clone, Debug, Default)]
pub struct Bound {
    /// The variables, in configuration order.
    pub points: Vec<XgtPoint>,
    /// Runs of values of one type, for the planner.
    pub mappings: Vec<Mapping>,
    /// For each planner mapping, the index of its configuration entry.
    pub origin: Vec<usize>,
}

/// How a set of mappings is used, which decides what may be bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// PLC -> program: the variable is written by the driver.
    DeviceRead,
    /// Program -> PLC.
    DeviceWrite,
    /// Served to XGT clients.
    Server,
}

/// Binds configured mappings against `layout` for a PLC named by `naming`. Errors name
/// the file, line and key of the mapping.
pub fn bind_points(
    layout: &Layout,
    points: &[XgtPointConfig],
    naming: &Naming,
    usage: Usage,
) -> Result<Bound, ConfigError> {
    let mut out = Bound::default();
    for (pi, p) in points.iter().enumerate() {
        let key = p.var_key();
        let mut next: Option<Address> = None;
        for (k, name) in p.vars.iter().enumerate() {
            let id = layout
                .find(name)
                .map_err(|e| p.loc.error(&p.what, key, e.message))?;
            let info = layout.var(id);
            if usage == Usage::DeviceRead && info.slot.area == Area::Output {
                return Err(p.loc.error(
                    &p.what,
                    key,
                    format!(
                        "{:?} is an output ({}); a PLC can feed inputs (%I) and memory (%M) only",
                        info.name, info.address
                    ),
                ));
            }
            let var_ty = info.slot.ty;
            if let IecType::String(_) = var_ty {
                return Err(p.loc.error(
                    &p.what,
                    key,
                    format!(
                        "{:?} is a {}: strings are not exchanged over XGT",
                        info.name,
                        var_ty.full_name()
                    ),
                ));
            }
            let ty = p.ty.unwrap_or_else(|| XgtType::default_for(var_ty));
            let dt = ty.data_type();
            if dt == DataType::Bit && var_ty != IecType::Bool {
                return Err(p.loc.error(
                    &p.what,
                    key,
                    format!("{:?} is {var_ty}, but BOOL values are bits", info.name),
                ));
            }
            let address = match next {
                None => Address::parse(&p.address, dt, naming)
                    .map_err(|e| p.address_loc.error(&p.what, "address", e))?,
                Some(prev) => follow(&prev, dt).ok_or_else(|| {
                    p.loc.error(
                        &p.what,
                        key,
                        format!(
                            "{:?} cannot follow {prev}: {}",
                            info.name,
                            if matches!(prev.loc, Location::Path(_)) {
                                "a hierarchical name maps one variable"
                            } else if prev.device.has_contacts() {
                                "timer and counter contacts are followed by contacts only"
                            } else {
                                "past the largest address"
                            }
                        ),
                    )
                })?,
            };
            next = Some(address);
            let codec = XgtCodec {
                ty,
                scale: p.scale,
                offset: p.offset,
                var_ty,
            };
            // A run of one type extends the previous planner mapping.
            let extends = k > 0
                && out.points.last().is_some_and(|last: &XgtPoint| {
                    last.address.ty == dt && out.origin.last() == Some(&pi)
                });
            let (mapping, element) = if extends {
                let m = out.mappings.len() - 1;
                let e = out.mappings[m].count as usize;
                out.mappings[m].count += 1;
                (m, e)
            } else {
                out.mappings.push(Mapping { address, count: 1 });
                out.origin.push(pi);
                (out.mappings.len() - 1, 0)
            };
            out.points.push(XgtPoint {
                name: info.name.clone(),
                var: id,
                slot: info.slot,
                address,
                codec,
                substitute: codec.substitute_value(p.substitute.unwrap_or(0.0)),
                mapping,
                element,
            });
        }
    }
    if usage == Usage::Server {
        check_server_points(points, &out)?;
    }
    Ok(out)
}

/// The address of a value of type `dt` right after the value at `prev`: bits follow
/// bits; anything else starts at the next whole byte. None for a hierarchical name,
/// after T/C contacts (unless a contact follows), or past the largest address.
fn follow(prev: &Address, dt: DataType) -> Option<Address> {
    let Location::Bit(pos) = prev.loc else {
        return None;
    };
    let contacts = prev.device.has_contacts() && prev.ty == DataType::Bit;
    if contacts && dt != DataType::Bit {
        return None;
    }
    let mut at = pos.checked_add(prev.ty.bits())?;
    if dt != DataType::Bit {
        at = at.checked_add(7)? / 8 * 8;
    }
    Some(Address {
        device: prev.device,
        ty: dt,
        loc: Location::Bit(at),
    })
}

/// A planner error as a configuration error: the mapping's entry, with its key.
pub fn plan_error(points: &[XgtPointConfig], origin: &[usize], e: &PlanError) -> ConfigError {
    let p = &points[origin[e.mapping]];
    let message = match e.kind {
        PlanErrorKind::Overlap { other } => {
            let q = &points[origin[other]];
            format!(
                "{} writes PLC memory that {} writes too (declared at {})",
                e.address, q.what, q.address_loc
            )
        }
        _ => e.to_string(),
    };
    p.address_loc.error(&p.what, "address", message)
}

/// Where a point's value is in its device's memory: byte offset, and for a bit its bit
/// number (None for whole bytes).
pub fn place(address: &Address) -> Option<(u64, Option<u8>)> {
    let Location::Bit(pos) = address.loc else {
        return None;
    };
    if address.device.has_contacts() && address.ty == DataType::Bit {
        return None;
    }
    Some(if address.ty == DataType::Bit {
        (pos / 8, Some((pos % 8) as u8))
    } else {
        (pos / 8, None)
    })
}

/// Server map entries must be flat memory and must not overlap.
fn check_server_points(points: &[XgtPointConfig], b: &Bound) -> Result<(), ConfigError> {
    // (device, first bit, end bit, point)
    let mut spans = Vec::with_capacity(b.points.len());
    for (i, pt) in b.points.iter().enumerate() {
        let p = &points[b.origin[pt.mapping]];
        if place(&pt.address).is_none() {
            return Err(p.address_loc.error(
                &p.what,
                "address",
                format!(
                    "{} is not served: the server serves flat device memory (no hierarchical names, no timer or counter contacts)",
                    pt.address
                ),
            ));
        }
        let Location::Bit(pos) = pt.address.loc else {
            continue;
        };
        spans.push((pt.address.device, pos, pos + pt.address.ty.bits(), i));
    }
    spans.sort();
    for w in spans.windows(2) {
        let (a, b2) = (&w[0], &w[1]);
        if a.0 == b2.0 && b2.1 < a.2 {
            let (pa, pb) = (&b.points[a.3], &b.points[b2.3]);
            let p = &points[b.origin[pb.mapping]];
            return Err(p.loc.error(
                &p.what,
                p.var_key(),
                format!(
                    "{:?} at {} overlaps {:?} at {} (declared at {})",
                    pb.name, pb.address, pa.name, pa.address, points[b.origin[pa.mapping]].loc
                ),
            ));
        }
    }
    Ok(())
}

/// The device that holds image area `area` in the server's default map: for IEC CPUs
/// (XGI, XGR, XGB-IEC) the device of the same letter (I, Q, M); for XGK-family CPUs,
/// P (I/O relay) holds the inputs, M (internal relay) the memory and D (data register)
/// the outputs.
pub fn default_device(cpu: Cpu, area: Area) -> Device {
    match (cpu.family(), area) {
        (Family::Iec, Area::Input) => Device::I,
        (Family::Iec, Area::Output) => Device::Q,
        (_, Area::Memory) => Device::M,
        (Family::Xgk, Area::Input) => Device::P,
        (Family::Xgk, Area::Output) => Device::D,
    }
}

/// The server's default map: every variable at its own address in the device that
/// holds its area ([`default_device`]), byte for byte (`%MW10` is `%MW10` on an IEC
/// CPU), little-endian, its own type. Variables that alias one slot are served once.
pub fn default_server_points(layout: &Layout, cpu: Cpu) -> Vec<XgtPoint> {
    let mut out = Vec::new();
    let mut seen: HashMap<Slot, ()> = HashMap::new();
    for (i, v) in layout.vars().iter().enumerate() {
        // Strings are left out, as from the Modbus server's default map.
        if matches!(v.slot.ty, IecType::String(_)) || seen.insert(v.slot, ()).is_some() {
            continue;
        }
        let ty = XgtType::default_for(v.slot.ty);
        let pos = v.slot.offset as u64 * 8 + v.slot.bit as u64;
        let address = Address {
            device: default_device(cpu, v.slot.area),
            ty: ty.data_type(),
            loc: Location::Bit(pos),
        };
        out.push(XgtPoint {
            name: v.name.clone(),
            var: VarId(i as u32),
            slot: v.slot,
            address,
            codec: XgtCodec::plain(ty, v.slot.ty),
            substitute: v.slot.ty.zero(),
            mapping: out.len(),
            element: 0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use softplc_core::{LayoutBuilder, VarDecl};

    fn layout() -> Layout {
        let mut b = LayoutBuilder::new();
        for (n, a, t, addr) in [
            ("st.level", Area::Input, IecType::Real, "%ID0"),
            ("st.run", Area::Input, IecType::Bool, "%IX8.1"),
            ("st.stop", Area::Input, IecType::Bool, "%IX8.2"),
            ("st.pump", Area::Output, IecType::Bool, "%QX0.3"),
            ("st.speed", Area::Output, IecType::Int, "%QW2"),
            ("st.sp", Area::Memory, IecType::Int, "%MW1"),
            ("st.count", Area::Memory, IecType::Dint, "%MD1"),
        ] {
            b.declare(VarDecl::new(n, a, t, Some(addr))).unwrap();
        }
        b.build().unwrap()
    }

    fn cfg(points: &str) -> crate::config::IoConfig {
        parse(
            "x.toml",
            &format!(
                "[[device]]\nname = \"plc\"\nprotocol = \"xgt\"\nhost = \"h\"\ncpu = \"XGK\"\n{points}"
            ),
        )
        .unwrap()
    }

    fn bound(points: &str, usage: Usage) -> Result<Bound, ConfigError> {
        let c = cfg(points);
        let d = &c.xgt_devices[0];
        let ps = if usage == Usage::DeviceRead {
            &d.reads
        } else {
            &d.writes
        };
        bind_points(&layout(), ps, &d.naming, usage)
    }

    #[test]
    fn vars_follow_each_other_and_runs_of_one_type_travel_together() {
        let b = bound(
            "[[device.read]]\nvars = [\"run\", \"stop\", \"sp\", \"count\"]\naddress = \"M100F\"\n",
            Usage::DeviceRead,
        )
        .unwrap();
        let names: Vec<String> = b.points.iter().map(|p| p.address.to_string()).collect();
        // Bit F of word 100 then bit 0 of word 101; the INT at the next byte (word 101's
        // second byte: a continuous transfer carries it); the DINT after it.
        assert_eq!(
            names,
            vec![
                "%MX1615",
                "%MX1616",
                "word at %MB203",
                "double word at %MB205"
            ]
        );
        assert_eq!(b.mappings.len(), 3);
        assert_eq!(b.mappings[0].count, 2);
        assert_eq!((b.points[1].mapping, b.points[1].element), (0, 1));
    }

    #[test]
    fn reads_into_outputs_and_bits_into_numbers_are_refused() {
        let e = bound(
            "[[device.read]]\nvar = \"pump\"\naddress = \"M0\"\n",
            Usage::DeviceRead,
        )
        .unwrap_err();
        assert!(
            e.message.contains("output") && e.message.starts_with("x.toml:7:7:"),
            "{e}"
        );
        let e = bound(
            "[[device.write]]\nvar = \"speed\"\naddress = \"M0\"\ntype = \"BOOL\"\n",
            Usage::DeviceWrite,
        )
        .unwrap_err();
        assert!(e.message.contains("bits"), "{e}");
        let e = bound(
            "[[device.read]]\nvar = \"sp\"\naddress = \"M172C\"\n",
            Usage::DeviceRead,
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("x.toml:8:11:") && e.message.contains("`address`"),
            "{e}"
        );
    }

    #[test]
    fn the_default_map_puts_each_area_in_its_device_byte_for_byte() {
        let l = layout();
        let pts = default_server_points(&l, Cpu::Xgi);
        let at = |n: &str| {
            pts.iter()
                .find(|p| p.name == n)
                .map(|p| p.address.to_string())
                .unwrap()
        };
        assert_eq!(at("st.level"), "%ID0");
        assert_eq!(at("st.run"), "%IX65");
        assert_eq!(at("st.pump"), "%QX3");
        assert_eq!(at("st.speed"), "%QW2");
        assert_eq!(at("st.count"), "%MD1");
        let pts = default_server_points(&l, Cpu::Xgk);
        let dev = |n: &str| pts.iter().find(|p| p.name == n).unwrap().address.device;
        assert_eq!(dev("st.level"), Device::P);
        assert_eq!(dev("st.speed"), Device::D);
        assert_eq!(dev("st.sp"), Device::M);
        assert_eq!(place(&pts[1].address), Some((8, Some(1))));
    }
}
