//! Tests of the whole trace path: sampler, writer, and the bytes in the file, read back
//! with an independent msgpack decoder (rmpv).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmpv::Value as Mp;

use super::*;
use crate::address::Area;
use crate::driver::PlcState;
use crate::event::{Event, EventKind, IoEvent, IoEventKind};
use crate::image::{Image, Layout, LayoutBuilder, VarDecl};
use crate::observer::{CycleInfo, CycleObserver};
use crate::task::TaskId;
use crate::types::{IecType, Value};

/// A sink the test can read while the writer owns it, and can hold up on demand.
#[derive(Clone, Default)]
struct SharedSink {
    bytes: Arc<Mutex<Vec<u8>>>,
    hold: Arc<AtomicBool>,
}

impl Write for SharedSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        while self.hold.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.bytes.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TraceSink for SharedSink {}

/// Frames of a trace file, decoded; stops at the first bad frame like a reader must.
fn frames(bytes: &[u8]) -> Vec<(usize, Mp)> {
    assert_eq!(&bytes[..8], MAGIC);
    let mut out = Vec::new();
    let mut pos = 8;
    while pos + FRAME_HEADER <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        let end = pos + FRAME_HEADER + len;
        if len == 0 || end > bytes.len() {
            break;
        }
        let payload = &bytes[pos + FRAME_HEADER..end];
        if crc32fast::hash(payload) != crc {
            break;
        }
        let v = rmpv::decode::read_value(&mut &payload[..]).expect("payload decodes");
        out.push((pos, v));
        pos = end;
    }
    out
}

fn kind(v: &Mp) -> &str {
    v["type"].as_str().unwrap()
}

/// Column `c` of every block, as raw bytes concatenated.
fn column(fr: &[(usize, Mp)], c: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (_, v) in fr.iter().filter(|(_, v)| kind(v) == "block") {
        out.extend_from_slice(v["columns"][c].as_slice().unwrap());
    }
    out
}

