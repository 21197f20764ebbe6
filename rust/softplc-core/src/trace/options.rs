//! A trace's settings as text interfaces give them (the Python API, the CLI): names
//! for the mode and the trigger, seconds for the flush interval. [`TraceOptions::config`]
//! turns them into a checked [`TraceConfig`].

use std::time::Duration;

use crate::image::ConfigError;

use super::config::{TraceConfig, TraceMode, DEFAULT_MAX_BUFFER_BYTES};

/// The settings of a trace as text: see [`TraceConfig`] for what each one means.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceOptions {
    /// Names, addresses or glob patterns of the variables; empty: every variable.
    pub signals: Vec<String>,
    /// Record the per-task timing signals.
    pub timing: bool,
    /// The trace task's name; None: the first task.
    pub task: Option<String>,
    /// Record every Nth cycle.
    pub decimate: u32,
    /// `continuous` or `triggered`.
    pub mode: String,
    /// The trigger condition (triggered mode), as [`super::Trigger::parse`] reads it.
    pub trigger: Option<String>,
    /// Rows kept before the trigger row.
    pub pre: u32,
    /// Rows recorded after the trigger row.
    pub post: u32,
    /// Captures to take; 0 means no limit.
    pub captures: u32,
    /// Rows per block.
    pub block_rows: u32,
    /// Blocks buffered between the scan and the writer.
    pub buffer_blocks: u32,
    /// Cap on the bytes of all buffers.
    pub max_buffer_bytes: u64,
    /// Wait for the writer instead of dropping blocks (virtual time only).
    pub backpressure: bool,
    /// How often partial blocks are flushed, in seconds (> 0).
    pub flush_interval_s: f64,
    /// Program identity for the header.
    pub program: Vec<(String, String)>,
    /// Free-form header entries.
    pub meta: Vec<(String, String)>,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            signals: Vec::new(),
            timing: true,
            task: None,
            decimate: 1,
            mode: "continuous".to_string(),
            trigger: None,
            pre: 0,
            post: 0,
            captures: 1,
            block_rows: 1024,
            buffer_blocks: 8,
            max_buffer_bytes: DEFAULT_MAX_BUFFER_BYTES,
            backpressure: false,
            flush_interval_s: 0.5,
            program: Vec::new(),
            meta: Vec::new(),
        }
    }
}

impl TraceOptions {
    /// The checked configuration (everything that does not depend on an engine); the
    /// errors name the option. Off the scan thread.
    pub fn config(self) -> Result<TraceConfig, ConfigError> {
        let mode = TraceMode::from_text(
            &self.mode,
            self.trigger.as_deref(),
            self.pre,
            self.post,
            self.captures,
        )?;
        if !(self.flush_interval_s.is_finite() && self.flush_interval_s > 0.0) {
            return Err(ConfigError::new(
                "flush_interval must be a positive number of seconds",
            ));
        }
        let config = TraceConfig {
            signals: self.signals,
            timing: self.timing,
            task: self.task,
            decimate: self.decimate,
            mode,
            block_rows: self.block_rows,
            buffer_blocks: self.buffer_blocks,
            max_buffer_bytes: self.max_buffer_bytes,
            backpressure: self.backpressure,
            flush_interval: Duration::from_secs_f64(self.flush_interval_s),
            program: self.program,
            meta: self.meta,
            start: None,
        };
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::Trigger;

    #[test]
    fn modes_and_triggers_are_read_from_their_names() {
        let c = TraceOptions::default().config().unwrap();
        assert_eq!(c.mode, TraceMode::Continuous);
        let c = TraceOptions {
            mode: "triggered".into(),
            trigger: Some("rising:start".into()),
            pre: 3,
            ..TraceOptions::default()
        }
        .config()
        .unwrap();
        assert_eq!(
            c.mode,
            TraceMode::Triggered {
                trigger: Trigger::Rising("start".into()),
                pre: 3,
                post: 0,
                captures: 1
            }
        );
        let manual = TraceOptions {
            mode: "triggered".into(),
            ..TraceOptions::default()
        };
        assert!(matches!(
            manual.config().unwrap().mode,
            TraceMode::Triggered {
                trigger: Trigger::Manual,
                ..
            }
        ));
    }

    #[test]
    fn bad_options_are_named() {
        let e = |o: TraceOptions| o.config().unwrap_err().message;
        assert!(e(TraceOptions {
            trigger: Some("manual".into()),
            ..TraceOptions::default()
        })
        .contains("needs mode='triggered'"));
        assert!(e(TraceOptions {
            mode: "sometimes".into(),
            ..TraceOptions::default()
        })
        .contains("unknown trace mode \"sometimes\""));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(e(TraceOptions {
                flush_interval_s: bad,
                ..TraceOptions::default()
            })
            .contains("flush_interval"));
        }
        assert!(e(TraceOptions {
            decimate: 0,
            ..TraceOptions::default()
        })
        .contains("decimate"));
    }
}
