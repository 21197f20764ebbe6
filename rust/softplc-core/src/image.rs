//! The process image: named, typed variables bound to fixed slots in the input,
//! output and memory areas.
//!
//! A [`Layout`] is built once at load time by a [`LayoutBuilder`] (which allocates and
//! reports errors naming the culprit). The scan then reads and writes an [`Image`]
//! through [`Slot`]s: fixed offsets, no lookups, no allocation.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::access::WriteRule;
pub use crate::address::MAX_AREA_BYTES;
use crate::address::{Address, Area, Size};
use crate::retain::RetainKind;
use crate::types::{IecType, Value};

/// Most variables one process image holds (array elements count one each).
///
/// Each variable costs memory in the layout, in the image (quality and time stamp)
/// and in every trace; the limit keeps a mistaken declaration
/// (`ARRAY(INT, 10_000_000)`) from exhausting memory, whichever way it arrives (a
/// program file, the bindings or Rust code). The Python side checks the same number
/// per program before it builds anything (`softplc.limits.MAX_VARIABLES`), so that a
/// program that passes `softplc check` also fits an image.
pub const MAX_VARIABLES: usize = 65_536;

/// Index of a variable in its [`Layout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarId(pub u32);

impl VarId {
    /// The index as usize.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a variable lives: area, byte offset, bit, type. `Copy`; the scan reads these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// Area.
    pub area: Area,
    /// Byte offset in the area.
    pub offset: u32,
    /// Bit number for BOOL, else 0.
    pub bit: u8,
    /// Type.
    pub ty: IecType,
}

/// Quality of an input's data, as fieldbus drivers report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Quality {
    /// Fresh data from a working device (or a variable no driver supplies).
    #[default]
    Good = 0,
    /// The device failed; the value is the last one or a declared substitute.
    Bad = 1,
    /// The device has not answered within its expected period.
    Stale = 2,
}

impl Quality {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Quality::Good => "good",
            Quality::Bad => "bad",
            Quality::Stale => "stale",
        }
    }
}

/// A declared variable.
#[derive(Clone, Debug, PartialEq)]
pub struct VarInfo {
    /// Name, unique in the layout (`tank.level`).
    pub name: String,
    /// Its address (given or assigned).
    pub address: Address,
    /// True when the address was given, false when assigned automatically.
    pub explicit: bool,
    /// Slot.
    pub slot: Slot,
    /// Value at start-up (and after a cold restart).
    pub initial: Value,
    /// Text at start-up of a STRING variable (empty for other types).
    pub initial_text: Vec<u8>,
    /// Value an output takes in STOP and FAULT.
    pub safe: Value,
    /// Free text unit (`"%"`, `"degC"`), for traces.
    pub unit: String,
    /// What external writers may do (range, read-only); see [`crate::access`].
    pub rule: WriteRule,
    /// Kept across restarts (see [`crate::retain`]); memory variables only.
    pub retain: Option<RetainKind>,
}

/// A variable to declare.
#[derive(Clone, Debug)]
pub struct VarDecl {
    /// Name.
    pub name: String,
    /// Area.
    pub area: Area,
    /// Type.
    pub ty: IecType,
    /// Direct address text (`%IX0.0`), or None to assign one.
    pub address: Option<String>,
    /// Initial value; None means zero.
    pub initial: Option<Value>,
    /// Initial text of a STRING variable (truncated to its capacity).
    pub initial_text: Vec<u8>,
    /// Safe value for outputs; None means zero.
    pub safe: Option<Value>,
    /// Unit text.
    pub unit: String,
    /// What external writers may do (range, read-only); checked against the type and
    /// the initial value when declared.
    pub rule: WriteRule,
    /// Kept across restarts: `retain` or `persistent` (memory variables only).
    pub retain: Option<RetainKind>,
}

impl VarDecl {
    /// A declaration with zero initial and safe values and no unit.
    pub fn new(name: &str, area: Area, ty: IecType, address: Option<&str>) -> VarDecl {
        VarDecl {
            name: name.to_string(),
            area,
            ty,
            address: address.map(str::to_string),
            initial: None,
            initial_text: Vec::new(),
            safe: None,
            unit: String::new(),
            rule: WriteRule::default(),
            retain: None,
        }
    }
}

/// A load-time configuration error. Its message names the culprit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The message.
    pub message: String,
}

impl ConfigError {
    /// Builds an error from any message.
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError {
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Why a name (or index) does not lead to exactly one variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// No variable has that name, address or last name component.
    Unknown {
        /// The name asked for.
        name: String,
        /// Close names, as ` (did you mean a, b?)`, or empty.
        hint: String,
    },
    /// The bare name is the last component of several variables.
    Ambiguous {
        /// The name asked for.
        name: String,
        /// Two of the variables it matches.
        matches: (String, String),
    },
    /// No variable has that index.
    NoIndex(i64),
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::Unknown { name, hint } => write!(f, "unknown variable {name:?}{hint}"),
            LookupError::Ambiguous { name, matches } => write!(
                f,
                "variable name {name:?} is ambiguous: {:?} and {:?} (use the full name)",
                matches.0, matches.1
            ),
            LookupError::NoIndex(i) => write!(f, "no variable with index {i}"),
        }
    }
}

