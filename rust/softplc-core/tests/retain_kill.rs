//! Power loss at random moments: a runtime with retained variables is killed with
//! SIGKILL again and again, also while its writer is in the middle of a slot, and every
//! time the values it would load are one complete earlier snapshot (never a mix of two
//! cycles) and at most one cadence (plus the time a write takes) old.
//!
//! The runtime is this test binary run again as a child (`child_runtime` with
//! `SOFTPLC_RETAIN_CHILD` set): a 1 ms engine whose program keeps three retained counters
//! equal and a retained time stamp, retain cadence 5 ms. `SOFTPLC_KILLS` sets the number
//! of kills (100 by default; the slow Python test runs 1,000).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use softplc_core::clock::monotonic_ns;
use softplc_core::retain::{RestartLevel, RetainConfig, RetainKind, Store};
use softplc_core::*;

const CADENCE_NS: u64 = 5_000_000;
/// What a slot write may add to the cadence (temporary file, two fsyncs, a rename) on a
/// busy shared machine.
const WRITE_ALLOWANCE_NS: u64 = 250_000_000;

fn layout() -> Layout {
    let mut b = LayoutBuilder::new();
    for n in ["a", "b", "c"] {
        let mut d = VarDecl::new(n, Area::Memory, IecType::Dint, None);
        d.retain = Some(RetainKind::Retain);
        b.declare(d).unwrap();
    }
    let mut t = VarDecl::new("t", Area::Memory, IecType::Lint, None);
    t.retain = Some(RetainKind::Persistent);
    b.declare(t).unwrap();
    b.build().unwrap()
}

/// The child: runs until killed.
#[test]
fn child_runtime() {
    let Ok(dir) = std::env::var("SOFTPLC_RETAIN_CHILD") else {
        return;
    };
    let l = layout();
    let slot = |n: &str| l.var(l.find(n).unwrap()).slot;
    let (a, b, c, t) = (slot("a"), slot("b"), slot("c"), slot("t"));
    let p = FnProgram::new("count", move |cx: &mut ScanCtx<'_>| {
        let Value::Int(_, n) = cx.image.load(a) else {
            unreachable!()
        };
        assert_eq!(cx.image.load(a), cx.image.load(b), "restored a mix");
        assert_eq!(cx.image.load(b), cx.image.load(c), "restored a mix");
        for s in [a, b, c] {
            cx.image.store(s, Value::Int(IecType::Dint, n + 1));
        }
        cx.image
            .store(t, Value::Int(IecType::Lint, cx.now_ns as i64));
        Ok(())
    });
    let mut bld = EngineBuilder::new(l, ClockKind::Real);
    bld.task(TaskConfig::new("main", 1_000_000), vec![Box::new(p)])
        .unwrap();
    bld.retain(RetainConfig {
        dir: PathBuf::from(dir),
        stem: "kill".into(),
        cadence_ns: CADENCE_NS,
        level: RestartLevel::Warm,
        signature: "retain-kill".into(),
    })
    .unwrap();
    let mut e = bld.build().unwrap();
    e.start(true).unwrap();
    println!("started");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// (a, b, c, t) of the newest valid slot.
fn loaded(dir: &Path) -> Option<(Vec<u64>, u64)> {
    let l = Store::new(dir, "kill").load();
    let s = l.snapshot?;
    let get = |n: &str| s.entries.iter().find(|e| e.name == n).map(|e| e.bits);
    Some((vec![get("a")?, get("b")?, get("c")?], get("t")?))
}

/// A small xorshift for the kill times (no dependency; the seed is printed).
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn killed_at_random_moments_it_always_loads_one_whole_recent_snapshot() {
    let kills: usize = std::env::var("SOFTPLC_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let dir = std::env::temp_dir().join(format!("softplc-retain-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut seed = monotonic_ns() | 1;
    println!("seed {seed}");
    let exe = std::env::current_exe().unwrap();
    let mut last_n = 0u64;
    let mut worst_age = 0u64;
    let mut no_slot_yet = 0;
    for k in 0..kills {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "child_runtime",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("SOFTPLC_RETAIN_CHILD", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until its engine runs (the retained values are loaded by then).
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("started") {
            line.clear();
            if std::io::BufRead::read_line(&mut out, &mut line).unwrap() == 0 {
                panic!("kill {k}: the child ended before it started");
            }
        }
        // Some kills land before the first write, most between writes, some inside a
        // write (one starts every 5 ms).
        let wait_us = next(&mut seed) % 120_000;
        std::thread::sleep(Duration::from_micros(wait_us));
        let killed_at = monotonic_ns();
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "kill {k}: the child exited on its own: {status}"
        );
        match loaded(&dir) {
            None => {
                // Killed before its first write: only acceptable while nothing was ever
                // saved.
                assert_eq!(last_n, 0, "kill {k}: a saved snapshot disappeared");
                no_slot_yet += 1;
            }
            Some((abc, t)) => {
                assert!(
                    abc[0] == abc[1] && abc[1] == abc[2],
                    "kill {k}: a mix of cycles: {abc:?}"
                );
                assert!(
                    abc[0] >= last_n,
                    "kill {k}: went back from {last_n} to {}",
                    abc[0]
                );
                last_n = abc[0];
                // After 50 ms the child has written several slots: the newest whole
                // one is at most a cadence (plus a write) old.
                let age = killed_at.saturating_sub(t);
                if wait_us > 50_000 {
                    worst_age = worst_age.max(age);
                    assert!(
                        age <= CADENCE_NS + WRITE_ALLOWANCE_NS,
                        "kill {k}: loaded data {:.1} ms old",
                        age as f64 / 1e6
                    );
                }
            }
        }
    }
    println!(
        "{kills} kills: counters reached {last_n}, worst age of loaded data {:.1} ms, \
         {no_slot_yet} kills before any write",
        worst_age as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}
