//! What to record and how: signals, decimation, mode and trigger.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::{monotonic_ns, ClockKind};
use crate::driver::PlcState;
use crate::engine::Engine;
use crate::image::ConfigError;

/// Default cap on the memory of a trace's buffers: 1 GiB.
pub const DEFAULT_MAX_BUFFER_BYTES: u64 = 1 << 30;
/// Most buffers a continuous trace may keep between the scan and the writer.
pub const MAX_BUFFER_BLOCKS: u32 = 1 << 16;
/// Largest frame payload the format allows (its length field is a u32).
pub const MAX_FRAME_BYTES: u64 = u32::MAX as u64;
/// Room left in a block frame for its metadata and column headers, besides the data.
const BLOCK_OVERHEAD: u64 = 4096;

/// A trigger condition for triggered mode. Evaluated on the scan thread on every cycle
/// of the trace task (decimation does not hide an edge).
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// Only a forced trigger ([`super::TraceHandle::trigger`]) starts the capture.
    Manual,
    /// A BOOL variable goes from FALSE to TRUE.
    Rising(String),
    /// A BOOL variable goes from TRUE to FALSE.
    Falling(String),
    /// A numeric variable crosses `level` upwards: previous < level <= current.
    Above(String, f64),
    /// A numeric variable crosses `level` downwards: previous > level >= current.
    Below(String, f64),
    /// Either crossing of `level`.
    Cross(String, f64),
}

impl Trigger {
    /// Parses the text form used by the CLI and Python:
    /// `manual`, `rising:NAME`, `falling:NAME`, `NAME>LEVEL`, `NAME<LEVEL`, `NAME<>LEVEL`.
    pub fn parse(text: &str) -> Result<Trigger, ConfigError> {
        let t = text.trim();
        let bad = |why: &str| {
            ConfigError::new(format!(
                "invalid trigger {text:?}: {why} (use manual, rising:NAME, falling:NAME, \
                 NAME>LEVEL, NAME<LEVEL or NAME<>LEVEL)"
            ))
        };
        if t.eq_ignore_ascii_case("manual") {
            return Ok(Trigger::Manual);
        }
        for (prefix, rising) in [("rising:", true), ("falling:", false)] {
            if t.len() >= prefix.len() && t[..prefix.len()].eq_ignore_ascii_case(prefix) {
                let name = t[prefix.len()..].trim();
                if name.is_empty() {
                    return Err(bad("no variable name"));
                }
                return Ok(if rising {
                    Trigger::Rising(name.to_string())
                } else {
                    Trigger::Falling(name.to_string())
                });
            }
        }
        for (op, len) in [("<>", 2), (">", 1), ("<", 1)] {
            if let Some(pos) = t.find(op) {
                let name = t[..pos].trim();
                let level_text = t[pos + len..].trim();
                if name.is_empty() {
                    return Err(bad("no variable name"));
                }
                let level: f64 = level_text
                    .parse()
                    .map_err(|_| bad(&format!("{level_text:?} is not a number")))?;
                if !level.is_finite() {
                    return Err(bad("the level must be finite"));
                }
                let name = name.to_string();
                return Ok(match op {
                    "<>" => Trigger::Cross(name, level),
                    ">" => Trigger::Above(name, level),
                    _ => Trigger::Below(name, level),
                });
            }
        }
        Err(bad("unknown form"))
    }

    /// The variable the condition watches, if any.
    pub fn variable(&self) -> Option<&str> {
        match self {
            Trigger::Manual => None,
            Trigger::Rising(n) | Trigger::Falling(n) => Some(n),
            Trigger::Above(n, _) | Trigger::Below(n, _) | Trigger::Cross(n, _) => Some(n),
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Manual => f.write_str("manual"),
            Trigger::Rising(n) => write!(f, "rising:{n}"),
            Trigger::Falling(n) => write!(f, "falling:{n}"),
            Trigger::Above(n, l) => write!(f, "{n}>{l}"),
            Trigger::Below(n, l) => write!(f, "{n}<{l}"),
            Trigger::Cross(n, l) => write!(f, "{n}<>{l}"),
        }
    }
}