impl std::error::Error for LookupError {}

impl From<LookupError> for ConfigError {
    fn from(e: LookupError) -> ConfigError {
        ConfigError::new(e.to_string())
    }
}

/// The variables of a process image and where each one lives. Immutable once built.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    vars: Vec<VarInfo>,
    by_name: HashMap<String, VarId>,
    area_bytes: [usize; 3],
}

impl Layout {
    /// All variables, in declaration order.
    pub fn vars(&self) -> &[VarInfo] {
        &self.vars
    }

    /// One variable.
    pub fn var(&self, id: VarId) -> &VarInfo {
        &self.vars[id.index()]
    }

    /// Looks a variable up by name, as [`Layout::lookup`] does, with the error as a
    /// configuration error (load time: the name comes from a declaration or a file).
    pub fn find(&self, name: &str) -> Result<VarId, ConfigError> {
        self.lookup(name).map_err(ConfigError::from)
    }

    /// Looks a variable up by name or direct address. A bare name (`level`) matches a
    /// qualified one (`tank.level`) when exactly one variable has that last component.
    pub fn lookup(&self, name: &str) -> Result<VarId, LookupError> {
        if let Some(id) = self.by_name.get(name) {
            return Ok(*id);
        }
        if let Ok(addr) = Address::parse(name) {
            if let Some(i) = self.vars.iter().position(|v| v.address == addr) {
                return Ok(VarId(i as u32));
            }
        }
        let suffix = format!(".{name}");
        let mut hits = self
            .vars
            .iter()
            .enumerate()
            .filter(|(_, v)| v.name.ends_with(&suffix));
        match (hits.next(), hits.next()) {
            (Some((i, _)), None) => Ok(VarId(i as u32)),
            (Some((_, a)), Some((_, b))) => Err(LookupError::Ambiguous {
                name: name.to_string(),
                matches: (a.name.clone(), b.name.clone()),
            }),
            _ => Err(LookupError::Unknown {
                name: name.to_string(),
                hint: self.suggest(name),
            }),
        }
    }

    /// The variable at `index` (declaration order), if there is one.
    pub fn id_at(&self, index: i64) -> Result<VarId, LookupError> {
        match usize::try_from(index) {
            Ok(i) if i < self.vars.len() => Ok(VarId(i as u32)),
            _ => Err(LookupError::NoIndex(index)),
        }
    }

    fn suggest(&self, name: &str) -> String {
        let lname = name.to_ascii_lowercase();
        let close: Vec<&str> = self
            .vars
            .iter()
            .map(|v| v.name.as_str())
            .filter(|n| {
                let ln = n.to_ascii_lowercase();
                ln.contains(&lname) || lname.contains(ln.rsplit('.').next().unwrap_or(""))
            })
            .take(3)
            .collect();
        if close.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", close.join(", "))
        }
    }

    /// Bytes used by each area (input, output, memory).
    pub fn area_bytes(&self, area: Area) -> usize {
        self.area_bytes[area.index()]
    }

    /// Number of variables.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// True when no variable is declared.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

/// Builds a [`Layout`], checking names, addresses and types as it goes.
#[derive(Clone, Debug, Default)]
pub struct LayoutBuilder {
    vars: Vec<(VarDecl, Option<Address>)>,
    names: HashMap<String, usize>,
    /// Per area, the explicitly addressed variables as bit intervals: start bit ->
    /// (end bit, index of the first variable declared there). The intervals never
    /// overlap (only identical input declarations share one, and the first keeps
    /// it), so the overlap check is a lookup instead of a pass over every earlier
    /// variable: declaring n variables stays O(n log n).
    taken: [BTreeMap<usize, (usize, usize)>; 3],
}

/// The bits a variable of type `ty` at `a` occupies in its area, as a half-open
/// interval (a STRING takes its whole length from its first byte).
fn bit_span(a: &Address, ty: IecType) -> (usize, usize) {
    let start = a.byte_offset() * 8;
    if a.size == Size::Bit {
        let bit = start + a.bit as usize;
        (bit, bit + 1)
    } else {
        (start, start + span_bytes(a, ty) * 8)
    }
}

/// Bytes a variable of type `ty` at `a` takes.
fn span_bytes(a: &Address, ty: IecType) -> usize {
    match ty {
        IecType::String(_) => ty.size(),
        _ => a.size.bytes(),
    }
}

fn size_for(ty: IecType) -> Size {
    if let IecType::String(_) = ty {
        return Size::Byte;
    }
    match ty.size() {
        0 => Size::Bit,
        1 => Size::Byte,
        2 => Size::Word,
        4 => Size::Double,
        _ => Size::Long,
    }
}

