//! Binding configured mappings to process-image slots (load time; allocation is fine).

use std::collections::HashMap;

use softplc_core::address::Size;
use softplc_core::{Area, ConfigError, IecType, Layout, Slot, Value, VarId};

use crate::config::PointConfig;
use crate::modbus::encoding::{Codec, RegType, WordOrder};
use crate::modbus::Table;

/// A program variable bound to a place in a Modbus table.
#[derive(Clone, Debug, PartialEq)]
pub struct BoundPoint {
    /// Variable name (for status and messages).
    pub name: String,
    /// Variable id.
    pub var: VarId,
    /// Its slot.
    pub slot: Slot,
    /// Table.
    pub table: Table,
    /// First address.
    pub address: u16,
    /// Encoding.
    pub codec: Codec,
    /// Value taken on failure (devices with `on_fail = "substitute"`).
    pub substitute: Value,
}

impl BoundPoint {
    /// Items occupied: 1 for a bit, the register count otherwise.
    pub fn len(&self) -> usize {
        if self.table.is_bits() {
            1
        } else {
            self.codec.words()
        }
    }

    /// Always false: a point occupies at least one item.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// One past the last address.
    pub fn end(&self) -> usize {
        self.address as usize + self.len()
    }
}

/// How a set of mappings is used, which decides what may be bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// Device -> program: the variable is written by the driver.
    DeviceRead,
    /// Program -> device.
    DeviceWrite,
    /// Exposed by the server.
    Server,
}

/// Binds configured mappings. Errors name the file, line and key of the mapping.
pub fn bind_points(
    layout: &Layout,
    points: &[PointConfig],
    usage: Usage,
) -> Result<Vec<BoundPoint>, ConfigError> {
    let mut out = Vec::new();
    for p in points {
        let mut address = p.address as usize;
        let key = if p.vars.len() == 1 { "var" } else { "vars" };
        for name in &p.vars {
            let id = layout
                .find(name)
                .map_err(|e| p.loc.error(&p.what, key, e.message))?;
            let info = layout.var(id);
            if usage == Usage::DeviceRead && info.slot.area == Area::Output {
                return Err(p.loc.error(
                    &p.what,
                    key,
                    format!(
                        "{:?} is an output ({}); a device can feed inputs (%I) and memory (%M) only",
                        info.name, info.address
                    ),
                ));
            }
            let ty = info.slot.ty;
            if let IecType::String(_) = ty {
                return Err(p.loc.error(
                    &p.what,
                    key,
                    format!(
                        "{:?} is a {}: strings are not exchanged over Modbus",
                        info.name,
                        ty.full_name()
                    ),
                ));
            }
            if p.table.is_bits() && ty != IecType::Bool {
                return Err(p.loc.error(
                    &p.what,
                    key,
                    format!("{:?} is {ty}, but {}s hold BOOL values", info.name, p.table),
                ));
            }
            if p.bit.is_some() && ty != IecType::Bool {
                return Err(p.loc.error(
                    &p.what,
                    "bit",
                    format!(
                        "`bit` reads one bit into a BOOL variable, but {:?} is {ty}",
                        info.name
                    ),
                ));
            }
            let reg = match (p.table.is_bits(), p.bit, p.reg) {
                (true, _, _) => RegType::Bool,
                (false, Some(_), r) => r.unwrap_or(RegType::Uint),
                (false, None, Some(r)) => r,
                (false, None, None) => RegType::default_for(ty),
            };
            let codec = Codec {
                reg,
                order: p.order,
                scale: p.scale,
                offset: p.offset,
                bit: p.bit,
                var_ty: ty,
            };
            let substitute = codec.substitute_value(p.substitute.unwrap_or(0.0));
            let bp = BoundPoint {
                name: info.name.clone(),
                var: id,
                slot: info.slot,
                table: p.table,
                address: address as u16,
                codec,
                substitute,
            };
            if bp.end() > 65536 || address > 65535 {
                return Err(p.loc.error(
                    &p.what,
                    key,
                    format!(
                        "{:?} at {} {address} runs past the last address 65535",
                        info.name, p.table
                    ),
                ));
            }
            address = bp.end();
            out.push(bp);
        }
    }
    if usage != Usage::DeviceRead {
        check_overlaps(points, &out)?;
    }
    Ok(out)
}

/// Binds a device's `health_var`: a BOOL input or memory variable.
pub fn bind_health(
    layout: &Layout,
    dev: &crate::config::DeviceConfig,
) -> Result<Option<(VarId, Slot)>, ConfigError> {
    bind_health_var(layout, &dev.name, &dev.health_var)
}