/// Recording mode.
#[derive(Clone, Debug, PartialEq)]
pub enum TraceMode {
    /// Every sampled cycle goes to the file, in blocks.
    Continuous,
    /// Captures of `pre` rows before the trigger row, the trigger row, and `post` rows
    /// after it.
    Triggered {
        /// The condition.
        trigger: Trigger,
        /// Rows kept before the trigger row.
        pre: u32,
        /// Rows recorded after the trigger row.
        post: u32,
        /// Captures to take before the trace stops recording; 0 means no limit.
        captures: u32,
    },
}

impl TraceMode {
    /// The mode named `mode` (`continuous` or `triggered`), with its trigger condition
    /// in the text form of [`Trigger::parse`] (triggered mode; None means `manual`) and
    /// its capture sizes. A trigger given to a continuous trace is an error: continuous
    /// traces record everything.
    pub fn from_text(
        mode: &str,
        trigger: Option<&str>,
        pre: u32,
        post: u32,
        captures: u32,
    ) -> Result<TraceMode, ConfigError> {
        match mode {
            "continuous" => match trigger {
                Some(_) => Err(ConfigError::new(
                    "a trigger needs mode='triggered' (continuous traces record everything)",
                )),
                None => Ok(TraceMode::Continuous),
            },
            "triggered" => Ok(TraceMode::Triggered {
                trigger: Trigger::parse(trigger.unwrap_or("manual"))?,
                pre,
                post,
                captures,
            }),
            other => Err(ConfigError::new(format!(
                "unknown trace mode {other:?} (expected 'continuous' or 'triggered')"
            ))),
        }
    }

    /// `continuous` or `triggered`.
    pub fn name(&self) -> &'static str {
        match self {
            TraceMode::Continuous => "continuous",
            TraceMode::Triggered { .. } => "triggered",
        }
    }
}

/// The engine at the moment a trace starts, for the file's header: the two clocks read
/// at the same moment (so row times convert to wall-clock times) and the state. `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceStart {
    /// The engine's clock: `CLOCK_MONOTONIC` (real time) or virtual time.
    pub clock: ClockKind,
    /// Engine-clock time (ns) at the moment `unix_ns` was read.
    pub engine_ns: u64,
    /// Wall-clock time (ns since 1970-01-01 UTC) at the moment `engine_ns` was read.
    pub unix_ns: u64,
    /// Engine state when the trace started.
    pub state: PlcState,
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

impl TraceStart {
    /// Reads the clocks and the state of `engine` now. In real time the engine clock is
    /// `CLOCK_MONOTONIC`, read just before and just after the wall clock (the midpoint
    /// is kept); in virtual time it is the engine's current virtual time. Off the scan
    /// thread (locks the engine's snapshot in virtual time).
    pub fn of(engine: &Engine) -> TraceStart {
        let clock = engine.clock();
        let (engine_ns, unix_ns) = match clock {
            ClockKind::Real => {
                let m0 = monotonic_ns();
                let u = unix_now_ns();
                let m1 = monotonic_ns();
                (m0 + (m1 - m0) / 2, u)
            }
            ClockKind::Virtual => (
                engine.virtual_now().unwrap_or_else(|| engine.now_ns()),
                unix_now_ns(),
            ),
        };
        TraceStart {
            clock,
            engine_ns,
            unix_ns,
            state: engine.state(),
        }
    }
}