impl Layout {
    /// This layout grown by `new` declarations, for an online change: every existing
    /// variable keeps its id, its slot and its address, so drivers, observers and the
    /// programs bound to this layout stay valid; `retire` renames existing variables
    /// (to tombstone names: their slots stay allocated until the next restart, their
    /// old names become free for a new declaration, e.g. with another type). New
    /// variables get free places around the existing ones; an explicit address that
    /// overlaps an existing variable is an error naming both.
    pub fn extended(
        &self,
        retire: &[(VarId, String)],
        new: Vec<VarDecl>,
    ) -> Result<Layout, ConfigError> {
        let mut b = LayoutBuilder::new();
        for (i, v) in self.vars.iter().enumerate() {
            let name = retire
                .iter()
                .find(|(id, _)| id.index() == i)
                .map_or_else(|| v.name.clone(), |(_, n)| n.clone());
            let mut d = VarDecl::new(&name, v.slot.area, v.slot.ty, None);
            d.address = Some(v.address.to_string());
            d.initial = Some(v.initial);
            d.safe = Some(v.safe);
            d.unit = v.unit.clone();
            d.rule = v.rule;
            d.retain = v.retain;
            b.declare(d)?;
        }
        for d in new {
            b.declare(d)?;
        }
        let mut out = b.build()?;
        // Existing variables were declared with their addresses: keep how they got them.
        for (v, old) in out.vars.iter_mut().zip(self.vars.iter()) {
            v.explicit = old.explicit;
        }
        Ok(out)
    }
}

impl LayoutBuilder {
    /// An empty builder.
    pub fn new() -> LayoutBuilder {
        LayoutBuilder::default()
    }

    /// Number of declarations so far.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// True when nothing is declared yet.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Forgets every declaration after the first `n` (undoes a partly added program).
    pub fn truncate(&mut self, n: usize) {
        let first = n.min(self.vars.len());
        for (i, (d, a)) in self.vars.drain(first..).enumerate() {
            self.names.remove(&d.name);
            if let Some(a) = a {
                let map = &mut self.taken[a.area.index()];
                let (start, _) = bit_span(&a, d.ty);
                if map
                    .get(&start)
                    .is_some_and(|&(_, owner)| owner == first + i)
                {
                    map.remove(&start);
                }
            }
        }
    }

    /// The earliest declared variable whose explicit address overlaps a variable of
    /// type `ty` at `a`, if any.
    fn first_overlap(&self, a: &Address, ty: IecType) -> Option<usize> {
        let (start, end) = bit_span(a, ty);
        // The intervals are disjoint and sorted by start, so the ones overlapping
        // [start, end) are the last few that begin before `end`.
        self.taken[a.area.index()]
            .range(..end)
            .rev()
            .take_while(|(_, &(e, _))| e > start)
            .map(|(_, &(_, owner))| owner)
            .min()
    }

