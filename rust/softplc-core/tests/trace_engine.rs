//! A trace recorded from a real engine in virtual time, read back from the file with an
//! independent msgpack decoder.

use std::path::PathBuf;
use std::time::Duration;

use rmpv::Value as Mp;
use softplc_core::engine::TaskConfig;
use softplc_core::trace::{new_trace, TraceConfig, TraceStart, MAGIC};
use softplc_core::*;

fn layout() -> Layout {
    let mut b = LayoutBuilder::new();
    b.declare(VarDecl::new("start", Area::Input, IecType::Bool, None))
        .unwrap();
    b.declare(VarDecl::new("count", Area::Memory, IecType::Dint, None))
        .unwrap();
    b.declare(VarDecl::new(
        "slow_count",
        Area::Memory,
        IecType::Dint,
        None,
    ))
    .unwrap();
    b.declare(VarDecl::new("level", Area::Output, IecType::Real, None))
        .unwrap();
    b.build().unwrap()
}

fn slot(l: &Layout, name: &str) -> Slot {
    l.var(l.find(name).unwrap()).slot
}

fn dint(v: Value) -> i64 {
    match v {
        Value::Int(_, i) => i,
        other => panic!("not an integer: {other:?}"),
    }
}

/// `main` (1 ms) counts its cycles into `count` and ramps `level`; `slow` (10 ms)
/// counts into `slow_count`.
fn engine() -> Engine {
    let l = layout();
    let (count, level, slow) = (slot(&l, "count"), slot(&l, "level"), slot(&l, "slow_count"));
    let main = FnProgram::new("main", move |cx: &mut ScanCtx<'_>| {
        let c = dint(cx.image.load(count)) + 1;
        cx.image.store(count, Value::Int(IecType::Dint, c));
        cx.image.store(level, Value::Real(c as f32 * 0.5));
        Ok(())
    });
    let slow_prog = FnProgram::new("slow", move |cx: &mut ScanCtx<'_>| {
        let c = dint(cx.image.load(slow)) + 1;
        cx.image.store(slow, Value::Int(IecType::Dint, c));
        Ok(())
    });
    let mut b = EngineBuilder::new(l, ClockKind::Virtual);
    b.task(TaskConfig::new("main", 1_000_000), vec![Box::new(main)])
        .unwrap();
    b.task(
        TaskConfig::new("slow", 10_000_000),
        vec![Box::new(slow_prog)],
    )
    .unwrap();
    let mut e = b.build().unwrap();
    e.start(true).unwrap();
    e
}

fn frames(bytes: &[u8]) -> Vec<Mp> {
    assert_eq!(&bytes[..8], MAGIC);
    let mut out = Vec::new();
    let mut pos = 8;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap());
        let payload = &bytes[pos + 8..pos + 8 + len];
        assert_eq!(crc32fast::hash(payload), crc, "frame at {pos}");
        out.push(rmpv::decode::read_value(&mut &payload[..]).unwrap());
        pos += 8 + len;
    }
    assert_eq!(pos, bytes.len(), "the file ends with a whole frame");
    out
}

fn kind(v: &Mp) -> &str {
    v["type"].as_str().unwrap()
}

/// Column `name` of every block, as raw bytes in row order.
fn column(fr: &[Mp], name: &str) -> Vec<u8> {
    let header = &fr[0];
    let c = match name {
        "cycle" => 0,
        "t_ns" => 1,
        _ => {
            2 + header["signals"]
                .as_array()
                .unwrap()
                .iter()
                .position(|s| s["name"].as_str() == Some(name))
                .expect(name)
        }
    };
    fr.iter()
        .filter(|v| kind(v) == "block")
        .flat_map(|v| v["columns"][c].as_slice().unwrap().to_vec())
        .collect()
}

