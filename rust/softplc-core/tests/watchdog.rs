//! The watchdog thread, end to end in real time: a cycle that never ends is caught from
//! outside the scan thread, the drivers' outputs go safe without the scan thread, and
//! `close` returns in bounded time even when the scan never comes back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use softplc_core::clock::monotonic_ns;
use softplc_core::*;

/// What a test driver's emergency handle saw.
#[derive(Default)]
struct Seen {
    /// Monotonic time of the first `force_safe`, 0 if none.
    forced_at: AtomicU64,
    shutdown: AtomicBool,
    /// Values of `lamp` the driver published from the scan thread, in order.
    published: Mutex<Vec<bool>>,
}

impl SafeState for Seen {
    fn force_safe(&self) {
        let _ =
            self.forced_at
                .compare_exchange(0, monotonic_ns(), Ordering::AcqRel, Ordering::Acquire);
    }
    fn shutdown(&self) {
        self.shutdown.store(true, Ordering::Release);
    }
}

/// A driver that records the outputs it is given and offers an emergency handle.
struct Recorder {
    seen: Arc<Seen>,
    lamp: Option<Slot>,
}

impl Driver for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn bind(&mut self, layout: &Layout) -> Result<(), ConfigError> {
        self.lamp = Some(layout.var(layout.find("lamp")?).slot);
        Ok(())
    }
    fn start(&mut self, _cx: &StartCtx) -> Result<(), IoError> {
        Ok(())
    }
    fn read_inputs(&mut self, _cx: &mut IoCtx<'_>) -> IoStatus {
        IoStatus::Ok
    }
    fn write_outputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        if let (Some(s), Ok(mut p)) = (self.lamp, self.seen.published.try_lock()) {
            p.push(cx.image.load(s) == Value::Bool(true));
        }
        IoStatus::Ok
    }
    fn stop(&mut self) {}
    fn safe_state(&self) -> Option<Arc<dyn SafeState>> {
        Some(self.seen.clone())
    }
}

fn layout() -> Layout {
    let mut b = LayoutBuilder::new();
    let mut lamp = VarDecl::new("lamp", Area::Output, IecType::Bool, None);
    lamp.safe = Some(Value::Bool(false));
    b.declare(lamp).unwrap();
    b.declare(VarDecl::new("n", Area::Memory, IecType::Dint, None))
        .unwrap();
    b.build().unwrap()
}

/// How the program misbehaves from cycle 20 on.
#[derive(Clone, Copy)]
enum Stuck {
    /// Spins, polling the abort flag as compiled loops do.
    PollingAbort,
    /// Never looks at anything for this long.
    Deaf(Duration),
}

fn engine(stuck: Stuck, watchdog: Option<(u64, u32)>) -> (Engine, Arc<Seen>, Arc<AtomicU64>) {
    let l = layout();
    let lamp = l.var(l.find("lamp").unwrap()).slot;
    let n = l.var(l.find("n").unwrap()).slot;
    let stuck_at = Arc::new(AtomicU64::new(0));
    let at = stuck_at.clone();
    let p = FnProgram::new("prog", move |cx: &mut ScanCtx<'_>| {
        let Value::Int(_, c) = cx.image.load(n) else {
            unreachable!()
        };
        cx.image.store(n, Value::Int(IecType::Dint, c + 1));
        cx.image.store(lamp, Value::Bool(true));
        if c >= 20 {
            at.store(monotonic_ns(), Ordering::Release);
            match stuck {
                Stuck::PollingAbort => {
                    while !cx.abort.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                    return Err(ProgramFault::new("stopped by the abort flag"));
                }
                Stuck::Deaf(d) => std::thread::sleep(d),
            }
        }
        Ok(())
    });
    let seen = Arc::new(Seen::default());
    let mut b = EngineBuilder::new(l, ClockKind::Real);
    let mut cfg = TaskConfig::new("main", 1_000_000);
    cfg.watchdog = watchdog;
    b.task(cfg, vec![Box::new(p)]).unwrap();
    b.driver(Box::new(Recorder {
        seen: seen.clone(),
        lamp: None,
    }))
    .unwrap();
    let mut e = b.build().unwrap();
    e.start(true).unwrap();
    (e, seen, stuck_at)
}

