//! The engine's own wake latency with a native blink program (no Python anywhere):
//! `cargo run --release -p softplc-benches --bin jitter_native -- SECONDS PRIORITY CPU`.

use softplc_core::rt::RtRequest;
use softplc_core::*;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let (secs, prio, cpu) = (
        args.first().copied().unwrap_or(10),
        args.get(1).copied().unwrap_or(80),
        args.get(2).copied().unwrap_or(1),
    );
    let mut b = LayoutBuilder::new();
    let lamp = b
        .declare(VarDecl::new(
            "lamp",
            Area::Output,
            IecType::Bool,
            Some("%QX0.0"),
        ))
        .unwrap();
    let layout = b.build().unwrap();
    let slot = layout.var(lamp).slot;
    let blink = FnProgram::new("blink", move |cx: &mut ScanCtx<'_>| {
        cx.image
            .store(slot, Value::Bool((cx.now_ns / 500_000_000) % 2 == 1));
        Ok(())
    });
    let mut eb = EngineBuilder::new(layout, ClockKind::Real);
    eb.realtime(RtRequest {
        priority: Some(prio as i32),
        lock_memory: true,
        cpu: Some(cpu as usize),
    });
    eb.task(TaskConfig::new("main", 1_000_000), vec![Box::new(blink)])
        .unwrap();
    let mut e = eb.build().unwrap();
    e.start(true).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    e.reset_stats();
    std::thread::sleep(std::time::Duration::from_secs(secs));
    let f = e.stats()[0];
    e.close();
    let us = |v: u64| v as f64 / 1e3;
    println!(
        "native engine: p50 {:.1} p99 {:.1} p99.9 {:.1} max {:.1} us; cycles {} overruns {} missed {}; exec max {:.1} us p99.9 {:.1}",
        us(f.latency.p50),
        us(f.latency.p99),
        us(f.latency.p999),
        us(f.latency.max),
        f.cycles,
        f.overruns,
        f.missed,
        us(f.exec.max),
        us(f.exec.p999)
    );
}