/// Everything a trace needs besides the engine. Built off the scan thread.
#[derive(Clone, Debug)]
pub struct TraceConfig {
    /// Names, direct addresses or glob patterns of the variables to record, in the order
    /// wanted; empty means every variable of the layout in declaration order.
    pub signals: Vec<String>,
    /// Record per task: scheduled start, actual start, execution time, overrun flag.
    pub timing: bool,
    /// The task whose cycles make the rows; None means the first task.
    pub task: Option<String>,
    /// Record every Nth cycle of the trace task (1 = every cycle).
    pub decimate: u32,
    /// Continuous or triggered.
    pub mode: TraceMode,
    /// Rows per block (continuous mode) and the largest block written.
    pub block_rows: u32,
    /// Blocks buffered between the scan thread and the writer (continuous mode), at
    /// most [`MAX_BUFFER_BLOCKS`].
    pub buffer_blocks: u32,
    /// Cap on the bytes of all the trace's buffers (continuous: `buffer_blocks` blocks;
    /// triggered: one or two captures of `pre + 1 + post` rows). Checked when the
    /// signals, and so the row size, are known. Default [`DEFAULT_MAX_BUFFER_BYTES`].
    pub max_buffer_bytes: u64,
    /// When true the sampler waits for the writer instead of dropping blocks. Only for
    /// virtual time, where nothing is real-time and a trace must be complete.
    pub backpressure: bool,
    /// The writer asks for a partial block at least this often, so a slow task's rows
    /// reach the disk in good time.
    pub flush_interval: Duration,
    /// Program identity for the header (name, version, hash, ...).
    pub program: Vec<(String, String)>,
    /// Free-form header entries (clock kind, host, command line, ...).
    pub meta: Vec<(String, String)>,
    /// The engine's clocks and state when the trace started, for the header (see
    /// [`TraceStart::of`]); None leaves them out.
    pub start: Option<TraceStart>,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            signals: Vec::new(),
            timing: true,
            task: None,
            decimate: 1,
            mode: TraceMode::Continuous,
            block_rows: 1024,
            buffer_blocks: 16,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
            backpressure: false,
            flush_interval: Duration::from_millis(500),
            program: Vec::new(),
            meta: Vec::new(),
            start: None,
        }
    }
}

impl TraceConfig {
    /// Checks the numbers that do not depend on the layout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.decimate == 0 {
            return Err(ConfigError::new("trace decimate must be at least 1"));
        }
        if self.block_rows == 0 || self.block_rows > 1 << 20 {
            return Err(ConfigError::new("trace block_rows must be in 1..=1048576"));
        }
        if self.buffer_blocks < 2 || self.buffer_blocks > MAX_BUFFER_BLOCKS {
            return Err(ConfigError::new(format!(
                "trace buffer_blocks must be in 2..={MAX_BUFFER_BLOCKS} (got {})",
                self.buffer_blocks
            )));
        }
        if self.max_buffer_bytes == 0 {
            return Err(ConfigError::new(
                "trace max_buffer_bytes must be at least 1",
            ));
        }
        if let TraceMode::Triggered { pre, post, .. } = &self.mode {
            let total = *pre as u64 + *post as u64 + 1;
            if total > 1 << 26 {
                return Err(ConfigError::new(format!(
                    "trace capture of {total} rows is too large (pre + post must stay below 2^26)"
                )));
            }
        }
        Ok(())
    }

    /// The buffers a trace of rows of `row_size` bytes (with `columns` columns) needs:
    /// (buffers, rows per buffer). Checks that a block frame stays within the format's
    /// limit and that the buffers stay within `max_buffer_bytes`; the errors name the
    /// options to change.
    pub fn buffer_plan(
        &self,
        row_size: usize,
        columns: usize,
    ) -> Result<(usize, usize), ConfigError> {
        let row = row_size.max(1) as u64;
        let (n, cap, what) = match &self.mode {
            TraceMode::Continuous => (
                self.buffer_blocks as u64,
                self.block_rows as u64,
                format!(
                    "buffer_blocks {} x block_rows {}",
                    self.buffer_blocks, self.block_rows
                ),
            ),
            TraceMode::Triggered {
                pre,
                post,
                captures,
                ..
            } => {
                let n = if *captures == 1 { 1 } else { 2 };
                (
                    n,
                    *pre as u64 + 1 + *post as u64,
                    format!("{n} capture buffer(s) x (pre {pre} + 1 + post {post}) rows"),
                )
            }
        };
        let bytes = n as u128 * cap as u128 * row as u128;
        if bytes > self.max_buffer_bytes as u128 {
            return Err(ConfigError::new(format!(
                "the trace buffers would take {} ({what} x {row}-byte rows), more than \
                 max_buffer_bytes allows ({}); lower {}, record fewer signals, or raise \
                 max_buffer_bytes",
                human_bytes(bytes),
                human_bytes(self.max_buffer_bytes as u128),
                match self.mode {
                    TraceMode::Continuous => "buffer_blocks or block_rows",
                    TraceMode::Triggered { .. } => "pre or post",
                }
            )));
        }
        let block = self.block_rows as u64 * row + 5 * columns as u64 + BLOCK_OVERHEAD;
        if block > MAX_FRAME_BYTES {
            return Err(ConfigError::new(format!(
                "trace blocks of block_rows {} rows of {row} bytes would be {} bytes, more \
                 than a trace frame can hold ({MAX_FRAME_BYTES} bytes); lower block_rows \
                 or record fewer signals",
                self.block_rows, block
            )));
        }
        Ok((n as usize, cap as usize))
    }
}