    /// Declares a variable. Errors name the variable and, for overlaps, the other one.
    ///
    /// Two *input* declarations with the same address and type alias the same slot on
    /// purpose (two programs reading one sensor); every other overlap is an error.
    pub fn declare(&mut self, decl: VarDecl) -> Result<VarId, ConfigError> {
        let name = decl.name.trim();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(ConfigError::new(format!(
                "invalid variable name {:?}: names are non-empty and have no spaces",
                decl.name
            )));
        }
        if self.names.contains_key(name) {
            return Err(ConfigError::new(format!(
                "duplicate variable name {name:?}"
            )));
        }
        if self.vars.len() >= MAX_VARIABLES {
            return Err(ConfigError::new(format!(
                "variable {name:?}: a process image holds at most {MAX_VARIABLES} variables \
                 (array elements count one each); declare fewer or smaller arrays"
            )));
        }
        let check = |v: Option<Value>, what: &str| -> Result<(), ConfigError> {
            if let Some(v) = v {
                v.convert(decl.ty)
                    .map_err(|e| ConfigError::new(format!("{what} value of {name:?}: {e}")))?;
            }
            Ok(())
        };
        check(decl.initial, "initial")?;
        check(decl.safe, "safe")?;
        let initial = decl
            .initial
            .and_then(|v| v.convert(decl.ty).ok())
            .unwrap_or(decl.ty.zero());
        decl.rule
            .validated(decl.ty, initial)
            .map_err(|e| ConfigError::new(format!("variable {name:?}: {e}")))?;
        if let Some(k) = decl.retain {
            if decl.area != Area::Memory {
                return Err(ConfigError::new(format!(
                    "variable {name:?}: only memory variables can be {} (an input is read \
                     afresh and an output takes its safe value at every start)",
                    k.name()
                )));
            }
            // Retain files hold one 64-bit value per variable; text would need a
            // record format of its own.
            if matches!(decl.ty, IecType::String(_)) {
                return Err(ConfigError::new(format!(
                    "variable {name:?}: a {} cannot be {} (retained text is not supported \
                     yet; keep it in a program that rebuilds it)",
                    decl.ty,
                    k.name()
                )));
            }
        }
        let addr = match &decl.address {
            None => None,
            Some(text) => {
                let a = Address::parse(text)
                    .map_err(|e| ConfigError::new(format!("variable {name:?}: {e}")))?;
                if a.area != decl.area {
                    return Err(ConfigError::new(format!(
                        "variable {name:?}: {a} is in the {} area, but {name:?} is declared as {} {}",
                        a.area.word(),
                        if decl.area == Area::Memory { "a" } else { "an" },
                        decl.area.word()
                    )));
                }
                let want = size_for(decl.ty);
                if a.size != want {
                    return Err(ConfigError::new(format!(
                        "type mismatch for {name:?} ({}): {}",
                        decl.ty,
                        a.size_mismatch(want)
                    )));
                }
                if (a.byte_offset() + span_bytes(&a, decl.ty)) as u64 > MAX_AREA_BYTES {
                    return Err(ConfigError::new(format!(
                        "variable {name:?}: {a} and its {} bytes run past the end of the {} \
                         area ({MAX_AREA_BYTES} bytes)",
                        decl.ty.size(),
                        a.area.word()
                    )));
                }
                if let Some(i) = self.first_overlap(&a, decl.ty) {
                    let (other, oaddr) = &self.vars[i];
                    let oa = oaddr.expect("only explicit addresses are recorded");
                    let same_input = oa == a && a.area == Area::Input && other.ty == decl.ty;
                    if !same_input {
                        return Err(ConfigError::new(format!(
                            "address {a} of {name:?} overlaps {oa} of {:?}",
                            other.name
                        )));
                    }
                } else {
                    let (start, end) = bit_span(&a, decl.ty);
                    self.taken[a.area.index()].insert(start, (end, self.vars.len()));
                }
                Some(a)
            }
        };
        let mut d = decl.clone();
        d.name = name.to_string();
        self.names.insert(d.name.clone(), self.vars.len());
        self.vars.push((d, addr));
        Ok(VarId(self.vars.len() as u32 - 1))
    }

    /// Assigns addresses to the variables declared without one and builds the layout.
    ///
    /// Assigned variables take the first free, naturally aligned place after every
    /// explicitly addressed byte of their area, so adding one never moves another
    /// explicit address; BOOLs share bytes bit by bit.
    pub fn build(self) -> Result<Layout, ConfigError> {
        let mut used: [Vec<u8>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let mark = |used: &mut Vec<u8>, a: &Address, ty: IecType| {
            let end = a.byte_offset() + span_bytes(a, ty);
            if used.len() < end {
                used.resize(end, 0);
            }
            if a.size == Size::Bit {
                used[a.byte_offset()] |= 1 << a.bit;
            } else {
                for b in &mut used[a.byte_offset()..end] {
                    *b = 0xff;
                }
            }
        };
        for (d, a) in self.vars.iter() {
            if let Some(a) = a {
                mark(&mut used[a.area.index()], a, d.ty);
            }
        }
        // Where each search for a free place resumes. Marks only ever set bits, so a
        // byte found unusable stays unusable and every search can continue where the
        // previous one stopped: assigning n variables is linear in n and in the area
        // size, instead of rescanning the area from its start for each one.
        // Per area: the first byte that may hold some bits but not all (new BOOLs go
        // there first), the first byte that may be all zero, and per wider size
        // (byte, word, double, long) the first aligned offset that may be free.
        let mut partial_from = [0usize; 3];
        let mut zero_from = [0usize; 3];
        let mut wide_from = [[0usize; 4]; 3];
        let mut vars = Vec::with_capacity(self.vars.len());
        let mut by_name = HashMap::new();
        for (decl, addr) in self.vars {
            let explicit = addr.is_some();
            let address = match addr {
                Some(a) => a,
                None => {
                    let ai = decl.area.index();
                    let u = &mut used[ai];
                    let size = size_for(decl.ty);
                    let a = if size == Size::Bit {
                        // Only bytes already holding bits are shared with new bits;
                        // a byte used by a wider variable is all ones.
                        let partial = u
                            .iter()
                            .enumerate()
                            .skip(partial_from[ai])
                            .find(|(_, b)| **b != 0xff && **b != 0)
                            .map(|(i, b)| (i, b.trailing_ones() as u8));
                        let (byte, bit) = match partial {
                            Some(hit) => {
                                partial_from[ai] = hit.0;
                                hit
                            }
                            None => {
                                let i = u
                                    .iter()
                                    .skip(zero_from[ai])
                                    .position(|b| *b == 0)
                                    .map_or(u.len(), |p| zero_from[ai] + p);
                                zero_from[ai] = i;
                                // This byte is the only one with some bits now.
                                partial_from[ai] = i;
                                (i, 0)
                            }
                        };
                        Address::at(decl.area, Size::Bit, byte, bit)
                    } else if let IecType::String(_) = decl.ty {
                        // A run of free bytes, byte-aligned; strings are few, so a plain
                        // search from the first byte that may be free.
                        let n = decl.ty.size();
                        let mut off = wide_from[ai][0];
                        while off < u.len()
                            && u[off..(off + n).min(u.len())].iter().any(|b| *b != 0)
                        {
                            off += 1;
                        }
                        Address::at(decl.area, Size::Byte, off, 0)
                    } else {
                        let n = size.bytes();
                        let k = n.trailing_zeros() as usize;
                        let mut off = wide_from[ai][k];
                        while off < u.len()
                            && u[off..(off + n).min(u.len())].iter().any(|b| *b != 0)
                        {
                            off += n;
                        }
                        wide_from[ai][k] = off;
                        Address::at(decl.area, size, off, 0)
                    };
                    if (a.byte_offset() + span_bytes(&a, decl.ty)) as u64 > MAX_AREA_BYTES {
                        return Err(ConfigError::new(format!(
                            "no room left in the {} area for {:?} (an area holds at most \
                             {MAX_AREA_BYTES} bytes)",
                            decl.area.word(),
                            decl.name
                        )));
                    }
                    mark(u, &a, decl.ty);
                    a
                }
            };
            let slot = Slot {
                area: address.area,
                offset: address.byte_offset() as u32,
                bit: address.bit,
                ty: decl.ty,
            };
            let conv = |v: Option<Value>| -> Value {
                v.and_then(|v| v.convert(decl.ty).ok())
                    .unwrap_or(decl.ty.zero())
            };
            by_name.insert(decl.name.clone(), VarId(vars.len() as u32));
            let mut initial_text = decl.initial_text;
            initial_text.truncate(decl.ty.string_capacity().unwrap_or(0) as usize);
            vars.push(VarInfo {
                name: decl.name,
                address,
                explicit,
                slot,
                initial_text,
                initial: conv(decl.initial),
                safe: conv(decl.safe),
                unit: decl.unit,
                // Checked in `declare`.
                rule: decl
                    .rule
                    .validated(decl.ty, conv(decl.initial))
                    .unwrap_or_default(),
                retain: decl.retain,
            });
        }
        let mut area_bytes = [0usize; 3];
        for v in &vars {
            let end = v.slot.offset as usize + span_bytes(&v.address, v.slot.ty);
            let i = v.slot.area.index();
            area_bytes[i] = area_bytes[i].max(end);
        }
        Ok(Layout {
            vars,
            by_name,
            area_bytes,
        })
    }
}

