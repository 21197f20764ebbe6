//! Which signals a trace records, and where each one sits in a sampled row.
//!
//! A row is fixed-size and row-major: the cycle number and time, the per-task timing
//! fields, then the variables sorted by area and address so that neighbouring variables
//! become one `memcpy` from the image (1,000 auto-assigned REALs are a single copy). The
//! writer thread turns rows into columns in the order of the header.

use crate::address::Area;
use crate::image::{ConfigError, Image, Layout, VarId};
use crate::task::TaskId;
use crate::types::IecType;

use super::glob::{glob_match, is_glob};

/// Bytes of the row prefix: cycle (u64) and time (u64).
pub const PREFIX_BYTES: usize = 16;
/// Bytes of one task's timing fields: scheduled, start, exec (8 each), overrun (1).
pub const TIMING_BYTES: usize = 25;

/// What a signal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalKind {
    /// A variable of the input area.
    Input,
    /// A variable of the output area.
    Output,
    /// A variable of the memory area.
    Memory,
    /// A per-task timing field.
    Timing,
}

impl SignalKind {
    /// Lower-case name used in the file header.
    pub fn name(self) -> &'static str {
        match self {
            SignalKind::Input => "input",
            SignalKind::Output => "output",
            SignalKind::Memory => "memory",
            SignalKind::Timing => "timing",
        }
    }

    fn of_area(area: Area) -> SignalKind {
        match area {
            Area::Input => SignalKind::Input,
            Area::Output => SignalKind::Output,
            Area::Memory => SignalKind::Memory,
        }
    }
}

/// One recorded signal, as the header describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// Name (`tank.level`, `task:main.exec_time`).
    pub name: String,
    /// IEC type.
    pub ty: IecType,
    /// Unit text (may be empty).
    pub unit: String,
    /// Direct address (`%ID4`) for variables; None for timing signals.
    pub address: Option<String>,
    /// Kind.
    pub kind: SignalKind,
    /// The task a timing signal belongs to.
    pub task: Option<String>,
    /// Byte offset of the value in a row.
    pub row_off: usize,
}

impl Signal {
    /// Bytes per value in rows and columns (a BOOL takes one byte, 0 or 1).
    pub fn width(&self) -> usize {
        self.ty.size().max(1)
    }
}

/// The NumPy array-interface type string of a column of `ty` (`<f4`, `|b1`, ...). A
/// STRING column holds each row's bytes as the image does, length byte first: raw
/// records of the type's size (`|V13` for STRING(12)), which readers decode.
pub fn dtype(ty: IecType) -> std::borrow::Cow<'static, str> {
    if let IecType::String(_) = ty {
        return format!("|V{}", ty.size()).into();
    }
    scalar_dtype(ty).into()
}

fn scalar_dtype(ty: IecType) -> &'static str {
    match ty {
        IecType::Bool => "|b1",
        IecType::Sint => "|i1",
        IecType::Int => "<i2",
        IecType::Dint => "<i4",
        IecType::Lint | IecType::Time => "<i8",
        IecType::Usint | IecType::Byte => "|u1",
        IecType::Uint | IecType::Word => "<u2",
        IecType::Udint | IecType::Dword => "<u4",
        IecType::Ulint | IecType::Lword => "<u8",
        IecType::Real => "<f4",
        IecType::Lreal => "<f8",
        IecType::String(_) => "|V1",
    }
}

/// A run of bytes copied from an image area into the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunCopy {
    pub area: usize,
    pub src: usize,
    pub dst: usize,
    pub len: usize,
}

/// One BOOL: bit `bit` of byte `src` of an area, stored as a 0/1 byte at `dst`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BitCopy {
    pub area: usize,
    pub src: usize,
    pub bit: u8,
    pub dst: usize,
}

/// The resolved signals and the sampling plan.
#[derive(Clone, Debug)]
pub struct RowLayout {
    /// Signals in header order.
    pub signals: Vec<Signal>,
    /// Bytes per row.
    pub row_size: usize,
    /// Task names, in engine order.
    pub tasks: Vec<String>,
    /// Task periods (ns), in engine order.
    pub periods_ns: Vec<u64>,
    /// The task whose cycles make rows.
    pub trace_task: TaskId,
    /// True when the per-task timing fields are in the row.
    pub timing: bool,
    pub(crate) runs: Vec<RunCopy>,
    pub(crate) bits: Vec<BitCopy>,
    /// Area sizes the plan was made for, to refuse an image of another layout.
    pub(crate) area_bytes: [usize; 3],
}

/// The names of a task's timing signals, in row order.
pub fn timing_names(task: &str) -> [String; 4] {
    [
        format!("task:{task}.scheduled_ns"),
        format!("task:{task}.start_ns"),
        format!("task:{task}.exec_time"),
        format!("task:{task}.overrun"),
    ]
}