/// Binds the `health_var` of device `device` (any protocol): a BOOL input or memory
/// variable.
pub fn bind_health_var(
    layout: &Layout,
    device: &str,
    health_var: &Option<(String, crate::config::Loc)>,
) -> Result<Option<(VarId, Slot)>, ConfigError> {
    let Some((name, loc)) = health_var else {
        return Ok(None);
    };
    let what = format!("device {device:?}");
    let id = layout
        .find(name)
        .map_err(|e| loc.error(&what, "health_var", e.message))?;
    let info = layout.var(id);
    if info.slot.ty != IecType::Bool || info.slot.area == Area::Output {
        return Err(loc.error(
            &what,
            "health_var",
            format!(
                "{:?} must be a BOOL input or memory variable (it is {} {})",
                info.name,
                info.slot.area.word(),
                info.slot.ty
            ),
        ));
    }
    Ok(Some((id, info.slot)))
}

/// Two outputs (or two server entries) on one address would fight; reject that and
/// name both variables.
fn check_overlaps(points: &[PointConfig], bound: &[BoundPoint]) -> Result<(), ConfigError> {
    // Map each bound point back to its mapping for the message.
    let mut owner = Vec::with_capacity(bound.len());
    for (i, p) in points.iter().enumerate() {
        owner.extend(std::iter::repeat_n(i, p.vars.len()));
    }
    let mut idx: Vec<usize> = (0..bound.len()).collect();
    idx.sort_by_key(|i| (bound[*i].table, bound[*i].address));
    for w in idx.windows(2) {
        let (a, b) = (&bound[w[0]], &bound[w[1]]);
        if a.table == b.table && (b.address as usize) < a.end() {
            let p = &points[owner[w[1]]];
            return Err(p.loc.error(
                &p.what,
                if p.vars.len() == 1 { "var" } else { "vars" },
                format!(
                    "{:?} at {} {} overlaps {:?} at {} (declared at {})",
                    b.name, b.table, b.address, a.name, a.address, points[owner[w[0]]].loc
                ),
            ));
        }
    }
    Ok(())
}