/// The memory of a process image: three byte areas plus, per variable, the quality and
/// acquisition time of its data.
///
/// Which side writes what: drivers write input bytes, quality and stamps (in
/// `read_inputs`, on the scan thread); programs write outputs and memory; the engine
/// writes forces and safe values. Nothing else touches it while the scan runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Area bytes, indexed by [`Area::index`].
    pub areas: [Vec<u8>; 3],
    /// Quality per variable (meaningful for inputs).
    pub quality: Vec<Quality>,
    /// Time (engine clock, ns) the variable's data was acquired.
    pub stamp_ns: Vec<u64>,
}

impl Image {
    /// An image for `layout` holding every variable's initial value.
    pub fn new(layout: &Layout) -> Image {
        let mut img = Image {
            areas: [
                vec![0; layout.area_bytes(Area::Input)],
                vec![0; layout.area_bytes(Area::Output)],
                vec![0; layout.area_bytes(Area::Memory)],
            ],
            quality: vec![Quality::Good; layout.len()],
            stamp_ns: vec![0; layout.len()],
        };
        for v in layout.vars() {
            img.store(v.slot, v.initial);
            if !v.initial_text.is_empty() {
                img.set_text(v.slot, &v.initial_text);
            }
        }
        img
    }

    /// The text of a STRING slot (empty for other types): its length byte says how
    /// many of the bytes after it, never more than the capacity. No allocation.
    pub fn text(&self, slot: Slot) -> &[u8] {
        let Some(cap) = slot.ty.string_capacity() else {
            return &[];
        };
        let bytes = &self.areas[slot.area.index()];
        let off = slot.offset as usize;
        let len = bytes[off].min(cap) as usize;
        &bytes[off + 1..off + 1 + len]
    }

    /// Writes the text of a STRING slot, truncated to its capacity (IEC's rule for a
    /// string assigned a longer one); nothing for other types. No allocation.
    pub fn set_text(&mut self, slot: Slot, text: &[u8]) {
        let Some(cap) = slot.ty.string_capacity() else {
            return;
        };
        let n = text.len().min(cap as usize);
        let bytes = &mut self.areas[slot.area.index()];
        let off = slot.offset as usize;
        bytes[off] = n as u8;
        bytes[off + 1..off + 1 + n].copy_from_slice(&text[..n]);
        bytes[off + 1 + n..off + 1 + cap as usize].fill(0);
    }

    /// Reads a slot. No allocation, locks or syscalls.
    #[inline]
    pub fn load(&self, slot: Slot) -> Value {
        let bytes = &self.areas[slot.area.index()];
        let off = slot.offset as usize;
        if slot.ty == IecType::Bool {
            return Value::Bool(bytes[off] >> slot.bit & 1 != 0);
        }
        if let IecType::String(_) = slot.ty {
            return Value::from_bits(slot.ty, bytes[off] as u64); // its length
        }
        let n = slot.ty.size();
        let mut raw = [0u8; 8];
        raw[..n].copy_from_slice(&bytes[off..off + n]);
        Value::from_bits(slot.ty, u64::from_le_bytes(raw))
    }

