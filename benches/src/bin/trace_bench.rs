//! Trace benchmark: N REAL signals sampled every cycle of a real-time task (default
//! 1,000 signals at 1 kHz for 60 s), written to a trace file.
//!
//! Reports as one JSON object: cycles run and lost (overruns, cycles skipped), blocks
//! dropped, the scan-thread time the sampler takes per cycle (measured around
//! `on_cycle`, percentiles), rows written and the file size.
//!
//! ```text
//! cargo run --release -p softplc-benches --bin trace_bench -- OUT.trace [SECONDS] [SIGNALS] [PERIOD_US] [off]
//! ```
//! With `off` the same engine runs without the trace (the baseline for cycles lost).

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use softplc_core::engine::TaskConfig;
use softplc_core::rt::RtRequest;
use softplc_core::trace::{new_trace, TraceConfig, TraceSampler, TraceStart};
use softplc_core::{
    Area, ClockKind, CycleInfo, CycleObserver, EngineBuilder, FnProgram, IecType, Image, Layout,
    LayoutBuilder, ProgramFault, ScanCtx, Value, VarDecl,
};

/// Wraps the sampler and times each call; durations go into pre-allocated atomics so the
/// scan thread neither allocates nor locks for the measurement either.
struct Timed {
    inner: TraceSampler,
    samples: Arc<Vec<AtomicU32>>,
    count: Arc<AtomicUsize>,
    n: usize,
}

impl CycleObserver for Timed {
    fn attach(&mut self, layout: &Layout, task_names: &[String], periods_ns: &[u64]) {
        self.inner.attach(layout, task_names, periods_ns);
    }

    fn on_cycle(&mut self, image: &Image, info: &CycleInfo) {
        let t = Instant::now();
        self.inner.on_cycle(image, info);
        let d = t.elapsed().as_nanos().min(u32::MAX as u128) as u32;
        if self.n < self.samples.len() {
            self.samples[self.n].store(d, Ordering::Relaxed);
            self.n += 1;
            self.count.store(self.n, Ordering::Release);
        }
    }
}

fn pct(sorted: &[u32], q: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let out = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "trace_bench.trace".to_string());
    let seconds: f64 = args.get(2).map_or(60.0, |s| s.parse().expect("SECONDS"));
    let signals: usize = args.get(3).map_or(1000, |s| s.parse().expect("SIGNALS"));
    let period_us: u64 = args.get(4).map_or(1000, |s| s.parse().expect("PERIOD_US"));
    let period_ns = period_us * 1000;
    let traced = args.get(5).is_none_or(|s| s != "off");

    let mut b = LayoutBuilder::new();
    for i in 0..signals {
        b.declare(VarDecl::new(
            &format!("plant.s{i:04}"),
            Area::Memory,
            IecType::Real,
            None,
        ))
        .expect("declare");
    }
    let layout = b.build().expect("layout");
    let slots: Vec<_> = layout.vars().iter().map(|v| v.slot).collect();
    // Every signal changes every cycle, so nothing compresses and every byte is real.
    let program = FnProgram::new(
        "plant",
        move |ctx: &mut ScanCtx<'_>| -> Result<(), ProgramFault> {
            let c = ctx.cycle as f32;
            for (i, s) in slots.iter().enumerate() {
                ctx.image.store(*s, Value::Real(c * 0.001 + i as f32));
            }
            Ok(())
        },
    );
    let mut eb = EngineBuilder::new(layout, ClockKind::Real);
    eb.realtime(RtRequest {
        priority: Some(80),
        lock_memory: true,
        cpu: None,
    });
    eb.task(TaskConfig::new("main", period_ns), vec![Box::new(program)])
        .expect("task");
    let mut engine = eb.build().expect("engine");
    engine.start(true).expect("start");
    let rt = engine.rt_status();

    let file = std::fs::File::create(&out).expect("create trace file");
    let config = TraceConfig {
        start: Some(TraceStart::of(&engine)),
        ..TraceConfig::default()
    };
    let (sampler, handle) =
        new_trace(config, Box::new(file), Some(engine.events().clone())).expect("trace");
    let expected = (seconds * 1e9 / period_ns as f64) as usize;
    let samples: Arc<Vec<AtomicU32>> = Arc::new(
        (0..expected + expected / 10 + 1000)
            .map(|_| AtomicU32::new(0))
            .collect(),
    );
    let count = Arc::new(AtomicUsize::new(0));
    let timed = Timed {
        inner: sampler,
        samples: samples.clone(),
        count: count.clone(),
        n: 0,
    };
    engine.reset_stats();
    let t0 = Instant::now();
    let (elapsed, figures, stats) = if traced {
        let id = engine.add_observer(Box::new(timed));
        handle
            .wait_attached(Duration::from_secs(5))
            .expect("attach");
        std::thread::sleep(Duration::from_secs_f64(seconds));
        let obs = engine
            .remove_observer(id, Duration::from_secs(5))
            .expect("observer back");
        let elapsed = t0.elapsed().as_secs_f64();
        let figures = engine.stats();
        drop(obs);
        let stats = handle
            .finish(Some(Duration::from_secs(60)))
            .expect("trace closes");
        (elapsed, figures, stats)
    } else {
        std::thread::sleep(Duration::from_secs_f64(seconds));
        let elapsed = t0.elapsed().as_secs_f64();
        let figures = engine.stats();
        drop(timed);
        let stats = handle
            .finish(Some(Duration::from_secs(5)))
            .unwrap_or_default();
        (elapsed, figures, stats)
    };
    engine.close();

    let n = count.load(Ordering::Acquire);
    let mut d: Vec<u32> = samples[..n]
        .iter()
        .map(|a| a.load(Ordering::Relaxed))
        .collect();
    d.sort_unstable();
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let task = &figures[0];
    let rt_text = rt.map_or("virtual".to_string(), |s| {
        format!("{s:?}").replace('"', "'")
    });
    println!(
        "{{\"signals\": {signals}, \"period_us\": {period_us}, \"seconds\": {elapsed:.3}, \
         \"cycles\": {}, \"overruns\": {}, \"cycles_skipped\": {}, \
         \"rows_sampled\": {}, \"rows_written\": {}, \"blocks_written\": {}, \
         \"dropped_blocks\": {}, \"dropped_rows\": {}, \"file_bytes\": {size}, \
         \"sampler_ns\": {{\"count\": {n}, \"p50\": {}, \"p99\": {}, \"p999\": {}, \"max\": {}}}, \
         \"exec_ns\": {{\"p50\": {}, \"p99\": {}, \"max\": {}}}, \
         \"wake_latency_ns\": {{\"p50\": {}, \"p99\": {}, \"max\": {}}}, \"traced\": {traced}, \
         \"rt\": \"{rt_text}\"}}",
        task.cycles,
        task.overruns,
        task.missed,
        stats.rows_sampled,
        stats.rows_written,
        stats.blocks_written,
        stats.dropped_blocks,
        stats.dropped_rows,
        pct(&d, 0.5),
        pct(&d, 0.99),
        pct(&d, 0.999),
        d.last().copied().unwrap_or(0),
        task.exec.p50,
        task.exec.p99,
        task.exec.max,
        task.latency.p50,
        task.latency.p99,
        task.latency.max,
    );
}