/// The OpenPLC-compatible default server map: `%IX` -> discrete inputs, `%QX` -> coils
/// (bit number = byte * 8 + bit), `%IW` -> input registers, `%QW0..1023` -> holding
/// registers 0..1023, `%MW0..1023` -> holding 1024.., `%MD0..1023` -> holding 2048..
/// (two registers each), `%ML0..1023` -> holding 4096.. (four each). Multi-register
/// values are big-endian (ABCD). Returns the points and the names of variables left out.
pub fn default_server_points(layout: &Layout) -> (Vec<BoundPoint>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut seen: HashMap<Slot, ()> = HashMap::new();
    for (i, v) in layout.vars().iter().enumerate() {
        let a = v.address;
        let place = match (a.area, a.size) {
            (Area::Input, Size::Bit) => {
                Some((Table::DiscreteInput, a.index as usize * 8 + a.bit as usize))
            }
            (Area::Output, Size::Bit) => Some((Table::Coil, a.index as usize * 8 + a.bit as usize)),
            (Area::Input, Size::Word) => Some((Table::InputRegister, a.index as usize)),
            (Area::Output, Size::Word) if a.index < 1024 => {
                Some((Table::HoldingRegister, a.index as usize))
            }
            (Area::Memory, Size::Word) if a.index < 1024 => {
                Some((Table::HoldingRegister, 1024 + a.index as usize))
            }
            (Area::Memory, Size::Double) if a.index < 1024 => {
                Some((Table::HoldingRegister, 2048 + 2 * a.index as usize))
            }
            (Area::Memory, Size::Long) if a.index < 1024 => {
                Some((Table::HoldingRegister, 4096 + 4 * a.index as usize))
            }
            _ => None,
        };
        let Some((table, address)) = place else {
            skipped.push(v.name.clone());
            continue;
        };
        if address > 65535 {
            skipped.push(v.name.clone());
            continue;
        }
        // Two programs may read one input through aliases of one slot; expose it once.
        if seen.insert(v.slot, ()).is_some() {
            continue;
        }
        let codec = Codec::plain(RegType::default_for(v.slot.ty), WordOrder::Abcd, v.slot.ty);
        out.push(BoundPoint {
            name: v.name.clone(),
            var: VarId(i as u32),
            slot: v.slot,
            table,
            address: address as u16,
            codec,
            substitute: v.slot.ty.zero(),
        });
    }
    (out, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use softplc_core::{LayoutBuilder, VarDecl};

    fn layout() -> Layout {
        let mut b = LayoutBuilder::new();
        for (n, a, t, addr) in [
            ("st.level", Area::Input, IecType::Real, Some("%ID0")),
            ("st.run", Area::Input, IecType::Bool, Some("%IX8.1")),
            ("st.pump", Area::Output, IecType::Bool, Some("%QX0.3")),
            ("st.speed", Area::Output, IecType::Int, Some("%QW2")),
            ("st.sp", Area::Memory, IecType::Int, Some("%MW1")),
            ("st.total", Area::Memory, IecType::Lreal, Some("%ML2")),
            ("st.temp", Area::Input, IecType::Int, Some("%IW6")),
        ] {
            b.declare(VarDecl::new(n, a, t, addr)).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn the_default_map_follows_openplc() {
        let l = layout();
        let (pts, skipped) = default_server_points(&l);
        let find = |n: &str| {
            pts.iter()
                .find(|p| p.name == n)
                .map(|p| (p.table, p.address))
        };
        assert_eq!(find("st.run"), Some((Table::DiscreteInput, 65)));
        assert_eq!(find("st.pump"), Some((Table::Coil, 3)));
        assert_eq!(find("st.speed"), Some((Table::HoldingRegister, 2)));
        assert_eq!(find("st.sp"), Some((Table::HoldingRegister, 1025)));
        assert_eq!(find("st.total"), Some((Table::HoldingRegister, 4104)));
        assert_eq!(find("st.temp"), Some((Table::InputRegister, 6)));
        assert_eq!(skipped, vec!["st.level".to_string()]);
    }

    fn dev(points: &str) -> crate::config::IoConfig {
        parse(
            "m.toml",
            &format!("[[device]]\nname = \"d\"\nhost = \"h\"\n{points}"),
        )
        .unwrap()
    }

    #[test]
    fn a_string_is_refused_by_a_mapping_and_left_out_of_the_default_map() {
        let mut b = LayoutBuilder::new();
        b.declare(VarDecl::new(
            "st.name",
            Area::Memory,
            IecType::String(8),
            Some("%MB100"),
        ))
        .unwrap();
        let l = b.build().unwrap();
        let c = dev("[[device.read]]\nvar = \"name\"\ntable = \"holding_register\"\naddress = 1\n");
        let e = bind_points(&l, &c.devices[0].reads, Usage::DeviceRead).unwrap_err();
        assert!(
            e.message.contains("STRING(8): strings are not exchanged"),
            "{e}"
        );
        assert_eq!(default_server_points(&l).1, vec!["st.name".to_string()]);
    }

    #[test]
    fn vars_lists_are_laid_out_back_to_back_by_type_width() {
        let c = dev("[[device.read]]\nvars = [\"level\", \"temp\"]\ntable = \"input_register\"\naddress = 10\n");
        let b = bind_points(&layout(), &c.devices[0].reads, Usage::DeviceRead).unwrap();
        assert_eq!((b[0].address, b[0].len()), (10, 2));
        assert_eq!((b[1].address, b[1].len()), (12, 1));
    }

    #[test]
    fn unknown_variables_and_outputs_read_from_devices_are_rejected_with_location() {
        let c = dev("[[device.read]]\nvar = \"levl\"\ntable = \"input_register\"\naddress = 1\n");
        let e = bind_points(&layout(), &c.devices[0].reads, Usage::DeviceRead).unwrap_err();
        assert!(
            e.message.starts_with("m.toml:5:7:") && e.message.contains("levl"),
            "{e}"
        );
        let c = dev("[[device.read]]\nvar = \"pump\"\ntable = \"coil\"\naddress = 1\n");
        let e = bind_points(&layout(), &c.devices[0].reads, Usage::DeviceRead).unwrap_err();
        assert!(e.message.contains("output"), "{e}");
    }

    #[test]
    fn overlapping_writes_name_both_variables() {
        let c = dev(
            "[[device.write]]\nvar = \"speed\"\ntable = \"holding\"\naddress = 1\ntype = \"DINT\"\n\
             [[device.write]]\nvar = \"sp\"\ntable = \"holding\"\naddress = 2\n",
        );
        let e = bind_points(&layout(), &c.devices[0].writes, Usage::DeviceWrite).unwrap_err();
        assert!(
            e.message.contains("st.sp") && e.message.contains("st.speed"),
            "{e}"
        );
    }

    #[test]
    fn coils_need_bool_variables() {
        let c = dev("[[device.write]]\nvar = \"speed\"\ntable = \"coil\"\naddress = 1\n");
        let e = bind_points(&layout(), &c.devices[0].writes, Usage::DeviceWrite).unwrap_err();
        assert!(e.message.contains("BOOL"), "{e}");
    }

    #[test]
    fn values_may_not_run_past_the_address_space() {
        let c =
            dev("[[device.read]]\nvar = \"level\"\ntable = \"input_register\"\naddress = 65535\n");
        let e = bind_points(&layout(), &c.devices[0].reads, Usage::DeviceRead).unwrap_err();
        assert!(e.message.contains("65535"), "{e}");
    }
}