    /// Writes a slot; `v` must already be of the slot's type (see [`Value::convert`]),
    /// otherwise its bits are reinterpreted. No allocation, locks or syscalls.
    #[inline]
    pub fn store(&mut self, slot: Slot, v: Value) {
        let bytes = &mut self.areas[slot.area.index()];
        let off = slot.offset as usize;
        if slot.ty == IecType::Bool {
            let on = v.to_bits() != 0;
            if on {
                bytes[off] |= 1 << slot.bit;
            } else {
                bytes[off] &= !(1 << slot.bit);
            }
            return;
        }
        if let IecType::String(cap) = slot.ty {
            // A STRING's value is its length: storing one cuts the text (0 empties it).
            bytes[off] = v.to_bits().min(cap as u64) as u8;
            return;
        }
        let n = slot.ty.size();
        bytes[off..off + n].copy_from_slice(&v.to_bits().to_le_bytes()[..n]);
    }

    /// Copies everything from `other`. Without reallocating when both follow the same
    /// layout (scan thread: no allocation, locks or syscalls then); an image of a grown
    /// layout (after an online change) is resized once, which allocates.
    pub fn copy_from(&mut self, other: &Image) {
        for (a, b) in self.areas.iter_mut().zip(other.areas.iter()) {
            if a.len() != b.len() {
                a.resize(b.len(), 0);
            }
            a.copy_from_slice(b);
        }
        if self.quality.len() != other.quality.len() {
            self.quality.resize(other.quality.len(), Quality::Good);
            self.stamp_ns.resize(other.stamp_ns.len(), 0);
        }
        self.quality.copy_from_slice(&other.quality);
        self.stamp_ns.copy_from_slice(&other.stamp_ns);
    }

