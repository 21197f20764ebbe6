//! Devices that stay silent, answer garbage or answer too late: the scan never waits,
//! and the failure shows in quality, statistics and events.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{layout, Rig};
use softplc_core::{Area, IecType, Quality};
use softplc_io::config::parse;
use softplc_io::ModbusClient;

#[derive(Clone, Copy)]
enum Mode {
    Silent,
    Garbage,
    Late(Duration),
}

/// A hostile device: reads requests and misbehaves as told, until `stop`.
fn device(mode: Mode, stop: Arc<AtomicBool>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let mut conns = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Ok((s, _)) = l.accept() {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                conns.push(s);
            }
            for s in conns.iter_mut() {
                let mut req = [0u8; 12];
                if s.read_exact(&mut req).is_err() {
                    continue;
                }
                match mode {
                    Mode::Silent => {}
                    Mode::Garbage => {
                        let _ = s
                            .write_all(&[req[0], req[1], 0, 0, 0, 4, 1, 0x04, 7, 0xFF, 0xEE, 0xDD]);
                    }
                    Mode::Late(d) => {
                        std::thread::sleep(d);
                        let _ = s.write_all(&[req[0], req[1], 0, 0, 0, 5, 1, 0x04, 2, 0, 42]);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    port
}

fn plc(port: u16) -> Rig {
    let l = layout(&[("plc.level", Area::Input, IecType::Int, "%IW0")]);
    let toml = format!(
        "[[device]]\nname = \"d\"\nhost = \"127.0.0.1\"\nport = {port}\npoll_ms = 20\ntimeout_ms = 50\nretries = 0\nfail_after = 2\nreconnect_min_ms = 10\n\
         [[device.read]]\nvar = \"level\"\ntable = \"input_register\"\naddress = 0\n"
    );
    let cfg = parse("t.toml", &toml).unwrap();
    Rig::new(l, vec![Box::new(ModbusClient::new("modbus", cfg.devices))])
}

/// Cycles every ms for `d`; returns the longest cycle.
fn cycle_for(r: &mut Rig, d: Duration) -> Duration {
    let end = Instant::now() + d;
    let mut worst = Duration::ZERO;
    while Instant::now() < end {
        let t = Instant::now();
        r.cycle();
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    }
    worst
}

fn check(mode: Mode, counter: &str) {
    let stop = Arc::new(AtomicBool::new(false));
    let port = device(mode, stop.clone());
    let mut r = plc(port);
    let worst = cycle_for(&mut r, Duration::from_millis(600));
    stop.store(true, Ordering::Relaxed);
    let st = r.status(0);
    assert_eq!(r.quality("plc.level"), Quality::Bad, "{st}");
    assert!(st["devices"]["d"][counter].as_u64().unwrap() >= 2, "{st}");
    assert!(r.events().iter().any(|e| e.text.contains("inputs bad")));
    // A cycle that waited for the device would take the 50 ms timeout.
    assert!(worst < Duration::from_millis(10), "longest cycle {worst:?}");
}

#[test]
fn a_silent_device_times_out_without_stalling_the_scan() {
    check(Mode::Silent, "timeouts");
}

#[test]
fn a_device_answering_garbage_is_counted_and_dropped() {
    check(Mode::Garbage, "garbage");
}

#[test]
fn a_device_answering_after_the_timeout_counts_as_failed() {
    check(Mode::Late(Duration::from_millis(80)), "timeouts");
}