/// `1.5 GiB`, `640 KiB`, `12 bytes`.
fn human_bytes(b: u128) -> String {
    const UNITS: [(&str, u128); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if b >= size {
            return format!("{:.1} {unit}", b as f64 / size as f64);
        }
    }
    format!("{b} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_text_forms_parse_and_print_back() {
        for text in [
            "manual",
            "rising:tank.start",
            "falling:x",
            "lvl>80",
            "lvl<2.5",
            "lvl<>-1",
        ] {
            let t = Trigger::parse(text).unwrap();
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(
            Trigger::parse("Rising: a").unwrap(),
            Trigger::Rising("a".into())
        );
        assert_eq!(
            Trigger::parse("t > 3").unwrap(),
            Trigger::Above("t".into(), 3.0)
        );
    }

    #[test]
    fn buffers_beyond_the_memory_cap_are_refused_naming_the_options() {
        let config = TraceConfig {
            block_rows: 1 << 20,
            buffer_blocks: 1 << 16,
            ..TraceConfig::default()
        };
        config.validate().unwrap();
        // 2^36 rows of 4,016 bytes: far more than 1 GiB, and more than a usize could
        // count on a 32-bit machine; refused before anything is allocated.
        let e = config.buffer_plan(4016, 500).unwrap_err();
        assert!(e.message.contains("max_buffer_bytes"), "{e}");
        assert!(
            e.message
                .contains("buffer_blocks 65536 x block_rows 1048576"),
            "{e}"
        );
        let small = TraceConfig {
            max_buffer_bytes: 64 << 20,
            ..TraceConfig::default()
        };
        assert_eq!(small.buffer_plan(4016, 500).unwrap(), (16, 1024));
        let e = TraceConfig {
            buffer_blocks: 1 << 17,
            ..TraceConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.message.contains("buffer_blocks"), "{e}");
    }

    #[test]
    fn a_block_larger_than_a_frame_can_hold_is_refused() {
        let config = TraceConfig {
            block_rows: 1 << 20,
            buffer_blocks: 2,
            max_buffer_bytes: u64::MAX,
            ..TraceConfig::default()
        };
        // 2^20 rows of 8 KiB = 8 GiB per block: the u32 length of a frame cannot say it.
        let e = config.buffer_plan(8192, 1000).unwrap_err();
        assert!(e.message.contains("block_rows"), "{e}");
        assert!(config.buffer_plan(2048, 100).is_ok());
    }

    #[test]
    fn triggered_buffers_count_pre_and_post() {
        let config = TraceConfig {
            mode: TraceMode::Triggered {
                trigger: Trigger::Manual,
                pre: 1 << 20,
                post: 1 << 20,
                captures: 0,
            },
            ..TraceConfig::default()
        };
        let e = config.buffer_plan(1024, 100).unwrap_err();
        assert!(e.message.contains("pre or post"), "{e}");
        assert!(e.message.contains("2 capture buffer(s)"), "{e}");
    }

    #[test]
    fn bad_trigger_text_says_what_is_wrong() {
        let e = Trigger::parse("lvl>high").unwrap_err();
        assert!(e.message.contains("\"high\" is not a number"), "{e}");
        let e = Trigger::parse("rising:").unwrap_err();
        assert!(e.message.contains("no variable"), "{e}");
        assert!(Trigger::parse("whenever").is_err());
    }
}