fn u64s(raw: &[u8]) -> Vec<u64> {
    raw.chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn signal_index(fr: &[(usize, Mp)], name: &str) -> usize {
    let sigs = fr[0].1["signals"].as_array().unwrap();
    2 + sigs
        .iter()
        .position(|s| s["name"].as_str() == Some(name))
        .expect(name)
}

fn layout() -> Layout {
    let mut b = LayoutBuilder::new();
    for (n, a, t) in [
        ("start", Area::Input, IecType::Bool),
        ("level", Area::Input, IecType::Real),
        ("speed", Area::Output, IecType::Int),
        ("count", Area::Memory, IecType::Ulint),
        ("temp", Area::Memory, IecType::Lreal),
        ("delay", Area::Memory, IecType::Time),
    ] {
        let mut d = VarDecl::new(n, a, t, None);
        if n == "level" {
            d.unit = "%".to_string();
        }
        b.declare(d).unwrap();
    }
    b.build().unwrap()
}

const PERIOD: u64 = 1_000_000;

fn info(task: usize, cycle: u64) -> CycleInfo {
    let t = cycle * PERIOD;
    CycleInfo {
        task: TaskId::new(task).unwrap(),
        cycle,
        scheduled_ns: t,
        start_ns: t + 1_000 + cycle,
        exec_ns: 20_000 + cycle,
        overrun: false,
        state: PlcState::Run,
    }
}

/// Values of cycle `i`: start is TRUE on cycles 10..15, level ramps.
fn set(l: &Layout, img: &mut Image, i: u64) {
    let v = |n: &str| l.var(l.find(n).unwrap()).slot;
    img.store(v("start"), Value::Bool((10..15).contains(&i)));
    img.store(v("level"), Value::Real(i as f32 * 0.5));
    img.store(v("speed"), Value::Int(IecType::Int, -(i as i64)));
    img.store(v("count"), Value::UInt(IecType::Ulint, u64::MAX - i));
    img.store(v("temp"), Value::Lreal(-1.25 * i as f64));
    img.store(v("delay"), Value::Time(i as i64 * 1_000_000));
}

struct Run {
    bytes: Vec<u8>,
    stats: TraceStats,
}

fn record(config: TraceConfig, cycles: u64, mut each: impl FnMut(u64, &TraceHandle)) -> Run {
    let l = layout();
    let sink = SharedSink::default();
    let (mut s, h) = new_trace(config, Box::new(sink.clone()), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    let mut img = Image::new(&l);
    for i in 0..cycles {
        each(i, &h);
        set(&l, &mut img, i);
        s.on_cycle(&img, &info(0, i));
    }
    drop(s);
    let stats = h.finish(Some(Duration::from_secs(5))).unwrap();
    let bytes = sink.bytes.lock().unwrap().clone();
    Run { bytes, stats }
}

fn lossless() -> TraceConfig {
    TraceConfig {
        backpressure: true,
        block_rows: 7,
        buffer_blocks: 2,
        ..TraceConfig::default()
    }
}

#[test]
fn continuous_trace_round_trips_every_type_and_closes_with_an_index() {
    let run = record(lossless(), 50, |_, _| {});
    assert_eq!(run.stats.rows_written, 50);
    assert_eq!(run.stats.dropped_blocks, 0);
    let fr = frames(&run.bytes);
    let header = &fr[0].1;
    assert_eq!(kind(header), "header");
    assert_eq!(header["format"].as_str(), Some("softplc-trace"));
    assert_eq!(header["cycle_period_ns"].as_u64(), Some(PERIOD));
    let sigs = header["signals"].as_array().unwrap();
    assert_eq!(sigs.len(), 4 + 6);
    let level = sigs
        .iter()
        .find(|s| s["name"].as_str() == Some("level"))
        .unwrap();
    assert_eq!(level["unit"].as_str(), Some("%"));
    assert_eq!(level["dtype"].as_str(), Some("<f4"));
    assert_eq!(level["address"].as_str(), Some("%ID1"));

    let cycles = u64s(&column(&fr, 0));
    assert_eq!(cycles, (0..50).collect::<Vec<_>>());
    let t = u64s(&column(&fr, 1));
    assert_eq!(t[49], 49 * PERIOD);
    let start = column(&fr, signal_index(&fr, "start"));
    assert_eq!(start.iter().filter(|b| **b == 1).count(), 5);
    assert_eq!(start[10], 1);
    let level: Vec<f32> = column(&fr, signal_index(&fr, "level"))
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(level[33], 16.5);
    let speed = column(&fr, signal_index(&fr, "speed"));
    assert_eq!(i16::from_le_bytes([speed[6], speed[7]]), -3);
    let count = u64s(&column(&fr, signal_index(&fr, "count")));
    assert_eq!(count[2], u64::MAX - 2);
    let delay = u64s(&column(&fr, signal_index(&fr, "delay")));
    assert_eq!(delay[4] as i64, 4_000_000);
    let exec = u64s(&column(&fr, signal_index(&fr, "task:main.exec_time")));
    assert_eq!(exec[5], 20_005);

    // Blocks of 7 rows, sequence numbers without holes, then the index and end frames.
    let blocks: Vec<&Mp> = fr
        .iter()
        .filter(|(_, v)| kind(v) == "block")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(blocks.len(), 8);
    assert!(blocks
        .iter()
        .enumerate()
        .all(|(i, b)| b["seq"].as_u64() == Some(i as u64)));
    let (index_at, index) = &fr[fr.len() - 2];
    assert_eq!(kind(index), "index");
    assert_eq!(index["summary"]["rows"].as_u64(), Some(50));
    assert_eq!(index["blocks"].as_array().unwrap().len(), 8);
    let end = &fr[fr.len() - 1].1;
    assert_eq!(end["index"].as_u64(), Some(*index_at as u64));
    assert_eq!(run.bytes.len() - fr[fr.len() - 1].0, END_FRAME_BYTES);
}

#[test]
fn columns_are_bin32_at_offsets_computable_from_rows_and_types() {
    let run = record(lossless(), 10, |_, _| {});
    let fr = frames(&run.bytes);
    let widths: Vec<usize> = [8, 8]
        .into_iter()
        .chain(fr[0].1["signals"].as_array().unwrap().iter().map(|s| {
            let d = s["dtype"].as_str().unwrap();
            d[2..].parse::<usize>().unwrap()
        }))
        .collect();
    let (pos, b) = fr.iter().find(|(_, v)| kind(v) == "block").unwrap();
    let rows = b["rows"].as_u64().unwrap() as usize;
    let len = u32::from_le_bytes(run.bytes[*pos..pos + 4].try_into().unwrap()) as usize;
    let end = pos + FRAME_HEADER + len;
    let total: usize = widths.iter().map(|w| 5 + rows * w).sum();
    let mut at = end - total;
    for w in widths {
        assert_eq!(run.bytes[at], 0xc6);
        assert_eq!(
            u32::from_be_bytes(run.bytes[at + 1..at + 5].try_into().unwrap()) as usize,
            rows * w
        );
        at += 5 + rows * w;
    }
}

#[test]
fn decimation_keeps_every_nth_cycle() {
    let config = TraceConfig {
        decimate: 3,
        ..lossless()
    };
    let run = record(config, 20, |_, _| {});
    let fr = frames(&run.bytes);
    assert_eq!(u64s(&column(&fr, 0)), vec![0, 3, 6, 9, 12, 15, 18]);
    assert_eq!(fr[0].1["sample_period_ns"].as_u64(), Some(3 * PERIOD));
}

fn triggered(trigger: &str, pre: u32, post: u32) -> TraceConfig {
    TraceConfig {
        mode: TraceMode::Triggered {
            trigger: Trigger::parse(trigger).unwrap(),
            pre,
            post,
            captures: 1,
        },
        ..lossless()
    }
}

#[test]
fn rising_edge_captures_pre_and_post_rows_around_the_trigger() {
    let run = record(triggered("rising:start", 4, 3), 40, |_, _| {});
    let fr = frames(&run.bytes);
    assert_eq!(u64s(&column(&fr, 0)), vec![6, 7, 8, 9, 10, 11, 12, 13]);
    let trig = fr.iter().find(|(_, v)| kind(v) == "trigger").unwrap();
    assert_eq!(trig.1["cycle"].as_u64(), Some(10));
    assert_eq!(trig.1["pre_rows"].as_u64(), Some(4));
    assert_eq!(trig.1["complete"].as_bool(), Some(true));
    assert_eq!(run.stats.captures_written, 1);
}

#[test]
fn falling_edge_and_threshold_crossings_fire_on_the_right_cycle() {
    let run = record(triggered("falling:start", 1, 1), 40, |_, _| {});
    assert_eq!(u64s(&column(&frames(&run.bytes), 0)), vec![14, 15, 16]);
    // level = cycle / 2 crosses 7.2 upwards between cycles 14 and 15.
    let run = record(triggered("level>7.2", 2, 0), 40, |_, _| {});
    assert_eq!(u64s(&column(&frames(&run.bytes), 0)), vec![13, 14, 15]);
    // speed = -cycle crosses -20 downwards at cycle 20 (previous > -20 >= current).
    let run = record(triggered("speed<-20", 0, 2), 40, |_, _| {});
    assert_eq!(u64s(&column(&frames(&run.bytes), 0)), vec![20, 21, 22]);
}

#[test]
fn a_trigger_early_in_the_trace_keeps_the_rows_there_are() {
    let run = record(triggered("level>1", 10, 2), 40, |_, _| {});
    assert_eq!(u64s(&column(&frames(&run.bytes), 0)), vec![0, 1, 2, 3, 4]);
}

#[test]
fn forced_trigger_and_decimation_count_post_rows_from_the_trigger() {
    let mut config = triggered("manual", 2, 2);
    config.decimate = 4;
    let run = record(config, 40, |i, h| {
        if i == 17 {
            h.trigger();
        }
    });
    let fr = frames(&run.bytes);
    // Rows every 4th cycle (0, 4, ..., 16), the forced trigger at 17, then 21 and 25.
    assert_eq!(u64s(&column(&fr, 0)), vec![12, 16, 17, 21, 25]);
    let trig = fr.iter().find(|(_, v)| kind(v) == "trigger").unwrap();
    assert_eq!(trig.1["forced"].as_bool(), Some(true));
}

#[test]
fn a_second_capture_rearms_with_fresh_pre_trigger_rows() {
    let mut config = triggered("manual", 2, 1);
    if let TraceMode::Triggered { captures, .. } = &mut config.mode {
        *captures = 2;
    }
    let run = record(config, 30, |i, h| {
        if i == 5 || i == 20 {
            h.trigger();
        }
    });
    let fr = frames(&run.bytes);
    assert_eq!(u64s(&column(&fr, 0)), vec![3, 4, 5, 6, 18, 19, 20, 21]);
    let caps: Vec<u64> = fr
        .iter()
        .filter(|(_, v)| kind(v) == "block")
        .map(|(_, v)| v["capture"].as_u64().unwrap())
        .collect();
    assert_eq!(caps, [0, 1]);
    assert_eq!(run.stats.captures_written, 2);
}

#[test]
fn a_stop_mid_capture_writes_it_marked_incomplete() {
    let mut config = triggered("rising:start", 1, 30);
    if let TraceMode::Triggered { captures, .. } = &mut config.mode {
        *captures = 0;
    }
    let run = record(config, 30, |_, _| {});
    let fr = frames(&run.bytes);
    let trig: Vec<&Mp> = fr
        .iter()
        .filter(|(_, v)| kind(v) == "trigger")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(trig.len(), 1);
    assert_eq!(trig[0]["complete"].as_bool(), Some(false));
    assert_eq!(u64s(&column(&fr, 0)), (9..30).collect::<Vec<_>>());
    let index = &fr[fr.len() - 2].1;
    assert_eq!(index["summary"]["incomplete_captures"].as_u64(), Some(1));
}

#[test]
fn a_writer_that_falls_behind_costs_whole_blocks_which_are_counted_and_marked() {
    let l = layout();
    let sink = SharedSink::default();
    let config = TraceConfig {
        block_rows: 5,
        buffer_blocks: 2,
        ..TraceConfig::default()
    };
    let (mut s, h) = new_trace(config, Box::new(sink.clone()), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    // Let the header through, then hold the disk up.
    while h.stats().bytes_written == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    sink.hold.store(true, Ordering::Release);
    let mut img = Image::new(&l);
    for i in 0..40 {
        set(&l, &mut img, i);
        s.on_cycle(&img, &info(0, i));
    }
    sink.hold.store(false, Ordering::Release);
    // Wait until both buffers are written and free again, then record more.
    while h.stats().rows_written < 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(20));
    for i in 40..45 {
        set(&l, &mut img, i);
        s.on_cycle(&img, &info(0, i));
    }
    drop(s);
    let stats = h.finish(Some(Duration::from_secs(5))).unwrap();
    // Rows 0..10 filled the two buffers, which the held writer could not give back;
    // rows 10..40 found none: six blocks dropped as wholes of 5 rows.
    assert_eq!(stats.dropped_blocks, 6, "{stats:?}");
    assert_eq!(stats.dropped_rows, stats.dropped_blocks * 5);
    assert_eq!(stats.rows_written + stats.dropped_rows, 45);
    let bytes = sink.bytes.lock().unwrap().clone();
    let fr = frames(&bytes);
    let gap = fr.iter().find(|(_, v)| kind(v) == "gap").unwrap();
    assert_eq!(gap.1["rows"].as_u64(), Some(stats.dropped_rows));
    assert_eq!(gap.1["blocks"].as_u64(), Some(stats.dropped_blocks));
    let first_dropped = gap.1["first_cycle"].as_u64().unwrap();
    let last_dropped = gap.1["last_cycle"].as_u64().unwrap();
    assert_eq!(last_dropped - first_dropped + 1, stats.dropped_rows);
    let cycles = u64s(&column(&fr, 0));
    assert!(cycles
        .iter()
        .all(|c| *c < first_dropped || *c > last_dropped));
    // The block after the gap skips the dropped sequence numbers.
    let seqs: Vec<u64> = fr
        .iter()
        .filter(|(_, v)| kind(v) == "block")
        .map(|(_, v)| v["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs.last().copied(),
        Some(seqs.len() as u64 - 1 + stats.dropped_blocks)
    );
    assert_eq!(gap.1["before_seq"].as_u64(), Some(seqs[2]));
}

#[test]
fn engine_events_go_into_the_file() {
    let l = layout();
    let sink = SharedSink::default();
    let events = EventSink::new();
    events.push(Event::new(1, EventKind::Info, None, "before".into()));
    let (mut s, h) = new_trace(lossless(), Box::new(sink.clone()), Some(events.clone())).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    let img = Image::new(&l);
    for i in 0..5 {
        s.on_cycle(&img, &info(0, i));
    }
    events.push(Event::new(
        3 * PERIOD,
        EventKind::Fault,
        TaskId::new(0),
        "division by zero in main".into(),
    ));
    events.push(
        Event::new(
            4 * PERIOD,
            EventKind::Overrun,
            TaskId::new(0),
            String::new(),
        )
        .with_numbers(2, 1_500_000),
    );
    drop(s);
    h.finish(Some(Duration::from_secs(5))).unwrap();
    let bytes = sink.bytes.lock().unwrap().clone();
    let fr = frames(&bytes);
    let evs: Vec<Mp> = fr
        .iter()
        .filter(|(_, v)| kind(v) == "events")
        .flat_map(|(_, v)| v["events"].as_array().unwrap().clone())
        .collect();
    assert_eq!(evs.len(), 2, "events from before the trace are not in it");
    assert_eq!(evs[0]["kind"].as_str(), Some("fault"));
    assert_eq!(evs[0]["text"].as_str(), Some("division by zero in main"));
    assert_eq!(evs[1]["a"].as_i64(), Some(2));
    assert!(evs[0]["io"].is_nil(), "only I/O events carry an io map");
}

#[test]
fn io_events_are_written_with_their_kind_link_and_device() {
    let l = layout();
    let sink = SharedSink::default();
    let events = EventSink::new();
    let (mut s, h) = new_trace(lossless(), Box::new(sink.clone()), Some(events.clone())).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    s.on_cycle(&Image::new(&l), &info(0, 0));
    // Device 10: with the old numeric codes (10 + device for health, 20 + device for
    // re-writes) its health event read as device 0's re-write.
    events.push(Event::io(
        PERIOD,
        IoEvent::on_device(IoEventKind::DeviceBad, 10, 2),
        "modbus: device \"p10\" failed".into(),
    ));
    events.push(Event::io(
        PERIOD,
        IoEvent::on_link(IoEventKind::Disconnected, 2).summing(7),
        "modbus: 7 more dropped connections".into(),
    ));
    events.push(Event::io(
        PERIOD,
        IoEvent::new(IoEventKind::Listening),
        "listening".into(),
    ));
    drop(s);
    h.finish(Some(Duration::from_secs(5))).unwrap();
    let bytes = sink.bytes.lock().unwrap().clone();
    let fr = frames(&bytes);
    let header = &fr[0].1;
    assert_eq!(header["version"][1].as_u64(), Some(2), "format 1.2");
    let evs: Vec<Mp> = fr
        .iter()
        .filter(|(_, v)| kind(v) == "events")
        .flat_map(|(_, v)| v["events"].as_array().unwrap().clone())
        .collect();
    let io: Vec<(String, Option<u64>, Option<u64>, u64)> = evs
        .iter()
        .map(|e| {
            assert_eq!(e["kind"].as_str(), Some("io"));
            let m = &e["io"];
            (
                m["kind"].as_str().unwrap().to_string(),
                m["link"].as_u64(),
                m["device"].as_u64(),
                m["suppressed"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        io,
        [
            ("device_bad".to_string(), Some(2), Some(10), 0),
            ("disconnected".to_string(), Some(2), None, 7),
            ("listening".to_string(), None, None, 0),
        ]
    );
    // The generic fields repeat link and device for readers of format 1.1.
    assert_eq!(
        (evs[0]["a"].as_i64(), evs[0]["b"].as_i64()),
        (Some(2), Some(10))
    );
    assert_eq!(
        (evs[2]["a"].as_i64(), evs[2]["b"].as_i64()),
        (Some(-1), Some(-1))
    );
}

#[test]
fn other_tasks_timing_is_their_last_cycle_and_overruns_stick_until_the_next_row() {
    let l = layout();
    let sink = SharedSink::default();
    let (mut s, h) = new_trace(lossless(), Box::new(sink.clone()), None).unwrap();
    let tasks = ["fast".to_string(), "slow".to_string()];
    s.attach(&l, &tasks, &[PERIOD, 4 * PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    let img = Image::new(&l);
    for i in 0..12 {
        s.on_cycle(&img, &info(0, i));
        if i % 4 == 1 {
            let mut slow = info(1, i / 4);
            slow.exec_ns = 777 + i;
            slow.overrun = i == 5;
            s.on_cycle(&img, &slow);
        }
    }
    drop(s);
    h.finish(Some(Duration::from_secs(5))).unwrap();
    let bytes = sink.bytes.lock().unwrap().clone();
    let fr = frames(&bytes);
    let exec = u64s(&column(&fr, signal_index(&fr, "task:slow.exec_time")));
    // Row i sees the slow task's last cycle that ended before it; before the first one
    // the execution time is -1 ("no cycle yet").
    assert_eq!(exec[0..3], [u64::MAX, u64::MAX, 778]);
    assert_eq!(exec[6], 782);
    let ov = column(&fr, signal_index(&fr, "task:slow.overrun"));
    assert_eq!(
        ov.iter()
            .enumerate()
            .filter(|(_, b)| **b == 1)
            .map(|(i, _)| i)
            .collect::<Vec<_>>(),
        [6]
    );
}

#[test]
fn an_unknown_signal_fails_the_attach_and_leaves_the_sampler_inert() {
    let l = layout();
    let config = TraceConfig {
        signals: vec!["tank.*".into()],
        ..TraceConfig::default()
    };
    let (mut s, h) = new_trace(config, Box::new(Vec::new()), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    let e = h.wait_attached(Duration::from_secs(1)).unwrap_err();
    assert!(e.contains("\"tank.*\" matches no variable"), "{e}");
    s.on_cycle(&Image::new(&l), &info(0, 0));
    drop(s);
    assert!(h.finish(Some(Duration::from_secs(1))).is_err());
    let config = triggered("rising:level", 1, 1);
    let (mut s, h) = new_trace(config, Box::new(Vec::new()), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    let e = h.wait_attached(Duration::from_secs(1)).unwrap_err();
    assert!(e.contains("edges are for BOOL"), "{e}");
}

#[test]
fn a_slow_task_gets_partial_blocks_on_the_flush_interval() {
    let l = layout();
    let sink = SharedSink::default();
    let config = TraceConfig {
        flush_interval: Duration::from_millis(5),
        ..TraceConfig::default()
    };
    let (mut s, h) = new_trace(config, Box::new(sink.clone()), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    let img = Image::new(&l);
    let mut i = 0;
    while h.stats().rows_written == 0 {
        assert!(i < 2000, "no partial block was written");
        s.on_cycle(&img, &info(0, i));
        i += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(h.stats().rows_written < 1024);
    drop(s);
    h.finish(Some(Duration::from_secs(5))).unwrap();
}

#[test]
fn a_file_cut_anywhere_keeps_the_whole_frames_before_the_cut() {
    let run = record(lossless(), 20, |_, _| {});
    let whole = frames(&run.bytes);
    let ends: Vec<usize> = whole
        .iter()
        .map(|(p, _)| {
            p + FRAME_HEADER + u32::from_le_bytes(run.bytes[*p..p + 4].try_into().unwrap()) as usize
        })
        .collect();
    for cut in 8..run.bytes.len() {
        let got = frames(&run.bytes[..cut]).len();
        assert_eq!(
            got,
            ends.iter().filter(|e| **e <= cut).count(),
            "cut at {cut}"
        );
    }
}

/// A disk that fills up after `room` bytes.
struct FullDisk {
    room: usize,
}

impl Write for FullDisk {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.len() > self.room {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device",
            ));
        }
        self.room -= b.len();
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TraceSink for FullDisk {}

#[test]
fn a_full_disk_is_reported_and_never_blocks_the_scan() {
    let l = layout();
    let config = TraceConfig {
        block_rows: 4,
        buffer_blocks: 2,
        ..TraceConfig::default()
    };
    let (mut s, h) = new_trace(config, Box::new(FullDisk { room: 2000 }), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    let mut img = Image::new(&l);
    for i in 0..200 {
        set(&l, &mut img, i);
        s.on_cycle(&img, &info(0, i));
        if i % 8 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    drop(s);
    let e = h.finish(Some(Duration::from_secs(5))).unwrap_err();
    assert!(
        e.contains("writing the trace file failed: no space left on device"),
        "{e}"
    );
    let st = h.stats();
    assert_eq!(st.rows_sampled, 200);
    assert!(st.rows_written < 200, "{st:?}");
}

#[test]
fn a_forced_trigger_on_the_cycle_of_a_real_one_is_used_up_by_that_capture() {
    // start rises at cycle 10 (TRUE on 10..15); the force lands on the same cycle.
    let mut config = triggered("rising:start", 1, 1);
    if let TraceMode::Triggered { captures, .. } = &mut config.mode {
        *captures = 2;
    }
    let run = record(config, 40, |i, h| {
        if i == 10 {
            h.trigger();
        }
    });
    let fr = frames(&run.bytes);
    // One capture around cycle 10, not marked forced; no second capture starts from the
    // stale force right after re-arming (start rises only once).
    assert_eq!(u64s(&column(&fr, 0)), vec![9, 10, 11]);
    let trig: Vec<&Mp> = fr
        .iter()
        .filter(|(_, v)| kind(v) == "trigger")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(trig.len(), 1);
    assert_eq!(trig[0]["forced"].as_bool(), Some(false));
    assert_eq!(run.stats.triggers, 1);
}

#[test]
fn a_sink_that_cannot_sync_such_as_a_device_closes_cleanly() {
    let l = layout();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let (mut s, h) = new_trace(lossless(), Box::new(file), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    let img = Image::new(&l);
    for i in 0..20 {
        s.on_cycle(&img, &info(0, i));
    }
    drop(s);
    let st = h.finish(Some(Duration::from_secs(5))).unwrap();
    assert_eq!(st.rows_written, 20);
}

#[test]
fn a_trace_into_a_fifo_closes_cleanly() {
    let dir = std::env::temp_dir().join(format!("softplc-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.fifo");
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let path = path.clone();
        std::thread::spawn(move || std::fs::read(path).unwrap())
    };
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let l = layout();
    let (mut s, h) = new_trace(lossless(), Box::new(file), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    let img = Image::new(&l);
    for i in 0..30 {
        s.on_cycle(&img, &info(0, i));
    }
    drop(s);
    let st = h.finish(Some(Duration::from_secs(5))).unwrap();
    let bytes = reader.join().unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(st.rows_written, 30);
    assert_eq!(
        u64s(&column(&frames(&bytes), 0)),
        (0..30).collect::<Vec<_>>()
    );
}

#[test]
fn an_existing_file_is_replaced_only_once_the_trace_has_started() {
    let dir = std::env::temp_dir().join(format!("softplc-begin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old.trace");
    let old = vec![0xabu8; 100_000];
    std::fs::write(&path, &old).unwrap();
    let open = || std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let l = layout();
    // A trace that fails to attach (unknown signal) never touches the file.
    let bad = TraceConfig {
        signals: vec!["nope".into()],
        ..lossless()
    };
    let (mut s, h) = new_trace(bad, Box::new(open()), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    assert!(h.wait_attached(Duration::from_secs(1)).is_err());
    drop(s);
    assert!(h.finish(Some(Duration::from_secs(1))).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), old);
    // A trace that starts replaces the whole file, also the old bytes past its end.
    let (mut s, h) = new_trace(lossless(), Box::new(open()), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    s.on_cycle(&Image::new(&l), &info(0, 0));
    drop(s);
    let st = h.finish(Some(Duration::from_secs(5))).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(bytes.len() as u64, st.bytes_written);
    assert_eq!(
        frames(&bytes).last().map(|(_, v)| kind(v).to_string()),
        Some("end".into())
    );
}

#[test]
fn check_finds_what_attach_would_refuse_without_starting_anything() {
    let l = layout();
    let tasks = ["main".to_string()];
    assert!(lossless().check(&l, &tasks, &[PERIOD]).is_ok());
    let e = TraceConfig {
        signals: vec!["levle".into()],
        ..lossless()
    }
    .check(&l, &tasks, &[PERIOD])
    .unwrap_err();
    assert!(e.message.contains("levle"), "{e}");
    let e = triggered("rising:level", 1, 1)
        .check(&l, &tasks, &[PERIOD])
        .unwrap_err();
    assert!(e.message.contains("edges are for BOOL"), "{e}");
    let e = TraceConfig {
        max_buffer_bytes: 1000,
        ..lossless()
    }
    .check(&l, &tasks, &[PERIOD])
    .unwrap_err();
    assert!(e.message.contains("max_buffer_bytes"), "{e}");
}

#[test]
fn a_trace_over_the_memory_cap_fails_to_attach_with_a_clear_error() {
    let l = layout();
    let config = TraceConfig {
        block_rows: 1 << 20,
        buffer_blocks: 1 << 16,
        ..TraceConfig::default()
    };
    let (mut s, h) = new_trace(config, Box::new(Vec::new()), None).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    let e = h.wait_attached(Duration::from_secs(1)).unwrap_err();
    assert!(e.contains("max_buffer_bytes"), "{e}");
}

/// Events of a trace whose writer is held up while `push` runs.
fn events_lost_run(events: &EventSink, push: impl FnOnce()) -> (Vec<Mp>, Mp, TraceStats) {
    let l = layout();
    let sink = SharedSink::default();
    sink.hold.store(true, Ordering::Release);
    let (mut s, h) = new_trace(lossless(), Box::new(sink.clone()), Some(events.clone())).unwrap();
    s.attach(&l, &["main".to_string()], &[PERIOD]);
    h.wait_attached(Duration::from_secs(1)).unwrap();
    push();
    sink.hold.store(false, Ordering::Release);
    s.on_cycle(&Image::new(&l), &info(0, 0));
    drop(s);
    let stats = h.finish(Some(Duration::from_secs(5))).unwrap();
    let bytes = sink.bytes.lock().unwrap().clone();
    let fr = frames(&bytes);
    let frames_ev: Vec<Mp> = fr
        .iter()
        .filter(|(_, v)| kind(v) == "events")
        .map(|(_, v)| v.clone())
        .collect();
    let summary = fr.iter().find(|(_, v)| kind(v) == "index").unwrap().1["summary"].clone();
    (frames_ev, summary, stats)
}

fn ev(t: u64) -> Event {
    Event::new(t, EventKind::Overrun, TaskId::new(0), String::new()).with_numbers(1, 2)
}

#[test]
fn events_the_log_forgot_before_the_writer_read_them_are_counted_as_lost() {
    let events = EventSink::with_capacity(4, 16);
    let (frames_ev, summary, stats) = events_lost_run(&events, || {
        for t in 0..10 {
            events.push(ev(t));
        }
    });
    let written: usize = frames_ev
        .iter()
        .map(|v| v["events"].as_array().unwrap().len())
        .sum();
    let lost: u64 = frames_ev.iter().map(|v| v["lost"].as_u64().unwrap()).sum();
    assert_eq!((written, lost), (4, 6));
    assert_eq!(summary["events_lost"].as_u64(), Some(6));
    assert_eq!((stats.events_written, stats.events_lost), (4, 6));
}

#[test]
fn events_the_scan_thread_could_not_hand_over_are_counted_as_lost() {
    let events = EventSink::with_capacity(100, 4);
    let (frames_ev, summary, stats) = events_lost_run(&events, || {
        let _reader = events.hold_log_for_test();
        let pushed = (0..7).filter(|t| events.try_push(ev(*t))).count();
        assert_eq!(pushed, 4);
    });
    let lost: u64 = frames_ev.iter().map(|v| v["lost"].as_u64().unwrap()).sum();
    assert_eq!(lost, 3);
    assert_eq!(summary["events_lost"].as_u64(), Some(3));
    assert_eq!((stats.events_written, stats.events_lost), (4, 3));
}

#[test]
fn incomplete_captures_are_counted() {
    let config = triggered("rising:start", 1, 30);
    let run = record(config, 20, |_, _| {});
    assert_eq!(run.stats.incomplete_captures, 1);
    let fr = frames(&run.bytes);
    let index = &fr.iter().find(|(_, v)| kind(v) == "index").unwrap().1;
    assert_eq!(index["summary"]["incomplete_captures"].as_u64(), Some(1));
}