fn wait_for(what: impl Fn() -> bool, limit: Duration) -> bool {
    let t0 = Instant::now();
    while !what() {
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

#[test]
fn a_cycle_that_never_ends_is_faulted_from_outside_with_outputs_safe() {
    let (mut e, seen, stuck_at) = engine(Stuck::PollingAbort, Some((5_000_000, 0)));
    assert!(wait_for(
        || e.state() == PlcState::Fault,
        Duration::from_secs(5)
    ));
    let f = e.fault().expect("a fault is recorded");
    assert_eq!(f.kind, FaultKind::Watchdog);
    assert_eq!(f.source, "prog");
    assert_eq!(f.cycle, 20);
    assert!(f.message.contains("still running"), "{}", f.message);
    // The scan came back through the abort flag and says so.
    assert!(wait_for(
        || e.fault().unwrap().message.contains("abort flag"),
        Duration::from_secs(5)
    ));
    let forced = seen.forced_at.load(Ordering::Acquire);
    assert!(forced > 0, "the driver was told to go safe");
    // Not before the deadline (the figure itself is the benchmark's business).
    assert!(forced >= stuck_at.load(Ordering::Acquire));
    assert!(f.t_ns >= f.started_ns + 5_000_000);
    // The snapshot shows the safe value, and the scan, back, keeps publishing it.
    let lamp = e.layout().find("lamp").unwrap();
    assert_eq!(e.read(lamp), Value::Bool(false));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(seen.published.lock().unwrap().last(), Some(&false));
    assert_eq!(e.state(), PlcState::Fault);
    e.close();
    assert!(!e.scan_abandoned());
}

#[test]
fn the_tolerance_stretches_the_hard_limit_of_one_cycle() {
    // Limit 5 ms, two breaches tolerated: one cycle may run 15 ms.
    let (mut e, _seen, _) = engine(Stuck::PollingAbort, Some((5_000_000, 2)));
    assert!(wait_for(
        || e.state() == PlcState::Fault,
        Duration::from_secs(5)
    ));
    let f = e.fault().unwrap();
    assert!(f.t_ns - f.started_ns >= 15_000_000, "{f}");
    assert!(f.message.contains("tolerance 2"), "{}", f.message);
    e.close();
}

#[test]
fn close_returns_in_bounded_time_and_abandons_a_scan_that_never_returns() {
    // No watchdog at all, and the program ignores the abort flag for 10 s.
    let (mut e, seen, stuck_at) = engine(Stuck::Deaf(Duration::from_secs(10)), None);
    assert!(wait_for(
        || stuck_at.load(Ordering::Acquire) > 0,
        Duration::from_secs(5)
    ));
    let t0 = Instant::now();
    e.close();
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(4), "close took {took:?}");
    assert!(e.scan_abandoned());
    assert!(seen.forced_at.load(Ordering::Acquire) > 0);
    assert!(seen.shutdown.load(Ordering::Acquire));
    assert_eq!(e.state(), PlcState::Fault);
    let f = e.fault().unwrap();
    assert!(f.message.starts_with("close:"), "{}", f.message);
    let lamp = e.layout().find("lamp").unwrap();
    assert_eq!(e.read(lamp), Value::Bool(false));
}

#[test]
fn close_waits_for_a_slow_cycle_that_ends_by_itself() {
    // 200 ms stuck, within close's grace: a normal stop, no fault.
    let (mut e, seen, stuck_at) = engine(Stuck::Deaf(Duration::from_millis(200)), None);
    assert!(wait_for(
        || stuck_at.load(Ordering::Acquire) > 0,
        Duration::from_secs(5)
    ));
    e.close();
    assert!(!e.scan_abandoned());
    assert_eq!(seen.forced_at.load(Ordering::Acquire), 0);
    assert_eq!(e.state(), PlcState::Stop);
}