fn select(
    layout: &Layout,
    patterns: &[String],
    timing: &[String],
) -> Result<Vec<VarId>, ConfigError> {
    if patterns.is_empty() {
        return Ok((0..layout.len() as u32).map(VarId).collect());
    }
    let mut chosen: Vec<VarId> = Vec::new();
    let mut taken = vec![false; layout.len()];
    for raw in patterns {
        let pat = raw.trim();
        if pat.is_empty() {
            continue;
        }
        let mut hits = Vec::new();
        if is_glob(pat) {
            for (i, v) in layout.vars().iter().enumerate() {
                if glob_match(pat, &v.name) {
                    hits.push(VarId(i as u32));
                }
            }
            let timing_hit = timing.iter().any(|t| glob_match(pat, t));
            if hits.is_empty() && !timing_hit {
                return Err(ConfigError::new(format!(
                    "trace signal pattern {pat:?} matches no variable"
                )));
            }
        } else if timing.iter().any(|t| t == pat) {
            continue;
        } else {
            hits.push(layout.find(pat)?);
        }
        for id in hits {
            if !taken[id.index()] {
                taken[id.index()] = true;
                chosen.push(id);
            }
        }
    }
    Ok(chosen)
}

impl RowLayout {
    /// Resolves the signals of `patterns` against a layout and plans the row.
    ///
    /// Off the scan thread (allocates). Errors name the pattern or task at fault.
    pub fn new(
        layout: &Layout,
        task_names: &[String],
        periods_ns: &[u64],
        patterns: &[String],
        timing: bool,
        task: Option<&str>,
    ) -> Result<RowLayout, ConfigError> {
        if task_names.is_empty() {
            return Err(ConfigError::new("cannot trace an engine without tasks"));
        }
        let trace_task = match task {
            None => TaskId::FIRST,
            Some(name) => task_names
                .iter()
                .position(|t| t == name)
                .and_then(TaskId::new)
                .ok_or_else(|| {
                    ConfigError::new(format!(
                        "unknown trace task {name:?} (tasks: {})",
                        task_names.join(", ")
                    ))
                })?,
        };
        let timing_all: Vec<String> = task_names.iter().flat_map(|t| timing_names(t)).collect();
        for v in layout.vars() {
            if timing && timing_all.contains(&v.name) {
                return Err(ConfigError::new(format!(
                    "variable {:?} has the name of a trace timing signal; rename it or \
                     record without timing",
                    v.name
                )));
            }
        }
        let vars = select(layout, patterns, if timing { &timing_all } else { &[] })?;

        let mut signals = Vec::new();
        let mut off = PREFIX_BYTES;
        if timing {
            let types = [IecType::Ulint, IecType::Ulint, IecType::Time, IecType::Bool];
            let units = ["ns", "ns", "", ""];
            for t in task_names {
                let names = timing_names(t);
                let widths = [8, 8, 8, 1];
                for k in 0..4 {
                    signals.push(Signal {
                        name: names[k].clone(),
                        ty: types[k],
                        unit: units[k].to_string(),
                        address: None,
                        kind: SignalKind::Timing,
                        task: Some(t.clone()),
                        row_off: off,
                    });
                    off += widths[k];
                }
            }
        }
        // Variables sit in the row in address order; the header keeps the chosen order.
        let mut by_addr: Vec<(usize, VarId)> = vars.iter().copied().enumerate().collect();
        by_addr.sort_by_key(|(_, id)| {
            let s = layout.var(*id).slot;
            (s.area.index(), s.offset, s.bit)
        });
        let first_var = signals.len();
        for id in &vars {
            let v = layout.var(*id);
            signals.push(Signal {
                name: v.name.clone(),
                ty: v.slot.ty,
                unit: v.unit.clone(),
                address: Some(v.address.to_string()),
                kind: SignalKind::of_area(v.slot.area),
                task: None,
                row_off: 0,
            });
        }
        let mut runs: Vec<RunCopy> = Vec::new();
        let mut bits = Vec::new();
        for (pos, id) in by_addr {
            let slot = layout.var(id).slot;
            let sig = &mut signals[first_var + pos];
            sig.row_off = off;
            let area = slot.area.index();
            if slot.ty == IecType::Bool {
                bits.push(BitCopy {
                    area,
                    src: slot.offset as usize,
                    bit: slot.bit,
                    dst: off,
                });
                off += 1;
                continue;
            }
            let len = slot.ty.size();
            let src = slot.offset as usize;
            match runs.last_mut() {
                Some(r) if r.area == area && r.src + r.len == src && r.dst + r.len == off => {
                    r.len += len;
                }
                _ => runs.push(RunCopy {
                    area,
                    src,
                    dst: off,
                    len,
                }),
            }
            off += len;
        }
        Ok(RowLayout {
            signals,
            row_size: off,
            tasks: task_names.to_vec(),
            periods_ns: periods_ns.to_vec(),
            trace_task,
            timing,
            runs,
            bits,
            area_bytes: [
                layout.area_bytes(Area::Input),
                layout.area_bytes(Area::Output),
                layout.area_bytes(Area::Memory),
            ],
        })
    }

