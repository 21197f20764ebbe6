//! What to record and how: signals, decimation, mode and trigger.

use std::fmt;
use std::time::Duration;

use crate::image::ConfigError;

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
    /// `continuous` or `triggered`.
    pub fn name(&self) -> &'static str {
        match self {
            TraceMode::Continuous => "continuous",
            TraceMode::Triggered { .. } => "triggered",
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
    /// Blocks buffered between the scan thread and the writer (continuous mode).
    pub buffer_blocks: u32,
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
            backpressure: false,
            flush_interval: Duration::from_millis(500),
            program: Vec::new(),
            meta: Vec::new(),
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
        if self.buffer_blocks < 2 {
            return Err(ConfigError::new("trace buffer_blocks must be at least 2"));
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
    fn bad_trigger_text_says_what_is_wrong() {
        let e = Trigger::parse("lvl>high").unwrap_err();
        assert!(e.message.contains("\"high\" is not a number"), "{e}");
        let e = Trigger::parse("rising:").unwrap_err();
        assert!(e.message.contains("no variable"), "{e}");
        assert!(Trigger::parse("whenever").is_err());
    }
}
