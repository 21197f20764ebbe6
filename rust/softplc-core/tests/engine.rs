//! The engine driven end to end in virtual time with native programs.

use std::sync::{Arc, Mutex};

use softplc_core::*;

fn layout() -> Layout {
    let mut b = LayoutBuilder::new();
    b.declare(VarDecl::new(
        "start",
        Area::Input,
        IecType::Bool,
        Some("%IX0.0"),
    ))
    .unwrap();
    let mut lamp = VarDecl::new("lamp", Area::Output, IecType::Bool, Some("%QX0.0"));
    lamp.safe = Some(Value::Bool(false));
    b.declare(lamp).unwrap();
    let mut valve = VarDecl::new("valve", Area::Output, IecType::Int, None);
    valve.safe = Some(Value::Int(IecType::Int, -1));
    b.declare(valve).unwrap();
    b.declare(VarDecl::new("count", Area::Memory, IecType::Dint, None))
        .unwrap();
    b.build().unwrap()
}

/// Counts cycles into `count`, copies `start` to `lamp`, sets valve to 7; faults when
/// count reaches `fault_at`.
fn counter(l: &Layout, fault_at: i64) -> Box<dyn Program> {
    let start = l.var(l.find("start").unwrap()).slot;
    let lamp = l.var(l.find("lamp").unwrap()).slot;
    let valve = l.var(l.find("valve").unwrap()).slot;
    let count = l.var(l.find("count").unwrap()).slot;
    Box::new(FnProgram::new("counter", move |cx: &mut ScanCtx<'_>| {
        let Value::Int(_, c) = cx.image.load(count) else {
            unreachable!()
        };
        if c + 1 == fault_at {
            return Err(ProgramFault::new("boom"));
        }
        cx.image.store(count, Value::Int(IecType::Dint, c + 1));
        let s = cx.image.load(start);
        cx.image.store(lamp, s);
        cx.image.store(valve, Value::Int(IecType::Int, 7));
        Ok(())
    }))
}

fn engine(fault_at: i64) -> Engine {
    let l = layout();
    let p = counter(&l, fault_at);
    let mut b = EngineBuilder::new(l, ClockKind::Virtual);
    b.task(TaskConfig::new("main", 1_000_000), vec![p]).unwrap();
    let mut e = b.build().unwrap();
    e.start(true).unwrap();
    e
}

fn read(e: &Engine, name: &str) -> Value {
    e.read(e.layout().find(name).unwrap())
}

#[test]
fn virtual_time_runs_the_requested_cycles_with_now_on_the_grid() {
    let mut e = engine(-1);
    let t = e.run_cycles(10).unwrap();
    assert_eq!(t, 9_000_000);
    assert_eq!(read(&e, "count"), Value::Int(IecType::Dint, 10));
    assert_eq!(e.stats()[0].cycles, 10);
}

#[test]
fn a_forced_input_holds_until_released_and_writes_apply_once() {
    let mut e = engine(-1);
    let start = e.layout().find("start").unwrap();
    e.force(start, Value::Bool(true));
    e.run_cycles(2).unwrap();
    assert_eq!(read(&e, "lamp"), Value::Bool(true));
    assert_eq!(e.forced().len(), 1);
    e.unforce(start);
    e.write(start, Value::Bool(false)).unwrap();
    e.run_cycles(1).unwrap();
    assert_eq!(read(&e, "lamp"), Value::Bool(false));
    assert!(e.forced().is_empty());
}

#[test]
fn a_forced_output_overrides_what_the_program_writes() {
    let mut e = engine(-1);
    let valve = e.layout().find("valve").unwrap();
    e.force(valve, Value::Int(IecType::Int, 42));
    e.run_cycles(1).unwrap();
    assert_eq!(read(&e, "valve"), Value::Int(IecType::Int, 42));
}

#[test]
fn a_program_fault_makes_outputs_safe_in_the_same_cycle_and_keeps_the_cause() {
    let mut e = engine(3);
    e.run_cycles(2).unwrap();
    assert_eq!(read(&e, "valve"), Value::Int(IecType::Int, 7));
    e.run_cycles(1).unwrap();
    assert_eq!(e.state(), PlcState::Fault);
    assert_eq!(read(&e, "valve"), Value::Int(IecType::Int, -1));
    let f = e.fault().unwrap();
    assert_eq!(
        (f.kind, f.cycle, f.message.as_str()),
        (FaultKind::Program, 2, "boom")
    );
    // A fault stays until cleared, and clearing leads to STOP, not RUN.
    e.run_cycles(5).unwrap();
    assert_eq!(e.state(), PlcState::Fault);
    e.clear_fault();
    e.run_cycles(1).unwrap();
    assert_eq!(e.state(), PlcState::Stop);
    assert!(e.fault().is_none());
}

#[test]
fn stop_makes_outputs_safe_and_run_resumes() {
    let mut e = engine(-1);
    e.run_cycles(1).unwrap();
    e.stop();
    e.run_cycles(1).unwrap();
    assert_eq!(e.state(), PlcState::Stop);
    assert_eq!(read(&e, "valve"), Value::Int(IecType::Int, -1));
    assert_eq!(read(&e, "count"), Value::Int(IecType::Dint, 1));
    e.run();
    e.run_cycles(1).unwrap();
    assert_eq!(read(&e, "valve"), Value::Int(IecType::Int, 7));
}

#[test]
fn tasks_run_by_period_then_priority() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mk = |name: &'static str| -> Box<dyn Program> {
        let log = log.clone();
        Box::new(FnProgram::new(name, move |cx: &mut ScanCtx<'_>| {
            log.lock().unwrap().push((cx.now_ns, name));
            Ok(())
        }))
    };
    let mut b = EngineBuilder::new(layout(), ClockKind::Virtual);
    let mut slow = TaskConfig::new("slow", 2_000_000);
    slow.priority = 1;
    let mut fast = TaskConfig::new("fast", 1_000_000);
    fast.priority = 5;
    b.task(slow, vec![mk("s")]).unwrap();
    b.task(fast, vec![mk("f")]).unwrap();
    let mut e = b.build().unwrap();
    e.start(true).unwrap();
    e.run_virtual_for(4_000_000).unwrap();
    let got = log.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            (0, "s"),
            (0, "f"),
            (1_000_000, "f"),
            (2_000_000, "s"),
            (2_000_000, "f"),
            (3_000_000, "f")
        ]
    );
}

#[test]
fn bad_task_settings_are_rejected_naming_the_task() {
    let mut b = EngineBuilder::new(layout(), ClockKind::Virtual);
    let e = b.task(TaskConfig::new("t0", 0), vec![]).err().unwrap();
    assert!(e.message.contains("\"t0\""), "{e}");
    b.task(TaskConfig::new("a", 1), vec![]).unwrap();
    assert!(b.task(TaskConfig::new("a", 1), vec![]).is_err());
}

#[test]
fn real_time_engine_cycles_and_closes_with_safe_outputs() {
    let l = layout();
    let p = counter(&l, -1);
    let mut b = EngineBuilder::new(l, ClockKind::Real);
    b.task(TaskConfig::new("main", 1_000_000), vec![p]).unwrap();
    let mut e = b.build().unwrap();
    e.start(true).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(e.state(), PlcState::Run);
    assert_eq!(read(&e, "valve"), Value::Int(IecType::Int, 7));
    e.close();
    assert_eq!(read(&e, "valve"), Value::Int(IecType::Int, -1));
    let f = e.stats()[0];
    assert!(f.cycles > 10, "{f:?}");
    assert!(e.rt_status().is_some());
}