    /// True when an image has the areas this plan was made for.
    pub fn fits(&self, image: &Image) -> bool {
        (0..3).all(|i| image.areas[i].len() >= self.area_bytes[i])
    }

    /// Copies the variables of `image` into `row` (of `row_size` bytes).
    ///
    /// Scan thread: no allocation, no locks, no syscalls.
    #[inline]
    pub(crate) fn copy_vars(&self, image: &Image, row: &mut [u8]) {
        for r in &self.runs {
            row[r.dst..r.dst + r.len].copy_from_slice(&image.areas[r.area][r.src..r.src + r.len]);
        }
        for b in &self.bits {
            row[b.dst] = (image.areas[b.area][b.src] >> b.bit) & 1;
        }
    }

    /// Number of memory copies one row takes (for the benchmark's notes).
    pub fn copy_count(&self) -> usize {
        self.runs.len() + self.bits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{LayoutBuilder, VarDecl};
    use crate::types::Value;

    fn layout() -> Layout {
        let mut b = LayoutBuilder::new();
        for (n, a, t) in [
            ("tank.level", Area::Input, IecType::Real),
            ("tank.full", Area::Input, IecType::Bool),
            ("pump", Area::Output, IecType::Bool),
            ("count", Area::Memory, IecType::Dint),
            ("tank.temp", Area::Input, IecType::Real),
        ] {
            b.declare(VarDecl::new(n, a, t, None)).unwrap();
        }
        b.build().unwrap()
    }

    fn tasks() -> (Vec<String>, Vec<u64>) {
        (
            vec!["main".to_string(), "slow".to_string()],
            vec![1_000_000, 10_000_000],
        )
    }

    #[test]
    fn globs_select_in_pattern_order_and_contiguous_vars_become_one_copy() {
        let l = layout();
        let (t, p) = tasks();
        let pats = vec!["count".to_string(), "tank.*".to_string()];
        let r = RowLayout::new(&l, &t, &p, &pats, false, None).unwrap();
        let names: Vec<&str> = r.signals.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["count", "tank.level", "tank.full", "tank.temp"]);
        // tank.level (%ID0) and tank.temp: temp is assigned after the BOOL's byte.
        let mut img = Image::new(&l);
        img.store(l.var(VarId(0)).slot, Value::Real(1.5));
        img.store(l.var(VarId(1)).slot, Value::Bool(true));
        img.store(l.var(VarId(3)).slot, Value::Int(IecType::Dint, -7));
        img.store(l.var(VarId(4)).slot, Value::Real(20.25));
        let mut row = vec![0u8; r.row_size];
        r.copy_vars(&img, &mut row);
        let get = |name: &str| {
            let s = r.signals.iter().find(|s| s.name == name).unwrap();
            let mut raw = [0u8; 8];
            raw[..s.width()].copy_from_slice(&row[s.row_off..s.row_off + s.width()]);
            Value::from_bits(s.ty, u64::from_le_bytes(raw))
        };
        assert_eq!(get("tank.level"), Value::Real(1.5));
        assert_eq!(get("tank.full"), Value::Bool(true));
        assert_eq!(get("count"), Value::Int(IecType::Dint, -7));
        assert_eq!(get("tank.temp"), Value::Real(20.25));
    }

    #[test]
    fn a_thousand_adjacent_reals_are_copied_in_one_run() {
        let mut b = LayoutBuilder::new();
        for i in 0..1000 {
            b.declare(VarDecl::new(
                &format!("s{i}"),
                Area::Memory,
                IecType::Real,
                None,
            ))
            .unwrap();
        }
        let l = b.build().unwrap();
        let (t, p) = tasks();
        let r = RowLayout::new(&l, &t, &p, &[], true, None).unwrap();
        assert_eq!(r.copy_count(), 1);
        assert_eq!(r.signals.len(), 1000 + 8);
        assert_eq!(r.row_size, PREFIX_BYTES + 2 * TIMING_BYTES + 4000);
    }

    #[test]
    fn unknown_names_patterns_and_tasks_are_reported() {
        let l = layout();
        let (t, p) = tasks();
        let e = RowLayout::new(&l, &t, &p, &["nope*".into()], true, None).unwrap_err();
        assert!(e.message.contains("\"nope*\" matches no variable"), "{e}");
        let e = RowLayout::new(&l, &t, &p, &["levl".into()], true, None).unwrap_err();
        assert!(e.message.contains("unknown variable"), "{e}");
        let e = RowLayout::new(&l, &t, &p, &[], true, Some("fast")).unwrap_err();
        assert!(e.message.contains("main, slow"), "{e}");
        // A timing pattern is accepted when timing is recorded.
        assert!(RowLayout::new(&l, &t, &p, &["task:*".into()], true, None).is_ok());
    }
}