    /// Grows the image to `layout`, an extension of the layout it follows ([`Layout::
    /// extended`]): every existing byte, quality and stamp stays; the new variables take
    /// their initial values. Allocates (the switch of an online change).
    pub fn grow_to(&mut self, layout: &Layout, stamp_ns: u64) {
        let old = self.quality.len();
        for area in [Area::Input, Area::Output, Area::Memory] {
            let a = &mut self.areas[area.index()];
            if a.len() < layout.area_bytes(area) {
                a.resize(layout.area_bytes(area), 0);
            }
        }
        self.quality.resize(layout.len(), Quality::Good);
        self.stamp_ns.resize(layout.len(), stamp_ns);
        for v in &layout.vars()[old.min(layout.len())..] {
            self.store(v.slot, v.initial);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(name: &str, area: Area, ty: IecType, addr: Option<&str>) -> VarDecl {
        VarDecl::new(name, area, ty, addr)
    }

    #[test]
    fn auto_assigned_bools_share_a_byte_and_words_align() {
        let mut b = LayoutBuilder::new();
        b.declare(decl("a", Area::Input, IecType::Bool, Some("%IX0.0")))
            .unwrap();
        let x = b
            .declare(decl("x", Area::Input, IecType::Bool, None))
            .unwrap();
        let w = b
            .declare(decl("w", Area::Input, IecType::Int, None))
            .unwrap();
        let l = b.build().unwrap();
        assert_eq!(l.var(x).address.to_string(), "%IX0.1");
        assert_eq!(l.var(w).address.to_string(), "%IW1");
    }

    #[test]
    fn overlap_names_both_variables() {
        let mut b = LayoutBuilder::new();
        b.declare(decl("speed", Area::Output, IecType::Int, Some("%QW1")))
            .unwrap();
        let e = b
            .declare(decl("flag", Area::Output, IecType::Bool, Some("%QX2.0")))
            .unwrap_err();
        assert!(
            e.message.contains("\"flag\"") && e.message.contains("\"speed\""),
            "{e}"
        );
    }

    #[test]
    fn same_input_address_may_be_shared() {
        let mut b = LayoutBuilder::new();
        b.declare(decl("a.start", Area::Input, IecType::Bool, Some("%IX0.0")))
            .unwrap();
        b.declare(decl("b.start", Area::Input, IecType::Bool, Some("%IX0.0")))
            .unwrap();
        let l = b.build().unwrap();
        assert_eq!(l.vars()[0].slot, l.vars()[1].slot);
    }

    #[test]
    fn type_mismatch_and_wrong_area_are_reported() {
        let mut b = LayoutBuilder::new();
        let e = b
            .declare(decl("t", Area::Input, IecType::Real, Some("%IW0")))
            .unwrap_err();
        assert!(e.message.contains("type mismatch"), "{e}");
        let e = b
            .declare(decl("t", Area::Input, IecType::Real, Some("%QD0")))
            .unwrap_err();
        assert!(e.message.contains("output area"), "{e}");
        b.declare(decl("t", Area::Input, IecType::Real, Some("%ID0")))
            .unwrap();
        let e = b
            .declare(decl("t", Area::Memory, IecType::Real, None))
            .unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
    }

    #[test]
    fn store_and_load_round_trip_and_bools_do_not_disturb_neighbours() {
        let mut b = LayoutBuilder::new();
        let a = b
            .declare(decl("a", Area::Memory, IecType::Bool, None))
            .unwrap();
        let c = b
            .declare(decl("c", Area::Memory, IecType::Bool, None))
            .unwrap();
        let r = b
            .declare(decl("r", Area::Memory, IecType::Lreal, None))
            .unwrap();
        let l = b.build().unwrap();
        let mut img = Image::new(&l);
        img.store(l.var(a).slot, Value::Bool(true));
        img.store(l.var(r).slot, Value::Lreal(-3.5));
        assert_eq!(img.load(l.var(a).slot), Value::Bool(true));
        assert_eq!(img.load(l.var(c).slot), Value::Bool(false));
        assert_eq!(img.load(l.var(r).slot), Value::Lreal(-3.5));
    }

    #[test]
    fn the_variable_past_the_limit_is_refused_by_name() {
        let mut b = LayoutBuilder::new();
        for i in 0..MAX_VARIABLES {
            b.declare(decl(&format!("m[{i}]"), Area::Memory, IecType::Bool, None))
                .unwrap();
        }
        let e = b
            .declare(decl("one_more", Area::Memory, IecType::Bool, None))
            .unwrap_err();
        assert!(
            e.message.contains("\"one_more\"") && e.message.contains("65536"),
            "{e}"
        );
        // Everything up to the limit builds (BOOLs packed eight to a byte).
        let l = b.build().unwrap();
        assert_eq!(l.len(), MAX_VARIABLES);
        assert_eq!(l.area_bytes(Area::Memory), MAX_VARIABLES / 8);
    }

    #[test]
    fn an_address_past_the_area_limit_is_refused_by_name() {
        let last = MAX_AREA_BYTES / 8 - 1;
        let mut b = LayoutBuilder::new();
        b.declare(decl(
            "top",
            Area::Memory,
            IecType::Lint,
            Some(&format!("%ML{last}")),
        ))
        .unwrap();
        let e = b
            .declare(decl(
                "far",
                Area::Memory,
                IecType::Lint,
                Some(&format!("%ML{}", last + 1)),
            ))
            .unwrap_err();
        assert!(
            e.message.contains("\"far\"") && e.message.contains("16 MiB"),
            "{e}"
        );
        let l = b.build().unwrap();
        assert_eq!(l.area_bytes(Area::Memory) as u64, MAX_AREA_BYTES);
    }

    #[test]
    fn overlaps_are_found_across_sizes_and_undone_by_truncate() {
        let mut b = LayoutBuilder::new();
        b.declare(decl("b0", Area::Memory, IecType::Usint, Some("%MB0")))
            .unwrap();
        b.declare(decl("b3", Area::Memory, IecType::Usint, Some("%MB3")))
            .unwrap();
        b.declare(decl("x4", Area::Memory, IecType::Bool, Some("%MX4.1")))
            .unwrap();
        // A double word over bytes 0..3 meets both bytes; the earlier one is named.
        let e = b
            .declare(decl("d", Area::Memory, IecType::Dint, Some("%MD0")))
            .unwrap_err();
        assert!(e.message.contains("\"b0\""), "{e}");
        let e = b
            .declare(decl("w", Area::Memory, IecType::Int, Some("%MW1")))
            .unwrap_err();
        assert!(e.message.contains("\"b3\""), "{e}");
        // Another bit of byte 4 is free; the same bit and the whole byte are not.
        b.declare(decl("x4b", Area::Memory, IecType::Bool, Some("%MX4.2")))
            .unwrap();
        assert!(b
            .declare(decl("x4c", Area::Memory, IecType::Bool, Some("%MX4.1")))
            .is_err());
        assert!(b
            .declare(decl("b4", Area::Memory, IecType::Usint, Some("%MB4")))
            .unwrap_err()
            .message
            .contains("\"x4\""));
        // Other areas are separate.
        b.declare(decl("q", Area::Output, IecType::Dint, Some("%QD0")))
            .unwrap();
        // Undoing the declarations frees their addresses.
        b.truncate(1);
        b.declare(decl("w", Area::Memory, IecType::Int, Some("%MW1")))
            .unwrap();
        b.declare(decl("x", Area::Memory, IecType::Bool, Some("%MX4.1")))
            .unwrap();
    }

    /// The assignment rule as first written (each search from the start of the area),
    /// kept as the reference the resumable searches must agree with.
    fn naive_layout(decls: &[VarDecl]) -> Vec<String> {
        let mut used: [Vec<u8>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let mark = |used: &mut Vec<u8>, a: &Address| {
            let end = a.byte_offset() + a.size.bytes();
            if used.len() < end {
                used.resize(end, 0);
            }
            if a.size == Size::Bit {
                used[a.byte_offset()] |= 1 << a.bit;
            } else {
                used[a.byte_offset()..end].fill(0xff);
            }
        };
        let parsed: Vec<Option<Address>> = decls
            .iter()
            .map(|d| d.address.as_deref().map(|t| Address::parse(t).unwrap()))
            .collect();
        for a in parsed.iter().flatten() {
            mark(&mut used[a.area.index()], a);
        }
        let mut out = Vec::new();
        for (d, a) in decls.iter().zip(parsed) {
            let a = a.unwrap_or_else(|| {
                let u = &mut used[d.area.index()];
                let size = size_for(d.ty);
                let a = if size == Size::Bit {
                    let partial = u
                        .iter()
                        .enumerate()
                        .find(|(_, b)| **b != 0xff && **b != 0)
                        .map(|(i, b)| (i, b.trailing_ones() as u8));
                    let (byte, bit) = partial
                        .unwrap_or_else(|| (u.iter().position(|b| *b == 0).unwrap_or(u.len()), 0));
                    Address::at(d.area, Size::Bit, byte, bit)
                } else {
                    let n = size.bytes();
                    let mut off = 0;
                    while off < u.len() && u[off..(off + n).min(u.len())].iter().any(|b| *b != 0) {
                        off += n;
                    }
                    Address::at(d.area, size, off, 0)
                };
                mark(u, &a);
                a
            });
            out.push(a.to_string());
        }
        out
    }

    #[test]
    fn assigned_addresses_match_the_rescanning_rule() {
        let types = [
            IecType::Bool,
            IecType::Usint,
            IecType::Int,
            IecType::Real,
            IecType::Lreal,
        ];
        let letters = ["X", "B", "W", "D", "L"];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for case in 0..200 {
            let mut b = LayoutBuilder::new();
            let mut decls = Vec::new();
            for i in 0..40 {
                let k = next(types.len() as u64) as usize;
                let area = if next(2) == 0 {
                    Area::Memory
                } else {
                    Area::Output
                };
                let address = if next(3) == 0 {
                    let p = if area == Area::Memory { "M" } else { "Q" };
                    let index = next(12);
                    let bit = if k == 0 {
                        format!(".{}", next(8))
                    } else {
                        String::new()
                    };
                    Some(format!("%{p}{}{index}{bit}", letters[k]))
                } else {
                    None
                };
                let d = decl(&format!("v{i}"), area, types[k], address.as_deref());
                if b.declare(d.clone()).is_ok() {
                    decls.push(d);
                }
            }
            let l = b.build().unwrap();
            let got: Vec<String> = l.vars().iter().map(|v| v.address.to_string()).collect();
            assert_eq!(got, naive_layout(&decls), "case {case}");
        }
    }

    #[test]
    fn bare_names_resolve_when_unique() {
        let mut b = LayoutBuilder::new();
        b.declare(decl("tank.level", Area::Input, IecType::Real, None))
            .unwrap();
        b.declare(decl("tank.pump", Area::Output, IecType::Bool, None))
            .unwrap();
        b.declare(decl("oven.pump", Area::Output, IecType::Bool, None))
            .unwrap();
        let l = b.build().unwrap();
        assert_eq!(l.find("level").unwrap(), VarId(0));
        assert!(l.find("pump").unwrap_err().message.contains("ambiguous"));
        assert!(l
            .find("nope")
            .unwrap_err()
            .message
            .contains("unknown variable"));
        assert_eq!(l.find("%ID0").unwrap(), VarId(0));
    }

    #[test]
    fn a_string_takes_its_length_byte_and_capacity_and_truncates_on_write() {
        let mut b = LayoutBuilder::new();
        b.declare(VarDecl::new("a", Area::Memory, IecType::Int, None))
            .unwrap();
        let mut d = VarDecl::new("label", Area::Memory, IecType::String(6), None);
        d.initial_text = b"pump 12".to_vec();
        b.declare(d).unwrap();
        b.declare(VarDecl::new("b", Area::Memory, IecType::Int, None))
            .unwrap();
        // An explicit string runs over the bytes of the variable after it.
        b.declare(VarDecl::new("x", Area::Memory, IecType::Int, Some("%MW10")))
            .unwrap();
        let e = b
            .declare(VarDecl::new(
                "c",
                Area::Memory,
                IecType::String(4),
                Some("%MB16"),
            ))
            .map(|_| ())
            .unwrap_err();
        assert!(e.message.contains("overlaps"), "{}", e.message);
        let l = b.build().unwrap();
        let label = l.var(l.find("label").unwrap());
        assert_eq!(label.address.to_string(), "%MB2");
        assert_eq!(l.var(l.find("b").unwrap()).address.to_string(), "%MW5");
        let mut img = Image::new(&l);
        assert_eq!(img.text(label.slot), b"pump 1");
        img.set_text(label.slot, b"ab");
        assert_eq!(img.text(label.slot), b"ab");
        assert_eq!(&img.areas[2][2..9], b"\x02ab\0\0\0\0");
        assert_eq!(img.load(label.slot), Value::UInt(IecType::String(6), 2));
    }
}