fn i64s(raw: &[u8]) -> Vec<i64> {
    raw.chunks(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn i32s(raw: &[u8]) -> Vec<i32> {
    raw.chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("softplc-trace-engine-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn a_virtual_time_engine_traced_to_a_file_reads_back_row_for_row() {
    let mut e = engine();
    // Ten cycles before the trace starts: the trace holds only what follows.
    e.run_cycles(10).unwrap();
    let start = TraceStart::of(&e);
    let config = TraceConfig {
        backpressure: true,
        block_rows: 16,
        buffer_blocks: 2,
        start: Some(start),
        ..TraceConfig::default()
    };
    let tasks: Vec<String> = e.tasks().iter().map(|t| t.name.clone()).collect();
    let periods: Vec<u64> = e.tasks().iter().map(|t| t.period_ns).collect();
    config.check(e.layout(), &tasks, &periods).unwrap();
    let path = temp_path("engine.trace");
    let file = std::fs::File::create(&path).unwrap();
    let (sampler, handle) = new_trace(config, Box::new(file), Some(e.events().clone())).unwrap();
    let id = e.add_observer(Box::new(sampler));
    handle.wait_attached(Duration::from_secs(5)).unwrap();
    e.run_cycles(50).unwrap();
    let start_var = e.layout().find("start").unwrap();
    e.force(start_var, Value::Bool(true));
    e.run_cycles(50).unwrap();
    let obs = e
        .remove_observer(id, Duration::from_secs(5))
        .expect("the engine hands the sampler back");
    drop(obs);
    let stats = handle.finish(Some(Duration::from_secs(10))).unwrap();
    e.close();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();

    assert_eq!(stats.rows_written, 100);
    assert_eq!(stats.bytes_written, bytes.len() as u64);
    let fr = frames(&bytes);
    let header = &fr[0];
    assert_eq!(kind(header), "header");
    assert_eq!(header["version"][0].as_u64(), Some(1));
    assert_eq!(header["engine_state"].as_str(), Some("RUN"));
    let clock = &header["clock_ref"];
    assert_eq!(clock["clock"].as_str(), Some("virtual"));
    // The engine clock at the start is the time of the next cycle: the 11th, at 10 ms.
    assert_eq!(clock["engine_ns"].as_u64(), Some(10_000_000));
    assert_eq!(clock["unix_ns"].as_u64(), Some(start.unix_ns));
    assert_eq!(header["created_unix_ns"].as_u64(), Some(start.unix_ns));
    let task_names: Vec<&str> = header["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(task_names, ["main", "slow"]);

    // Row i is main's cycle 10 + i, scheduled at (10 + i) ms, after `count` became 11 + i.
    let cycles = i64s(&column(&fr, "cycle"));
    assert_eq!(cycles, (10..110).collect::<Vec<_>>());
    let t = i64s(&column(&fr, "t_ns"));
    assert_eq!(t, (10..110).map(|c| c * 1_000_000).collect::<Vec<_>>());
    let count = i32s(&column(&fr, "count"));
    assert_eq!(count, (11..111).collect::<Vec<_>>());
    let level: Vec<f32> = column(&fr, "level")
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(level[0], 5.5);
    assert_eq!(level[99], 55.0);
    // The force shows in the rows after it (it applies from the next cycle on).
    let start_col = column(&fr, "start");
    assert_eq!(start_col[..50], [0u8; 50]);
    assert_eq!(start_col[51..], [1u8; 49]);

    // The slow task: its cycles at 10, 20, ..., 100 ms appear in the rows once each;
    // rows before the trace saw its first cycle say so with exec_time -1.
    let sched = i64s(&column(&fr, "task:slow.scheduled_ns"));
    let exec = i64s(&column(&fr, "task:slow.exec_time"));
    let mut seen: Vec<i64> = Vec::new();
    for (s, x) in sched.iter().zip(&exec) {
        if *x >= 0 && seen.last() != Some(s) {
            seen.push(*s);
        }
    }
    assert_eq!(seen, (1..=10).map(|k| k * 10_000_000).collect::<Vec<_>>());
    let slow_count = i32s(&column(&fr, "slow_count"));
    assert_eq!(slow_count[99], 11);

    // The force is an engine event in the file; nothing was lost.
    let events: Vec<&Mp> = fr
        .iter()
        .filter(|v| kind(v) == "events")
        .flat_map(|v| v["events"].as_array().unwrap().iter())
        .collect();
    let force = events
        .iter()
        .find(|ev| ev["kind"].as_str() == Some("force"))
        .expect("a force event");
    assert_eq!(force["text"].as_str(), Some("start=TRUE"));
    let index = fr.iter().find(|v| kind(v) == "index").unwrap();
    assert_eq!(index["summary"]["rows"].as_u64(), Some(100));
    assert_eq!(index["summary"]["events_lost"].as_u64(), Some(0));
    assert_eq!(index["blocks"].as_array().unwrap().len(), 7);
    assert_eq!(kind(fr.last().unwrap()), "end");
}

#[test]
fn a_live_trace_starts_on_an_engine_and_stops_with_every_row_in_the_file() {
    use softplc_core::trace::{LiveTrace, TraceOptions};
    let dir = std::env::temp_dir().join(format!("softplc-live-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("live.trace");
    let mut e = engine();
    let config = TraceOptions {
        signals: vec!["count".into()],
        ..TraceOptions::default()
    }
    .config()
    .unwrap();
    let trace = LiveTrace::start(&mut e, config, &path).unwrap();
    e.run_cycles(25).unwrap();
    assert!(trace.detach(&mut e, Duration::from_secs(5)));
    assert!(!trace.is_attached());
    let stats = trace.finish(Duration::from_secs(10)).unwrap();
    assert_eq!(stats.rows_written, 25);
    assert_eq!(
        trace.finish(Duration::ZERO).unwrap(),
        stats,
        "finish again: same counters"
    );
    // A trace that does not fit the engine leaves an existing file as it was.
    std::fs::write(&path, b"keep").unwrap();
    let bad = TraceOptions {
        signals: vec!["nope".into()],
        ..TraceOptions::default()
    }
    .config()
    .unwrap();
    let err = LiveTrace::start(&mut e, bad, &path).unwrap_err();
    assert!(
        matches!(err, softplc_core::trace::TraceError::Config(_)),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    e.close();
    std::fs::remove_dir_all(&dir).ok();
}
