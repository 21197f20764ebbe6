//! Recording a trace file without an engine: rows from arrays of values, one engine
//! cycle per row in virtual time, through the same sampler and writer as a live trace
//! (for conversions, tests and tools that make traces from other data).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::ClockKind;
use crate::driver::PlcState;
use crate::event::{Event, EventSink};
use crate::image::{ConfigError, Image, LayoutBuilder, VarDecl};
use crate::observer::{CycleInfo, CycleObserver};
use crate::task::TaskId;
use crate::types::{IecType, Value};

use super::config::{TraceConfig, TraceStart};
use super::file::TraceFile;
use super::live::ATTACH_TIMEOUT;
use super::{new_trace, TraceError, TraceStats};

/// What an offline recording holds: cycle `i` of the one task starts at
/// `i * period_ns`; every array has one entry per cycle.
#[derive(Clone, Debug, Default)]
pub struct OfflineRecording {
    /// The variables, each with its values: raw little-endian values packed back to
    /// back (BOOL: one byte, 0 or 1).
    pub variables: Vec<(VarDecl, Vec<u8>)>,
    /// Cycles (rows of the arrays).
    pub cycles: u64,
    /// The task's period.
    pub period_ns: u64,
    /// The task's name.
    pub task: String,
    /// Execution time of each cycle, u64 little-endian; None: 0.
    pub exec_ns: Option<Vec<u8>>,
    /// Overrun flag of each cycle, one byte; None: no overruns.
    pub overrun: Option<Vec<u8>>,
    /// Engine events to put in the file.
    pub events: Vec<Event>,
    /// Cycles at which a forced trigger is requested.
    pub force_trigger_at: Vec<u64>,
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl OfflineRecording {
    /// Writes the recording into a trace file at `path` and returns the writer's
    /// counters. Everything is checked before the file is touched; errors name the
    /// variable or option. Takes as long as writing the file takes.
    pub fn write(self, mut config: TraceConfig, path: &Path) -> Result<TraceStats, TraceError> {
        let OfflineRecording {
            variables,
            cycles,
            period_ns,
            task,
            exec_ns,
            overrun,
            events,
            force_trigger_at,
        } = self;
        let mut b = LayoutBuilder::new();
        let mut data = Vec::with_capacity(variables.len());
        for (decl, values) in variables {
            let name = decl.name.clone();
            let width = decl.ty.size().max(1);
            b.declare(decl)?;
            if values.len() as u64 != cycles * width as u64 {
                return Err(ConfigError::new(format!(
                    "values of {name:?}: {} bytes, expected {} ({cycles} cycles of {width} bytes)",
                    values.len(),
                    cycles * width as u64,
                ))
                .into());
            }
            data.push(values);
        }
        let layout = b.build()?;
        if exec_ns
            .as_ref()
            .is_some_and(|e| e.len() as u64 != cycles * 8)
        {
            return Err(ConfigError::new("exec_ns must hold one u64 per cycle").into());
        }
        if overrun.as_ref().is_some_and(|o| o.len() as u64 != cycles) {
            return Err(ConfigError::new("overrun must hold one byte per cycle").into());
        }
        let tasks = std::slice::from_ref(&task);
        config.check(&layout, tasks, &[period_ns])?;
        config.start = Some(TraceStart {
            clock: ClockKind::Virtual,
            engine_ns: 0,
            unix_ns: unix_now_ns(),
            state: PlcState::Run,
        });
        let (file, opened) = TraceFile::open(path)?;
        let sink = EventSink::new();
        let (mut sampler, handle) = new_trace(config, Box::new(file), Some(sink.clone()))
            .inspect_err(|_| opened.discard())?;
        sampler.attach(&layout, tasks, &[period_ns]);
        if let Err(e) = handle.wait_attached(ATTACH_TIMEOUT) {
            opened.discard();
            return Err(ConfigError::new(e).into());
        }
        for e in events {
            sink.push(e);
        }
        let mut image = Image::new(&layout);
        for i in 0..cycles {
            let row = i as usize;
            for (k, v) in layout.vars().iter().enumerate() {
                let w = v.slot.ty.size().max(1);
                if let IecType::String(_) = v.slot.ty {
                    // Length byte, then the characters (as the image stores them).
                    let rec = &data[k][row * w..(row + 1) * w];
                    let len = (rec[0] as usize).min(w - 1);
                    image.set_text(v.slot, &rec[1..1 + len]);
                    continue;
                }
                let mut raw = [0u8; 8];
                raw[..w].copy_from_slice(&data[k][row * w..(row + 1) * w]);
                image.store(v.slot, Value::from_bits(v.slot.ty, u64::from_le_bytes(raw)));
            }
            if force_trigger_at.contains(&i) {
                handle.trigger();
            }
            let t = i * period_ns;
            let exec = exec_ns.as_ref().map_or(0, |e| {
                u64::from_le_bytes(e[row * 8..row * 8 + 8].try_into().expect("8 bytes"))
            });
            let info = CycleInfo {
                task: TaskId::FIRST,
                cycle: i,
                scheduled_ns: t,
                start_ns: t,
                exec_ns: exec,
                overrun: overrun.as_ref().is_some_and(|o| o[row] != 0),
                state: PlcState::Run,
            };
            sampler.on_cycle(&image, &info);
        }
        drop(sampler);
        handle.finish(None::<Duration>).map_err(TraceError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Area;
    use crate::event::EventKind;
    use crate::types::IecType;

    #[test]
    fn arrays_become_rows_and_a_bad_array_is_refused_before_the_file_is_made() {
        let dir = std::env::temp_dir().join(format!("softplc-offline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.trace");
        let rec = |values: Vec<u8>| OfflineRecording {
            variables: vec![(
                VarDecl::new("level", Area::Memory, IecType::Int, None),
                values,
            )],
            cycles: 3,
            period_ns: 1_000_000,
            task: "main".into(),
            events: vec![Event::new(
                1_000_000,
                EventKind::Fault,
                TaskId::new(0),
                "boom".into(),
            )],
            ..OfflineRecording::default()
        };
        let e = rec(vec![0; 5])
            .write(TraceConfig::default(), &path)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("values of \"level\": 5 bytes, expected 6"),
            "{e}"
        );
        assert!(!path.exists());
        let stats = rec(vec![1, 0, 2, 0, 3, 0])
            .write(TraceConfig::default(), &path)
            .unwrap();
        assert_eq!((stats.rows_written, stats.events_written), (3, 1));
        std::fs::remove_dir_all(&dir).ok();
    }
}
